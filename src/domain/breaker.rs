//! A platform's circuit breaker: when the platform refuses us, we stop asking for a while.
//!
//! Closed: downloads go as usual. Open: nothing goes until `open_until`. After that, one
//! probe download may go; if it succeeds the breaker closes, if the platform refuses again it
//! opens for twice as long (up to a maximum).

use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Breaker {
    /// Refusals in a row; 0 means closed.
    pub failures: u32,
    /// Unix ms until which the platform is left alone.
    pub open_until: i64,
}

/// What the breaker allows now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    Closed,
    Open {
        until: i64,
    },
    /// The pause is over: one download may test the water.
    Probe,
}

impl Breaker {
    pub fn gate(&self, now: i64) -> Gate {
        if self.failures == 0 {
            Gate::Closed
        } else if now < self.open_until {
            Gate::Open {
                until: self.open_until,
            }
        } else {
            Gate::Probe
        }
    }

    /// Records a refusal at `now`. A refusal while already open (another download that was
    /// under way) does not lengthen the pause; one after it (a failed probe) doubles it.
    /// Returns the end of the pause. `jitter` is uniform in [0, 1) and spreads it by ±10%.
    pub fn trip(&mut self, now: i64, base: Duration, max: Duration, jitter: f64) -> i64 {
        if self.failures > 0 && now < self.open_until {
            return self.open_until;
        }
        self.failures = self.failures.saturating_add(1);
        let exponent = (self.failures - 1).min(20);
        let pause = base
            .saturating_mul(1 << exponent)
            .min(max)
            .mul_f64(0.9 + 0.2 * jitter.clamp(0.0, 1.0));
        self.open_until = now + i64::try_from(pause.as_millis()).unwrap_or(i64::MAX / 4);
        self.open_until
    }

    /// A download of the platform succeeded.
    pub fn reset(&mut self) {
        *self = Breaker::default();
    }

    pub fn is_closed(&self) -> bool {
        self.failures == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: Duration = Duration::from_secs(60);
    const MAX: Duration = Duration::from_secs(600);

    #[test]
    fn opens_then_lets_one_probe_through_then_closes() {
        let mut b = Breaker::default();
        assert_eq!(b.gate(0), Gate::Closed);
        let until = b.trip(1_000, BASE, MAX, 0.5);
        assert_eq!(until, 61_000);
        assert_eq!(b.gate(30_000), Gate::Open { until: 61_000 });
        assert_eq!(b.gate(61_000), Gate::Probe);
        b.reset();
        assert_eq!(b.gate(61_000), Gate::Closed);
    }

    #[test]
    fn refusals_while_open_do_not_stack_but_failed_probes_double() {
        let mut b = Breaker::default();
        b.trip(0, BASE, MAX, 0.5);
        assert_eq!(
            b.trip(10_000, BASE, MAX, 0.5),
            60_000,
            "a second in-flight refusal"
        );
        assert_eq!(b.failures, 1);
        assert_eq!(
            b.trip(60_000, BASE, MAX, 0.5),
            180_000,
            "failed probe: twice as long"
        );
        assert_eq!(b.trip(180_000, BASE, MAX, 0.5), 420_000);
        assert_eq!(b.trip(420_000, BASE, MAX, 0.5), 900_000);
        assert_eq!(
            b.trip(900_000, BASE, MAX, 0.5),
            1_500_000,
            "capped at the maximum"
        );
    }

    #[test]
    fn jitter_stays_within_ten_percent() {
        let mut low = Breaker::default();
        let mut high = Breaker::default();
        assert_eq!(low.trip(0, BASE, MAX, 0.0), 54_000);
        assert!(high.trip(0, BASE, MAX, 0.999) < 66_000);
    }
}
