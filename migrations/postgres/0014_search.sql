-- Finding things again (db::search): what people add to an item, and the full-text index.
-- The index holds words already folded by domain::search (lowercase, accents removed), so
-- SQLite and PostgreSQL find the same items for the same query; `simple` only splits them.
-- It is derived data: backups leave it out and the service rebuilds what is missing when it
-- starts.
ALTER TABLE items ADD COLUMN user_title TEXT;
ALTER TABLE items ADD COLUMN user_tags TEXT;      -- JSON list
ALTER TABLE items ADD COLUMN note TEXT;
ALTER TABLE items ADD COLUMN uploader_key TEXT;   -- the uploader's folded words, for ?uploader=
CREATE INDEX items_uploader_key ON items (uploader_key);
CREATE INDEX items_upload_date ON items (upload_date);
CREATE INDEX items_duration ON items (duration_seconds);

CREATE TABLE item_search (
    item_id TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    tags TEXT NOT NULL,
    uploader TEXT NOT NULL,
    body TEXT NOT NULL,
    doc tsvector GENERATED ALWAYS AS (
        setweight(to_tsvector('simple', title), 'A') || setweight(to_tsvector('simple', tags), 'B')
        || setweight(to_tsvector('simple', uploader), 'C') || setweight(to_tsvector('simple', body), 'D')
    ) STORED
);
CREATE INDEX item_search_doc ON item_search USING GIN (doc);

-- Subtitle cues belong to the video file (items sharing a video share its subtitles).
CREATE TABLE subtitle_cues (
    id BIGSERIAL PRIMARY KEY,
    video_path TEXT NOT NULL,
    lang TEXT NOT NULL,
    start_ms BIGINT NOT NULL,
    end_ms BIGINT NOT NULL,
    text TEXT NOT NULL,   -- as shown
    words TEXT NOT NULL,  -- folded
    doc tsvector GENERATED ALWAYS AS (to_tsvector('simple', words)) STORED
);
CREATE INDEX subtitle_cues_video ON subtitle_cues (video_path);
CREATE INDEX subtitle_cues_doc ON subtitle_cues USING GIN (doc);

-- The source's and the person's tags, folded, for ?tag=.
CREATE TABLE item_tags (
    item_id TEXT NOT NULL,
    tag TEXT NOT NULL,
    PRIMARY KEY (item_id, tag)
);
CREATE INDEX item_tags_by_tag ON item_tags (tag, item_id);
