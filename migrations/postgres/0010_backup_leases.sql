-- A backup in progress holds a lease here (renewed while it copies); while any lease is
-- unexpired, files of deleted items stay on disk, so that every item in the backup's database
-- dump still has its files when the backup copies them. A backup killed mid-way leaves a
-- lease that simply expires.
CREATE TABLE backup_leases (
    id         TEXT PRIMARY KEY NOT NULL,
    holder     TEXT NOT NULL,      -- host and process, for operators reading the table
    started_at BIGINT NOT NULL,    -- Unix ms
    expires_at BIGINT NOT NULL     -- Unix ms; renewed while the backup runs
);
