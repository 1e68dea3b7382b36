//! Work another item already did or is doing: the same video captured for another owner (dedup
//! is per owner, storage is not), a rendition of a video two items share. The second item
//! refers to the first one's files instead of downloading or transcoding again; a file goes
//! only with the last row that names it (`removal`).
//!
//! Adopting a twin's files and deleting the twin must never interleave so that a row is left
//! naming a removed file. On SQLite a write transaction holds the whole database; on
//! PostgreSQL the adoption reads the twin's row `FOR SHARE`, so a concurrent delete of it
//! either waits for the adoption to commit (and then counts the new row as a sharer) or wins,
//! and the adoption then finds nothing to adopt.

use super::items::Item;
use super::jobs::Lease;
use super::outcome::{Completed, complete_job, finish_within_quota};
use super::renditions::{self, Rendition};
use super::{Db, DbError, Tx, on_pool, on_tx};
use crate::domain::webhook::WebhookEvent;
use crate::domain::{ItemId, JobId, Quality, Timestamp};

/// What another item holds of the work an attempt is about to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Twin {
    /// This item has it stored: share it.
    Stored(ItemId),
    /// An earlier item is making it now: wait for it rather than doing it twice.
    Coming,
    /// Nobody has it: do the work.
    Alone,
}

/// The twin of a capture: another owner's item of the same video (same canonical URL or
/// platform media id), stored or being captured. Only an earlier item with a capture job
/// waiting or running counts as coming, so two captures never wait for each other and none
/// waits for a row nothing works on.
pub async fn of_capture(db: &Db, item: &Item) -> Result<Twin, DbError> {
    let row: Option<(String, String)> = on_pool!(db, pool => sqlx::query_as(
        "SELECT id, status FROM items WHERE id <> $1 AND kind = 'video' \
         AND (canonical_url = $2 OR (platform = $3 AND platform_media_id IS NOT NULL \
              AND platform_media_id = $4)) \
         AND (status = 'completed' OR (status IN ('queued', 'downloading', 'processing') AND id < $1 \
              AND EXISTS (SELECT 1 FROM jobs j WHERE j.item_id = items.id AND j.kind = 'capture' \
                          AND j.state IN ('queued', 'running')))) \
         ORDER BY CASE WHEN status = 'completed' THEN 0 ELSE 1 END, id LIMIT 1")
        .bind(item.id.to_string())
        .bind(item.canonical_url.as_deref())
        .bind(item.platform.as_str())
        .bind(item.platform_media_id.as_deref())
        .fetch_optional(pool)
        .await)?;
    twin_of_row(row)
}

/// The twin of a transcode: the same rendition of the same stored video under another item,
/// stored, or being made by an earlier job.
pub async fn of_rendition(
    db: &Db,
    item: &Item,
    quality: Quality,
    job: JobId,
) -> Result<Twin, DbError> {
    if let Some(stored) = stored_rendition(db, item, quality).await? {
        return Ok(Twin::Stored(stored));
    }
    let coming: Option<String> = on_pool!(db, pool => sqlx::query_scalar(
        "SELECT j.id FROM jobs j JOIN items i ON i.id = j.item_id \
         WHERE j.kind = 'transcode' AND j.state IN ('queued', 'running') AND j.payload = $3 \
         AND i.video_path = $2 AND j.item_id <> $1 AND j.id < $4 LIMIT 1")
        .bind(item.id.to_string())
        .bind(&item.paths.file)
        .bind(renditions::TranscodePayload::json(quality))
        .bind(job.to_string())
        .fetch_optional(pool)
        .await)?;
    Ok(if coming.is_some() {
        Twin::Coming
    } else {
        Twin::Alone
    })
}

/// Another item whose video is this item's and that has the `quality` rendition.
pub(crate) async fn stored_rendition(
    db: &Db,
    item: &Item,
    quality: Quality,
) -> Result<Option<ItemId>, DbError> {
    let row: Option<String> = on_pool!(db, pool => sqlx::query_scalar(
        "SELECT r.item_id FROM renditions r JOIN items i ON i.id = r.item_id \
         WHERE r.quality = $3 AND r.item_id <> $1 AND i.video_path = $2 ORDER BY r.item_id LIMIT 1")
        .bind(item.id.to_string())
        .bind(&item.paths.file)
        .bind(quality.as_str())
        .fetch_optional(pool)
        .await)?;
    row.map(|id| parse_id(&id)).transpose()
}

fn twin_of_row(row: Option<(String, String)>) -> Result<Twin, DbError> {
    Ok(match row {
        None => Twin::Alone,
        Some((id, status)) if status == "completed" => Twin::Stored(parse_id(&id)?),
        Some(_) => Twin::Coming,
    })
}

fn parse_id(id: &str) -> Result<ItemId, DbError> {
    ItemId::parse(id).map_err(|e| DbError::Corrupt(format!("items.id: {e}")))
}

/// Completes the attempt named by `lease` with its twin's work: a capture takes the twin
/// item's facts and files, a transcode (`quality`) a row naming the twin's rendition file.
/// A shared file counts against the quota of each owner, so the adoption is checked like any
/// completion. `None` when the twin is gone (nothing changed: do the work).
pub async fn adopt(
    db: &Db,
    lease: &Lease,
    twin: ItemId,
    quality: Option<Quality>,
    now: Timestamp,
) -> Result<Option<Completed>, DbError> {
    let mut tx = db.begin_write().await?;
    if !complete_job(&mut tx, lease, now).await? {
        return Ok(Some(Completed::LostLease));
    }
    let adopted = match quality {
        None => adopt_item(&mut tx, lease.item, twin, now).await?,
        Some(quality) => adopt_rendition(&mut tx, lease.item, twin, quality, now)
            .await?
            .is_some(),
    };
    if !adopted {
        return Ok(None);
    }
    finish_within_quota(tx, lease.item).await.map(Some)
}

/// A transcode request answered at once: `item`'s video is shared with an item that has the
/// rendition, so `item` gets a row naming the same file. `None` when there is none, or when
/// it would not fit in the owner's quota (the request then queues a transcode, which is
/// refused like any other).
pub async fn share_rendition(
    db: &Db,
    item: &Item,
    quality: Quality,
    now: Timestamp,
) -> Result<Option<Rendition>, DbError> {
    let Some(twin) = stored_rendition(db, item, quality).await? else {
        return Ok(None);
    };
    let mut tx = db.begin_write().await?;
    let Some(shared) = adopt_rendition(&mut tx, item.id, twin, quality, now).await? else {
        return Ok(None);
    };
    Ok(match finish_within_quota(tx, item.id).await? {
        Completed::Recorded => Some(shared),
        _ => None,
    })
}

/// Locks the twin's completed row (PostgreSQL) and copies its facts and paths into `item`.
async fn adopt_item(
    tx: &mut Tx,
    item: ItemId,
    twin: ItemId,
    now: Timestamp,
) -> Result<bool, DbError> {
    let locked: Option<String> = match tx {
        Tx::Sqlite(conn, _) => {
            sqlx::query_scalar("SELECT id FROM items WHERE id = $1 AND status = 'completed'")
                .bind(twin.to_string())
                .fetch_optional(&mut **conn)
                .await?
        }
        Tx::Postgres(conn) => {
            sqlx::query_scalar(
                "SELECT id FROM items WHERE id = $1 AND status = 'completed' FOR SHARE",
            )
            .bind(twin.to_string())
            .fetch_optional(&mut **conn)
            .await?
        }
    };
    if locked.is_none() {
        return Ok(false);
    }
    let updated = on_tx!(tx, conn => sqlx::query(
        "UPDATE items SET (title, duration_seconds, width, height, video_codec, audio_codec, \
             bitrate_bps, fps, container, size_bytes, sha256, thumbnails_bytes, warnings, encoding, \
             video_path, thumb_small_path, thumb_medium_path, thumb_large_path, subtitles, \
             subtitle_files, subtitles_bytes, uploader, upload_date, source_meta) = \
           (SELECT COALESCE(items.title, t.title), t.duration_seconds, t.width, t.height, \
             t.video_codec, t.audio_codec, t.bitrate_bps, t.fps, t.container, t.size_bytes, \
             t.sha256, t.thumbnails_bytes, t.warnings, t.encoding, t.video_path, \
             t.thumb_small_path, t.thumb_medium_path, t.thumb_large_path, t.subtitles, \
             t.subtitle_files, t.subtitles_bytes, t.uploader, t.upload_date, t.source_meta \
            FROM items t WHERE t.id = $2), \
         status = 'completed', stage = NULL, progress_percent = NULL, downloaded_bytes = NULL, \
         total_bytes = NULL, error_code = NULL, error_message = NULL, updated_at = $3, \
         completed_at = $3 \
         WHERE id = $1")
        .bind(item.to_string())
        .bind(twin.to_string())
        .bind(now.as_millis())
        .execute(conn)
        .await
        .map(|done| done.rows_affected()))?;
    if updated == 1 {
        super::search::index_item(tx, item).await?;
        if let Some(done) = super::items::get_in(tx, item).await? {
            super::webhooks::record(tx, WebhookEvent::Completed, &done, now).await?;
        }
    }
    Ok(updated == 1)
}

/// Locks the twin's rendition row (PostgreSQL) and gives `item` a row naming its file.
async fn adopt_rendition(
    tx: &mut Tx,
    item: ItemId,
    twin: ItemId,
    quality: Quality,
    now: Timestamp,
) -> Result<Option<Rendition>, DbError> {
    let Some(source) = renditions::get_for_share(tx, twin, quality).await? else {
        return Ok(None);
    };
    let shared = Rendition {
        item_id: item,
        created_at: now,
        ..source
    };
    renditions::insert(tx, &shared).await?;
    Ok(Some(shared))
}
