//! The metric families the actors update, and the series made visible from the start.
//!
//! A counter series that first appears at 1 is invisible to `rate()` and `increase()` for
//! that first event, so the series alerts depend on are created at zero when the app starts.

use prometheus::{Gauge, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Registry};

use super::register::{counter, gauge, histogram, plain_gauge, register};

use super::labels::{
    self, CaptureOutcome, CleanupOperation, CleanupStatus, JobOutcome, ProcessingStage,
    RescanReason, WatchOutcome,
};
use super::user_gauges::UserGauges;
use crate::domain::{JobKind, Platform, Quality, Source};

/// Actors a supervisor restarts, as named in `prsnl_actor_restarts_total`.
pub const SUPERVISED_ACTORS: [&str; 11] = [
    "metrics",
    "backups",
    "webhooks",
    "storage",
    "pipeline",
    "watch_folder",
    "http_server",
    "download_supervisor",
    "processing_pool",
    "downloader",
    "processing_worker",
];

/// Storage kinds of `prsnl_storage_bytes` / `prsnl_storage_files`.
pub const STORAGE_KINDS: [&str; 6] = [
    "videos",
    "images",
    "renditions",
    "thumbnails",
    "subtitles",
    "temp",
];

/// Queue states of `prsnl_queue_jobs`: due now, waiting (for a retry's backoff or an open
/// breaker), running.
pub const QUEUE_STATES: [&str; 3] = ["queued", "waiting", "running"];

/// The `platform` label of jobs that belong to no platform (transcodes).
pub const NO_PLATFORM: &str = "none";

/// Breaker states of `prsnl_breaker_state` (one-hot per platform).
pub const BREAKER_STATES: [&str; 3] = ["closed", "open", "probing"];

pub struct Families {
    pub build_info: IntGaugeVec,
    pub captures: IntCounterVec,
    pub jobs: IntCounterVec,
    pub downloads: IntCounterVec,
    pub download_seconds: HistogramVec,
    pub throttled: IntCounterVec,
    pub processing_seconds: HistogramVec,
    pub transcodes: IntCounterVec,
    pub storage_bytes: IntGaugeVec,
    pub storage_files: IntGaugeVec,
    pub disk_total: IntGauge,
    pub disk_free: IntGauge,
    pub cleanups: IntCounterVec,
    pub watch_rescans: IntCounterVec,
    pub watch_files: IntCounterVec,
    pub queue_jobs: IntGaugeVec,
    pub queue_oldest_due: Gauge,
    pub in_flight: IntGaugeVec,
    pub breakers: IntGaugeVec,
    pub restarts: IntCounterVec,
    pub gauges_refreshed: Gauge,
    pub tool_info: IntGaugeVec,
    pub tool_age_days: IntGaugeVec,
    pub users: UserGauges,
    pub backups: IntCounterVec,
    pub backup_last_success: Gauge,
    pub backup_duration: Gauge,
    pub backup_bytes: IntGaugeVec,
    pub backup_interval: Gauge,
}

/// Downloads take from a fraction of a second (a small direct file) to half an hour.
const DOWNLOAD_BUCKETS: [f64; 13] = [
    0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0, 1800.0,
];

/// A probe takes milliseconds, a conversion of a long video many minutes.
const PROCESSING_BUCKETS: [f64; 13] = [
    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0,
];

impl Families {
    pub fn register(registry: &Registry) -> Self {
        let families = Self {
            build_info: gauge(
                registry,
                "prsnl_build_info",
                "Always 1; the labels say which build runs.",
                &["version", "git_commit"],
            ),
            captures: counter(
                registry,
                "prsnl_capture_requests_total",
                "Submissions by door (api, telegram, watch) and what became of them.",
                &["source", "outcome"],
            ),
            jobs: counter(
                registry,
                "prsnl_job_attempts_total",
                "Job attempts by kind and how they ended (retried: failed and queued again).",
                &["kind", "outcome", "code"],
            ),
            downloads: counter(
                registry,
                "prsnl_downloads_total",
                "Downloads by platform, outcome (success, failure) and error code (none on success).",
                &["platform", "outcome", "code"],
            ),
            download_seconds: histogram(
                registry,
                "prsnl_download_duration_seconds",
                "Time a download took, rate-limit waits excluded, by platform.",
                &["platform"],
                &DOWNLOAD_BUCKETS,
            ),
            throttled: counter(
                registry,
                "prsnl_download_throttled_total",
                "Downloads that came in far below the resolution their source announced.",
                &["platform"],
            ),
            processing_seconds: histogram(
                registry,
                "prsnl_processing_duration_seconds",
                "Time a processing step took, by step and outcome (success, failure).",
                &["stage", "outcome"],
                &PROCESSING_BUCKETS,
            ),
            transcodes: counter(
                registry,
                "prsnl_transcodes_total",
                "Rendition jobs by quality and how their attempts ended.",
                &["quality", "outcome"],
            ),
            storage_bytes: gauge(
                registry,
                "prsnl_storage_bytes",
                "Bytes stored under media_root, by kind.",
                &["kind"],
            ),
            storage_files: gauge(
                registry,
                "prsnl_storage_files",
                "Files stored under media_root, by kind.",
                &["kind"],
            ),
            disk_total: register(
                registry,
                IntGauge::new(
                    "prsnl_disk_total_bytes",
                    "Size of the filesystem holding media_root.",
                )
                .expect("valid metric"),
            ),
            disk_free: register(
                registry,
                IntGauge::new(
                    "prsnl_disk_free_bytes",
                    "Bytes available to the service on the filesystem holding media_root.",
                )
                .expect("valid metric"),
            ),
            cleanups: counter(
                registry,
                "prsnl_cleanup_operations_total",
                "Clean-up operations on temp files and orphans, by operation and status.",
                &["operation", "status"],
            ),
            watch_rescans: counter(
                registry,
                "prsnl_watch_rescans_total",
                "Full scans of the watch folder, by reason (startup, periodic, overflow of the kernel's event queue).",
                &["reason"],
            ),
            watch_files: counter(
                registry,
                "prsnl_watch_files_total",
                "Files taken from the watch folder, by outcome.",
                &["outcome"],
            ),
            queue_jobs: gauge(
                registry,
                "prsnl_queue_jobs",
                "Unfinished jobs in the (shared) queue by kind, state (queued: due; waiting: backoff or breaker; running) and platform.",
                &["kind", "state", "platform"],
            ),
            queue_oldest_due: register(
                registry,
                Gauge::new(
                    "prsnl_queue_oldest_due_seconds",
                    "How long the oldest due job has been waiting to be claimed (0 when none).",
                )
                .expect("valid metric"),
            ),
            in_flight: gauge(
                registry,
                "prsnl_jobs_in_flight",
                "Jobs this instance is running, by kind.",
                &["kind"],
            ),
            breakers: gauge(
                registry,
                "prsnl_breaker_state",
                "Circuit breaker of each platform: 1 for its current state, 0 for the others.",
                &["platform", "state"],
            ),
            restarts: counter(
                registry,
                "prsnl_actor_restarts_total",
                "Actors restarted by their supervisor, by actor.",
                &["actor"],
            ),
            gauges_refreshed: register(
                registry,
                Gauge::new(
                    "prsnl_gauges_refreshed_timestamp_seconds",
                    "When the queue, breaker and storage gauges were last refreshed (Unix time).",
                )
                .expect("valid metric"),
            ),
            // Both appear once the tools were probed (the first readiness probe, or a minute
            // after start): a zero before that would read as "released today".
            tool_info: gauge(
                registry,
                "prsnl_tool_info",
                "Always 1; the labels say which version of each external tool is installed.",
                &["tool", "version"],
            ),
            tool_age_days: gauge(
                registry,
                "prsnl_tool_release_age_days",
                "Days since the installed tool was released (yt-dlp, whose versions are dates).",
                &["tool"],
            ),
            users: UserGauges::register(registry),
            backups: counter(
                registry,
                "prsnl_backups_total",
                "Backups the service ran, by reason (schedule, admin) and outcome (completed, failed, postponed: another backup was writing to the directory).",
                &["reason", "outcome"],
            ),
            backup_last_success: plain_gauge(
                registry,
                "prsnl_backup_last_success_timestamp_seconds",
                "When the last backup run by the service completed (Unix time); before the first, when the first was recorded; 0 when none ever was.",
            ),
            backup_duration: plain_gauge(
                registry,
                "prsnl_backup_duration_seconds",
                "How long the last completed backup took.",
            ),
            backup_bytes: gauge(
                registry,
                "prsnl_backup_bytes",
                "Bytes of the last completed backup: new (copied) and linked (unchanged since the snapshot before).",
                &["kind"],
            ),
            backup_interval: plain_gauge(
                registry,
                "prsnl_backup_interval_seconds",
                "backup.interval_secs: how often the service backs up (0: not scheduled).",
            ),
        };
        families.initialise();
        families
    }

    /// Creates, at zero, every series whose first change must be visible.
    fn initialise(&self) {
        self.build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION"), env!("PRSNL_GIT_COMMIT")])
            .set(1);
        for source in [Source::Api, Source::Telegram, Source::Watch] {
            for outcome in CaptureOutcome::ALL {
                self.captures
                    .with_label_values(&[source.as_str(), outcome.as_str()]);
            }
        }
        for kind in JobKind::ALL {
            for outcome in JobOutcome::ALL {
                self.jobs
                    .with_label_values(&[kind.as_str(), outcome.as_str(), labels::code(None)]);
            }
        }
        for platform in Platform::ALL {
            let platform = platform.as_str();
            self.downloads
                .with_label_values(&[platform, "success", labels::code(None)]);
            self.download_seconds.with_label_values(&[platform]);
            self.throttled.with_label_values(&[platform]);
            for state in BREAKER_STATES {
                self.breakers
                    .with_label_values(&[platform, state])
                    .set(i64::from(state == "closed"));
            }
        }
        for (kind, state, platform) in queue_series() {
            self.queue_jobs.with_label_values(&[kind, state, platform]);
        }
        for stage in ProcessingStage::ALL {
            for outcome in ["success", "failure"] {
                self.processing_seconds
                    .with_label_values(&[stage.as_str(), outcome]);
            }
        }
        for quality in Quality::ALL {
            for outcome in [
                JobOutcome::Completed,
                JobOutcome::Retried,
                JobOutcome::Failed,
                JobOutcome::Cancelled,
            ] {
                self.transcodes
                    .with_label_values(&[quality.as_str(), outcome.as_str()]);
            }
        }
        for kind in STORAGE_KINDS {
            self.storage_bytes.with_label_values(&[kind]);
            self.storage_files.with_label_values(&[kind]);
        }
        for operation in CleanupOperation::ALL {
            for status in [operation.done(), CleanupStatus::Failed] {
                self.cleanups
                    .with_label_values(&[operation.as_str(), status.as_str()]);
            }
        }
        for kind in JobKind::ALL {
            self.in_flight.with_label_values(&[kind.as_str()]);
        }
        for actor in SUPERVISED_ACTORS {
            self.restarts.with_label_values(&[actor]);
        }
        for reason in ["schedule", "admin"] {
            for outcome in ["completed", "failed", "postponed"] {
                self.backups.with_label_values(&[reason, outcome]);
            }
        }
        for kind in ["new", "linked"] {
            self.backup_bytes.with_label_values(&[kind]);
        }
        for reason in RescanReason::ALL {
            self.watch_rescans.with_label_values(&[reason.as_str()]);
        }
        for outcome in WatchOutcome::ALL {
            self.watch_files.with_label_values(&[outcome.as_str()]);
        }
    }
}

/// Every (kind, state, platform) series of `prsnl_queue_jobs`: captures per platform, and the
/// kinds that download nothing (transcodes, imports) without one.
pub fn queue_series() -> impl Iterator<Item = (&'static str, &'static str, &'static str)> {
    QUEUE_STATES.into_iter().flat_map(|state| {
        JobKind::ALL.into_iter().flat_map(move |kind| {
            let platforms = if kind == JobKind::Capture {
                Platform::ALL.map(Platform::as_str).to_vec()
            } else {
                vec![NO_PLATFORM]
            };
            platforms
                .into_iter()
                .map(move |platform| (kind.as_str(), state, platform))
        })
    })
}
