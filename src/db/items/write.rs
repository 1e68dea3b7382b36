//! Writing item rows: the one INSERT (captures and imports alike), reopening, progress, the
//! changes an attempt's outcome makes, deleting.

use crate::db::Db;
use crate::db::{DbError, Tx, on_tx, to_i64, to_u64};
use crate::domain::encoding::Encoding;
use crate::domain::layout::MediaPaths;
use crate::domain::source_meta::SourceMeta;
use crate::domain::subtitle_track::{SubtitleLang, SubtitleTrack};
use crate::domain::subtitles::Cue;
use crate::domain::user_fields::UserFields;
use crate::domain::{
    ItemId, ItemKind, ItemStatus, JobError, MediaInfo, Platform, Progress, Source, Timestamp,
};

use super::{Item, ItemRow};

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

/// The item of the same video: same canonical URL, or same platform media id. The row is
/// locked until the transaction ends, so a delete or another resubmission in a concurrent
/// transaction is ordered entirely before or after the caller's (SQLite's write transaction
/// holds the whole database already; PostgreSQL needs `FOR UPDATE`, and skips a row a
/// concurrent transaction deleted while this one waited).
pub(crate) async fn same_video(
    tx: &mut Tx,
    owner: Option<&str>,
    canonical_url: &str,
    platform: Platform,
    platform_media_id: Option<&str>,
) -> Result<Option<Item>, DbError> {
    const FIND: &str = "SELECT * FROM items WHERE owner = $4 AND (canonical_url = $1 \
         OR (platform = $2 AND platform_media_id IS NOT NULL AND platform_media_id = $3)) \
         ORDER BY id LIMIT 1";
    const FIND_AND_LOCK: &str = "SELECT * FROM items WHERE owner = $4 AND (canonical_url = $1 \
         OR (platform = $2 AND platform_media_id IS NOT NULL AND platform_media_id = $3)) \
         ORDER BY id LIMIT 1 FOR UPDATE";
    let row: Option<ItemRow> = match tx {
        Tx::Sqlite(tx, _) => {
            sqlx::query_as(FIND)
                .bind(canonical_url)
                .bind(platform.as_str())
                .bind(platform_media_id)
                .bind(owner)
                .fetch_optional(&mut **tx)
                .await?
        }
        Tx::Postgres(tx) => {
            sqlx::query_as(FIND_AND_LOCK)
                .bind(canonical_url)
                .bind(platform.as_str())
                .bind(platform_media_id)
                .bind(owner)
                .fetch_optional(&mut **tx)
                .await?
        }
    };
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

/// Locks, until the transaction ends, every item naming the file at `path` (PostgreSQL; a
/// SQLite write transaction holds the whole database already). Two deletes of the last two
/// items sharing a file then run one after the other, and the second sees it must go.
pub(crate) async fn lock_sharing(tx: &mut Tx, path: &str) -> Result<(), DbError> {
    if let Tx::Postgres(conn) = tx {
        sqlx::query("SELECT id FROM items WHERE video_path = $1 ORDER BY id FOR UPDATE")
            .bind(path)
            .fetch_all(&mut **conn)
            .await?;
    }
    Ok(())
}

/// Whether a completed item still names the file at `path`; that item is locked against a
/// concurrent delete until the transaction ends (PostgreSQL).
pub(crate) async fn completed_names(tx: &mut Tx, path: &str) -> Result<bool, DbError> {
    const FIND: &str =
        "SELECT id FROM items WHERE video_path = $1 AND status = 'completed' ORDER BY id LIMIT 1";
    let found: Option<String> = match tx {
        Tx::Sqlite(conn, _) => {
            sqlx::query_scalar(FIND)
                .bind(path)
                .fetch_optional(&mut **conn)
                .await?
        }
        Tx::Postgres(conn) => {
            sqlx::query_scalar(sqlx::AssertSqlSafe(format!("{FIND} FOR SHARE")))
                .bind(path)
                .fetch_optional(&mut **conn)
                .await?
        }
    };
    Ok(found.is_some())
}

/// Whether an item other than `except` names `path` as its file or one of its thumbnails.
pub(crate) async fn names_file(tx: &mut Tx, path: &str, except: ItemId) -> Result<bool, DbError> {
    let found: Option<String> = on_tx!(tx, conn => sqlx::query_scalar(
        "SELECT id FROM items WHERE id <> $2 AND (video_path = $1 OR thumb_small_path = $1 \
         OR thumb_medium_path = $1 OR thumb_large_path = $1) LIMIT 1")
        .bind(path)
        .bind(except.to_string())
        .fetch_optional(conn)
        .await)?;
    Ok(found.is_some())
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
    /// How the stored video was made from the source (`None` for an image).
    pub encoding: Option<Encoding>,
    /// The files of an item with the same content, which this one shares instead of
    /// keeping a copy; `None` when the item's own files were stored.
    pub shared_paths: Option<MediaPaths>,
    /// What the source (or the file's own tags) said beyond the title.
    pub source_meta: SourceMeta,
    /// The subtitle sidecars stored with the video (ignored when sharing a twin's files:
    /// the twin's are shared with them).
    pub subtitles: Vec<SubtitleTrack>,
    /// Their cues, for the search index.
    pub cues: Vec<(SubtitleLang, Vec<Cue>)>,
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
         thumb_medium_path = COALESCE($18, thumb_medium_path), thumb_large_path = COALESCE($19, thumb_large_path), \
         encoding = $20, uploader = $21, upload_date = $22, source_meta = $23, \
         subtitles = CASE WHEN $16 IS NULL THEN $24 ELSE (SELECT t.subtitles FROM items t \
           WHERE t.video_path = $16 AND t.id <> $1 AND t.status = 'completed' LIMIT 1) END, \
         subtitle_files = CASE WHEN $16 IS NULL THEN $25 ELSE (SELECT t.subtitle_files FROM items t \
           WHERE t.video_path = $16 AND t.id <> $1 AND t.status = 'completed' LIMIT 1) END, \
         subtitles_bytes = CASE WHEN $16 IS NULL THEN $26 ELSE (SELECT t.subtitles_bytes FROM items t \
           WHERE t.video_path = $16 AND t.id <> $1 AND t.status = 'completed' LIMIT 1) END \
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
        .bind(done.encoding.as_ref().and_then(|e| serde_json::to_string(e).ok()))
        .bind(done.source_meta.uploader.as_deref())
        .bind(done.source_meta.upload_date.as_deref())
        .bind((!done.source_meta.is_empty()).then(|| serde_json::to_string(&done.source_meta).unwrap_or_default()))
        .bind((!done.subtitles.is_empty()).then(|| serde_json::to_string(&done.subtitles).unwrap_or_default()))
        .bind((!done.subtitles.is_empty()).then(|| to_i64(done.subtitles.len() as u64)))
        .bind((!done.subtitles.is_empty()).then(|| to_i64(done.subtitles.iter().map(|s| s.bytes).sum())))
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

/// Sets what the owner added (their title, tags and note).
pub(crate) async fn set_user_fields(
    tx: &mut Tx,
    id: ItemId,
    fields: &UserFields,
    now: Timestamp,
) -> Result<(), DbError> {
    on_tx!(tx, conn => sqlx::query(
        "UPDATE items SET user_title = $2, user_tags = $3, note = $4, updated_at = $5 WHERE id = $1")
        .bind(id.to_string())
        .bind(fields.title.as_deref())
        .bind((!fields.tags.is_empty()).then(|| serde_json::to_string(&fields.tags).unwrap_or_default()))
        .bind(fields.note.as_deref())
        .bind(now.as_millis())
        .execute(conn)
        .await.map(|done| done.rows_affected()))?;
    Ok(())
}
