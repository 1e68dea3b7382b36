//! Imports: a local file (dropped in the watch folder, or a photo the Telegram bot downloaded)
//! becomes an item of its kind and an `import` job in one transaction, idempotent on a key that
//! names the file.
//!
//! The job's payload says where the file will be when the job runs (`file`) and where it was
//! found (`found_at`): the importer records first and moves the file second, so a crash in
//! between leaves the file where it was found, and the next look at it finds this record.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::items::{self, Item};
use super::jobs::{self, NewJob};
use super::{Db, DbError, Tx, on_pool, on_tx};
use crate::clock;
use crate::domain::layout::MediaPaths;
use crate::domain::{ItemId, ItemKind, JobKind, Platform, Source};

/// A local file to import.
#[derive(Debug, Clone)]
pub struct NewImport {
    /// Names the file for dedup: the same key is the same file (e.g. device, inode, size,
    /// mtime), seen again.
    pub key: String,
    /// What the file is: it decides where the item's file goes and how it is processed.
    pub kind: ItemKind,
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
    /// The file belongs to the service (a download under `<media_root>/temp/uploads/`): it
    /// may be hard-linked instead of copied, and it is deleted once the job is finished for
    /// good. False for a user's file (the watch folder's), which is never touched.
    #[serde(default)]
    pub owned: bool,
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
     video_path, thumb_small_path, thumb_medium_path, thumb_large_path, created_at, updated_at, kind) \
     VALUES ($1, $2, $3, $4, 'queued', $5, $6, $7, $8, $9, $10, $10, $11)";

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
    let paths = MediaPaths::for_item(id.as_uuid(), new.kind, clock::datetime(now));
    on_tx!(&mut tx, conn => sqlx::query(INSERT_IMPORT_ITEM)
        .bind(id.to_string())
        .bind(new.owner.as_deref())
        .bind(new.source.as_str())
        // A local file has no platform; "generic" keeps the column's meaning (who served it)
        // without a sixth platform that no downloader serves.
        .bind(Platform::Generic.as_str())
        .bind(&new.title)
        .bind(&paths.file)
        .bind(&paths.thumb_small)
        .bind(&paths.thumb_medium)
        .bind(&paths.thumb_large)
        .bind(now)
        .bind(new.kind.as_str())
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

/// The owned files (uploads) that the import jobs of `item` name, wherever they are now.
pub(crate) async fn owned_files_of(tx: &mut Tx, item: ItemId) -> Result<Vec<PathBuf>, DbError> {
    let payloads: Vec<Option<String>> = on_tx!(tx, conn => sqlx::query_scalar(
        "SELECT payload FROM jobs WHERE item_id = $1 AND kind = $2")
        .bind(item.to_string())
        .bind(JobKind::Import.as_str())
        .fetch_all(conn)
        .await)?;
    Ok(owned_files_in(&payloads))
}

/// The owned files that imports still waiting or running need (the sweep leaves them alone).
pub async fn pending_owned_files(db: &Db) -> Result<Vec<PathBuf>, DbError> {
    let payloads: Vec<Option<String>> = on_pool!(db, pool => sqlx::query_scalar(
        "SELECT payload FROM jobs WHERE kind = $1 AND state IN ('queued', 'running')")
        .bind(JobKind::Import.as_str())
        .fetch_all(pool)
        .await)?;
    Ok(owned_files_in(&payloads))
}

fn owned_files_in(payloads: &[Option<String>]) -> Vec<PathBuf> {
    payloads
        .iter()
        .filter_map(|p| ImportPayload::parse(p.as_deref()))
        .flat_map(|p| p.owned_files())
        .collect()
}

impl ImportPayload {
    /// The paths this payload lets the service delete: none unless the file is owned.
    pub fn owned_files(&self) -> Vec<PathBuf> {
        if !self.owned {
            return Vec::new();
        }
        let mut files = vec![self.file.clone()];
        if self.found_at != self.file {
            files.push(self.found_at.clone());
        }
        files
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_written_before_ownership_existed_are_not_owned() {
        let old = r#"{"file":"/in/processed/a.mp4","found_at":"/in/a.mp4"}"#;
        let parsed = ImportPayload::parse(Some(old)).unwrap();
        assert!(!parsed.owned);
        assert!(parsed.owned_files().is_empty());
    }

    #[test]
    fn an_owned_payload_names_both_of_its_places_once() {
        let mut payload = ImportPayload {
            file: "/m/temp/uploads/p.jpg".into(),
            found_at: "/m/temp/uploads/p.jpg".into(),
            owned: true,
        };
        let json = serde_json::to_string(&payload).unwrap();
        assert_eq!(ImportPayload::parse(Some(&json)), Some(payload.clone()));
        assert_eq!(
            payload.owned_files(),
            vec![PathBuf::from("/m/temp/uploads/p.jpg")]
        );
        payload.found_at = "/m/temp/uploads/q.jpg".into();
        assert_eq!(payload.owned_files().len(), 2);
    }
}
