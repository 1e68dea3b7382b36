//! The media tree on disk (BRIEF §3) and the file operations on it.
//!
//! Plain functions; the StorageActor is the only caller that moves files into the final tree
//! or deletes them there. Work directories under `temp/processing/` belong to the attempt
//! that created them.

pub mod import;
pub mod served;
pub mod space;
pub mod sweep;

use std::collections::HashSet;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::domain::layout::is_safe_relative_path;
use crate::domain::{ErrorCode, JobError, JobId};

/// The root of the media tree, absolute.
#[derive(Debug, Clone)]
pub struct MediaRoot {
    root: PathBuf,
}

/// Top-level folders of the tree.
const TREE: [&str; 7] = [
    "videos",
    "images",
    "thumbnails",
    "temp/processing",
    "temp/uploads",
    "temp/resume",
    "quarantine",
];

impl MediaRoot {
    /// Creates the tree under `root` if needed and checks that work files can be renamed into
    /// it (THREATS FS-02: a rename across filesystems would fail with EXDEV).
    pub fn open(root: &Path) -> io::Result<Self> {
        for dir in TREE {
            std::fs::create_dir_all(root.join(dir))?;
        }
        let root = std::fs::canonicalize(root)?;
        let media = Self { root };
        let root_dev = std::fs::metadata(&media.root)?.dev();
        for dir in ["videos", "images", "thumbnails", "temp/processing"] {
            if std::fs::metadata(media.root.join(dir))?.dev() != root_dev {
                return Err(io::Error::other(format!(
                    "{}/{dir} is on another filesystem than the media root; work files could \
                     not be renamed into place",
                    media.root.display()
                )));
            }
        }
        Ok(media)
    }

    pub fn path(&self) -> &Path {
        &self.root
    }

    /// The absolute path of a stored relative path; `None` for anything that could escape the
    /// tree (THREATS FS-05).
    pub fn resolve(&self, relative: &str) -> Option<PathBuf> {
        is_safe_relative_path(relative).then(|| self.root.join(relative))
    }

    pub fn processing_dir(&self) -> PathBuf {
        self.root.join("temp/processing")
    }

    /// Where the service keeps files it received (the bot's downloads) until their import
    /// job is finished for good.
    pub fn uploads_dir(&self) -> PathBuf {
        self.root.join("temp/uploads")
    }

    /// Where a direct download cut short waits for the job's next attempt to resume it.
    pub fn resume_slot(&self, job: JobId) -> PathBuf {
        self.root.join("temp/resume").join(format!("{job}.part"))
    }

    /// The work directory of one attempt of one job. Attempts never share a directory, so a
    /// zombie attempt cannot clobber its successor's files (THREATS DB-04).
    pub fn work_dir(&self, job: JobId, attempt: u32) -> PathBuf {
        self.processing_dir().join(format!("{job}-{attempt}"))
    }
}

/// Moves a finished work file to its final place, crash-consistently: the data is on disk
/// before the name appears, and the name is on disk before the caller marks the row completed
/// (THREATS FS-01).
pub fn finalize(source: &Path, dest: &Path) -> io::Result<()> {
    std::fs::File::open(source)?.sync_all()?;
    let parent = dest
        .parent()
        .ok_or_else(|| io::Error::other("destination has no parent directory"))?;
    std::fs::create_dir_all(parent)?;
    std::fs::rename(source, dest)?;
    std::fs::File::open(parent)?.sync_all()
}

/// Gives an attempt an empty work directory (removing what an earlier run left there).
pub async fn fresh_work_dir(dir: &Path) -> Result<(), JobError> {
    let dir = dir.to_path_buf();
    tokio::task::spawn_blocking(move || {
        remove_work_dir(&dir)?;
        std::fs::create_dir_all(&dir)
    })
    .await
    .map_err(|e| JobError::new(ErrorCode::Internal, e.to_string()))?
    .map_err(|e| io_job_error("cannot create the work directory", &e))
}

/// Removes a work directory and everything in it; a missing directory is fine. A tool that
/// was killed a moment ago may still create a file while the tree is removed (ENOTEMPTY), so
/// a few retries follow.
pub fn remove_work_dir(dir: &Path) -> io::Result<()> {
    let mut tries = 0;
    loop {
        match std::fs::remove_dir_all(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) if tries < 5 && e.kind() == io::ErrorKind::DirectoryNotEmpty => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            Err(e) => return Err(e),
        }
    }
}

/// Removes leftover work directories of earlier boots, except those of jobs still running
/// elsewhere (`keep`: job ids leased by other live instances sharing this media root).
/// Returns how many were removed.
pub fn sweep_processing(media: &MediaRoot, keep: &HashSet<String>) -> io::Result<usize> {
    let mut removed = 0;
    for entry in std::fs::read_dir(media.processing_dir())? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let job = name.rsplit_once('-').map_or(name.as_str(), |(job, _)| job);
        if keep.contains(job) {
            continue;
        }
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            remove_work_dir(&path)?;
        } else {
            std::fs::remove_file(&path)?;
        }
        removed += 1;
    }
    Ok(removed)
}

/// A file-system failure as a job error: a full disk is `disk_full` (retryable, and what an
/// operator must see), anything else an internal error with its context.
pub fn io_job_error(context: &str, e: &io::Error) -> JobError {
    if e.raw_os_error() == Some(nix::libc::ENOSPC) {
        JobError::new(ErrorCode::DiskFull, "media_root is full")
    } else {
        JobError::new(ErrorCode::Internal, format!("{context}: {e}"))
    }
}

/// Removes resume files of jobs that will not run again (`keep`: jobs still queued or
/// running). Returns how many were removed.
pub fn sweep_resume(media: &MediaRoot, keep: &HashSet<String>) -> io::Result<usize> {
    let mut removed = 0;
    for entry in std::fs::read_dir(media.root.join("temp/resume"))? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !keep.contains(name.trim_end_matches(".part")) {
            std::fs::remove_file(entry.path())?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// Total and available bytes of the filesystem holding `path`.
pub fn disk_space(path: &Path) -> io::Result<(u64, u64)> {
    let stat = nix::sys::statvfs::statvfs(path).map_err(io::Error::from)?;
    let block = stat.fragment_size();
    Ok((stat.blocks() * block, stat.blocks_available() * block))
}

/// Proves `dir` is writable by creating and removing a file in it (a name unique per call,
/// so concurrent checks do not remove each other's file).
pub fn check_writable(dir: &Path) -> io::Result<()> {
    let probe = dir.join(format!(
        ".prsnl-write-check-{}-{:016x}",
        std::process::id(),
        rand::random::<u64>()
    ));
    std::fs::write(&probe, b"ok")?;
    std::fs::remove_file(probe)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opening_creates_the_tree_and_resolves_only_safe_paths() {
        let dir = tempfile::tempdir().unwrap();
        let media = MediaRoot::open(&dir.path().join("media")).unwrap();
        for sub in TREE {
            assert!(media.path().join(sub).is_dir(), "{sub}");
        }
        assert!(media.resolve("videos/2026/01/x.mp4").is_some());
        assert!(media.resolve("../etc/passwd").is_none());
        assert!(media.resolve("/etc/passwd").is_none());
    }

    #[test]
    fn finalize_moves_the_file_and_creates_month_folders() {
        let dir = tempfile::tempdir().unwrap();
        let media = MediaRoot::open(dir.path()).unwrap();
        let work = media.work_dir(JobId::new(), 1);
        std::fs::create_dir_all(&work).unwrap();
        let src = work.join("v.mp4");
        std::fs::write(&src, b"video").unwrap();
        let dest = media.resolve("videos/2026/02/id.mp4").unwrap();
        finalize(&src, &dest).unwrap();
        assert!(!src.exists());
        assert_eq!(std::fs::read(&dest).unwrap(), b"video");
    }

    #[test]
    fn sweep_keeps_other_instances_work_and_removes_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let media = MediaRoot::open(dir.path()).unwrap();
        let (mine, theirs) = (JobId::new(), JobId::new());
        for job in [mine, theirs] {
            let work = media.work_dir(job, 2);
            std::fs::create_dir_all(&work).unwrap();
            std::fs::write(work.join("partial.mp4.part"), b"x").unwrap();
        }
        let keep = HashSet::from([theirs.to_string()]);
        assert_eq!(sweep_processing(&media, &keep).unwrap(), 1);
        assert!(!media.work_dir(mine, 2).exists());
        assert!(media.work_dir(theirs, 2).exists());
    }

    #[test]
    fn reports_disk_space_and_writability() {
        let dir = tempfile::tempdir().unwrap();
        let (total, free) = disk_space(dir.path()).unwrap();
        assert!(total > 0 && free <= total);
        check_writable(dir.path()).unwrap();
        assert!(check_writable(&dir.path().join("missing")).is_err());
    }
}
