//! The storage sweep (THREATS FS-03): files and rows drift apart over crashes, failed deletes
//! and restores, and temp space builds up. The sweep reconciles the tree with the database:
//!
//! - work directories under temp/processing that no running attempt owns are removed;
//! - resume files whose job will not run again are removed;
//! - uploads (files the service received, under temp/uploads) older than a day that no
//!   unfinished import names are removed: their import finished, or never got recorded;
//! - files under videos/, images/ and thumbnails/ that no row refers to are moved to
//!   quarantine/ (same relative path), never deleted on the spot;
//! - quarantined files older than the retention are deleted.
//!
//! Nothing younger than `min_age` is touched, so work in progress (on this or another
//! instance sharing the tree) is safe from a sweep that read the database a moment earlier.

use std::collections::HashSet;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::{MediaRoot, remove_work_dir};

/// What the database says is in use, read just before the sweep.
#[derive(Debug, Default)]
pub struct InUse {
    /// `{job}-{attempt}` of attempts running on any instance.
    pub running_attempts: HashSet<String>,
    /// Ids of jobs still queued or running.
    pub unfinished_jobs: HashSet<String>,
    /// Relative paths under media_root that rows refer to.
    pub referenced: HashSet<String>,
    /// Absolute paths of uploads that queued or running imports still need.
    pub pending_uploads: HashSet<PathBuf>,
}

/// How long an upload no import names is kept: the bot records its import right after the
/// download, so a day covers any crash in between with a wide margin.
pub const UPLOAD_MAX_AGE: Duration = Duration::from_secs(24 * 3600);

#[derive(Debug, Clone)]
pub struct SweepRules {
    pub min_age: Duration,
    /// Quarantined files are deleted after this long; `None` keeps them.
    pub quarantine_retention: Option<Duration>,
    /// A backup holds its lease: stored files stay where they are (the backup may be about
    /// to copy a file whose row was deleted after it read the database), so neither orphans
    /// nor quarantine are touched; work areas are swept as always.
    pub backup_running: bool,
}

/// Done and failed counts of one kind of clean-up.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Count {
    pub done: u64,
    pub failed: u64,
}

#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SweepReport {
    pub temp: Count,
    pub resume: Count,
    pub uploads: Count,
    pub orphans: Count,
    pub quarantine_purged: Count,
    /// Bytes the quarantined orphans take.
    pub orphan_bytes: u64,
    /// Why orphans were left in place, when the sweep refused to move them.
    pub orphans_refused: Option<String>,
}

/// Runs the whole sweep (blocking file-system work: call it on the blocking pool).
pub fn sweep(media: &MediaRoot, in_use: &InUse, rules: &SweepRules) -> SweepReport {
    let now = SystemTime::now();
    let older_than = |path: &Path, age: Duration| {
        std::fs::symlink_metadata(path)
            .and_then(|m| m.modified())
            .is_ok_and(|t| now.duration_since(t).unwrap_or_default() >= age)
    };
    let old_enough = |path: &Path| older_than(path, rules.min_age);
    let mut report = SweepReport::default();

    for (path, name) in entries(&media.processing_dir()) {
        if in_use.running_attempts.contains(&name) || !old_enough(&path) {
            continue;
        }
        tally(&mut report.temp, remove_any(&path), &path, "work directory");
    }
    for (path, name) in entries(&media.path().join("temp/resume")) {
        let job = name.trim_end_matches(".part");
        if in_use.unfinished_jobs.contains(job) || !old_enough(&path) {
            continue;
        }
        tally(&mut report.resume, remove_any(&path), &path, "resume file");
    }
    let mut uploads = Vec::new();
    collect_files(media.path(), Path::new("temp/uploads"), 0, &mut uploads);
    for rel in uploads {
        let path = media.path().join(&rel);
        if in_use.pending_uploads.contains(&path)
            || !older_than(&path, UPLOAD_MAX_AGE.max(rules.min_age))
        {
            continue;
        }
        tally(
            &mut report.uploads,
            std::fs::remove_file(&path),
            &path,
            "upload",
        );
    }

    if rules.backup_running {
        report.orphans_refused = Some("a backup is running; stored files are left alone".into());
        return report;
    }
    let mut files = Vec::new();
    for top in ["videos", "images", "thumbnails", "subtitles"] {
        collect_files(media.path(), Path::new(top), 0, &mut files);
    }
    let orphans: Vec<&PathBuf> = files
        .iter()
        .filter(|rel| {
            !rel.to_str()
                .is_some_and(|rel| in_use.referenced.contains(rel))
        })
        .filter(|rel| old_enough(&media.path().join(rel)))
        .collect();
    // A database that knows none of most files is more likely the wrong database (or one
    // restored from an old backup) than a tree full of garbage: leave them for a person.
    if orphans.len() > 10 && orphans.len() * 2 > files.len() {
        let reason = format!(
            "{} of {} stored files are unknown to the database; refusing to quarantine them \
             (is media_root shared with another database?)",
            orphans.len(),
            files.len()
        );
        tracing::error!("{reason}");
        report.orphans.failed = orphans.len() as u64;
        report.orphans_refused = Some(reason);
    } else {
        for rel in orphans {
            match quarantine(media, rel) {
                Ok(bytes) => {
                    tracing::warn!(path = %rel.display(), bytes, "moved an orphaned file to quarantine");
                    report.orphans.done += 1;
                    report.orphan_bytes += bytes;
                }
                Err(e) => {
                    tracing::error!(path = %rel.display(), error = %e, "cannot quarantine an orphaned file");
                    report.orphans.failed += 1;
                }
            }
        }
    }

    if let Some(retention) = rules.quarantine_retention {
        let mut quarantined = Vec::new();
        collect_files(media.path(), Path::new("quarantine"), 0, &mut quarantined);
        for rel in quarantined {
            let path = media.path().join(&rel);
            let expired = std::fs::symlink_metadata(&path)
                .and_then(|m| m.modified())
                .is_ok_and(|t| now.duration_since(t).unwrap_or_default() >= retention);
            if expired {
                tally(
                    &mut report.quarantine_purged,
                    std::fs::remove_file(&path),
                    &path,
                    "quarantined file",
                );
            }
        }
    }
    report
}

fn tally(count: &mut Count, result: io::Result<()>, path: &Path, what: &str) {
    match result {
        Ok(()) => count.done += 1,
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "cannot remove a leftover {what}");
            count.failed += 1;
        }
    }
}

/// The entries of `dir` with their names (none if it cannot be read).
fn entries(dir: &Path) -> Vec<(PathBuf, String)> {
    let Ok(read) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    read.flatten()
        .map(|e| (e.path(), e.file_name().to_string_lossy().into_owned()))
        .collect()
}

fn remove_any(path: &Path) -> io::Result<()> {
    if std::fs::symlink_metadata(path)?.is_dir() {
        remove_work_dir(path)
    } else {
        std::fs::remove_file(path)
    }
}

/// Relative paths of the files (and symlinks) under `root/rel`, at most four levels down
/// (`videos/YYYY/MM/file`); symlinked directories are not followed.
fn collect_files(root: &Path, rel: &Path, depth: u8, out: &mut Vec<PathBuf>) {
    let Ok(read) = std::fs::read_dir(root.join(rel)) else {
        return;
    };
    for entry in read.flatten() {
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        let child = rel.join(entry.file_name());
        if kind.is_dir() {
            if depth < 4 {
                collect_files(root, &child, depth + 1, out);
            }
        } else {
            out.push(child);
        }
    }
}

/// Moves `rel` to `quarantine/rel` (a numbered name if one is already there) and stamps it
/// with the time of the move, from which its retention runs. Returns its size.
fn quarantine(media: &MediaRoot, rel: &Path) -> io::Result<u64> {
    let source = media.path().join(rel);
    let bytes = std::fs::symlink_metadata(&source)?.len();
    let mut dest = media.path().join("quarantine").join(rel);
    let mut n = 1;
    while dest.symlink_metadata().is_ok() {
        dest = media
            .path()
            .join("quarantine")
            .join(format!("{}.{n}", rel.display()));
        n += 1;
    }
    if let Some(parent) = dest.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::rename(&source, &dest)?;
    if !dest.symlink_metadata()?.is_symlink() {
        std::fs::File::open(&dest)?.set_modified(SystemTime::now())?;
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn age(path: &Path, secs: u64) {
        // Read-only is enough to set times on one's own file (and works for directories).
        let file = std::fs::File::open(path).unwrap();
        file.set_modified(SystemTime::now() - Duration::from_secs(secs))
            .unwrap();
    }

    fn write(root: &Path, rel: &str, secs_old: u64) -> PathBuf {
        let path = root.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, rel.as_bytes()).unwrap();
        age(&path, secs_old);
        path
    }

    const HOUR: u64 = 3600;

    fn rules() -> SweepRules {
        SweepRules {
            min_age: Duration::from_secs(HOUR),
            quarantine_retention: Some(Duration::from_secs(30 * 24 * HOUR)),
            backup_running: false,
        }
    }

    #[test]
    fn while_a_backup_runs_orphans_and_quarantine_stay() {
        let dir = tempfile::tempdir().unwrap();
        let media = MediaRoot::open(dir.path()).unwrap();
        let root = media.path().to_path_buf();
        let orphan = write(&root, "videos/2026/01/deleted.mp4", 2 * HOUR);
        let quarantined = write(&root, "quarantine/videos/2025/01/old.mp4", 0);
        age(&quarantined, 31 * 24 * HOUR);
        let during = SweepRules {
            backup_running: true,
            ..rules()
        };
        let report = sweep(&media, &InUse::default(), &during);
        assert_eq!(report.orphans, Count::default());
        assert_eq!(report.quarantine_purged, Count::default());
        assert!(report.orphans_refused.is_some());
        assert!(orphan.exists() && quarantined.exists());
        let after = sweep(&media, &InUse::default(), &rules());
        assert_eq!(after.orphans.done, 1);
        assert_eq!(after.quarantine_purged.done, 1);
    }

    #[test]
    fn orphans_are_quarantined_and_referenced_files_kept() {
        let dir = tempfile::tempdir().unwrap();
        let media = MediaRoot::open(dir.path()).unwrap();
        let root = media.path().to_path_buf();
        let mut in_use = InUse::default();
        for i in 0..4 {
            let rel = format!("videos/2026/01/kept{i}.mp4");
            write(&root, &rel, 2 * HOUR);
            in_use.referenced.insert(rel);
        }
        let orphan = write(&root, "thumbnails/2026/01/gone_small.jpg", 2 * HOUR);
        let young = write(&root, "videos/2026/11/fresh.mp4", 10);

        let report = sweep(&media, &in_use, &rules());
        assert_eq!(report.orphans, Count { done: 1, failed: 0 });
        assert_eq!(
            report.orphan_bytes,
            "thumbnails/2026/01/gone_small.jpg".len() as u64
        );
        assert!(!orphan.exists());
        let quarantined = root.join("quarantine/thumbnails/2026/01/gone_small.jpg");
        assert!(quarantined.exists());
        assert!(young.exists(), "too young to judge");
        for i in 0..4 {
            assert!(root.join(format!("videos/2026/01/kept{i}.mp4")).exists());
        }
        // The retention runs from the move, not from the file's own age.
        let again = sweep(&media, &in_use, &rules());
        assert_eq!(again.quarantine_purged, Count::default());
        assert!(quarantined.exists());
        age(&quarantined, 31 * 24 * HOUR);
        let later = sweep(&media, &in_use, &rules());
        assert_eq!(later.quarantine_purged, Count { done: 1, failed: 0 });
        assert!(!quarantined.exists());
    }

    #[test]
    fn images_are_kept_when_referenced_and_quarantined_when_orphaned() {
        let dir = tempfile::tempdir().unwrap();
        let media = MediaRoot::open(dir.path()).unwrap();
        let root = media.path().to_path_buf();
        let mut in_use = InUse::default();
        for rel in [
            "images/2026/01/kept.jpg",
            "thumbnails/2026/01/kept_small.jpg",
            "videos/2026/01/v.mp4",
        ] {
            write(&root, rel, 2 * HOUR);
            in_use.referenced.insert(rel.to_string());
        }
        let orphan = write(&root, "images/2026/01/gone.jpg", 2 * HOUR);
        let report = sweep(&media, &in_use, &rules());
        assert_eq!(report.orphans, Count { done: 1, failed: 0 });
        assert!(!orphan.exists());
        assert!(root.join("quarantine/images/2026/01/gone.jpg").exists());
        assert!(root.join("images/2026/01/kept.jpg").exists());
    }

    #[test]
    fn uploads_go_after_a_day_unless_an_import_still_needs_them() {
        let dir = tempfile::tempdir().unwrap();
        let media = MediaRoot::open(dir.path()).unwrap();
        let root = media.path().to_path_buf();
        let day = UPLOAD_MAX_AGE.as_secs();
        let stale = write(&root, "temp/uploads/stale.jpg", day + HOUR);
        let pending = write(&root, "temp/uploads/pending.jpg", 3 * day);
        let recent = write(&root, "temp/uploads/recent.jpg", day - HOUR);
        let in_use = InUse {
            pending_uploads: [pending.clone()].into(),
            ..InUse::default()
        };
        let report = sweep(&media, &in_use, &rules());
        assert_eq!(report.uploads, Count { done: 1, failed: 0 });
        assert!(!stale.exists());
        assert!(pending.exists(), "a queued import still needs it");
        assert!(recent.exists(), "the bot may be about to record it");
    }

    #[test]
    fn a_database_that_knows_almost_nothing_is_not_trusted() {
        let dir = tempfile::tempdir().unwrap();
        let media = MediaRoot::open(dir.path()).unwrap();
        for i in 0..20 {
            write(media.path(), &format!("videos/2026/01/{i}.mp4"), 2 * HOUR);
        }
        let report = sweep(&media, &InUse::default(), &rules());
        assert_eq!(
            report.orphans,
            Count {
                done: 0,
                failed: 20
            }
        );
        assert!(report.orphans_refused.is_some());
        assert!(media.path().join("videos/2026/01/3.mp4").exists());
    }

    #[test]
    fn temp_leftovers_go_unless_a_job_still_needs_them() {
        let dir = tempfile::tempdir().unwrap();
        let media = MediaRoot::open(dir.path()).unwrap();
        let root = media.path().to_path_buf();
        let stale = write(&root, "temp/processing/jobA-1/download.mp4", 2 * HOUR);
        age(stale.parent().unwrap(), 2 * HOUR);
        let running = write(&root, "temp/processing/jobB-2/download.mp4", 2 * HOUR);
        age(running.parent().unwrap(), 2 * HOUR);
        let fresh = write(&root, "temp/processing/jobC-1/download.mp4", 5);
        let dead_resume = write(&root, "temp/resume/jobD.part", 2 * HOUR);
        let live_resume = write(&root, "temp/resume/jobE.part", 2 * HOUR);
        let in_use = InUse {
            running_attempts: ["jobB-2".to_string()].into(),
            unfinished_jobs: ["jobB".to_string(), "jobE".to_string()].into(),
            ..InUse::default()
        };
        let report = sweep(&media, &in_use, &rules());
        assert_eq!(report.temp, Count { done: 1, failed: 0 });
        assert_eq!(report.resume, Count { done: 1, failed: 0 });
        assert!(!stale.parent().unwrap().exists());
        assert!(running.exists() && fresh.exists() && live_resume.exists());
        assert!(!dead_resume.exists());
    }
}
