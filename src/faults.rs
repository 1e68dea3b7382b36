//! Fault injection for tests: make a named point panic a given number of times.
//!
//! Real tools cannot be made to crash an actor on demand, so tests arm a point through the
//! app's `Faults` (there is no configuration key for it: production never arms anything, and
//! an unarmed check is one uncontended lock).

use std::collections::HashMap;
use std::sync::Mutex;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FaultPoint {
    /// A downloader actor panics while handling a download request.
    DownloaderHandle,
    /// A processing worker actor panics while handling a processing request.
    ProcessingWorkerHandle,
    /// The watch folder actor panics after recording an import, before moving the file.
    WatchAfterRecord,
    /// The bot's receiver panics after Telegram delivered an update, before storing it.
    BotBeforeStore,
}

#[derive(Debug, Default)]
pub struct Faults {
    armed: Mutex<HashMap<FaultPoint, u32>>,
}

impl Faults {
    /// The next `times` passes through `point` fire.
    pub fn arm(&self, point: FaultPoint, times: u32) {
        self.armed.lock().expect("faults lock").insert(point, times);
    }

    /// True (and counted) when `point` is armed.
    pub fn fire(&self, point: FaultPoint) -> bool {
        let mut armed = self.armed.lock().expect("faults lock");
        match armed.get_mut(&point) {
            Some(left) if *left > 0 => {
                *left -= 1;
                true
            }
            _ => false,
        }
    }

    /// Panics when `point` is armed: the injected crash.
    pub fn crash_if_armed(&self, point: FaultPoint) {
        if self.fire(point) {
            panic!("injected fault at {point:?}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fires_exactly_as_often_as_armed() {
        let faults = Faults::default();
        assert!(!faults.fire(FaultPoint::DownloaderHandle));
        faults.arm(FaultPoint::DownloaderHandle, 2);
        assert!(faults.fire(FaultPoint::DownloaderHandle));
        assert!(faults.fire(FaultPoint::DownloaderHandle));
        assert!(!faults.fire(FaultPoint::DownloaderHandle));
        assert!(!faults.fire(FaultPoint::ProcessingWorkerHandle));
    }
}
