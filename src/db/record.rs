//! Recording what the doors submit, each in one write transaction: a URL capture (a new item
//! and its capture job, or the item of the same video), a local file's import (an item of its
//! kind and an import job, idempotent on the file's key), a transcode (a job, unless the
//! rendition exists or one is already coming).

use super::imports::{ImportPayload, NewImport};
use super::items::{self, Item, NewItem};
use super::jobs::{self, NewJob};
use super::renditions::{self, Rendition, TranscodePayload};
use super::twins;
use super::{Db, DbError, Tx};
use crate::clock;
use crate::domain::layout::MediaPaths;
use crate::domain::{
    CaptureUrl, ItemId, ItemKind, ItemStatus, JobId, JobKind, Platform, Quality, Source, Timestamp,
};
use crate::faults::{FaultPoint, Faults};

/// A URL capture to record.
#[derive(Debug, Clone)]
pub struct NewCapture {
    /// The canonical URL (the dedup key, and what is downloaded).
    pub url: CaptureUrl,
    /// What the user submitted.
    pub source_url: String,
    pub platform: Platform,
    /// The platform's video id, when the URL carries one (the other dedup key).
    pub platform_media_id: Option<String>,
    pub source: Source,
    pub owner: Option<String>,
    pub max_attempts: u32,
}

/// What recording a capture did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaptureOutcome {
    /// A new item and its capture job.
    Created,
    /// The URL was captured before (or is being captured): nothing new was stored.
    Existing,
    /// The URL's earlier capture had failed; the same item got a new capture job.
    Requeued,
}

#[derive(Debug, Clone)]
pub struct CaptureRecord {
    pub item: Item,
    pub outcome: CaptureOutcome,
    /// The job that will do the work, when one was created.
    pub job: Option<JobId>,
}

/// Records a URL capture: a new item and job, or the existing item of the same video (same
/// canonical URL, or same platform media id). One write transaction, so concurrent identical
/// submissions create one item; a resubmission of a failed or cancelled capture reopens it.
/// The item found is locked from the lookup on, so a concurrent delete or cancel of it is
/// ordered wholly before this (a delete: a new item is made) or after it. `faults` lets a
/// test hold the transaction right after the lookup.
pub async fn capture(
    db: &Db,
    new: &NewCapture,
    now: Timestamp,
    faults: &Faults,
) -> Result<CaptureRecord, DbError> {
    let id = ItemId::new();
    let paths = MediaPaths::for_item(id.as_uuid(), ItemKind::Video, clock::datetime(now));
    let canonical = new.url.as_str();
    let media_id = new.platform_media_id.as_deref();
    let mut tx = db.begin_write().await?;
    let earlier = items::same_video(
        &mut tx,
        new.owner.as_deref(),
        canonical,
        new.platform,
        media_id,
    )
    .await?;
    faults.pass(FaultPoint::RecordAfterLookup).await;
    let inserted = earlier.is_none() && {
        let row = NewItem {
            id,
            kind: ItemKind::Video,
            owner: new.owner.as_deref(),
            source: new.source,
            source_url: Some(&new.source_url),
            canonical_url: Some(canonical),
            platform: new.platform,
            platform_media_id: media_id,
            title: None,
            paths: &paths,
        };
        let inserted = items::insert(&mut tx, &row, now).await?;
        if inserted {
            super::search::index_item(&mut tx, id).await?;
        }
        inserted
    };
    let (item_id, outcome, key) = if inserted {
        (id, CaptureOutcome::Created, format!("capture:{id}"))
    } else {
        // Known already, or another instance recorded it a moment ago (the insert then did
        // nothing, and the row is visible now).
        let existing = match earlier {
            Some(item) => item,
            None => items::same_video(
                &mut tx,
                new.owner.as_deref(),
                canonical,
                new.platform,
                media_id,
            )
            .await?
            .ok_or_else(|| DbError::Corrupt("a conflicting capture vanished".into()))?,
        };
        // A resubmission of a failed capture is the user asking to try again.
        if !items::reopen(&mut tx, existing.id, now).await? {
            tx.commit().await?;
            return Ok(CaptureRecord {
                item: existing,
                outcome: CaptureOutcome::Existing,
                job: None,
            });
        }
        let retry_key = format!("capture:{}:{}", existing.id, JobId::new());
        (existing.id, CaptureOutcome::Requeued, retry_key)
    };
    let job = NewJob {
        kind: JobKind::Capture,
        item_id,
        platform: Some(new.platform),
        max_attempts: new.max_attempts,
        idempotency_key: key,
        run_after: now,
        payload: None,
    };
    let job = jobs::insert(&mut tx, &job).await?;
    let item = fresh(&mut tx, item_id).await?;
    tx.commit().await?;
    Ok(CaptureRecord {
        item,
        outcome,
        job: Some(job),
    })
}

/// The owner's item of the same video, when resubmitting it would store nothing new (it is
/// not failed or cancelled): what a submission from someone at their quota still gets.
pub async fn existing_capture(db: &Db, new: &NewCapture) -> Result<Option<CaptureRecord>, DbError> {
    let mut tx = db.begin_write().await?;
    let earlier = items::same_video(
        &mut tx,
        new.owner.as_deref(),
        new.url.as_str(),
        new.platform,
        new.platform_media_id.as_deref(),
    )
    .await?;
    tx.commit().await?;
    Ok(earlier
        .filter(|item| !matches!(item.status, ItemStatus::Failed | ItemStatus::Cancelled))
        .map(|item| CaptureRecord {
            item,
            outcome: CaptureOutcome::Existing,
            job: None,
        }))
}

/// What recording an import did.
#[derive(Debug, Clone)]
pub struct ImportRecord {
    pub item: Item,
    /// False when the key was recorded before: nothing new was stored.
    pub created: bool,
    /// Where the file goes, as recorded (the earlier record's place for a known key).
    pub file: ImportPayload,
}

/// Records an import, or finds the earlier record of the same key.
pub async fn import(db: &Db, new: &NewImport, now: Timestamp) -> Result<ImportRecord, DbError> {
    let key = format!("import:{}", new.key);
    let mut tx = db.begin_write().await?;
    if let Some((item_id, payload)) = jobs::by_key(&mut tx, &key).await? {
        let file = ImportPayload::parse(payload.as_deref())
            .ok_or_else(|| DbError::Corrupt(format!("import job {key} is malformed")))?;
        let item = fresh(&mut tx, item_id).await?;
        tx.commit().await?;
        return Ok(ImportRecord {
            item,
            created: false,
            file,
        });
    }
    let id = ItemId::new();
    let paths = MediaPaths::for_item(id.as_uuid(), new.kind, clock::datetime(now));
    let row = NewItem {
        id,
        kind: new.kind,
        owner: new.owner.as_deref(),
        source: new.source,
        source_url: None,
        canonical_url: None,
        // A local file has no platform; "generic" keeps the column's meaning (who served it)
        // without a sixth platform that no downloader serves.
        platform: Platform::Generic,
        platform_media_id: None,
        title: Some(&new.title),
        paths: &paths,
    };
    if !items::insert(&mut tx, &row, now).await? {
        return Err(DbError::Corrupt(format!("import item {id} was refused")));
    }
    super::search::index_item(&mut tx, id).await?;
    let payload = serde_json::to_string(&new.file)
        .map_err(|e| DbError::Corrupt(format!("an import path cannot be recorded: {e}")))?;
    let job = NewJob {
        kind: JobKind::Import,
        item_id: id,
        platform: None,
        max_attempts: new.max_attempts,
        idempotency_key: key,
        run_after: now,
        payload: Some(payload),
    };
    jobs::insert(&mut tx, &job).await?;
    let item = fresh(&mut tx, id).await?;
    tx.commit().await?;
    Ok(ImportRecord {
        item,
        created: true,
        file: new.file.clone(),
    })
}

/// The item recorded for the import `key`, if there is one.
pub async fn find_import(db: &Db, key: &str) -> Result<Option<Item>, DbError> {
    match jobs::item_of_key(db, &format!("import:{key}")).await? {
        Some(item) => items::get(db, item).await,
        None => Ok(None),
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

/// The answer to a transcode request that needs no new job: the rendition is stored, or a
/// job for it is waiting or running.
pub async fn known_transcode(
    db: &Db,
    item: ItemId,
    quality: Quality,
) -> Result<Option<TranscodeRequest>, DbError> {
    if let Some(existing) = renditions::get(db, item, quality).await? {
        return Ok(Some(TranscodeRequest::Existing(existing)));
    }
    let payload = TranscodePayload::json(quality);
    Ok(jobs::active_transcode(db, item, &payload)
        .await?
        .map(|job| TranscodeRequest::Queued {
            job,
            created: false,
        }))
}

/// Queues a transcode of `item` to `quality`, unless the rendition exists or one is already
/// waiting or running.
pub async fn transcode(
    db: &Db,
    item: ItemId,
    quality: Quality,
    max_attempts: u32,
    now: Timestamp,
) -> Result<TranscodeRequest, DbError> {
    if let Some(existing) = renditions::get(db, item, quality).await? {
        return Ok(TranscodeRequest::Existing(existing));
    }
    // The video is shared with another item that has this rendition: share it too.
    if let Some(found) = items::get(db, item).await?
        && let Some(shared) = twins::share_rendition(db, &found, quality, now).await?
    {
        return Ok(TranscodeRequest::Existing(shared));
    }
    let payload = TranscodePayload::json(quality);
    if let Some(job) = jobs::active_transcode(db, item, &payload).await? {
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
        run_after: now,
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
            let job = jobs::active_transcode(db, item, &payload)
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

/// The item just written in `tx`, as stored.
async fn fresh(tx: &mut Tx, id: ItemId) -> Result<Item, DbError> {
    items::get_in(tx, id)
        .await?
        .ok_or_else(|| DbError::Corrupt(format!("item {id} vanished inside its own transaction")))
}
