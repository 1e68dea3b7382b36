//! The watch folder: files dropped into `watch.dir` become captures.
//!
//! A notify watcher (inotify, or polling with `watch.poll` for network mounts) behind
//! notify's debouncer reports what changed; a startup scan, a periodic rescan and a rescan on
//! every overflow of the kernel's queue find what events missed. Each file waits in the settle
//! table (`watch::settle`) until it is complete, then is taken:
//!
//! - a link file (`.txt`, `.url`, `.webloc`): each link is submitted like an API capture (same
//!   validation, SSRF policy and dedup); lines without links and refused links are listed in a
//!   note beside the file;
//! - anything else: if ffprobe reads it as a video, it is recorded as an import (item + job,
//!   idempotent on the file's device, inode, size and mtime) and then moved to `processed/`;
//!   the import job copies it into the pipeline, with no download.
//!
//! Refused files go to `failed/` with `<name>.error.txt`. Record first, move second: a crash
//! in between leaves the file in the inbox, and the next look at it finds the record, so a
//! file is imported once however often the service stops. A file whose submission failed for
//! a passing reason (database down, shutting down) stays where it is for the next rescan.

//!
//! `WatchFolder::run` is the loop a `WatchDoor` runs: it reads the watcher's events, ticks
//! the settle table and rescans on a timer, until the door is stopped.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc::UnboundedReceiver;
use tokio_util::sync::CancellationToken;

use super::inbox::{self, Inbox};
use super::names::{self, EntryKind};
use super::settle::Candidates;
use super::take::Taken;
use super::watcher::{WatchEvent, Watcher};
use crate::context::AppContext;
use crate::domain::text::clean;
use crate::faults::FaultPoint;
use crate::intake::Intake;
use crate::metrics::{Event, RescanReason, WatchOutcome};

/// Files taken per turn of the loop, so that a burst does not hold up a shutdown.
const BATCH: usize = 32;

pub struct WatchFolder {
    pub(super) ctx: Arc<AppContext>,
    pub(super) intake: Intake,
    pub(super) inbox: Inbox,
    candidates: Candidates,
    ready: VecDeque<PathBuf>,
    _watcher: Watcher,
}

impl WatchFolder {
    pub fn new(ctx: Arc<AppContext>, intake: Intake, inbox: Inbox, watcher: Watcher) -> Self {
        let settle = Duration::from_millis(ctx.settings.watch.settle_ms.get());
        Self {
            ctx,
            intake,
            inbox,
            candidates: Candidates::new(settle),
            ready: VecDeque::new(),
            _watcher: watcher,
        }
    }

    /// Watches until `stop` fires: a startup scan, then events, ticks and periodic rescans.
    pub async fn run(mut self, mut events: UnboundedReceiver<WatchEvent>, stop: CancellationToken) {
        let settings = &self.ctx.settings.watch;
        let settle = Duration::from_millis(settings.settle_ms.get());
        let mut tick = tokio::time::interval(
            (settle / 4).clamp(Duration::from_millis(100), Duration::from_secs(1)),
        );
        let rescan_every = Duration::from_secs(settings.rescan_secs.get());
        let mut rescan =
            tokio::time::interval_at(tokio::time::Instant::now() + rescan_every, rescan_every);
        for interval in [&mut tick, &mut rescan] {
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        }
        self.rescan(RescanReason::Startup, Instant::now());
        loop {
            if stop.is_cancelled() {
                return;
            }
            self.take_some().await;
            let busy = !self.ready.is_empty();
            tokio::select! {
                biased;
                () = stop.cancelled() => return,
                event = events.recv() => match event {
                    Some(WatchEvent::Touched(paths)) => {
                        let now = Instant::now();
                        for (path, finished) in paths {
                            self.consider(&path, finished, now);
                        }
                    }
                    Some(WatchEvent::Rescan(reason)) => self.rescan(reason, Instant::now()),
                    // The watcher is gone (it lives as long as this loop): nothing to wait for.
                    None => return,
                },
                _ = rescan.tick() => self.rescan(RescanReason::Periodic, Instant::now()),
                _ = tick.tick() => {}
                // More ready files than one batch: go on at once.
                () = std::future::ready(()), if busy => {}
            }
        }
    }

    fn consider(&mut self, path: &Path, finished: bool, now: Instant) {
        if !self.inbox.holds(path) || names::classify(path) == EntryKind::Ignored {
            return;
        }
        if let Some(seen) = inbox::observe(path) {
            self.candidates.touched(path, seen, finished, now);
        }
    }

    fn rescan(&mut self, reason: RescanReason, now: Instant) {
        if matches!(reason, RescanReason::Periodic) {
            self.ctx.faults.crash_if_armed(FaultPoint::WatchRescan);
        }
        self.ctx.observe(Event::WatchRescan(reason));
        // Someone may have removed the folder; it is ours to keep.
        let entries = Inbox::open(self.inbox.root()).and_then(|inbox| {
            self.inbox = inbox;
            self.inbox.entries()
        });
        match entries {
            Ok(entries) => {
                tracing::debug!(
                    reason = reason.as_str(),
                    entries = entries.len(),
                    "rescanning the inbox"
                );
                for path in entries {
                    if !self.ready.contains(&path) {
                        self.consider(&path, false, now);
                    }
                }
            }
            Err(e) => {
                tracing::error!(dir = %self.inbox.root().display(), error = %e, "cannot scan the watch folder")
            }
        }
    }

    /// Takes ready files, a batch at a time (the rest wait for the next turn of the loop, so
    /// that a burst does not hold up a shutdown).
    async fn take_some(&mut self) {
        if self.ctx.is_shutting_down() {
            return;
        }
        let ready = self.candidates.take_ready(inbox::observe, Instant::now());
        self.ready.extend(ready);
        for _ in 0..BATCH {
            let Some(path) = self.ready.pop_front() else {
                return;
            };
            self.take(&path).await;
        }
    }

    async fn take(&mut self, path: &Path) {
        let name = clean(&path.file_name().unwrap_or_default().to_string_lossy(), 200);
        let taken = match names::classify(path) {
            EntryKind::Ignored => return,
            EntryKind::Links(kind) => self.take_links(path, kind).await,
            EntryKind::Media => self.take_media(path).await,
        };
        match taken {
            Ok(Taken::Done(outcome)) => {
                tracing::info!(file = %name, outcome = outcome.as_str(), "took a file from the inbox");
                self.ctx.observe(Event::WatchFile(outcome));
            }
            Ok(Taken::Later(why)) => {
                tracing::warn!(file = %name, reason = %why, "leaving a file in the inbox for the next rescan")
            }
            Err(reason) => match self.inbox.fail(path, &reason) {
                Ok(moved) => {
                    tracing::warn!(file = %name, %reason, to = %moved.display(), "refused a file from the inbox");
                    self.ctx.observe(Event::WatchFile(WatchOutcome::Failed));
                }
                // Gone already, or the folder is read-only: nothing more can be done for it.
                Err(e) => {
                    tracing::error!(file = %name, %reason, error = %e, "cannot move a refused file to failed/")
                }
            },
        }
    }
}
