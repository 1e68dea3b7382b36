//! A snapshot's manifest (`manifest.json`, written last): what the snapshot holds, file by file
//! with size and SHA-256, and where it came from. Its presence under a snapshot's final name is
//! what makes a snapshot complete.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::KeepError;

/// Names the format, so that a manifest is never mistaken for another program's JSON.
pub const FORMAT: &str = "prsnl-snapshot";
/// Bumped when a reader of an older version could not read a newer snapshot.
pub const FORMAT_VERSION: u32 = 1;
pub const MANIFEST: &str = "manifest.json";
/// Where the database dump sits in a snapshot: one `<table>.jsonl` per kept table.
pub const DATABASE_DIR: &str = "database";
/// Where the media tree sits in a snapshot, laid out as under `media_root`.
pub const MEDIA_DIR: &str = "media";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Manifest {
    pub format: String,
    pub format_version: u32,
    /// The prsnl version and commit that wrote it.
    pub written_by: String,
    /// RFC 3339, UTC: when the database was read.
    pub created_at: String,
    pub database: DatabaseFacts,
    pub counts: Counts,
    /// The snapshot whose unchanged files this one links to, if any.
    pub previous: Option<String>,
    /// Every file, database dump and media, relative to the snapshot (`/` separated).
    pub files: Vec<FileEntry>,
    /// Files the database named that were not in the media tree when the backup ran: the
    /// vault was already missing them (a restore of those items has no file either).
    #[serde(default)]
    pub missing_at_source: Vec<String>,
    /// Files whose bytes did not match the SHA-256 the database recorded when they were
    /// stored: damaged in the live tree before the backup copied them.
    #[serde(default)]
    pub damaged_at_source: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct DatabaseFacts {
    /// `sqlite` or `postgres`: what the dump was read from (a restore may go to either).
    pub kind: String,
    /// The last migration applied to the database the dump was read from.
    pub schema_version: i64,
    /// Rows per table.
    pub rows: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Counts {
    pub items: u64,
    pub completed_items: u64,
    pub media_files: u64,
    /// All bytes the snapshot's files hold.
    pub bytes: u64,
    /// Bytes copied by this backup (the database dump and new or changed media).
    pub bytes_new: u64,
    /// Bytes hard-linked from the previous snapshot.
    pub bytes_linked: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct FileEntry {
    pub path: String,
    pub size: u64,
    pub sha256: String,
    /// The source file's modification time (ns since the epoch); with path and size, how the
    /// next backup tells an unchanged file without hashing it. None for the database dump.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtime_ns: Option<i128>,
}

impl Manifest {
    /// Reads and checks a snapshot's manifest.
    pub fn read(snapshot: &Path) -> Result<Self, KeepError> {
        let path = snapshot.join(MANIFEST);
        let text = std::fs::read(&path).map_err(|e| KeepError::io(&path, e))?;
        let manifest: Manifest = serde_json::from_slice(&text).map_err(|e| {
            KeepError::Invalid(format!(
                "{} is not a snapshot manifest: {e}",
                path.display()
            ))
        })?;
        if manifest.format != FORMAT {
            return Err(KeepError::Invalid(format!(
                "{} is not a prsnl snapshot manifest",
                path.display()
            )));
        }
        if manifest.format_version > FORMAT_VERSION {
            return Err(KeepError::Invalid(format!(
                "{} was written by a newer prsnl (snapshot format {}; this one reads up to {})",
                path.display(),
                manifest.format_version,
                FORMAT_VERSION
            )));
        }
        for entry in &manifest.files {
            if !is_safe_relative(&entry.path) {
                return Err(KeepError::Invalid(format!(
                    "{} names an unsafe path: {:?}",
                    path.display(),
                    entry.path
                )));
            }
        }
        Ok(manifest)
    }

    /// The media entries, with their path under `media_root`.
    pub fn media(&self) -> impl Iterator<Item = (&str, &FileEntry)> {
        let prefix = format!("{MEDIA_DIR}/");
        self.files
            .iter()
            .filter_map(move |e| e.path.strip_prefix(prefix.as_str()).map(|rel| (rel, e)))
    }

    /// The database dump entries, with their table's name.
    pub fn tables(&self) -> impl Iterator<Item = (&str, &FileEntry)> {
        let prefix = format!("{DATABASE_DIR}/");
        self.files.iter().filter_map(move |e| {
            e.path
                .strip_prefix(prefix.as_str())
                .and_then(|name| name.strip_suffix(".jsonl"))
                .map(|table| (table, e))
        })
    }
}

/// A relative path of plain components: no root, no `..`, no `.`, no empty part, no NUL. A
/// manifest is read from a directory anyone may have edited; a restore writes where it says.
pub fn is_safe_relative(path: &str) -> bool {
    !path.is_empty()
        && !path.contains('\0')
        && !path.contains('\\')
        && path
            .split('/')
            .all(|part| !part.is_empty() && part != "." && part != "..")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_relative_paths_are_safe() {
        assert!(is_safe_relative("media/videos/2026/11/a.mp4"));
        assert!(is_safe_relative("database/items.jsonl"));
        for bad in [
            "",
            "/etc/passwd",
            "media/../../etc/passwd",
            "media/./a",
            "media//a",
            "media/a\0b",
            "..",
            "media\\..\\a",
        ] {
            assert!(!is_safe_relative(bad), "{bad:?}");
        }
    }
}
