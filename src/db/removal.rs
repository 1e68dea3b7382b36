//! Taking things out: deleting an item (rows first, then the caller removes its files) and
//! cancelling its unfinished capture or import. Each is one write transaction.

use std::path::PathBuf;

use super::imports::owned_files_in;
use super::items::{self, Item};
use super::jobs;
use super::renditions::{self, Rendition};
use super::{Db, DbError, search, webhooks};
use crate::domain::layout::{FileKind, subtitle_path};
use crate::domain::webhook::WebhookEvent;
use crate::domain::{ItemId, ItemKind, ItemStatus, JobError, Timestamp};
use crate::faults::{FaultPoint, Faults};

/// What deleting an item removed from the database: the files that must go too.
#[derive(Debug, Clone)]
pub struct Deleted {
    pub item: Item,
    /// The item's renditions whose files no other item names (those stay).
    pub renditions: Vec<Rendition>,
    /// Renditions that were being made (no row yet) and that no other item's row names.
    pub making: Vec<String>,
    /// Another item shares the video and thumbnails (the same content, or the same video
    /// captured for another owner), so they stay.
    pub files_shared: bool,
    /// Files the service owns (uploads) that the item's import jobs named: nothing needs
    /// them any more.
    pub owned_uploads: Vec<PathBuf>,
}

impl Deleted {
    /// The stored files nothing needs any more: the renditions, and the item's own file and
    /// thumbnails unless an item of the same content still uses them.
    pub fn files(&self) -> Vec<(String, FileKind)> {
        let p = &self.item.paths;
        let mut files = if self.files_shared {
            Vec::new()
        } else {
            let own = match self.item.kind {
                ItemKind::Video => FileKind::Video,
                ItemKind::Image => FileKind::Image,
            };
            let mut own_files = vec![
                (p.file.clone(), own),
                (p.thumb_small.clone(), FileKind::Thumbnail),
                (p.thumb_medium.clone(), FileKind::Thumbnail),
                (p.thumb_large.clone(), FileKind::Thumbnail),
            ];
            own_files.extend(self.item.subtitles.iter().map(|sub| {
                (
                    subtitle_path(&p.file, sub.lang.as_str()),
                    FileKind::Subtitle,
                )
            }));
            own_files
        };
        files.extend(
            self.renditions
                .iter()
                .map(|r| (r.path.clone(), FileKind::Rendition)),
        );
        files.extend(
            self.making
                .iter()
                .map(|path| (path.clone(), FileKind::Rendition)),
        );
        files
    }
}

/// Deletes the item's rows (its jobs and renditions go with it). Rows go before files: a
/// crash in between leaves unreferenced files for the orphan sweep, never a row pointing at
/// missing media. `faults` lets a test hold the transaction before its commit.
///
/// `making`: renditions of the item being made right now (no row yet, perhaps a file soon);
/// they are in `Deleted::files` unless another item's row names the same file.
pub async fn delete_item(
    db: &Db,
    id: ItemId,
    making: Vec<String>,
    faults: &Faults,
    now: Timestamp,
) -> Result<Option<Deleted>, DbError> {
    let mut tx = db.begin_write().await?;
    let Some(item) = items::get_in(&mut tx, id).await? else {
        return Ok(None);
    };
    let renditions = renditions::for_item_in(&mut tx, id).await?;
    let owned_uploads = owned_files_in(&jobs::import_payloads_of(&mut tx, id).await?);
    // Everyone naming these files waits for this delete (PostgreSQL), so the last two sharers
    // deleted at once cannot each see the other and both keep the files.
    items::lock_sharing(&mut tx, &item.paths.file).await?;
    for rendition in &renditions {
        renditions::lock_naming(&mut tx, &rendition.path).await?;
    }
    items::delete_row(&mut tx, id).await?;
    search::remove_item(&mut tx, id).await?;
    webhooks::record(&mut tx, WebhookEvent::Deleted, &item, now).await?;
    // Counted after the row is gone: on PostgreSQL the delete waits for an adoption of this
    // item's files that holds its row (`twins`), and the count then sees the adopter.
    let sharers = items::sharers(&mut tx, &item.paths.file, id).await?;
    if sharers == 0 {
        search::remove_cues(&mut tx, &item.paths.file).await?;
    }
    let mut unshared = Vec::with_capacity(renditions.len());
    for rendition in renditions {
        if renditions::naming(&mut tx, &rendition.path).await? == 0 {
            unshared.push(rendition);
        }
    }
    let mut making_unnamed = Vec::with_capacity(making.len());
    for path in making {
        if renditions::naming(&mut tx, &path).await? == 0 {
            making_unnamed.push(path);
        }
    }
    faults.pass(FaultPoint::DeleteBeforeCommit).await;
    tx.commit().await?;
    Ok(Some(Deleted {
        item,
        renditions: unshared,
        making: making_unnamed,
        files_shared: sharers > 0,
        owned_uploads,
    }))
}

/// The files of `files` that no item but `except` (whose completion was refused) and no
/// rendition row names: what may go out of the tree again without taking anything from anyone.
pub async fn unnamed(
    db: &Db,
    files: Vec<(String, FileKind)>,
    except: ItemId,
) -> Result<Vec<(String, FileKind)>, DbError> {
    let mut tx = db.begin_write().await?;
    let mut unnamed = Vec::with_capacity(files.len());
    for (path, kind) in files {
        let named = match kind {
            FileKind::Rendition => renditions::naming(&mut tx, &path).await? > 0,
            _ => items::names_file(&mut tx, &path, except).await?,
        };
        if !named {
            unnamed.push((path, kind));
        }
    }
    tx.commit().await?;
    Ok(unnamed)
}

/// Cancels the item's unfinished capture or import (a running attempt anywhere loses its
/// lease: its completion will not hold) and marks the item cancelled. False when nothing was
/// left to cancel.
pub async fn cancel_item(
    db: &Db,
    item: ItemId,
    error: &JobError,
    now: Timestamp,
) -> Result<bool, DbError> {
    let mut tx = db.begin_write().await?;
    let cancelled = jobs::cancel_of_item(&mut tx, item, error, now).await?;
    if cancelled > 0 {
        items::mark_failed(&mut tx, item, ItemStatus::Cancelled, error, now).await?;
    }
    tx.commit().await?;
    Ok(cancelled > 0)
}

/// The owned files (uploads) that imports still waiting or running need: the sweep leaves
/// them alone.
pub async fn pending_owned_uploads(db: &Db) -> Result<Vec<PathBuf>, DbError> {
    Ok(owned_files_in(&jobs::pending_import_payloads(db).await?))
}
