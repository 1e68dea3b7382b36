//! The backup directory: its lock, snapshot names, the complete snapshots it holds, and the
//! leftovers of backups that died.

use std::fs::File;
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};

use super::KeepError;
use super::manifest::{MANIFEST, Manifest};
use crate::domain::Timestamp;

/// A backup under way is built under this prefix and renamed when complete.
const PARTIAL_PREFIX: &str = ".partial-";
const LOCK_FILE: &str = ".lock";

/// A complete snapshot: a directory with a readable manifest.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub name: String,
    pub path: PathBuf,
    pub manifest: Manifest,
}

/// The backup directory, locked against a second writer for as long as this value lives (the
/// kernel drops the lock when the process dies, however it dies).
pub(super) struct BackupDir {
    pub path: PathBuf,
    _lock: Flock<File>,
}

impl BackupDir {
    pub(super) fn open(path: &Path) -> Result<Self, KeepError> {
        std::fs::create_dir_all(path).map_err(|e| KeepError::io(path, e))?;
        let lock_path = path.join(LOCK_FILE);
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| KeepError::io(&lock_path, e))?;
        let lock = Flock::lock(file, FlockArg::LockExclusiveNonblock).map_err(|(_, errno)| {
            KeepError::Busy(format!(
                "another backup is writing to {} ({errno}); try again when it is done",
                path.display()
            ))
        })?;
        Ok(Self {
            path: path.to_path_buf(),
            _lock: lock,
        })
    }

    /// Removes what backups that died left behind; returns what it removed.
    pub(super) fn remove_leftovers(&self) -> Vec<PathBuf> {
        let mut removed = Vec::new();
        for entry in std::fs::read_dir(&self.path)
            .into_iter()
            .flatten()
            .flatten()
        {
            let name = entry.file_name();
            if name.to_string_lossy().starts_with(PARTIAL_PREFIX) {
                match std::fs::remove_dir_all(entry.path()) {
                    Ok(()) => removed.push(entry.path()),
                    Err(e) => tracing::warn!(path = %entry.path().display(), error = %e,
                        "cannot remove the leftover of an earlier backup"),
                }
            }
        }
        removed
    }

    /// A name for a snapshot taken at `now` (UTC, sortable, valid on every common
    /// filesystem), not yet used here.
    pub(super) fn new_name(&self, now: Timestamp) -> String {
        let base = now
            .to_datetime()
            .map(|t| {
                format!(
                    "{:04}-{:02}-{:02}T{:02}-{:02}-{:02}Z",
                    t.year(),
                    u8::from(t.month()),
                    t.day(),
                    t.hour(),
                    t.minute(),
                    t.second()
                )
            })
            .unwrap_or_else(|| format!("snapshot-{}", now.as_millis()));
        let mut name = base.clone();
        let mut n = 1;
        while self.path.join(&name).exists() || self.partial(&name).exists() {
            n += 1;
            name = format!("{base}-{n}");
        }
        name
    }

    pub(super) fn partial(&self, name: &str) -> PathBuf {
        self.path.join(format!("{PARTIAL_PREFIX}{name}"))
    }
}

/// The complete snapshots in `dir`, oldest first. A directory without a readable manifest is
/// not one (a backup that died before writing it, or something else entirely).
pub fn list(dir: &Path) -> Result<Vec<Snapshot>, KeepError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(KeepError::io(dir, e)),
    };
    let mut snapshots: Vec<Snapshot> = entries
        .flatten()
        .filter(|entry| entry.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|entry| {
            let name = entry.file_name().to_str()?.to_string();
            if name.starts_with('.') || !entry.path().join(MANIFEST).is_file() {
                return None;
            }
            let manifest = Manifest::read(&entry.path()).ok()?;
            Some(Snapshot {
                name,
                path: entry.path(),
                manifest,
            })
        })
        .collect();
    snapshots.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(snapshots)
}

/// A snapshot named on the command line: a path, or the name of one in `dir`.
pub fn resolve_snapshot(dir: &Path, given: &str) -> PathBuf {
    let path = PathBuf::from(given);
    if path.exists() || path.components().count() > 1 {
        path
    } else {
        dir.join(given)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_writer_at_a_time_and_names_do_not_collide() {
        let dir = tempfile::tempdir().unwrap();
        let first = BackupDir::open(dir.path()).unwrap();
        assert!(matches!(
            BackupDir::open(dir.path()),
            Err(KeepError::Busy(_))
        ));
        let now = Timestamp::from_millis(1_764_590_400_000); // 2025-12-01T12:00:00Z
        let name = first.new_name(now);
        assert_eq!(name, "2025-12-01T12-00-00Z");
        std::fs::create_dir(dir.path().join(&name)).unwrap();
        assert_eq!(first.new_name(now), "2025-12-01T12-00-00Z-2");
        std::fs::create_dir(first.partial("left")).unwrap();
        std::fs::write(first.partial("left").join("f"), b"x").unwrap();
        assert_eq!(first.remove_leftovers().len(), 1);
        assert!(!first.partial("left").exists());
        drop(first);
        assert!(BackupDir::open(dir.path()).is_ok());
        // Neither the directory without a manifest nor the lock file is a snapshot.
        assert!(list(dir.path()).unwrap().is_empty());
    }
}
