-- Backups the service runs by itself: one row per schedule slot, whose key makes a slot run
-- once however many instances share the database, or per admin request. Leased while
-- running, like jobs: an instance that dies mid-backup leaves a lease that runs out, and
-- another instance (or the same one restarted) takes the run over.
CREATE TABLE backup_runs (
    id            TEXT PRIMARY KEY NOT NULL,
    slot_key      TEXT NOT NULL UNIQUE,
    reason        TEXT NOT NULL CHECK (reason IN ('schedule', 'admin')),
    requested_by  TEXT,
    state         TEXT NOT NULL CHECK (state IN ('queued', 'running', 'completed', 'failed')),
    attempt       INTEGER NOT NULL DEFAULT 0,
    lease_owner   TEXT,
    lease_until   BIGINT,
    snapshot      TEXT,
    items         BIGINT,
    bytes_new     BIGINT,
    bytes_linked  BIGINT,
    seconds       DOUBLE PRECISION,
    error         TEXT,
    created_at    BIGINT NOT NULL,
    started_at    BIGINT,
    finished_at   BIGINT
);

CREATE INDEX backup_runs_by_state ON backup_runs (state, created_at);
