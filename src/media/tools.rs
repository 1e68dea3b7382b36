//! The versions of the external tools, for `prsnl doctor` and readiness.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::process::Tool;
use super::ytdlp::release::Freshness;
use crate::metrics::Families;
use crate::settings::Settings;

/// The first line a tool prints for its version flag, or why it could not run.
pub async fn version(program: &Path, flag: &str) -> Result<String, String> {
    let output = Tool::new(program, Duration::from_secs(20))
        .arg(flag)
        .run()
        .await
        .map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&output.stdout);
    text.lines()
        .next()
        .map(|l| crate::domain::text::clean(l, 200))
        .filter(|l| !l.is_empty())
        .ok_or_else(|| format!("{} printed no version", program.display()))
}

/// One tool the service needs, and what it answered.
#[derive(Debug, Clone)]
pub struct ToolStatus {
    pub name: &'static str,
    /// The version line, or why the tool cannot run.
    pub version: Result<String, String>,
    /// How old the release is (yt-dlp only: its versions are dates).
    pub freshness: Option<Freshness>,
}

impl ToolStatus {
    /// The version as doctor and readiness show it: with its age where known.
    pub fn describe(&self) -> Result<String, String> {
        match (&self.version, &self.freshness) {
            (Ok(_), Some(freshness)) => Ok(freshness.describe()),
            (version, _) => version.clone(),
        }
    }

    /// The operator's warning about this tool, if any (a yt-dlp past its configured age).
    pub fn warning(&self, settings: &Settings) -> Option<String> {
        self.freshness
            .as_ref()
            .and_then(|f| f.warning(settings.download.ytdlp_warn_age_days))
    }
}

/// The bare version number of a version line, as a metric label: `ffmpeg version 5.1.9-0+deb12u1
/// Copyright …` gives `5.1.9-0+deb12u1`; yt-dlp prints the bare number already.
pub fn version_label(line: &str) -> String {
    let mut words = line.split_whitespace();
    let label = match words.clone().position(|w| w == "version") {
        Some(at) => words.nth(at + 1),
        None => words.next(),
    };
    label
        .unwrap_or_default()
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .take(64)
        .collect()
}

/// The tools the service runs: (name, configured path, version flag).
pub fn required(settings: &Settings) -> [(&'static str, PathBuf, &'static str); 3] {
    [
        ("yt-dlp", settings.download.ytdlp_path.clone(), "--version"),
        (
            "ffmpeg",
            settings.processing.ffmpeg_path.clone(),
            "-version",
        ),
        (
            "ffprobe",
            settings.processing.ffprobe_path.clone(),
            "-version",
        ),
    ]
}

/// Asks every required tool for its version, all at once.
pub async fn check_all(settings: &Settings) -> Vec<ToolStatus> {
    let now = crate::clock::now();
    let warn_age = settings.download.ytdlp_warn_age_days;
    let checks = required(settings).map(|(name, path, flag)| async move {
        let version = version(&path, flag).await;
        let freshness = match (&version, name) {
            (Ok(v), "yt-dlp") => Some(Freshness::judge(v, now, warn_age)),
            _ => None,
        };
        ToolStatus {
            name,
            version,
            freshness,
        }
    });
    futures_util::future::join_all(checks).await
}

/// Publishes the versions as `prsnl_tool_info` and yt-dlp's age as
/// `prsnl_tool_release_age_days`, dropping the series of a version no longer installed.
fn publish(families: &Families, previous: Option<&[ToolStatus]>, statuses: &[ToolStatus]) {
    for status in statuses {
        let label = status.version.as_deref().map(version_label).ok();
        let before = previous
            .and_then(|p| p.iter().find(|s| s.name == status.name))
            .and_then(|s| s.version.as_deref().map(version_label).ok());
        if let Some(old) = before.filter(|old| Some(old) != label.as_ref()) {
            let _ = families.tool_info.remove_label_values(&[status.name, &old]);
        }
        if let Some(label) = &label {
            families
                .tool_info
                .with_label_values(&[status.name, label])
                .set(1);
        }
        match status.freshness.as_ref().and_then(|f| f.age_days) {
            Some(days) => families
                .tool_age_days
                .with_label_values(&[status.name])
                .set(days),
            None => {
                let _ = families.tool_age_days.remove_label_values(&[status.name]);
            }
        }
    }
}

/// Tool checks for readiness, cached: yt-dlp alone takes half a second to say its version,
/// and probes come every few seconds. A failure is re-checked soon (someone is fixing it).
pub struct ToolProbe {
    cached: tokio::sync::Mutex<Option<(Instant, Arc<Vec<ToolStatus>>)>>,
}

/// How long a healthy answer is trusted.
const HEALTHY_FOR: Duration = Duration::from_secs(300);
/// How long a failed answer is trusted.
const FAILED_FOR: Duration = Duration::from_secs(10);

impl Default for ToolProbe {
    fn default() -> Self {
        Self::new()
    }
}

impl ToolProbe {
    pub fn new() -> Self {
        Self {
            cached: tokio::sync::Mutex::new(None),
        }
    }

    /// The latest answer, probing again when it is stale, and publishing a new answer on
    /// the metrics. Concurrent callers share one probe (the lock is held while it runs).
    pub async fn current(&self, settings: &Settings, families: &Families) -> Arc<Vec<ToolStatus>> {
        let mut cached = self.cached.lock().await;
        if let Some((at, statuses)) = cached.as_ref() {
            let healthy = statuses.iter().all(|s| s.version.is_ok());
            if at.elapsed() < if healthy { HEALTHY_FOR } else { FAILED_FOR } {
                return Arc::clone(statuses);
            }
        }
        let statuses = Arc::new(check_all(settings).await);
        let previous = cached.as_ref().map(|(_, s)| s.as_slice());
        publish(families, previous, &statuses);
        *cached = Some((Instant::now(), Arc::clone(&statuses)));
        statuses
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_labels_are_the_bare_numbers() {
        let ffmpeg = "ffmpeg version 5.1.9-0+deb12u1 Copyright (c) 2000-2026 the FFmpeg developers";
        assert_eq!(version_label(ffmpeg), "5.1.9-0+deb12u1");
        assert_eq!(version_label("ffprobe version n7.1 Copyright"), "n7.1");
        assert_eq!(version_label("2026.10.26"), "2026.10.26");
        assert_eq!(version_label(""), "");
        assert_eq!(version_label(&"9".repeat(500)).len(), 64);
    }
}
