//! The versions of the external tools, for `prsnl doctor` and readiness.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::process::Tool;
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
    let checks = required(settings).map(|(name, path, flag)| async move {
        ToolStatus {
            name,
            version: version(&path, flag).await,
        }
    });
    futures_util::future::join_all(checks).await
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

    /// The latest answer, probing again when it is stale. Concurrent callers share one probe
    /// (the lock is held while it runs).
    pub async fn current(&self, settings: &Settings) -> Arc<Vec<ToolStatus>> {
        let mut cached = self.cached.lock().await;
        if let Some((at, statuses)) = cached.as_ref() {
            let healthy = statuses.iter().all(|s| s.version.is_ok());
            if at.elapsed() < if healthy { HEALTHY_FOR } else { FAILED_FOR } {
                return Arc::clone(statuses);
            }
        }
        let statuses = Arc::new(check_all(settings).await);
        *cached = Some((Instant::now(), Arc::clone(&statuses)));
        statuses
    }
}
