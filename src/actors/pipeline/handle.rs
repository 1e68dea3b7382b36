//! `PipelineHandle`: the only way into the Pipeline for the doors (API, bot, watch folder,
//! CLI, intake). Each method owns its request's deadline and turns "the Pipeline is not
//! running right now" into a `JobError` with the code `unavailable`, so a door writes `?`.
//! Submissions are recorded at the front desk (`desk.rs`) in the caller's task, and only
//! the wake-up goes through the mailbox.

use std::sync::Arc;
use std::time::Duration;

use ractor::RpcReplyPort;

use super::desk::Desk;
use super::{LostWork, PipelineMsg};
use crate::actors::handle::Slot;
use crate::context::AppContext;
use crate::db::imports::NewImport;
use crate::db::record::ImportRecord;
use crate::db::record::{CaptureRecord, NewCapture, TranscodeRequest};
use crate::domain::{ItemId, JobError, Quality};

/// A delete stops running attempts and removes rows before it answers.
const DELETE: Duration = Duration::from_secs(90);

#[derive(Clone)]
pub struct PipelineHandle {
    slot: Arc<Slot<PipelineMsg>>,
    desk: Arc<Desk>,
}

impl PipelineHandle {
    pub(in crate::actors) fn new(ctx: Arc<AppContext>) -> Self {
        Self {
            slot: Arc::new(Slot::new("pipeline")),
            desk: Arc::new(Desk::new(ctx)),
        }
    }

    /// Records a URL capture, or finds the existing one (idempotent on the canonical URL).
    pub async fn capture(&self, request: NewCapture) -> Result<CaptureRecord, JobError> {
        let record = self.desk.capture(&request).await?;
        if record.job.is_some() {
            self.wake();
        }
        Ok(record)
    }

    /// Records the import of a local file, or finds the earlier record of the same file.
    pub async fn import(&self, request: NewImport) -> Result<ImportRecord, JobError> {
        let record = self.desk.import(&request).await?;
        if record.created {
            self.wake();
        }
        Ok(record)
    }

    /// Queues a rendition of a completed video (or finds it, or its active job).
    pub async fn transcode(
        &self,
        item: ItemId,
        quality: Quality,
    ) -> Result<TranscodeRequest, JobError> {
        let request = self.desk.transcode(item, quality).await?;
        if matches!(request, TranscodeRequest::Queued { created: true, .. }) {
            self.wake();
        }
        Ok(request)
    }

    /// New work is due: the Pipeline claims it. If the Pipeline is restarting, it claims
    /// everything due when it starts, so a lost wake-up loses nothing.
    fn wake(&self) {
        let _ = self.slot.send(PipelineMsg::Wake);
    }

    /// Deletes an item, its running work, rows and files; `false` when there is no such item.
    pub async fn delete(&self, item: ItemId) -> Result<bool, JobError> {
        self.ask(|reply| PipelineMsg::Delete { item, reply }, DELETE)
            .await
    }

    /// Cancels an item's capture or import; `false` when nothing was left to cancel.
    pub async fn cancel(&self, item: ItemId) -> Result<bool, JobError> {
        self.ask(|reply| PipelineMsg::Cancel { item, reply }, DELETE)
            .await
    }

    /// Whether the Pipeline is running now (readiness).
    pub fn is_running(&self) -> bool {
        self.slot.get().is_some()
    }

    /// Refuses new submissions, stops claiming, and returns once running jobs are done or
    /// `grace` has passed.
    pub(in crate::actors) async fn drain(&self, grace: Duration) -> Result<(), JobError> {
        self.desk.close().await;
        self.slot
            .call(
                |reply| PipelineMsg::Drain { grace, reply },
                grace + Duration::from_secs(5),
            )
            .await
            .map_err(JobError::from)
    }

    /// Tells the Pipeline that work died with an actor.
    pub(in crate::actors) fn work_lost(&self, lost: LostWork) {
        let _ = self.slot.send(PipelineMsg::WorkLost(lost));
    }

    /// Fire-and-forget, for the actors that report to the Pipeline.
    pub(in crate::actors) fn send(&self, message: PipelineMsg) -> Result<(), JobError> {
        self.slot.send(message).map_err(JobError::from)
    }

    pub(in crate::actors) fn slot(&self) -> &Slot<PipelineMsg> {
        &self.slot
    }

    async fn ask<R: Send + 'static>(
        &self,
        build: impl FnOnce(RpcReplyPort<Result<R, JobError>>) -> PipelineMsg,
        deadline: Duration,
    ) -> Result<R, JobError> {
        self.slot
            .call(build, deadline)
            .await
            .map_err(JobError::from)?
    }
}
