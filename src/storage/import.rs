//! Staging a local file for an import job: a copy of it in the attempt's work directory, so
//! that processing works on a file no one else can change (the original stays where the
//! importer put it, e.g. the watch folder's `processed/`). A file the service owns (an upload
//! under `temp/uploads/`) is hard-linked instead, and deleted once its job is finished.

use std::path::{Path, PathBuf};

use super::MediaRoot;
use crate::db::imports::ImportPayload;
use crate::domain::{ErrorCode, JobError};

/// Copies the import's file into `work_dir`; returns the copy and its size. A user's file is
/// copied, never hard-linked: editing the original later must not change a stored video. An
/// owned file is linked (no one else writes it), or copied when linking fails.
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
    if payload.owned && std::fs::hard_link(source, &staged).is_ok() {
        return Ok((staged, size));
    }
    let copied = std::fs::copy(source, &staged)
        .map_err(|e| super::io_job_error("cannot copy the file to import", &e))?;
    Ok((staged, copied))
}

/// Deletes the owned files of a finished import. Only files inside `temp/uploads/` are
/// removed, whatever the payload says: a wrong row must not make the service delete a
/// user's file. Returns how many were removed.
pub fn discard_owned(media: &MediaRoot, payload: &ImportPayload) -> usize {
    discard_uploads(media, &payload.owned_files())
}

/// Deletes `files` that are inside `temp/uploads/` (see [`discard_owned`]).
pub fn discard_uploads(media: &MediaRoot, files: &[PathBuf]) -> usize {
    let uploads = media.uploads_dir();
    let mut removed = 0;
    for file in files {
        if !is_inside(&uploads, file) {
            tracing::warn!(path = %file.display(), "an owned import file is outside temp/uploads; left in place");
            continue;
        }
        match std::fs::remove_file(file) {
            Ok(()) => removed += 1,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::warn!(path = %file.display(), error = %e, "cannot remove a finished upload; the sweep will")
            }
        }
    }
    removed
}

/// True when `path` is below `dir` with no `..` or other tricks on the way.
fn is_inside(dir: &Path, path: &Path) -> bool {
    use std::path::Component;
    path.strip_prefix(dir).is_ok_and(|rest| {
        rest.components().count() > 0
            && rest.components().all(|c| matches!(c, Component::Normal(_)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload(dir: &Path) -> ImportPayload {
        ImportPayload {
            file: dir.join("processed/clip.mp4"),
            found_at: dir.join("clip.mp4"),
            owned: false,
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

    #[test]
    fn an_owned_upload_is_linked_and_discarded_but_a_users_file_is_copied_and_kept() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let media = MediaRoot::open(dir.path()).unwrap();
        let upload = media.uploads_dir().join("photo.jpg");
        std::fs::write(&upload, b"jpeg").unwrap();
        let owned = ImportPayload {
            file: upload.clone(),
            found_at: upload.clone(),
            owned: true,
        };
        let work = media.processing_dir().join("job-1");
        let (staged, size) = stage(&owned, &work, 100).unwrap();
        assert_eq!(size, 4);
        let ino = |p: &Path| std::fs::metadata(p).unwrap().ino();
        assert_eq!(ino(&staged), ino(&upload), "an owned file is hard-linked");
        assert_eq!(discard_owned(&media, &owned), 1);
        assert!(!upload.exists());
        assert_eq!(
            std::fs::read(&staged).unwrap(),
            b"jpeg",
            "the staged link survives"
        );

        let users = media.path().join("mine.jpg");
        std::fs::write(&users, b"mine").unwrap();
        let user_payload = ImportPayload {
            file: users.clone(),
            found_at: users.clone(),
            owned: false,
        };
        let (copy, _) = stage(&user_payload, &media.processing_dir().join("job-2"), 100).unwrap();
        assert_ne!(ino(&copy), ino(&users), "a user's file is copied");
        assert_eq!(discard_owned(&media, &user_payload), 0);
        // Even a payload that claims ownership cannot delete outside temp/uploads.
        let lying = ImportPayload {
            owned: true,
            ..user_payload
        };
        assert_eq!(discard_owned(&media, &lying), 0);
        let escaping = ImportPayload {
            file: media.uploads_dir().join("../../mine.jpg"),
            found_at: media.uploads_dir().join("../../mine.jpg"),
            owned: true,
        };
        assert_eq!(discard_owned(&media, &escaping), 0);
        assert!(users.exists());
    }
}
