//! `prsnl backup create|list|verify` and `prsnl restore`: snapshots of the vault, on the
//! database and the media directly, with the service running or not (see `keeping`).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;

use super::people::{Failed, finish};
use crate::db::Db;
use crate::keeping::{self, KeepError, RestoreOptions};
use crate::settings::Settings;
use crate::storage::MediaRoot;

#[derive(Debug, Subcommand)]
pub enum BackupCommand {
    /// Write a snapshot of the database and the media (safe while the service runs).
    Create {
        /// The backup directory (default: backup.directory).
        #[arg(long, value_name = "DIR")]
        to: Option<PathBuf>,
    },
    /// List the complete snapshots, oldest first.
    List {
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
    /// Remove the snapshots backup.keep_daily, keep_weekly and keep_monthly do not keep.
    Prune {
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
        /// Only say what would be removed.
        #[arg(long)]
        dry_run: bool,
    },
    /// Re-read every file of a snapshot against its manifest; a non-zero exit names each bad
    /// or missing file.
    Verify {
        /// A snapshot's path, or its name in the backup directory.
        snapshot: String,
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
}

pub async fn backup(settings: &Settings, command: BackupCommand) -> ExitCode {
    let verb = match &command {
        BackupCommand::Create { .. } => "backup create",
        BackupCommand::List { .. } => "backup list",
        BackupCommand::Verify { .. } => "backup verify",
        BackupCommand::Prune { .. } => "backup prune",
    };
    finish(verb, run(settings, command).await)
}

async fn run(settings: &Settings, command: BackupCommand) -> Result<(), Failed> {
    let directory = |given: Option<PathBuf>| given.unwrap_or(settings.backup.directory.clone());
    match command {
        BackupCommand::Create { to } => {
            let db = open_vault(settings).await?;
            let media = open_media(settings)?;
            let report = keeping::create(&db, &media, &directory(to))
                .await
                .map_err(failed)?;
            db.close().await;
            for leftover in &report.removed_leftovers {
                eprintln!(
                    "removed the leftover of an interrupted backup: {}",
                    leftover.display()
                );
            }
            let m = &report.manifest;
            for path in &m.missing_at_source {
                eprintln!(
                    "warning: {path} is missing from the media tree; the snapshot has no copy"
                );
            }
            for path in &m.damaged_at_source {
                eprintln!(
                    "warning: {path} differs from the SHA-256 recorded when it was stored; copied as it is"
                );
            }
            println!(
                "snapshot {}: {} items, {} media files, {} ({} new, {} linked) in {:.1} s",
                report.path.display(),
                m.counts.items,
                m.counts.media_files,
                size(m.counts.bytes),
                size(m.counts.bytes_new),
                size(m.counts.bytes_linked),
                report.seconds
            );
        }
        BackupCommand::List { dir } => {
            let snapshots = keeping::list(&directory(dir)).map_err(failed)?;
            println!(
                "{:<24} {:<22} {:>8} {:>12} {:>12}  DATABASE",
                "NAME", "CREATED", "ITEMS", "SIZE", "NEW"
            );
            for s in snapshots {
                let m = &s.manifest;
                println!(
                    "{:<24} {:<22} {:>8} {:>12} {:>12}  {}",
                    s.name,
                    m.created_at,
                    m.counts.items,
                    size(m.counts.bytes),
                    size(m.counts.bytes_new),
                    m.database.kind
                );
            }
        }
        BackupCommand::Prune { dir, dry_run } => {
            let retention = settings.backup.retention;
            let report = keeping::prune(&directory(dir), retention, dry_run).map_err(failed)?;
            let verb = if dry_run { "would remove" } else { "removed" };
            for name in &report.removed {
                println!("{verb} {name}");
            }
            println!(
                "{} snapshots kept (newest of the last {} days, {} weeks, {} months), {} {verb}",
                report.kept.len(),
                retention.daily,
                retention.weekly,
                retention.monthly,
                report.removed.len()
            );
        }
        BackupCommand::Verify { snapshot, dir } => {
            let path = keeping::resolve_snapshot(&directory(dir), &snapshot);
            let report = keeping::verify(&path).await.map_err(failed)?;
            if !report.problems.is_empty() {
                for problem in &report.problems {
                    eprintln!("BAD {problem}");
                }
                return Err(Failed(
                    format!(
                        "{}: {} of {} files are bad or missing",
                        path.display(),
                        report.problems.len(),
                        report.problems.len() as u64 + report.files
                    ),
                    1,
                ));
            }
            println!(
                "{}: all {} files ({}) match the manifest",
                path.display(),
                report.files,
                size(report.bytes)
            );
        }
    }
    Ok(())
}

/// `prsnl restore SNAPSHOT [--force]`.
pub async fn restore(settings: &Settings, snapshot: &str, force: bool) -> ExitCode {
    let result = async {
        let path = keeping::resolve_snapshot(&settings.backup.directory, snapshot);
        let db = Db::connect(&settings.database).await?;
        let media = open_media(settings)?;
        let report = keeping::restore(&db, &media, &path, RestoreOptions { force })
            .await
            .map_err(failed)?;
        db.close().await;
        println!(
            "restored {} ({} database) into {} and {}: {} items, {} files ({}) in {:.1} s",
            path.display(),
            report.from,
            settings.database.redacted_url(),
            media.path().display(),
            report.rows.get("items").copied().unwrap_or(0),
            report.files,
            size(report.bytes),
            report.seconds
        );
        Ok(())
    }
    .await;
    finish("restore", result)
}

/// The configured database, refused when it holds no vault (never migrated): reading it as
/// one would report an empty vault instead of a wrong URL.
pub(super) async fn open_vault(settings: &Settings) -> Result<Db, Failed> {
    let db = Db::connect(&settings.database).await?;
    if db.schema_version().await? == 0 {
        return Err(Failed(
            format!(
                "the database {} holds no vault (it was never migrated)",
                settings.database.redacted_url()
            ),
            1,
        ));
    }
    Ok(db)
}

pub(super) fn open_media(settings: &Settings) -> Result<MediaRoot, Failed> {
    MediaRoot::open(&settings.storage.media_root).map_err(|e| {
        Failed(
            format!(
                "cannot open the media root {}: {e}",
                settings.storage.media_root.display()
            ),
            1,
        )
    })
}

pub(super) fn failed(e: KeepError) -> Failed {
    let code = match e {
        KeepError::Busy(_) | KeepError::NotEmpty(_) => 3,
        _ => 1,
    };
    Failed(e.to_string(), code)
}

fn size(bytes: u64) -> String {
    const MIB: f64 = 1024.0 * 1024.0;
    if bytes < 1024 * 1024 {
        format!("{:.1} KiB", bytes as f64 / 1024.0)
    } else if bytes < 1024 * 1024 * 1024 {
        format!("{:.1} MiB", bytes as f64 / MIB)
    } else {
        format!("{:.2} GiB", bytes as f64 / MIB / 1024.0)
    }
}
