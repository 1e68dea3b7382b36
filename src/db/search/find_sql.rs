//! The statements of `find`, per database. Every filter is a bound value and the sort one of
//! a few fixed clauses, so a statement is always one of a small fixed set of texts.
//!
//! Parameters: `$1` the required terms, `$2`–`$14` the filters, `$15` limit, `$16` offset,
//! `$17` the excluded terms, and, in the ranked statements only, `$18` the ranking window and
//! `$19` the whole query (required and excluded terms: a window holds no excluded match).
//!
//! A search ranks the newest matches only (the ranking window): scoring a match reads its
//! column sizes and term positions, a few microseconds each, so ranking a word that nearly
//! every one of 100,000 items holds took half a second, while the newest thousand take a
//! few milliseconds. Both indexes give their matches newest first cheaply (SQLite numbers
//! rows as they are written; PostgreSQL orders the matching item ids, which sort by
//! creation).

use super::find::Sort;

/// The ranking window: the newest matches of each index (own text, subtitle cues) ranked.
pub(super) const RANK_WINDOW: i64 = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Backend {
    Sqlite,
    Postgres,
}

/// The newest `$18` matches of the item index, with their score.
const SQLITE_OWN_WINDOW: &str = "own AS MATERIALIZED ( \
      SELECT rowid AS doc, bm25(item_search, 10.0, 5.0, 3.0, 1.0) AS bm FROM item_search \
       WHERE item_search MATCH $19 ORDER BY rowid DESC LIMIT $18)";

/// The newest `$18` matches of the cue index, with their score.
const SQLITE_CUE_WINDOW: &str = "cue AS MATERIALIZED ( \
      SELECT rowid AS id, bm25(cue_search) AS bm FROM cue_search \
       WHERE cue_search MATCH $19 ORDER BY rowid DESC LIMIT $18)";

const POSTGRES_OWN_WINDOW: &str = "own AS MATERIALIZED ( \
      SELECT item_id FROM item_search WHERE doc @@ to_tsquery('simple', $19) \
       ORDER BY item_id DESC LIMIT $18)";

const POSTGRES_CUE_WINDOW: &str = "cue AS MATERIALIZED ( \
      SELECT id FROM subtitle_cues WHERE doc @@ to_tsquery('simple', $19) \
       ORDER BY id DESC LIMIT $18)";

/// The items of the own-text window; their score is above any cue's.
const SQLITE_OWN_HITS: &str = "SELECT d.item_id AS item_id, 1000.0 - own.bm AS score, \
    CAST(NULL AS BIGINT) AS cue_id FROM own JOIN search_docs d ON d.doc = own.doc";

/// The items of the cue window's videos, with the cue.
const SQLITE_CUE_HITS: &str = "SELECT i.id, -cue.bm, cue.id \
    FROM cue JOIN subtitle_cues c ON c.id = cue.id JOIN items i ON i.video_path = c.video_path";

const POSTGRES_OWN_HITS: &str = "SELECT s.item_id, \
    CAST(1000.0 AS FLOAT8) + ts_rank(s.doc, to_tsquery('simple', $19)) AS score, \
    CAST(NULL AS BIGINT) AS cue_id FROM own JOIN item_search s ON s.item_id = own.item_id";

const POSTGRES_CUE_HITS: &str = "SELECT i.id, CAST(ts_rank(c.doc, to_tsquery('simple', $19)) AS FLOAT8), \
    c.id FROM cue JOIN subtitle_cues c ON c.id = cue.id JOIN items i ON i.video_path = c.video_path";

/// Every matching item, unscored (for the other sorts, and past the window): an item found
/// only by its subtitles keeps one matching cue to say when.
const SQLITE_MATCHES: &str = "SELECT item_id, 0.0 AS score, \
    CASE WHEN MAX(own) = 1 THEN NULL ELSE MIN(cue_id) END AS cue_id FROM ( \
    SELECT d.item_id AS item_id, 1 AS own, CAST(NULL AS BIGINT) AS cue_id \
      FROM item_search JOIN search_docs d ON d.doc = item_search.rowid \
     WHERE item_search MATCH $1 \
    UNION ALL \
    SELECT i.id, 0, c.id \
      FROM cue_search JOIN subtitle_cues c ON c.id = cue_search.rowid \
      JOIN items i ON i.video_path = c.video_path \
     WHERE cue_search MATCH $1 \
  ) GROUP BY item_id";

const POSTGRES_MATCHES: &str = "SELECT item_id, CAST(0.0 AS FLOAT8) AS score, \
    CASE WHEN bool_or(own) THEN NULL ELSE MIN(cue_id) END AS cue_id FROM ( \
    SELECT s.item_id, TRUE AS own, CAST(NULL AS BIGINT) AS cue_id \
      FROM item_search s WHERE s.doc @@ to_tsquery('simple', $1) \
    UNION ALL \
    SELECT i.id, FALSE, c.id \
      FROM subtitle_cues c JOIN items i ON i.video_path = c.video_path \
     WHERE c.doc @@ to_tsquery('simple', $1) \
  ) h GROUP BY item_id";

/// An excluded term anywhere in an item (its own text or any cue of its video) excludes it.
/// Asked as a set (every item and video holding it) where all matches are read anyway, and
/// item by item ([`SQLITE_EXCLUDED_PROBE`]) for the ranked window's few items: a common
/// excluded word is in half the vault, and its set alone cost more than the whole window.
const SQLITE_EXCLUDED: &str = "items.id NOT IN (SELECT d.item_id FROM item_search \
    JOIN search_docs d ON d.doc = item_search.rowid WHERE item_search MATCH $17) \
    AND items.video_path NOT IN (SELECT c.video_path FROM cue_search \
    JOIN subtitle_cues c ON c.id = cue_search.rowid WHERE cue_search MATCH $17)";

/// One index lookup per item and per video with subtitles. The windows already hold no own
/// text with an excluded term, so only items found by a cue have theirs looked up. A video's
/// cues are written together (`index::index_cues`), so their ids are one range, which the cue
/// index seeks to instead of reading all its matches.
const SQLITE_EXCLUDED_PROBE: &str = "(hits.cue_id IS NULL OR NOT EXISTS (SELECT 1 FROM item_search \
      WHERE item_search MATCH $17 \
        AND item_search.rowid = (SELECT doc FROM search_docs WHERE item_id = items.id))) \
    AND ((SELECT MIN(id) FROM subtitle_cues WHERE video_path = items.video_path) IS NULL \
      OR NOT EXISTS (SELECT 1 FROM cue_search WHERE cue_search MATCH $17 \
       AND cue_search.rowid >= (SELECT MIN(id) FROM subtitle_cues WHERE video_path = items.video_path) \
       AND cue_search.rowid <= (SELECT MAX(id) FROM subtitle_cues WHERE video_path = items.video_path)))";

const POSTGRES_EXCLUDED_PROBE: &str = "NOT EXISTS (SELECT 1 FROM item_search xs \
     WHERE xs.item_id = items.id AND xs.doc @@ to_tsquery('simple', $17)) \
    AND NOT EXISTS (SELECT 1 FROM subtitle_cues xc \
     WHERE xc.video_path = items.video_path AND xc.doc @@ to_tsquery('simple', $17))";

/// On PostgreSQL the set form would be `NOT IN (SELECT …)`, which runs row by row against
/// the whole list once it outgrows `work_mem`; the per-item lookups are the anti-join its
/// planner makes fast either way.
const POSTGRES_EXCLUDED: &str = POSTGRES_EXCLUDED_PROBE;

const FILTERS: &str = "($2 IS NULL OR items.status = $2) AND ($3 IS NULL OR items.platform = $3) \
    AND ($4 IS NULL OR items.kind = $4) AND ($5 IS NULL OR items.owner = $5) \
    AND ($6 IS NULL OR EXISTS (SELECT 1 FROM item_tags t WHERE t.item_id = items.id AND t.tag = $6)) \
    AND ($7 IS NULL OR items.uploader_key = $7) \
    AND ($8 IS NULL OR items.created_at >= $8) AND ($9 IS NULL OR items.created_at < $9) \
    AND ($10 IS NULL OR items.upload_date >= $10) AND ($11 IS NULL OR items.upload_date <= $11) \
    AND ($12 IS NULL OR items.duration_seconds >= $12) AND ($13 IS NULL OR items.duration_seconds <= $13) \
    AND ($14 IS NULL OR items.id < $14)";

/// The columns of a found item: the item, and the cue it was found by.
const FOUND_COLUMNS: &str = "items.*, hc.lang AS cue_lang, hc.start_ms AS cue_start, \
    hc.end_ms AS cue_end, hc.text AS cue_text";

fn order(sort: Sort, ascending: bool) -> &'static str {
    match (sort, ascending) {
        (Sort::Relevance, _) => "hits.score DESC, items.id DESC",
        (Sort::Captured, false) => "items.id DESC",
        (Sort::Captured, true) => "items.id ASC",
        (Sort::Uploaded, false) => "items.upload_date DESC NULLS LAST, items.id DESC",
        (Sort::Uploaded, true) => "items.upload_date ASC NULLS LAST, items.id ASC",
        (Sort::Duration, false) => "items.duration_seconds DESC NULLS LAST, items.id DESC",
        (Sort::Duration, true) => "items.duration_seconds ASC NULLS LAST, items.id ASC",
    }
}

impl Backend {
    /// The window subqueries: the own-text one, and the cue one unless `own_only`.
    fn windows(self, own_only: bool) -> String {
        let (own, cue) = match self {
            Self::Sqlite => (SQLITE_OWN_WINDOW, SQLITE_CUE_WINDOW),
            Self::Postgres => (POSTGRES_OWN_WINDOW, POSTGRES_CUE_WINDOW),
        };
        if own_only {
            format!("WITH {own} ")
        } else {
            format!("WITH {own}, {cue} ")
        }
    }

    /// The windows' items, each once with its best score: own text above any cue, and the
    /// best cue kept to say when. `own_only`: the own-text window's items alone (the same
    /// order, as no cue ranks above own text).
    fn ranked(self, own_only: bool) -> String {
        match (self, own_only) {
            (Self::Sqlite, true) => SQLITE_OWN_HITS.to_string(),
            (Self::Postgres, true) => POSTGRES_OWN_HITS.to_string(),
            (Self::Sqlite, false) => format!(
                "SELECT item_id, MAX(score) AS score, cue_id FROM \
                 ({SQLITE_OWN_HITS} UNION ALL {SQLITE_CUE_HITS}) GROUP BY item_id"
            ),
            (Self::Postgres, false) => format!(
                "SELECT DISTINCT ON (item_id) item_id, score, cue_id FROM \
                 ({POSTGRES_OWN_HITS} UNION ALL {POSTGRES_CUE_HITS}) h ORDER BY item_id, score DESC"
            ),
        }
    }

    fn matches(self) -> &'static str {
        match self {
            Self::Sqlite => SQLITE_MATCHES,
            Self::Postgres => POSTGRES_MATCHES,
        }
    }

    /// The exclusion condition, as a set or item by item (`probe`); `$17` is used either
    /// way, so every statement of a kind takes the same arguments.
    fn excluded(self, excludes: bool, probe: bool) -> String {
        let condition = match (self, probe) {
            _ if !excludes => return "$17 IS NULL".to_string(),
            (Self::Sqlite, false) => SQLITE_EXCLUDED,
            (Self::Sqlite, true) => SQLITE_EXCLUDED_PROBE,
            (Self::Postgres, false) => POSTGRES_EXCLUDED,
            (Self::Postgres, true) => POSTGRES_EXCLUDED_PROBE,
        };
        format!("({condition})")
    }
}

/// A listing without a search.
pub(super) fn listing(backend: Backend, sort: Sort, ascending: bool) -> String {
    let sort = if sort == Sort::Relevance {
        Sort::Captured
    } else {
        sort
    };
    let excluded = backend.excluded(false, false);
    let order = order(sort, ascending);
    format!(
        "SELECT items.*, CAST(NULL AS TEXT) AS cue_lang, CAST(NULL AS BIGINT) AS cue_start, \
         CAST(NULL AS BIGINT) AS cue_end, CAST(NULL AS TEXT) AS cue_text FROM items \
         WHERE $1 IS NULL AND {FILTERS} AND {excluded} ORDER BY {order} LIMIT $15 OFFSET $16"
    )
}

/// A search in another order than relevance: every match, no score needed.
pub(super) fn sorted_matches(
    backend: Backend,
    excludes: bool,
    sort: Sort,
    ascending: bool,
) -> String {
    let (matches, order) = (backend.matches(), order(sort, ascending));
    let excluded = backend.excluded(excludes, false);
    format!(
        "SELECT {FOUND_COLUMNS} FROM ({matches}) AS hits JOIN items ON items.id = hits.item_id \
         LEFT JOIN subtitle_cues hc ON hc.id = hits.cue_id \
         WHERE {FILTERS} AND {excluded} ORDER BY {order} LIMIT $15 OFFSET $16"
    )
}

/// A page of the ranked window, best first. The page is chosen on ids and scores only; the
/// items' whole rows (descriptions and all) are read for the page alone.
///
/// `own_only`: the own-text window alone. When its page is full, no cue could come before
/// its items, and the cue window's scores (which read every cue holding the words) are not
/// needed. Otherwise the page says how many matches each window holds (`own_n`, `cue_n`)
/// and how many of its items pass the filters (`ranked_n`).
pub(super) fn ranked_page(backend: Backend, excludes: bool, own_only: bool) -> String {
    let (windows, ranked) = (backend.windows(own_only), backend.ranked(own_only));
    let excluded = backend.excluded(excludes, true);
    let order = order(Sort::Relevance, false);
    let (ranked_n, counts) = if own_only {
        ("", "")
    } else {
        (
            ", COUNT(*) OVER () AS ranked_n",
            ", (SELECT COUNT(*) FROM own) AS own_n, (SELECT COUNT(*) FROM cue) AS cue_n, \
             hits.ranked_n AS ranked_n",
        )
    };
    format!(
        "{windows}, page AS MATERIALIZED ( \
           SELECT hits.item_id AS item_id, hits.score AS score, hits.cue_id AS cue_id{ranked_n} \
             FROM ({ranked}) AS hits JOIN items ON items.id = hits.item_id \
            WHERE {FILTERS} AND {excluded} ORDER BY {order} LIMIT $15 OFFSET $16) \
         SELECT {FOUND_COLUMNS}{counts} \
           FROM page AS hits JOIN items ON items.id = hits.item_id \
           LEFT JOIN subtitle_cues hc ON hc.id = hits.cue_id ORDER BY {order}"
    )
}

/// The counts of `ranked_page`, for when its page is empty (past the window, or no match).
pub(super) fn ranked_counts(backend: Backend, excludes: bool) -> String {
    let (windows, ranked) = (backend.windows(false), backend.ranked(false));
    let excluded = backend.excluded(excludes, true);
    format!(
        "{windows} SELECT (SELECT COUNT(*) FROM own) AS own_n, (SELECT COUNT(*) FROM cue) AS cue_n, \
         (SELECT COUNT(*) FROM ({ranked}) AS hits JOIN items ON items.id = hits.item_id \
          WHERE {FILTERS} AND {excluded} AND ($15 IS NULL OR $16 IS NULL OR 1 = 1)) AS ranked_n"
    )
}

/// The matches past the ranked window, newest first.
pub(super) fn past_window(backend: Backend, excludes: bool) -> String {
    let (windows, ranked, matches) = (
        backend.windows(false),
        backend.ranked(false),
        backend.matches(),
    );
    let excluded = backend.excluded(excludes, false);
    format!(
        "{windows} SELECT {FOUND_COLUMNS} FROM ({matches}) AS hits JOIN items ON items.id = hits.item_id \
         LEFT JOIN subtitle_cues hc ON hc.id = hits.cue_id \
         WHERE {FILTERS} AND {excluded} \
           AND items.id NOT IN (SELECT ranked.item_id FROM ({ranked}) AS ranked) \
         ORDER BY items.id DESC LIMIT $15 OFFSET $16"
    )
}
