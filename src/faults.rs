//! Fault injection for tests: make a named point panic a given number of times, or hold the
//! code at a named point until the test lets it go (to order two racing requests on purpose).
//!
//! Real tools cannot be made to crash an actor on demand, and a real database cannot be made
//! to interleave two transactions on demand, so tests arm a point through the app's `Faults`
//! (there is no configuration key for it: production never arms anything, and an unarmed
//! check is one uncontended lock).

use std::collections::HashMap;
use std::sync::Mutex;

use tokio::sync::oneshot;

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
    /// The Pipeline panics on its periodic tick.
    PipelineTick,
    /// The StorageActor panics when asked to commit an attempt's files.
    StorageCommit,
    /// The MetricsActor panics on its periodic refresh.
    MetricsRefresh,
    /// The DownloadSupervisor panics when handed a download.
    DownloadSupervisorHandle,
    /// The ProcessingPool panics when handed work.
    ProcessingPoolHandle,
    /// The watch folder's task panics at a periodic rescan.
    WatchRescan,
    /// The HTTP server's task panics after accepting a connection.
    HttpAccept,
    /// Recording a capture, inside its transaction, after it looked for the same video and
    /// before it reopens or inserts anything (held, not crashed).
    RecordAfterLookup,
    /// Deleting an item, inside its transaction, after its rows were deleted and before the
    /// commit (held, not crashed).
    DeleteBeforeCommit,
}

#[derive(Debug, Default)]
pub struct Faults {
    armed: Mutex<HashMap<FaultPoint, u32>>,
    holds: Mutex<HashMap<FaultPoint, Waiting>>,
}

/// The code's side of a hold: whom to tell it arrived, and what to wait for.
#[derive(Debug)]
struct Waiting {
    arrived: oneshot::Sender<()>,
    released: oneshot::Receiver<()>,
}

/// The test's side of a hold on one point.
#[derive(Debug)]
pub struct Hold {
    arrived: oneshot::Receiver<()>,
    release: oneshot::Sender<()>,
}

impl Hold {
    /// Waits until the code reaches the point (and stops there).
    pub async fn arrived(&mut self) {
        let _ = (&mut self.arrived).await;
    }

    /// Lets the held code go on.
    pub fn release(self) {
        let _ = self.release.send(());
    }
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

    /// The next pass through `point` stops there until the returned hold is released (or
    /// dropped).
    pub fn hold(&self, point: FaultPoint) -> Hold {
        let (arrived_tx, arrived_rx) = oneshot::channel();
        let (release_tx, release_rx) = oneshot::channel();
        let waiting = Waiting {
            arrived: arrived_tx,
            released: release_rx,
        };
        self.holds
            .lock()
            .expect("faults lock")
            .insert(point, waiting);
        Hold {
            arrived: arrived_rx,
            release: release_tx,
        }
    }

    /// Stops here while a test holds `point`.
    pub async fn pass(&self, point: FaultPoint) {
        let waiting = self.holds.lock().expect("faults lock").remove(&point);
        if let Some(waiting) = waiting {
            let _ = waiting.arrived.send(());
            let _ = waiting.released.await;
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

    #[tokio::test]
    async fn a_hold_stops_one_pass_until_released() {
        let faults = std::sync::Arc::new(Faults::default());
        // Unheld: passes at once.
        faults.pass(FaultPoint::RecordAfterLookup).await;
        let mut hold = faults.hold(FaultPoint::RecordAfterLookup);
        let (done_tx, mut done_rx) = oneshot::channel();
        let passer = std::sync::Arc::clone(&faults);
        tokio::spawn(async move {
            passer.pass(FaultPoint::RecordAfterLookup).await;
            let _ = done_tx.send(());
        });
        hold.arrived().await;
        assert!(
            done_rx.try_recv().is_err(),
            "the held pass went on before its release"
        );
        hold.release();
        done_rx
            .await
            .expect("the held pass went on after its release");
        // The hold was for one pass only.
        faults.pass(FaultPoint::RecordAfterLookup).await;
    }
}
