//! Keeping the vault: snapshots of the database and the media (`create`), checked against
//! their manifest (`verify`), put back into an empty vault on either database (`restore`);
//! the database alone into another database (`copy_database`); and a readable copy of the
//! vault for people and media servers (`export`).
//!
//! A snapshot is a directory under the backup directory:
//!
//! ```text
//! <backup.directory>/
//! ├── .lock                         held (flock) by the backup writing here
//! ├── .partial-<name>/              a backup under way, or the leftover of one that died
//! └── <name>/                       complete: renamed into place after its manifest
//!     ├── database/<table>.jsonl    every row, a JSON object per line (db::dump)
//!     ├── media/videos/…            the files the dump's completed items name, as in media_root
//!     └── manifest.json             every file with size and SHA-256, written last
//! ```
//!
//! Snapshot files are read-only; a file unchanged since the previous snapshot is a hard link
//! to that snapshot's copy, and the first snapshot copies every byte (it never links into the
//! live tree, so no snapshot shares an inode with `media_root`).

mod copy;
mod create;
mod export;
mod files;
mod lease;
mod load;
pub mod manifest;
mod named;
mod prune;
mod restore;
pub mod scheduled;
mod snapshots;
mod table_files;
mod verify;

use std::path::Path;

pub use copy::{CopyReport, copy_database};
pub use create::{CreateReport, create};
pub use export::{ExportOptions, ExportReport, export};
pub use prune::{PruneReport, prune};
pub use restore::{RestoreOptions, RestoreReport, restore};
pub use snapshots::{Snapshot, list, resolve_snapshot};
pub use verify::{Problem, VerifyReport, verify};

use crate::db::DbError;
use crate::db::dump::DumpError;

#[derive(Debug, thiserror::Error)]
pub enum KeepError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Dump(#[from] DumpError),
    #[error("{0}")]
    Busy(String),
    #[error("{0}")]
    NotEmpty(String),
    #[error("the snapshot is damaged:\n{}", .0.iter().map(|p| format!("  {p}")).collect::<Vec<_>>().join("\n"))]
    Damaged(Vec<Problem>),
    #[error("{0}")]
    LeaseLost(String),
}

impl KeepError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        Self::Io {
            path: path.display().to_string(),
            source,
        }
    }
}
