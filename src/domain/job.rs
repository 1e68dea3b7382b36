//! The durable job: its kinds, states, and the rules for what follows a failed attempt.
//!
//! Only the PipelineActor changes job state, always as a compare-and-set in `db/jobs.rs`; this
//! module holds the decisions those transitions are based on, as pure functions.

use std::fmt;
use std::time::Duration;

use super::error_code::JobError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobKind {
    /// Download a URL and process it into the item's video and thumbnails.
    Capture,
    /// Make a rendition of a completed item at another quality.
    Transcode,
    /// Process a local file (watch folder, upload) into the item's video and thumbnails.
    Import,
}

impl JobKind {
    pub const ALL: [Self; 3] = [Self::Capture, Self::Transcode, Self::Import];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Capture => "capture",
            Self::Transcode => "transcode",
            Self::Import => "import",
        }
    }

    /// Whether the job makes its item (and so moves the item's status): a capture or an
    /// import does; a transcode of a completed video must not make it "processing" or
    /// "failed".
    pub const fn makes_item(self) -> bool {
        matches!(self, Self::Capture | Self::Import)
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == s)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobState {
    /// Waiting for `run_after`, then for a worker.
    Queued,
    /// Leased by a worker (`lease_owner` until `lease_until`).
    Running,
    Completed,
    /// Out of attempts, or failed permanently; kept with its reason, never deleted.
    Failed,
    Cancelled,
}

impl JobState {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::Queued,
            Self::Running,
            Self::Completed,
            Self::Failed,
            Self::Cancelled,
        ]
        .into_iter()
        .find(|state| state.as_str() == s)
    }

    pub const fn is_terminal(self) -> bool {
        matches!(self, Self::Completed | Self::Failed | Self::Cancelled)
    }
}

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How the queue spaces out retries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub base: Duration,
    pub max: Duration,
}

impl RetryPolicy {
    /// Delay before attempt `attempt + 1`, after `attempt` (≥ 1) failed: `base · 2^(attempt-1)`,
    /// capped at `max`, then spread by ±25% so that jobs failing together do not retry in
    /// lock-step. `jitter` is a uniform sample from [0, 1).
    pub fn delay(&self, attempt: u32, jitter: f64) -> Duration {
        let exponent = attempt.saturating_sub(1).min(30);
        let raw = self.base.saturating_mul(1u32 << exponent).min(self.max);
        raw.mul_f64(0.75 + 0.5 * jitter.clamp(0.0, 1.0))
    }
}

/// What happens to a job after a failed attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AfterFailure {
    Retry { after: Duration },
    Fail,
}

/// Retry when the error is transient and attempts remain; otherwise the job fails for good.
pub fn after_failure(
    attempt: u32,
    max_attempts: u32,
    error: &JobError,
    policy: &RetryPolicy,
    jitter: f64,
) -> AfterFailure {
    if error.is_transient() && attempt < max_attempts {
        AfterFailure::Retry {
            after: policy.delay(attempt, jitter),
        }
    } else {
        AfterFailure::Fail
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::error_code::ErrorCode;

    const POLICY: RetryPolicy = RetryPolicy {
        base: Duration::from_secs(5),
        max: Duration::from_secs(60),
    };

    #[test]
    fn backoff_doubles_then_caps() {
        let mid = 0.5; // no jitter at the midpoint
        assert_eq!(POLICY.delay(1, mid), Duration::from_secs(5));
        assert_eq!(POLICY.delay(2, mid), Duration::from_secs(10));
        assert_eq!(POLICY.delay(3, mid), Duration::from_secs(20));
        assert_eq!(POLICY.delay(5, mid), Duration::from_secs(60));
        assert_eq!(POLICY.delay(500, mid), Duration::from_secs(60));
    }

    #[test]
    fn jitter_spreads_by_a_quarter_either_way() {
        assert_eq!(POLICY.delay(2, 0.0), Duration::from_millis(7500));
        assert!(POLICY.delay(2, 0.999_999) < Duration::from_millis(12_500));
        assert!(POLICY.delay(2, 0.999_999) > Duration::from_millis(12_499));
    }

    #[test]
    fn transient_errors_retry_until_attempts_run_out() {
        let transient = JobError::new(ErrorCode::UpstreamError, "HTTP 500");
        assert!(matches!(
            after_failure(1, 3, &transient, &POLICY, 0.5),
            AfterFailure::Retry { .. }
        ));
        assert_eq!(
            after_failure(3, 3, &transient, &POLICY, 0.5),
            AfterFailure::Fail
        );
        let permanent = JobError::new(ErrorCode::SourceNotFound, "HTTP 404");
        assert_eq!(
            after_failure(1, 3, &permanent, &POLICY, 0.5),
            AfterFailure::Fail
        );
    }

    #[test]
    fn states_and_kinds_round_trip() {
        for s in ["queued", "running", "completed", "failed", "cancelled"] {
            assert_eq!(JobState::parse(s).unwrap().as_str(), s);
        }
        assert_eq!(JobKind::parse("capture"), Some(JobKind::Capture));
        assert_eq!(JobKind::parse("transcode"), Some(JobKind::Transcode));
        assert_eq!(JobKind::parse("mine-bitcoin"), None);
        assert!(JobState::Failed.is_terminal() && !JobState::Running.is_terminal());
    }
}
