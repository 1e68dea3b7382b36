//! The free-space floor (`storage.min_free_mb`): below it the service takes nothing new.
//!
//! Read with statvfs where it matters (every submission, every claim, an attempt that ran out
//! of space), never cached: space comes back when someone deletes something, and the service
//! must notice by itself.

use std::io;
use std::path::Path;

use super::disk_space;
use crate::domain::{ErrorCode, JobError};

/// The floor under media_root's free space.
#[derive(Debug, Clone, Copy)]
pub struct SpaceFloor {
    pub min_free_bytes: u64,
}

impl SpaceFloor {
    pub fn of_mib(min_free_mb: u64) -> Self {
        Self {
            min_free_bytes: min_free_mb.saturating_mul(1024 * 1024),
        }
    }

    /// Refuses new work with `insufficient_storage` when `media_root` is below the floor. A
    /// filesystem that cannot be read is not called full: the write will say what is wrong.
    pub fn admit(&self, media_root: &Path) -> Result<(), JobError> {
        match disk_space(media_root) {
            Ok((_, free)) if free < self.min_free_bytes => Err(self.refusal(free)),
            _ => Ok(()),
        }
    }

    /// Whether `media_root` would be below the floor even if `own_bytes` (an attempt's own
    /// files, about to be removed) were freed: the space is taken by something else, so the
    /// attempt is not to blame.
    pub fn below_without(&self, media_root: &Path, own_bytes: u64) -> io::Result<bool> {
        let (_, free) = disk_space(media_root)?;
        Ok(free.saturating_add(own_bytes) < self.min_free_bytes)
    }

    pub fn is_below(&self, media_root: &Path) -> io::Result<bool> {
        self.below_without(media_root, 0)
    }

    fn refusal(&self, free: u64) -> JobError {
        JobError::new(
            ErrorCode::InsufficientStorage,
            format!(
                "media_root has {} MiB free, below storage.min_free_mb ({} MiB): nothing new is \
                 taken until space is freed; nothing was stored for this request, send it again then",
                free >> 20,
                self.min_free_bytes >> 20
            ),
        )
    }
}

/// The bytes of the files under `dir` (an attempt's work directory); what cannot be read
/// counts as nothing.
pub fn tree_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|entry| match entry.file_type() {
            Ok(kind) if kind.is_dir() => tree_bytes(&entry.path()),
            Ok(kind) if kind.is_file() => entry.metadata().map_or(0, |m| m.len()),
            _ => 0,
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_floor_above_the_free_space_refuses_with_its_code_and_one_below_admits() {
        let dir = tempfile::tempdir().unwrap();
        let (_, free) = disk_space(dir.path()).unwrap();
        let err = SpaceFloor {
            min_free_bytes: free.saturating_mul(2).max(1 << 40),
        }
        .admit(dir.path())
        .unwrap_err();
        assert_eq!(err.code, ErrorCode::InsufficientStorage);
        assert!(
            err.message.contains("storage.min_free_mb"),
            "{}",
            err.message
        );
        assert!(SpaceFloor::of_mib(0).admit(dir.path()).is_ok());
        assert!(!SpaceFloor::of_mib(0).is_below(dir.path()).unwrap());
    }

    #[test]
    fn an_attempts_own_bytes_count_as_free() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("a"), [0u8; 1000]).unwrap();
        std::fs::write(dir.path().join("sub/b"), [0u8; 24]).unwrap();
        assert_eq!(tree_bytes(dir.path()), 1024);
        assert_eq!(tree_bytes(&dir.path().join("missing")), 0);
        // A floor 1 GiB above the free space: below it, unless the attempt's own 2 GiB would
        // be freed (the margins absorb what other processes write meanwhile).
        let (_, free) = disk_space(dir.path()).unwrap();
        let floor = SpaceFloor {
            min_free_bytes: free + (1 << 30),
        };
        assert!(floor.is_below(dir.path()).unwrap());
        assert!(!floor.below_without(dir.path(), 2 << 30).unwrap());
    }
}
