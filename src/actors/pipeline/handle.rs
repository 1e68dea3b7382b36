//! `PipelineHandle`: the only way into the Pipeline for the doors (API, bot, watch folder,
//! CLI, intake). Each method owns its request's deadline and turns "the Pipeline is not
//! running right now" into a `JobError` with the code `unavailable`, so a door writes `?`.

use std::sync::Arc;
use std::time::Duration;

use ractor::RpcReplyPort;

use super::{LostWork, PipelineMsg};
use crate::actors::handle::Slot;
use crate::db::imports::NewImport;
use crate::db::record::ImportRecord;
use crate::db::record::{CaptureRecord, NewCapture, TranscodeRequest};
use crate::domain::{ItemId, JobError, Quality};

/// Recording a submission is one short transaction; this covers a busy database.
const RECORD: Duration = Duration::from_secs(30);
/// A delete stops running attempts and removes rows before it answers.
const DELETE: Duration = Duration::from_secs(90);

#[derive(Clone)]
pub struct PipelineHandle {
    slot: Arc<Slot<PipelineMsg>>,
}

impl PipelineHandle {
    pub(in crate::actors) fn new() -> Self {
        Self {
            slot: Arc::new(Slot::new("pipeline")),
        }
    }

    /// Records a URL capture, or finds the existing one (idempotent on the canonical URL).
    pub async fn capture(&self, request: NewCapture) -> Result<CaptureRecord, JobError> {
        self.ask(|reply| PipelineMsg::Capture { request, reply }, RECORD)
            .await
    }

    /// Records the import of a local file, or finds the earlier record of the same file.
    pub async fn import(&self, request: NewImport) -> Result<ImportRecord, JobError> {
        self.ask(|reply| PipelineMsg::Import { request, reply }, RECORD)
            .await
    }

    /// Queues a rendition of a completed video (or finds it, or its active job).
    pub async fn transcode(
        &self,
        item: ItemId,
        quality: Quality,
    ) -> Result<TranscodeRequest, JobError> {
        self.ask(
            |reply| PipelineMsg::Transcode {
                item,
                quality,
                reply,
            },
            RECORD,
        )
        .await
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

    /// Stops claiming, and returns once running jobs are done or `grace` has passed.
    pub(in crate::actors) async fn drain(&self, grace: Duration) -> Result<(), JobError> {
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
