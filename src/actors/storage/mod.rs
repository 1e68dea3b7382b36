//! StorageActor: the only writer of the final media tree, and its accountant.
//!
//! It moves a finished job's files into place with the finalize protocol (fsync, rename,
//! fsync directory), deletes the files of deleted items, removes work directories, and keeps
//! the bytes and counts by kind that `/api/storage/stats` reports: loaded from the database at
//! start, updated by every commit and delete, re-read from the database periodically so it
//! never drifts, with temp space measured on the same timer rather than per request.
//!
//! This file holds the actor's messages, state and handlers; the work they call is plain
//! functions beside it (`files.rs`: commit, removal, measuring temp; `sweep_run.rs`: one
//! sweep). The handlers keep the accounting and the replies, never the file work itself.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

mod files;
mod handle;
mod sweep_run;

pub use handle::StorageHandle;

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use tokio_util::task::AbortOnDropHandle;

use super::Env;
use super::pipeline::{PipelineHandle, PipelineMsg};
use crate::context::AppContext;
use crate::db::items::{self, StoredUsage, Tally};
use crate::db::jobs::Lease;
use crate::domain::quota::USAGE_HISTORY_DAYS;
use crate::domain::{ErrorCode, JobError};
use crate::faults::FaultPoint;
use crate::metrics::{CleanupOperation, CleanupStatus, Event};
use crate::storage;
use crate::storage::sweep::SweepReport;
use files::{commit, measure, remove_files};
use sweep_run::run_sweep;

/// How often totals are re-read from the database and temp is measured.
const REFRESH: Duration = Duration::from_secs(30);
/// How often removals held back by a running backup are tried again.
const DEFERRED_RETRY: Duration = Duration::from_secs(5);

pub use crate::domain::layout::FileKind;

/// A work file and where it goes in the tree.
#[derive(Debug, Clone)]
pub struct CommitFile {
    pub source: PathBuf,
    pub relative: String,
    pub kind: FileKind,
}

/// Bytes and counts by kind, and the disk they live on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StorageStats {
    pub stored: StoredUsage,
    pub temp: Tally,
    pub disk_total_bytes: u64,
    pub disk_free_bytes: u64,
}

impl StorageStats {
    /// What is stored plus the work in progress under temp/.
    pub fn total_bytes(&self) -> u64 {
        self.stored.stored_bytes() + self.temp.bytes
    }
}

#[derive(Debug)]
pub enum StorageMsg {
    /// Move files into the tree; the Pipeline hears back through `PipelineMsg::Committed`.
    Commit {
        lease: Lease,
        files: Vec<CommitFile>,
    },
    /// Remove an attempt's work directory.
    DiscardWorkDir(PathBuf),
    /// Remove a deleted item's files (relative paths); held back while a backup runs.
    DeleteFiles {
        files: Vec<(String, FileKind)>,
    },
    /// Try again the removals a backup held back.
    RemoveDeferred,
    Stats(RpcReplyPort<StorageStats>),
    Refresh,
    /// Reconcile the tree with the database (see `storage::sweep`); the report goes to the
    /// reply port when there is one (`POST /api/storage/cleanup`), otherwise to the logs.
    Sweep(Option<RpcReplyPort<Result<SweepReport, String>>>),
}

pub struct StorageState {
    ctx: Arc<AppContext>,
    pipeline: PipelineHandle,
    handle: StorageHandle,
    stored: StoredUsage,
    temp: Tally,
    /// The last day whose usage this actor saw recorded (`usage_history`).
    history_day: Option<String>,
    /// Files of deleted items waiting for a backup's lease to end (a crash leaves them as
    /// orphans, which the sweep clears).
    deferred: Vec<(String, FileKind)>,
    deferred_retry: bool,
    _ticker: AbortOnDropHandle<()>,
    _sweeper: Option<AbortOnDropHandle<()>>,
}

impl StorageState {
    fn tally(&mut self, kind: FileKind) -> &mut Tally {
        match kind {
            FileKind::Video => &mut self.stored.videos,
            FileKind::Image => &mut self.stored.images,
            FileKind::Thumbnail => &mut self.stored.thumbnails,
            FileKind::Rendition => &mut self.stored.renditions,
            FileKind::Subtitle => &mut self.stored.subtitles,
        }
    }
}

pub struct StorageActor;

impl Actor for StorageActor {
    type Msg = StorageMsg;
    type State = StorageState;
    type Arguments = Env;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        Env { ctx, handles }: Self::Arguments,
    ) -> Result<Self::State, ActorProcessingErr> {
        let stored = items::stored_usage(&ctx.db).await?;
        let temp = measure(ctx.media.processing_dir()).await;
        let ticker = myself.send_interval(REFRESH, || StorageMsg::Refresh);
        let every = ctx.settings.storage.sweep_interval_secs;
        let sweeper = (every > 0).then(|| {
            // The first sweep soon after start (FS-03: a crash is when leftovers appear).
            myself.send_after(Duration::from_secs(30), || StorageMsg::Sweep(None));
            AbortOnDropHandle::new(
                myself.send_interval(Duration::from_secs(every), || StorageMsg::Sweep(None)),
            )
        });
        // The day's usage history is due now, not a refresh interval from now.
        let _ = myself.send_message(StorageMsg::Refresh);
        handles.storage.slot().set(myself);
        Ok(StorageState {
            ctx,
            pipeline: handles.pipeline,
            handle: handles.storage,
            stored,
            temp,
            history_day: None,
            deferred: Vec::new(),
            deferred_retry: false,
            _ticker: AbortOnDropHandle::new(ticker),
            _sweeper: sweeper,
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        message: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            StorageMsg::Commit { lease, files } => {
                state.ctx.faults.crash_if_armed(FaultPoint::StorageCommit);
                let media = state.ctx.media.clone();
                let moved = files.clone();
                // A zombie attempt (one whose job another process took over) must not rename
                // its files over the finished ones: check the lease right before the rename.
                // The remaining window is the few milliseconds between this check and it.
                let held = crate::db::jobs::holds(&state.ctx.db, &lease).await;
                let result = match held {
                    Ok(true) => tokio::task::spawn_blocking(move || commit(&media, &moved))
                        .await
                        .unwrap_or_else(|e| {
                            Err(JobError::new(
                                ErrorCode::Internal,
                                format!("commit task failed: {e}"),
                            ))
                        }),
                    Ok(false) => Err(JobError::new(
                        ErrorCode::WorkerLost,
                        "this attempt lost its job to another worker; its files were not stored",
                    )),
                    Err(e) => Err(JobError::new(
                        ErrorCode::Unavailable,
                        format!("cannot check the job before storing its files: {e}"),
                    )),
                };
                if let Ok(sizes) = &result {
                    for (file, bytes) in files.iter().zip(sizes) {
                        let tally = state.tally(file.kind);
                        tally.files += 1;
                        tally.bytes += bytes;
                    }
                }
                if state
                    .pipeline
                    .send(PipelineMsg::Committed {
                        lease,
                        result: result.map(drop),
                    })
                    .is_err()
                {
                    // The Pipeline is restarting; it re-reads running jobs from the database,
                    // so this attempt is retried and its files are written again.
                    tracing::warn!("pipeline unavailable to receive a commit result");
                }
            }
            StorageMsg::DiscardWorkDir(dir) => {
                let removed =
                    tokio::task::spawn_blocking(move || storage::remove_work_dir(&dir)).await;
                let status = match removed {
                    Ok(Ok(())) => CleanupStatus::Removed,
                    Ok(Err(e)) => {
                        tracing::warn!(error = %e, "cannot remove a work directory; the sweep will retry");
                        CleanupStatus::Failed
                    }
                    Err(_) => CleanupStatus::Failed,
                };
                state.ctx.observe(Event::Cleanup {
                    operation: CleanupOperation::Temp,
                    status,
                    count: 1,
                });
            }
            StorageMsg::Sweep(reply) => {
                let report = run_sweep(&state.ctx).await;
                if let Ok(report) = &report {
                    state.temp = measure(state.ctx.media.processing_dir()).await;
                    if report.orphans.done > 0 || report.temp.done > 0 {
                        tracing::info!(
                            temp = report.temp.done,
                            resume = report.resume.done,
                            orphans = report.orphans.done,
                            purged = report.quarantine_purged.done,
                            "storage sweep"
                        );
                    }
                }
                if let Err(e) = &report {
                    tracing::warn!(error = %e, "storage sweep skipped");
                }
                if let Some(reply) = reply {
                    let _ = reply.send(report);
                }
            }
            StorageMsg::DeleteFiles { files } => {
                state.deferred.extend(files);
                remove_deferred(&myself, state).await;
            }
            StorageMsg::RemoveDeferred => {
                state.deferred_retry = false;
                remove_deferred(&myself, state).await;
            }
            StorageMsg::Stats(reply) => {
                let root = state.ctx.media.path().to_path_buf();
                let (total, free) = tokio::task::spawn_blocking(move || {
                    storage::disk_space(&root).unwrap_or((0, 0))
                })
                .await
                .unwrap_or((0, 0));
                let _ = reply.send(StorageStats {
                    stored: state.stored,
                    temp: state.temp,
                    disk_total_bytes: total,
                    disk_free_bytes: free,
                });
            }
            StorageMsg::Refresh => {
                match items::stored_usage(&state.ctx.db).await {
                    Ok(stored) => state.stored = stored,
                    Err(e) => tracing::warn!(error = %e, "cannot re-read storage totals"),
                }
                state.temp = measure(state.ctx.media.processing_dir()).await;
                record_usage_history(state).await;
            }
        }
        Ok(())
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<Self::Msg>,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        state.handle.slot().clear();
        Ok(())
    }
}

/// Removes the files of deleted items, unless a backup holds its lease: then they wait, and
/// are tried again every few seconds (the backup may be about to copy them).
async fn remove_deferred(myself: &ActorRef<StorageMsg>, state: &mut StorageState) {
    if state.deferred.is_empty() {
        return;
    }
    let held = crate::db::backup_leases::held(&state.ctx.db, crate::clock::now())
        .await
        .unwrap_or_else(|e| {
            tracing::warn!(error = %e, "cannot ask whether a backup runs; removals wait");
            true
        });
    if held {
        if !state.deferred_retry {
            state.deferred_retry = true;
            myself.send_after(DEFERRED_RETRY, || StorageMsg::RemoveDeferred);
        }
        return;
    }
    let files = std::mem::take(&mut state.deferred);
    let media = state.ctx.media.clone();
    let targets = files.clone();
    match tokio::task::spawn_blocking(move || remove_files(&media, &targets)).await {
        Ok(Ok(sizes)) => {
            for ((_, kind), bytes) in files.iter().zip(sizes) {
                if let Some(bytes) = bytes {
                    let tally = state.tally(*kind);
                    tally.files = tally.files.saturating_sub(1);
                    tally.bytes = tally.bytes.saturating_sub(bytes);
                }
            }
        }
        Ok(Err(e)) => {
            tracing::error!(error = %e, "cannot remove a deleted item's files; they stay as orphans")
        }
        Err(e) => tracing::error!(error = %e, "file removal task failed"),
    }
}

/// Once a day (the first refresh of each UTC day), the day's usage goes into the history,
/// whether or not metrics are enabled. Several instances on one database write the same
/// figures; recording a day again only replaces them.
async fn record_usage_history(state: &mut StorageState) {
    let now = crate::clock::now();
    let (Some(today), Some(keep_from)) = (
        now.day(),
        now.minus(Duration::from_secs(USAGE_HISTORY_DAYS * 86_400))
            .day(),
    ) else {
        return;
    };
    if state.history_day.as_deref() == Some(today.as_str()) {
        return;
    }
    let db = &state.ctx.db;
    let recorded = match crate::db::usage_history::has_day(db, &today).await {
        Ok(true) => Ok(()),
        Ok(false) => crate::db::storage_report::record_day(db, &today, &keep_from).await,
        Err(e) => Err(e),
    };
    match recorded {
        Ok(()) => state.history_day = Some(today),
        // Tried again at the next refresh.
        Err(e) => tracing::warn!(error = %e, "cannot record today's storage usage"),
    }
}
