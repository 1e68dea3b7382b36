//! WatchFolderActor: files dropped into `watch.dir` become captures.
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

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use notify_debouncer_full::notify::event::{AccessKind, AccessMode, ModifyKind};
use notify_debouncer_full::notify::{
    self, EventKind, PollWatcher, RecommendedWatcher, RecursiveMode,
};
use notify_debouncer_full::{DebounceEventResult, Debouncer, RecommendedCache, new_debouncer_opt};
use ractor::{Actor, ActorProcessingErr, ActorRef};
use tokio_util::task::AbortOnDropHandle;

use super::metrics::{MetricsMsg, RescanReason, WatchOutcome};
use crate::clock;
use crate::context::AppContext;
use crate::db::imports::{ImportPayload, NewImport};
use crate::domain::text::clean;
use crate::domain::{ErrorCode, ItemKind, JobError, Source};
use crate::intake;
use crate::media::ffprobe;
use crate::watch::inbox::{self, Inbox};
use crate::watch::links;
use crate::watch::names::{self, EntryKind, LinkFileKind};
use crate::watch::settle::Candidates;

/// Files taken per message, so that a burst does not hold up a shutdown.
const BATCH: usize = 32;
/// How long a probe of a dropped file may take (it reads headers only).
const PROBE_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug)]
pub enum WatchMsg {
    /// The watcher saw these paths change; `true` when the event says the writer is done
    /// (close-after-write, rename-in).
    Touched(Vec<(PathBuf, bool)>),
    Rescan(RescanReason),
    /// Look at the waiting files again, and take what is ready.
    Tick,
}

/// The watcher, kept alive for as long as the actor runs (dropping it stops it).
#[expect(dead_code, reason = "held only so that it keeps running")]
enum Watcher {
    Events(Debouncer<RecommendedWatcher, RecommendedCache>),
    Polling(Debouncer<PollWatcher, RecommendedCache>),
}

pub struct WatchState {
    ctx: Arc<AppContext>,
    inbox: Inbox,
    candidates: Candidates,
    ready: VecDeque<PathBuf>,
    _watcher: Watcher,
    _ticker: AbortOnDropHandle<()>,
    _rescanner: AbortOnDropHandle<()>,
}

pub struct WatchFolderActor;

impl Actor for WatchFolderActor {
    type Msg = WatchMsg;
    type State = WatchState;
    type Arguments = Arc<AppContext>;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        ctx: Self::Arguments,
    ) -> Result<Self::State, ActorProcessingErr> {
        let settings = &ctx.settings.watch;
        let inbox = Inbox::open(&settings.dir).map_err(|e| {
            format!(
                "cannot create the watch folder {}: {e}",
                settings.dir.display()
            )
        })?;
        let settle = Duration::from_millis(settings.settle_ms);
        let watcher = start_watcher(&myself, &inbox, settings.poll, settings.poll_interval_ms)?;
        let tick = (settle / 4).clamp(Duration::from_millis(100), Duration::from_secs(1));
        let ticker = myself.send_interval(tick, || WatchMsg::Tick);
        let rescanner = myself.send_interval(Duration::from_secs(settings.rescan_secs), || {
            WatchMsg::Rescan(RescanReason::Periodic)
        });
        myself.send_message(WatchMsg::Rescan(RescanReason::Startup))?;
        tracing::info!(dir = %inbox.root().display(), poll = settings.poll, "watching the inbox");
        Ok(WatchState {
            ctx,
            inbox,
            candidates: Candidates::new(settle),
            ready: VecDeque::new(),
            _watcher: watcher,
            _ticker: AbortOnDropHandle::new(ticker),
            _rescanner: AbortOnDropHandle::new(rescanner),
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        message: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let now = Instant::now();
        match message {
            WatchMsg::Touched(paths) => {
                for (path, finished) in paths {
                    state.consider(&path, finished, now);
                }
            }
            WatchMsg::Rescan(reason) => state.rescan(reason, now),
            WatchMsg::Tick => {}
        }
        state.take_some(&myself).await;
        Ok(())
    }
}

fn start_watcher(
    myself: &ActorRef<WatchMsg>,
    inbox: &Inbox,
    poll: bool,
    poll_interval_ms: u64,
) -> Result<Watcher, ActorProcessingErr> {
    let actor = myself.clone();
    let root = inbox.root().to_path_buf();
    let handler = move |result: DebounceEventResult| match result {
        Ok(events) => {
            let mut touched = Vec::new();
            for event in events {
                if event.need_rescan() {
                    let _ = actor.send_message(WatchMsg::Rescan(RescanReason::Overflow));
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
                let _ = actor.send_message(WatchMsg::Touched(touched));
            }
        }
        Err(errors) => {
            for error in errors {
                tracing::warn!(%error, "watch folder event error; rescanning");
            }
            let _ = actor.send_message(WatchMsg::Rescan(RescanReason::Overflow));
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

/// What to do with a file after trying to take it.
enum Taken {
    Done(WatchOutcome),
    /// A passing problem (database, shutdown): leave the file for the next rescan.
    Later(String),
}

impl WatchState {
    fn consider(&mut self, path: &Path, finished: bool, now: Instant) {
        if !self.inbox.holds(path) || names::classify(path) == EntryKind::Ignored {
            return;
        }
        if let Some(seen) = inbox::observe(path) {
            self.candidates.touched(path, seen, finished, now);
        }
    }

    fn rescan(&mut self, reason: RescanReason, now: Instant) {
        self.ctx.observe(MetricsMsg::WatchRescan(reason));
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

    /// Takes ready files, a batch at a time (the rest are another message's work).
    async fn take_some(&mut self, myself: &ActorRef<WatchMsg>) {
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
        if !self.ready.is_empty() {
            let _ = myself.send_message(WatchMsg::Tick);
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
                self.ctx.observe(MetricsMsg::WatchFile(outcome));
            }
            Ok(Taken::Later(why)) => {
                tracing::warn!(file = %name, reason = %why, "leaving a file in the inbox for the next rescan")
            }
            Err(reason) => match self.inbox.fail(path, &reason) {
                Ok(moved) => {
                    tracing::warn!(file = %name, %reason, to = %moved.display(), "refused a file from the inbox");
                    self.ctx
                        .observe(MetricsMsg::WatchFile(WatchOutcome::Failed));
                }
                // Gone already, or the folder is read-only: nothing more can be done for it.
                Err(e) => {
                    tracing::error!(file = %name, %reason, error = %e, "cannot move a refused file to failed/")
                }
            },
        }
    }

    /// Submits each link of a link file. `Err` is the reason to refuse the whole file.
    async fn take_links(&mut self, path: &Path, kind: LinkFileKind) -> Result<Taken, String> {
        let (mut file, _) = inbox::open_regular(path).map_err(|r| r.to_string())?;
        let limit_kb = self.ctx.settings.watch.max_link_file_kb;
        let bytes = inbox::read_bounded(&mut file, limit_kb * 1024)
            .map_err(|e| format!("cannot read the file: {e}"))?
            .ok_or_else(|| {
                format!("the link file is larger than watch.max_link_file_kb ({limit_kb} KiB)")
            })?;
        let list = links::parse(kind, &bytes).map_err(|e| e.to_string())?;
        let mut problems: Vec<String> = list
            .rejected
            .iter()
            .map(|r| format!("line {}: no link found in \"{}\"", r.line, r.text))
            .collect();
        let mut accepted = 0;
        for link in &list.links {
            match intake::submit_url(&self.ctx, link, Source::Watch, None).await {
                Ok(record) => {
                    accepted += 1;
                    tracing::info!(item = %record.item.id, url = %clean(link, 200), "captured a link from the inbox");
                }
                Err(e) if is_passing(&e) => return Ok(Taken::Later(e.message)),
                Err(e) => {
                    problems.push(format!("{}: {} ({})", clean(link, 200), e.message, e.code))
                }
            }
        }
        if accepted == 0 {
            return Err(if problems.is_empty() {
                "the file holds no links".to_string()
            } else {
                format!("no link could be captured:\n{}", problems.join("\n"))
            });
        }
        let destination = self.processed_destination(path);
        if !problems.is_empty() {
            let note = format!(
                "{accepted} link(s) captured; these were not:\n{}",
                problems.join("\n")
            );
            inbox::write_note(&destination, &note)
                .map_err(|e| format!("cannot write the note about refused lines: {e}"))?;
        }
        self.inbox
            .move_to(path, &destination)
            .map_err(|e| format!("cannot move the file to processed/: {e}"))?;
        Ok(Taken::Done(WatchOutcome::Links))
    }

    /// Records a video for import, then moves it to `processed/`. `Err` is the reason to
    /// refuse it.
    async fn take_media(&mut self, path: &Path) -> Result<Taken, String> {
        let (file, identity) = inbox::open_regular(path).map_err(|r| r.to_string())?;
        drop(file);
        let max_bytes = self.ctx.settings.max_video_bytes();
        if identity.size > max_bytes {
            let refusal = JobError::too_large(identity.size, max_bytes);
            return Err(format!("{} (storage.max_video_size_mb)", refusal.message));
        }
        if identity.size == 0 {
            return Err("the file is empty".to_string());
        }
        let processing = self.ctx.processing_config();
        match ffprobe::probe(&processing.ffprobe, path, &processing.limits, PROBE_TIMEOUT).await {
            Ok(_) => {}
            Err(e) if matches!(e.code, ErrorCode::Timeout | ErrorCode::ProcessingFailed) => {
                return Ok(Taken::Later(format!("cannot probe it now: {}", e.message)));
            }
            Err(e) => return Err(format!("not a video that can be stored: {}", e.message)),
        }
        let title = path
            .file_stem()
            .map(|stem| clean(&stem.to_string_lossy(), 200))
            .unwrap_or_default();
        let request = NewImport {
            key: format!("watch:{}", identity.key()),
            kind: ItemKind::Video,
            source: Source::Watch,
            owner: None,
            title,
            file: ImportPayload {
                file: self.processed_destination(path),
                found_at: path.to_path_buf(),
                // The user's file: copied, never deleted by the pipeline.
                owned: false,
            },
            max_attempts: self.ctx.settings.queue.max_attempts,
        };
        let record = match intake::import_file(&self.ctx, request).await {
            Ok(record) => record,
            Err(e) if is_passing(&e) => return Ok(Taken::Later(e.message)),
            Err(e) => return Err(format!("{} ({})", e.message, e.code)),
        };
        tracing::info!(item = %record.item.id, created = record.created, "recorded a video from the inbox for import");
        self.ctx
            .faults
            .crash_if_armed(crate::faults::FaultPoint::WatchAfterRecord);
        // The job finds the file where it was found until it is moved, so a failed move loses
        // nothing; it is retried with the file's next rescan (and recognised by its key).
        if let Err(e) = self.inbox.move_to(path, &record.file.file) {
            tracing::error!(item = %record.item.id, error = %e, "cannot move an imported file to processed/; it stays in the inbox");
        }
        Ok(Taken::Done(if record.created {
            WatchOutcome::Imported
        } else {
            WatchOutcome::Duplicate
        }))
    }

    fn processed_destination(&self, path: &Path) -> PathBuf {
        // `Date` displays as YYYY-MM-DD.
        let day = clock::datetime(clock::now_ms()).date().to_string();
        self.inbox
            .processed_destination(path.file_name().unwrap_or_default(), &day)
    }
}

/// Errors that say "not now" rather than "not this file".
fn is_passing(error: &JobError) -> bool {
    matches!(error.code, ErrorCode::Unavailable | ErrorCode::ShuttingDown)
}
