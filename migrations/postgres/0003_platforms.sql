-- One item per platform video, however its URL was spelled.
CREATE UNIQUE INDEX items_by_platform_media ON items (platform, platform_media_id)
    WHERE platform_media_id IS NOT NULL;

-- Things a person should know about a completed item (a JSON array of strings), such as a
-- download that came in far below the announced resolution.
ALTER TABLE items ADD COLUMN warnings TEXT;

-- Circuit breakers, one per platform, persisted so that a pause survives a restart.
CREATE TABLE breakers (
    platform   TEXT PRIMARY KEY NOT NULL,
    failures   BIGINT NOT NULL,   -- refusals in a row; 0 means closed
    open_until BIGINT NOT NULL,   -- Unix ms; downloads of the platform wait until then
    reason     TEXT,
    updated_at BIGINT NOT NULL
);

-- Completed items are found by content, so identical videos share one stored file.
CREATE INDEX items_by_sha256 ON items (sha256);
