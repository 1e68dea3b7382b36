//! The dump as files: one JSON Lines file per kept table, each hashed as it is written so
//! the manifest needs no second read.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use super::KeepError;
use super::files::{READ_ONLY, Sha256};
use super::manifest::{DATABASE_DIR, FileEntry};
use crate::db::dump::{self, KEPT_TABLES};

/// The dump's files, one per kept table, hashed as they are written.
pub(super) struct TableFiles {
    dir: PathBuf,
    open: BTreeMap<&'static str, (BufWriter<File>, Sha256, u64)>,
}

impl TableFiles {
    pub(super) fn create(dir: &Path) -> Result<Self, KeepError> {
        let mut open = BTreeMap::new();
        for table in KEPT_TABLES {
            let path = dir.join(format!("{table}.jsonl"));
            let file = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(READ_ONLY)
                .open(&path)
                .map_err(|e| KeepError::io(&path, e))?;
            open.insert(*table, (BufWriter::new(file), Sha256::new(), 0));
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            open,
        })
    }

    pub(super) fn write(&mut self, table: &str, record: &dump::Record) -> std::io::Result<()> {
        let Some((file, hasher, size)) = self.open.get_mut(table) else {
            return Err(std::io::Error::other(format!(
                "no dump file for table {table}"
            )));
        };
        let mut line = serde_json::to_vec(record)?;
        line.push(b'\n');
        hasher.update(&line);
        *size += line.len() as u64;
        file.write_all(&line)
    }

    pub(super) fn finish(self) -> Result<Vec<FileEntry>, KeepError> {
        self.open
            .into_iter()
            .map(|(table, (file, hasher, size))| {
                let path = self.dir.join(format!("{table}.jsonl"));
                file.into_inner()
                    .map_err(|e| KeepError::io(&path, e.into_error()))?;
                Ok(FileEntry {
                    path: format!("{DATABASE_DIR}/{table}.jsonl"),
                    size,
                    sha256: hasher.finish_hex(),
                    mtime_ns: None,
                })
            })
            .collect()
    }
}
