//! `AttemptTask`: one attempt's work running inside a downloader or a processing worker.
//!
//! It holds the attempt's lease, its work directory and the task doing the work. The task
//! runs in the attempt's `job` span and is owned: dropping or cancelling the `AttemptTask`
//! aborts it, which drops the tool's process handle and so kills its process group. Work
//! directories have one remover, the StorageActor (`StorageHandle::discard_work_dir`): a
//! cancel first stops the tool, then hands the directory over, so no tool writes into a
//! directory that is being removed. An attempt that ends by itself leaves its directory to
//! the Pipeline, which needs it until the commit and discards it when the attempt is over.

use std::path::PathBuf;

use tokio_util::task::AbortOnDropHandle;
use tracing::Instrument;

use super::storage::StorageHandle;
use crate::db::jobs::Lease;

pub struct AttemptTask {
    lease: Lease,
    work_dir: PathBuf,
    _task: AbortOnDropHandle<()>,
}

impl AttemptTask {
    /// Runs `work` for the attempt `lease`, in its span.
    pub fn spawn(
        lease: Lease,
        work_dir: PathBuf,
        work: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Self {
        let span = super::job_span(&lease);
        Self {
            lease,
            work_dir,
            _task: AbortOnDropHandle::new(tokio::spawn(work.instrument(span))),
        }
    }

    pub fn lease(&self) -> &Lease {
        &self.lease
    }

    /// Stops the attempt: its tool is killed, then its work directory is removed. Returns
    /// the lease, for the caller's bookkeeping.
    pub fn cancel(self, storage: &StorageHandle) -> Lease {
        let Self {
            lease,
            work_dir,
            _task,
        } = self;
        drop(_task);
        storage.discard_work_dir(work_dir);
        lease
    }
}
