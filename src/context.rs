//! `AppContext`: the services every actor and door of one running app shares — settings,
//! database, media root, metrics, live item events, the served-file cache, tool versions.
//!
//! It holds no actor message type: actors are reached through their typed handles
//! (`actors::Handles`), never through this. One per app, never global: tests run several apps
//! in one process.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::broadcast;

use crate::db::Db;
use crate::db::jobs::Claimant;
use crate::domain::platform::HostMap;
use crate::domain::ssrf::EgressPolicy;
use crate::domain::{ItemId, ItemStatus, JobError, Progress};
use crate::faults::Faults;
use crate::media::ffmpeg::EncodeSettings;
use crate::media::ffprobe::ProbeLimits;
use crate::media::processing::ProcessingConfig;
use crate::metrics::{Event, Metrics};
use crate::settings::Settings;
use crate::storage::MediaRoot;
use crate::storage::served::ServedFiles;
use crate::storage::space::SpaceFloor;

/// Something that happened to an item, for live followers (progress bars, event streams).
#[derive(Debug, Clone, PartialEq)]
pub struct ItemEvent {
    pub item: ItemId,
    pub change: ItemChange,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ItemChange {
    Progress(Progress),
    Status {
        status: ItemStatus,
        error: Option<JobError>,
    },
}

pub struct AppContext {
    pub settings: Settings,
    pub db: Db,
    pub media: MediaRoot,
    /// The free-space floor under `media` (`storage.min_free_mb`), read against statvfs by
    /// every submission and claim.
    pub space: SpaceFloor,
    /// The address policy for captures, with this app's own ports closed.
    pub policy: EgressPolicy,
    /// This process's name in job leases (stable across restarts of the process).
    pub lease_owner: String,
    /// Unique per process start.
    pub boot_id: String,
    pub metrics: Metrics,
    pub faults: Faults,
    pub events: broadcast::Sender<ItemEvent>,
    /// Completed files ready to stream (no database query or open(2) per request).
    pub served: ServedFiles,
    /// Extra hosts of each platform (from `platforms.*.extra_hosts`).
    pub host_map: HostMap,
    pub platform_health: PlatformHealth,
    /// yt-dlp/ffmpeg/ffprobe versions for readiness (cached; probing them is slow).
    pub tools: crate::media::tools::ToolProbe,
    /// Failed sign-ins per name and client address (password guessing is slowed down).
    pub sign_ins: crate::people::SignInThrottle,
    /// Credential lookups, one database read per round of concurrent requests.
    pub credentials: crate::people::Lookups,
    shutting_down: AtomicBool,
}

impl AppContext {
    pub fn new(
        settings: Settings,
        db: Db,
        media: MediaRoot,
        policy: EgressPolicy,
        lease_owner: String,
    ) -> Self {
        let host_map = settings.host_map();
        let credentials_db = db.clone();
        let metrics = Metrics::new(settings.metrics.enabled);
        Self {
            space: SpaceFloor::of_mib(settings.storage.min_free_mb),
            settings,
            db,
            media,
            policy,
            lease_owner,
            boot_id: uuid::Uuid::now_v7().to_string(),
            metrics,
            faults: Faults::default(),
            events: broadcast::channel(1024).0,
            served: ServedFiles::new(256, Duration::from_secs(60)),
            host_map,
            platform_health: PlatformHealth::default(),
            tools: crate::media::tools::ToolProbe::new(),
            sign_ins: crate::people::SignInThrottle::new(),
            credentials: crate::people::Lookups::new(credentials_db),
            shutting_down: AtomicBool::new(false),
        }
    }

    pub fn claimant(&self) -> Claimant {
        Claimant {
            owner: self.lease_owner.clone(),
            boot_id: self.boot_id.clone(),
            lease: Duration::from_secs(self.settings.queue.lease_secs.get()),
        }
    }

    pub fn publish(&self, item: ItemId, change: ItemChange) {
        // No subscriber is the normal case; the event is then simply dropped.
        let _ = self.events.send(ItemEvent { item, change });
    }

    /// Counts an event on the app's registry (in place; metrics never hold up real work).
    pub fn observe(&self, event: Event) {
        self.metrics.record(&event);
    }

    pub fn begin_shutdown(&self) {
        self.shutting_down.store(true, Ordering::SeqCst);
    }

    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::SeqCst)
    }

    pub fn processing_config(&self) -> ProcessingConfig {
        let p = &self.settings.processing;
        let timeout = Duration::from_secs(p.timeout_secs.get());
        ProcessingConfig {
            ffmpeg: p.ffmpeg_path.clone(),
            ffprobe: p.ffprobe_path.clone(),
            limits: ProbeLimits {
                max_width: p.max_width,
                max_height: p.max_height,
                max_duration_secs: p.max_duration_secs,
            },
            convert: EncodeSettings {
                crf: p.crf,
                preset: p.preset.as_str().to_string(),
                timeout,
            },
            compress: EncodeSettings {
                crf: p.compress_crf,
                preset: p.preset.as_str().to_string(),
                timeout,
            },
            compress_policy: p.compress,
            compress_above_bytes: self.settings.storage.compress_above_mb.get() * 1024 * 1024,
            thumbnail_at: p.thumbnail_at,
            probe_timeout: timeout.min(Duration::from_secs(120)),
            subtitles: self.settings.subtitles.enabled,
        }
    }
}

/// What the platforms told us that an operator should see in readiness: for now, whether
/// yt-dlp accepted each platform's cookies file.
#[derive(Debug, Default)]
pub struct PlatformHealth {
    cookie_problems: std::sync::Mutex<std::collections::HashMap<crate::domain::Platform, String>>,
}

impl PlatformHealth {
    /// Records the outcome of a run that used the platform's cookies (`None`: no complaint).
    pub fn record_cookies(&self, platform: crate::domain::Platform, problem: Option<String>) {
        let mut problems = self.cookie_problems.lock().expect("health lock");
        match problem {
            Some(problem) => {
                problems.insert(platform, problem);
            }
            None => {
                problems.remove(&platform);
            }
        }
    }

    pub fn cookie_problem(&self, platform: crate::domain::Platform) -> Option<String> {
        self.cookie_problems
            .lock()
            .expect("health lock")
            .get(&platform)
            .cloned()
    }
}
