//! Putting one planned file in place, touching the disk only when it differs from what is
//! there, and never replacing a file the export did not write.

use std::collections::HashSet;
use std::fs::{File, Metadata};
use std::io::Read;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::plan::{Content, Planned};
use super::state::{How, Recorded};

/// Linked files share the vault's inode, so this mode is the vault file's too: the export
/// must not be a way to change what the vault keeps.
const READ_ONLY: u32 = 0o444;
/// Sidecars and `--copy` copies belong to the person: tools may edit them.
const WRITABLE: u32 = 0o644;
/// A sidecar larger than this is certainly not one the export wrote.
const SIDECAR_MAX: u64 = 4 << 20;

#[derive(Debug, PartialEq, Eq)]
pub(super) enum Outcome {
    /// The file is in place; `changed` when this run wrote it.
    Done { how: How, changed: bool },
    /// The vault has no such file (the item was deleted meanwhile, or a thumbnail is lost).
    Missing,
    /// Left alone, with the reason.
    Conflict(String),
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

    pub(super) fn place(&mut self, planned: &Planned, recorded: Option<&Recorded>) -> Outcome {
        let target = self.root.join(&planned.rel);
        if let Err(e) = self.ensure_folders(&planned.rel) {
            return Outcome::Conflict(e);
        }
        let result = match &planned.content {
            Content::Media(source) => self.place_media(source, &target, recorded.is_some()),
            Content::Text(text) => place_text(text, &target, recorded.is_some()),
        };
        result.unwrap_or_else(|e| Outcome::Conflict(e.to_string()))
    }

    /// Creates the folders of `rel` that are missing; refuses a symbolic link or a file where
    /// a folder belongs (the export never writes through a link someone put in its tree).
    fn ensure_folders(&mut self, rel: &str) -> Result<(), String> {
        let mut prefix = String::new();
        let folders: Vec<&str> = rel.split('/').collect();
        for folder in &folders[..folders.len() - 1] {
            if !prefix.is_empty() {
                prefix.push('/');
            }
            prefix.push_str(folder);
            if self.checked.contains(&prefix) {
                continue;
            }
            real_folder(self.root, &prefix, true)?;
            self.checked.insert(prefix.clone());
        }
        Ok(())
    }

    fn place_media(
        &self,
        source: &Path,
        target: &Path,
        recorded: bool,
    ) -> std::io::Result<Outcome> {
        let source_meta = match std::fs::symlink_metadata(source) {
            Ok(meta) if meta.is_file() => meta,
            Ok(_) => return Ok(Outcome::Missing),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Outcome::Missing),
            Err(e) => return Err(e),
        };
        let wanted = if self.copy { How::Copied } else { How::Linked };
        let existing = match std::fs::symlink_metadata(target) {
            Ok(meta) => Some(meta),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(e),
        };
        let Some(existing) = existing else {
            let how = self.put_media(source, &source_meta, target, None)?;
            return Ok(Outcome::Done { how, changed: true });
        };
        let same_inode = existing.dev() == source_meta.dev() && existing.ino() == source_meta.ino();
        let copy_of_it = !same_inode
            && existing.is_file()
            && existing.len() == source_meta.len()
            && existing.mtime() == source_meta.mtime()
            && existing.mtime_nsec() == source_meta.mtime_nsec();
        match (wanted, same_inode, copy_of_it) {
            (How::Linked, true, _) => {
                make_read_only(target, &existing)?;
                Ok(Outcome::Done {
                    how: How::Linked,
                    changed: false,
                })
            }
            (How::Copied, _, true) => Ok(Outcome::Done {
                how: How::Copied,
                changed: false,
            }),
            // A copy made earlier (or across filesystems) when links are wanted: a link
            // saves its space, where one can be made.
            (How::Linked, false, true) if !recorded => Ok(Outcome::Done {
                how: How::Copied,
                changed: false,
            }),
            // A link to the vault's file can only be the export's own (a run that died
            // before recording it), so it may be replaced; anything else is the person's.
            _ if !recorded && !same_inode => Ok(Outcome::Conflict(
                "a file prsnl did not write is in the way; move it to let the export write here"
                    .into(),
            )),
            _ => {
                let how = self.put_media(source, &source_meta, target, Some(&existing))?;
                let changed = !(how == How::Copied && copy_of_it);
                Ok(Outcome::Done { how, changed })
            }
        }
    }

    /// Links (or copies) `source` to `target`, replacing what is there in one rename.
    fn put_media(
        &self,
        source: &Path,
        source_meta: &Metadata,
        target: &Path,
        existing: Option<&Metadata>,
    ) -> std::io::Result<How> {
        let staging = staging_path(target);
        let _ = std::fs::remove_file(&staging);
        let mut how = How::Copied;
        if !self.copy {
            match std::fs::hard_link(source, &staging) {
                Ok(()) => {
                    how = How::Linked;
                    make_read_only(&staging, source_meta)?;
                }
                // Another filesystem: a copy, read-only like a link would be.
                Err(e) if e.raw_os_error() == Some(nix::libc::EXDEV) => {
                    if existing.is_some_and(Metadata::is_file) {
                        // Still the copy made before; nothing to gain from another.
                        return Ok(How::Copied);
                    }
                }
                Err(e) => return Err(e),
            }
        }
        if how == How::Copied {
            let mode = if self.copy { WRITABLE } else { READ_ONLY };
            if let Err(e) = copy_with_time(source, source_meta, &staging, mode) {
                let _ = std::fs::remove_file(&staging);
                return Err(e);
            }
        }
        std::fs::rename(&staging, target)?;
        Ok(how)
    }
}

fn place_text(text: &str, target: &Path, recorded: bool) -> std::io::Result<Outcome> {
    match std::fs::symlink_metadata(target) {
        Ok(meta) => {
            if meta.is_file() && meta.len() == text.len() as u64 && meta.len() <= SIDECAR_MAX {
                let mut existing = Vec::with_capacity(text.len());
                File::open(target)?.read_to_end(&mut existing)?;
                if existing == text.as_bytes() {
                    return Ok(Outcome::Done {
                        how: How::Written,
                        changed: false,
                    });
                }
            }
            if !recorded {
                return Ok(Outcome::Conflict(
                    "a file prsnl did not write is in the way; move it to let the export \
                     write here"
                        .into(),
                ));
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let staging = staging_path(target);
    let _ = std::fs::remove_file(&staging);
    std::fs::write(&staging, text)?;
    std::fs::set_permissions(&staging, std::fs::Permissions::from_mode(WRITABLE))?;
    std::fs::rename(&staging, target)?;
    Ok(Outcome::Done {
        how: How::Written,
        changed: true,
    })
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
                std::fs::create_dir(&path)
                    .or_else(|e| {
                        if e.kind() == std::io::ErrorKind::AlreadyExists {
                            Ok(())
                        } else {
                            Err(e)
                        }
                    })
                    .map_err(|e| format!("{}: {e}", path.display()))?;
            }
            Err(e) => return Err(format!("{}: {e}", path.display())),
        }
    }
    Ok(true)
}

/// Where a file is prepared before it is renamed over `target` (same folder, hidden).
fn staging_path(target: &Path) -> PathBuf {
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    target.with_file_name(format!(".{name}.prsnl-tmp"))
}

fn make_read_only(path: &Path, meta: &Metadata) -> std::io::Result<()> {
    if meta.mode() & 0o222 != 0 {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(READ_ONLY))?;
    }
    Ok(())
}

/// A copy with the source's modification time (how a later run knows it for a copy of it).
fn copy_with_time(
    source: &Path,
    source_meta: &Metadata,
    dest: &Path,
    mode: u32,
) -> std::io::Result<()> {
    std::fs::copy(source, dest)?;
    std::fs::set_permissions(dest, std::fs::Permissions::from_mode(WRITABLE))?;
    File::options()
        .write(true)
        .open(dest)?
        .set_modified(source_meta.modified()?)?;
    std::fs::set_permissions(dest, std::fs::Permissions::from_mode(mode))
}
