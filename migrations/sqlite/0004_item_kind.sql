-- What an item holds. Every earlier item is a video; photos (from the bot) are images, stored
-- under images/ instead of videos/ (video_path keeps its name: it is the item's own file).
ALTER TABLE items ADD COLUMN kind TEXT NOT NULL DEFAULT 'video' CHECK (kind IN ('video', 'image'));
