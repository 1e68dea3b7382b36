//! `prsnl restore SNAPSHOT`: a snapshot back into an empty vault, on SQLite or PostgreSQL
//! whichever it was taken from.
//!
//! Files first, each copied to the work area, checked against the manifest, then renamed into
//! place; the database last, in one transaction, into the schema the snapshot was written
//! with, followed by the migrations since. A damaged snapshot stops the restore before the
//! database is touched, and a crash part-way leaves files without rows (which the sweep
//! clears), never rows without files.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use super::KeepError;
use super::files::{self, in_parallel};
use super::load::{load, newer_schema, occupied_tables};
use super::manifest::{FileEntry, Manifest};
use super::verify::{Problem, mismatch, unreadable};
use crate::db::Db;
use crate::storage::{MediaRoot, finalize};

/// Restored files are ordinary files of the live tree again.
const LIVE_MODE: u32 = 0o644;

#[derive(Debug, Clone, Copy, Default)]
pub struct RestoreOptions {
    /// Replace what the target holds: its rows are deleted in the restore's transaction; its
    /// files that the snapshot does not hold stay, as orphans for the sweep.
    pub force: bool,
}

#[derive(Debug, Clone)]
pub struct RestoreReport {
    /// Rows loaded per table.
    pub rows: BTreeMap<String, u64>,
    pub files: u64,
    pub bytes: u64,
    /// The database kind the snapshot was read from.
    pub from: String,
    pub seconds: f64,
}

pub async fn restore(
    db: &Db,
    media: &MediaRoot,
    snapshot: &Path,
    options: RestoreOptions,
) -> Result<RestoreReport, KeepError> {
    let started = Instant::now();
    let manifest = Manifest::read(snapshot)?;
    let schema = manifest.database.schema_version;
    if schema > db.latest_schema_version() {
        return Err(newer_schema(schema, db.latest_schema_version()));
    }
    check_database_files(snapshot, &manifest).await?;
    if !options.force {
        refuse_occupied(db, media).await?;
    }

    let (files, bytes) = restore_media(media, snapshot, &manifest).await?;

    let tables: BTreeMap<String, PathBuf> = manifest
        .tables()
        .map(|(table, entry)| (table.to_string(), snapshot.join(&entry.path)))
        .collect();
    let rows = load(db, schema, options.force, &tables).await?;
    Ok(RestoreReport {
        rows,
        files,
        bytes,
        from: manifest.database.kind.clone(),
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// The dump is read into the database as it is: check it first.
async fn check_database_files(snapshot: &Path, manifest: &Manifest) -> Result<(), KeepError> {
    let entries: Vec<FileEntry> = manifest.tables().map(|(_, e)| e.clone()).collect();
    let snapshot = snapshot.to_path_buf();
    let problems = tokio::task::spawn_blocking(move || {
        entries
            .iter()
            .filter_map(|entry| {
                let what = match files::hash_file(&snapshot.join(&entry.path)) {
                    Ok(facts) => mismatch(&facts, entry)?,
                    Err(e) => unreadable(&e),
                };
                Some(Problem {
                    path: entry.path.clone(),
                    what,
                })
            })
            .collect::<Vec<_>>()
    })
    .await
    .map_err(|e| KeepError::Invalid(format!("the checking task failed: {e}")))?;
    if problems.is_empty() {
        Ok(())
    } else {
        Err(KeepError::Damaged(problems))
    }
}

async fn refuse_occupied(db: &Db, media: &MediaRoot) -> Result<(), KeepError> {
    let occupied = occupied_tables(db).await?;
    let root = media.path().to_path_buf();
    let stored = tokio::task::spawn_blocking(move || {
        ["videos", "images", "thumbnails", "subtitles"]
            .iter()
            .any(|dir| holds_a_file(&root.join(dir)))
    })
    .await
    .unwrap_or(true);
    if occupied.is_empty() && !stored {
        return Ok(());
    }
    let mut what = occupied;
    if stored {
        what.push(format!("media files under {}", media.path().display()));
    }
    Err(KeepError::NotEmpty(format!(
        "the target is not empty ({}): restore into an empty database and media root, or pass \
         --force to replace what it holds",
        what.join(", ")
    )))
}

fn holds_a_file(dir: &Path) -> bool {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .any(|entry| {
            entry
                .file_type()
                .is_ok_and(|t| !t.is_dir() || holds_a_file(&entry.path()))
        })
}

/// Copies every media file into place through the work area, checked on the way.
async fn restore_media(
    media: &MediaRoot,
    snapshot: &Path,
    manifest: &Manifest,
) -> Result<(u64, u64), KeepError> {
    let work = media
        .processing_dir()
        .join(format!("restore-{}", uuid::Uuid::now_v7()));
    let tasks: Vec<(PathBuf, Option<PathBuf>, FileEntry)> = manifest
        .media()
        .map(|(rel, entry)| {
            (
                snapshot.join(&entry.path),
                media.resolve(rel),
                entry.clone(),
            )
        })
        .collect();
    let work_dir = work.clone();
    let results = tokio::task::spawn_blocking(move || {
        std::fs::create_dir_all(&work_dir).map_err(|e| KeepError::io(&work_dir, e))?;
        let next = std::sync::atomic::AtomicU64::new(0);
        let results = in_parallel(&tasks, |(source, dest, entry)| {
            let Some(dest) = dest else {
                return Err(Problem {
                    path: entry.path.clone(),
                    what: "not a path inside the media tree".into(),
                });
            };
            let n = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let staged = work_dir.join(n.to_string());
            restore_file(source, &staged, dest, entry)
                .inspect_err(|_| drop(std::fs::remove_file(&staged)))
        });
        let _ = std::fs::remove_dir_all(&work_dir);
        Ok::<_, KeepError>(results)
    })
    .await
    .map_err(|e| KeepError::Invalid(format!("the restoring task failed: {e}")))??;
    let mut problems = Vec::new();
    let (mut files, mut bytes) = (0, 0);
    for result in results {
        match result {
            Ok(size) => {
                files += 1;
                bytes += size;
            }
            Err(problem) => problems.push(problem),
        }
    }
    if problems.is_empty() {
        Ok((files, bytes))
    } else {
        Err(KeepError::Damaged(problems))
    }
}

fn restore_file(
    source: &Path,
    staged: &Path,
    dest: &Path,
    entry: &FileEntry,
) -> Result<u64, Problem> {
    let problem = |what: String| Problem {
        path: entry.path.clone(),
        what,
    };
    let facts = files::copy_hashed(source, staged, LIVE_MODE).map_err(|e| {
        problem(if e.kind() == std::io::ErrorKind::NotFound {
            "missing".into()
        } else {
            format!("cannot copy: {e}")
        })
    })?;
    if let Some(what) = mismatch(&facts, entry) {
        return Err(problem(what));
    }
    finalize(staged, dest).map_err(|e| problem(format!("cannot put it in place: {e}")))?;
    Ok(facts.size)
}
