//! The search and the filtered listing: matching items, ranked or sorted, on either database.
//!
//! With a query, the items whose own text matches and the items whose video has a matching
//! subtitle cue are found (the cue kept, to say when); the filters and the sort then apply
//! to `items` as for a plain listing. By relevance, the newest [`RANK_WINDOW`] matches of
//! each index are ranked (an item's own text above a cue) and come first; the rest, when a
//! term is that common, follow newest first (`find_sql` says why). Below the window every
//! match is ranked, so the order is the full ranking. The statements are in `find_sql`.

use sqlx::Row;

use super::super::items::{self, Item};
use super::super::{Db, DbError, on_pool, to_u64};
use super::find_sql::{self, Backend, RANK_WINDOW};
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

/// How the ranked window of a search came out.
#[derive(Debug, Clone, Copy)]
struct WindowCounts {
    /// Matches in each index's window: a full window may have left matches out.
    own: i64,
    cue: i64,
    /// The window's items that pass the filters: the ranked part of the whole order.
    ranked: i64,
}

impl WindowCounts {
    fn full(self, window: i64) -> bool {
        self.own >= window || self.cue >= window
    }
}

/// One statement's answer: the items, and the window's counts when it gives them.
struct Answer {
    found: Vec<Found>,
    counts: Option<WindowCounts>,
}

pub async fn find(db: &Db, f: &Find) -> Result<Vec<Found>, DbError> {
    find_with_window(db, f, RANK_WINDOW).await
}

/// [`find`] with another ranking window: the newest `window` matches of each index are
/// ranked, the rest follow newest first (tests walk the window's edge with a small one).
pub async fn find_with_window(db: &Db, f: &Find, window: i64) -> Result<Vec<Found>, DbError> {
    let size = window.max(1);
    let backend = match db {
        Db::Sqlite(..) => Backend::Sqlite,
        Db::Postgres(_) => Backend::Postgres,
    };
    let mut ask = Asker {
        db,
        f,
        terms: None,
        window: None,
    };
    let Some(query) = &f.query else {
        return Ok(ask
            .page(find_sql::listing(backend, f.sort, f.ascending))
            .await?
            .found);
    };
    let (required, excluded, whole) = match backend {
        Backend::Sqlite => (
            query.to_fts5_required(),
            query.to_fts5_excluded(),
            query.to_fts5(),
        ),
        Backend::Postgres => (
            query.to_tsquery_required(),
            query.to_tsquery_excluded(),
            query.to_tsquery(),
        ),
    };
    ask.terms = Some(Terms {
        required: &required,
        excluded: excluded.as_deref(),
    });
    let excludes = excluded.is_some();
    if f.sort != Sort::Relevance {
        let sql = find_sql::sorted_matches(backend, excludes, f.sort, f.ascending);
        return Ok(ask.page(sql).await?.found);
    }
    ask.window = Some((size, whole.as_str()));
    let wanted = f.limit as usize;
    // Own text ranks above every cue: when its window fills the page, that is the page.
    let own = ask
        .page(find_sql::ranked_page(backend, excludes, true))
        .await?;
    if own.found.len() >= wanted {
        return Ok(own.found);
    }
    let page = ask
        .page(find_sql::ranked_page(backend, excludes, false))
        .await?;
    let mut found = page.found;
    if found.len() >= wanted {
        return Ok(found);
    }
    let counts = match page.counts {
        Some(counts) => counts,
        None => {
            ask.counts(find_sql::ranked_counts(backend, excludes))
                .await?
        }
    };
    if counts.full(size) {
        // The page reaches past the ranked items: the rest follow, newest first.
        let ranked = u64::try_from(counts.ranked).unwrap_or(0);
        let offset = f.offset.saturating_sub(ranked);
        let limit = u32::try_from(wanted - found.len()).unwrap_or(u32::MAX);
        let sql = find_sql::past_window(backend, excludes);
        found.extend(ask.at(sql, offset, limit).await?.found);
    }
    Ok(found)
}

/// A search's terms in the database's syntax.
#[derive(Clone, Copy)]
struct Terms<'a> {
    required: &'a str,
    excluded: Option<&'a str>,
}

/// Binds `$1`–`$17` (and `$18`–`$19`, the window and the whole query, when given) in the
/// order `find_sql` numbers them.
macro_rules! bind_all {
    ($query:expr, $f:expr, $terms:expr, $window:expr, $offset:expr, $limit:expr) => {{
        let mut query = $query
            .bind($terms.map(|t: Terms<'_>| t.required))
            .bind($f.status.map(ItemStatus::as_str))
            .bind($f.platform.map(Platform::as_str))
            .bind($f.kind.map(ItemKind::as_str))
            .bind($f.owner.as_deref())
            .bind($f.tag.as_deref())
            .bind($f.uploader.as_deref())
            .bind($f.captured_from_ms)
            .bind($f.captured_to_ms)
            .bind($f.uploaded_from.as_deref())
            .bind($f.uploaded_to.as_deref())
            .bind($f.min_duration)
            .bind($f.max_duration)
            .bind($f.before.map(|id| id.to_string()))
            .bind(i64::from($limit))
            .bind(i64::try_from($offset).unwrap_or(i64::MAX))
            .bind($terms.and_then(|t: Terms<'_>| t.excluded));
        if let Some((size, whole)) = $window {
            query = query.bind(size).bind(whole);
        }
        query
    }};
}

/// What every statement of one search is asked with.
struct Asker<'a> {
    db: &'a Db,
    f: &'a Find,
    terms: Option<Terms<'a>>,
    window: Option<(i64, &'a str)>,
}

impl Asker<'_> {
    /// The page `f` asks for.
    async fn page(&self, sql: String) -> Result<Answer, DbError> {
        self.at(sql, self.f.offset, self.f.limit).await
    }

    async fn at(&self, sql: String, offset: u64, limit: u32) -> Result<Answer, DbError> {
        let (f, terms, window) = (self.f, self.terms, self.window);
        on_pool!(self.db, pool => {
            let rows = bind_all!(sqlx::query(sqlx::AssertSqlSafe(sql)), f, terms, window, offset, limit)
                .fetch_all(pool)
                .await?;
            let counts = match rows.first() {
                Some(row) if row.try_get::<i64, _>("ranked_n").is_ok() => Some(window_counts(row)?),
                _ => None,
            };
            let found = rows.iter().map(found).collect::<Result<Vec<_>, DbError>>()?;
            Ok(Answer { found, counts })
        })
    }

    async fn counts(&self, sql: String) -> Result<WindowCounts, DbError> {
        let (f, terms, window) = (self.f, self.terms, self.window);
        on_pool!(self.db, pool => {
            let row = bind_all!(sqlx::query(sqlx::AssertSqlSafe(sql)), f, terms, window, 0u64, 0u32)
                .fetch_one(pool)
                .await?;
            window_counts(&row)
        })
    }
}

fn window_counts<R: Row>(row: &R) -> Result<WindowCounts, DbError>
where
    for<'c> &'c str: sqlx::ColumnIndex<R>,
    i64: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    Ok(WindowCounts {
        own: row.try_get("own_n")?,
        cue: row.try_get("cue_n")?,
        ranked: row.try_get("ranked_n")?,
    })
}

fn found<R: Row>(row: &R) -> Result<Found, DbError>
where
    for<'c> &'c str: sqlx::ColumnIndex<R>,
    i64: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    Option<i64>: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    Option<String>: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    items::ItemRow: for<'r> sqlx::FromRow<'r, R>,
{
    let cue = match row.try_get::<Option<String>, _>("cue_lang")? {
        Some(lang) => Some(CueHit {
            lang,
            start_ms: to_u64(
                row.try_get::<Option<i64>, _>("cue_start")?.unwrap_or(0),
                "cue start",
            )?,
            end_ms: to_u64(
                row.try_get::<Option<i64>, _>("cue_end")?.unwrap_or(0),
                "cue end",
            )?,
            text: row
                .try_get::<Option<String>, _>("cue_text")?
                .unwrap_or_default(),
        }),
        None => None,
    };
    Ok(Found {
        item: items::decode(row)?,
        cue,
    })
}
