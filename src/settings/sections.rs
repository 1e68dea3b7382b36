//! The typed sections of `Settings`, one struct per `[section]` of `config/default.toml`.
//!
//! Every field holds a value already parsed and checked by `parse`: an address is a
//! `SocketAddr`, a count that must not be zero is a `NonZero*`, a choice is an enum. Callers
//! read fields and never parse again. Field names are the keys, so a key named in an error
//! message is also the field to look at. Units stay in the names (`_secs`, `_ms`, `_mb`), as in
//! the file.

use std::net::SocketAddr;
use std::num::{NonZeroU32, NonZeroU64, NonZeroUsize};
use std::path::PathBuf;

use url::Url;

use super::Secret;
use super::values::{AccessLevel, ExtraHost, LogFormat, TelegramMode, X264Preset};
use crate::domain::Platform;
use crate::domain::encoding::CompressPolicy;
use crate::domain::export_name::NamePattern;
use crate::domain::retention::Retention;
use crate::domain::ssrf::AllowRule;

#[derive(Debug, Clone)]
pub struct ServerSettings {
    pub listen: SocketAddr,
    /// The separate listener serving only /metrics (and /healthz); `None`: /metrics is on the
    /// API listener.
    pub metrics_listen: Option<SocketAddr>,
    /// An absolute http(s) URL put in front of media links; `None`: links are paths on this
    /// server.
    pub public_base_url: Option<Url>,
    /// This process's name in job leases: the configured one, or the host name when the key
    /// is empty (resolved once, at load).
    pub instance_id: String,
    pub max_connections: NonZeroUsize,
    pub header_read_timeout_secs: NonZeroU64,
    pub shutdown_grace_secs: u64,
    pub max_body_kb: NonZeroU64,
    /// Reverse proxies whose `X-Forwarded-For` names the client (sign-in throttling).
    pub trusted_proxies: Vec<std::net::IpAddr>,
}

#[derive(Debug, Clone)]
pub struct DatabaseSettings {
    /// `sqlite:…` or `postgres(ql)://…`. May carry a password, hence a secret; log
    /// [`DatabaseSettings::redacted_url`] instead.
    pub url: Secret,
    pub max_connections: NonZeroU32,
    pub busy_timeout_ms: u64,
}

#[derive(Debug, Clone)]
pub struct StorageSettings {
    pub media_root: PathBuf,
    pub max_video_size_mb: NonZeroU64,
    pub compress_above_mb: NonZeroU64,
    pub min_free_mb: u64,
    /// 0: the sweep runs only at start and on request.
    pub sweep_interval_secs: u64,
    pub sweep_min_age_secs: u64,
    /// 0: quarantined files are kept until an operator removes them.
    pub quarantine_days: u64,
}

/// Snapshots of the database and the media (`prsnl backup`).
#[derive(Debug, Clone)]
pub struct BackupSettings {
    /// Where `prsnl backup create` writes snapshots unless told `--to`.
    pub directory: PathBuf,
    /// How often the service backs up by itself; None: only when asked.
    pub interval: Option<std::time::Duration>,
    /// What `prsnl backup prune` and every scheduled backup keep.
    pub retention: Retention,
}

/// The human-readable copy of the vault (`prsnl export`).
#[derive(Debug, Clone)]
pub struct ExportSettings {
    /// Where `prsnl export` writes unless given a directory.
    pub directory: PathBuf,
    /// How an item's files are named, checked when the configuration loads.
    pub pattern: NamePattern,
}

#[derive(Debug, Clone)]
pub struct DownloadSettings {
    pub ytdlp_path: PathBuf,
    /// Doctor and readiness warn when the installed yt-dlp's release is older than this many
    /// days (0: never).
    pub ytdlp_warn_age_days: u64,
    pub timeout_secs: NonZeroU64,
    pub socket_timeout_secs: NonZeroU64,
    pub max_duration_secs: u64,
    pub max_concurrent: NonZeroUsize,
    /// Fetch links that answer with a video file directly instead of through yt-dlp.
    pub native_direct: bool,
    /// The tallest picture yt-dlp prefers when a source offers several (`None`: the
    /// tallest there is).
    pub max_height: Option<NonZeroU32>,
}

#[derive(Debug, Clone)]
pub struct ProcessingSettings {
    pub ffmpeg_path: PathBuf,
    pub ffprobe_path: PathBuf,
    /// 0: one per CPU core; see [`super::Settings::processing_workers`].
    pub workers: usize,
    pub timeout_secs: NonZeroU64,
    pub max_width: u32,
    pub max_height: u32,
    pub max_duration_secs: u64,
    /// x264 CRF, within 0..=51.
    pub crf: u8,
    pub preset: X264Preset,
    /// x264 CRF of the re-encode of large files, within 0..=51.
    pub compress_crf: u8,
    /// Whether and when that re-encode replaces the converted file.
    pub compress: CompressPolicy,
    /// A fraction of the duration, in [0, 1).
    pub thumbnail_at: f64,
}

#[derive(Debug, Clone)]
pub struct QueueSettings {
    pub max_attempts: NonZeroU32,
    pub retry_base_ms: NonZeroU64,
    /// Never smaller than `retry_base_ms`.
    pub retry_max_ms: u64,
    pub lease_secs: NonZeroU64,
    pub poll_interval_ms: NonZeroU64,
    /// Process crashes a running job survives (uncharged) before it fails `crash_loop`.
    pub max_crashes: NonZeroU32,
}

#[derive(Debug, Clone)]
pub struct SecuritySettings {
    /// Each at least 16 characters.
    pub api_tokens: Vec<Secret>,
    pub ssrf_allow: Vec<AllowRule>,
}

#[derive(Debug, Clone)]
pub struct PlatformsSettings {
    pub youtube: PlatformSettings,
    pub instagram: PlatformSettings,
    pub twitter: PlatformSettings,
    pub tiktok: PlatformSettings,
    pub generic: PlatformSettings,
}

/// How carefully one platform is treated: how often and how much we ask of it.
#[derive(Debug, Clone)]
pub struct PlatformSettings {
    /// Downloads of this platform at once.
    pub max_concurrent: NonZeroUsize,
    /// Downloads started per minute (each is one yt-dlp run or one direct request), and how
    /// many may start back to back before the rate applies.
    pub requests_per_minute: NonZeroU32,
    pub burst: NonZeroU32,
    /// A random pause in this range before each download, so requests do not arrive in a
    /// machine-like rhythm.
    pub pause_min_ms: u64,
    pub pause_max_ms: u64,
    /// Attempts of this platform's jobs, and the retry backoff (as in `queue`).
    pub max_attempts: NonZeroU32,
    pub retry_base_ms: NonZeroU64,
    pub retry_max_ms: u64,
    /// When the platform starts refusing (429, bot checks, login walls) its downloads pause
    /// this long, doubling on each further refusal up to the maximum.
    pub breaker_base_secs: NonZeroU64,
    pub breaker_max_secs: u64,
    /// A Netscape-format cookies file handed to yt-dlp for this platform; empty: none.
    pub cookies_file: PathBuf,
    /// More hosts that count as this platform: mirrors, or the loopback fixture servers of
    /// tests.
    pub extra_hosts: Vec<ExtraHost>,
}

impl PlatformsSettings {
    pub fn get_mut(&mut self, platform: Platform) -> &mut PlatformSettings {
        match platform {
            Platform::Youtube => &mut self.youtube,
            Platform::Instagram => &mut self.instagram,
            Platform::Twitter => &mut self.twitter,
            Platform::Tiktok => &mut self.tiktok,
            Platform::Generic => &mut self.generic,
        }
    }

    pub fn get(&self, platform: Platform) -> &PlatformSettings {
        match platform {
            Platform::Youtube => &self.youtube,
            Platform::Instagram => &self.instagram,
            Platform::Twitter => &self.twitter,
            Platform::Tiktok => &self.tiktok,
            Platform::Generic => &self.generic,
        }
    }
}

#[derive(Debug, Clone)]
pub struct MetricsSettings {
    pub enabled: bool,
    pub refresh_secs: NonZeroU64,
}

#[derive(Debug, Clone)]
pub struct LogSettings {
    pub format: LogFormat,
    /// A filter in `RUST_LOG` syntax; checked by the subscriber, which falls back to `info`.
    pub level: String,
    /// The level of the access log's line per request (`prsnl::access`).
    pub access_level: AccessLevel,
    /// One successful request in this many gets an access line; errors always do. At tens of
    /// thousands of range requests a second a line each costs more than the request.
    pub access_sample: NonZeroU32,
}

#[derive(Debug, Clone)]
pub struct WatchSettings {
    pub enabled: bool,
    pub dir: PathBuf,
    pub settle_ms: NonZeroU64,
    pub rescan_secs: NonZeroU64,
    pub poll: bool,
    pub poll_interval_ms: NonZeroU64,
    pub max_link_file_kb: NonZeroU64,
    /// The user (name) who owns what arrives here; `None`: the first admin.
    pub owner: Option<String>,
}

/// The bot's keys. Only read when `token` is set: with the bot off they are not checked (an
/// unusable URL then reads as `None`), as before settings were typed.
#[derive(Debug, Clone)]
pub struct TelegramSettings {
    /// Empty: no bot. Otherwise of the form `123456:ABC-def`.
    pub token: Secret,
    pub mode: TelegramMode,
    pub allowed_users: Vec<u64>,
    /// Vault user name → Telegram user id: that account's messages are that user's.
    pub links: std::collections::BTreeMap<String, u64>,
    /// Another Bot API server; `None`: Telegram's own.
    pub api_url: Option<Url>,
    /// Webhook mode: an absolute path outside the API's routes.
    pub webhook_path: String,
    /// The public URL registered with setWebhook; `None`: the operator registers it.
    pub webhook_url: Option<Url>,
    pub webhook_secret: Secret,
    /// Greater than 0 when the bot is on.
    pub max_upload_mb: u64,
    /// Within 1..=50 when the bot is on.
    pub poll_timeout_secs: u64,
}

impl TelegramSettings {
    /// The accounts the bot serves: `allowed_users` and every account `links` names.
    pub fn allowed_accounts(&self) -> Vec<u64> {
        let mut accounts = self.allowed_users.clone();
        accounts.extend(self.links.values().copied());
        accounts.sort_unstable();
        accounts.dedup();
        accounts
    }

    pub fn enabled(&self) -> bool {
        !self.token.expose().is_empty()
    }

    /// True when updates arrive on our HTTP server rather than by long polling.
    pub fn uses_webhook(&self) -> bool {
        self.enabled() && self.mode == TelegramMode::Webhook
    }
}

impl DatabaseSettings {
    /// The URL with any password replaced, for logs and messages.
    pub fn redacted_url(&self) -> String {
        match Url::parse(self.url.expose()) {
            Ok(mut parsed) if parsed.password().is_some() => {
                let _ = parsed.set_password(Some("redacted"));
                parsed.to_string()
            }
            Ok(parsed) => parsed.to_string(),
            Err(_) => "(unparseable URL)".to_string(),
        }
    }
}
