//! The rules a single key's type cannot carry: those spanning keys (a maximum not below its
//! base, no open listener without tokens, the bot's keys once it has a token) and the shape of
//! values kept as `Secret`s (tokens, the database URL), which stay strings so they never print.
//!
//! `parse` runs them once at load; `App::start` runs them again because `Settings` fields are
//! public and code (tests, the CLI) may have changed a loaded value. They read typed values
//! and never parse a string other than a secret's.

use super::{Settings, SettingsError, TelegramMode};
use crate::domain::Platform;

impl Settings {
    /// Checks the rules that span keys. Each error names the key to change.
    pub fn validate(&self) -> Result<(), SettingsError> {
        // A listener that is not loopback needs someone with credentials; that is in the
        // database, so `App::start` checks it.
        let listen = self.server.listen;
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
        // Port 0 asks the kernel for a free port, which is never the same one twice.
        if self.server.metrics_listen == Some(listen) && listen.port() != 0 {
            return Err(SettingsError::invalid(
                "server.metrics_listen",
                "must differ from server.listen",
            ));
        }
        if self.queue.retry_max_ms < self.queue.retry_base_ms.get() {
            return Err(SettingsError::invalid(
                "queue.retry_max_ms",
                "must not be smaller than queue.retry_base_ms",
            ));
        }
        for platform in Platform::ALL {
            self.validate_platform(platform)?;
        }
        self.validate_telegram()
    }

    fn validate_platform(&self, platform: Platform) -> Result<(), SettingsError> {
        let p = self.platforms.get(platform);
        let key = |name: &str| format!("platforms.{platform}.{name}");
        if p.pause_max_ms < p.pause_min_ms {
            return Err(SettingsError::invalid(
                key("pause_max_ms"),
                "must not be smaller than pause_min_ms",
            ));
        }
        if p.retry_max_ms < p.retry_base_ms.get() {
            return Err(SettingsError::invalid(
                key("retry_max_ms"),
                "must not be smaller than retry_base_ms",
            ));
        }
        if p.breaker_max_secs < p.breaker_base_secs.get() {
            return Err(SettingsError::invalid(
                key("breaker_max_secs"),
                "must not be smaller than breaker_base_secs",
            ));
        }
        Ok(())
    }

    /// The bot's keys, checked only once it has a token (an unused bot section is not an
    /// error).
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
