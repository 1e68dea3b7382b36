//! Why a yt-dlp run failed, read from its stderr: each failure becomes one stable error code
//! (terminal ones such as `login_required` apart from transient ones such as `rate_limited`),
//! and complaints about the cookies file are picked out for the platform's status.
//!
//! What reaches a user is our summary plus a cleaned, bounded excerpt of yt-dlp's line; never
//! the raw stderr.

use crate::domain::text;
use crate::domain::{ErrorCode, JobError};

/// What yt-dlp's messages mean, in order of precedence: the first row with a signal in the
/// message wins. Signals are matched case-insensitively. Rate limiting comes first because
/// Instagram words its refusals as "rate-limit reached or login required".
const TAXONOMY: &[(ErrorCode, &str, &[&str])] = &[
    (
        ErrorCode::RateLimited,
        "the platform is limiting or blocking our requests for now",
        &[
            "http error 429",
            "too many requests",
            "rate-limit reached",
            "rate limit",
            "confirm you’re not a bot",
            "confirm you're not a bot",
            "confirm that you're not a bot",
            "unusual traffic",
            "temporarily blocked",
        ],
    ),
    (
        ErrorCode::GeoBlocked,
        "the video is not available in this server's country",
        &[
            "not available in your country",
            "geo restriction",
            "geo-restricted",
            "not made this video available in your country",
            "blocked it in your country",
        ],
    ),
    (
        ErrorCode::LoginRequired,
        "the video can only be watched when signed in; a cookies file for this platform may help",
        &[
            "sign in to confirm your age",
            "login required",
            "requires authentication",
            "only available for registered users",
            "only available to members",
            "members-only",
            "locked behind the login page",
            "you need to log in",
            "age-restricted",
            "inappropriate for some users",
        ],
    ),
    (
        ErrorCode::SourceUnavailable,
        "the video is private, was removed, or is otherwise unavailable",
        &[
            "private video",
            "is private",
            "video unavailable",
            "has been removed",
            "no longer available",
            "account has been terminated",
            "account associated with this video has been terminated",
            "this video does not exist",
            "video not available",
            "no status found with that id",
            "this post is unavailable",
            "content is not available",
            "has been deleted",
            "copyright claim",
        ],
    ),
    (
        ErrorCode::LiveNotSupported,
        "the URL is a live stream or a premiere that has not started",
        &[
            "live event will begin",
            "is live",
            "premieres in",
            "this live stream",
            "is_live",
        ],
    ),
    (
        // The only formats were on protocols the egress guard cannot see (rtmp, rtsp, ftp…).
        ErrorCode::UnsupportedUrl,
        "the source offers the video only over protocols the service does not fetch (it takes HTTP(S), HLS and DASH)",
        &["requested format is not available"],
    ),
    (
        ErrorCode::UnsupportedUrl,
        "no video could be found at this URL",
        &[
            "unsupported url",
            "no video formats found",
            "no video could be found",
        ],
    ),
    (
        ErrorCode::SourceNotFound,
        "the source answered: not found",
        &["http error 404", "http error 410"],
    ),
    (
        ErrorCode::UpstreamError,
        "the source had a server error or refused a part of the video; this is usually temporary",
        &[
            "http error 500",
            "http error 502",
            "http error 503",
            "http error 504",
            "http error 5",
            "fragment",
            "http error 403",
        ],
    ),
    (
        ErrorCode::Timeout,
        "the source stopped answering",
        &["timed out", "timeout"],
    ),
    (
        ErrorCode::NetworkError,
        "the source could not be reached",
        &[
            "connection refused",
            "connection reset",
            "name or service not known",
            "temporary failure in name resolution",
            "no route to host",
            "network is unreachable",
            "failed to establish",
            "remote end closed",
            "incompleteread",
            "connection aborted",
        ],
    ),
    (
        ErrorCode::DiskFull,
        "media_root is full",
        &["no space left on device"],
    ),
];

fn classify_text(text: &str) -> Option<(ErrorCode, &'static str)> {
    let lower = text.to_lowercase();
    TAXONOMY
        .iter()
        .find(|(_, _, signals)| signals.iter().any(|s| lower.contains(s)))
        .map(|(code, summary, _)| (*code, *summary))
}

/// Classifies a failed run: by the last `ERROR:` line yt-dlp printed, or, when that says
/// nothing known, by any earlier line (a 429 is often reported as a warning first).
pub fn classify_failure(stderr: &str) -> JobError {
    let line = stderr
        .lines()
        .rev()
        .find(|l| l.starts_with("ERROR:"))
        .or_else(|| stderr.lines().rev().find(|l| !l.trim().is_empty()))
        .unwrap_or("yt-dlp failed without a message");
    let detail = text::clean(line.trim_start_matches("ERROR:").trim(), 400);
    let (code, summary) = classify_text(line)
        .or_else(|| classify_text(stderr))
        .unwrap_or((ErrorCode::DownloadFailed, "the download failed"));
    JobError::new(code, format!("{summary} ({detail})"))
}

/// A complaint of yt-dlp about the cookies file, if it printed one.
pub fn cookie_problem(stderr: &str) -> Option<String> {
    const SIGNALS: [&str; 5] = [
        "cookies are no longer valid",
        "failed to load cookies",
        "netscape format cookies file",
        "could not find cookie",
        "cookies file",
    ];
    stderr
        .lines()
        .find(|line| {
            let lower = line.to_lowercase();
            SIGNALS.iter().any(|s| lower.contains(s))
                && (lower.starts_with("warning") || lower.starts_with("error"))
        })
        .map(|line| text::clean(line, 300))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Error lines as yt-dlp prints them (recorded from real runs and from yt-dlp's own
    /// extractors), each with the code it must map to.
    const RECORDED: &[(&str, ErrorCode)] = &[
        (
            "ERROR: [youtube] dQw4w9WgXcQ: Sign in to confirm you’re not a bot. Use --cookies-from-browser or --cookies for the authentication. See  https://github.com/yt-dlp/yt-dlp/wiki/FAQ#how-do-i-pass-cookies-to-yt-dlp  for how to manually pass cookies.",
            ErrorCode::RateLimited,
        ),
        (
            "ERROR: [Instagram] C0dE_x-12: Requested content is not available, rate-limit reached or login required. Use --cookies, --cookies-from-browser, --username and --password, --netrc-cmd, or --netrc (instagram) to provide account credentials",
            ErrorCode::RateLimited,
        ),
        (
            "ERROR: [youtube] dQw4w9WgXcQ: Unable to download API page: HTTP Error 429: Too Many Requests (caused by <HTTPError 429: Too Many Requests>)",
            ErrorCode::RateLimited,
        ),
        (
            "ERROR: [TikTok] 7234567890123456789: Your IP address is temporarily blocked",
            ErrorCode::RateLimited,
        ),
        (
            "ERROR: [youtube] dQw4w9WgXcQ: The uploader has not made this video available in your country. This video is available in United States.",
            ErrorCode::GeoBlocked,
        ),
        (
            "ERROR: [twitter] 1790000000000000001: This content is geo-restricted",
            ErrorCode::GeoBlocked,
        ),
        (
            "ERROR: [youtube] dQw4w9WgXcQ: Sign in to confirm your age. This video may be inappropriate for some users. Use --cookies-from-browser or --cookies for the authentication.",
            ErrorCode::LoginRequired,
        ),
        (
            "ERROR: [twitter] 1790000000000000001: NSFW tweet requires authentication. Use --cookies, --cookies-from-browser, --username and --password, --netrc-cmd, or --netrc (twitter) to provide account credentials",
            ErrorCode::LoginRequired,
        ),
        (
            "ERROR: [Instagram] C0dE_x-12: Main webpage is locked behind the login page. Unable to extract information",
            ErrorCode::LoginRequired,
        ),
        (
            "ERROR: [youtube] dQw4w9WgXcQ: Join this channel to get access to members-only content like this video, and other exclusive perks.",
            ErrorCode::LoginRequired,
        ),
        (
            "ERROR: [youtube] dQw4w9WgXcQ: Private video. Sign in if you've been granted access to this video",
            ErrorCode::SourceUnavailable,
        ),
        (
            "ERROR: [youtube] dQw4w9WgXcQ: Video unavailable. This video has been removed by the uploader",
            ErrorCode::SourceUnavailable,
        ),
        (
            "ERROR: [youtube] dQw4w9WgXcQ: Video unavailable. This video is no longer available because the YouTube account associated with this video has been terminated.",
            ErrorCode::SourceUnavailable,
        ),
        (
            "ERROR: [twitter] 1790000000000000001: Error(s) while querying API: No status found with that ID.",
            ErrorCode::SourceUnavailable,
        ),
        (
            "ERROR: [TikTok] 7234567890123456789: Video not available, status code 10204",
            ErrorCode::SourceUnavailable,
        ),
        (
            "ERROR: [youtube] dQw4w9WgXcQ: This live event will begin in 3 hours.",
            ErrorCode::LiveNotSupported,
        ),
        (
            "ERROR: [youtube] dQw4w9WgXcQ: Premieres in 2 days",
            ErrorCode::LiveNotSupported,
        ),
        (
            "ERROR: Unsupported URL: https://example.com/",
            ErrorCode::UnsupportedUrl,
        ),
        (
            "ERROR: [generic] Unable to download webpage: HTTP Error 404: Not Found (caused by <HTTPError 404: Not Found>)",
            ErrorCode::SourceNotFound,
        ),
        (
            "ERROR: [generic] missing: Unable to download webpage: HTTP Error 410: Gone",
            ErrorCode::SourceNotFound,
        ),
        (
            "ERROR: [generic] x: Unable to download webpage: HTTP Error 500: Internal Server Error",
            ErrorCode::UpstreamError,
        ),
        (
            "ERROR: [generic] x: Unable to download webpage: HTTP Error 503: Service Unavailable",
            ErrorCode::UpstreamError,
        ),
        (
            "ERROR: unable to download video data: HTTP Error 403: Forbidden",
            ErrorCode::UpstreamError,
        ),
        (
            "ERROR: fragment 3 not found, unable to continue",
            ErrorCode::UpstreamError,
        ),
        (
            "ERROR: unable to download video data: The read operation timed out",
            ErrorCode::Timeout,
        ),
        (
            "ERROR: [generic] x: Unable to download webpage: HTTPConnection(host='127.0.0.1', port=1): Failed to establish a new connection: [Errno 111] Connection refused",
            ErrorCode::NetworkError,
        ),
        (
            "ERROR: [youtube] dQw4w9WgXcQ: Unable to download API page: <urlopen error [Errno -3] Temporary failure in name resolution>",
            ErrorCode::NetworkError,
        ),
        (
            "ERROR: [download] Unable to write data: [Errno 28] No space left on device",
            ErrorCode::DiskFull,
        ),
        (
            "ERROR: something nobody has seen before",
            ErrorCode::DownloadFailed,
        ),
        ("", ErrorCode::DownloadFailed),
    ];

    #[test]
    fn classifies_recorded_stderr() {
        for (stderr, code) in RECORDED {
            let err = classify_failure(&format!("WARNING: noise\n{stderr}\n"));
            assert_eq!(err.code, *code, "{stderr}");
            assert!(!err.message.is_empty());
        }
    }

    #[test]
    fn a_rate_limit_warned_earlier_counts_even_if_the_last_error_is_vague() {
        let stderr = "WARNING: [youtube] HTTP Error 429: Too Many Requests\nERROR: [youtube] abc: Unable to extract something\n";
        assert_eq!(classify_failure(stderr).code, ErrorCode::RateLimited);
    }

    #[test]
    fn terminal_and_transient_codes_are_told_apart() {
        for code in [
            ErrorCode::LoginRequired,
            ErrorCode::GeoBlocked,
            ErrorCode::SourceUnavailable,
            ErrorCode::UnsupportedUrl,
            ErrorCode::LiveNotSupported,
        ] {
            assert!(!code.is_transient(), "{code}");
        }
        for code in [
            ErrorCode::RateLimited,
            ErrorCode::UpstreamError,
            ErrorCode::Timeout,
            ErrorCode::NetworkError,
        ] {
            assert!(code.is_transient(), "{code}");
        }
    }

    #[test]
    fn cookie_complaints_are_found() {
        let stderr = "WARNING: [youtube] The provided YouTube account cookies are no longer valid. They have likely been rotated in the browser as a security measure.\nERROR: boom";
        assert!(cookie_problem(stderr).unwrap().contains("no longer valid"));
        assert!(
            cookie_problem(
                "ERROR: '/x/cookies.txt' does not look like a Netscape format cookies file"
            )
            .is_some()
        );
        assert_eq!(cookie_problem("ERROR: HTTP Error 404"), None);
    }
}
