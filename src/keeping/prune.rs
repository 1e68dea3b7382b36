//! `prsnl backup prune`: the snapshots retention keeps (`domain::retention`), and the rest
//! removed. Removing a snapshot frees only the bytes no other snapshot links to, so pruning
//! never damages the snapshots that stay.

use std::path::Path;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::KeepError;
use super::snapshots::{BackupDir, list};
use crate::domain::retention::{Retention, retained};

#[derive(Debug, Clone, Default)]
pub struct PruneReport {
    pub kept: Vec<String>,
    pub removed: Vec<String>,
}

/// Removes the snapshots of `dir` that `retention` does not keep (with `dry_run`, only says
/// which). Holds the directory's lock, so it never races a backup writing there.
pub fn prune(dir: &Path, retention: Retention, dry_run: bool) -> Result<PruneReport, KeepError> {
    let backup_dir = BackupDir::open(dir)?;
    let snapshots = list(dir)?;
    let dated: Vec<(String, Option<OffsetDateTime>)> = snapshots
        .iter()
        .map(|s| {
            let at = OffsetDateTime::parse(&s.manifest.created_at, &Rfc3339).ok();
            (s.name.clone(), at)
        })
        .collect();
    let keep = retained(&dated, retention);
    let mut report = PruneReport::default();
    for snapshot in snapshots {
        if keep.contains(&snapshot.name) {
            report.kept.push(snapshot.name);
            continue;
        }
        if !dry_run {
            // Renamed first, so a prune that dies part-way leaves a leftover the next backup
            // removes, never a complete-looking snapshot with files missing.
            let doomed = backup_dir.partial(&format!("pruned-{}", snapshot.name));
            std::fs::rename(&snapshot.path, &doomed)
                .map_err(|e| KeepError::io(&snapshot.path, e))?;
            std::fs::remove_dir_all(&doomed).map_err(|e| KeepError::io(&doomed, e))?;
        }
        report.removed.push(snapshot.name);
    }
    Ok(report)
}
