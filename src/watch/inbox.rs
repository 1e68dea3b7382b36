//! The inbox folder on disk: its layout, safe opening of what was dropped in it, and moving
//! taken files out of the way.
//!
//! ```text
//! inbox/                       watch.dir: files are dropped here (top level only)
//! ├── processed/YYYY-MM-DD/    taken files (a link file with refused lines gets a note)
//! └── failed/                  refused files, each with `<name>.error.txt` saying why
//! ```
//!
//! Nothing here follows a symbolic link or opens a FIFO or device in a way that could block:
//! entries are examined with `lstat`, and opened with `O_NOFOLLOW | O_NONBLOCK` and checked
//! again on the open descriptor.

use std::ffi::{OsStr, OsString};
use std::fs::{File, Metadata};
use std::io::{self, Read, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use super::settle::Observation;

pub const PROCESSED: &str = "processed";
pub const FAILED: &str = "failed";

/// Who a file is: the import key is built from it, so a file seen again (a rescan, a restart
/// in the middle of its import) is recognised, while a new file under an old name is not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileIdentity {
    pub device: u64,
    pub inode: u64,
    pub size: u64,
    pub mtime_ns: i128,
}

impl FileIdentity {
    fn of(meta: &Metadata) -> Self {
        Self {
            device: meta.dev(),
            inode: meta.ino(),
            size: meta.size(),
            mtime_ns: mtime_ns(meta),
        }
    }

    pub fn key(&self) -> String {
        format!(
            "{:x}:{:x}:{}:{}",
            self.device, self.inode, self.size, self.mtime_ns
        )
    }
}

fn mtime_ns(meta: &Metadata) -> i128 {
    i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec())
}

/// Why an entry is refused without reading it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("a symbolic link: only regular files are taken (links could point anywhere)")]
    Symlink,
    #[error("a FIFO (named pipe): only regular files are taken")]
    Fifo,
    #[error("a device or socket: only regular files are taken")]
    Special,
    #[error("the file name is not valid UTF-8; rename the file and drop it again")]
    NameNotUtf8,
    #[error("{0}")]
    Io(String),
}

#[derive(Debug, Clone)]
pub struct Inbox {
    root: PathBuf,
}

impl Inbox {
    /// The inbox at `root`, created (with `processed/` and `failed/`) if missing. The root is
    /// kept canonical (absolute, links resolved): the file watcher reports events under the
    /// canonical path whatever it was given, and a relative root (the default `./data/inbox`)
    /// would match none of them, leaving every file to the periodic rescan.
    pub fn open(root: &Path) -> io::Result<Self> {
        for dir in [root.to_path_buf(), root.join(PROCESSED), root.join(FAILED)] {
            std::fs::create_dir_all(&dir)?;
        }
        Ok(Self {
            root: root.canonicalize()?,
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Everything at the top level that is not a directory (ours or the user's).
    pub fn entries(&self) -> io::Result<Vec<PathBuf>> {
        let mut found = Vec::new();
        for entry in std::fs::read_dir(&self.root)? {
            let entry = entry?;
            // `file_type` does not follow symlinks: a link to a directory is an entry to refuse.
            if !entry.file_type()?.is_dir() {
                found.push(entry.path());
            }
        }
        found.sort();
        Ok(found)
    }

    /// Whether `path` is directly in the inbox (events for subdirectories are not ours).
    pub fn holds(&self, path: &Path) -> bool {
        path.parent() == Some(self.root.as_path())
    }

    /// Where a taken file goes: `processed/<date>/<name>`, or a free variant of the name.
    pub fn processed_destination(&self, name: &OsStr, date: &str) -> PathBuf {
        free_name(&self.root.join(PROCESSED).join(date), name)
    }

    /// Moves a taken file to `destination` (whose folder is created).
    pub fn move_to(&self, from: &Path, destination: &Path) -> io::Result<()> {
        if let Some(dir) = destination.parent() {
            std::fs::create_dir_all(dir)?;
        }
        if destination.symlink_metadata().is_ok() {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{} already exists", destination.display()),
            ));
        }
        std::fs::rename(from, destination)
    }

    /// Moves a refused file to `failed/` with `<name>.error.txt` beside it. Returns where the
    /// file went.
    pub fn fail(&self, path: &Path, reason: &str) -> io::Result<PathBuf> {
        let name = path.file_name().unwrap_or(OsStr::new("unnamed"));
        let destination = free_name(&self.root.join(FAILED), name);
        write_note(&destination, reason)?;
        self.move_to(path, &destination)?;
        Ok(destination)
    }
}

/// Writes `<file>.error.txt` beside `file` (a note a person reads: one reason per line).
pub fn write_note(file: &Path, text: &str) -> io::Result<()> {
    let mut note_name = file.file_name().unwrap_or_default().to_os_string();
    note_name.push(".error.txt");
    let note = file.with_file_name(note_name);
    if let Some(dir) = note.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut out = File::create(&note)?;
    out.write_all(text.as_bytes())?;
    if !text.ends_with('\n') {
        out.write_all(b"\n")?;
    }
    out.sync_all()
}

/// `dir/name`, or `dir/<stem> (n).<ext>` with the first n that is free.
fn free_name(dir: &Path, name: &OsStr) -> PathBuf {
    let first = dir.join(name);
    if first.symlink_metadata().is_err() {
        return first;
    }
    let as_path = Path::new(name);
    let stem = as_path.file_stem().unwrap_or(name);
    let ext = as_path.extension();
    (1u32..)
        .map(|n| {
            let mut candidate = OsString::from(stem);
            candidate.push(format!(" ({n})"));
            if let Some(ext) = ext {
                candidate.push(".");
                candidate.push(ext);
            }
            dir.join(candidate)
        })
        .find(|p| p.symlink_metadata().is_err())
        .expect("some name is free")
}

/// What `lstat` says about `path` now, for the settle rule; `None` when it is gone.
pub fn observe(path: &Path) -> Option<Observation> {
    let meta = path.symlink_metadata().ok()?;
    Some(Observation {
        size: meta.size(),
        mtime_ns: mtime_ns(&meta),
    })
}

/// Opens a regular file for reading, refusing anything else without blocking on it.
pub fn open_regular(path: &Path) -> Result<(File, FileIdentity), Refusal> {
    let meta = path
        .symlink_metadata()
        .map_err(|e| Refusal::Io(e.to_string()))?;
    refuse_special(&meta)?;
    if path.file_name().and_then(OsStr::to_str).is_none() {
        return Err(Refusal::NameNotUtf8);
    }
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| Refusal::Io(format!("cannot open it: {e}")))?;
    // It may have been swapped for something else between the lstat and the open.
    let meta = file.metadata().map_err(|e| Refusal::Io(e.to_string()))?;
    refuse_special(&meta)?;
    Ok((file, FileIdentity::of(&meta)))
}

fn refuse_special(meta: &Metadata) -> Result<(), Refusal> {
    let kind = meta.file_type();
    if kind.is_symlink() {
        Err(Refusal::Symlink)
    } else if kind.is_fifo() {
        Err(Refusal::Fifo)
    } else if kind.is_file() {
        Ok(())
    } else {
        Err(Refusal::Special)
    }
}

/// Reads at most `limit` bytes; `None` when the file holds more.
pub fn read_bounded(file: &mut File, limit: u64) -> io::Result<Option<Vec<u8>>> {
    let mut bytes = Vec::new();
    file.take(limit + 1).read_to_end(&mut bytes)?;
    Ok((bytes.len() as u64 <= limit).then_some(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn special_entries_are_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("pipe.mp4");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
        assert_eq!(open_regular(&fifo).unwrap_err(), Refusal::Fifo);

        let target = dir.path().join("real.mp4");
        std::fs::write(&target, b"data").unwrap();
        let link = dir.path().join("link.mp4");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert_eq!(open_regular(&link).unwrap_err(), Refusal::Symlink);

        assert_eq!(
            open_regular(Path::new("/dev/null")).unwrap_err(),
            Refusal::Special
        );

        let (_, identity) = open_regular(&target).unwrap();
        assert_eq!(identity.size, 4);
    }

    #[test]
    fn refused_files_move_to_failed_with_a_note_and_names_never_collide() {
        let dir = tempfile::tempdir().unwrap();
        let inbox = Inbox::open(dir.path()).unwrap();
        for round in 0..2 {
            let path = dir.path().join("clip.mp4");
            std::fs::write(&path, format!("round {round}")).unwrap();
            let moved = inbox.fail(&path, "not a video").unwrap();
            assert!(!path.exists());
            assert!(moved.exists());
            let note = std::fs::read_to_string(format!("{}.error.txt", moved.display())).unwrap();
            assert_eq!(note, "not a video\n");
        }
        assert!(dir.path().join("failed/clip.mp4").exists());
        assert!(dir.path().join("failed/clip (1).mp4").exists());
        assert_eq!(inbox.entries().unwrap(), Vec::<PathBuf>::new());
    }

    #[test]
    fn a_link_file_over_the_limit_is_told_apart() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("links.txt");
        std::fs::write(&path, vec![b'a'; 10]).unwrap();
        let (mut file, _) = open_regular(&path).unwrap();
        assert_eq!(
            read_bounded(&mut file, 10).unwrap().map(|b| b.len()),
            Some(10)
        );
        let (mut file, _) = open_regular(&path).unwrap();
        assert_eq!(read_bounded(&mut file, 9).unwrap(), None);
    }
}
