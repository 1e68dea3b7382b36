//! When a file in the inbox is complete enough to take.
//!
//! A file is taken once its writer closed it (close-after-write) or it was renamed in — both
//! say the writer is done — or, failing such an event (network mounts, polling, a startup
//! scan), once its size and mtime have not changed for the settle time. Any change after a
//! close starts over: someone is writing again.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// What a look at a file saw (from `lstat`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Observation {
    pub size: u64,
    pub mtime_ns: i128,
}

#[derive(Debug)]
struct Candidate {
    seen: Observation,
    unchanged_since: Instant,
    /// Its writer closed it, or it was renamed in, when it looked like `seen`.
    finished: bool,
}

#[derive(Debug)]
pub struct Candidates {
    settle: Duration,
    entries: HashMap<PathBuf, Candidate>,
}

impl Candidates {
    pub fn new(settle: Duration) -> Self {
        Self {
            settle,
            entries: HashMap::new(),
        }
    }

    /// Something happened to `path`, which now looks like `seen`; `finished` when the event
    /// says its writer is done (close-after-write, rename-in).
    pub fn touched(&mut self, path: &Path, seen: Observation, finished: bool, now: Instant) {
        match self.entries.get_mut(path) {
            Some(candidate) if candidate.seen == seen => candidate.finished |= finished,
            Some(candidate) => {
                *candidate = Candidate {
                    seen,
                    unchanged_since: now,
                    finished,
                }
            }
            None => {
                self.entries.insert(
                    path.to_path_buf(),
                    Candidate {
                        seen,
                        unchanged_since: now,
                        finished,
                    },
                );
            }
        }
    }

    /// Looks at every candidate again (`observe` is `None` for a file that is gone) and
    /// returns those that are ready, removing them from the table.
    pub fn take_ready(
        &mut self,
        observe: impl Fn(&Path) -> Option<Observation>,
        now: Instant,
    ) -> Vec<PathBuf> {
        let mut ready = Vec::new();
        self.entries.retain(|path, candidate| {
            let Some(seen) = observe(path) else {
                return false;
            };
            if seen != candidate.seen {
                *candidate = Candidate {
                    seen,
                    unchanged_since: now,
                    finished: false,
                };
                return true;
            }
            if candidate.finished || now.duration_since(candidate.unchanged_since) >= self.settle {
                ready.push(path.clone());
                return false;
            }
            true
        });
        ready.sort();
        ready
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SETTLE: Duration = Duration::from_secs(2);

    fn seen(size: u64) -> Observation {
        Observation {
            size,
            mtime_ns: i128::from(size) * 1000,
        }
    }

    #[test]
    fn a_closed_file_is_taken_at_once() {
        let (mut table, t0) = (Candidates::new(SETTLE), Instant::now());
        let path = Path::new("/in/a.mp4");
        table.touched(path, seen(10), true, t0);
        assert_eq!(table.take_ready(|_| Some(seen(10)), t0), [path]);
        assert!(table.is_empty());
    }

    #[test]
    fn a_file_nobody_closes_is_taken_once_it_has_settled() {
        let (mut table, t0) = (Candidates::new(SETTLE), Instant::now());
        let path = Path::new("/in/a.mp4");
        table.touched(path, seen(10), false, t0);
        assert!(
            table
                .take_ready(|_| Some(seen(10)), t0 + SETTLE / 2)
                .is_empty()
        );
        assert_eq!(table.take_ready(|_| Some(seen(10)), t0 + SETTLE), [path]);
    }

    #[test]
    fn a_growing_file_waits_until_it_stops_growing() {
        let (mut table, t0) = (Candidates::new(SETTLE), Instant::now());
        let path = Path::new("/in/a.mp4");
        table.touched(path, seen(10), false, t0);
        // Written a chunk a second apart: never stable for the settle time.
        for second in 1..=3 {
            let now = t0 + Duration::from_secs(second);
            let size = 10 * (second + 1);
            assert!(table.take_ready(|_| Some(seen(size)), now).is_empty());
        }
        let end = t0 + Duration::from_secs(3);
        assert!(
            table
                .take_ready(|_| Some(seen(40)), end + SETTLE / 2)
                .is_empty()
        );
        assert_eq!(table.take_ready(|_| Some(seen(40)), end + SETTLE), [path]);
    }

    #[test]
    fn a_change_after_the_close_starts_over() {
        let (mut table, t0) = (Candidates::new(SETTLE), Instant::now());
        let path = Path::new("/in/a.txt");
        table.touched(path, seen(10), true, t0);
        // Reopened and appended to before the table looked again.
        assert!(table.take_ready(|_| Some(seen(20)), t0).is_empty());
        table.touched(path, seen(20), true, t0);
        assert_eq!(table.take_ready(|_| Some(seen(20)), t0), [path]);
    }

    #[test]
    fn a_file_that_vanished_is_forgotten() {
        let (mut table, t0) = (Candidates::new(SETTLE), Instant::now());
        table.touched(Path::new("/in/a.mp4"), seen(10), true, t0);
        assert!(table.take_ready(|_| None, t0).is_empty());
        assert!(table.is_empty());
    }
}
