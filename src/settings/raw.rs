//! The settings as serde reads them from the layered figment: strings and plain numbers,
//! exactly the keys of `config/default.toml`.
//!
//! These shapes never leave `settings/`: `parse` turns them into the typed `Settings` once, at
//! load. `deny_unknown_fields` is what makes a typo'd key an error instead of a silent default;
//! type mismatches (`"lots"` for a number, an unknown enum variant) are reported by figment
//! with the key's name.

use std::path::PathBuf;

use serde::Deserialize;

use super::Secret;
use super::values::{AccessLevel, LogFormat, TelegramMode};
use crate::domain::encoding::CompressPolicy;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSettings {
    pub server: RawServer,
    pub database: RawDatabase,
    pub storage: RawStorage,
    pub download: RawDownload,
    pub processing: RawProcessing,
    pub queue: RawQueue,
    pub security: RawSecurity,
    pub platforms: RawPlatforms,
    pub metrics: RawMetrics,
    pub log: RawLog,
    pub watch: RawWatch,
    pub telegram: RawTelegram,
    pub backup: RawBackup,
    pub export: RawExport,
    pub subtitles: super::subtitles::RawSubtitles,
    #[serde(default)]
    pub webhooks: Vec<super::webhooks::RawWebhook>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawServer {
    pub listen: String,
    pub metrics_listen: String,
    pub public_base_url: String,
    pub instance_id: String,
    pub max_connections: usize,
    pub header_read_timeout_secs: u64,
    pub shutdown_grace_secs: u64,
    pub max_body_kb: u64,
    pub trusted_proxies: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDatabase {
    pub url: Secret,
    pub max_connections: u32,
    pub busy_timeout_ms: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawStorage {
    pub media_root: PathBuf,
    pub max_video_size_mb: u64,
    pub compress_above_mb: u64,
    pub min_free_mb: u64,
    pub sweep_interval_secs: u64,
    pub sweep_min_age_secs: u64,
    pub quarantine_days: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawExport {
    pub directory: PathBuf,
    pub pattern: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawBackup {
    pub directory: PathBuf,
    pub interval_secs: u64,
    pub keep_daily: u32,
    pub keep_weekly: u32,
    pub keep_monthly: u32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDownload {
    pub ytdlp_path: PathBuf,
    pub ytdlp_warn_age_days: u64,
    pub timeout_secs: u64,
    pub socket_timeout_secs: u64,
    pub max_duration_secs: u64,
    pub max_concurrent: usize,
    pub native_direct: bool,
    pub max_height: u32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawProcessing {
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
    pub compress: CompressPolicy,
    pub thumbnail_at: f64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawQueue {
    pub max_attempts: u32,
    pub retry_base_ms: u64,
    pub retry_max_ms: u64,
    pub lease_secs: u64,
    pub poll_interval_ms: u64,
    pub max_crashes: u32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSecurity {
    pub api_tokens: Vec<Secret>,
    pub ssrf_allow: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPlatforms {
    pub youtube: RawPlatform,
    pub instagram: RawPlatform,
    pub twitter: RawPlatform,
    pub tiktok: RawPlatform,
    pub generic: RawPlatform,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPlatform {
    pub max_concurrent: usize,
    pub requests_per_minute: u32,
    pub burst: u32,
    pub pause_min_ms: u64,
    pub pause_max_ms: u64,
    pub max_attempts: u32,
    pub retry_base_ms: u64,
    pub retry_max_ms: u64,
    pub breaker_base_secs: u64,
    pub breaker_max_secs: u64,
    pub cookies_file: PathBuf,
    pub extra_hosts: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMetrics {
    pub enabled: bool,
    pub refresh_secs: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLog {
    pub format: LogFormat,
    pub level: String,
    pub access_level: AccessLevel,
    pub access_sample: u32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawWatch {
    pub enabled: bool,
    pub dir: PathBuf,
    pub settle_ms: u64,
    pub rescan_secs: u64,
    pub poll: bool,
    pub poll_interval_ms: u64,
    pub max_link_file_kb: u64,
    pub owner: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTelegram {
    pub token: Secret,
    pub mode: TelegramMode,
    pub allowed_users: Vec<u64>,
    pub links: std::collections::BTreeMap<String, u64>,
    pub api_url: String,
    pub webhook_path: String,
    pub webhook_url: String,
    pub webhook_secret: Secret,
    pub max_upload_mb: u64,
    pub poll_timeout_secs: u64,
}
