//! Where a user stands against their storage quota, and what they are told when it is full.
//!
//! Usage is the bytes of a user's completed items' files, thumbnails and renditions; a file
//! shared with another owner counts for each of them (`db::quota`).

use super::error_code::{ErrorCode, JobError};
use super::people::format_size;

/// How many days of usage history are kept and reported (the admin's storage trends).
pub const USAGE_HISTORY_DAYS: u64 = 90;

/// A user's usage and quota (`None`: no quota).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Standing {
    pub usage_bytes: u64,
    pub quota_bytes: Option<u64>,
}

impl Standing {
    /// At or over the quota: nothing new is taken.
    pub fn is_full(&self) -> bool {
        self.quota_bytes
            .is_some_and(|quota| self.usage_bytes >= quota)
    }

    /// Over the quota: what was just written does not fit.
    pub fn is_over(&self) -> bool {
        self.quota_bytes
            .is_some_and(|quota| self.usage_bytes > quota)
    }

    /// Bytes that may still be stored (`None`: no limit).
    pub fn remaining(&self) -> Option<u64> {
        self.quota_bytes
            .map(|quota| quota.saturating_sub(self.usage_bytes))
    }

    /// The `quota_exceeded` refusal, with the figures in words.
    pub fn refusal(&self) -> JobError {
        let quota = self.quota_bytes.unwrap_or(0);
        JobError::new(
            ErrorCode::QuotaExceeded,
            format!(
                "the storage quota is full: {} stored of {} ({} bytes of {})",
                format_size(self.usage_bytes),
                format_size(quota),
                self.usage_bytes,
                quota
            ),
        )
    }

    /// The refusal of a completion, measured with what it would have added (`self` is the
    /// standing after the write that was rolled back).
    pub fn refusal_at_commit(&self) -> JobError {
        let quota = self.quota_bytes.unwrap_or(0);
        JobError::new(
            ErrorCode::QuotaExceeded,
            format!(
                "storing this would bring the usage to {}, past the {} quota ({} bytes of {})",
                format_size(self.usage_bytes),
                format_size(quota),
                self.usage_bytes,
                quota
            ),
        )
    }

    /// A download's byte budget: the size limit, or what is left of the quota when that is
    /// less. The second value says the quota set it (so running past it is `quota_exceeded`,
    /// not `too_large`).
    pub fn budget(standing: Option<&Standing>, size_limit: u64) -> (u64, bool) {
        match standing.and_then(Standing::remaining) {
            Some(left) if left < size_limit => (left, true),
            _ => (size_limit, false),
        }
    }

    /// The refusal of a download that ran past what was left of the quota.
    pub fn download_refusal(&self) -> JobError {
        let quota = self.quota_bytes.unwrap_or(0);
        JobError::new(
            ErrorCode::QuotaExceeded,
            format!(
                "the download is larger than the {} left in the storage quota: {} stored of {} ({} bytes of {})",
                format_size(self.remaining().unwrap_or(0)),
                format_size(self.usage_bytes),
                format_size(quota),
                self.usage_bytes,
                quota
            ),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn standing(usage_bytes: u64, quota_bytes: Option<u64>) -> Standing {
        Standing {
            usage_bytes,
            quota_bytes,
        }
    }

    #[test]
    fn full_means_at_or_over_and_over_means_past() {
        assert!(!standing(99, Some(100)).is_full());
        assert!(standing(100, Some(100)).is_full());
        assert!(!standing(100, Some(100)).is_over());
        assert!(standing(101, Some(100)).is_over());
        assert!(!standing(u64::MAX, None).is_full());
        assert!(!standing(u64::MAX, None).is_over());
    }

    #[test]
    fn what_remains_never_goes_below_zero() {
        assert_eq!(standing(30, Some(100)).remaining(), Some(70));
        assert_eq!(standing(130, Some(100)).remaining(), Some(0));
        assert_eq!(standing(30, None).remaining(), None);
    }

    #[test]
    fn the_budget_is_the_smaller_of_the_limit_and_what_is_left() {
        assert_eq!(Standing::budget(None, 500), (500, false));
        assert_eq!(
            Standing::budget(Some(&standing(10, None)), 500),
            (500, false)
        );
        assert_eq!(
            Standing::budget(Some(&standing(900, Some(1000))), 500),
            (100, true)
        );
        assert_eq!(
            Standing::budget(Some(&standing(0, Some(1000))), 500),
            (500, false)
        );
        let left = standing(900, Some(1000)).download_refusal();
        assert!(left.message.contains("the 100 B left"), "{}", left.message);
    }

    #[test]
    fn the_refusal_carries_the_figures() {
        let refusal = standing(3 << 20, Some(2 << 20)).refusal();
        assert_eq!(refusal.code, ErrorCode::QuotaExceeded);
        assert!(
            refusal.message.contains("3.0 MiB stored of 2.0 MiB"),
            "{}",
            refusal.message
        );
        assert!(
            refusal.message.contains("3145728 bytes of 2097152"),
            "{}",
            refusal.message
        );
        let refusal = standing(5 << 20, Some(2 << 20)).refusal_at_commit();
        assert!(
            refusal.message.starts_with(
                "storing this would bring the usage to 5.0 MiB, past the 2.0 MiB quota"
            ),
            "{}",
            refusal.message
        );
    }
}
