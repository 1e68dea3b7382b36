//! How an attempt's end is written: the job's compare-and-set and its item's (or
//! rendition's) change, in one transaction. Every function answers `false` when the attempt
//! no longer held its job (another attempt owns it now), and then changes nothing.

use super::items::{self, Completion};
use super::jobs::{Lease, Subject, transition};
use super::quota;
use super::renditions::{self, Rendition};
use super::search;
use super::webhooks;
use super::{Db, DbError, Tx};
use crate::domain::quota::Standing;
use crate::domain::webhook::WebhookEvent;
use crate::domain::{ItemId, ItemStatus, JobError, Timestamp};

/// What a successful attempt leaves behind, written with the job's completion.
#[derive(Debug)]
pub enum Effect<'a> {
    /// The item is completed with these facts.
    Captured {
        item: ItemId,
        completion: &'a Completion,
    },
    /// A rendition of the item now exists.
    Rendered(&'a Rendition),
}

/// Whether putting an attempt back in the queue counts against the job's attempts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Charge {
    /// The attempt failed: it counts (a retry).
    Charged,
    /// Not the job's fault (a shutdown, a refusing platform, our own restart): it does not.
    Uncharged,
}

/// Back to the queue: when the job may run again, why (kept as its last error), and whether
/// the attempt counts.
#[derive(Debug, Clone, Copy)]
pub struct Requeue<'a> {
    pub run_after: Timestamp,
    pub reason: Option<&'a JobError>,
    pub charge: Charge,
}

/// What writing a completion did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Completed {
    /// Recorded: the job is completed and its effect written.
    Recorded,
    /// The attempt no longer held its job; nothing changed.
    LostLease,
    /// What it stores would take the item's owner past their quota (their standing with it
    /// counted); nothing changed.
    OverQuota(Standing),
    /// The item was to share the files of an identical stored item, which was deleted
    /// meanwhile; nothing changed (the attempt stores its own files after all).
    TwinGone,
}

/// The attempt succeeded: job `completed`, and its effect recorded, unless the bytes it adds
/// do not fit in the owner's quota (checked in the same transaction).
pub async fn complete(
    db: &Db,
    lease: &Lease,
    effect: Effect<'_>,
    now: Timestamp,
) -> Result<Completed, DbError> {
    let mut tx = db.begin_write().await?;
    if !complete_job(&mut tx, lease, now).await? {
        return Ok(Completed::LostLease);
    }
    let item = match effect {
        Effect::Captured { item, completion } => {
            // A shared file must still be named by its twin, locked until this commits, or
            // a concurrent delete of the twin removes it under this item.
            if let Some(shared) = &completion.shared_paths
                && !items::completed_names(&mut tx, &shared.file).await?
            {
                return Ok(Completed::TwinGone);
            }
            items::mark_completed(&mut tx, item, completion, now).await?;
            search::index_item(&mut tx, item).await?;
            if let Some(done) = items::get_in(&mut tx, item).await? {
                if completion.shared_paths.is_none() {
                    search::index_cues(&mut tx, &done.paths.file, &completion.cues).await?;
                }
                webhooks::record(&mut tx, WebhookEvent::Completed, &done, now).await?;
            }
            item
        }
        Effect::Rendered(rendition) => {
            renditions::insert(&mut tx, rendition).await?;
            rendition.item_id
        }
    };
    finish_within_quota(tx, item).await
}

/// Moves the attempt's job to `completed`; false when the attempt no longer held it.
pub(crate) async fn complete_job(
    tx: &mut Tx,
    lease: &Lease,
    now: Timestamp,
) -> Result<bool, DbError> {
    transition(
        tx,
        lease,
        "state = 'completed', lease_owner = NULL, lease_until = NULL, finished_at = $4, updated_at = $4",
        |b| b.int(now.as_millis()),
    )
    .await
}

/// Commits what `tx` wrote for `item` if its owner is still within their quota; otherwise
/// rolls it all back.
pub(crate) async fn finish_within_quota(mut tx: Tx, item: ItemId) -> Result<Completed, DbError> {
    if let Err(standing) = quota::within_in(&mut tx, item).await? {
        return Ok(Completed::OverQuota(standing));
    }
    tx.commit().await?;
    Ok(Completed::Recorded)
}

/// The attempt goes back to the queue (and a capture's item to `queued`).
pub async fn requeue(
    db: &Db,
    lease: &Lease,
    subject: Subject,
    requeue: Requeue<'_>,
    now: Timestamp,
) -> Result<bool, DbError> {
    let mut tx = db.begin_write().await?;
    let held = requeue_in(&mut tx, lease, subject, requeue, now).await?;
    if held {
        tx.commit().await?;
    }
    Ok(held)
}

pub(super) async fn requeue_in(
    tx: &mut Tx,
    lease: &Lease,
    subject: Subject,
    requeue: Requeue<'_>,
    now: Timestamp,
) -> Result<bool, DbError> {
    // The claim charged the attempt; an uncharged requeue gives it back. A requeue without a
    // reason keeps the job's last error as it was.
    let refund = match requeue.charge {
        Charge::Charged => 0,
        Charge::Uncharged => 1,
    };
    let held = transition(
        tx,
        lease,
        "state = 'queued', attempt = attempt - $4, lease_owner = NULL, lease_until = NULL, \
         run_after = $5, last_error_code = COALESCE($6, last_error_code), \
         last_error = COALESCE($7, last_error), updated_at = $8",
        |b| {
            b.int(refund)
                .int(requeue.run_after.as_millis())
                .maybe_text(requeue.reason.map(|e| e.code.as_str().to_string()))
                .maybe_text(requeue.reason.map(|e| e.message.clone()))
                .int(now.as_millis())
        },
    )
    .await?;
    if held && subject.owns_item_status() {
        items::mark_queued(tx, subject.item, now).await?;
    }
    Ok(held)
}

/// The attempt failed for good: the job is `failed` (kept, with its reason), and a capture's
/// item too.
pub async fn fail(
    db: &Db,
    lease: &Lease,
    subject: Subject,
    error: &JobError,
    now: Timestamp,
) -> Result<bool, DbError> {
    let mut tx = db.begin_write().await?;
    let held = fail_in(&mut tx, lease, subject, error, now).await?;
    if held {
        tx.commit().await?;
    }
    Ok(held)
}

pub(super) async fn fail_in(
    tx: &mut Tx,
    lease: &Lease,
    subject: Subject,
    error: &JobError,
    now: Timestamp,
) -> Result<bool, DbError> {
    let held = transition(
        tx,
        lease,
        "state = 'failed', lease_owner = NULL, lease_until = NULL, last_error_code = $4, \
         last_error = $5, finished_at = $6, updated_at = $6",
        |b| {
            b.text(error.code.as_str())
                .text(error.message.clone())
                .int(now.as_millis())
        },
    )
    .await?;
    if held && subject.owns_item_status() {
        items::mark_failed(tx, subject.item, ItemStatus::Failed, error, now).await?;
        if let Some(failed) = items::get_in(tx, subject.item).await? {
            webhooks::record(tx, WebhookEvent::Failed, &failed, now).await?;
        }
    }
    Ok(held)
}
