//! The one finished file of a run, and the rules it must meet before anything opens it
//! (THREATS SUB-02): a regular file named `{stem}.{ext}` directly in the job's directory, with
//! a video extension.
//!
//! It must never follow a symlink or accept a file outside the work directory, whatever path
//! yt-dlp reported.

use std::path::{Path, PathBuf};

use crate::domain::text;
use crate::domain::{ErrorCode, JobError};

/// Extensions a download may have. Everything else is refused before ffprobe sees it.
pub const ALLOWED_EXTENSIONS: &[&str] = &[
    "mp4", "m4v", "mov", "3gp", "3g2", "webm", "mkv", "avi", "flv", "ts",
];

/// Finds the one finished output file of a run, refusing anything a hostile source or
/// template could have produced (THREATS SUB-02): it must be a regular file named
/// `{stem}.{ext}` directly inside `dir`, with an allowed extension.
pub fn find_output(dir: &Path, stem: &str, reported: Option<&Path>) -> Result<PathBuf, JobError> {
    let no_output = |msg: String| JobError::new(ErrorCode::NoOutput, msg);
    let entries = std::fs::read_dir(dir)
        .map_err(|e| no_output(format!("cannot read the work directory: {e}")))?;
    let prefix = format!("{stem}.");
    let mut found = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let unfinished = [".part", ".ytdl", ".temp", ".frag"]
            .iter()
            .any(|s| name.contains(s));
        if name.starts_with(&prefix) && !unfinished {
            found.push(entry.path());
        }
    }
    let path = match found.len() {
        0 => return Err(no_output("yt-dlp finished without producing a file".into())),
        1 => found.remove(0),
        n => {
            return Err(no_output(format!(
                "yt-dlp produced {n} files instead of one"
            )));
        }
    };
    if let Some(reported) = reported
        && reported != path
    {
        return Err(no_output(format!(
            "yt-dlp reported {} but wrote {}",
            reported.display(),
            path.display()
        )));
    }
    let meta = std::fs::symlink_metadata(&path).map_err(|e| no_output(e.to_string()))?;
    if !meta.file_type().is_file() {
        return Err(JobError::new(
            ErrorCode::InvalidMedia,
            "the download is not a regular file",
        ));
    }
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    if !ALLOWED_EXTENSIONS.contains(&ext.as_str()) {
        return Err(JobError::new(
            ErrorCode::InvalidMedia,
            format!(
                "the download is not a video file (type '{}')",
                text::clean(&ext, 20)
            ),
        ));
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_must_be_one_regular_video_file_in_the_job_dir() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        assert_eq!(
            find_output(d, "j1", None).unwrap_err().code,
            ErrorCode::NoOutput
        );
        std::fs::write(d.join("j1.mp4.part"), b"x").unwrap();
        assert_eq!(
            find_output(d, "j1", None).unwrap_err().code,
            ErrorCode::NoOutput
        );
        std::fs::write(d.join("j1.mp4"), b"x").unwrap();
        assert_eq!(find_output(d, "j1", None).unwrap(), d.join("j1.mp4"));
        assert_eq!(
            find_output(d, "j1", Some(&d.join("j1.mkv")))
                .unwrap_err()
                .code,
            ErrorCode::NoOutput
        );
        std::fs::write(d.join("j1.webm"), b"x").unwrap();
        assert_eq!(
            find_output(d, "j1", None).unwrap_err().code,
            ErrorCode::NoOutput
        );

        let other = tempfile::tempdir().unwrap();
        for (name, code) in [
            ("j1.desktop", ErrorCode::InvalidMedia),
            ("j1.sh", ErrorCode::InvalidMedia),
            ("j1.unknown_video", ErrorCode::InvalidMedia),
        ] {
            let path = other.path().join(name);
            std::fs::write(&path, b"x").unwrap();
            assert_eq!(
                find_output(other.path(), "j1", None).unwrap_err().code,
                code,
                "{name}"
            );
            std::fs::remove_file(path).unwrap();
        }
        std::os::unix::fs::symlink("/etc/passwd", other.path().join("j1.mp4")).unwrap();
        assert_eq!(
            find_output(other.path(), "j1", None).unwrap_err().code,
            ErrorCode::InvalidMedia
        );
    }
}
