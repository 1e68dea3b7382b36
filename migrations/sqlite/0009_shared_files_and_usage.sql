-- Files shared by several items (one video captured for several owners, its renditions):
-- deleting an item asks which other rows still name its files.
CREATE INDEX items_by_video_path ON items (video_path);
CREATE INDEX renditions_by_path ON renditions (path);

-- Storage used per day, written by the storage side once a day (the storage trends of
-- GET /api/admin/storage/metrics): one row for the whole vault (user_id '') and one per user.
CREATE TABLE usage_history (
    day     TEXT NOT NULL,      -- YYYY-MM-DD, UTC
    user_id TEXT NOT NULL,      -- users.id, or '' for the whole vault
    bytes   BIGINT NOT NULL,
    items   BIGINT NOT NULL,
    PRIMARY KEY (day, user_id)
);
