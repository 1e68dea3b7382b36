//! Raw → typed: the one step that turns the strings and numbers figment read into `Settings`.
//!
//! Each key is converted on its own and a failure names it (``configuration key
//! `server.listen`: …``); the messages are the ones operators and tests already know. Rules
//! that span keys run last, in `rules.rs`, because they need the typed values.

use std::net::SocketAddr;

use url::Url;

use super::raw::{
    RawDatabase, RawDownload, RawMetrics, RawPlatform, RawPlatforms, RawProcessing, RawQueue,
    RawSecurity, RawServer, RawSettings, RawStorage, RawTelegram, RawWatch,
};
use super::sections::{
    DatabaseSettings, DownloadSettings, LogSettings, MetricsSettings, PlatformSettings,
    PlatformsSettings, ProcessingSettings, QueueSettings, SecuritySettings, ServerSettings,
    StorageSettings, TelegramSettings, WatchSettings,
};
use super::{Settings, SettingsError, people_keys};
use crate::domain::Platform;

/// The typed settings of `raw`, or the first key that does not hold a usable value.
pub(super) fn parse(raw: RawSettings) -> Result<Settings, SettingsError> {
    let settings = Settings {
        server: server(raw.server)?,
        database: database(raw.database)?,
        storage: storage(raw.storage)?,
        download: download(raw.download)?,
        processing: processing(raw.processing)?,
        queue: queue(raw.queue)?,
        security: security(raw.security)?,
        platforms: platforms(raw.platforms)?,
        metrics: metrics(raw.metrics)?,
        log: LogSettings {
            format: raw.log.format,
            level: raw.log.level,
            access_level: raw.log.access_level,
            access_sample: positive("log.access_sample", raw.log.access_sample)?,
        },
        watch: watch(raw.watch)?,
        telegram: telegram(raw.telegram)?,
        backup: super::backup::backup(raw.backup)?,
        export: super::backup::export(raw.export)?,
        subtitles: super::subtitles::subtitles(raw.subtitles)?,
        webhooks: super::webhooks::webhooks(raw.webhooks)?,
    };
    settings.validate()?;
    Ok(settings)
}

fn server(raw: RawServer) -> Result<ServerSettings, SettingsError> {
    let metrics_listen = if raw.metrics_listen.is_empty() {
        None
    } else {
        Some(socket_addr(
            "server.metrics_listen",
            &raw.metrics_listen,
            " (or empty)",
        )?)
    };
    Ok(ServerSettings {
        listen: socket_addr("server.listen", &raw.listen, "")?,
        metrics_listen,
        public_base_url: http_url("server.public_base_url", &raw.public_base_url)?,
        instance_id: instance_id(raw.instance_id),
        max_connections: positive("server.max_connections", raw.max_connections)?,
        header_read_timeout_secs: positive(
            "server.header_read_timeout_secs",
            raw.header_read_timeout_secs,
        )?,
        shutdown_grace_secs: raw.shutdown_grace_secs,
        max_body_kb: positive("server.max_body_kb", raw.max_body_kb)?,
        trusted_proxies: people_keys::trusted_proxies(&raw.trusted_proxies)?,
    })
}

/// The configured name, or the host name when none is configured (`prsnl` failing that).
fn instance_id(configured: String) -> String {
    if !configured.is_empty() {
        return configured;
    }
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "prsnl".to_string())
}

fn database(raw: RawDatabase) -> Result<DatabaseSettings, SettingsError> {
    Ok(DatabaseSettings {
        url: raw.url,
        max_connections: positive("database.max_connections", raw.max_connections)?,
        busy_timeout_ms: raw.busy_timeout_ms,
    })
}

fn storage(raw: RawStorage) -> Result<StorageSettings, SettingsError> {
    Ok(StorageSettings {
        media_root: raw.media_root,
        max_video_size_mb: positive("storage.max_video_size_mb", raw.max_video_size_mb)?,
        compress_above_mb: positive("storage.compress_above_mb", raw.compress_above_mb)?,
        min_free_mb: raw.min_free_mb,
        sweep_interval_secs: raw.sweep_interval_secs,
        sweep_min_age_secs: raw.sweep_min_age_secs,
        quarantine_days: raw.quarantine_days,
    })
}

fn download(raw: RawDownload) -> Result<DownloadSettings, SettingsError> {
    Ok(DownloadSettings {
        ytdlp_path: raw.ytdlp_path,
        ytdlp_warn_age_days: raw.ytdlp_warn_age_days,
        timeout_secs: positive("download.timeout_secs", raw.timeout_secs)?,
        socket_timeout_secs: positive("download.socket_timeout_secs", raw.socket_timeout_secs)?,
        max_duration_secs: raw.max_duration_secs,
        max_concurrent: positive("download.max_concurrent", raw.max_concurrent)?,
        native_direct: raw.native_direct,
        max_height: std::num::NonZeroU32::new(raw.max_height),
    })
}

fn processing(raw: RawProcessing) -> Result<ProcessingSettings, SettingsError> {
    if !(0.0..1.0).contains(&raw.thumbnail_at) {
        return Err(SettingsError::invalid(
            "processing.thumbnail_at",
            "must be a fraction in [0, 1)",
        ));
    }
    Ok(ProcessingSettings {
        ffmpeg_path: raw.ffmpeg_path,
        ffprobe_path: raw.ffprobe_path,
        workers: raw.workers,
        timeout_secs: positive("processing.timeout_secs", raw.timeout_secs)?,
        max_width: raw.max_width,
        max_height: raw.max_height,
        max_duration_secs: raw.max_duration_secs,
        crf: crf("processing.crf", raw.crf)?,
        preset: raw
            .preset
            .parse()
            .map_err(|e| SettingsError::invalid("processing.preset", e))?,
        compress_crf: crf("processing.compress_crf", raw.compress_crf)?,
        compress: raw.compress,
        thumbnail_at: raw.thumbnail_at,
    })
}

fn crf(key: &str, value: u8) -> Result<u8, SettingsError> {
    if value > 51 {
        return Err(SettingsError::invalid(
            key,
            "x264 CRF must be within 0..=51",
        ));
    }
    Ok(value)
}

fn queue(raw: RawQueue) -> Result<QueueSettings, SettingsError> {
    Ok(QueueSettings {
        max_attempts: positive("queue.max_attempts", raw.max_attempts)?,
        retry_base_ms: positive("queue.retry_base_ms", raw.retry_base_ms)?,
        retry_max_ms: raw.retry_max_ms,
        lease_secs: positive("queue.lease_secs", raw.lease_secs)?,
        poll_interval_ms: positive("queue.poll_interval_ms", raw.poll_interval_ms)?,
        max_crashes: positive("queue.max_crashes", raw.max_crashes)?,
    })
}

fn security(raw: RawSecurity) -> Result<SecuritySettings, SettingsError> {
    let ssrf_allow = raw
        .ssrf_allow
        .iter()
        .map(|rule| {
            rule.parse()
                .map_err(|e| SettingsError::invalid("security.ssrf_allow", e))
        })
        .collect::<Result<_, _>>()?;
    Ok(SecuritySettings {
        api_tokens: raw.api_tokens,
        ssrf_allow,
    })
}

fn platforms(raw: RawPlatforms) -> Result<PlatformsSettings, SettingsError> {
    Ok(PlatformsSettings {
        youtube: platform(Platform::Youtube, raw.youtube)?,
        instagram: platform(Platform::Instagram, raw.instagram)?,
        twitter: platform(Platform::Twitter, raw.twitter)?,
        tiktok: platform(Platform::Tiktok, raw.tiktok)?,
        generic: platform(Platform::Generic, raw.generic)?,
    })
}

fn platform(platform: Platform, raw: RawPlatform) -> Result<PlatformSettings, SettingsError> {
    let key = |name: &str| format!("platforms.{platform}.{name}");
    let extra_hosts = raw
        .extra_hosts
        .iter()
        .map(|host| {
            host.parse()
                .map_err(|e| SettingsError::invalid(key("extra_hosts"), e))
        })
        .collect::<Result<_, _>>()?;
    Ok(PlatformSettings {
        max_concurrent: positive(&key("max_concurrent"), raw.max_concurrent)?,
        requests_per_minute: positive(&key("requests_per_minute"), raw.requests_per_minute)?,
        burst: positive(&key("burst"), raw.burst)?,
        pause_min_ms: raw.pause_min_ms,
        pause_max_ms: raw.pause_max_ms,
        max_attempts: positive(&key("max_attempts"), raw.max_attempts)?,
        retry_base_ms: positive(&key("retry_base_ms"), raw.retry_base_ms)?,
        retry_max_ms: raw.retry_max_ms,
        breaker_base_secs: positive(&key("breaker_base_secs"), raw.breaker_base_secs)?,
        breaker_max_secs: raw.breaker_max_secs,
        cookies_file: raw.cookies_file,
        extra_hosts,
    })
}

fn metrics(raw: RawMetrics) -> Result<MetricsSettings, SettingsError> {
    Ok(MetricsSettings {
        enabled: raw.enabled,
        refresh_secs: positive("metrics.refresh_secs", raw.refresh_secs)?,
    })
}

fn watch(raw: RawWatch) -> Result<WatchSettings, SettingsError> {
    Ok(WatchSettings {
        enabled: raw.enabled,
        dir: raw.dir,
        settle_ms: positive("watch.settle_ms", raw.settle_ms)?,
        rescan_secs: positive("watch.rescan_secs", raw.rescan_secs)?,
        poll: raw.poll,
        poll_interval_ms: positive("watch.poll_interval_ms", raw.poll_interval_ms)?,
        max_link_file_kb: positive("watch.max_link_file_kb", raw.max_link_file_kb)?,
        owner: people_keys::user_name("watch.owner", raw.owner)?,
    })
}

fn telegram(raw: RawTelegram) -> Result<TelegramSettings, SettingsError> {
    let enabled = !raw.token.expose().is_empty();
    // With the bot off its URLs are never used, and were never checked: keep accepting them.
    let url = |key: &str, value: &str| match http_url(key, value) {
        Err(_) if !enabled => Ok(None),
        parsed => parsed,
    };
    Ok(TelegramSettings {
        api_url: url("telegram.api_url", &raw.api_url)?,
        webhook_url: url("telegram.webhook_url", &raw.webhook_url)?,
        token: raw.token,
        mode: raw.mode,
        allowed_users: raw.allowed_users,
        links: raw.links,
        webhook_path: raw.webhook_path,
        webhook_secret: raw.webhook_secret,
        max_upload_mb: raw.max_upload_mb,
        poll_timeout_secs: raw.poll_timeout_secs,
    })
}

/// `value` as a non-zero number type (`NonZeroU32`, `NonZeroU64`, `NonZeroUsize`).
fn positive<T, N: TryFrom<T>>(key: &str, value: T) -> Result<N, SettingsError> {
    N::try_from(value).map_err(|_| SettingsError::invalid(key, "must be greater than 0"))
}

fn socket_addr(key: &str, value: &str, or: &str) -> Result<SocketAddr, SettingsError> {
    value.parse().map_err(|_| {
        SettingsError::invalid(key, format!("'{value}' is not an IP:PORT address{or}"))
    })
}

/// An absolute http(s) URL, or `None` for the empty string.
fn http_url(key: &str, value: &str) -> Result<Option<Url>, SettingsError> {
    if value.is_empty() {
        return Ok(None);
    }
    match Url::parse(value) {
        Ok(url) if matches!(url.scheme(), "http" | "https") => Ok(Some(url)),
        _ => Err(SettingsError::invalid(
            key,
            "must be an absolute http(s) URL or empty",
        )),
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use figment::Figment;
    use figment::providers::{Format, Toml};

    use crate::domain::Platform;
    use crate::domain::capture_url::CaptureUrl;
    use crate::domain::platform::detect;
    use crate::settings::{DEFAULT_TOML, Settings, SettingsError, TelegramMode, X264Preset};

    /// The defaults with `toml` layered on top, as a `--config` file would be.
    fn parse(toml: &str) -> Result<Settings, SettingsError> {
        Settings::from_figment(Figment::from(Toml::string(DEFAULT_TOML)).merge(Toml::string(toml)))
    }

    const BOT: &str = "[telegram]\ntoken = \"123:AA-b_c\"\n";
    const WEBHOOK_BOT: &str = "[telegram]\ntoken = \"123:AA-b_c\"\nmode = \"webhook\"\n";
    const SECRET: &str = "webhook_secret = \"0123456789abcdef\"\n";

    #[test]
    fn each_bad_value_is_refused_with_its_key_and_reason() {
        // (config, the whole message that must come back)
        let cases: &[(&str, &str)] = &[
            // Addresses.
            (
                "[server]\nlisten = \"nowhere\"\n",
                "configuration key `server.listen`: 'nowhere' is not an IP:PORT address",
            ),
            (
                "[server]\nlisten = \"127.0.0.1\"\n",
                "configuration key `server.listen`: '127.0.0.1' is not an IP:PORT address",
            ),
            (
                "[server]\nmetrics_listen = \"localhost:9100\"\n",
                "configuration key `server.metrics_listen`: 'localhost:9100' is not an IP:PORT \
                 address (or empty)",
            ),
            (
                "[server]\nmetrics_listen = \"127.0.0.1:8080\"\n",
                "configuration key `server.metrics_listen`: must differ from server.listen",
            ),
            // URLs.
            (
                "[server]\npublic_base_url = \"ftp://cdn.example\"\n",
                "configuration key `server.public_base_url`: must be an absolute http(s) URL or \
                 empty",
            ),
            (
                "[server]\npublic_base_url = \"/media\"\n",
                "configuration key `server.public_base_url`: must be an absolute http(s) URL or \
                 empty",
            ),
            (
                "[database]\nurl = \"mysql://u:pw@db/x\"\n",
                "configuration key `database.url`: 'mysql://u:redacted@db/x' is neither sqlite:… \
                 nor postgres://…",
            ),
            // Choices and ranges.
            (
                "[processing]\npreset = \"warp9\"\n",
                "configuration key `processing.preset`: 'warp9' is not an x264 preset",
            ),
            (
                "[processing]\ncrf = 52\n",
                "configuration key `processing.crf`: x264 CRF must be within 0..=51",
            ),
            (
                "[processing]\ncompress_crf = 60\n",
                "configuration key `processing.compress_crf`: x264 CRF must be within 0..=51",
            ),
            (
                "[processing]\nthumbnail_at = 1.0\n",
                "configuration key `processing.thumbnail_at`: must be a fraction in [0, 1)",
            ),
            (
                "[processing]\nthumbnail_at = -0.1\n",
                "configuration key `processing.thumbnail_at`: must be a fraction in [0, 1)",
            ),
            // Rules.
            (
                "[security]\nssrf_allow = [\"10.0.0.1:80\", \"0.0.0.0/0:*\"]\n",
                "configuration key `security.ssrf_allow`:",
            ),
            (
                "[security]\napi_tokens = [\"0123456789abcdef\", \"short\"]\n",
                "configuration key `security.api_tokens`: token #2 is shorter than 16 characters",
            ),
            (
                "[platforms.tiktok]\nextra_hosts = [\"ok.example\", \"tube.example/watch\"]\n",
                "configuration key `platforms.tiktok.extra_hosts`: 'tube.example/watch' is not a \
                 host or host:port",
            ),
            (
                "[platforms.twitter]\nextra_hosts = [\"\"]\n",
                "configuration key `platforms.twitter.extra_hosts`: '' is not a host or host:port",
            ),
            // Orders between keys.
            (
                "[queue]\nretry_base_ms = 10\nretry_max_ms = 9\n",
                "configuration key `queue.retry_max_ms`: must not be smaller than \
                 queue.retry_base_ms",
            ),
            (
                "[platforms.generic]\npause_min_ms = 10\npause_max_ms = 9\n",
                "configuration key `platforms.generic.pause_max_ms`: must not be smaller than \
                 pause_min_ms",
            ),
            (
                "[platforms.youtube]\nretry_max_ms = 1\n",
                "configuration key `platforms.youtube.retry_max_ms`: must not be smaller than \
                 retry_base_ms",
            ),
            (
                "[platforms.instagram]\nbreaker_max_secs = 1\n",
                "configuration key `platforms.instagram.breaker_max_secs`: must not be smaller \
                 than breaker_base_secs",
            ),
        ];
        for (toml, want) in cases {
            let err = parse(toml).expect_err(toml).to_string();
            assert!(
                err.starts_with(want),
                "for {toml:?}\n got: {err}\nwant: {want}"
            );
        }
    }

    #[test]
    fn every_count_that_must_not_be_zero_names_its_key() {
        let mut keys = vec![
            "server.max_connections",
            "server.header_read_timeout_secs",
            "server.max_body_kb",
            "database.max_connections",
            "storage.max_video_size_mb",
            "storage.compress_above_mb",
            "download.timeout_secs",
            "download.socket_timeout_secs",
            "download.max_concurrent",
            "processing.timeout_secs",
            "queue.max_attempts",
            "queue.retry_base_ms",
            "queue.lease_secs",
            "queue.poll_interval_ms",
            "metrics.refresh_secs",
            "watch.settle_ms",
            "watch.rescan_secs",
            "watch.poll_interval_ms",
            "watch.max_link_file_kb",
        ];
        let per_platform = [
            "max_concurrent",
            "requests_per_minute",
            "burst",
            "max_attempts",
            "retry_base_ms",
            "breaker_base_secs",
        ];
        let platform_keys: Vec<String> = Platform::ALL
            .into_iter()
            .flat_map(|p| per_platform.map(|k| format!("platforms.{p}.{k}")))
            .collect();
        keys.extend(platform_keys.iter().map(String::as_str));
        for key in keys {
            let (section, name) = key.rsplit_once('.').unwrap();
            let err = parse(&format!("[{section}]\n{name} = 0\n"))
                .expect_err(key)
                .to_string();
            assert_eq!(
                err,
                format!("configuration key `{key}`: must be greater than 0")
            );
        }
    }

    #[test]
    fn the_bots_keys_are_checked_once_it_has_a_token() {
        let cases = [
            ("token = \"no-colon\"\n", "telegram.token"),
            ("token = \"x1:ab\"\n", "telegram.token"),
            ("token = \"1:a/b\"\n", "telegram.token"),
            ("api_url = \"ftp://x\"\n", "telegram.api_url"),
            ("webhook_url = \"not a url\"\n", "telegram.webhook_url"),
            ("max_upload_mb = 0\n", "telegram.max_upload_mb"),
            ("poll_timeout_secs = 0\n", "telegram.poll_timeout_secs"),
            ("poll_timeout_secs = 51\n", "telegram.poll_timeout_secs"),
        ];
        for (keys, key) in cases {
            let on = if keys.starts_with("token") {
                format!("[telegram]\n{keys}")
            } else {
                // Without a token the same values are never used, and accepted as before.
                let off = parse(&format!("[telegram]\n{keys}"))
                    .unwrap_or_else(|e| panic!("{keys:?} with the bot off: {e}"));
                assert!(!off.telegram.enabled());
                format!("{BOT}{keys}")
            };
            let err = parse(&on).expect_err(&on).to_string();
            assert!(err.contains(&format!("`{key}`")), "{on:?}: {err}");
        }
        let path = |p: &str| format!("webhook_path = \"{p}\"\n{SECRET}");
        let secret = |s: &str| format!("webhook_secret = \"{s}\"\n");
        for (keys, key) in [
            (path("/api/hook"), "telegram.webhook_path"),
            (path("/metrics"), "telegram.webhook_path"),
            (path("relative"), "telegram.webhook_path"),
            (path("/../x"), "telegram.webhook_path"),
            (secret("short"), "telegram.webhook_secret"),
            (secret("0123456789abcdef!"), "telegram.webhook_secret"),
            (String::new(), "telegram.webhook_secret"),
        ] {
            let toml = format!("{WEBHOOK_BOT}{keys}");
            let err = parse(&toml).expect_err(&toml).to_string();
            assert!(err.contains(&format!("`{key}`")), "{toml:?}: {err}");
            // The same path and secret are fine for a polling bot, which never serves them.
            parse(&format!("{BOT}{keys}")).unwrap();
        }
    }

    #[test]
    fn good_values_arrive_typed() {
        let s = parse(
            "[server]\nlisten = \"[::1]:9000\"\nmetrics_listen = \"127.0.0.1:9100\"\n\
             public_base_url = \"https://cdn.example/vault/\"\ninstance_id = \"node-a\"\n\
             max_connections = 3\n\
             [processing]\npreset = \"slow\"\ncrf = 51\nthumbnail_at = 0.0\n\
             [security]\nssrf_allow = [\"192.168.1.20:8000\", \"[fd00::1]:*\"]\n\
             [platforms.youtube]\nextra_hosts = [\"Tube.Example:8443\"]\nburst = 7\n\
             [queue]\nmax_attempts = 9\n",
        )
        .unwrap();
        assert_eq!(s.server.listen, "[::1]:9000".parse::<SocketAddr>().unwrap());
        assert_eq!(
            s.server.metrics_listen,
            Some("127.0.0.1:9100".parse().unwrap())
        );
        let base = s.server.public_base_url.as_ref().map(url::Url::as_str);
        assert_eq!(base, Some("https://cdn.example/vault/"));
        assert_eq!(s.server.instance_id, "node-a");
        assert_eq!(s.server.max_connections.get(), 3);
        assert_eq!(s.processing.preset, X264Preset::Slow);
        assert_eq!(s.processing.crf, 51);
        let rules: Vec<String> = s
            .security
            .ssrf_allow
            .iter()
            .map(|r| r.to_string())
            .collect();
        assert_eq!(rules, ["192.168.1.20:8000", "[fd00::1]:*"]);
        assert_eq!(s.platforms.youtube.burst.get(), 7);
        assert_eq!(s.queue.max_attempts.get(), 9);
        assert_eq!(
            s.platforms.youtube.extra_hosts[0].as_str(),
            "tube.example:8443"
        );
        // The extra host makes its platform's URLs detectable, whatever their case.
        let url = CaptureUrl::parse("http://TUBE.example:8443/watch?v=dQw4w9WgXcQ").unwrap();
        assert_eq!(detect(&url, &s.host_map()).platform, Platform::Youtube);
    }

    #[test]
    fn empty_values_mean_none_and_defaults_fill_in() {
        let s = Settings::defaults();
        assert_eq!(s.server.metrics_listen, None);
        assert_eq!(s.server.public_base_url, None);
        assert!(!s.server.instance_id.is_empty(), "the host name, or prsnl");
        assert_eq!(s.telegram.api_url, None);
        assert_eq!(s.telegram.webhook_url, None);
        assert_eq!(s.telegram.mode, TelegramMode::Polling);
        assert_eq!(s.processing.preset, X264Preset::Veryfast);
        assert!(s.security.ssrf_allow.is_empty());
        // Port 0 twice is two different free ports, not a clash.
        parse("[server]\nlisten = \"127.0.0.1:0\"\nmetrics_listen = \"127.0.0.1:0\"\n").unwrap();
    }

    #[test]
    fn a_bot_gets_its_urls_parsed() {
        let s = parse(&format!(
            "{WEBHOOK_BOT}{SECRET}api_url = \"http://127.0.0.1:8081\"\n\
             webhook_url = \"https://vault.example/telegram/webhook\"\n"
        ))
        .unwrap();
        assert!(s.telegram.uses_webhook());
        let api = s.telegram.api_url.as_ref().map(url::Url::as_str);
        assert_eq!(api, Some("http://127.0.0.1:8081/"));
        let hook = s.telegram.webhook_url.as_ref().map(url::Url::as_str);
        assert_eq!(hook, Some("https://vault.example/telegram/webhook"));
    }

    #[test]
    fn changed_fields_are_checked_again_by_validate() {
        let mut s = Settings::defaults();
        s.validate().unwrap();
        s.security.api_tokens = vec![crate::settings::Secret::new("short")];
        assert!(
            s.validate()
                .unwrap_err()
                .to_string()
                .contains("`security.api_tokens`")
        );
        s.security.api_tokens = vec![crate::settings::Secret::new("0123456789abcdef")];
        s.validate().unwrap();
        s.platforms.generic.retry_max_ms = 0;
        let err = s.validate().unwrap_err().to_string();
        assert!(err.contains("`platforms.generic.retry_max_ms`"), "{err}");
    }
}
