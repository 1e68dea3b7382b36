//! `prsnl export`: a copy of the vault that needs no app to read — folders and names people
//! understand, each item with its metadata beside it.
//!
//! ```text
//! <export directory>/
//! ├── .prsnl-export.json                     what the export wrote (state.rs)
//! └── YouTube/2026-11-30 A talk [<id>].mp4   the name pattern's (domain::export_name)
//!     YouTube/2026-11-30 A talk [<id>] - 480p.mp4, …-thumb.jpg, ….info.json, ….nfo
//! ```
//!
//! A run makes the directory match the vault's completed items (one user's with `--user`):
//! new ones are added, changed sidecars rewritten, the files of deleted items removed —
//! only files the export recorded as its own. Media files are hard links to the vault's
//! (read-only, so no tool can change the vault through them) or, on another filesystem or
//! with `--copy`, copies. The database is read, never written; media_root is never written
//! but for the read-only bit of linked files.

mod place;
mod plan;
mod sidecar;
mod state;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use place::{Outcome, Placer};
use plan::Planned;
use state::{ExportDir, How, Recorded};

use super::KeepError;
use crate::db::items::{self, ListFilter};
use crate::db::{Db, renditions, users};
use crate::domain::ItemStatus;
use crate::domain::export_name::NamePattern;
use crate::storage::MediaRoot;

/// Items read from the database per query.
const PAGE: u32 = 500;
/// The record is saved after this many new files, so a run that dies leaves little unrecorded.
const CHECKPOINT_EVERY: usize = 2000;

#[derive(Debug, Clone)]
pub struct ExportOptions {
    pub pattern: NamePattern,
    /// Independent copies instead of hard links.
    pub copy: bool,
    /// Only this user's items (a user id).
    pub owner: Option<String>,
}

#[derive(Debug, Default)]
pub struct ExportReport {
    pub directory: PathBuf,
    pub items: u64,
    pub linked: u64,
    pub copied: u64,
    pub written: u64,
    pub unchanged: u64,
    pub removed: u64,
    /// Files the vault should hold but does not (relative export paths).
    pub missing: Vec<String>,
    /// Files left alone, with the reason.
    pub conflicts: Vec<String>,
}

/// Brings `directory` up to date with the vault.
pub async fn export(
    db: &Db,
    media: &MediaRoot,
    directory: &Path,
    options: &ExportOptions,
) -> Result<ExportReport, KeepError> {
    let dir = ExportDir::open(directory)?;
    if dir.path.starts_with(media.path()) {
        return Err(KeepError::Invalid(format!(
            "{} is inside media_root ({}): the vault's sweep would take the export for orphans",
            dir.path.display(),
            media.path().display()
        )));
    }
    let state = dir.load_state()?;
    let (planned, items) = plan_all(db, media, options).await?;
    let copy = options.copy;
    tokio::task::spawn_blocking(move || {
        let mut report = apply(&dir, state.files, &planned, copy)?;
        report.items = items;
        Ok(report)
    })
    .await
    .map_err(|e| KeepError::Invalid(format!("the export stopped: {e}")))?
}

/// Every file of every exported item, and how many items there are.
async fn plan_all(
    db: &Db,
    media: &MediaRoot,
    options: &ExportOptions,
) -> Result<(Vec<(String, Planned)>, u64), KeepError> {
    let names: HashMap<String, String> = users::list(db)
        .await?
        .into_iter()
        .map(|u| (u.id.to_string(), u.name))
        .collect();
    let mut planned = Vec::new();
    let mut count = 0;
    let mut filter = ListFilter {
        status: Some(ItemStatus::Completed),
        owner: options.owner.clone(),
        limit: PAGE,
        ..ListFilter::default()
    };
    loop {
        let page = items::list(db, &filter).await?;
        let Some(last) = page.last() else { break };
        filter.before = Some(last.id);
        for item in &page {
            let renditions = renditions::for_item(db, item.id).await?;
            let owner = item.owner.as_ref().and_then(|id| names.get(id));
            let files = plan::plan_item(
                item,
                &renditions,
                owner.map(String::as_str),
                &options.pattern,
                media,
            );
            count += u64::from(!files.is_empty());
            let id = item.id.to_string();
            planned.extend(files.into_iter().map(|p| (id.clone(), p)));
        }
    }
    Ok((planned, count))
}

/// Places every planned file, removes the recorded files no longer planned, and saves the
/// record.
fn apply(
    dir: &ExportDir,
    old: BTreeMap<String, Recorded>,
    planned: &[(String, Planned)],
    copy: bool,
) -> Result<ExportReport, KeepError> {
    let mut report = ExportReport {
        directory: dir.path.clone(),
        ..ExportReport::default()
    };
    let mut placer = Placer::new(&dir.path, copy);
    let mut now: BTreeMap<String, Recorded> = BTreeMap::new();
    let mut since_checkpoint = 0;
    for (item, file) in planned {
        let recorded = old.get(&file.rel);
        match placer.place(file, recorded) {
            Outcome::Done { how, changed } => {
                let counter = match (changed, how) {
                    (false, _) => &mut report.unchanged,
                    (true, How::Linked) => &mut report.linked,
                    (true, How::Copied) => &mut report.copied,
                    (true, How::Written) => &mut report.written,
                };
                *counter += 1;
                since_checkpoint += usize::from(changed);
                now.insert(
                    file.rel.clone(),
                    Recorded {
                        item: item.clone(),
                        how,
                    },
                );
            }
            Outcome::Missing => {
                report.missing.push(file.rel.clone());
                // What the export holds of a lost vault file stays, and stays recorded.
                if let Some(recorded) = recorded {
                    now.insert(file.rel.clone(), recorded.clone());
                }
            }
            Outcome::Conflict(reason) => {
                report.conflicts.push(format!("{}: {reason}", file.rel));
                if let Some(recorded) = recorded {
                    now.insert(file.rel.clone(), recorded.clone());
                }
            }
        }
        if since_checkpoint >= CHECKPOINT_EVERY {
            // Until the run ends, the old record's files stay listed too: they may still
            // have to be removed.
            let mut union = old.clone();
            union.extend(now.iter().map(|(k, v)| (k.clone(), v.clone())));
            dir.save_state(&union)?;
            since_checkpoint = 0;
        }
    }
    let planned_paths: BTreeSet<&str> = planned.iter().map(|(_, p)| p.rel.as_str()).collect();
    for (rel, recorded) in &old {
        if planned_paths.contains(rel.as_str()) {
            continue;
        }
        match remove_recorded(&dir.path, rel) {
            Ok(true) => report.removed += 1,
            Ok(false) => {}
            Err(reason) => {
                report.conflicts.push(format!("{rel}: {reason}"));
                now.insert(rel.clone(), recorded.clone());
            }
        }
    }
    dir.save_state(&now)?;
    Ok(report)
}

/// Removes a file the export wrote, then the folders it leaves empty. `Ok(false)`: it was
/// already gone. A path from the record is checked like any input: it must stay inside the
/// directory and not pass through a link.
fn remove_recorded(root: &Path, rel: &str) -> Result<bool, String> {
    let inside = !rel.starts_with('/')
        && rel
            .split('/')
            .all(|part| !part.is_empty() && part != "." && part != ".." && !part.contains('\0'));
    if !inside {
        return Err("not a path inside the export; left alone".into());
    }
    let parent = rel.rsplit_once('/').map(|(p, _)| p);
    if let Some(parent) = parent
        && !place::real_folder(root, parent, false)?
    {
        return Ok(false);
    }
    let path = root.join(rel);
    match std::fs::symlink_metadata(&path) {
        Ok(meta) if meta.is_dir() => return Err("a folder is there now; left alone".into()),
        Ok(_) => std::fs::remove_file(&path).map_err(|e| e.to_string())?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e.to_string()),
    }
    let mut folder = parent.map(str::to_string);
    while let Some(current) = folder {
        // Only an empty folder can be removed; the first that is not ends the walk.
        if std::fs::remove_dir(root.join(&current)).is_err() {
            break;
        }
        folder = current.rsplit_once('/').map(|(p, _)| p.to_string());
    }
    Ok(true)
}
