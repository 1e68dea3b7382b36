//! The notify watcher of the inbox (inotify, or polling with `watch.poll` for network mounts)
//! behind notify's debouncer: what changed is sent to the watch folder's loop as
//! [`WatchEvent`]s, and an overflow of the kernel's queue asks for a rescan.

use std::path::PathBuf;
use std::time::Duration;

use notify_debouncer_full::notify::event::{AccessKind, AccessMode, ModifyKind};
use notify_debouncer_full::notify::{
    self, EventKind, PollWatcher, RecommendedWatcher, RecursiveMode,
};
use notify_debouncer_full::{DebounceEventResult, Debouncer, RecommendedCache, new_debouncer_opt};
use tokio::sync::mpsc::UnboundedSender;

use super::inbox::Inbox;
use crate::metrics::RescanReason;

/// What the watcher tells the watch folder's loop.
#[derive(Debug)]
pub enum WatchEvent {
    /// These paths changed; `true` when the event says the writer is done (close-after-write,
    /// rename-in).
    Touched(Vec<(PathBuf, bool)>),
    Rescan(RescanReason),
}

/// The watcher, kept alive for as long as the folder is watched (dropping it stops it).
pub enum Watcher {
    Events(Debouncer<RecommendedWatcher, RecommendedCache>),
    Polling(Debouncer<PollWatcher, RecommendedCache>),
}

pub fn start(
    events: &UnboundedSender<WatchEvent>,
    inbox: &Inbox,
    poll: bool,
    poll_interval_ms: u64,
) -> Result<Watcher, String> {
    let actor = events.clone();
    let root = inbox.root().to_path_buf();
    let handler = move |result: DebounceEventResult| match result {
        Ok(events) => {
            let mut touched = Vec::new();
            for event in events {
                if event.need_rescan() {
                    let _ = actor.send(WatchEvent::Rescan(RescanReason::Overflow));
                    continue;
                }
                let finished = match event.kind {
                    EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
                    EventKind::Modify(ModifyKind::Name(_)) => true,
                    EventKind::Create(_) | EventKind::Modify(_) => false,
                    _ => continue,
                };
                // A rename names its source first and its destination last.
                if let Some(path) = event.paths.last().filter(|p| p.parent() == Some(&root)) {
                    touched.push((path.clone(), finished));
                }
            }
            if !touched.is_empty() {
                let _ = actor.send(WatchEvent::Touched(touched));
            }
        }
        Err(errors) => {
            for error in errors {
                tracing::warn!(%error, "watch folder event error; rescanning");
            }
            let _ = actor.send(WatchEvent::Rescan(RescanReason::Overflow));
        }
    };
    let debounce = Duration::from_millis(200);
    let watched = |e: notify::Error| format!("cannot watch {}: {e}", inbox.root().display());
    if poll {
        let config =
            notify::Config::default().with_poll_interval(Duration::from_millis(poll_interval_ms));
        let mut debouncer = new_debouncer_opt::<_, PollWatcher, _>(
            debounce,
            None,
            handler,
            RecommendedCache::new(),
            config,
        )
        .map_err(watched)?;
        debouncer
            .watch(inbox.root(), RecursiveMode::NonRecursive)
            .map_err(watched)?;
        return Ok(Watcher::Polling(debouncer));
    }
    let mut debouncer = new_debouncer_opt::<_, RecommendedWatcher, _>(
        debounce,
        None,
        handler,
        RecommendedCache::new(),
        notify::Config::default(),
    )
    .map_err(watched)?;
    debouncer
        .watch(inbox.root(), RecursiveMode::NonRecursive)
        .map_err(watched)?;
    Ok(Watcher::Events(debouncer))
}
