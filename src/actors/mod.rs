//! The actor system (ractor): a supervision tree of long-lived actors. `root.rs` shows the
//! whole tree; each other file holds one actor's messages, state and handlers, and calls
//! plain functions elsewhere for the actual work.
//!
//! Message types never leave this module: callers outside it hold typed handles
//! (`PipelineHandle`, `StorageHandle`) whose methods are the only way in, and the doors (API
//! server, watch folder, bot) are run by the generic `DoorActor`, which owns only their
//! lifecycle.

pub mod attempt;
pub mod backups;
pub mod door;
pub mod download_supervisor;
pub mod downloader;
pub mod handle;
pub mod metrics;
pub mod pipeline;
pub mod processing_pool;
pub mod processing_worker;
pub mod root;
pub mod storage;
pub mod supervision;
pub mod webhooks;

use std::sync::Arc;

use crate::context::AppContext;
pub use backups::BackupsHandle;
pub use pipeline::PipelineHandle;
pub use storage::StorageHandle;

/// The handles of the actors that others call. One set per app, created before the tree;
/// each supervisor keeps its child's handle current across restarts, so a handle never goes
/// stale.
#[derive(Clone)]
pub struct Handles {
    pub pipeline: PipelineHandle,
    pub storage: StorageHandle,
    pub backups: BackupsHandle,
}

impl Handles {
    /// Handles to actors not started yet: the tree fills them in as it starts.
    pub fn new(ctx: &Arc<AppContext>) -> Self {
        Self {
            pipeline: PipelineHandle::new(Arc::clone(ctx)),
            storage: StorageHandle::new(),
            backups: BackupsHandle::new(),
        }
    }
}

/// What an actor of the tree is started with: the app's services and its peers' handles.
#[derive(Clone)]
pub struct Env {
    pub ctx: Arc<AppContext>,
    pub handles: Handles,
}

/// The span a job attempt's work runs in: every line logged inside it names the job and its
/// item, whichever module logs it (yt-dlp wrapper, egress guard, ffmpeg).
pub fn job_span(lease: &crate::db::jobs::Lease) -> tracing::Span {
    tracing::info_span!("job", job = %lease.job, item = %lease.item, attempt = lease.attempt)
}
