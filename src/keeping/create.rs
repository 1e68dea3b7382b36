//! `prsnl backup create`: one snapshot of the database and the media, consistent while the
//! service runs and captures.
//!
//! The order is what makes it consistent: take the lease (removals of files wait from now
//! on), read the database in one snapshot, copy exactly the files that snapshot's completed
//! items name (completed files never change, and none of them can be removed while the lease
//! holds), flush everything, write the manifest, rename the directory into place. Nothing
//! stops captures meanwhile: the dump is a read transaction, the copy touches no row.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Instant;

use time::format_description::well_known::Rfc3339;

use super::KeepError;
use super::files::{self, Facts, READ_ONLY};
use super::lease::BackupLease;
use super::manifest::{
    Counts, DATABASE_DIR, DatabaseFacts, FORMAT, FORMAT_VERSION, FileEntry, MANIFEST, MEDIA_DIR,
    Manifest,
};
use super::named::named_files;
use super::snapshots::{BackupDir, Snapshot, list};
use super::table_files::TableFiles;
use crate::db::dump;
use crate::db::{Backend, Db};
use crate::storage::MediaRoot;

/// What a backup made.
#[derive(Debug, Clone)]
pub struct CreateReport {
    pub name: String,
    pub path: PathBuf,
    pub manifest: Manifest,
    /// Leftovers of backups that died, removed before this one began.
    pub removed_leftovers: Vec<PathBuf>,
    pub seconds: f64,
}

/// Writes a new snapshot of `db` and `media` into `dir`.
pub async fn create(db: &Db, media: &MediaRoot, dir: &Path) -> Result<CreateReport, KeepError> {
    let started = Instant::now();
    let backup_dir = BackupDir::open(dir)?;
    let removed_leftovers = backup_dir.remove_leftovers();
    let previous = list(dir)?.pop();
    let name = backup_dir.new_name(crate::clock::now());
    let partial = backup_dir.partial(&name);
    let lease = BackupLease::take(db).await?;
    let built = build(db, media, &partial, previous.as_ref(), &lease).await;
    lease.release().await;
    let manifest = match built {
        Ok(manifest) => manifest,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&partial);
            return Err(e);
        }
    };
    let path = backup_dir.path.join(&name);
    std::fs::rename(&partial, &path).map_err(|e| KeepError::io(&path, e))?;
    files::sync_dir(&backup_dir.path).map_err(|e| KeepError::io(&backup_dir.path, e))?;
    Ok(CreateReport {
        name,
        path,
        manifest,
        removed_leftovers,
        seconds: started.elapsed().as_secs_f64(),
    })
}

async fn build(
    db: &Db,
    media: &MediaRoot,
    partial: &Path,
    previous: Option<&Snapshot>,
    lease: &BackupLease,
) -> Result<Manifest, KeepError> {
    let database_dir = partial.join(DATABASE_DIR);
    std::fs::create_dir_all(&database_dir).map_err(|e| KeepError::io(&database_dir, e))?;
    let created_at = crate::clock::now()
        .to_datetime()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default();

    // The database, and from its rows the files to copy.
    let mut tables = TableFiles::create(&database_dir)?;
    let mut wanted: BTreeMap<String, Option<String>> = BTreeMap::new();
    let mut counts = Counts::default();
    let summary = dump::dump(db, |table, record| {
        tables.write(table, record)?;
        if table == "items" {
            counts.items += 1;
            if record.get("status").and_then(|s| s.as_str()) == Some("completed") {
                counts.completed_items += 1;
            }
        }
        for named in named_files(table, record) {
            let expected = wanted.entry(named.path).or_default();
            if expected.is_none() {
                *expected = named.sha256;
            }
        }
        Ok(())
    })
    .await?;
    let mut entries = tables.finish()?;
    counts.bytes_new = entries.iter().map(|e| e.size).sum();

    // The media: linked from the previous snapshot when unchanged, else copied and hashed.
    let earlier: HashMap<String, (PathBuf, FileEntry)> = previous
        .map(|snapshot| {
            snapshot
                .manifest
                .media()
                .map(|(rel, entry)| {
                    let path = snapshot.path.join(&entry.path);
                    (rel.to_string(), (path, entry.clone()))
                })
                .collect()
        })
        .unwrap_or_default();
    let tasks: Vec<Task> = wanted
        .into_iter()
        .map(|(rel, expected)| Task {
            source: media.resolve(&rel),
            dest: partial.join(MEDIA_DIR).join(&rel),
            earlier: earlier.get(&rel).cloned(),
            rel,
            expected,
        })
        .collect();
    let outcomes = tokio::task::spawn_blocking(move || {
        let outcomes = files::in_parallel(&tasks, keep_file);
        (tasks, outcomes)
    })
    .await
    .map_err(|e| KeepError::Invalid(format!("the copying task failed: {e}")))?;
    let (mut missing, mut damaged) = (Vec::new(), Vec::new());
    for (task, outcome) in outcomes.0.iter().zip(outcomes.1) {
        match outcome? {
            Kept::Missing => missing.push(task.rel.clone()),
            Kept::Linked(entry) => {
                counts.bytes_linked += entry.size;
                counts.media_files += 1;
                entries.push(entry);
            }
            Kept::Copied(entry, matches) => {
                counts.bytes_new += entry.size;
                counts.media_files += 1;
                if !matches {
                    damaged.push(task.rel.clone());
                }
                entries.push(entry);
            }
        }
    }
    counts.bytes = entries.iter().map(|e| e.size).sum();
    for rel in missing.iter().chain(&damaged) {
        tracing::warn!(path = %rel, "{}", if missing.contains(rel) {
            "a completed item's file is missing from the media tree; the snapshot has no copy"
        } else {
            "a file's bytes differ from the SHA-256 recorded when it was stored; copied as it is"
        });
    }

    // Nothing was removed under us, everything is on disk; then, and only then, the manifest.
    lease.check()?;
    files::sync_filesystem(partial).map_err(|e| KeepError::io(partial, e))?;
    let manifest = Manifest {
        format: FORMAT.into(),
        format_version: FORMAT_VERSION,
        written_by: format!(
            "prsnl {} ({})",
            env!("CARGO_PKG_VERSION"),
            env!("PRSNL_GIT_COMMIT")
        ),
        created_at,
        database: DatabaseFacts {
            kind: match summary.backend {
                Backend::Sqlite => "sqlite",
                Backend::Postgres => "postgres",
            }
            .into(),
            schema_version: summary.schema_version,
            rows: summary.rows,
        },
        counts,
        previous: previous.map(|s| s.name.clone()),
        files: entries,
        missing_at_source: missing,
        damaged_at_source: damaged,
    };
    let text = serde_json::to_vec_pretty(&manifest)
        .map_err(|e| KeepError::Invalid(format!("cannot write the manifest: {e}")))?;
    let manifest_path = partial.join(MANIFEST);
    files::write_durable(&manifest_path, &text).map_err(|e| KeepError::io(&manifest_path, e))?;
    files::sync_dir(partial).map_err(|e| KeepError::io(partial, e))?;
    Ok(manifest)
}

/// One media file to keep.
struct Task {
    rel: String,
    /// None when the stored path is not a safe relative path (never copied).
    source: Option<PathBuf>,
    dest: PathBuf,
    /// The previous snapshot's copy and what its manifest says of it.
    earlier: Option<(PathBuf, FileEntry)>,
    /// The SHA-256 the database recorded when the file was stored.
    expected: Option<String>,
}

enum Kept {
    Missing,
    Linked(FileEntry),
    /// The entry, and whether its hash matched the recorded one (or none was recorded).
    Copied(FileEntry, bool),
}

fn keep_file(task: &Task) -> Result<Kept, KeepError> {
    let Some(source) = &task.source else {
        return Ok(Kept::Missing);
    };
    let meta = match std::fs::symlink_metadata(source) {
        Ok(meta) if meta.is_file() => meta,
        Ok(_) => return Ok(Kept::Missing),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Kept::Missing),
        Err(e) => return Err(KeepError::io(source, e)),
    };
    let path = format!("{MEDIA_DIR}/{}", task.rel);
    if let Some((earlier, entry)) = &task.earlier
        && entry.size == meta.len()
        && entry.mtime_ns == Some(files::mtime_ns(&meta))
        && files::link(earlier, &task.dest).is_ok()
    {
        return Ok(Kept::Linked(FileEntry {
            path,
            ..entry.clone()
        }));
    }
    match files::copy_hashed(source, &task.dest, READ_ONLY) {
        Ok(Facts {
            size,
            sha256,
            mtime_ns,
        }) => {
            let matches = task.expected.as_ref().is_none_or(|e| *e == sha256);
            Ok(Kept::Copied(
                FileEntry {
                    path,
                    size,
                    sha256,
                    mtime_ns: Some(mtime_ns),
                },
                matches,
            ))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Kept::Missing),
        Err(e) => Err(KeepError::io(source, e)),
    }
}
