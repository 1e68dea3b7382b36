-- Subtitle sidecars (subtitles/YYYY/MM/{video stem}.{lang}.vtt): the tracks as JSON
-- (domain::subtitle_track::SubtitleTrack: lang, bytes, cues, auto), how many files and their
-- bytes. They belong to the video file as its thumbnails do: an item sharing another's video
-- shares them too.
ALTER TABLE items ADD COLUMN subtitles TEXT;
ALTER TABLE items ADD COLUMN subtitle_files BIGINT;
ALTER TABLE items ADD COLUMN subtitles_bytes BIGINT;
