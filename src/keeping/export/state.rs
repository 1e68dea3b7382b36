//! The export directory's own record of what it wrote (`.prsnl-export.json`), and the lock
//! that keeps two exports out of the same directory.
//!
//! Only files named in the record, and still as the export left them, are ever replaced or
//! removed: the directory may hold the person's own files too (a media server's artwork,
//! notes, a sidecar a tool rewrote), and those are never touched.

use std::collections::BTreeMap;
use std::fs::{File, Metadata, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

use crate::keeping::KeepError;
use crate::keeping::files::open_plain;

pub(super) const STATE_FILE: &str = ".prsnl-export.json";
pub(super) const LOCK_FILE: &str = ".prsnl-export.lock";
const STATE_STAGING: &str = ".prsnl-export.json.tmp";
const FORMAT: u32 = 1;
/// A record larger than this is not one the export wrote.
const STATE_MAX: u64 = 1 << 30;

/// How a recorded file was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum How {
    /// A hard link to the vault's file.
    Linked,
    /// A copy of the vault's file.
    Copied,
    /// A sidecar written by the export.
    Written,
}

/// What identifies one version of a file: a file replaced, edited or restored differs in one
/// of these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Facts {
    pub dev: u64,
    pub ino: u64,
    pub size: u64,
    pub mtime_ns: i64,
}

impl Facts {
    pub(super) fn of(meta: &Metadata) -> Self {
        Self {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.len(),
            mtime_ns: meta.mtime().saturating_mul(1_000_000_000) + meta.mtime_nsec(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Recorded {
    /// The item the file belongs to.
    pub item: String,
    pub how: How,
    /// The file as the export left it; `None` while only intended (recorded before a run
    /// places it, so that a run that dies leaves no file the next one takes for yours).
    #[serde(default)]
    pub placed: Option<Facts>,
    /// The vault's file it was made from (a copy is made again when that changes).
    #[serde(default)]
    pub from: Option<Facts>,
    /// Changed by someone since the export wrote it: theirs now, never replaced or removed
    /// (the record stays so that later runs know it for theirs, not for a stranger's).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub theirs: bool,
}

impl Recorded {
    /// Whether the file now at the path is still the one the export left there.
    pub(super) fn is_ours(&self, now: &Metadata) -> bool {
        !self.theirs && self.placed.is_none_or(|placed| placed == Facts::of(now))
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub(super) struct ExportState {
    format: u32,
    /// Whose items the directory mirrors: `all`, or `user:<id>`.
    #[serde(default)]
    pub selection: String,
    /// Relative path → what it is.
    pub files: BTreeMap<String, Recorded>,
}

/// The export directory, locked for as long as this value lives.
pub(super) struct ExportDir {
    pub path: PathBuf,
    _lock: Flock<File>,
}

impl ExportDir {
    /// Opens (creating) the directory; `path` must be absolute and already checked.
    pub(super) fn open(path: &Path) -> Result<Self, KeepError> {
        if std::fs::metadata(path).is_ok_and(|m| !m.is_dir()) {
            return Err(KeepError::Invalid(format!(
                "{} is a file, not a folder",
                path.display()
            )));
        }
        std::fs::create_dir_all(path).map_err(|e| KeepError::io(path, e))?;
        let path = std::fs::canonicalize(path).map_err(|e| KeepError::io(path, e))?;
        let lock_path = path.join(LOCK_FILE);
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .custom_flags(nix::libc::O_NOFOLLOW)
            .open(&lock_path)
            .map_err(|e| planted(&lock_path, e))?;
        let lock = Flock::lock(file, FlockArg::LockExclusiveNonblock).map_err(|(_, errno)| {
            if errno == Errno::EWOULDBLOCK {
                KeepError::Busy(format!(
                    "another export is writing to {}; try again when it is done",
                    path.display()
                ))
            } else {
                KeepError::io(&lock_path, std::io::Error::from(errno))
            }
        })?;
        Ok(Self { path, _lock: lock })
    }

    /// The record of an earlier export; empty when there was none.
    pub(super) fn load_state(&self) -> Result<ExportState, KeepError> {
        let path = self.path.join(STATE_FILE);
        let mut bytes = Vec::new();
        let read = open_plain(&path).and_then(|file| file.take(STATE_MAX).read_to_end(&mut bytes));
        match read {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(ExportState {
                    format: FORMAT,
                    ..ExportState::default()
                });
            }
            Err(e) => return Err(planted(&path, e)),
        }
        let state: ExportState = serde_json::from_slice(&bytes).map_err(|e| {
            KeepError::Invalid(format!(
                "{} cannot be read ({e}); without it the export cannot tell its own files from \
                 yours. Move it aside to start the export afresh (files already there are then \
                 left alone unless identical).",
                path.display()
            ))
        })?;
        if state.format != FORMAT {
            return Err(KeepError::Invalid(format!(
                "{} was written by another version of prsnl (format {})",
                path.display(),
                state.format
            )));
        }
        Ok(state)
    }

    /// Replaces the record in one rename, flushed, so a crash leaves the old or the new one.
    /// The staging file is made anew (never opened through a link someone put there).
    pub(super) fn save_state(
        &self,
        selection: &str,
        files: &BTreeMap<String, Recorded>,
    ) -> Result<(), KeepError> {
        #[derive(Serialize)]
        struct Out<'a> {
            format: u32,
            selection: &'a str,
            files: &'a BTreeMap<String, Recorded>,
        }
        let path = self.path.join(STATE_FILE);
        let staging = self.path.join(STATE_STAGING);
        let bytes = serde_json::to_vec(&Out {
            format: FORMAT,
            selection,
            files,
        })
        .expect("plain data serializes");
        let write = || -> std::io::Result<()> {
            match std::fs::remove_file(&staging) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
            let mut file = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .custom_flags(nix::libc::O_NOFOLLOW)
                .open(&staging)?;
            file.write_all(&bytes)?;
            file.sync_all()?;
            std::fs::rename(&staging, &path)?;
            File::open(&self.path)?.sync_all()
        };
        write().map_err(|e| KeepError::io(&path, e))
    }
}

/// An open error, said plainly when the name is a symbolic link (refused, never followed).
fn planted(path: &Path, e: std::io::Error) -> KeepError {
    if e.raw_os_error() == Some(nix::libc::ELOOP) {
        KeepError::Invalid(format!(
            "{} is a symbolic link; the export never follows one there. Remove it (and look \
             into who put it there).",
            path.display()
        ))
    } else {
        KeepError::io(path, e)
    }
}

/// Whether `rel` names one of the export's own bookkeeping files.
pub(super) fn is_bookkeeping(rel: &str) -> bool {
    [STATE_FILE, LOCK_FILE, STATE_STAGING].contains(&rel)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_record_is_never_written_through_a_planted_link() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "keep").unwrap();
        let export = dir.path().join("export");
        let opened = ExportDir::open(&export).unwrap();
        std::os::unix::fs::symlink(&victim, export.join(STATE_STAGING)).unwrap();
        opened.save_state("all", &BTreeMap::new()).unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep");
        assert!(
            !std::fs::symlink_metadata(export.join(STATE_FILE))
                .unwrap()
                .is_symlink()
        );
        // A record that is a link is refused, not read through.
        std::fs::remove_file(export.join(STATE_FILE)).unwrap();
        std::os::unix::fs::symlink(&victim, export.join(STATE_FILE)).unwrap();
        assert!(opened.load_state().is_err());
        assert!(
            matches!(ExportDir::open(&export), Err(KeepError::Busy(_))),
            "one export at a time"
        );
    }
}
