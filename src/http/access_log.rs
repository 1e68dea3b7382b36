//! Which requests get an access-log line (target `prsnl::access`), and at which level.
//!
//! A line costs about as much CPU as serving a 64 KiB range (bench/stream: 27 µs a request
//! without it, 42 µs with it), so `log.access_level` and `log.access_sample` let a busy
//! streaming server keep fewer. Whatever the sampling, an error answer (4xx, 5xx) always gets
//! its line, and probes and scrapes stay at debug.

use std::sync::atomic::{AtomicU64, Ordering};

use tracing::Level;

use crate::metrics::Route;
use crate::settings::{AccessLevel, LogSettings};

pub const TARGET: &str = "prsnl::access";

pub struct AccessLog {
    /// `None`: `log.access_level = "off"`.
    level: Option<Level>,
    sample: u64,
    /// Successful requests seen so far, for sampling.
    seen: AtomicU64,
}

impl AccessLog {
    pub fn new(settings: &LogSettings) -> Self {
        Self {
            level: match settings.access_level {
                AccessLevel::Info => Some(Level::INFO),
                AccessLevel::Debug => Some(Level::DEBUG),
                AccessLevel::Off => None,
            },
            // Settings validation refuses 0; 1 keeps every line.
            sample: u64::from(settings.access_sample.get()),
            seen: AtomicU64::new(0),
        }
    }

    /// False when no request can get a line, so callers need not keep what a line would say.
    pub fn is_on(&self) -> bool {
        self.level.is_some()
    }

    /// The level of `route`'s line for an answer with `status`, or `None` for no line.
    pub fn level_for(&self, route: Route, status: u16) -> Option<Level> {
        let level = self.level?;
        // Probes and scrapes arrive every few seconds; they are not news.
        if matches!(route, Route::Healthz | Route::Readyz | Route::Metrics) {
            return Some(Level::DEBUG);
        }
        // Count only what the subscriber would write, so sampling is not spent on lines a
        // quieter `log.level` drops anyway.
        let wanted = match level {
            Level::INFO => tracing::enabled!(target: TARGET, Level::INFO),
            _ => tracing::enabled!(target: TARGET, Level::DEBUG),
        };
        if !wanted || status >= 400 || self.sample == 1 {
            return wanted.then_some(level);
        }
        // Relaxed: the count only spreads the lines out; it orders nothing.
        self.seen
            .fetch_add(1, Ordering::Relaxed)
            .is_multiple_of(self.sample)
            .then_some(level)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(level: AccessLevel, sample: u32) -> AccessLog {
        AccessLog::new(&LogSettings {
            format: crate::settings::LogFormat::Text,
            level: "info".into(),
            access_level: level,
            access_sample: std::num::NonZeroU32::new(sample).expect("a sample of at least 1"),
        })
    }

    /// Runs `check` with a subscriber that writes everything, as `log.level = "trace"` would.
    fn with_everything_enabled(check: impl FnOnce()) {
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(Level::TRACE)
            .with_writer(std::io::sink)
            .finish();
        tracing::subscriber::with_default(subscriber, check);
    }

    #[test]
    fn one_success_in_n_is_logged_and_every_error() {
        with_everything_enabled(|| {
            let access = log(AccessLevel::Info, 3);
            let lines: Vec<_> = (0..7)
                .map(|_| access.level_for(Route::VideoStream, 206))
                .collect();
            assert_eq!(lines.iter().filter(|l| l.is_some()).count(), 3, "{lines:?}");
            assert_eq!(lines[0], Some(Level::INFO), "the first is kept");
            for status in [400, 404, 416, 500, 503] {
                assert_eq!(
                    access.level_for(Route::VideoStream, status),
                    Some(Level::INFO)
                );
            }
        });
    }

    #[test]
    fn level_and_off_are_applied_and_probes_stay_at_debug() {
        with_everything_enabled(|| {
            let every = log(AccessLevel::Info, 1);
            assert!((0..5).all(|_| every.level_for(Route::Items, 200) == Some(Level::INFO)));
            assert_eq!(every.level_for(Route::Healthz, 200), Some(Level::DEBUG));
            let quiet = log(AccessLevel::Debug, 1);
            assert_eq!(quiet.level_for(Route::Items, 200), Some(Level::DEBUG));
            assert_eq!(quiet.level_for(Route::Items, 500), Some(Level::DEBUG));
            let off = log(AccessLevel::Off, 1);
            assert!(!off.is_on());
            assert_eq!(off.level_for(Route::Items, 500), None);
            assert_eq!(off.level_for(Route::Healthz, 200), None);
        });
    }

    #[test]
    fn lines_the_subscriber_drops_are_not_counted() {
        let warn_only = tracing_subscriber::fmt()
            .with_max_level(Level::WARN)
            .with_writer(std::io::sink)
            .finish();
        tracing::subscriber::with_default(warn_only, || {
            let access = log(AccessLevel::Info, 2);
            assert_eq!(access.level_for(Route::VideoStream, 206), None);
            assert_eq!(access.level_for(Route::VideoStream, 500), None);
            assert_eq!(access.seen.load(Ordering::Relaxed), 0);
        });
    }
}
