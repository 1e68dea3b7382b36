//! The Pipeline's front desk: records what the doors submit (a capture, an import, a
//! transcode) in the caller's own task, then wakes the Pipeline to claim it.
//!
//! Creating an item and its job is not a job transition, so it does not queue behind the
//! Pipeline's mailbox (claim loops, lease renewals, progress writes); the Pipeline stays the
//! only writer of transitions. What the mailbox used to give for free is kept here: once the
//! Pipeline drains for shutdown the desk is closed and refuses submissions, and the drain
//! waits for those being recorded. Ordering against a concurrent delete or cancel is the
//! database's (the recording transaction locks the item it reopens).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::{RwLock, RwLockReadGuard};

use crate::clock;
use crate::context::AppContext;
use crate::db::imports::NewImport;
use crate::db::record::{self, CaptureRecord, ImportRecord, NewCapture, TranscodeRequest};
use crate::db::{DbError, items, quota};
use crate::domain::{ErrorCode, ItemId, JobError, Quality};

/// Recording a submission is one short transaction; this covers a busy database.
const RECORD: Duration = Duration::from_secs(30);

pub(super) struct Desk {
    ctx: Arc<AppContext>,
    closed: AtomicBool,
    /// Held shared by every recording in progress; the drain takes it exclusively, once, to
    /// wait for them.
    recording: RwLock<()>,
}

impl Desk {
    pub(super) fn new(ctx: Arc<AppContext>) -> Self {
        Self {
            ctx,
            closed: AtomicBool::new(false),
            recording: RwLock::new(()),
        }
    }

    pub(super) async fn capture(&self, request: &NewCapture) -> Result<CaptureRecord, JobError> {
        let _open = self.admit().await?;
        let db = &self.ctx.db;
        if let Err(refusal) = self.room_for(request.owner.as_deref()).await {
            // At the quota, a URL the owner already has is still answered: nothing new.
            let known = within_deadline(record::existing_capture(db, request))
                .await?
                .map_err(|e| database_unavailable("look up a capture", e))?;
            return known.ok_or(refusal);
        }
        let recorded = record::capture(db, request, clock::now(), &self.ctx.faults);
        within_deadline(recorded)
            .await?
            .map_err(|e| database_unavailable("record a capture", e))
    }

    pub(super) async fn import(&self, request: &NewImport) -> Result<ImportRecord, JobError> {
        let _open = self.admit().await?;
        if let Err(refusal) = self.room_for(request.owner.as_deref()).await {
            // At the quota, a file already recorded is still answered (recording it again
            // finds the earlier record and creates nothing).
            let known = within_deadline(record::find_import(&self.ctx.db, &request.key))
                .await?
                .map_err(|e| database_unavailable("look up an import", e))?;
            if known.is_none() {
                return Err(refusal);
            }
        }
        within_deadline(record::import(&self.ctx.db, request, clock::now()))
            .await?
            .map_err(|e| database_unavailable("record an import", e))
    }

    pub(super) async fn transcode(
        &self,
        item: ItemId,
        quality: Quality,
    ) -> Result<TranscodeRequest, JobError> {
        let _open = self.admit().await?;
        let owner = within_deadline(items::get(&self.ctx.db, item))
            .await?
            .map_err(|e| database_unavailable("read an item", e))?
            .and_then(|found| found.owner);
        if let Err(refusal) = self.room_for(owner.as_deref()).await {
            // At the quota, a rendition that exists or is coming is still answered.
            let known = within_deadline(record::known_transcode(&self.ctx.db, item, quality))
                .await?
                .map_err(|e| database_unavailable("look up a transcode", e))?;
            return known.ok_or(refusal);
        }
        let max_attempts = self.ctx.settings.queue.max_attempts.get();
        let queued = record::transcode(&self.ctx.db, item, quality, max_attempts, clock::now());
        within_deadline(queued).await?.map_err(|e| match e {
            // The item was deleted between the caller's check and this insert.
            DbError::Sqlx(sqlx::Error::Database(db)) if db.is_foreign_key_violation() => {
                JobError::new(ErrorCode::NotFound, format!("no item {item}"))
            }
            other => database_unavailable("queue a transcode", other),
        })
    }

    /// Refuses new work from an owner who is at or over their quota (`quota_exceeded`, with
    /// the figures). What is under way is checked again, atomically, when it completes.
    async fn room_for(&self, owner: Option<&str>) -> Result<(), JobError> {
        let Some(owner) = owner else {
            return Ok(());
        };
        let standing = within_deadline(quota::limited(&self.ctx.db, owner))
            .await?
            .map_err(|e| database_unavailable("read a quota", e))?;
        match standing {
            Some(standing) if standing.is_full() => Err(standing.refusal()),
            _ => Ok(()),
        }
    }

    /// Refuses every later submission and waits for those being recorded now.
    pub(super) async fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        drop(self.recording.write().await);
    }

    /// A ticket to record, unless the service is stopping or media_root is below its
    /// free-space floor (new work would only fail with `disk_full` and burn its attempts).
    /// `RwLock` is fair: once `close` waits for the exclusive hold, a later `admit` waits
    /// behind it and then sees the desk closed.
    async fn admit(&self) -> Result<RwLockReadGuard<'_, ()>, JobError> {
        let open = self.recording.read().await;
        if self.closed.load(Ordering::SeqCst) || self.ctx.is_shutting_down() {
            return Err(JobError::new(
                ErrorCode::ShuttingDown,
                "the service is shutting down",
            ));
        }
        self.ctx.space.admit(self.ctx.media.path())?;
        Ok(open)
    }
}

async fn within_deadline<T>(work: impl Future<Output = T>) -> Result<T, JobError> {
    tokio::time::timeout(RECORD, work).await.map_err(|_| {
        tracing::error!("the database did not record a submission within {RECORD:?}");
        JobError::new(
            ErrorCode::Unavailable,
            "the database is not answering; try again",
        )
    })
}

fn database_unavailable(what: &str, e: DbError) -> JobError {
    tracing::error!(error = %e, "cannot {what}");
    JobError::new(
        ErrorCode::Unavailable,
        "the database is not available; try again",
    )
}
