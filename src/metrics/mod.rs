//! The metric catalog: every family the service exports, in one app-owned `Registry`.
//!
//! Never the process-global default registry: two apps in one test process keep separate
//! counts. Names follow the Prometheus conventions (base units, `_total` on counters), and
//! every label value comes from a closed set in this crate (platform, stage, outcome, error
//! code, route template), never from a URL, an item or a name. The one open label, the user
//! id of the per-user storage gauges, is capped at a fixed number of users (`user_gauges`). Events are recorded in place
//! (`Metrics::record`); the MetricsActor only refreshes the state gauges on a timer.

mod events;
mod families;
pub mod http;
mod labels;
mod register;
mod user_gauges;

use prometheus::{Encoder, Registry, TextEncoder};

pub use events::Event;
pub use families::{
    BREAKER_STATES, Families, NO_PLATFORM, QUEUE_STATES, STORAGE_KINDS, queue_series,
};
pub use http::{HttpMetrics, Route};
pub use labels::code as label_code;
pub use labels::{
    CaptureOutcome, CleanupOperation, CleanupStatus, JobOutcome, ProcessingStage, RescanReason,
    WatchOutcome,
};
pub use user_gauges::{MAX_USER_SERIES, UserFigures};

/// The app's registry and the metric families in it.
pub struct Metrics {
    registry: Registry,
    enabled: bool,
    pub families: Families,
    pub http: HttpMetrics,
}

impl Metrics {
    /// `enabled = false` (config `metrics.enabled`) keeps the families (the actors still send
    /// their events) but turns off the `/metrics` endpoint, per-request HTTP measurements and
    /// the periodic database queries behind the gauges.
    pub fn new(enabled: bool) -> Self {
        let registry = Registry::new();
        let families = Families::register(&registry);
        let http = HttpMetrics::register(&registry);
        // process_cpu_seconds_total, process_resident_memory_bytes, open fds, start time.
        registry
            .register(Box::new(
                prometheus::process_collector::ProcessCollector::for_self(),
            ))
            .expect("the process collector registers once per registry");
        Self {
            registry,
            enabled,
            families,
            http,
        }
    }

    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Counts `event` on the registry, in place: no mailbox, so nothing is lost to a restart.
    pub fn record(&self, event: &Event) {
        events::record(&self.families, event);
    }

    /// The counter of media bytes sent, when metrics are on.
    pub fn streamed_counter(&self) -> Option<prometheus::IntCounter> {
        self.enabled.then(|| self.http.streamed_counter())
    }

    /// The Prometheus text exposition (format 0.0.4) of every metric.
    pub fn render(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64 * 1024);
        // Encoding into memory cannot fail for the families this crate builds.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        out
    }

    pub fn actor_restarts(&self, actor: &str) -> u64 {
        self.families.restarts.with_label_values(&[actor]).get()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_apps_keep_separate_counts() {
        let (a, b) = (Metrics::new(true), Metrics::new(true));
        a.families.restarts.with_label_values(&["pipeline"]).inc();
        assert_eq!(a.actor_restarts("pipeline"), 1);
        assert_eq!(b.actor_restarts("pipeline"), 0);
    }

    #[test]
    fn the_exposition_follows_the_naming_conventions() {
        let metrics = Metrics::new(true);
        let text = String::from_utf8(metrics.render()).unwrap();
        for line in text.lines().filter(|l| l.starts_with("# TYPE prsnl_")) {
            let mut parts = line.split_whitespace().skip(2);
            let (name, kind) = (parts.next().unwrap(), parts.next().unwrap());
            match kind {
                "counter" => assert!(name.ends_with("_total"), "{name}"),
                "gauge" | "histogram" => assert!(!name.ends_with("_total"), "{name}"),
                other => panic!("unexpected type {other} of {name}"),
            }
            if kind == "histogram" {
                assert!(name.ends_with("_seconds"), "{name}: durations in seconds");
            }
        }
        // Every family is visible from the start, so rates and alerts see its first change.
        for name in [
            "prsnl_build_info",
            "prsnl_capture_requests_total",
            "prsnl_downloads_total",
            "prsnl_download_duration_seconds",
            "prsnl_processing_duration_seconds",
            "prsnl_transcodes_total",
            "prsnl_storage_bytes",
            "prsnl_storage_files",
            "prsnl_disk_free_bytes",
            "prsnl_cleanup_operations_total",
            "prsnl_queue_jobs",
            "prsnl_jobs_in_flight",
            "prsnl_breaker_state",
            "prsnl_actor_restarts_total",
            "prsnl_job_attempts_total",
            "process_resident_memory_bytes",
        ] {
            assert!(text.contains(&format!("# TYPE {name} ")), "{name} missing");
        }
    }
}
