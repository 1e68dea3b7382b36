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

mod apply;
mod place;
mod plan;
mod sidecar;
mod state;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use plan::Planned;
use state::ExportDir;

use super::KeepError;
use crate::db::items::{self, ListFilter};
use crate::db::{Db, renditions, users};
use crate::domain::ItemStatus;
use crate::domain::export_name::NamePattern;
use crate::storage::MediaRoot;

/// Items read from the database per query.
const PAGE: u32 = 500;

#[derive(Debug, Clone)]
pub struct ExportOptions {
    pub pattern: NamePattern,
    /// Independent copies instead of hard links.
    pub copy: bool,
    /// Only this user's items (a user id).
    pub owner: Option<String>,
    /// Export this selection even though the directory holds another one (whose files that
    /// this selection lacks are then removed).
    pub force: bool,
    /// Trees the export must neither enter nor contain, by the name the message gives them
    /// (media_root always; the backup directory): a file there is never the export's.
    pub keep_out: Vec<(String, PathBuf)>,
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
    /// Files the export wrote and someone changed since: left as they are, no longer its own.
    pub edited: Vec<String>,
    /// Files left alone because something not the export's is in the way, with the reason.
    pub conflicts: Vec<String>,
    /// Files that could not be written, with the error.
    pub failed: Vec<String>,
}

/// Brings `directory` up to date with the vault.
pub async fn export(
    db: &Db,
    media: &MediaRoot,
    directory: &Path,
    options: &ExportOptions,
) -> Result<ExportReport, KeepError> {
    let absolute = absolute(directory).map_err(|e| KeepError::io(directory, e))?;
    let media_root = ("media_root".to_string(), media.path().to_path_buf());
    for (name, tree) in options.keep_out.iter().chain([&media_root]) {
        let tree = self::absolute(tree).map_err(|e| KeepError::io(tree, e))?;
        if absolute.starts_with(&tree) || tree.starts_with(&absolute) {
            return Err(KeepError::Invalid(format!(
                "{} and {name} ({}) overlap: the export must be a folder of its own, neither \
                 inside {name} nor holding it",
                absolute.display(),
                tree.display()
            )));
        }
    }
    let dir = ExportDir::open(&absolute)?;
    let state = dir.load_state()?;
    let selection = match &options.owner {
        Some(user) => format!("user:{user}"),
        None => "all".to_string(),
    };
    if !state.files.is_empty() && state.selection != selection && !options.force {
        return Err(KeepError::NotEmpty(format!(
            "{} holds the export of {} (this one is of {}): a run would remove the files of \
             every item outside this selection. Use another directory, or --force.",
            dir.path.display(),
            describe(db, &state.selection).await,
            describe(db, &selection).await,
        )));
    }
    let (planned, items) = plan_all(db, media, options).await?;
    let copy = options.copy;
    tokio::task::spawn_blocking(move || {
        let mut report = apply::apply(&dir, &selection, state.files, &planned, copy)?;
        report.items = items;
        Ok(report)
    })
    .await
    .map_err(|e| KeepError::Invalid(format!("the export stopped: {e}")))?
}

/// A selection as people say it: "everyone's items" or "alice's items".
async fn describe(db: &Db, selection: &str) -> String {
    let Some(id) = selection.strip_prefix("user:") else {
        return "everyone's items".into();
    };
    let name = match crate::domain::people::UserId::parse(id) {
        Ok(id) => users::by_id(db, id).await.ok().flatten().map(|u| u.name),
        Err(_) => None,
    };
    match name {
        Some(name) => format!("{name}'s items"),
        None => "the items of a user who is gone".into(),
    }
}

/// `path` made absolute and resolved as far as it exists (it may not exist yet).
fn absolute(path: &Path) -> std::io::Result<PathBuf> {
    let path = std::path::absolute(path)?;
    let mut existing = path.as_path();
    let mut rest = Vec::new();
    loop {
        match std::fs::canonicalize(existing) {
            Ok(resolved) => {
                let mut full = resolved;
                full.extend(rest.iter().rev());
                return Ok(full);
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let (Some(parent), Some(name)) = (existing.parent(), existing.file_name()) else {
                    return Err(e);
                };
                rest.push(name.to_os_string());
                existing = parent;
            }
            Err(e) => return Err(e),
        }
    }
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
