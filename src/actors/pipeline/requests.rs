//! Requests the Pipeline answers: record a capture, queue a rendition, cancel or delete an
//! item.

use ractor::ActorRef;

use super::{PipelineMsg, PipelineState};
use crate::actors::storage::{FileKind, StorageMsg};
use crate::clock;
use crate::context::ItemChange;
use crate::db::DbError;
use crate::db::imports::NewImport;
use crate::db::jobs;
use crate::db::record::ImportRecord;
use crate::db::record::{self, CaptureRecord, NewCapture, TranscodeRequest};
use crate::db::removal;
use crate::domain::{ErrorCode, ItemId, ItemKind, ItemStatus, JobError, Quality};
use crate::metrics::{Event, JobOutcome};

impl PipelineState {
    fn refuse_while_stopping(&self) -> Result<(), JobError> {
        if self.draining || self.ctx.is_shutting_down() {
            Err(JobError::new(
                ErrorCode::ShuttingDown,
                "the service is shutting down",
            ))
        } else {
            Ok(())
        }
    }

    fn database_unavailable(&self, what: &str, e: DbError) -> JobError {
        tracing::error!(error = %e, "cannot {what}");
        JobError::new(
            ErrorCode::Unavailable,
            "the database is not available; try again",
        )
    }

    pub(super) async fn capture(&self, request: &NewCapture) -> Result<CaptureRecord, JobError> {
        self.refuse_while_stopping()?;
        record::capture(&self.ctx.db, request, clock::now())
            .await
            .map_err(|e| self.database_unavailable("record a capture", e))
    }

    pub(super) async fn import(&self, request: &NewImport) -> Result<ImportRecord, JobError> {
        self.refuse_while_stopping()?;
        record::import(&self.ctx.db, request, clock::now())
            .await
            .map_err(|e| self.database_unavailable("record an import", e))
    }

    pub(super) async fn transcode(
        &self,
        item: ItemId,
        quality: Quality,
    ) -> Result<TranscodeRequest, JobError> {
        self.refuse_while_stopping()?;
        record::transcode(
            &self.ctx.db,
            item,
            quality,
            self.ctx.settings.queue.max_attempts.get(),
            clock::now(),
        )
        .await
        .map_err(|e| match e {
            // The item was deleted between the caller's check and this insert.
            DbError::Sqlx(sqlx::Error::Database(db)) if db.is_foreign_key_violation() => {
                JobError::new(ErrorCode::NotFound, format!("no item {item}"))
            }
            other => self.database_unavailable("queue a transcode", other),
        })
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
        let mut pending_files = Vec::new();
        for lease in self.in_flight.of_item(item) {
            let Some(running) =
                self.stop_attempt(myself, &lease, "cancelled: the item is being deleted")
            else {
                continue;
            };
            // A rendition still being made has no row yet, but may have a file soon.
            if let Some(quality) = running.quality {
                pending_files.push((running.item.paths.rendition(quality), FileKind::Rendition));
            }
        }

        let deleted = removal::delete_item(&self.ctx.db, item)
            .await
            .map_err(|e| self.database_unavailable("delete an item", e))?;
        let Some(deleted) = deleted else {
            return Ok(false);
        };
        self.ctx.served.forget_item(item);
        let p = &deleted.item.paths;
        let own_kind = match deleted.item.kind {
            ItemKind::Video => FileKind::Video,
            ItemKind::Image => FileKind::Image,
        };
        // Files shared with an item of the same content stay until the last one goes.
        let mut files = if deleted.files_shared {
            Vec::new()
        } else {
            vec![
                (p.file.clone(), own_kind),
                (p.thumb_small.clone(), FileKind::Thumbnail),
                (p.thumb_medium.clone(), FileKind::Thumbnail),
                (p.thumb_large.clone(), FileKind::Thumbnail),
            ]
        };
        files.extend(
            deleted
                .renditions
                .iter()
                .map(|r| (r.path.clone(), FileKind::Rendition)),
        );
        files.extend(pending_files);
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
