//! File work for snapshots, on plain threads: copy while hashing (one read of every byte),
//! hash, hard-link, and the few threads that share it.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};

/// SHA-256 as backups compute it: ring's assembly, which on CPUs without SHA extensions
/// hashes about 2.5 times as fast as the portable code (`bench/backup`: a full backup was
/// bound by hashing).
pub(super) struct Sha256(ring::digest::Context);

impl Sha256 {
    pub(super) fn new() -> Self {
        Self(ring::digest::Context::new(&ring::digest::SHA256))
    }

    pub(super) fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    /// The digest in lowercase hex.
    pub(super) fn finish_hex(self) -> String {
        hex::encode(self.0.finish())
    }
}

/// Read in slices this large: few system calls, and the hash keeps up.
const CHUNK: usize = 1 << 20;
/// Copies and hashes run on this many threads at most (a home server's disk and cores).
const MAX_THREADS: usize = 4;

/// Snapshot files are read-only: nothing edits a backup in place.
pub(super) const READ_ONLY: u32 = 0o444;

/// A file's size, SHA-256 (hex) and modification time in ns since the epoch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Facts {
    pub size: u64,
    pub sha256: String,
    pub mtime_ns: i128,
}

/// Opens a file for reading without following a symbolic link.
pub(super) fn open_plain(path: &Path) -> std::io::Result<File> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .open(path)?;
    if !file.metadata()?.is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    Ok(file)
}

pub(super) fn mtime_ns(meta: &std::fs::Metadata) -> i128 {
    i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec())
}

/// Copies `source` to a new file `dest` (which must not exist) with `mode`, hashing the bytes
/// as they pass; the copy gets the source's modification time, as `cp -a` would.
pub(super) fn copy_hashed(source: &Path, dest: &Path, mode: u32) -> std::io::Result<Facts> {
    let mut from = open_plain(source)?;
    let meta = from.metadata()?;
    if let Some(parent) = dest.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let mut to = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(dest)?;
    let (size, sha256) = read_hashed(&mut from, |bytes| to.write_all(bytes))?;
    to.set_modified(meta.modified()?)?;
    Ok(Facts {
        size,
        sha256,
        mtime_ns: mtime_ns(&meta),
    })
}

/// Size and SHA-256 of a file.
pub(super) fn hash_file(path: &Path) -> std::io::Result<Facts> {
    let mut file = open_plain(path)?;
    let meta = file.metadata()?;
    let (size, sha256) = read_hashed(&mut file, |_| Ok(()))?;
    Ok(Facts {
        size,
        sha256,
        mtime_ns: mtime_ns(&meta),
    })
}

/// Reads `file` to its end in `CHUNK` slices, hashing each and handing it to `each`; answers
/// the size and the SHA-256 (hex).
fn read_hashed(
    file: &mut File,
    mut each: impl FnMut(&[u8]) -> std::io::Result<()>,
) -> std::io::Result<(u64, String)> {
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; CHUNK];
    let mut size = 0u64;
    loop {
        let n = match file.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buffer[..n]);
        each(&buffer[..n])?;
        size += n as u64;
    }
    Ok((size, hasher.finish_hex()))
}

/// A hard link `dest` to `existing`, parents created.
pub(super) fn link(existing: &Path, dest: &Path) -> std::io::Result<()> {
    if let Some(parent) = dest.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::hard_link(existing, dest)
}

/// Writes `bytes` to a new read-only file and flushes it to disk.
pub(super) fn write_durable(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(READ_ONLY)
        .open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// Flushes a directory's entries (after a rename or a new file in it).
pub(super) fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Flushes everything written to the filesystem holding `path`: one call for thousands of
/// files, instead of an fsync each.
pub(super) fn sync_filesystem(path: &Path) -> std::io::Result<()> {
    let dir = File::open(path)?;
    nix::unistd::syncfs(&dir).map_err(std::io::Error::from)
}

/// `work` applied to every item on a few threads; results in the items' order.
pub(super) fn in_parallel<T: Sync, R: Send>(items: &[T], work: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let threads = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .clamp(1, MAX_THREADS)
        .min(items.len().max(1));
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<R>>> = Mutex::new((0..items.len()).map(|_| None).collect());
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(item) = items.get(i) else { break };
                    let result = work(item);
                    results.lock().unwrap_or_else(PoisonError::into_inner)[i] = Some(result);
                }
            });
        }
    });
    results
        .into_inner()
        .unwrap_or_else(PoisonError::into_inner)
        .into_iter()
        .map(|r| r.expect("every item was worked on"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_copy_has_the_same_bytes_hash_and_time_and_is_read_only() {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("a.bin");
        let bytes: Vec<u8> = (0..3 * CHUNK + 17).map(|i| (i % 251) as u8).collect();
        std::fs::write(&source, &bytes).unwrap();
        let dest = dir.path().join("sub/dir/a.bin");
        let facts = copy_hashed(&source, &dest, READ_ONLY).unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), bytes);
        assert_eq!(facts.size, bytes.len() as u64);
        // Checked against the portable implementation the rest of the service uses.
        use sha2::Digest;
        assert_eq!(facts.sha256, hex::encode(sha2::Sha256::digest(&bytes)));
        assert_eq!(hash_file(&dest).unwrap(), facts);
        let meta = std::fs::metadata(&dest).unwrap();
        assert_eq!(meta.mode() & 0o777, READ_ONLY);
        assert_eq!(
            mtime_ns(&meta),
            mtime_ns(&std::fs::metadata(&source).unwrap())
        );
        // The destination must be new.
        assert!(copy_hashed(&source, &dest, READ_ONLY).is_err());
    }

    #[test]
    fn symbolic_links_are_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("real"), b"x").unwrap();
        std::os::unix::fs::symlink(dir.path().join("real"), dir.path().join("link")).unwrap();
        assert!(hash_file(&dir.path().join("link")).is_err());
    }

    #[test]
    fn parallel_work_keeps_the_order() {
        let items: Vec<u32> = (0..100).collect();
        assert_eq!(
            in_parallel(&items, |i| i * 2),
            (0..100).map(|i| i * 2).collect::<Vec<_>>()
        );
        assert!(in_parallel(&[] as &[u32], |i| *i).is_empty());
    }
}
