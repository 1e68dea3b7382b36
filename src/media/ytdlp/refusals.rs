//! Targets refused from their info JSON, before their bytes are fetched: playlists, live
//! streams, videos longer than the duration limit or announced larger than the byte budget.
//!
//! A pure check on what yt-dlp announced; it never trusts the announcement to be the whole
//! story (the byte budget is enforced again on disk by `run.rs`).

use super::lines::VideoInfo;
use crate::domain::{ErrorCode, JobError};

/// Refuses targets before their bytes are fetched: playlists, live streams, too long, too big.
pub fn check_info(
    info: &VideoInfo,
    max_bytes: u64,
    max_duration_secs: u64,
) -> Result<(), JobError> {
    if info.kind.as_deref() == Some("playlist")
        || info.playlist_index.is_some()
        || info.n_entries.is_some_and(|n| n > 1)
    {
        return Err(JobError::new(
            ErrorCode::PlaylistNotSupported,
            "the URL is a playlist or a page with several videos; submit the link of one video",
        ));
    }
    if info.is_live == Some(true)
        || matches!(info.live_status.as_deref(), Some("is_live" | "is_upcoming"))
    {
        return Err(JobError::new(
            ErrorCode::LiveNotSupported,
            "the URL is a live stream, which has no end to capture",
        ));
    }
    if let Some(duration) = info.duration.filter(|d| *d > max_duration_secs as f64) {
        return Err(JobError::new(
            ErrorCode::TooLong,
            format!("the video lasts {duration:.0} s, longer than the {max_duration_secs} s limit"),
        ));
    }
    if let Some(size) = info
        .filesize
        .or(info.filesize_approx)
        .filter(|s| *s > max_bytes as f64)
    {
        return Err(JobError::too_large(size as u64, max_bytes));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_playlists_live_streams_and_oversize_targets() {
        let ok = VideoInfo {
            duration: Some(30.0),
            ..Default::default()
        };
        assert!(check_info(&ok, 1000, 600).is_ok());
        let cases = [
            (
                VideoInfo {
                    playlist_index: Some(1),
                    n_entries: Some(2),
                    ..Default::default()
                },
                ErrorCode::PlaylistNotSupported,
            ),
            (
                VideoInfo {
                    kind: Some("playlist".into()),
                    ..Default::default()
                },
                ErrorCode::PlaylistNotSupported,
            ),
            (
                VideoInfo {
                    is_live: Some(true),
                    ..Default::default()
                },
                ErrorCode::LiveNotSupported,
            ),
            (
                VideoInfo {
                    live_status: Some("is_upcoming".into()),
                    ..Default::default()
                },
                ErrorCode::LiveNotSupported,
            ),
            (
                VideoInfo {
                    duration: Some(601.0),
                    ..Default::default()
                },
                ErrorCode::TooLong,
            ),
            (
                VideoInfo {
                    filesize: Some(1001.0),
                    ..Default::default()
                },
                ErrorCode::TooLarge,
            ),
            (
                VideoInfo {
                    filesize_approx: Some(5000.0),
                    ..Default::default()
                },
                ErrorCode::TooLarge,
            ),
        ];
        for (info, code) in cases {
            assert_eq!(
                check_info(&info, 1000, 600).unwrap_err().code,
                code,
                "{info:?}"
            );
        }
    }
}
