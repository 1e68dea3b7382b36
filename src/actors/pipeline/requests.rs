//! Requests the Pipeline answers itself, because they stop running attempts: cancel or
//! delete an item. (Recording submissions is the front desk's, in `desk.rs`.)

use ractor::ActorRef;

use super::output::Output;
use super::{PipelineMsg, PipelineState};
use crate::actors::storage::StorageMsg;
use crate::clock;
use crate::context::ItemChange;
use crate::db::DbError;
use crate::db::jobs;
use crate::db::removal;
use crate::domain::layout::{FileKind, subtitle_path};
use crate::domain::{ErrorCode, ItemId, ItemStatus, JobError};
use crate::metrics::{Event, JobOutcome};

impl PipelineState {
    fn database_unavailable(&self, what: &str, e: DbError) -> JobError {
        tracing::error!(error = %e, "cannot {what}");
        JobError::new(
            ErrorCode::Unavailable,
            "the database is not available; try again",
        )
    }

    /// Stops a running attempt of ours (its tools killed, its work dir cleared by the actor that
    /// ran it or, mid-commit, by Storage) and counts it cancelled; `why` goes to the log.
    fn stop_attempt(
        &mut self,
        myself: &ActorRef<PipelineMsg>,
        lease: &jobs::Lease,
        why: &str,
    ) -> Option<super::in_flight::Running> {
        let running = self.take_running(myself, lease)?;
        self.cancel_work(&running);
        if !Self::holder_cleans_up(running.holder) {
            // No tool runs for it (a commit, a copy, a parked result): its directory goes now.
            self.handles
                .storage
                .discard_work_dir(running.work_dir.clone());
        }
        tracing::info!(job = %lease.job, item = %lease.item, "{why}");
        self.ctx.observe(Event::JobFinished {
            kind: running.job.kind,
            quality: running.quality,
            outcome: JobOutcome::Cancelled,
            code: None,
        });
        self.slot_freed(myself);
        Some(running)
    }

    /// Cancels an item's capture or import on its owner's request: the running attempt (here)
    /// stops, and the job and item end `cancelled` (an attempt running on another instance
    /// loses its lease and cannot complete). Renditions being made are left alone.
    pub(super) async fn cancel(
        &mut self,
        myself: &ActorRef<PipelineMsg>,
        item: ItemId,
    ) -> Result<bool, JobError> {
        for lease in self.in_flight.of_item(item) {
            let makes_item = self
                .in_flight
                .current(&lease)
                .is_some_and(|running| running.job.kind.makes_item());
            if !makes_item {
                continue;
            }
            if let Some(running) =
                self.stop_attempt(myself, &lease, "cancelled at its owner's request")
            {
                // A queued import's upload is left to the sweep (it names no unfinished job).
                self.discard_owned_upload(&running.job);
            }
        }
        let error = JobError::new(ErrorCode::Cancelled, "cancelled by its owner");
        let cancelled = removal::cancel_item(&self.ctx.db, item, &error, clock::now())
            .await
            .map_err(|e| self.database_unavailable("cancel an item", e))?;
        if cancelled {
            self.ctx.publish(
                item,
                ItemChange::Status {
                    status: ItemStatus::Cancelled,
                    error: Some(error),
                },
            );
        }
        Ok(cancelled)
    }

    /// Deletes an item: its running work is cancelled (processes killed, work dirs removed by
    /// the actors that ran them), its rows go, then its files. `false` when there is no such
    /// item.
    pub(super) async fn delete(
        &mut self,
        myself: &ActorRef<PipelineMsg>,
        item: ItemId,
    ) -> Result<bool, JobError> {
        let mut making = Vec::new();
        // Sidecars a finishing capture may have committed already (its row does not list
        // them yet); they are named after its own video, which nobody else's row names.
        let mut sidecars = Vec::new();
        for lease in self.in_flight.of_item(item) {
            let Some(running) =
                self.stop_attempt(myself, &lease, "cancelled: the item is being deleted")
            else {
                continue;
            };
            // A rendition still being made has no row yet, but may have a file soon.
            if let Some(quality) = running.quality {
                making.push(running.item.paths.rendition(quality));
            }
            if let (Some(Output::Item(output)), None) = (&running.output, &running.shared) {
                sidecars.extend(output.subtitles.iter().map(|sub| {
                    (
                        subtitle_path(&running.item.paths.file, sub.track.lang.as_str()),
                        FileKind::Subtitle,
                    )
                }));
            }
        }

        let deleted =
            removal::delete_item(&self.ctx.db, item, making, &self.ctx.faults, clock::now())
                .await
                .map_err(|e| self.database_unavailable("delete an item", e))?;
        let Some(deleted) = deleted else {
            return Ok(false);
        };
        self.ctx.served.forget_item(item);
        // Files another item shares stay until the last one goes.
        let mut files = deleted.files();
        if !deleted.files_shared {
            for sidecar in sidecars {
                if !files.contains(&sidecar) {
                    files.push(sidecar);
                }
            }
        }
        // The rows are gone, so nothing serves the item any more; the files follow without
        // holding up the Pipeline (Storage may be busy committing). If Storage is down they
        // stay behind as orphans for the sweep.
        if self
            .handles
            .storage
            .send(StorageMsg::DeleteFiles { files })
            .is_err()
        {
            tracing::error!(%item, "storage unavailable; the deleted item's files stay behind as orphans");
        }
        if !deleted.owned_uploads.is_empty() {
            let (media, uploads) = (self.ctx.media.clone(), deleted.owned_uploads);
            tokio::task::spawn_blocking(move || {
                crate::storage::import::discard_uploads(&media, &uploads)
            });
        }
        let error = JobError::new(ErrorCode::Cancelled, "the item was deleted");
        self.ctx.publish(
            item,
            ItemChange::Status {
                status: ItemStatus::Cancelled,
                error: Some(error),
            },
        );
        Ok(true)
    }
}
