//! Putting one planned file in place: touching the disk only when it differs from what is
//! there, never replacing a file the export did not write or that was changed since, and
//! never writing through a symbolic link someone put in the tree.

use std::collections::HashSet;
use std::fs::{File, Metadata, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::plan::{Content, Planned};
use super::state::{Facts, How, Recorded};
use crate::keeping::files::open_plain;

/// A sidecar larger than this is certainly not one the export wrote.
const SIDECAR_MAX: u64 = 4 << 20;
/// A copy whose time is within this of the vault file's is taken for a copy of it: FAT32
/// keeps times to 2 s, exFAT and SMB shares round them too.
const COPY_TIME_SLACK_NS: i64 = 2_000_000_000;

#[derive(Debug, PartialEq, Eq)]
pub(super) enum Outcome {
    /// The file is in place (`changed` when this run wrote it), as recorded.
    Done { record: Recorded, changed: bool },
    /// The vault has no usable file for it (the item was deleted meanwhile, a thumbnail is
    /// lost, or a stored path is unusable).
    Missing,
    /// A file the export wrote was changed since (by a person or a tool): it is theirs now.
    Edited,
    /// A file found changed by an earlier run, still there: left alone without a word.
    Theirs,
    /// A file the export never wrote is where it would write.
    Conflict(String),
    /// Writing failed (a full disk, permissions).
    Failed(String),
}

/// Places files under one export directory; remembers the folders it has checked.
pub(super) struct Placer<'a> {
    pub root: &'a Path,
    /// Independent copies instead of hard links.
    pub copy: bool,
    checked: HashSet<String>,
}

impl<'a> Placer<'a> {
    pub(super) fn new(root: &'a Path, copy: bool) -> Self {
        Self {
            root,
            copy,
            checked: HashSet::new(),
        }
    }

    pub(super) fn place(
        &mut self,
        item: &str,
        planned: &Planned,
        recorded: Option<&Recorded>,
    ) -> Outcome {
        if let Content::Media(None) = planned.content {
            return Outcome::Missing;
        }
        if let Content::Media(Some(source)) = &planned.content
            && !std::fs::symlink_metadata(source).is_ok_and(|m| m.is_file())
        {
            return Outcome::Missing;
        }
        if let Err(e) = self.ensure_folders(&planned.rel) {
            return Outcome::Conflict(e);
        }
        let target = self.root.join(&planned.rel);
        let existing = match std::fs::symlink_metadata(&target) {
            Ok(meta) => Some(meta),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Outcome::Failed(e.to_string()),
        };
        // Once someone's, always theirs while it is there; gone, the export writes it again.
        let recorded = match recorded {
            Some(r) if r.theirs && existing.is_some() => return Outcome::Theirs,
            Some(r) if r.theirs => None,
            other => other,
        };
        let result = match &planned.content {
            Content::Media(Some(source)) => {
                self.place_media(item, source, &target, existing.as_ref(), recorded)
            }
            Content::Media(None) => return Outcome::Missing,
            Content::Text(text) => place_text(item, text, &target, existing.as_ref(), recorded),
        };
        result.unwrap_or_else(|e| Outcome::Failed(e.to_string()))
    }

    /// Creates the folders of `rel` that are missing; refuses a symbolic link or a file where
    /// a folder belongs.
    fn ensure_folders(&mut self, rel: &str) -> Result<(), String> {
        let Some((folders, _)) = rel.rsplit_once('/') else {
            return Ok(());
        };
        if self.checked.contains(folders) {
            return Ok(());
        }
        real_folder(self.root, folders, true)?;
        self.checked.insert(folders.to_string());
        Ok(())
    }

    fn place_media(
        &self,
        item: &str,
        source: &Path,
        target: &Path,
        existing: Option<&Metadata>,
        recorded: Option<&Recorded>,
    ) -> std::io::Result<Outcome> {
        let source_meta = std::fs::symlink_metadata(source)?;
        let from = Facts::of(&source_meta);
        let done = |how, changed| placed(item, target, how, Some(from), changed);
        let Some(existing) = existing else {
            let how = self.put_media(source, &source_meta, target, false)?;
            return done(how, true);
        };
        let linked = existing.dev() == source_meta.dev() && existing.ino() == source_meta.ino();
        if linked {
            // A link to the vault's file can only be the export's own.
            if self.copy {
                let how = self.put_media(source, &source_meta, target, false)?;
                return done(how, true);
            }
            keep_read_only(target, existing)?;
            return done(How::Linked, false);
        }
        let Some(recorded) = recorded else {
            let copy_of_it = existing.is_file()
                && existing.len() == source_meta.len()
                && (Facts::of(existing).mtime_ns - from.mtime_ns).abs() <= COPY_TIME_SLACK_NS;
            return if copy_of_it {
                done(How::Copied, false)
            } else {
                Ok(Outcome::Conflict(IN_THE_WAY.into()))
            };
        };
        if !recorded.is_ours(existing) {
            return Ok(Outcome::Edited);
        }
        let current_copy = recorded.how == How::Copied && recorded.from == Some(from);
        if current_copy && self.copy {
            return done(How::Copied, false);
        }
        // A stale copy is made again; a current one becomes a link where one can be made.
        let how = self.put_media(source, &source_meta, target, current_copy)?;
        done(how, how != How::Copied || !current_copy)
    }

    /// Links (or copies) `source` to `target`, replacing what is there in one rename.
    /// `keep_copy`: when no link can be made, the copy already there is current.
    fn put_media(
        &self,
        source: &Path,
        source_meta: &Metadata,
        target: &Path,
        keep_copy: bool,
    ) -> std::io::Result<How> {
        let staging = staging_path(target);
        remove_if_present(&staging)?;
        if !self.copy {
            match std::fs::hard_link(source, &staging) {
                Ok(()) => {
                    let placed = keep_read_only(&staging, source_meta)
                        .and_then(|()| std::fs::rename(&staging, target));
                    if placed.is_err() {
                        let _ = std::fs::remove_file(&staging);
                    }
                    return placed.map(|()| How::Linked);
                }
                // Another filesystem, or links to others' files refused
                // (fs.protected_hardlinks): a copy, read-only as a link would be.
                Err(e) if matches!(e.raw_os_error(), Some(nix::libc::EXDEV | nix::libc::EPERM)) => {
                    if keep_copy {
                        return Ok(How::Copied);
                    }
                }
                Err(e) => return Err(e),
            }
        }
        let mode = if self.copy {
            (source_meta.mode() & 0o666) | 0o200
        } else {
            source_meta.mode() & 0o444
        };
        let placed = copy_with_time(source, source_meta, &staging, mode)
            .and_then(|()| std::fs::rename(&staging, target));
        if placed.is_err() {
            let _ = std::fs::remove_file(&staging);
        }
        placed.map(|()| How::Copied)
    }
}

/// The outcome of a file now in place at `target`, recorded with its facts as they are.
fn placed(
    item: &str,
    target: &Path,
    how: How,
    from: Option<Facts>,
    changed: bool,
) -> std::io::Result<Outcome> {
    Ok(Outcome::Done {
        record: Recorded {
            item: item.to_string(),
            how,
            placed: Some(Facts::of(&std::fs::symlink_metadata(target)?)),
            from,
            theirs: false,
        },
        changed,
    })
}

const IN_THE_WAY: &str =
    "a file prsnl did not write is in the way; move it to let the export write here";

fn place_text(
    item: &str,
    text: &str,
    target: &Path,
    existing: Option<&Metadata>,
    recorded: Option<&Recorded>,
) -> std::io::Result<Outcome> {
    let done = |changed| placed(item, target, How::Written, None, changed);
    if let Some(existing) = existing {
        if existing.is_file()
            && existing.len() == text.len() as u64
            && existing.len() <= SIDECAR_MAX
        {
            let mut bytes = Vec::with_capacity(text.len());
            open_plain(target)?.read_to_end(&mut bytes)?;
            if bytes == text.as_bytes() {
                return done(false);
            }
        }
        match recorded {
            None => return Ok(Outcome::Conflict(IN_THE_WAY.into())),
            Some(recorded) if !recorded.is_ours(existing) => return Ok(Outcome::Edited),
            Some(_) => {}
        }
    }
    let staging = staging_path(target);
    remove_if_present(&staging)?;
    let written = (|| {
        let mut file = new_file(&staging, 0o666)?;
        file.write_all(text.as_bytes())?;
        // Flushed before the rename: after a power cut the record must not name a file
        // that came back empty (it would look edited, and be left alone for good).
        file.sync_all()?;
        std::fs::rename(&staging, target)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&staging);
    }
    written?;
    done(true)
}

/// Whether `rel` (a folder under `root`) is a real folder, each of its parts too: `Ok(false)`
/// when a part is missing. With `create`, missing parts are made.
pub(super) fn real_folder(root: &Path, rel: &str, create: bool) -> Result<bool, String> {
    let mut path = root.to_path_buf();
    for part in rel.split('/') {
        path.push(part);
        match std::fs::symlink_metadata(&path) {
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => {
                return Err(format!(
                    "{} is in the way: a folder belongs there",
                    path.display()
                ));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !create => return Ok(false),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                match std::fs::create_dir(&path) {
                    Ok(()) => {}
                    // Made meanwhile: checked again below, on the next run of the loop.
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                        return real_folder(root, rel, create);
                    }
                    Err(e) => return Err(format!("{}: {e}", path.display())),
                }
            }
            Err(e) => return Err(format!("{}: {e}", path.display())),
        }
    }
    Ok(true)
}

/// Where a file is prepared before it is renamed over `target` (same folder, hidden).
pub(super) fn staging_path(target: &Path) -> PathBuf {
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    target.with_file_name(format!(".{name}{STAGING_SUFFIX}"))
}

pub(super) const STAGING_SUFFIX: &str = ".prsnl-tmp";

fn remove_if_present(path: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Clears the write bits, and only them (a vault file private to its owner stays private).
fn keep_read_only(path: &Path, meta: &Metadata) -> std::io::Result<()> {
    let mode = meta.mode() & 0o7777;
    if mode & 0o222 != 0 {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode & !0o222))?;
    }
    Ok(())
}

/// A new file, never through a symbolic link, never over an existing file.
fn new_file(path: &Path, mode: u32) -> std::io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .open(path)
}

/// A flushed copy with the source's modification time and `mode`.
fn copy_with_time(
    source: &Path,
    source_meta: &Metadata,
    dest: &Path,
    mode: u32,
) -> std::io::Result<()> {
    let mut from = open_plain(source)?;
    let mut to = new_file(dest, 0o600)?;
    std::io::copy(&mut from, &mut to)?;
    to.set_modified(source_meta.modified()?)?;
    to.sync_all()?;
    to.set_permissions(std::fs::Permissions::from_mode(mode))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(rel: &str, body: &str) -> Planned {
        Planned {
            rel: rel.into(),
            content: Content::Text(body.into()),
        }
    }

    fn record(outcome: Outcome) -> Recorded {
        match outcome {
            Outcome::Done { record, .. } => record,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_sidecar_is_rewritten_only_while_it_is_as_the_export_left_it() {
        let dir = tempfile::tempdir().unwrap();
        let mut placer = Placer::new(dir.path(), false);
        let first = record(placer.place("i", &text("a/x.nfo", "one"), None));
        assert_eq!(
            placer.place("i", &text("a/x.nfo", "one"), Some(&first)),
            Outcome::Done {
                record: first.clone(),
                changed: false
            }
        );
        let second = record(placer.place("i", &text("a/x.nfo", "two"), Some(&first)));
        assert_eq!(
            std::fs::read_to_string(dir.path().join("a/x.nfo")).unwrap(),
            "two"
        );
        std::fs::write(dir.path().join("a/x.nfo"), "a tool's own").unwrap();
        assert_eq!(
            placer.place("i", &text("a/x.nfo", "three"), Some(&second)),
            Outcome::Edited
        );
        assert_eq!(
            std::fs::read_to_string(dir.path().join("a/x.nfo")).unwrap(),
            "a tool's own"
        );
        std::fs::write(dir.path().join("a/y.nfo"), "someone's").unwrap();
        assert!(matches!(
            placer.place("i", &text("a/y.nfo", "ours"), None),
            Outcome::Conflict(_)
        ));
    }

    #[test]
    fn links_planted_in_the_tree_are_never_written_through() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path(), dir.path().join("a")).unwrap();
        let mut placer = Placer::new(dir.path(), false);
        assert!(matches!(
            placer.place("i", &text("a/x.nfo", "x"), None),
            Outcome::Conflict(reason) if reason.contains("a folder belongs there")
        ));
        std::fs::create_dir(dir.path().join("b")).unwrap();
        let victim = outside.path().join("victim");
        std::fs::write(&victim, "keep").unwrap();
        // A staging name pointing elsewhere is replaced, not followed.
        std::os::unix::fs::symlink(&victim, staging_path(&dir.path().join("b/x.nfo"))).unwrap();
        record(placer.place("i", &text("b/x.nfo", "x"), None));
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep");
        assert!(std::fs::read_dir(outside.path()).unwrap().count() == 1);
    }

    #[test]
    fn media_links_are_read_only_without_widening_and_copies_follow_the_vault() {
        let vault = tempfile::tempdir().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let source = vault.path().join("v.mp4");
        std::fs::write(&source, "video").unwrap();
        std::fs::set_permissions(&source, std::fs::Permissions::from_mode(0o640)).unwrap();
        let planned = Planned {
            rel: "v.mp4".into(),
            content: Content::Media(Some(source.clone())),
        };
        let linked = record(Placer::new(dir.path(), false).place("i", &planned, None));
        assert_eq!(linked.how, How::Linked);
        let mode = std::fs::metadata(&source).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o440, "write bits cleared, nothing widened");
        // --copy turns the link into a copy, then leaves it be while the vault file stays.
        let mut copier = Placer::new(dir.path(), true);
        let copied = record(copier.place("i", &planned, Some(&linked)));
        assert_eq!(copied.how, How::Copied);
        assert_ne!(copied.placed.unwrap().ino, linked.placed.unwrap().ino);
        assert_eq!(
            copier.place("i", &planned, Some(&copied)),
            Outcome::Done {
                record: copied.clone(),
                changed: false
            }
        );
        // The person edits their copy: it is theirs now.
        let target = dir.path().join("v.mp4");
        std::fs::write(&target, "edited video").unwrap();
        assert_eq!(copier.place("i", &planned, Some(&copied)), Outcome::Edited);
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "edited video");
    }
}
