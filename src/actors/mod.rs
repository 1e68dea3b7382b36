//! The actor system (ractor): a supervision tree of long-lived actors. `root.rs` shows the
//! whole tree; each other file holds one actor's messages, state and handlers, and calls
//! plain functions elsewhere for the actual work.

pub mod bot;
pub mod download_supervisor;
pub mod downloader;
pub mod handle;
pub mod http_server;
pub mod metrics;
pub mod pipeline;
pub mod processing_pool;
pub mod processing_worker;
pub mod root;
pub mod storage;
pub mod supervision;
pub mod watch_folder;

/// The span a job attempt's work runs in: every line logged inside it names the job and its
/// item, whichever module logs it (yt-dlp wrapper, egress guard, ffmpeg).
pub fn job_span(lease: &crate::db::jobs::Lease) -> tracing::Span {
    tracing::info_span!("job", job = %lease.job, item = %lease.item, attempt = lease.attempt)
}
