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
    progress_percent  DOUBLE PRECISION,
    downloaded_bytes  BIGINT,
    total_bytes       BIGINT,
    error_code        TEXT,
    error_message     TEXT,
    title             TEXT,
    duration_seconds  DOUBLE PRECISION,
    width             BIGINT,
    height            BIGINT,
    video_codec       TEXT,
    audio_codec       TEXT,
    bitrate_bps       BIGINT,
    fps               DOUBLE PRECISION,
    container         TEXT,
    size_bytes        BIGINT,
    sha256            TEXT,
    -- Relative paths under media_root, fixed when the item is created.
    video_path        TEXT NOT NULL,
    thumb_small_path  TEXT NOT NULL,
    thumb_medium_path TEXT NOT NULL,
    thumb_large_path  TEXT NOT NULL,
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL,
    completed_at      BIGINT
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
    attempt         BIGINT NOT NULL DEFAULT 0,   -- attempts started (charged at claim)
    max_attempts    BIGINT NOT NULL,
    run_after       BIGINT NOT NULL,
    lease_owner     TEXT,
    lease_until     BIGINT,
    boot_id         TEXT,
    idempotency_key TEXT NOT NULL UNIQUE,
    last_error_code TEXT,
    last_error      TEXT,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    finished_at     BIGINT
);

CREATE INDEX jobs_due ON jobs (state, platform, run_after);
CREATE INDEX jobs_by_item ON jobs (item_id);
CREATE INDEX jobs_by_lease ON jobs (state, lease_owner);
