//! The one `Settings` struct: `config/default.toml` (compiled in) → `PRSNL_<SECTION>__<KEY>`
//! environment variables → `--config FILE`, each layer overriding the one before.
//!
//! Loading fails with a message naming the offending key: a typo'd or invalid setting stops
//! the service at start instead of being silently ignored.

mod secret;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Toml};
use serde::Deserialize;

use crate::domain::Platform;
use crate::domain::job::RetryPolicy;
use crate::domain::ssrf::AllowRule;
pub use secret::Secret;

/// The compiled-in defaults: every key, documented.
pub const DEFAULT_TOML: &str = include_str!("../../config/default.toml");

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub storage: StorageSettings,
    pub download: DownloadSettings,
    pub processing: ProcessingSettings,
    pub queue: QueueSettings,
    pub security: SecuritySettings,
    pub platforms: PlatformsSettings,
    pub metrics: MetricsSettings,
    pub log: LogSettings,
    pub watch: WatchSettings,
    pub telegram: TelegramSettings,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    pub listen: String,
    pub metrics_listen: String,
    pub public_base_url: String,
    pub instance_id: String,
    pub max_connections: usize,
    pub header_read_timeout_secs: u64,
    pub shutdown_grace_secs: u64,
    pub max_body_kb: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    /// May carry a password, hence a secret; log [`DatabaseSettings::redacted_url`] instead.
    pub url: Secret,
    pub max_connections: u32,
    pub busy_timeout_ms: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageSettings {
    pub media_root: PathBuf,
    pub max_video_size_mb: u64,
    pub compress_above_mb: u64,
    pub min_free_mb: u64,
    pub sweep_interval_secs: u64,
    pub sweep_min_age_secs: u64,
    pub quarantine_days: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DownloadSettings {
    pub ytdlp_path: PathBuf,
    pub timeout_secs: u64,
    pub socket_timeout_secs: u64,
    pub max_duration_secs: u64,
    pub max_concurrent: usize,
    /// Fetch links that answer with a video file directly instead of through yt-dlp.
    pub native_direct: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProcessingSettings {
    pub ffmpeg_path: PathBuf,
    pub ffprobe_path: PathBuf,
    pub workers: usize,
    pub timeout_secs: u64,
    pub max_width: u32,
    pub max_height: u32,
    pub max_duration_secs: u64,
    pub crf: u8,
    pub preset: String,
    pub compress_crf: u8,
    pub thumbnail_at: f64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueSettings {
    pub max_attempts: u32,
    pub retry_base_ms: u64,
    pub retry_max_ms: u64,
    pub lease_secs: u64,
    pub poll_interval_ms: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecuritySettings {
    pub api_tokens: Vec<Secret>,
    pub ssrf_allow: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlatformsSettings {
    pub youtube: PlatformSettings,
    pub instagram: PlatformSettings,
    pub twitter: PlatformSettings,
    pub tiktok: PlatformSettings,
    pub generic: PlatformSettings,
}

/// How carefully one platform is treated: how often and how much we ask of it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlatformSettings {
    /// Downloads of this platform at once.
    pub max_concurrent: usize,
    /// Downloads started per minute (each is one yt-dlp run or one direct request), and how
    /// many may start back to back before the rate applies.
    pub requests_per_minute: u32,
    pub burst: u32,
    /// A random pause in this range before each download, so requests do not arrive in a
    /// machine-like rhythm.
    pub pause_min_ms: u64,
    pub pause_max_ms: u64,
    /// Attempts of this platform's jobs, and the retry backoff (as in `queue`).
    pub max_attempts: u32,
    pub retry_base_ms: u64,
    pub retry_max_ms: u64,
    /// When the platform starts refusing (429, bot checks, login walls) its downloads pause
    /// this long, doubling on each further refusal up to the maximum.
    pub breaker_base_secs: u64,
    pub breaker_max_secs: u64,
    /// A Netscape-format cookies file handed to yt-dlp for this platform; empty: none.
    pub cookies_file: PathBuf,
    /// More hosts (`host` or `host:port`) that count as this platform: mirrors, or the
    /// loopback fixture servers of tests.
    pub extra_hosts: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsSettings {
    pub enabled: bool,
    pub refresh_secs: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WatchSettings {
    pub enabled: bool,
    pub dir: PathBuf,
    pub settle_ms: u64,
    pub rescan_secs: u64,
    pub poll: bool,
    pub poll_interval_ms: u64,
    pub max_link_file_kb: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelegramSettings {
    /// Empty: no bot.
    pub token: Secret,
    pub mode: TelegramMode,
    pub allowed_users: Vec<u64>,
    /// Empty: Telegram's own Bot API server.
    pub api_url: String,
    pub webhook_path: String,
    /// The public URL registered with setWebhook; empty: the operator registers it.
    pub webhook_url: String,
    pub webhook_secret: Secret,
    pub max_upload_mb: u64,
    pub poll_timeout_secs: u64,
}

impl TelegramSettings {
    pub fn enabled(&self) -> bool {
        !self.token.expose().is_empty()
    }

    /// True when updates arrive on our HTTP server rather than by long polling.
    pub fn uses_webhook(&self) -> bool {
        self.enabled() && self.mode == TelegramMode::Webhook
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TelegramMode {
    Polling,
    Webhook,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    pub format: LogFormat,
    pub level: String,
    /// The level of the access log's line per request (`prsnl::access`); probes are always
    /// at debug.
    pub access_level: AccessLevel,
    /// One successful request in this many gets an access line; errors always do. At tens of
    /// thousands of range requests a second a line each costs more than the request.
    pub access_sample: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AccessLevel {
    Info,
    Debug,
    Off,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// Why the configuration cannot be used. The message always names the key.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("configuration: {0}")]
    Load(String),
    #[error("configuration key `{key}`: {message}")]
    Invalid { key: String, message: String },
}

impl SettingsError {
    fn invalid(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid {
            key: key.into(),
            message: message.into(),
        }
    }
}

impl Settings {
    /// The compiled-in defaults alone, ignoring the environment (tests start from these).
    pub fn defaults() -> Self {
        Self::extract(Figment::from(Toml::string(DEFAULT_TOML)))
            .expect("config/default.toml is valid")
    }

    /// Defaults, then `PRSNL_*` environment variables, then `file` if given; validated.
    pub fn load(file: Option<&Path>) -> Result<Self, SettingsError> {
        // Only section-qualified variables (PRSNL_SECTION__KEY) are configuration; others with
        // the prefix (PRSNL_TEST_POSTGRES_URL, …) belong to other tools.
        let env = Env::prefixed("PRSNL_")
            .filter(|key| key.as_str().contains("__"))
            .split("__");
        let mut figment = Figment::from(Toml::string(DEFAULT_TOML)).merge(env);
        if let Some(file) = file {
            if !file.is_file() {
                return Err(SettingsError::Load(format!(
                    "config file {} does not exist",
                    file.display()
                )));
            }
            figment = figment.merge(Toml::file(file));
        }
        Self::extract(figment)
    }

    fn extract(figment: Figment) -> Result<Self, SettingsError> {
        let settings: Settings = figment
            .extract()
            .map_err(|e| SettingsError::Load(e.to_string()))?;
        settings.validate()?;
        Ok(settings)
    }

    /// Semantic checks serde cannot express. Each error names its key.
    pub fn validate(&self) -> Result<(), SettingsError> {
        let listen = self.listen_addr()?;
        if self.security.api_tokens.is_empty() && !listen.ip().is_loopback() {
            return Err(SettingsError::invalid(
                "server.listen",
                format!(
                    "{listen} is not a loopback address, and security.api_tokens is empty: \
                     set API tokens before exposing the API"
                ),
            ));
        }
        if let Some(short) = self
            .security
            .api_tokens
            .iter()
            .position(|t| t.expose().len() < 16)
        {
            return Err(SettingsError::invalid(
                "security.api_tokens",
                format!("token #{} is shorter than 16 characters", short + 1),
            ));
        }
        self.ssrf_allow_rules()?;
        let url = self.database.url.expose();
        if !(url.starts_with("sqlite:")
            || url.starts_with("postgres://")
            || url.starts_with("postgresql://"))
        {
            return Err(SettingsError::invalid(
                "database.url",
                format!(
                    "'{}' is neither sqlite:… nor postgres://…",
                    self.database.redacted_url()
                ),
            ));
        }
        if !self.server.public_base_url.is_empty() {
            let parsed = url::Url::parse(&self.server.public_base_url);
            if !matches!(parsed.as_ref().map(|u| u.scheme()), Ok("http" | "https")) {
                return Err(SettingsError::invalid(
                    "server.public_base_url",
                    "must be an absolute http(s) URL or empty",
                ));
            }
        }
        if let Some(metrics) = self.metrics_listen_addr()? {
            // Port 0 asks the kernel for a free port, which is never the same one twice.
            if metrics == listen && listen.port() != 0 {
                return Err(SettingsError::invalid(
                    "server.metrics_listen",
                    "must differ from server.listen",
                ));
            }
        }
        let positive: [(&'static str, u64); 19] = [
            ("metrics.refresh_secs", self.metrics.refresh_secs),
            ("watch.settle_ms", self.watch.settle_ms),
            ("watch.rescan_secs", self.watch.rescan_secs),
            ("watch.poll_interval_ms", self.watch.poll_interval_ms),
            ("watch.max_link_file_kb", self.watch.max_link_file_kb),
            ("server.max_connections", self.server.max_connections as u64),
            (
                "server.header_read_timeout_secs",
                self.server.header_read_timeout_secs,
            ),
            ("server.max_body_kb", self.server.max_body_kb),
            (
                "database.max_connections",
                self.database.max_connections.into(),
            ),
            ("storage.max_video_size_mb", self.storage.max_video_size_mb),
            ("storage.compress_above_mb", self.storage.compress_above_mb),
            ("download.timeout_secs", self.download.timeout_secs),
            (
                "download.socket_timeout_secs",
                self.download.socket_timeout_secs,
            ),
            (
                "download.max_concurrent",
                self.download.max_concurrent as u64,
            ),
            ("processing.timeout_secs", self.processing.timeout_secs),
            ("queue.max_attempts", self.queue.max_attempts.into()),
            ("queue.retry_base_ms", self.queue.retry_base_ms),
            ("queue.lease_secs", self.queue.lease_secs),
            ("queue.poll_interval_ms", self.queue.poll_interval_ms),
        ];
        if let Some((key, _)) = positive.iter().find(|(_, v)| *v == 0) {
            return Err(SettingsError::invalid(*key, "must be greater than 0"));
        }
        if self.queue.retry_max_ms < self.queue.retry_base_ms {
            return Err(SettingsError::invalid(
                "queue.retry_max_ms",
                "must not be smaller than queue.retry_base_ms",
            ));
        }
        for platform in Platform::ALL {
            let p = self.platforms.get(platform);
            let key = |name: &str| format!("platforms.{platform}.{name}");
            for (name, value) in [
                ("max_concurrent", p.max_concurrent as u64),
                ("requests_per_minute", p.requests_per_minute.into()),
                ("burst", p.burst.into()),
                ("max_attempts", p.max_attempts.into()),
                ("retry_base_ms", p.retry_base_ms),
                ("breaker_base_secs", p.breaker_base_secs),
            ] {
                if value == 0 {
                    return Err(SettingsError::invalid(key(name), "must be greater than 0"));
                }
            }
            if p.pause_max_ms < p.pause_min_ms {
                return Err(SettingsError::invalid(
                    key("pause_max_ms"),
                    "must not be smaller than pause_min_ms",
                ));
            }
            if p.retry_max_ms < p.retry_base_ms {
                return Err(SettingsError::invalid(
                    key("retry_max_ms"),
                    "must not be smaller than retry_base_ms",
                ));
            }
            if p.breaker_max_secs < p.breaker_base_secs {
                return Err(SettingsError::invalid(
                    key("breaker_max_secs"),
                    "must not be smaller than breaker_base_secs",
                ));
            }
            if let Some(bad) = p
                .extra_hosts
                .iter()
                .find(|h| h.is_empty() || h.contains('/') || h.contains(' '))
            {
                return Err(SettingsError::invalid(
                    key("extra_hosts"),
                    format!("'{bad}' is not a host or host:port"),
                ));
            }
        }
        self.validate_telegram()?;
        if self.log.access_sample == 0 {
            return Err(SettingsError::invalid(
                "log.access_sample",
                "must be at least 1 (1: every request; N: one successful request in N)",
            ));
        }
        if !(0.0..1.0).contains(&self.processing.thumbnail_at) {
            return Err(SettingsError::invalid(
                "processing.thumbnail_at",
                "must be a fraction in [0, 1)",
            ));
        }
        for (key, crf) in [
            ("processing.crf", self.processing.crf),
            ("processing.compress_crf", self.processing.compress_crf),
        ] {
            if crf > 51 {
                return Err(SettingsError::invalid(
                    key,
                    "x264 CRF must be within 0..=51",
                ));
            }
        }
        const PRESETS: [&str; 9] = [
            "ultrafast",
            "superfast",
            "veryfast",
            "faster",
            "fast",
            "medium",
            "slow",
            "slower",
            "veryslow",
        ];
        if !PRESETS.contains(&self.processing.preset.as_str()) {
            return Err(SettingsError::invalid(
                "processing.preset",
                format!("'{}' is not an x264 preset", self.processing.preset),
            ));
        }
        Ok(())
    }

    pub fn listen_addr(&self) -> Result<SocketAddr, SettingsError> {
        self.server.listen.parse().map_err(|_| {
            SettingsError::invalid(
                "server.listen",
                format!("'{}' is not an IP:PORT address", self.server.listen),
            )
        })
    }

    /// The separate metrics listener, if one is configured.
    pub fn metrics_listen_addr(&self) -> Result<Option<SocketAddr>, SettingsError> {
        if self.server.metrics_listen.is_empty() {
            return Ok(None);
        }
        self.server.metrics_listen.parse().map(Some).map_err(|_| {
            SettingsError::invalid(
                "server.metrics_listen",
                format!(
                    "'{}' is not an IP:PORT address (or empty)",
                    self.server.metrics_listen
                ),
            )
        })
    }

    pub fn ssrf_allow_rules(&self) -> Result<Vec<AllowRule>, SettingsError> {
        self.security
            .ssrf_allow
            .iter()
            .map(|rule| {
                rule.parse()
                    .map_err(|e| SettingsError::invalid("security.ssrf_allow", e))
            })
            .collect()
    }

    /// This process's name in job leases.
    pub fn instance_id(&self) -> String {
        if self.server.instance_id.is_empty() {
            nix::unistd::gethostname()
                .ok()
                .and_then(|h| h.into_string().ok())
                .filter(|h| !h.is_empty())
                .unwrap_or_else(|| "prsnl".to_string())
        } else {
            self.server.instance_id.clone()
        }
    }

    /// Processing workers: the configured count, never more than the CPU cores.
    pub fn processing_workers(&self) -> usize {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        match self.processing.workers {
            0 => cores,
            n => n.min(cores),
        }
    }

    /// Retry spacing of a job: its platform's for captures, the queue's for other work.
    pub fn retry_policy(&self, platform: Option<Platform>) -> RetryPolicy {
        match platform {
            Some(p) => {
                let p = self.platforms.get(p);
                RetryPolicy {
                    base: Duration::from_millis(p.retry_base_ms),
                    max: Duration::from_millis(p.retry_max_ms),
                }
            }
            None => RetryPolicy {
                base: Duration::from_millis(self.queue.retry_base_ms),
                max: Duration::from_millis(self.queue.retry_max_ms),
            },
        }
    }

    /// Extra hosts of every platform, for URL detection.
    pub fn host_map(&self) -> crate::domain::platform::HostMap {
        crate::domain::platform::HostMap::new(Platform::ALL.into_iter().flat_map(|p| {
            self.platforms
                .get(p)
                .extra_hosts
                .iter()
                .map(move |h| (h.clone(), p))
        }))
    }

    pub fn max_video_bytes(&self) -> u64 {
        self.storage.max_video_size_mb * 1024 * 1024
    }

    fn validate_telegram(&self) -> Result<(), SettingsError> {
        let t = &self.telegram;
        if !t.enabled() {
            return Ok(());
        }
        // The token becomes part of every request path: anything but Telegram's form is refused.
        let token_ok = t.token.expose().split_once(':').is_some_and(|(id, rest)| {
            !id.is_empty()
                && id.bytes().all(|b| b.is_ascii_digit())
                && !rest.is_empty()
                && rest
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        });
        if !token_ok {
            return Err(SettingsError::invalid(
                "telegram.token",
                "is not a bot token of the form 123456:ABC-def (from @BotFather)",
            ));
        }
        for (key, value) in [
            ("telegram.api_url", &t.api_url),
            ("telegram.webhook_url", &t.webhook_url),
        ] {
            if !value.is_empty()
                && !matches!(
                    url::Url::parse(value).as_ref().map(|u| u.scheme()),
                    Ok("http" | "https")
                )
            {
                return Err(SettingsError::invalid(
                    key,
                    "must be an absolute http(s) URL or empty",
                ));
            }
        }
        if !(1..=50).contains(&t.poll_timeout_secs) {
            return Err(SettingsError::invalid(
                "telegram.poll_timeout_secs",
                "must be within 1..=50",
            ));
        }
        if t.max_upload_mb == 0 {
            return Err(SettingsError::invalid(
                "telegram.max_upload_mb",
                "must be greater than 0",
            ));
        }
        if t.mode == TelegramMode::Webhook {
            let path = &t.webhook_path;
            let reserved = ["/api", "/metrics", "/healthz", "/readyz"]
                .iter()
                .any(|r| path == r || path.starts_with(&format!("{r}/")));
            if !path.starts_with('/')
                || path.len() < 2
                || reserved
                || !crate::domain::layout::is_safe_relative_path(&path[1..])
            {
                return Err(SettingsError::invalid(
                    "telegram.webhook_path",
                    "must be an absolute path like /telegram/webhook, outside /api, /metrics, \
                     /healthz and /readyz",
                ));
            }
            // Telegram's own rule for secret_token: 1-256 of A-Z a-z 0-9 _ -; we ask for 16+.
            let secret = t.webhook_secret.expose();
            if !(16..=256).contains(&secret.len())
                || !secret
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
            {
                return Err(SettingsError::invalid(
                    "telegram.webhook_secret",
                    "webhook mode needs a secret of 16 to 256 characters from A-Z a-z 0-9 _ -",
                ));
            }
        }
        Ok(())
    }
}

impl DatabaseSettings {
    /// The URL with any password replaced, for logs and messages.
    pub fn redacted_url(&self) -> String {
        match url::Url::parse(self.url.expose()) {
            Ok(mut parsed) if parsed.password().is_some() => {
                let _ = parsed.set_password(Some("redacted"));
                parsed.to_string()
            }
            Ok(parsed) => parsed.to_string(),
            Err(_) => "(unparseable URL)".to_string(),
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn with_file(toml: &str) -> Result<Settings, SettingsError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("prsnl.toml");
        std::fs::write(&path, toml).unwrap();
        Settings::extract(Figment::from(Toml::string(DEFAULT_TOML)).merge(Toml::file(&path)))
    }

    #[test]
    fn defaults_run_with_sqlite_under_data() {
        let s = Settings::defaults();
        assert_eq!(s.database.url.expose(), "sqlite://./data/prsnl.db");
        assert_eq!(s.storage.media_root, PathBuf::from("./data/media"));
        assert_eq!(s.listen_addr().unwrap().to_string(), "127.0.0.1:8080");
        assert_eq!(s.storage.max_video_size_mb, 500);
        assert_eq!(s.storage.compress_above_mb, 100);
        assert!(s.processing_workers() >= 1);
    }

    #[test]
    fn the_bot_is_off_until_it_has_a_token() {
        assert!(!Settings::defaults().telegram.enabled());
        let s = with_file(
            "[telegram]\ntoken = \"123:AA-b_c\"\nmode = \"webhook\"\n\
             webhook_secret = \"0123456789abcdef\"\nallowed_users = [5, 6]\n",
        )
        .unwrap();
        assert!(s.telegram.enabled() && s.telegram.uses_webhook());
        assert_eq!(s.telegram.allowed_users, [5, 6]);
        assert_eq!(s.telegram.webhook_path, "/telegram/webhook");
    }

    #[test]
    fn the_access_log_is_a_setting_with_checked_values() {
        let s = Settings::defaults();
        assert_eq!(
            (s.log.access_level, s.log.access_sample),
            (AccessLevel::Info, 1)
        );
        let s = with_file("[log]\naccess_level = \"off\"\naccess_sample = 100\n").unwrap();
        assert_eq!(
            (s.log.access_level, s.log.access_sample),
            (AccessLevel::Off, 100)
        );
        let zero = with_file("[log]\naccess_sample = 0\n")
            .unwrap_err()
            .to_string();
        assert!(zero.contains("log.access_sample"), "{zero}");
        let loud = with_file("[log]\naccess_level = \"loud\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            loud.contains("access_level") && loud.contains("loud"),
            "{loud}"
        );
    }

    #[test]
    fn a_file_overrides_defaults() {
        let s = with_file("[storage]\nmax_video_size_mb = 7\n").unwrap();
        assert_eq!(s.storage.max_video_size_mb, 7);
        assert_eq!(s.storage.compress_above_mb, 100);
    }

    #[test]
    fn invalid_values_name_their_key() {
        let cases = [
            (
                "[storage]\nmax_video_size_mb = \"lots\"\n",
                "max_video_size_mb",
            ),
            (
                "[storage]\nmax_video_size_mb = 0\n",
                "storage.max_video_size_mb",
            ),
            ("[server]\nlisten = \"nowhere\"\n", "server.listen"),
            ("[server]\nlisten = \"0.0.0.0:8080\"\n", "server.listen"),
            ("[database]\nurl = \"mysql://x\"\n", "database.url"),
            (
                "[security]\nssrf_allow = [\"0.0.0.0/0:*\"]\n",
                "security.ssrf_allow",
            ),
            (
                "[security]\napi_tokens = [\"short\"]\n",
                "security.api_tokens",
            ),
            ("[log]\nformat = \"xml\"\n", "format"),
            ("[server]\nlisten_port = 1\n", "listen_port"),
            ("[processing]\npreset = \"warp9\"\n", "processing.preset"),
            ("[telegram]\ntoken = \"no-colon\"\n", "telegram.token"),
            ("[telegram]\ntoken = \"1:a/b\"\n", "telegram.token"),
            (
                "[telegram]\ntoken = \"1:ab\"\nmode = \"webhook\"\nwebhook_secret = \"short\"\n",
                "telegram.webhook_secret",
            ),
            (
                "[telegram]\ntoken = \"1:ab\"\nmode = \"webhook\"\nwebhook_path = \"/api/hook\"\n\
                 webhook_secret = \"0123456789abcdef\"\n",
                "telegram.webhook_path",
            ),
            (
                "[telegram]\ntoken = \"1:ab\"\napi_url = \"ftp://x\"\n",
                "telegram.api_url",
            ),
            (
                "[telegram]\ntoken = \"1:ab\"\npoll_timeout_secs = 90\n",
                "telegram.poll_timeout_secs",
            ),
            (
                "[platforms.youtube]\nmax_concurrent = 0\n",
                "platforms.youtube.max_concurrent",
            ),
        ];
        for (toml, key) in cases {
            let err = with_file(toml).expect_err(toml).to_string();
            assert!(
                err.contains(key),
                "error for {toml:?} does not name {key}: {err}"
            );
        }
    }

    #[test]
    fn non_loopback_listen_is_allowed_with_tokens() {
        let s = with_file(
            "[server]\nlisten = \"0.0.0.0:8080\"\n[security]\napi_tokens = [\"0123456789abcdef\"]\n",
        )
        .unwrap();
        assert_eq!(s.security.api_tokens.len(), 1);
    }

    #[test]
    fn secrets_stay_out_of_debug_output() {
        let s = with_file(
            "[database]\nurl = \"postgres://u:topsecretpw@db/x\"\n\
             [security]\napi_tokens = [\"tok-abcdefghijklmnop\"]\n",
        )
        .unwrap();
        let debug = format!("{s:?}");
        assert!(!debug.contains("topsecretpw"), "{debug}");
        assert!(!debug.contains("tok-abcdefghijklmnop"), "{debug}");
        assert!(!s.database.redacted_url().contains("topsecretpw"));
    }
}
