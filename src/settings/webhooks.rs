//! `[[webhooks]]`: where the service tells others what happened to items.

use std::time::Duration;

use serde::Deserialize;
use url::Url;

use super::{Secret, SettingsError};
use crate::domain::ssrf::AllowRule;
use crate::domain::webhook::WebhookEvent;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawWebhook {
    pub name: String,
    pub url: String,
    pub secret: Secret,
    #[serde(default)]
    pub events: Option<Vec<String>>,
    #[serde(default)]
    pub allow: Vec<String>,
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
    #[serde(default = "default_retry_base_ms")]
    pub retry_base_ms: u64,
}

fn default_timeout_secs() -> u64 {
    10
}

fn default_retry_base_ms() -> u64 {
    10_000
}

/// One receiver of item events.
#[derive(Debug, Clone)]
pub struct WebhookSettings {
    /// Names it in the delivery log (`[a-z0-9_-]`, unique).
    pub name: String,
    pub url: Url,
    /// Signs every delivery (HMAC-SHA256); at least 16 characters.
    pub secret: Secret,
    pub events: Vec<WebhookEvent>,
    /// Non-public addresses this webhook (only) may reach, like `security.ssrf_allow`.
    pub allow: Vec<AllowRule>,
    pub timeout: Duration,
    /// The wait after a first failure; it doubles with each one, up to an hour.
    pub retry_base: Duration,
}

pub(super) fn webhooks(raw: Vec<RawWebhook>) -> Result<Vec<WebhookSettings>, SettingsError> {
    let mut out: Vec<WebhookSettings> = Vec::with_capacity(raw.len());
    for hook in raw {
        let key = |field: &str| format!("webhooks.{}.{field}", hook.name);
        let well_named = !hook.name.is_empty()
            && hook.name.len() <= 40
            && hook
                .name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if !well_named {
            return Err(SettingsError::invalid(
                "webhooks.name",
                format!("{:?}: use 1 to 40 of a-z, 0-9, - and _", hook.name),
            ));
        }
        if out.iter().any(|h| h.name == hook.name) {
            return Err(SettingsError::invalid(
                key("name"),
                "two webhooks have this name",
            ));
        }
        let url = Url::parse(&hook.url)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
            .filter(|u| u.username().is_empty() && u.password().is_none())
            .ok_or_else(|| {
                SettingsError::invalid(key("url"), "an http(s) URL without credentials")
            })?;
        if hook.secret.expose().chars().count() < 16 {
            return Err(SettingsError::invalid(
                key("secret"),
                "at least 16 characters",
            ));
        }
        let events = match hook.events {
            None => WebhookEvent::ALL.to_vec(),
            Some(names) => names
                .iter()
                .map(|name| {
                    WebhookEvent::parse(name).ok_or_else(|| {
                        SettingsError::invalid(
                            key("events"),
                            format!("{name:?}: use item.completed, item.failed or item.deleted"),
                        )
                    })
                })
                .collect::<Result<_, _>>()?,
        };
        let allow = hook
            .allow
            .iter()
            .map(|rule| {
                rule.parse()
                    .map_err(|e| SettingsError::invalid(key("allow"), e))
            })
            .collect::<Result<_, _>>()?;
        if hook.timeout_secs == 0 || hook.retry_base_ms == 0 {
            return Err(SettingsError::invalid(
                key("timeout_secs"),
                "timeouts and waits are above 0",
            ));
        }
        out.push(WebhookSettings {
            name: hook.name,
            url,
            secret: hook.secret,
            events,
            allow,
            timeout: Duration::from_secs(hook.timeout_secs),
            retry_base: Duration::from_millis(hook.retry_base_ms),
        });
    }
    Ok(out)
}
