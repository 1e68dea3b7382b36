-- Kind-specific parameters of a job (the quality of a transcode), as JSON text.
ALTER TABLE jobs ADD COLUMN payload TEXT;

-- Bytes of the item's three thumbnails, for storage accounting.
ALTER TABLE items ADD COLUMN thumbnails_bytes BIGINT;

-- Renditions made on request. A row exists only once the file is in place.
CREATE TABLE renditions (
    item_id    TEXT NOT NULL REFERENCES items (id) ON DELETE CASCADE,
    quality    TEXT NOT NULL,
    path       TEXT NOT NULL,   -- relative to media_root, fixed from the item's month
    width      BIGINT NOT NULL,
    height     BIGINT NOT NULL,
    size_bytes BIGINT NOT NULL,
    sha256     TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (item_id, quality)
);

-- At most one transcode of a given item and quality waits or runs at a time, across every
-- instance sharing the database: a repeated request finds the active job instead.
CREATE UNIQUE INDEX jobs_one_active_transcode ON jobs (item_id, payload)
    WHERE kind = 'transcode' AND state IN ('queued', 'running');
