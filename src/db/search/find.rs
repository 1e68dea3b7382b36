//! The search and the filtered listing: matching items, ranked or sorted, on either database.
//!
//! One statement per call. With a query, a `hits` subquery finds the items whose own text
//! matches and the items whose video has a matching subtitle cue (the best cue kept, to say
//! when), ranks an item's own text above a cue; the filters and the sort then apply to
//! `items` as for a plain listing. Every filter is a bound value; the sort is one of a few
//! fixed clauses.

use sqlx::Row;

use super::super::items::{self, Item};
use super::super::{Db, DbError, on_pool, to_u64};
use crate::domain::search::Query;
use crate::domain::{ItemId, ItemKind, ItemStatus, Platform};

/// How results are ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sort {
    /// Best match first (only with a query).
    Relevance,
    /// When captured (the item's id orders by creation).
    Captured,
    /// The source's upload date; items without one last.
    Uploaded,
    /// Duration; images and unfinished items last.
    Duration,
}

/// What to look for. Bounds are inclusive except `captured_to_ms`.
#[derive(Debug, Clone)]
pub struct Find {
    pub query: Option<Query>,
    pub status: Option<ItemStatus>,
    pub platform: Option<Platform>,
    pub kind: Option<ItemKind>,
    /// Only this owner's items (a user id); `None`: everyone's.
    pub owner: Option<String>,
    /// A tag's key (`search::key`).
    pub tag: Option<String>,
    /// An uploader's key (`search::key`).
    pub uploader: Option<String>,
    pub captured_from_ms: Option<i64>,
    pub captured_to_ms: Option<i64>,
    /// `YYYY-MM-DD`.
    pub uploaded_from: Option<String>,
    pub uploaded_to: Option<String>,
    pub min_duration: Option<f64>,
    pub max_duration: Option<f64>,
    pub sort: Sort,
    pub ascending: bool,
    /// Keyset cursor of the newest-first listing: items older than this one.
    pub before: Option<ItemId>,
    pub offset: u64,
    pub limit: u32,
}

impl Default for Find {
    fn default() -> Self {
        Self {
            query: None,
            status: None,
            platform: None,
            kind: None,
            owner: None,
            tag: None,
            uploader: None,
            captured_from_ms: None,
            captured_to_ms: None,
            uploaded_from: None,
            uploaded_to: None,
            min_duration: None,
            max_duration: None,
            sort: Sort::Captured,
            ascending: false,
            before: None,
            offset: 0,
            limit: 50,
        }
    }
}

/// The subtitle cue an item was found by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CueHit {
    pub lang: String,
    pub start_ms: u64,
    pub end_ms: u64,
    pub text: String,
}

#[derive(Debug, Clone)]
pub struct Found {
    pub item: Item,
    /// Set when the item was found by its subtitles rather than its own text.
    pub cue: Option<CueHit>,
}

/// Items whose own text, or one of whose subtitle cues, holds every required term; the own
/// text ranks above a cue, and the best cue is kept to say when. Only the asked owner's items
/// are scored.
const SQLITE_HITS: &str = "SELECT item_id, MAX(score) AS score, cue_id FROM ( \
    SELECT d.item_id AS item_id, 1000.0 - bm25(item_search, 10.0, 5.0, 3.0, 1.0) AS score, \
           CAST(NULL AS BIGINT) AS cue_id \
      FROM item_search JOIN search_docs d ON d.doc = item_search.rowid \
      JOIN items fi ON fi.id = d.item_id \
     WHERE item_search MATCH $1 AND ($5 IS NULL OR fi.owner = $5) \
    UNION ALL \
    SELECT i.id, -bm25(cue_search), c.id \
      FROM cue_search JOIN subtitle_cues c ON c.id = cue_search.rowid \
      JOIN items i ON i.video_path = c.video_path \
     WHERE cue_search MATCH $1 AND ($5 IS NULL OR i.owner = $5) \
  ) GROUP BY item_id";

const POSTGRES_HITS: &str = "SELECT DISTINCT ON (item_id) item_id, score, cue_id FROM ( \
    SELECT s.item_id, CAST(1000.0 AS FLOAT8) + ts_rank(s.doc, to_tsquery('simple', $1)) AS score, \
           CAST(NULL AS BIGINT) AS cue_id \
      FROM item_search s JOIN items fi ON fi.id = s.item_id \
     WHERE s.doc @@ to_tsquery('simple', $1) AND ($5 IS NULL OR fi.owner = $5) \
    UNION ALL \
    SELECT i.id, CAST(ts_rank(c.doc, to_tsquery('simple', $1)) AS FLOAT8), c.id \
      FROM subtitle_cues c JOIN items i ON i.video_path = c.video_path \
     WHERE c.doc @@ to_tsquery('simple', $1) AND ($5 IS NULL OR i.owner = $5) \
  ) h ORDER BY item_id, score DESC";

/// An excluded term anywhere in an item (its own text or any cue of its video) excludes it.
const SQLITE_EXCLUDED: &str = "items.id NOT IN (SELECT d.item_id FROM item_search \
    JOIN search_docs d ON d.doc = item_search.rowid WHERE item_search MATCH $17) \
    AND items.video_path NOT IN (SELECT c.video_path FROM cue_search \
    JOIN subtitle_cues c ON c.id = cue_search.rowid WHERE cue_search MATCH $17)";

const POSTGRES_EXCLUDED: &str = "items.id NOT IN (SELECT s.item_id FROM item_search s \
    WHERE s.doc @@ to_tsquery('simple', $17)) \
    AND items.video_path NOT IN (SELECT c.video_path FROM subtitle_cues c \
    WHERE c.doc @@ to_tsquery('simple', $17))";

const FILTERS: &str = "($2 IS NULL OR items.status = $2) AND ($3 IS NULL OR items.platform = $3) \
    AND ($4 IS NULL OR items.kind = $4) AND ($5 IS NULL OR items.owner = $5) \
    AND ($6 IS NULL OR EXISTS (SELECT 1 FROM item_tags t WHERE t.item_id = items.id AND t.tag = $6)) \
    AND ($7 IS NULL OR items.uploader_key = $7) \
    AND ($8 IS NULL OR items.created_at >= $8) AND ($9 IS NULL OR items.created_at < $9) \
    AND ($10 IS NULL OR items.upload_date >= $10) AND ($11 IS NULL OR items.upload_date <= $11) \
    AND ($12 IS NULL OR items.duration_seconds >= $12) AND ($13 IS NULL OR items.duration_seconds <= $13) \
    AND ($14 IS NULL OR items.id < $14)";

fn order(sort: Sort, ascending: bool) -> &'static str {
    match (sort, ascending) {
        (Sort::Relevance, _) => "hit_score DESC, items.id DESC",
        (Sort::Captured, false) => "items.id DESC",
        (Sort::Captured, true) => "items.id ASC",
        (Sort::Uploaded, false) => "items.upload_date DESC NULLS LAST, items.id DESC",
        (Sort::Uploaded, true) => "items.upload_date ASC NULLS LAST, items.id ASC",
        (Sort::Duration, false) => "items.duration_seconds DESC NULLS LAST, items.id DESC",
        (Sort::Duration, true) => "items.duration_seconds ASC NULLS LAST, items.id ASC",
    }
}

/// The statement: `hits` and `excluded` are fixed texts of this file, the sort one of
/// `order`'s; every value is bound.
fn statement(hits: Option<&str>, excluded: Option<&str>, sort: Sort, ascending: bool) -> String {
    let sort = match (hits, sort) {
        (None, Sort::Relevance) => Sort::Captured,
        (_, sort) => sort,
    };
    // `$17` is always used, so the statement takes the same arguments either way.
    let excluded = excluded.map_or("$17 IS NULL".to_string(), |sql| format!("({sql})"));
    let order = order(sort, ascending);
    match hits {
        Some(hits) => format!(
            "SELECT items.*, hits.score AS hit_score, hc.lang AS cue_lang, hc.start_ms AS cue_start, \
             hc.end_ms AS cue_end, hc.text AS cue_text \
             FROM ({hits}) AS hits JOIN items ON items.id = hits.item_id \
             LEFT JOIN subtitle_cues hc ON hc.id = hits.cue_id \
             WHERE {FILTERS} AND {excluded} ORDER BY {order} LIMIT $15 OFFSET $16"
        ),
        None => format!(
            "SELECT items.*, CAST(NULL AS TEXT) AS cue_lang, CAST(NULL AS BIGINT) AS cue_start, \
             CAST(NULL AS BIGINT) AS cue_end, CAST(NULL AS TEXT) AS cue_text FROM items \
             WHERE $1 IS NULL AND {FILTERS} AND {excluded} ORDER BY {order} LIMIT $15 OFFSET $16"
        ),
    }
}

pub async fn find(db: &Db, f: &Find) -> Result<Vec<Found>, DbError> {
    let sqlite = matches!(db, Db::Sqlite(..));
    let (hits, excluded) = match (&f.query, sqlite) {
        (None, _) => (None, None),
        (Some(q), true) => (
            Some(SQLITE_HITS),
            q.to_fts5_excluded().map(|_| SQLITE_EXCLUDED),
        ),
        (Some(q), false) => (
            Some(POSTGRES_HITS),
            q.to_tsquery_excluded().map(|_| POSTGRES_EXCLUDED),
        ),
    };
    let (required, exclude) = match (&f.query, sqlite) {
        (None, _) => (None, None),
        (Some(q), true) => (Some(q.to_fts5_required()), q.to_fts5_excluded()),
        (Some(q), false) => (Some(q.to_tsquery_required()), q.to_tsquery_excluded()),
    };
    let sql = statement(hits, excluded, f.sort, f.ascending);
    let limit = i64::from(f.limit);
    let offset = i64::try_from(f.offset).unwrap_or(i64::MAX);
    on_pool!(db, pool => {
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(required.as_deref())
            .bind(f.status.map(ItemStatus::as_str))
            .bind(f.platform.map(Platform::as_str))
            .bind(f.kind.map(ItemKind::as_str))
            .bind(f.owner.as_deref())
            .bind(f.tag.as_deref())
            .bind(f.uploader.as_deref())
            .bind(f.captured_from_ms)
            .bind(f.captured_to_ms)
            .bind(f.uploaded_from.as_deref())
            .bind(f.uploaded_to.as_deref())
            .bind(f.min_duration)
            .bind(f.max_duration)
            .bind(f.before.map(|id| id.to_string()))
            .bind(limit)
            .bind(offset)
            .bind(exclude.as_deref())
            .fetch_all(pool)
            .await?;
        rows.iter().map(|row| {
            let cue = match row.try_get::<Option<String>, _>("cue_lang")? {
                Some(lang) => Some(CueHit {
                    lang,
                    start_ms: to_u64(row.try_get::<Option<i64>, _>("cue_start")?.unwrap_or(0), "cue start")?,
                    end_ms: to_u64(row.try_get::<Option<i64>, _>("cue_end")?.unwrap_or(0), "cue end")?,
                    text: row.try_get::<Option<String>, _>("cue_text")?.unwrap_or_default(),
                }),
                None => None,
            };
            Ok(Found { item: items::decode(row)?, cue })
        })
        .collect()
    })
}
