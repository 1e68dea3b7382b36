-- Finding things again (db::search): what people add to an item, and the full-text index.
-- The index holds words already folded by domain::search (lowercase, accents removed), so
-- SQLite and PostgreSQL find the same items for the same query. It is derived data: backups
-- leave it out and the service rebuilds what is missing when it starts.
ALTER TABLE items ADD COLUMN user_title TEXT;
ALTER TABLE items ADD COLUMN user_tags TEXT;      -- JSON list
ALTER TABLE items ADD COLUMN note TEXT;
ALTER TABLE items ADD COLUMN uploader_key TEXT;   -- the uploader's folded words, for ?uploader=
CREATE INDEX items_uploader_key ON items (uploader_key);
CREATE INDEX items_upload_date ON items (upload_date);
CREATE INDEX items_duration ON items (duration_seconds);

-- Each item's row in the index: FTS5 rows are numbered, items are not.
CREATE TABLE search_docs (
    doc INTEGER PRIMARY KEY,
    item_id TEXT NOT NULL UNIQUE
);
CREATE VIRTUAL TABLE item_search USING fts5(
    title, tags, uploader, body,
    tokenize = 'unicode61 remove_diacritics 2'
);

-- Subtitle cues belong to the video file (items sharing a video share its subtitles).
CREATE TABLE subtitle_cues (
    id INTEGER PRIMARY KEY,
    video_path TEXT NOT NULL,
    lang TEXT NOT NULL,
    start_ms INTEGER NOT NULL,
    end_ms INTEGER NOT NULL,
    text TEXT NOT NULL,   -- as shown
    words TEXT NOT NULL   -- folded, indexed
);
CREATE INDEX subtitle_cues_video ON subtitle_cues (video_path);
-- External content: the words live once, in subtitle_cues.
CREATE VIRTUAL TABLE cue_search USING fts5(
    words, content = 'subtitle_cues', content_rowid = 'id',
    tokenize = 'unicode61 remove_diacritics 2'
);

-- The source's and the person's tags, folded, for ?tag=.
CREATE TABLE item_tags (
    item_id TEXT NOT NULL,
    tag TEXT NOT NULL,
    PRIMARY KEY (item_id, tag)
);
CREATE INDEX item_tags_by_tag ON item_tags (tag, item_id);
