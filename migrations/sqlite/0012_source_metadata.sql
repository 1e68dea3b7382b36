-- What the source says about an item beyond its title (domain::source_meta::SourceMeta): the
-- whole of it as JSON, and the two values listings filter and sort by in their own columns.
ALTER TABLE items ADD COLUMN uploader TEXT;
ALTER TABLE items ADD COLUMN upload_date TEXT;   -- YYYY-MM-DD
ALTER TABLE items ADD COLUMN source_meta TEXT;
