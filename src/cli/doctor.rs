//! `prsnl doctor`: can this machine run the service as configured?

use std::process::ExitCode;

use crate::db::Db;
use crate::media::tools;
use crate::settings::Settings;
use crate::storage::{self, MediaRoot};

struct Report {
    failed: bool,
}

impl Report {
    fn line(&mut self, ok: bool, what: &str, detail: impl std::fmt::Display) {
        self.failed |= !ok;
        println!("{} {what:<12} {detail}", if ok { "ok  " } else { "FAIL" });
    }

    /// Something to act on that does not stop the service (the exit code stays 0).
    fn warn(&mut self, what: &str, detail: impl std::fmt::Display) {
        println!("WARN {what:<12} {detail}");
    }
}

pub async fn run(settings: &Settings) -> ExitCode {
    let mut report = Report { failed: false };
    for tool in tools::check_all(settings).await {
        match tool.describe() {
            Ok(version) => report.line(true, tool.name, version),
            Err(e) => report.line(false, tool.name, e),
        }
        if let Some(warning) = tool.warning(settings) {
            report.warn(tool.name, warning);
        }
    }
    let redacted = settings.database.redacted_url();
    match Db::connect(&settings.database).await {
        Ok(db) => {
            match db.ping().await {
                Ok(()) => report.line(true, "database", format!("{redacted} reachable")),
                Err(e) => report.line(false, "database", e),
            }
            db.close().await;
        }
        Err(e) => report.line(false, "database", format!("{redacted}: {e}")),
    }
    let root = &settings.storage.media_root;
    match MediaRoot::open(root)
        .and_then(|media| storage::check_writable(media.path()).map(|()| media))
    {
        Ok(media) => {
            report.line(
                true,
                "media_root",
                format!("{} writable", media.path().display()),
            );
            match storage::disk_space(media.path()) {
                Ok((total, free)) => {
                    let enough = free >= settings.storage.min_free_mb * 1024 * 1024;
                    let detail = format!(
                        "{} MiB free of {} MiB (minimum {} MiB)",
                        free >> 20,
                        total >> 20,
                        settings.storage.min_free_mb
                    );
                    report.line(enough, "free disk", detail);
                }
                Err(e) => report.line(false, "free disk", e),
            }
        }
        Err(e) => report.line(false, "media_root", format!("{}: {e}", root.display())),
    }
    for platform in crate::domain::Platform::ALL {
        let file = &settings.platforms.get(platform).cookies_file;
        if !file.as_os_str().is_empty() {
            match crate::media::cookies::check_file(file) {
                Ok(n) => report.line(
                    true,
                    &format!("{platform} cookies"),
                    format!("{n} cookies in {}", file.display()),
                ),
                Err(problem) => report.line(false, &format!("{platform} cookies"), problem),
            }
        }
    }
    if report.failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
