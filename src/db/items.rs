//! The `items` table: one row per captured video or stored image.
//!
//! A table module: its own statements only, never another table's (the operations that
//! span tables — recording, outcomes, removal, recovery — sit above, in their own modules).

use sqlx::FromRow;

use super::{Db, DbError, Tx, on_pool, on_tx, to_i64, to_u64};
use crate::domain::layout::MediaPaths;
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
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub completed_at: Option<Timestamp>,
}

#[derive(FromRow)]
struct ItemRow {
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
            created_at: Timestamp::from_millis(row.created_at),
            updated_at: Timestamp::from_millis(row.updated_at),
            completed_at: row.completed_at.map(Timestamp::from_millis),
        })
    }
}

/// A new item row: a capture's (with its URLs) or an import's (with its title).
#[derive(Debug, Clone)]
pub(crate) struct NewItem<'a> {
    pub id: ItemId,
    pub kind: ItemKind,
    pub owner: Option<&'a str>,
    pub source: Source,
    pub source_url: Option<&'a str>,
    pub canonical_url: Option<&'a str>,
    pub platform: Platform,
    pub platform_media_id: Option<&'a str>,
    pub title: Option<&'a str>,
    pub paths: &'a MediaPaths,
}

// ON CONFLICT without a target: either dedup key (canonical URL, platform media id) may be
// the one another transaction just took. Imports have neither, so they never conflict.
const INSERT_ITEM: &str = "INSERT INTO items (id, owner, source, source_url, canonical_url, platform, \
     platform_media_id, status, title, video_path, thumb_small_path, thumb_medium_path, \
     thumb_large_path, created_at, updated_at, kind) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, 'queued', $8, $9, $10, $11, $12, $13, $13, $14) \
     ON CONFLICT DO NOTHING RETURNING id";

/// Inserts a queued item; false when a dedup key was taken meanwhile (nothing inserted).
pub(crate) async fn insert(
    tx: &mut Tx,
    new: &NewItem<'_>,
    now: Timestamp,
) -> Result<bool, DbError> {
    let inserted: Option<String> = on_tx!(tx, conn => sqlx::query_scalar(INSERT_ITEM)
        .bind(new.id.to_string())
        .bind(new.owner)
        .bind(new.source.as_str())
        .bind(new.source_url)
        .bind(new.canonical_url)
        .bind(new.platform.as_str())
        .bind(new.platform_media_id)
        .bind(new.title)
        .bind(&new.paths.file)
        .bind(&new.paths.thumb_small)
        .bind(&new.paths.thumb_medium)
        .bind(&new.paths.thumb_large)
        .bind(now.as_millis())
        .bind(new.kind.as_str())
        .fetch_optional(conn)
        .await)?;
    Ok(inserted.is_some())
}

/// The item of the same video: same canonical URL, or same platform media id.
pub(crate) async fn same_video(
    tx: &mut Tx,
    canonical_url: &str,
    platform: Platform,
    platform_media_id: Option<&str>,
) -> Result<Option<Item>, DbError> {
    let row: Option<ItemRow> = on_tx!(tx, conn => sqlx::query_as(
        "SELECT * FROM items WHERE canonical_url = $1 \
         OR (platform = $2 AND platform_media_id IS NOT NULL AND platform_media_id = $3) \
         ORDER BY id LIMIT 1")
        .bind(canonical_url)
        .bind(platform.as_str())
        .bind(platform_media_id)
        .fetch_optional(conn)
        .await)?;
    row.map(Item::try_from).transpose()
}

/// Queues a failed or cancelled item again (its progress and error cleared); false when the
/// item is in any other state.
pub(crate) async fn reopen(tx: &mut Tx, id: ItemId, now: Timestamp) -> Result<bool, DbError> {
    let reopened: Option<String> = on_tx!(tx, conn => sqlx::query_scalar(
        "UPDATE items SET status = 'queued', stage = NULL, progress_percent = NULL, \
         downloaded_bytes = NULL, total_bytes = NULL, error_code = NULL, error_message = NULL, \
         updated_at = $2 WHERE id = $1 AND status IN ('failed', 'cancelled') RETURNING id")
        .bind(id.to_string())
        .bind(now.as_millis())
        .fetch_optional(conn)
        .await)?;
    Ok(reopened.is_some())
}

/// How many other items share the file at `path` (same content).
pub(crate) async fn sharers(tx: &mut Tx, path: &str, except: ItemId) -> Result<u64, DbError> {
    let sharers: i64 = on_tx!(tx, conn => sqlx::query_scalar(
        "SELECT COUNT(*) FROM items WHERE video_path = $1 AND id <> $2")
        .bind(path)
        .bind(except.to_string())
        .fetch_one(conn)
        .await)?;
    to_u64(sharers, "sharers")
}

/// Deletes the item's row; its jobs and renditions go with it (foreign keys cascade).
pub(crate) async fn delete_row(tx: &mut Tx, id: ItemId) -> Result<(), DbError> {
    on_tx!(tx, conn => sqlx::query("DELETE FROM items WHERE id = $1")
        .bind(id.to_string())
        .execute(conn)
        .await
        .map(|done| done.rows_affected()))?;
    Ok(())
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
    pub limit: u32,
}

/// Items newest first.
pub async fn list(db: &Db, filter: &ListFilter) -> Result<Vec<Item>, DbError> {
    let rows: Vec<ItemRow> = on_pool!(db, pool => sqlx::query_as(
        "SELECT * FROM items WHERE ($1 IS NULL OR status = $1) AND ($2 IS NULL OR platform = $2) \
         AND ($3 IS NULL OR id < $3) ORDER BY id DESC LIMIT $4")
        .bind(filter.status.map(ItemStatus::as_str))
        .bind(filter.platform.map(Platform::as_str))
        .bind(filter.before.map(|id| id.to_string()))
        .bind(i64::from(filter.limit))
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

/// How many items are in each status (statuses without items are absent).
pub async fn count_by_status(db: &Db) -> Result<Vec<(ItemStatus, u64)>, DbError> {
    let rows: Vec<(String, i64)> = on_pool!(db, pool => sqlx::query_as(
        "SELECT status, COUNT(*) FROM items GROUP BY status")
        .fetch_all(pool)
        .await)?;
    rows.into_iter()
        .map(|(status, count)| {
            let status = ItemStatus::parse(&status)
                .ok_or_else(|| DbError::Corrupt(format!("item status '{status}'")))?;
            Ok((status, to_u64(count, "count")?))
        })
        .collect()
}

/// Records the stage and progress of a running item (its status follows from the stage).
pub async fn set_progress(
    db: &Db,
    id: ItemId,
    progress: &Progress,
    now: Timestamp,
) -> Result<(), DbError> {
    let mut tx = db.begin_write().await?;
    on_tx!(&mut tx, conn => sqlx::query(
        "UPDATE items SET status = $2, stage = $3, progress_percent = $4, downloaded_bytes = $5, \
         total_bytes = $6, updated_at = $7 \
         WHERE id = $1 AND status NOT IN ('completed', 'failed', 'cancelled')")
        .bind(id.to_string())
        .bind(progress.stage.item_status().as_str())
        .bind(progress.stage.as_str())
        .bind(progress.percent)
        .bind(progress.downloaded_bytes.map(to_i64))
        .bind(progress.total_bytes.map(to_i64))
        .bind(now.as_millis())
        .execute(conn)
        .await.map(|done| done.rows_affected()))?;
    tx.commit().await
}

/// The finished item's facts, written in the same transaction as its job's completion.
#[derive(Debug, Clone)]
pub struct Completion {
    pub title: Option<String>,
    pub media: MediaInfo,
    pub size_bytes: u64,
    pub thumbnails_bytes: u64,
    pub sha256: String,
    pub warnings: Vec<String>,
    /// The files of an item with the same content, which this one shares instead of
    /// keeping a copy; `None` when the item's own files were stored.
    pub shared_paths: Option<MediaPaths>,
}

pub(crate) async fn mark_completed(
    tx: &mut Tx,
    id: ItemId,
    done: &Completion,
    now: Timestamp,
) -> Result<(), DbError> {
    let m = &done.media;
    on_tx!(tx, conn => sqlx::query(
        "UPDATE items SET status = 'completed', stage = NULL, progress_percent = NULL, \
         downloaded_bytes = NULL, total_bytes = NULL, error_code = NULL, error_message = NULL, \
         title = $2, duration_seconds = $3, width = $4, height = $5, video_codec = $6, \
         audio_codec = $7, bitrate_bps = $8, fps = $9, container = $10, size_bytes = $11, \
         sha256 = $12, updated_at = $13, completed_at = $13, thumbnails_bytes = $14, warnings = $15, \
         video_path = COALESCE($16, video_path), thumb_small_path = COALESCE($17, thumb_small_path), \
         thumb_medium_path = COALESCE($18, thumb_medium_path), thumb_large_path = COALESCE($19, thumb_large_path) \
         WHERE id = $1")
        .bind(id.to_string())
        .bind(done.title.as_deref())
        .bind(m.duration_seconds)
        .bind(i64::from(m.width))
        .bind(i64::from(m.height))
        .bind(&m.video_codec)
        .bind(m.audio_codec.as_deref())
        .bind(m.bitrate_bps.map(to_i64))
        .bind(m.fps)
        .bind(&m.container)
        .bind(to_i64(done.size_bytes))
        .bind(&done.sha256)
        .bind(now.as_millis())
        .bind(to_i64(done.thumbnails_bytes))
        .bind((!done.warnings.is_empty()).then(|| serde_json::to_string(&done.warnings).unwrap_or_default()))
        .bind(done.shared_paths.as_ref().map(|p| p.file.as_str()))
        .bind(done.shared_paths.as_ref().map(|p| p.thumb_small.as_str()))
        .bind(done.shared_paths.as_ref().map(|p| p.thumb_medium.as_str()))
        .bind(done.shared_paths.as_ref().map(|p| p.thumb_large.as_str()))
        .execute(conn)
        .await.map(|done| done.rows_affected()))?;
    Ok(())
}

/// Moves the item to a terminal failure state with its reason.
pub(crate) async fn mark_failed(
    tx: &mut Tx,
    id: ItemId,
    status: ItemStatus,
    error: &JobError,
    now: Timestamp,
) -> Result<(), DbError> {
    on_tx!(tx, conn => sqlx::query(
        "UPDATE items SET status = $2, stage = NULL, progress_percent = NULL, \
         downloaded_bytes = NULL, total_bytes = NULL, error_code = $3, error_message = $4, \
         updated_at = $5 WHERE id = $1")
        .bind(id.to_string())
        .bind(status.as_str())
        .bind(error.code.as_str())
        .bind(&error.message)
        .bind(now.as_millis())
        .execute(conn)
        .await.map(|done| done.rows_affected()))?;
    Ok(())
}

/// Puts the item back to `queued` while its job waits for another attempt.
pub(crate) async fn mark_queued(tx: &mut Tx, id: ItemId, now: Timestamp) -> Result<(), DbError> {
    on_tx!(tx, conn => sqlx::query(
        "UPDATE items SET status = 'queued', stage = NULL, progress_percent = NULL, \
         downloaded_bytes = NULL, total_bytes = NULL, updated_at = $2 \
         WHERE id = $1 AND status NOT IN ('completed', 'failed', 'cancelled')")
        .bind(id.to_string())
        .bind(now.as_millis())
        .execute(conn)
        .await.map(|done| done.rows_affected()))?;
    Ok(())
}

/// Files and bytes of one kind of stored media.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    pub files: u64,
    pub bytes: u64,
}

/// What the database says is stored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoredUsage {
    pub videos: Tally,
    pub images: Tally,
    pub thumbnails: Tally,
    pub renditions: Tally,
}

impl StoredUsage {
    /// Everything the vault keeps: videos, images, renditions and thumbnails. The one total
    /// every report (the API's stats, the bot's /stats, metrics) shows as "stored".
    pub fn stored_bytes(&self) -> u64 {
        self.videos.bytes + self.images.bytes + self.renditions.bytes + self.thumbnails.bytes
    }
}

pub async fn stored_usage(db: &Db) -> Result<StoredUsage, DbError> {
    // Items sharing one file (same content) count it once.
    let by_kind: Vec<(String, i64, Option<i64>, Option<i64>)> = on_pool!(db, pool => sqlx::query_as(
        "SELECT kind, COUNT(*), CAST(SUM(size_bytes) AS BIGINT), CAST(SUM(thumbnails_bytes) AS BIGINT) \
         FROM (SELECT video_path, MAX(kind) AS kind, MAX(size_bytes) AS size_bytes, \
                      MAX(thumbnails_bytes) AS thumbnails_bytes \
               FROM items WHERE status = 'completed' GROUP BY video_path) AS stored \
         GROUP BY kind")
        .fetch_all(pool)
        .await)?;
    let (renditions, rendition_bytes): (i64, Option<i64>) = on_pool!(db, pool => sqlx::query_as(
        "SELECT COUNT(*), CAST(SUM(size_bytes) AS BIGINT) FROM renditions")
        .fetch_one(pool)
        .await)?;
    let n = |v: i64| to_u64(v, "count");
    let mut usage = StoredUsage {
        renditions: Tally {
            files: n(renditions)?,
            bytes: n(rendition_bytes.unwrap_or(0))?,
        },
        ..StoredUsage::default()
    };
    for (kind, files, bytes, thumb_bytes) in by_kind {
        let tally = Tally {
            files: n(files)?,
            bytes: n(bytes.unwrap_or(0))?,
        };
        match ItemKind::parse(&kind) {
            Some(ItemKind::Video) => usage.videos = tally,
            Some(ItemKind::Image) => usage.images = tally,
            // A kind from a newer version: its files are not ours to count.
            None => continue,
        }
        usage.thumbnails.files += 3 * tally.files;
        usage.thumbnails.bytes += n(thumb_bytes.unwrap_or(0))?;
    }
    Ok(usage)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stored_total_counts_every_kind_the_vault_keeps() {
        let tally = |files, bytes| Tally { files, bytes };
        let usage = StoredUsage {
            videos: tally(2, 1000),
            images: tally(1, 300),
            thumbnails: tally(9, 60),
            renditions: tally(1, 400),
        };
        assert_eq!(usage.stored_bytes(), 1760);
    }
}
