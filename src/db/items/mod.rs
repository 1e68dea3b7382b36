//! The `items` table: one row per captured video or stored image.
//!
//! A table module: its own statements only, never another table's (the operations that
//! span tables — recording, outcomes, removal, recovery — sit above, in their own modules).

use sqlx::FromRow;

mod usage;
mod write;

pub use usage::{StoredUsage, Tally, stored_usage};
pub use write::{Completion, set_progress};
pub(crate) use write::{
    NewItem, completed_names, delete_row, insert, lock_sharing, mark_completed, mark_failed,
    mark_queued, names_file, reopen, same_video, set_user_fields, sharers,
};

use super::{Db, DbError, Tx, on_pool, on_tx, to_u64};
use crate::domain::encoding::Encoding;
use crate::domain::layout::MediaPaths;
use crate::domain::source_meta::SourceMeta;
use crate::domain::subtitle_track::SubtitleTrack;
use crate::domain::user_fields::UserFields;
use crate::domain::{
    ErrorCode, ItemId, ItemKind, ItemStatus, JobError, MediaInfo, Platform, Progress, Source,
    Stage, Timestamp,
};

/// An item as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    pub id: ItemId,
    pub kind: ItemKind,
    pub owner: Option<String>,
    pub source: Source,
    pub source_url: Option<String>,
    pub canonical_url: Option<String>,
    pub platform: Platform,
    pub platform_media_id: Option<String>,
    pub status: ItemStatus,
    /// Set while the item is being worked on.
    pub progress: Option<Progress>,
    /// Set when the item failed or was cancelled.
    pub error: Option<JobError>,
    pub title: Option<String>,
    /// Set once completed.
    pub media: Option<MediaInfo>,
    pub size_bytes: Option<u64>,
    pub thumbnails_bytes: Option<u64>,
    pub sha256: Option<String>,
    pub paths: MediaPaths,
    /// Things a person should know (a download far below the announced resolution, say).
    pub warnings: Vec<String>,
    /// How a completed video's file was made from the source.
    pub encoding: Option<Encoding>,
    /// What the source said about it beyond the title (empty until completed).
    pub source_meta: SourceMeta,
    /// The video's subtitle sidecars (`layout::subtitle_path` of its file and each language).
    pub subtitles: Vec<SubtitleTrack>,
    /// What the owner added: their title, tags and note.
    pub user: UserFields,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub completed_at: Option<Timestamp>,
}

#[derive(FromRow)]
pub(crate) struct ItemRow {
    id: String,
    kind: String,
    owner: Option<String>,
    source: String,
    source_url: Option<String>,
    canonical_url: Option<String>,
    platform: String,
    platform_media_id: Option<String>,
    status: String,
    stage: Option<String>,
    progress_percent: Option<f64>,
    downloaded_bytes: Option<i64>,
    total_bytes: Option<i64>,
    error_code: Option<String>,
    error_message: Option<String>,
    title: Option<String>,
    duration_seconds: Option<f64>,
    width: Option<i64>,
    height: Option<i64>,
    video_codec: Option<String>,
    audio_codec: Option<String>,
    bitrate_bps: Option<i64>,
    fps: Option<f64>,
    container: Option<String>,
    size_bytes: Option<i64>,
    thumbnails_bytes: Option<i64>,
    sha256: Option<String>,
    warnings: Option<String>,
    #[sqlx(default)]
    encoding: Option<String>,
    #[sqlx(default)]
    source_meta: Option<String>,
    #[sqlx(default)]
    subtitles: Option<String>,
    #[sqlx(default)]
    user_title: Option<String>,
    #[sqlx(default)]
    user_tags: Option<String>,
    #[sqlx(default)]
    note: Option<String>,
    video_path: String,
    thumb_small_path: String,
    thumb_medium_path: String,
    thumb_large_path: String,
    created_at: i64,
    updated_at: i64,
    completed_at: Option<i64>,
}

impl TryFrom<ItemRow> for Item {
    type Error = DbError;

    fn try_from(row: ItemRow) -> Result<Self, DbError> {
        let corrupt = |what: &str, value: &str| DbError::Corrupt(format!("item {what} '{value}'"));
        let opt_u64 = |v: Option<i64>, what: &str| v.map(|v| to_u64(v, what)).transpose();
        let progress = match row.stage.as_deref().and_then(Stage::parse) {
            Some(stage) => Some(Progress {
                stage,
                percent: row.progress_percent,
                downloaded_bytes: opt_u64(row.downloaded_bytes, "downloaded_bytes")?,
                total_bytes: opt_u64(row.total_bytes, "total_bytes")?,
            }),
            None => None,
        };
        // A completed video always has a duration; an image never does.
        let media = match (row.width, row.height, row.video_codec) {
            (Some(w), Some(h), Some(video_codec)) => Some(MediaInfo {
                duration_seconds: row.duration_seconds,
                width: u32::try_from(w).map_err(|_| corrupt("width", &w.to_string()))?,
                height: u32::try_from(h).map_err(|_| corrupt("height", &h.to_string()))?,
                video_codec,
                audio_codec: row.audio_codec,
                bitrate_bps: opt_u64(row.bitrate_bps, "bitrate")?,
                fps: row.fps,
                container: row.container.unwrap_or_default(),
            }),
            _ => None,
        };
        Ok(Item {
            id: ItemId::parse(&row.id).map_err(|_| corrupt("id", &row.id))?,
            kind: ItemKind::parse(&row.kind).ok_or_else(|| corrupt("kind", &row.kind))?,
            owner: row.owner,
            source: Source::parse(&row.source).ok_or_else(|| corrupt("source", &row.source))?,
            source_url: row.source_url,
            canonical_url: row.canonical_url,
            platform: Platform::parse(&row.platform)
                .ok_or_else(|| corrupt("platform", &row.platform))?,
            platform_media_id: row.platform_media_id,
            status: ItemStatus::parse(&row.status).ok_or_else(|| corrupt("status", &row.status))?,
            progress,
            error: row.error_code.map(|code| {
                JobError::new(
                    ErrorCode::parse(&code),
                    row.error_message.unwrap_or_default(),
                )
            }),
            title: row.title,
            media,
            size_bytes: opt_u64(row.size_bytes, "size")?,
            thumbnails_bytes: opt_u64(row.thumbnails_bytes, "thumbnails size")?,
            sha256: row.sha256,
            paths: MediaPaths {
                file: row.video_path,
                thumb_small: row.thumb_small_path,
                thumb_medium: row.thumb_medium_path,
                thumb_large: row.thumb_large_path,
            },
            warnings: row
                .warnings
                .and_then(|w| serde_json::from_str(&w).ok())
                .unwrap_or_default(),
            encoding: row
                .encoding
                .map(|e| serde_json::from_str(&e).map_err(|_| corrupt("encoding", &e)))
                .transpose()?,
            // Written by this module from a checked value; one that cannot be read is shown
            // as "the source said nothing" rather than hiding the item.
            source_meta: row
                .source_meta
                .and_then(|s| serde_json::from_str(&s).ok())
                .unwrap_or_default(),
            // Lists written by this module from checked values; one that cannot be read (a
            // row from another version) shows as empty rather than hiding the item.
            subtitles: row
                .subtitles
                .and_then(|s| serde_json::from_str(&s).ok())
                .unwrap_or_default(),
            user: UserFields {
                title: row.user_title,
                tags: row
                    .user_tags
                    .and_then(|t| serde_json::from_str(&t).ok())
                    .unwrap_or_default(),
                note: row.note,
            },
            created_at: Timestamp::from_millis(row.created_at),
            updated_at: Timestamp::from_millis(row.updated_at),
            completed_at: row.completed_at.map(Timestamp::from_millis),
        })
    }
}

/// An item from a row of a query that selects `items.*` (and perhaps more columns).
pub(crate) fn decode<'r, R: sqlx::Row>(row: &'r R) -> Result<Item, DbError>
where
    ItemRow: FromRow<'r, R>,
{
    Item::try_from(ItemRow::from_row(row)?)
}

pub(crate) async fn get_in(tx: &mut Tx, id: ItemId) -> Result<Option<Item>, DbError> {
    let row: Option<ItemRow> = on_tx!(tx, conn => sqlx::query_as("SELECT * FROM items WHERE id = $1")
        .bind(id.to_string())
        .fetch_optional(conn)
        .await)?;
    row.map(Item::try_from).transpose()
}

pub async fn get(db: &Db, id: ItemId) -> Result<Option<Item>, DbError> {
    let row: Option<ItemRow> = on_pool!(db, pool => sqlx::query_as("SELECT * FROM items WHERE id = $1")
        .bind(id.to_string())
        .fetch_optional(pool)
        .await)?;
    row.map(Item::try_from).transpose()
}

/// Filters of the item listing. `before` is the keyset cursor: ids sort by creation time, so
/// "older than this id" pages stably while new items arrive.
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    pub status: Option<ItemStatus>,
    pub platform: Option<Platform>,
    pub before: Option<ItemId>,
    /// Only this owner's items (a user id); `None`: everyone's (admins).
    pub owner: Option<String>,
    pub limit: u32,
}

/// Items newest first.
pub async fn list(db: &Db, filter: &ListFilter) -> Result<Vec<Item>, DbError> {
    let rows: Vec<ItemRow> = on_pool!(db, pool => sqlx::query_as(
        "SELECT * FROM items WHERE ($1 IS NULL OR status = $1) AND ($2 IS NULL OR platform = $2) \
         AND ($3 IS NULL OR id < $3) AND ($5 IS NULL OR owner = $5) ORDER BY id DESC LIMIT $4")
        .bind(filter.status.map(ItemStatus::as_str))
        .bind(filter.platform.map(Platform::as_str))
        .bind(filter.before.map(|id| id.to_string()))
        .bind(i64::from(filter.limit))
        .bind(filter.owner.as_deref())
        .fetch_all(pool)
        .await)?;
    rows.into_iter().map(Item::try_from).collect()
}

/// The newest `limit` items of `owner`.
pub async fn recent_of_owner(db: &Db, owner: &str, limit: u32) -> Result<Vec<Item>, DbError> {
    let rows: Vec<ItemRow> = on_pool!(db, pool => sqlx::query_as(
        "SELECT * FROM items WHERE owner = $1 ORDER BY id DESC LIMIT $2")
        .bind(owner)
        .bind(i64::from(limit))
        .fetch_all(pool)
        .await)?;
    rows.into_iter().map(Item::try_from).collect()
}

/// The ids of every item of `owner`.
pub async fn ids_of_owner(db: &Db, owner: &str) -> Result<Vec<ItemId>, DbError> {
    let rows: Vec<(String,)> = on_pool!(db, pool => sqlx::query_as(
        "SELECT id FROM items WHERE owner = $1 ORDER BY id")
        .bind(owner)
        .fetch_all(pool)
        .await)?;
    rows.into_iter()
        .map(|(id,)| ItemId::parse(&id).map_err(|e| DbError::Corrupt(format!("items.id: {e}"))))
        .collect()
}

/// How many items are in each status (statuses without items are absent).
pub async fn count_by_status(db: &Db) -> Result<Vec<(ItemStatus, u64)>, DbError> {
    let rows: Vec<(String, i64)> = on_pool!(db, pool => sqlx::query_as(
        "SELECT status, COUNT(*) FROM items GROUP BY status")
        .fetch_all(pool)
        .await)?;
    status_counts(rows)
}

/// How many of `owner`'s items are in each status.
pub async fn count_by_status_of(db: &Db, owner: &str) -> Result<Vec<(ItemStatus, u64)>, DbError> {
    let rows: Vec<(String, i64)> = on_pool!(db, pool => sqlx::query_as(
        "SELECT status, COUNT(*) FROM items WHERE owner = $1 GROUP BY status")
        .bind(owner)
        .fetch_all(pool)
        .await)?;
    status_counts(rows)
}

fn status_counts(rows: Vec<(String, i64)>) -> Result<Vec<(ItemStatus, u64)>, DbError> {
    rows.into_iter()
        .map(|(status, count)| {
            let status = ItemStatus::parse(&status)
                .ok_or_else(|| DbError::Corrupt(format!("item status '{status}'")))?;
            Ok((status, to_u64(count, "count")?))
        })
        .collect()
}

/// A completed item whose video has this content, other than `except` (content dedup).
pub async fn completed_with_content(
    db: &Db,
    sha256: &str,
    except: ItemId,
) -> Result<Option<Item>, DbError> {
    let row: Option<ItemRow> = on_pool!(db, pool => sqlx::query_as(
        "SELECT * FROM items WHERE sha256 = $1 AND status = 'completed' AND id <> $2 ORDER BY id LIMIT 1")
        .bind(sha256)
        .bind(except.to_string())
        .fetch_optional(pool)
        .await)?;
    row.map(Item::try_from).transpose()
}
