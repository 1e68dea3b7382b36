//! Slowing down password guessing: failed sign-ins are counted per user name and per client
//! address; past a few in a row, each further try must wait longer (doubling, capped), and
//! the wait is enforced before the password is even hashed, so guessing also cannot burn the
//! CPU. A success clears the name and the address. In memory: a restart forgets, which costs
//! an attacker a restart they cannot cause.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failures allowed in a row before tries are spaced out.
const FREE_FAILURES: u32 = 5;
/// The longest wait between tries.
const MAX_WAIT: Duration = Duration::from_secs(300);
/// Failures older than this are forgotten.
const MEMORY: Duration = Duration::from_secs(900);
/// Keys remembered at most; beyond it the stale ones go first (an attacker spraying names or
/// addresses cannot grow the map without bound).
const MAX_KEYS: usize = 10_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Key {
    Name(u64),
    Address(IpAddr),
}

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    last: Instant,
}

impl Failures {
    /// When the next try is allowed.
    fn next_try(&self) -> Instant {
        if self.count < FREE_FAILURES {
            return self.last;
        }
        let doublings = (self.count - FREE_FAILURES).min(16);
        self.last + Duration::from_secs(1u64 << doublings).min(MAX_WAIT)
    }
}

#[derive(Debug, Default)]
pub struct SignInThrottle {
    failures: Mutex<HashMap<Key, Failures>>,
}

impl SignInThrottle {
    pub fn new() -> Self {
        Self::default()
    }

    /// `Err(wait)` while a try for this name or from this address must wait.
    pub fn check(&self, name: &str, address: IpAddr, now: Instant) -> Result<(), Duration> {
        let map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let wait = [name_key(name), Key::Address(address)]
            .iter()
            .filter_map(|key| map.get(key))
            .filter(|f| now.duration_since(f.last) < MEMORY)
            .map(|f| f.next_try().saturating_duration_since(now))
            .max()
            .unwrap_or_default();
        if wait.is_zero() { Ok(()) } else { Err(wait) }
    }

    /// Counts a failed try against the name and the address.
    pub fn failed(&self, name: &str, address: IpAddr, now: Instant) {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= MAX_KEYS {
            map.retain(|_, f| now.duration_since(f.last) < MEMORY);
        }
        for key in [name_key(name), Key::Address(address)] {
            if map.len() >= MAX_KEYS && !map.contains_key(&key) {
                continue; // full of fresh entries: the ones there keep their counts
            }
            let entry = map.entry(key).or_insert(Failures {
                count: 0,
                last: now,
            });
            if now.duration_since(entry.last) >= MEMORY {
                entry.count = 0;
            }
            entry.count += 1;
            entry.last = now;
        }
    }

    /// A successful sign-in clears the name and the address.
    pub fn succeeded(&self, name: &str, address: IpAddr) {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        map.remove(&name_key(name));
        map.remove(&Key::Address(address));
    }
}

/// Names are kept as a hash: the map never holds what a stranger typed.
fn name_key(name: &str) -> Key {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    name.to_ascii_lowercase().hash(&mut hasher);
    Key::Name(hasher.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([192, 0, 2, last])
    }

    #[test]
    fn a_few_failures_are_free_then_tries_are_spaced_out() {
        let throttle = SignInThrottle::new();
        let t0 = Instant::now();
        for _ in 0..FREE_FAILURES {
            assert_eq!(throttle.check("alice", ip(1), t0), Ok(()));
            throttle.failed("alice", ip(1), t0);
        }
        assert_eq!(
            throttle.check("alice", ip(1), t0),
            Err(Duration::from_secs(1))
        );
        // Another address is slowed for the same name, another name from the same address too.
        assert!(throttle.check("alice", ip(2), t0).is_err());
        assert!(throttle.check("bob", ip(1), t0).is_err());
        assert_eq!(throttle.check("bob", ip(2), t0), Ok(()));
        let t1 = t0 + Duration::from_secs(1);
        assert_eq!(throttle.check("alice", ip(1), t1), Ok(()));
        throttle.failed("alice", ip(1), t1);
        assert_eq!(
            throttle.check("alice", ip(1), t1),
            Err(Duration::from_secs(2))
        );
        // Forgotten after a quiet spell; cleared by a success.
        assert_eq!(throttle.check("alice", ip(1), t1 + MEMORY), Ok(()));
        throttle.succeeded("alice", ip(1));
        assert_eq!(throttle.check("alice", ip(1), t1), Ok(()));
    }

    #[test]
    fn the_wait_is_capped() {
        let throttle = SignInThrottle::new();
        let t0 = Instant::now();
        for _ in 0..40 {
            throttle.failed("alice", ip(1), t0);
        }
        assert_eq!(throttle.check("alice", ip(3), t0), Err(MAX_WAIT));
    }

    #[test]
    fn spraying_cannot_grow_the_map_without_bound() {
        let throttle = SignInThrottle::new();
        let t0 = Instant::now();
        for i in 0..(MAX_KEYS as u32 + 500) {
            throttle.failed(&format!("user{i}"), ip(9), t0);
        }
        assert!(throttle.failures.lock().unwrap().len() <= MAX_KEYS);
        assert!(throttle.check("anyone", ip(9), t0).is_err());
    }
}
