//! `StorageHandle`: how the doors and the other actors reach the StorageActor. Its methods
//! own their deadlines and report "not running right now" as a `JobError` (`unavailable`).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::{StorageMsg, StorageStats};
use crate::actors::handle::Slot;
use crate::domain::{ErrorCode, JobError};
use crate::storage::sweep::SweepReport;

/// The totals are in memory; only the disk's free space is asked of the kernel.
const STATS: Duration = Duration::from_secs(10);
/// A sweep walks the whole tree; a large library takes a while.
const SWEEP: Duration = Duration::from_secs(600);

#[derive(Clone)]
pub struct StorageHandle {
    slot: Arc<Slot<StorageMsg>>,
}

impl StorageHandle {
    pub(in crate::actors) fn new() -> Self {
        Self {
            slot: Arc::new(Slot::new("storage")),
        }
    }

    /// Bytes and counts by kind, and the disk media_root lives on.
    pub async fn stats(&self) -> Result<StorageStats, JobError> {
        self.slot
            .call(StorageMsg::Stats, STATS)
            .await
            .map_err(JobError::from)
    }

    /// Reconciles the tree with the database now (see `storage::sweep`).
    pub async fn sweep(&self) -> Result<SweepReport, JobError> {
        self.slot
            .call(|reply| StorageMsg::Sweep(Some(reply)), SWEEP)
            .await
            .map_err(JobError::from)?
            .map_err(|e| JobError::new(ErrorCode::Unavailable, e))
    }

    /// Removes an attempt's work directory. Storage is the one remover of work directories
    /// (and counts it); while it restarts, the directory is removed here, on a thread of its
    /// own, so that nothing is left behind for the sweep.
    pub(in crate::actors) fn discard_work_dir(&self, dir: PathBuf) {
        if let Err(e) = self.slot.send(StorageMsg::DiscardWorkDir(dir.clone())) {
            tracing::debug!(error = %e, "removing a work directory without Storage");
            std::thread::spawn(move || crate::storage::remove_work_dir(&dir));
        }
    }

    /// Fire-and-forget, for the Pipeline's commits and deletes.
    pub(in crate::actors) fn send(&self, message: StorageMsg) -> Result<(), JobError> {
        self.slot.send(message).map_err(JobError::from)
    }

    pub(in crate::actors) fn slot(&self) -> &Slot<StorageMsg> {
        &self.slot
    }
}
