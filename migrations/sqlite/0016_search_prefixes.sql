-- Prefix indexes for `word*` searches (db::search): without them FTS5 merges the lists of
-- every indexed word that starts with the prefix, which took 60-80 ms for a three-letter
-- prefix over 100,000 items; with them a prefix of two or three letters is one list, and a
-- longer one starts from the three-letter list.
--
-- The index is derived data, so the tables are made again rather than altered: the item
-- index is rebuilt by the catch-up when the service starts (it indexes every item missing
-- from search_docs), the cue index from the cues it reads its words from.
DROP TABLE item_search;
DELETE FROM search_docs;
CREATE VIRTUAL TABLE item_search USING fts5(
    title, tags, uploader, body,
    tokenize = 'unicode61 remove_diacritics 2',
    prefix = '2 3'
);

DROP TABLE cue_search;
CREATE VIRTUAL TABLE cue_search USING fts5(
    words, content = 'subtitle_cues', content_rowid = 'id',
    tokenize = 'unicode61 remove_diacritics 2',
    prefix = '2 3'
);
INSERT INTO cue_search (cue_search) VALUES ('rebuild');
