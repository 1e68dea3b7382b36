//! The `renditions` table, and transcode requests on the queue.

use serde::{Deserialize, Serialize};
use sqlx::FromRow;

use super::{Db, DbError, Tx, on_pool, on_tx, to_i64, to_u64};
use crate::domain::{ItemId, Quality, Timestamp};

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
    pub created_at: Timestamp,
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
            created_at: Timestamp::from_millis(row.created_at),
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

/// The rendition, read in `tx` and (on PostgreSQL) locked against a concurrent delete until
/// the transaction ends.
pub(crate) async fn get_for_share(
    tx: &mut Tx,
    item: ItemId,
    quality: Quality,
) -> Result<Option<Rendition>, DbError> {
    const FIND: &str = "SELECT * FROM renditions WHERE item_id = $1 AND quality = $2";
    const FIND_AND_LOCK: &str =
        "SELECT * FROM renditions WHERE item_id = $1 AND quality = $2 FOR SHARE";
    let row: Option<RenditionRow> = match tx {
        Tx::Sqlite(conn, _) => {
            sqlx::query_as(FIND)
                .bind(item.to_string())
                .bind(quality.as_str())
                .fetch_optional(&mut **conn)
                .await?
        }
        Tx::Postgres(conn) => {
            sqlx::query_as(FIND_AND_LOCK)
                .bind(item.to_string())
                .bind(quality.as_str())
                .fetch_optional(&mut **conn)
                .await?
        }
    };
    row.map(Rendition::try_from).transpose()
}

/// Locks, until the transaction ends, every rendition row naming the file at `path`
/// (PostgreSQL; see `items::lock_sharing`).
pub(crate) async fn lock_naming(tx: &mut Tx, path: &str) -> Result<(), DbError> {
    if let Tx::Postgres(conn) = tx {
        sqlx::query(
            "SELECT item_id FROM renditions WHERE path = $1 ORDER BY item_id, quality FOR UPDATE",
        )
        .bind(path)
        .fetch_all(&mut **conn)
        .await?;
    }
    Ok(())
}

/// How many rendition rows name the file at `path`.
pub(crate) async fn naming(tx: &mut Tx, path: &str) -> Result<u64, DbError> {
    let count: i64 = on_tx!(tx, conn => sqlx::query_scalar(
        "SELECT COUNT(*) FROM renditions WHERE path = $1")
        .bind(path)
        .fetch_one(conn)
        .await)?;
    to_u64(count, "renditions")
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
        .bind(r.created_at.as_millis())
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
