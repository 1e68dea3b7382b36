-- Process crashes a running job has been through (recovered as an orphan). A crash does not
-- use one of the job's attempts; past queue.max_crashes the job fails with crash_loop.
ALTER TABLE jobs ADD COLUMN crashes INTEGER NOT NULL DEFAULT 0;
