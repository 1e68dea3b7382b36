//! `Timestamp`: a moment as the service stores it — Unix milliseconds, UTC.
//!
//! One type for every time the database keeps or compares (created, updated, run-after,
//! lease-until), so a count of seconds or a duration cannot be passed where a moment is
//! meant. Reading the clock is not this module's business (`crate::clock::now`): code that
//! decides takes `now` as an argument, which makes it testable at any moment.

use std::fmt;
use std::time::Duration;

use time::OffsetDateTime;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(i64);

impl Timestamp {
    pub const fn from_millis(ms: i64) -> Self {
        Self(ms)
    }

    pub const fn as_millis(self) -> i64 {
        self.0
    }

    /// `self + duration`, saturating far in the future.
    pub fn plus(self, duration: Duration) -> Self {
        let ms = i64::try_from(duration.as_millis()).unwrap_or(i64::MAX);
        Self(self.0.saturating_add(ms))
    }

    /// `self - duration`, saturating far in the past.
    pub fn minus(self, duration: Duration) -> Self {
        let ms = i64::try_from(duration.as_millis()).unwrap_or(i64::MAX);
        Self(self.0.saturating_sub(ms))
    }

    /// The moment as a calendar date and time (UTC); `None` outside the calendar's range.
    pub fn to_datetime(self) -> Option<OffsetDateTime> {
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(self.0) * 1_000_000).ok()
    }

    /// The calendar day (UTC) as `YYYY-MM-DD`; `None` outside the calendar's range.
    pub fn day(self) -> Option<String> {
        let at = self.to_datetime()?;
        Some(format!(
            "{:04}-{:02}-{:02}",
            at.year(),
            u8::from(at.month()),
            at.day()
        ))
    }

    /// How long after `earlier` this is (zero if it is not after it).
    pub fn since(self, earlier: Timestamp) -> Duration {
        Duration::from_millis(u64::try_from(self.0.saturating_sub(earlier.0)).unwrap_or(0))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}ms", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_day_is_the_utc_calendar_date() {
        // 2026-12-01T23:59:59.999Z and one millisecond later.
        let late = Timestamp::from_millis(1_796_169_599_999);
        assert_eq!(late.day().as_deref(), Some("2026-12-01"));
        assert_eq!(
            late.plus(Duration::from_millis(1)).day().as_deref(),
            Some("2026-12-02")
        );
        assert_eq!(
            Timestamp::from_millis(0).day().as_deref(),
            Some("1970-01-01")
        );
    }

    #[test]
    fn arithmetic_saturates_and_never_goes_negative_in_durations() {
        let t = Timestamp::from_millis(1_000);
        assert_eq!(t.plus(Duration::from_secs(2)).as_millis(), 3_000);
        assert_eq!(t.minus(Duration::from_millis(400)).as_millis(), 600);
        assert_eq!(
            t.plus(Duration::from_secs(1)).since(t),
            Duration::from_secs(1)
        );
        assert_eq!(t.since(t.plus(Duration::from_secs(1))), Duration::ZERO);
        assert_eq!(
            Timestamp::from_millis(i64::MAX - 1)
                .plus(Duration::MAX)
                .as_millis(),
            i64::MAX
        );
        assert_eq!(
            Timestamp::from_millis(1_500)
                .to_datetime()
                .unwrap()
                .unix_timestamp(),
            1
        );
        assert!(Timestamp::from_millis(i64::MAX).to_datetime().is_none());
    }
}
