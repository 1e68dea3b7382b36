//! The export directory's own record of what it wrote (`.prsnl-export.json`), and the lock
//! that keeps two exports out of the same directory.
//!
//! Only files named in the record are ever replaced or removed: the directory may hold the
//! person's own files too (a media server's artwork, notes), and those are never touched.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

use crate::keeping::KeepError;

const STATE_FILE: &str = ".prsnl-export.json";
const LOCK_FILE: &str = ".prsnl-export.lock";
const FORMAT: u32 = 1;

/// How a recorded file was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum How {
    /// A hard link to the vault's file.
    Linked,
    /// A copy of the vault's file, with its modification time.
    Copied,
    /// A sidecar written by the export.
    Written,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Recorded {
    /// The item the file belongs to.
    pub item: String,
    pub how: How,
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub(super) struct ExportState {
    format: u32,
    /// Relative path → what it is.
    pub files: BTreeMap<String, Recorded>,
}

/// The export directory, locked for as long as this value lives.
pub(super) struct ExportDir {
    pub path: PathBuf,
    _lock: Flock<File>,
}

impl ExportDir {
    pub(super) fn open(path: &Path) -> Result<Self, KeepError> {
        std::fs::create_dir_all(path).map_err(|e| KeepError::io(path, e))?;
        let path = std::fs::canonicalize(path).map_err(|e| KeepError::io(path, e))?;
        let lock_path = path.join(LOCK_FILE);
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| KeepError::io(&lock_path, e))?;
        let lock = Flock::lock(file, FlockArg::LockExclusiveNonblock).map_err(|(_, errno)| {
            KeepError::Busy(format!(
                "another export is writing to {} ({errno}); try again when it is done",
                path.display()
            ))
        })?;
        Ok(Self { path, _lock: lock })
    }

    /// The record of an earlier export; empty when there was none.
    pub(super) fn load_state(&self) -> Result<ExportState, KeepError> {
        let path = self.path.join(STATE_FILE);
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(ExportState {
                    format: FORMAT,
                    files: BTreeMap::new(),
                });
            }
            Err(e) => return Err(KeepError::io(&path, e)),
        };
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
    pub(super) fn save_state(&self, files: &BTreeMap<String, Recorded>) -> Result<(), KeepError> {
        #[derive(Serialize)]
        struct Out<'a> {
            format: u32,
            files: &'a BTreeMap<String, Recorded>,
        }
        let path = self.path.join(STATE_FILE);
        let temporary = self.path.join(format!("{STATE_FILE}.tmp"));
        let bytes = serde_json::to_vec(&Out {
            format: FORMAT,
            files,
        })
        .expect("plain data serializes");
        let write = || -> std::io::Result<()> {
            let mut file = File::create(&temporary)?;
            file.write_all(&bytes)?;
            file.sync_all()?;
            std::fs::rename(&temporary, &path)?;
            File::open(&self.path)?.sync_all()
        };
        write().map_err(|e| KeepError::io(&path, e))
    }
}
