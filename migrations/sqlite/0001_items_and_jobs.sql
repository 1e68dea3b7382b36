-- Items: one captured video each. Timestamps are Unix milliseconds (UTC) on both backends,
-- so that the same comparisons run everywhere.
CREATE TABLE items (
    id                TEXT PRIMARY KEY NOT NULL,  -- UUIDv7, sorts by creation time
    owner             TEXT,
    source            TEXT NOT NULL CHECK (source IN ('api', 'telegram', 'watch')),
    source_url        TEXT,
    canonical_url     TEXT UNIQUE,                -- dedup key of URL captures
    platform          TEXT NOT NULL,
    platform_media_id TEXT,
    status            TEXT NOT NULL CHECK (status IN
                        ('queued', 'downloading', 'processing', 'completed', 'failed', 'cancelled')),
    stage             TEXT,
    progress_percent  REAL,
    downloaded_bytes  INTEGER,
    total_bytes       INTEGER,
    error_code        TEXT,
    error_message     TEXT,
    title             TEXT,
    duration_seconds  REAL,
    width             INTEGER,
    height            INTEGER,
    video_codec       TEXT,
    audio_codec       TEXT,
    bitrate_bps       INTEGER,
    fps               REAL,
    container         TEXT,
    size_bytes        INTEGER,
    sha256            TEXT,
    -- Relative paths under media_root, fixed when the item is created.
    video_path        TEXT NOT NULL,
    thumb_small_path  TEXT NOT NULL,
    thumb_medium_path TEXT NOT NULL,
    thumb_large_path  TEXT NOT NULL,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL,
    completed_at      INTEGER
);

CREATE INDEX items_by_status ON items (status, id);
CREATE INDEX items_by_platform ON items (platform, id);

-- The durable queue. A job is never deleted by the queue itself: a failed job keeps its reason.
CREATE TABLE jobs (
    id              TEXT PRIMARY KEY NOT NULL,
    kind            TEXT NOT NULL,
    item_id         TEXT NOT NULL REFERENCES items (id) ON DELETE CASCADE,
    platform        TEXT,
    state           TEXT NOT NULL CHECK (state IN
                      ('queued', 'running', 'completed', 'failed', 'cancelled')),
    attempt         INTEGER NOT NULL DEFAULT 0,   -- attempts started (charged at claim)
    max_attempts    INTEGER NOT NULL,
    run_after       INTEGER NOT NULL,
    lease_owner     TEXT,
    lease_until     INTEGER,
    boot_id         TEXT,
    idempotency_key TEXT NOT NULL UNIQUE,
    last_error_code TEXT,
    last_error      TEXT,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    finished_at     INTEGER
);

CREATE INDEX jobs_due ON jobs (state, platform, run_after);
CREATE INDEX jobs_by_item ON jobs (item_id);
CREATE INDEX jobs_by_lease ON jobs (state, lease_owner);
