//! The jobs this Pipeline runs right now, and how many more it may take.
//!
//! Plain bookkeeping, driven by the actor and unit-tested without it. The database is the
//! truth; this table is the Pipeline's memory of which attempt is where, and it lets stale
//! messages (from an attempt that was already failed or re-run) be recognised and dropped.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Instant;

use super::output::Output;
use crate::db::items::Item;
use crate::db::jobs::{ClaimedJob, Lease, Subject};
use crate::domain::source_meta::SourceMeta;
use crate::domain::{ItemId, JobId, Platform, Quality, Stage};

/// Who holds an attempt's work right now: where a cancel goes, and which crash loses it.
/// Set explicitly whenever the work is handed on, never inferred from the progress stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Holder {
    /// The Pipeline itself: between hand-offs, or parked behind an identical video's commit.
    Pipeline,
    /// The downloader of this platform (under the DownloadSupervisor).
    Downloader(Platform),
    /// The blocking task that copies an import's file into the work directory.
    Stager,
    /// A processing worker (under the ProcessingPool).
    Processing,
    /// The StorageActor, moving the attempt's files into the tree.
    Storage,
}

/// One running attempt.
#[derive(Debug)]
pub struct Running {
    pub job: ClaimedJob,
    pub item: Item,
    pub platform: Platform,
    /// What the attempt reports as its progress (and what the capacity rule counts).
    pub stage: Stage,
    pub holder: Holder,
    pub work_dir: PathBuf,
    pub title: Option<String>,
    /// What the source said beyond the title (from yt-dlp; empty for files).
    pub source_meta: SourceMeta,
    /// The rendition a transcode makes.
    pub quality: Option<Quality>,
    /// The picture height the source announced (throttle detection).
    pub announced_height: Option<u32>,
    /// Files of an earlier item with the same content, shared instead of stored again.
    pub shared: Option<crate::domain::layout::MediaPaths>,
    /// What processing produced, between the hand-off to Storage and the completion.
    pub output: Option<Output>,
    /// When progress was last written to the database (writes are throttled).
    pub last_progress_write: Option<Instant>,
    /// When the worker last reported anything about this attempt.
    pub last_activity: Instant,
}

impl Running {
    pub fn lease(&self) -> &Lease {
        &self.job.lease
    }

    pub fn subject(&self) -> Subject {
        Subject {
            kind: self.job.kind,
            item: self.item.id,
        }
    }

    fn is_downloading(&self) -> bool {
        self.stage == Stage::Download
    }
}

/// Limits on concurrent work.
#[derive(Debug, Clone)]
pub struct Capacity {
    /// Downloads per platform at once.
    pub per_platform: HashMap<Platform, usize>,
    /// Downloads at once over all platforms.
    pub downloads: usize,
    /// Jobs past their download (waiting for or in processing) before claiming pauses:
    /// downloading faster than we can process only fills the disk.
    pub processing_backlog: usize,
}

#[derive(Debug, Default)]
pub struct InFlight {
    jobs: HashMap<JobId, Running>,
}

impl InFlight {
    /// Adds an attempt; returns an earlier attempt of the same job if one was still here
    /// (which must then be stopped: only one attempt of a job may run).
    pub fn insert(&mut self, running: Running) -> Option<Running> {
        self.jobs.insert(running.job.lease.job, running)
    }

    /// The attempt named by `lease`, if it is still the one running (stale leases miss). The
    /// caller is hearing from its worker, which counts as activity.
    pub fn current(&mut self, lease: &Lease) -> Option<&mut Running> {
        let running = self
            .jobs
            .get_mut(&lease.job)
            .filter(|r| r.job.lease == *lease)?;
        running.last_activity = Instant::now();
        Some(running)
    }

    pub fn leases(&self) -> Vec<Lease> {
        self.jobs.values().map(|r| r.job.lease.clone()).collect()
    }

    pub fn remove(&mut self, lease: &Lease) -> Option<Running> {
        if self
            .jobs
            .get(&lease.job)
            .is_some_and(|r| r.job.lease == *lease)
        {
            self.jobs.remove(&lease.job)
        } else {
            None
        }
    }

    pub fn is_empty(&self) -> bool {
        self.jobs.is_empty()
    }

    pub fn contains(&self, job: JobId) -> bool {
        self.jobs.contains_key(&job)
    }

    pub fn len(&self) -> usize {
        self.jobs.len()
    }

    pub fn drain(&mut self) -> Vec<Running> {
        self.jobs.drain().map(|(_, r)| r).collect()
    }

    /// Leases of the attempts `keep` selects.
    pub fn leases_where(&self, keep: impl Fn(&Running) -> bool) -> Vec<Lease> {
        self.jobs
            .values()
            .filter(|r| keep(r))
            .map(|r| r.job.lease.clone())
            .collect()
    }

    /// Attempts working on `item`.
    pub fn of_item(&self, item: ItemId) -> Vec<Lease> {
        self.leases_where(|r| r.item.id == item)
    }

    /// Attempts whose work `holder` has (what its crash takes with it).
    pub fn held_by(&self, holder: impl Fn(Holder) -> bool) -> Vec<Lease> {
        self.leases_where(|r| holder(r.holder))
    }

    /// How many more processing-only jobs (transcodes, imports) may be claimed now.
    pub fn room_for_processing(&self, cap: &Capacity) -> usize {
        let past_download = self.jobs.values().filter(|r| !r.is_downloading()).count();
        cap.processing_backlog.saturating_sub(past_download)
    }

    pub fn downloads_of(&self, platform: Platform) -> usize {
        self.jobs
            .values()
            .filter(|r| r.is_downloading() && r.platform == platform)
            .count()
    }

    /// How many more jobs of `platform` may be claimed now.
    pub fn room_for(&self, platform: Platform, cap: &Capacity) -> usize {
        let downloading = self.jobs.values().filter(|r| r.is_downloading()).count();
        let past_download = self.jobs.len() - downloading;
        if past_download >= cap.processing_backlog {
            return 0;
        }
        let platform_cap = cap.per_platform.get(&platform).copied().unwrap_or(1);
        platform_cap
            .saturating_sub(self.downloads_of(platform))
            .min(cap.downloads.saturating_sub(downloading))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::layout::MediaPaths;
    use crate::domain::{ItemId, ItemKind, ItemStatus, JobKind, Source};

    fn running(platform: Platform, stage: Stage, attempt: u32) -> Running {
        let item_id = ItemId::new();
        let job = ClaimedJob {
            lease: Lease {
                job: JobId::new(),
                attempt,
                owner: "me".into(),
                item: item_id,
            },
            kind: JobKind::Capture,
            item_id,
            platform: Some(platform),
            max_attempts: 3,
            payload: None,
        };
        let item = Item {
            id: item_id,
            kind: ItemKind::Video,
            owner: None,
            source: Source::Api,
            source_url: None,
            canonical_url: None,
            platform,
            platform_media_id: None,
            status: ItemStatus::Downloading,
            progress: None,
            error: None,
            title: None,
            media: None,
            size_bytes: None,
            thumbnails_bytes: None,
            sha256: None,
            warnings: Vec::new(),
            encoding: None,
            source_meta: SourceMeta::default(),
            subtitles: Vec::new(),
            user: Default::default(),
            paths: MediaPaths::for_item(
                item_id.as_uuid(),
                ItemKind::Video,
                time::OffsetDateTime::UNIX_EPOCH,
            ),
            created_at: Default::default(),
            updated_at: Default::default(),
            completed_at: None,
        };
        Running {
            job,
            item,
            platform,
            stage,
            holder: Holder::Pipeline,
            work_dir: PathBuf::new(),
            title: None,
            source_meta: SourceMeta::default(),
            quality: None,
            announced_height: None,
            shared: None,
            output: None,
            last_progress_write: None,
            last_activity: Instant::now(),
        }
    }

    fn capacity() -> Capacity {
        Capacity {
            per_platform: HashMap::from([(Platform::Youtube, 2), (Platform::Generic, 4)]),
            downloads: 5,
            processing_backlog: 3,
        }
    }

    #[test]
    fn per_platform_and_global_caps_both_bind() {
        let mut table = InFlight::default();
        assert_eq!(table.room_for(Platform::Youtube, &capacity()), 2);
        table.insert(running(Platform::Youtube, Stage::Download, 1));
        table.insert(running(Platform::Youtube, Stage::Download, 1));
        assert_eq!(table.room_for(Platform::Youtube, &capacity()), 0);
        assert_eq!(table.room_for(Platform::Generic, &capacity()), 3);
        table.insert(running(Platform::Generic, Stage::Download, 1));
        table.insert(running(Platform::Generic, Stage::Download, 1));
        assert_eq!(table.room_for(Platform::Generic, &capacity()), 1);
    }

    #[test]
    fn a_processing_backlog_pauses_claiming() {
        let mut table = InFlight::default();
        assert_eq!(table.room_for_processing(&capacity()), 3);
        for _ in 0..3 {
            table.insert(running(Platform::Generic, Stage::Convert, 1));
        }
        assert_eq!(table.room_for(Platform::Generic, &capacity()), 0);
        assert_eq!(table.room_for_processing(&capacity()), 0);
    }

    #[test]
    fn stale_leases_do_not_match_the_current_attempt() {
        let mut table = InFlight::default();
        let current = running(Platform::Generic, Stage::Download, 2);
        let lease = current.job.lease.clone();
        table.insert(current);
        let stale = Lease {
            attempt: 1,
            ..lease.clone()
        };
        assert!(table.current(&stale).is_none());
        assert!(table.remove(&stale).is_none());
        assert!(table.current(&lease).is_some());
        assert!(table.remove(&lease).is_some());
        assert!(table.is_empty());
    }
}
