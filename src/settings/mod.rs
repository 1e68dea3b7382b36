//! The one `Settings` struct: `config/default.toml` (compiled in) → `PRSNL_<SECTION>__<KEY>`
//! environment variables → `--config FILE`, each layer overriding the one before.
//!
//! Settings are parsed once, at load: figment reads the layers into the string-shaped `raw`
//! structs, and `parse` turns those into the typed `Settings` (addresses, non-zero numbers,
//! enums, SSRF allow rules, URLs). Loading fails with a message naming the offending key: a
//! typo'd or invalid setting stops the service at start instead of being silently ignored.
//! Callers read typed fields; nothing here re-reads a string per call.
//!
//! This module is a foundation: it may use `domain` and nothing else of the crate.

mod backup;
mod parse;
mod people_keys;
mod raw;
mod rules;
mod secret;
mod sections;
mod subtitles;
mod values;
mod webhooks;

use std::path::Path;
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Toml};

use crate::domain::Platform;
use crate::domain::job::RetryPolicy;
use crate::domain::platform::HostMap;
pub use secret::Secret;
pub use sections::{
    BackupSettings, DatabaseSettings, DownloadSettings, ExportSettings, LogSettings,
    MetricsSettings, PlatformSettings, PlatformsSettings, ProcessingSettings, QueueSettings,
    SecuritySettings, ServerSettings, StorageSettings, TelegramSettings, WatchSettings,
};
pub use subtitles::SubtitleSettings;
pub use values::{AccessLevel, ExtraHost, LogFormat, TelegramMode, X264Preset};
pub use webhooks::WebhookSettings;

/// The compiled-in defaults: every key, documented.
pub const DEFAULT_TOML: &str = include_str!("../../config/default.toml");

/// The whole configuration, typed. Built by [`Settings::load`] (or [`Settings::defaults`]);
/// fields are public so that tests and the CLI can adjust a loaded value, after which
/// [`Settings::validate`] re-checks the rules that span keys.
#[derive(Debug, Clone)]
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
    pub backup: BackupSettings,
    pub export: ExportSettings,
    pub subtitles: SubtitleSettings,
    pub webhooks: Vec<WebhookSettings>,
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
        Self::from_figment(Figment::from(Toml::string(DEFAULT_TOML)))
            .expect("config/default.toml is valid")
    }

    /// Defaults, then `PRSNL_*` environment variables, then `file` if given; parsed.
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
        Self::from_figment(figment)
    }

    /// Reads whatever layers `figment` holds and parses them into typed settings.
    fn from_figment(figment: Figment) -> Result<Self, SettingsError> {
        let raw: raw::RawSettings = figment
            .extract()
            .map_err(|e| SettingsError::Load(e.to_string()))?;
        parse::parse(raw)
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
        let (base, max) = match platform {
            Some(p) => {
                let p = self.platforms.get(p);
                (p.retry_base_ms, p.retry_max_ms)
            }
            None => (self.queue.retry_base_ms, self.queue.retry_max_ms),
        };
        RetryPolicy {
            base: Duration::from_millis(base.get()),
            max: Duration::from_millis(max),
        }
    }

    /// Extra hosts of every platform, for URL detection.
    pub fn host_map(&self) -> HostMap {
        HostMap::new(Platform::ALL.into_iter().flat_map(|p| {
            self.platforms
                .get(p)
                .extra_hosts
                .iter()
                .map(move |h| (h.as_str().to_string(), p))
        }))
    }

    pub fn max_video_bytes(&self) -> u64 {
        self.storage.max_video_size_mb.get() * 1024 * 1024
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn with_file(toml: &str) -> Result<Settings, SettingsError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("prsnl.toml");
        std::fs::write(&path, toml).unwrap();
        Settings::from_figment(Figment::from(Toml::string(DEFAULT_TOML)).merge(Toml::file(&path)))
    }

    #[test]
    fn the_access_log_is_a_setting_with_checked_values() {
        let s = Settings::defaults();
        assert_eq!(
            (s.log.access_level, s.log.access_sample.get()),
            (AccessLevel::Info, 1)
        );
        let s = with_file("[log]\naccess_level = \"off\"\naccess_sample = 100\n").unwrap();
        assert_eq!(
            (s.log.access_level, s.log.access_sample.get()),
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
    fn defaults_run_with_sqlite_under_data() {
        let s = Settings::defaults();
        assert_eq!(s.database.url.expose(), "sqlite://./data/prsnl.db");
        assert_eq!(s.storage.media_root, PathBuf::from("./data/media"));
        assert_eq!(s.server.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(s.storage.max_video_size_mb.get(), 500);
        assert_eq!(s.storage.compress_above_mb.get(), 100);
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
    fn a_file_overrides_defaults() {
        let s = with_file("[storage]\nmax_video_size_mb = 7\n").unwrap();
        assert_eq!(s.storage.max_video_size_mb.get(), 7);
        assert_eq!(s.storage.compress_above_mb.get(), 100);
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
            ("[server]\nlisten = \"0.0.0.0\"\n", "server.listen"),
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
