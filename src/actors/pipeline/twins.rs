//! Before a capture downloads or a transcode converts: another item may already hold the
//! result (the same video captured for another owner, the same rendition of a shared video),
//! or an earlier item may be making it right now. Then the attempt shares the stored files
//! and completes at once, or waits, uncharged, for the other one to finish, instead of
//! fetching and storing the same bytes twice (`db::twins`).

use std::time::Duration;

use ractor::ActorRef;

use super::{PipelineMsg, PipelineState};
use crate::clock;
use crate::db::jobs::Lease;
use crate::db::outcome::Completed;
use crate::db::twins::{self, Twin};
use crate::domain::{ItemId, JobKind};
use crate::metrics::JobOutcome;

/// How long an attempt waits before looking at its twin again: short enough that the
/// second capture follows the first closely, long enough not to churn the queue.
const TWIN_POLL: Duration = Duration::from_secs(3);

impl PipelineState {
    /// True when the attempt was settled here: completed from its twin's files, or put back
    /// to wait for it. False: the attempt does its own work.
    pub(super) async fn settled_by_twin(
        &mut self,
        myself: &ActorRef<PipelineMsg>,
        lease: &Lease,
    ) -> bool {
        let Some(running) = self.in_flight.current(lease) else {
            return false;
        };
        let quality = running.quality;
        let found = match (running.job.kind, quality) {
            (JobKind::Capture, _) => twins::of_capture(&self.ctx.db, &running.item).await,
            (JobKind::Transcode, Some(quality)) => {
                twins::of_rendition(&self.ctx.db, &running.item, quality, lease.job).await
            }
            _ => return false,
        };
        match found {
            Ok(Twin::Stored(twin)) => self.adopt_twin(myself, lease, twin).await,
            Ok(Twin::Coming) => {
                self.wait_for_twin(myself, lease).await;
                true
            }
            Ok(Twin::Alone) => false,
            // A capture's work goes to its own files: not knowing costs only doing it twice.
            // A transcode of a shared video would write a file other items may name, so it
            // waits instead.
            Err(e) => {
                tracing::warn!(job = %lease.job, item = %lease.item, error = %e, "cannot look for another item with the same work");
                if quality.is_some() {
                    self.wait_for_twin(myself, lease).await;
                    return true;
                }
                false
            }
        }
    }

    async fn adopt_twin(
        &mut self,
        myself: &ActorRef<PipelineMsg>,
        lease: &Lease,
        twin: ItemId,
    ) -> bool {
        let quality = self.in_flight.current(lease).and_then(|r| r.quality);
        let recorded = match twins::adopt(&self.ctx.db, lease, twin, quality, clock::now()).await {
            // Deleted a moment ago: do the work after all.
            Ok(None) => return false,
            Ok(Some(Completed::Recorded)) => Ok(true),
            Ok(Some(Completed::LostLease)) => Ok(false),
            // Only a content twin's completion can find it gone (`outcome::complete`).
            Ok(Some(Completed::TwinGone)) => return false,
            Ok(Some(Completed::OverQuota(standing))) => {
                if let Some(running) = self.take_running(myself, lease) {
                    self.refuse_over_quota(myself, running, Vec::new(), standing)
                        .await;
                }
                return true;
            }
            Err(e) => Err(e),
        };
        let Some(running) = self.take_running(myself, lease) else {
            return true;
        };
        tracing::info!(job = %lease.job, item = %lease.item, %twin, "another item already had this; sharing its files");
        self.settle(&running, JobOutcome::Completed, None, recorded);
        self.finished(myself, running);
        true
    }

    async fn wait_for_twin(&mut self, myself: &ActorRef<PipelineMsg>, lease: &Lease) {
        let Some(running) = self.take_running(myself, lease) else {
            return;
        };
        tracing::debug!(job = %lease.job, item = %lease.item, "an earlier item is fetching the same; waiting for it");
        self.try_again_uncharged(myself, running, None, TWIN_POLL)
            .await;
    }
}
