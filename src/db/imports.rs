//! Imports: a local file (dropped in the watch folder, later a Telegram upload) becomes an
//! item and an `import` job in one transaction, idempotent on a key that names the file.
//!
//! The job's payload says where the file will be when the job runs (`file`) and where it was
//! found (`found_at`): the importer records first and moves the file second, so a crash in
//! between leaves the file where it was found, and the next look at it finds this record.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::items::{self, Item};
use super::jobs::{self, NewJob};
use super::{Db, DbError, on_tx};
use crate::clock;
use crate::domain::layout::MediaPaths;
use crate::domain::{ItemId, JobKind, Platform, Source};

/// A local file to import.
#[derive(Debug, Clone)]
pub struct NewImport {
    /// Names the file for dedup: the same key is the same file (e.g. device, inode, size,
    /// mtime), seen again.
    pub key: String,
    pub source: Source,
    pub owner: Option<String>,
    /// The item's title until processing knows better (the file name).
    pub title: String,
    pub file: ImportPayload,
    pub max_attempts: u32,
}

/// Where the job finds its file: at `file`, or, if the importer stopped before moving it
/// there, still at `found_at`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportPayload {
    pub file: PathBuf,
    pub found_at: PathBuf,
}

impl ImportPayload {
    pub fn parse(payload: Option<&str>) -> Option<Self> {
        serde_json::from_str(payload?).ok()
    }
}

#[derive(Debug, Clone)]
pub struct ImportRecord {
    pub item: Item,
    /// False when the key was recorded before: nothing new was stored.
    pub created: bool,
    /// Where the file goes, as recorded (the earlier record's place for a known key).
    pub file: ImportPayload,
}

const INSERT_IMPORT_ITEM: &str = "INSERT INTO items (id, owner, source, platform, status, title, \
     video_path, thumb_small_path, thumb_medium_path, thumb_large_path, created_at, updated_at) \
     VALUES ($1, $2, $3, $4, 'queued', $5, $6, $7, $8, $9, $10, $10)";

/// Records an import, or finds the earlier record of the same key.
pub async fn insert_import(db: &Db, new: &NewImport) -> Result<ImportRecord, DbError> {
    let key = format!("import:{}", new.key);
    let mut tx = db.begin_write().await?;
    let earlier: Option<(String, Option<String>)> = on_tx!(&mut tx, conn => sqlx::query_as(
        "SELECT item_id, payload FROM jobs WHERE idempotency_key = $1")
        .bind(&key)
        .fetch_optional(conn)
        .await)?;
    if let Some((item_id, payload)) = earlier {
        let corrupt = || DbError::Corrupt(format!("import job {key} is malformed"));
        let item_id = ItemId::parse(&item_id).map_err(|_| corrupt())?;
        let file = ImportPayload::parse(payload.as_deref()).ok_or_else(corrupt)?;
        let item = items::get_in(&mut tx, item_id)
            .await?
            .ok_or_else(|| DbError::Corrupt(format!("import {key} has no item")))?;
        tx.commit().await?;
        return Ok(ImportRecord {
            item,
            created: false,
            file,
        });
    }
    let now = clock::now_ms();
    let id = ItemId::new();
    let paths = MediaPaths::for_item(id.as_uuid(), clock::datetime(now));
    on_tx!(&mut tx, conn => sqlx::query(INSERT_IMPORT_ITEM)
        .bind(id.to_string())
        .bind(new.owner.as_deref())
        .bind(new.source.as_str())
        // A local file has no platform; "generic" keeps the column's meaning (who served it)
        // without a sixth platform that no downloader serves.
        .bind(Platform::Generic.as_str())
        .bind(&new.title)
        .bind(&paths.video)
        .bind(&paths.thumb_small)
        .bind(&paths.thumb_medium)
        .bind(&paths.thumb_large)
        .bind(now)
        .execute(conn)
        .await.map(|done| done.rows_affected()))?;
    jobs::insert(
        &mut tx,
        &NewJob {
            kind: JobKind::Import,
            item_id: id,
            platform: None,
            max_attempts: new.max_attempts,
            idempotency_key: key,
            run_after: now,
            payload: Some(serde_json::to_string(&new.file).map_err(|e| {
                DbError::Corrupt(format!("an import path cannot be recorded: {e}"))
            })?),
        },
    )
    .await?;
    let item = items::get_in(&mut tx, id).await?.ok_or_else(|| {
        DbError::Corrupt(format!("item {id} vanished inside its own transaction"))
    })?;
    tx.commit().await?;
    Ok(ImportRecord {
        item,
        created: true,
        file: new.file.clone(),
    })
}

/// The item recorded for the import `key`, if there is one.
pub async fn find(db: &Db, key: &str) -> Result<Option<Item>, DbError> {
    let item_id: Option<String> = super::on_pool!(db, pool => sqlx::query_scalar(
        "SELECT item_id FROM jobs WHERE idempotency_key = $1")
        .bind(format!("import:{key}"))
        .fetch_optional(pool)
        .await)?;
    let Some(item_id) = item_id else {
        return Ok(None);
    };
    let item_id = ItemId::parse(&item_id)
        .map_err(|_| DbError::Corrupt(format!("import {key} names item '{item_id}'")))?;
    items::get(db, item_id).await
}
