//! What happens in the service that the counters and histograms count: plain data, recorded
//! straight on the app's registry by `Metrics::record`. Nothing goes through a mailbox, so no
//! event is lost while an actor restarts.

use super::Families;
use super::labels::{
    CaptureOutcome, CleanupOperation, CleanupStatus, JobOutcome, ProcessingStage, RescanReason,
    WatchOutcome,
};
use crate::domain::{ErrorCode, JobKind, Platform, Quality, Source};

#[derive(Debug)]
pub enum Event {
    /// A submission reached a door (API, Telegram, watch folder).
    CaptureRequested {
        source: Source,
        outcome: CaptureOutcome,
    },
    /// An attempt of a job ended.
    JobFinished {
        kind: JobKind,
        /// The rendition's quality, for transcode jobs.
        quality: Option<Quality>,
        outcome: JobOutcome,
        code: Option<ErrorCode>,
    },
    ActorRestarted {
        actor: &'static str,
    },
    /// A download came in far below the resolution its source announced.
    DownloadThrottled {
        platform: Platform,
    },
    /// A download ended: how long it took (rate-limit waits excluded), and how.
    DownloadFinished {
        platform: Platform,
        seconds: f64,
        code: Option<ErrorCode>,
    },
    /// A processing step ended.
    StageFinished {
        stage: ProcessingStage,
        seconds: f64,
        ok: bool,
    },
    /// Clean-up operations the StorageActor carried out.
    Cleanup {
        operation: CleanupOperation,
        status: CleanupStatus,
        count: u64,
    },
    /// The watch folder was scanned in full.
    WatchRescan(RescanReason),
    /// A file was taken from the watch folder.
    WatchFile(WatchOutcome),
    /// A backup run by the service ended: its reason (`schedule`, `admin`) and outcome
    /// (`completed`, `failed`, `postponed`).
    BackupFinished {
        reason: &'static str,
        outcome: &'static str,
    },
}

pub(super) fn record(f: &Families, event: &Event) {
    use super::labels::code;
    match *event {
        Event::BackupFinished { reason, outcome } => {
            f.backups.with_label_values(&[reason, outcome]).inc()
        }
        Event::CaptureRequested { source, outcome } => f
            .captures
            .with_label_values(&[source.as_str(), outcome.as_str()])
            .inc(),
        Event::JobFinished {
            kind,
            quality,
            outcome,
            code: error,
        } => {
            f.jobs
                .with_label_values(&[kind.as_str(), outcome.as_str(), code(error)])
                .inc();
            if let Some(quality) = quality.filter(|_| kind == JobKind::Transcode) {
                f.transcodes
                    .with_label_values(&[quality.as_str(), outcome.as_str()])
                    .inc();
            }
        }
        Event::ActorRestarted { actor } => f.restarts.with_label_values(&[actor]).inc(),
        Event::DownloadThrottled { platform } => {
            f.throttled.with_label_values(&[platform.as_str()]).inc()
        }
        Event::DownloadFinished {
            platform,
            seconds,
            code: error,
        } => {
            let outcome = if error.is_none() {
                "success"
            } else {
                "failure"
            };
            f.downloads
                .with_label_values(&[platform.as_str(), outcome, code(error)])
                .inc();
            f.download_seconds
                .with_label_values(&[platform.as_str()])
                .observe(seconds);
        }
        Event::StageFinished { stage, seconds, ok } => f
            .processing_seconds
            .with_label_values(&[stage.as_str(), if ok { "success" } else { "failure" }])
            .observe(seconds),
        Event::Cleanup {
            operation,
            status,
            count,
        } => f
            .cleanups
            .with_label_values(&[operation.as_str(), status.as_str()])
            .inc_by(count),
        Event::WatchRescan(reason) => f.watch_rescans.with_label_values(&[reason.as_str()]).inc(),
        Event::WatchFile(outcome) => f.watch_files.with_label_values(&[outcome.as_str()]).inc(),
    }
}
