//! The small value types settings parse into: the string choices (`TelegramMode`, `LogFormat`,
//! `X264Preset`) and a platform's extra host (`ExtraHost`).
//!
//! Each type is valid by construction, so a caller holding one never checks it again. None of
//! them knows about keys: the parse step adds the key to the message.

use std::fmt;
use std::str::FromStr;

use serde::Deserialize;

/// How the Telegram bot receives updates (`telegram.mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TelegramMode {
    /// The bot asks Telegram for updates; works behind NAT.
    Polling,
    /// Telegram posts updates to `telegram.webhook_path` on our server.
    Webhook,
}

/// How log lines are written (`log.format`, overridden by `--log-format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// The level of the access log's line per request (`log.access_level`); probes and scrapes
/// are always at debug.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AccessLevel {
    Info,
    Debug,
    Off,
}

/// An x264 speed/size preset (`processing.preset`), handed to ffmpeg as `-preset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum X264Preset {
    Ultrafast,
    Superfast,
    Veryfast,
    Faster,
    Fast,
    Medium,
    Slow,
    Slower,
    Veryslow,
}

impl X264Preset {
    pub const ALL: [X264Preset; 9] = [
        Self::Ultrafast,
        Self::Superfast,
        Self::Veryfast,
        Self::Faster,
        Self::Fast,
        Self::Medium,
        Self::Slow,
        Self::Slower,
        Self::Veryslow,
    ];

    /// The name ffmpeg (and the configuration file) knows it by.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ultrafast => "ultrafast",
            Self::Superfast => "superfast",
            Self::Veryfast => "veryfast",
            Self::Faster => "faster",
            Self::Fast => "fast",
            Self::Medium => "medium",
            Self::Slow => "slow",
            Self::Slower => "slower",
            Self::Veryslow => "veryslow",
        }
    }
}

impl fmt::Display for X264Preset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for X264Preset {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| format!("'{s}' is not an x264 preset"))
    }
}

/// A host (`host` or `host:port`) that counts as a platform (`platforms.<name>.extra_hosts`),
/// stored lower-case because hosts compare without case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtraHost(String);

impl ExtraHost {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ExtraHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for ExtraHost {
    type Err = String;

    /// Refuses what cannot be matched against a URL's host: nothing, a path, a space.
    fn from_str(s: &str) -> Result<Self, String> {
        if s.is_empty() || s.contains('/') || s.contains(' ') {
            return Err(format!("'{s}' is not a host or host:port"));
        }
        Ok(Self(s.to_ascii_lowercase()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_preset_reads_back_its_own_name() {
        for preset in X264Preset::ALL {
            assert_eq!(preset.as_str().parse::<X264Preset>(), Ok(preset));
        }
        for bad in ["warp9", "", "Fast", " fast"] {
            assert!(bad.parse::<X264Preset>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn extra_hosts_are_hosts_in_lower_case() {
        let cases = [
            ("tube.example", Some("tube.example")),
            ("Tube.Example:8443", Some("tube.example:8443")),
            ("127.0.0.1:9000", Some("127.0.0.1:9000")),
            ("", None),
            ("tube.example/watch", None),
            ("tube example", None),
        ];
        for (input, want) in cases {
            let got = input.parse::<ExtraHost>().ok();
            assert_eq!(got.as_ref().map(ExtraHost::as_str), want, "{input:?}");
        }
    }
}
