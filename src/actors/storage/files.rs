//! The filesystem work the StorageActor does on the blocking pool: moving a finished job's
//! files into the tree, removing a deleted item's files, measuring the work area.
//!
//! Plain functions over a `MediaRoot`, so tests can drive them without an actor. They never
//! touch the database or the actor's totals: they return sizes, and the actor does the
//! accounting. Destinations go through `MediaRoot::resolve`, which refuses traversal.

use std::path::{Path, PathBuf};

use super::{CommitFile, FileKind};
use crate::db::items::Tally;
use crate::domain::{ErrorCode, JobError};
use crate::storage;

/// Moves each file into place; returns their sizes.
pub(super) fn commit(
    media: &storage::MediaRoot,
    files: &[CommitFile],
) -> Result<Vec<u64>, JobError> {
    files
        .iter()
        .map(|file| {
            let dest = media.resolve(&file.relative).ok_or_else(|| {
                JobError::new(
                    ErrorCode::Internal,
                    format!("refusing unsafe destination path {}", file.relative),
                )
            })?;
            let bytes = std::fs::metadata(&file.source)
                .map_err(|e| {
                    storage::io_job_error(&format!("cannot read {}", file.source.display()), &e)
                })?
                .len();
            storage::finalize(&file.source, &dest).map_err(|e| {
                storage::io_job_error(&format!("cannot store {}", file.relative), &e)
            })?;
            Ok(bytes)
        })
        .collect()
}

/// Removes files; returns the size of each one that existed.
pub(super) fn remove_files(
    media: &storage::MediaRoot,
    files: &[(String, FileKind)],
) -> std::io::Result<Vec<Option<u64>>> {
    files
        .iter()
        .map(|(relative, _)| {
            let Some(path) = media.resolve(relative) else {
                return Ok(None);
            };
            let size = match std::fs::symlink_metadata(&path) {
                Ok(meta) => meta.len(),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(e),
            };
            match std::fs::remove_file(&path) {
                Ok(()) => Ok(Some(size)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(e),
            }
        })
        .collect()
}

/// Files and bytes under the work area (small: a few attempts at a time).
pub(super) async fn measure(dir: PathBuf) -> Tally {
    tokio::task::spawn_blocking(move || {
        let mut tally = Tally::default();
        walk(&dir, 0, &mut tally);
        tally
    })
    .await
    .unwrap_or_default()
}

fn walk(dir: &Path, depth: u8, tally: &mut Tally) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let Ok(meta) = entry.metadata() else { continue };
        if meta.is_dir() && depth < 3 {
            walk(&entry.path(), depth + 1, tally);
        } else if meta.is_file() {
            tally.files += 1;
            tally.bytes += meta.len();
        }
    }
}
