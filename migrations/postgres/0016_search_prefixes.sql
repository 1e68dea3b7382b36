-- The SQLite migration of this number adds prefix indexes to its full-text tables; GIN
-- indexes answer `word:*` from their sorted keys already, so PostgreSQL changes nothing.
-- The number exists on both databases so that a backup's schema version means the same on
-- either (a restore across databases compares it).
SELECT 1;
