//! The `renditions` table, and transcode requests on the queue.

use serde::{Deserialize, Serialize};
use sqlx::FromRow;

use super::jobs::{self, NewJob};
use super::{Db, DbError, Tx, on_pool, on_tx, to_i64, to_u64};
use crate::clock;
use crate::domain::{ItemId, JobId, JobKind, Quality};

/// A stored rendition of an item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendition {
    pub item_id: ItemId,
    pub quality: Quality,
    /// Relative to media_root.
    pub path: String,
    pub width: u32,
    pub height: u32,
    pub size_bytes: u64,
    pub sha256: String,
    pub created_at: i64,
}

#[derive(FromRow)]
struct RenditionRow {
    item_id: String,
    quality: String,
    path: String,
    width: i64,
    height: i64,
    size_bytes: i64,
    sha256: String,
    created_at: i64,
}

impl TryFrom<RenditionRow> for Rendition {
    type Error = DbError;

    fn try_from(row: RenditionRow) -> Result<Self, DbError> {
        let corrupt =
            |what: &str| DbError::Corrupt(format!("rendition of {} has a bad {what}", row.item_id));
        Ok(Rendition {
            item_id: ItemId::parse(&row.item_id).map_err(|_| corrupt("item id"))?,
            quality: Quality::parse(&row.quality).ok_or_else(|| corrupt("quality"))?,
            width: u32::try_from(row.width).map_err(|_| corrupt("width"))?,
            height: u32::try_from(row.height).map_err(|_| corrupt("height"))?,
            size_bytes: to_u64(row.size_bytes, "size")?,
            path: row.path,
            sha256: row.sha256,
            created_at: row.created_at,
        })
    }
}

pub async fn for_item(db: &Db, item: ItemId) -> Result<Vec<Rendition>, DbError> {
    let rows: Vec<RenditionRow> = on_pool!(db, pool => sqlx::query_as(
        "SELECT * FROM renditions WHERE item_id = $1 ORDER BY height")
        .bind(item.to_string())
        .fetch_all(pool)
        .await)?;
    rows.into_iter().map(Rendition::try_from).collect()
}

pub(crate) async fn for_item_in(tx: &mut Tx, item: ItemId) -> Result<Vec<Rendition>, DbError> {
    let rows: Vec<RenditionRow> = on_tx!(tx, conn => sqlx::query_as(
        "SELECT * FROM renditions WHERE item_id = $1 ORDER BY height")
        .bind(item.to_string())
        .fetch_all(conn)
        .await)?;
    rows.into_iter().map(Rendition::try_from).collect()
}

pub async fn get(db: &Db, item: ItemId, quality: Quality) -> Result<Option<Rendition>, DbError> {
    let row: Option<RenditionRow> = on_pool!(db, pool => sqlx::query_as(
        "SELECT * FROM renditions WHERE item_id = $1 AND quality = $2")
        .bind(item.to_string())
        .bind(quality.as_str())
        .fetch_optional(pool)
        .await)?;
    row.map(Rendition::try_from).transpose()
}

pub(crate) async fn insert(tx: &mut Tx, r: &Rendition) -> Result<(), DbError> {
    on_tx!(tx, conn => sqlx::query(
        "INSERT INTO renditions (item_id, quality, path, width, height, size_bytes, sha256, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
         ON CONFLICT (item_id, quality) DO UPDATE SET path = $3, width = $4, height = $5, \
         size_bytes = $6, sha256 = $7, created_at = $8")
        .bind(r.item_id.to_string())
        .bind(r.quality.as_str())
        .bind(&r.path)
        .bind(i64::from(r.width))
        .bind(i64::from(r.height))
        .bind(to_i64(r.size_bytes))
        .bind(&r.sha256)
        .bind(r.created_at)
        .execute(conn)
        .await
        .map(|done| done.rows_affected()))?;
    Ok(())
}

/// What a transcode job carries in its payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TranscodePayload {
    pub quality: &'static str,
}

impl TranscodePayload {
    pub fn json(quality: Quality) -> String {
        serde_json::to_string(&TranscodePayload {
            quality: quality.as_str(),
        })
        .expect("serialisable")
    }

    /// The quality a stored payload asks for.
    pub fn quality_of(payload: Option<&str>) -> Option<Quality> {
        #[derive(Deserialize)]
        struct Stored {
            quality: String,
        }
        let stored: Stored = serde_json::from_str(payload?).ok()?;
        Quality::parse(&stored.quality)
    }
}

/// The answer to a transcode request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TranscodeRequest {
    /// The rendition is already stored.
    Existing(Rendition),
    /// A job makes it; `created` is false when an identical request already had queued it.
    Queued { job: JobId, created: bool },
}

/// Queues a transcode of `item` to `quality`, unless the rendition exists or one is already
/// waiting or running.
pub async fn request_transcode(
    db: &Db,
    item: ItemId,
    quality: Quality,
    max_attempts: u32,
) -> Result<TranscodeRequest, DbError> {
    if let Some(existing) = get(db, item, quality).await? {
        return Ok(TranscodeRequest::Existing(existing));
    }
    let payload = TranscodePayload::json(quality);
    if let Some(job) = active_transcode(db, item, &payload).await? {
        return Ok(TranscodeRequest::Queued {
            job,
            created: false,
        });
    }
    let job = JobId::new();
    let new = NewJob {
        kind: JobKind::Transcode,
        item_id: item,
        platform: None,
        max_attempts,
        // Unique per request series; "one active transcode per item and quality" is the
        // partial unique index's job.
        idempotency_key: format!("transcode:{item}:{quality}:{job}"),
        run_after: clock::now_ms(),
        payload: Some(payload.clone()),
    };
    let mut tx = db.begin_write().await?;
    match jobs::insert(&mut tx, &new).await {
        Ok(job) => {
            tx.commit().await?;
            Ok(TranscodeRequest::Queued { job, created: true })
        }
        Err(DbError::Sqlx(sqlx::Error::Database(e))) if e.is_unique_violation() => {
            drop(tx);
            // Another instance queued the same transcode a moment ago.
            let job = active_transcode(db, item, &payload)
                .await?
                .ok_or_else(|| DbError::Corrupt("an active transcode vanished".into()))?;
            Ok(TranscodeRequest::Queued {
                job,
                created: false,
            })
        }
        Err(e) => Err(e),
    }
}

async fn active_transcode(db: &Db, item: ItemId, payload: &str) -> Result<Option<JobId>, DbError> {
    let id: Option<String> = on_pool!(db, pool => sqlx::query_scalar(
        "SELECT id FROM jobs WHERE item_id = $1 AND kind = 'transcode' AND payload = $2 \
         AND state IN ('queued', 'running')")
        .bind(item.to_string())
        .bind(payload)
        .fetch_optional(pool)
        .await)?;
    id.map(|id| JobId::parse(&id).map_err(|_| DbError::Corrupt(format!("job id {id}"))))
        .transpose()
}
