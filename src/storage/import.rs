//! Staging a local file for an import job: a copy of it in the attempt's work directory, so
//! that processing works on a file no one else can change (the original stays where the
//! importer put it, e.g. the watch folder's `processed/`).

use std::path::{Path, PathBuf};

use crate::db::imports::ImportPayload;
use crate::domain::{ErrorCode, JobError};

/// Copies the import's file into `work_dir`; returns the copy and its size. A copy, not a
/// hard link: a user editing the original later must not change a stored video.
pub fn stage(
    payload: &ImportPayload,
    work_dir: &Path,
    max_bytes: u64,
) -> Result<(PathBuf, u64), JobError> {
    let source = [&payload.file, &payload.found_at]
        .into_iter()
        .find(|path| path.symlink_metadata().is_ok_and(|m| m.is_file()))
        .ok_or_else(|| {
            JobError::new(
                ErrorCode::SourceNotFound,
                format!("the file to import is gone: {}", payload.file.display()),
            )
        })?;
    let size = source
        .metadata()
        .map_err(|e| {
            JobError::new(
                ErrorCode::SourceNotFound,
                format!("cannot read the file to import: {e}"),
            )
        })?
        .len();
    if size > max_bytes {
        return Err(JobError::too_large(size, max_bytes));
    }
    std::fs::create_dir_all(work_dir)
        .map_err(|e| super::io_job_error("cannot create the work directory", &e))?;
    let mut name = std::ffi::OsString::from("import");
    if let Some(ext) = source.extension() {
        name.push(".");
        name.push(ext);
    }
    let staged = work_dir.join(name);
    let copied = std::fs::copy(source, &staged)
        .map_err(|e| super::io_job_error("cannot copy the file to import", &e))?;
    Ok((staged, copied))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload(dir: &Path) -> ImportPayload {
        ImportPayload {
            file: dir.join("processed/clip.mp4"),
            found_at: dir.join("clip.mp4"),
        }
    }

    #[test]
    fn the_file_is_taken_from_its_destination_or_where_it_was_found() {
        let dir = tempfile::tempdir().unwrap();
        let work = dir.path().join("work");
        let payload = payload(dir.path());
        // The importer stopped before moving it: it is still where it was found.
        std::fs::write(&payload.found_at, b"first").unwrap();
        let (staged, size) = stage(&payload, &work, 100).unwrap();
        assert_eq!(
            (std::fs::read(&staged).unwrap(), size),
            (b"first".to_vec(), 5)
        );
        assert_eq!(staged.file_name().unwrap(), "import.mp4");

        std::fs::create_dir_all(payload.file.parent().unwrap()).unwrap();
        std::fs::rename(&payload.found_at, &payload.file).unwrap();
        let (staged, _) = stage(&payload, &work, 100).unwrap();
        assert_eq!(std::fs::read(&staged).unwrap(), b"first");
    }

    #[test]
    fn a_missing_or_oversized_file_fails_with_its_code() {
        let dir = tempfile::tempdir().unwrap();
        let payload = payload(dir.path());
        let work = dir.path().join("work");
        assert_eq!(
            stage(&payload, &work, 100).unwrap_err().code,
            ErrorCode::SourceNotFound
        );
        std::fs::write(&payload.found_at, vec![0; 101]).unwrap();
        assert_eq!(
            stage(&payload, &work, 100).unwrap_err().code,
            ErrorCode::TooLarge
        );
    }
}
