//! `prsnl backup verify`: re-reads every byte of a snapshot against its manifest, and checks
//! that every completed item in its database has its files in it.

use std::collections::BTreeSet;
use std::io::BufRead;
use std::path::{Path, PathBuf};

use super::KeepError;
use super::files::{self, Facts, in_parallel};
use super::manifest::{FileEntry, MEDIA_DIR, Manifest};
use super::named::named_files;
use crate::db::dump::Record;

/// Something wrong with one file of a snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Relative to the snapshot.
    pub path: String,
    pub what: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path, self.what)
    }
}

#[derive(Debug, Clone, Default)]
pub struct VerifyReport {
    pub files: u64,
    pub bytes: u64,
    /// Missing, damaged or unlisted-but-needed files; empty when the snapshot is sound.
    pub problems: Vec<Problem>,
}

/// Checks `snapshot`; an unreadable manifest is an error, damaged files are problems.
pub async fn verify(snapshot: &Path) -> Result<VerifyReport, KeepError> {
    let snapshot = snapshot.to_path_buf();
    tokio::task::spawn_blocking(move || verify_blocking(&snapshot))
        .await
        .map_err(|e| KeepError::Invalid(format!("the verifying task failed: {e}")))?
}

fn verify_blocking(snapshot: &Path) -> Result<VerifyReport, KeepError> {
    let manifest = Manifest::read(snapshot)?;
    let mut report = VerifyReport::default();
    let checked = in_parallel(&manifest.files, |entry| {
        match files::hash_file(&snapshot.join(&entry.path)) {
            Ok(facts) => mismatch(&facts, entry),
            Err(e) => Some(unreadable(&e)),
        }
    });
    for (entry, problem) in manifest.files.iter().zip(checked) {
        match problem {
            None => {
                report.files += 1;
                report.bytes += entry.size;
            }
            Some(what) => report.problems.push(Problem {
                path: entry.path.clone(),
                what,
            }),
        }
    }
    // Each completed item's files are in the snapshot (or were already missing in the vault
    // when it was taken, which the manifest says).
    let listed: BTreeSet<&str> = manifest.media().map(|(rel, _)| rel).collect();
    let known_missing: BTreeSet<&str> = manifest
        .missing_at_source
        .iter()
        .map(String::as_str)
        .collect();
    for (table, entry) in manifest.tables() {
        if table != "items" && table != "renditions" {
            continue;
        }
        if report.problems.iter().any(|p| p.path == entry.path) {
            continue; // already reported; its rows cannot be trusted
        }
        for record in read_records(&snapshot.join(&entry.path))? {
            for named in named_files(table, &record?) {
                if !listed.contains(named.path.as_str())
                    && !known_missing.contains(named.path.as_str())
                {
                    report.problems.push(Problem {
                        path: format!("{MEDIA_DIR}/{}", named.path),
                        what: format!(
                            "item {} names it, but the snapshot does not hold it",
                            named.item
                        ),
                    });
                }
            }
        }
    }
    Ok(report)
}

/// What is wrong with a file whose bytes gave `facts`, against its manifest `entry`.
pub(super) fn mismatch(facts: &Facts, entry: &FileEntry) -> Option<String> {
    if facts.size != entry.size {
        Some(format!(
            "size {} where the manifest says {}",
            facts.size, entry.size
        ))
    } else if facts.sha256 != entry.sha256 {
        Some("its bytes differ from the manifest's SHA-256 (damaged)".to_string())
    } else {
        None
    }
}

/// A file that could not be read, in a problem's words.
pub(super) fn unreadable(e: &std::io::Error) -> String {
    if e.kind() == std::io::ErrorKind::NotFound {
        "missing".to_string()
    } else {
        format!("unreadable: {e}")
    }
}

/// The rows of one dump file, read one line at a time.
pub(super) fn read_records(
    path: &Path,
) -> Result<impl Iterator<Item = Result<Record, KeepError>> + use<>, KeepError> {
    let file = std::fs::File::open(path).map_err(|e| KeepError::io(path, e))?;
    let path: PathBuf = path.to_path_buf();
    Ok(std::io::BufReader::new(file)
        .lines()
        .enumerate()
        .filter(|(_, line)| line.as_ref().is_err() || line.as_ref().is_ok_and(|l| !l.is_empty()))
        .map(move |(n, line)| {
            let line = line.map_err(|e| KeepError::io(&path, e))?;
            serde_json::from_str(&line).map_err(|e| {
                KeepError::Invalid(format!("{} line {}: not a row: {e}", path.display(), n + 1))
            })
        }))
}
