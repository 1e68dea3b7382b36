//! A completion its owner's quota refuses: the job fails for good with `quota_exceeded`, and
//! what its commit put in the tree goes again, unless another row names it.

use ractor::ActorRef;

use super::in_flight::Running;
use super::{PipelineMsg, PipelineState};
use crate::actors::storage::{FileKind, StorageMsg};
use crate::clock;
use crate::db::{outcome, removal};
use crate::domain::quota::Standing;
use crate::metrics::JobOutcome;

impl PipelineState {
    /// What the attempt stored does not fit in its owner's quota: the job fails for good
    /// with `quota_exceeded`, and the files its commit put in the tree go again.
    pub(super) async fn refuse_over_quota(
        &mut self,
        myself: &ActorRef<PipelineMsg>,
        running: Running,
        committed: Vec<(String, FileKind)>,
        standing: Standing,
    ) {
        let lease = running.lease().clone();
        let error = standing.refusal_at_commit();
        tracing::warn!(job = %lease.job, item = %lease.item, usage_bytes = standing.usage_bytes, quota_bytes = ?standing.quota_bytes, "storing this would take its owner past their quota; the attempt is refused");
        // Only what no other row names goes (a rendition path is shared with every item
        // sharing the video).
        let committed = if committed.is_empty() {
            committed
        } else {
            removal::unnamed(&self.ctx.db, committed, lease.item)
                .await
                .unwrap_or_else(|e| {
                    tracing::error!(item = %lease.item, error = %e, "cannot tell whether the refused files are someone else's; they stay for the sweep");
                    Vec::new()
                })
        };
        if !committed.is_empty()
            && self
                .handles
                .storage
                .send(StorageMsg::DeleteFiles { files: committed })
                .is_err()
        {
            tracing::error!(item = %lease.item, "storage unavailable; the refused files stay behind as orphans");
        }
        let recorded = outcome::fail(
            &self.ctx.db,
            &lease,
            running.subject(),
            &error,
            clock::now(),
        )
        .await;
        self.settle(&running, JobOutcome::Failed, Some(&error), recorded);
        self.finished(myself, running);
    }
}
