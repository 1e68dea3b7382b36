//! Stable error codes: the `code` field of every API error and of every failed job.
//!
//! A code is part of the external contract: clients and the Telegram bot branch on it, so a
//! variant's string never changes once released. This is the one error policy of the
//! service: each code knows its HTTP status and whether the failure is transient (the same
//! request or job may succeed later unchanged). The retry rule of jobs, the doors' "try again
//! later" (the bot postpones the update, the watch folder leaves the file for the next
//! rescan) and the API's status all read it from here.

use std::fmt;

/// Every error code the service emits, for requests and for jobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    // --- request errors ---
    /// Not an absolute http(s) URL, or a form we refuse (credentials, leading `-`, …).
    InvalidUrl,
    /// The URL or a hop of the download points at a private, loopback or metadata address.
    SsrfBlocked,
    /// An id in the path is not a well-formed item id.
    InvalidId,
    /// No such item (or route).
    NotFound,
    /// The item exists but is not completed, so there is nothing to serve yet.
    NotReady,
    /// The item has no rendition at the requested quality (yet).
    RenditionNotFound,
    /// A rendition above the source's own quality was requested.
    WouldUpscale,
    /// The item is an image: it has no video stream, renditions or transcodes (its bytes are
    /// at `/api/images/{id}`).
    NotAVideo,
    /// Missing or wrong bearer token or session (or a wrong name or password at sign-in).
    Unauthorized,
    /// Authenticated, but the route is for admins.
    Forbidden,
    /// Too many failed sign-ins for this name or address: wait `Retry-After` seconds.
    TooManyAttempts,
    /// A user of that name exists already.
    NameTaken,
    /// The request body is larger than `server.max_body_kb`.
    PayloadTooLarge,
    /// The body is declared as something this route does not read (it reads JSON).
    UnsupportedMediaType,
    /// A malformed request: bad JSON, a missing field, a wrong method.
    BadRequest,
    /// A search query that cannot be run: only exclusions, or too long.
    InvalidQuery,
    /// The service is stopping and does not take new work.
    ShuttingDown,
    /// A component the request needs is restarting; the client may retry.
    Unavailable,
    /// media_root has less free space than `storage.min_free_mb`: nothing new is taken until
    /// space is freed (the client may retry then).
    InsufficientStorage,
    /// A bug or an unexpected failure on our side.
    Internal,

    // --- job errors: permanent ---
    /// The media is larger than `storage.max_video_size_mb`.
    TooLarge,
    /// The media is longer than the configured maximum duration.
    TooLong,
    /// Storing it would take its owner past their storage quota (`user set --quota`).
    QuotaExceeded,
    /// Not media we can read: text, HTML, truncated or crafted containers, decoder bombs, or
    /// anything but one JPEG picture imported as an image.
    InvalidMedia,
    /// The URL names a playlist or a channel, not one video.
    PlaylistNotSupported,
    /// The URL is a live stream that has no end.
    LiveNotSupported,
    /// The source answered 404/410.
    SourceNotFound,
    /// The source says the video is private, removed or otherwise unavailable.
    SourceUnavailable,
    /// The video needs a signed-in account (age gates, members-only, NSFW); cookies may help.
    LoginRequired,
    /// The video is not available from this machine's country.
    GeoBlocked,
    /// yt-dlp knows no way to get a video from this URL.
    UnsupportedUrl,
    /// The downloader finished without producing exactly one media file.
    NoOutput,
    /// A user or a delete cancelled the job.
    Cancelled,
    /// The service stopped `queue.max_crashes` times while running the job: the job is
    /// probably what crashes it, and is not tried again.
    CrashLoop,

    // --- job errors: retryable ---
    /// The platform is refusing us (HTTP 429, bot checks, login walls): its circuit breaker
    /// opens and the job waits, uncharged, until the platform is tried again.
    RateLimited,
    /// The source answered 5xx.
    UpstreamError,
    /// Connection refused/reset, DNS failure and the like.
    NetworkError,
    /// A stage ran past its wall-clock limit.
    Timeout,
    /// media_root ran out of space.
    DiskFull,
    /// The actor running the job crashed; the job is charged an attempt.
    WorkerCrashed,
    /// The job's worker vanished (process crash, lease expiry).
    WorkerLost,
    /// yt-dlp failed in a way we could not classify.
    DownloadFailed,
    /// ffmpeg failed in a way we could not classify.
    ProcessingFailed,
}

impl ErrorCode {
    /// Every code, for tables and tests.
    pub const ALL: &'static [ErrorCode] = &[
        Self::InvalidUrl,
        Self::SsrfBlocked,
        Self::InvalidId,
        Self::NotFound,
        Self::NotReady,
        Self::RenditionNotFound,
        Self::WouldUpscale,
        Self::NotAVideo,
        Self::Unauthorized,
        Self::Forbidden,
        Self::TooManyAttempts,
        Self::NameTaken,
        Self::PayloadTooLarge,
        Self::UnsupportedMediaType,
        Self::BadRequest,
        Self::InvalidQuery,
        Self::ShuttingDown,
        Self::Unavailable,
        Self::InsufficientStorage,
        Self::Internal,
        Self::TooLarge,
        Self::TooLong,
        Self::QuotaExceeded,
        Self::InvalidMedia,
        Self::PlaylistNotSupported,
        Self::LiveNotSupported,
        Self::SourceNotFound,
        Self::SourceUnavailable,
        Self::LoginRequired,
        Self::GeoBlocked,
        Self::UnsupportedUrl,
        Self::NoOutput,
        Self::Cancelled,
        Self::CrashLoop,
        Self::RateLimited,
        Self::UpstreamError,
        Self::NetworkError,
        Self::Timeout,
        Self::DiskFull,
        Self::WorkerCrashed,
        Self::WorkerLost,
        Self::DownloadFailed,
        Self::ProcessingFailed,
    ];

    /// The stable snake_case string of the code.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::InvalidUrl => "invalid_url",
            Self::SsrfBlocked => "ssrf_blocked",
            Self::InvalidId => "invalid_id",
            Self::NotFound => "not_found",
            Self::NotReady => "not_ready",
            Self::RenditionNotFound => "rendition_not_found",
            Self::WouldUpscale => "would_upscale",
            Self::NotAVideo => "not_a_video",
            Self::Unauthorized => "unauthorized",
            Self::Forbidden => "forbidden",
            Self::TooManyAttempts => "too_many_attempts",
            Self::NameTaken => "name_taken",
            Self::PayloadTooLarge => "payload_too_large",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::BadRequest => "bad_request",
            Self::InvalidQuery => "invalid_query",
            Self::ShuttingDown => "shutting_down",
            Self::Unavailable => "unavailable",
            Self::InsufficientStorage => "insufficient_storage",
            Self::Internal => "internal_error",
            Self::TooLarge => "too_large",
            Self::QuotaExceeded => "quota_exceeded",
            Self::TooLong => "too_long",
            Self::InvalidMedia => "invalid_media",
            Self::PlaylistNotSupported => "playlist_not_supported",
            Self::LiveNotSupported => "live_not_supported",
            Self::SourceNotFound => "source_not_found",
            Self::SourceUnavailable => "source_unavailable",
            Self::LoginRequired => "login_required",
            Self::GeoBlocked => "geo_blocked",
            Self::RateLimited => "rate_limited",
            Self::UnsupportedUrl => "unsupported_url",
            Self::NoOutput => "no_output",
            Self::Cancelled => "cancelled",
            Self::CrashLoop => "crash_loop",
            Self::UpstreamError => "upstream_error",
            Self::NetworkError => "network_error",
            Self::Timeout => "timeout",
            Self::DiskFull => "disk_full",
            Self::WorkerCrashed => "worker_crashed",
            Self::WorkerLost => "worker_lost",
            Self::DownloadFailed => "download_failed",
            Self::ProcessingFailed => "processing_failed",
        }
    }

    /// Parses a stored code; unknown strings (from a newer version) read as `Internal`.
    pub fn parse(s: &str) -> Self {
        Self::ALL
            .iter()
            .copied()
            .find(|c| c.as_str() == s)
            .unwrap_or(Self::Internal)
    }

    /// Whether the failure will pass: the same request or job may succeed later, unchanged.
    /// A job that failed with such a code is retried (within its attempts); a door that was
    /// refused with one keeps the submission and tries again later.
    pub const fn is_transient(self) -> bool {
        matches!(
            self,
            Self::ShuttingDown
                | Self::RateLimited
                | Self::UpstreamError
                | Self::NetworkError
                | Self::Timeout
                | Self::DiskFull
                | Self::WorkerCrashed
                | Self::WorkerLost
                | Self::DownloadFailed
                | Self::ProcessingFailed
                | Self::Unavailable
                | Self::InsufficientStorage
                | Self::Internal
        )
    }
}

impl ErrorCode {
    /// The HTTP status an API answer with this code carries.
    pub const fn http_status(self) -> u16 {
        match self {
            Self::InvalidUrl
            | Self::SsrfBlocked
            | Self::InvalidId
            | Self::BadRequest
            | Self::InvalidQuery => 400,
            Self::Unauthorized => 401,
            Self::Forbidden | Self::QuotaExceeded => 403,
            Self::NameTaken => 409,
            Self::TooManyAttempts => 429,
            Self::NotFound | Self::RenditionNotFound | Self::NotAVideo => 404,
            Self::NotReady => 409,
            Self::PayloadTooLarge => 413,
            Self::UnsupportedMediaType => 415,
            Self::WouldUpscale => 422,
            Self::Internal => 500,
            Self::InsufficientStorage => 507,
            // A job's own failure asked of the API: the input cannot be stored as it is.
            code if !code.is_transient() => 422,
            // Everything that will pass: the client may retry.
            _ => 503,
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for ErrorCode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// Why a job attempt failed: a stable code and a message a person can read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobError {
    pub code: ErrorCode,
    pub message: String,
}

impl JobError {
    /// Longest message kept; tool output can be arbitrarily long (THREATS SUB-08).
    pub const MAX_MESSAGE_CHARS: usize = 1000;

    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        let message: String = message.into();
        let message = if message.chars().count() > Self::MAX_MESSAGE_CHARS {
            let mut cut: String = message.chars().take(Self::MAX_MESSAGE_CHARS).collect();
            cut.push('…');
            cut
        } else {
            message
        };
        Self { code, message }
    }

    /// `too_large`: a video of `bytes` (or more) against the `max_bytes` budget.
    pub fn too_large(bytes: u64, max_bytes: u64) -> Self {
        Self::new(
            ErrorCode::TooLarge,
            format!(
                "the video is {} MiB or more, above the {} MiB limit",
                bytes >> 20,
                max_bytes >> 20
            ),
        )
    }

    pub fn is_transient(&self) -> bool {
        self.code.is_transient()
    }
}

impl fmt::Display for JobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for JobError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_round_trips_through_its_string() {
        for code in ErrorCode::ALL {
            assert_eq!(ErrorCode::parse(code.as_str()), *code);
        }
    }

    #[test]
    fn codes_are_unique_snake_case() {
        let mut seen = std::collections::HashSet::new();
        for code in ErrorCode::ALL {
            let s = code.as_str();
            assert!(seen.insert(s), "duplicate code {s}");
            assert!(s.chars().all(|c| c.is_ascii_lowercase() || c == '_'), "{s}");
        }
    }

    #[test]
    fn input_problems_are_permanent_and_transport_problems_retry() {
        assert!(!ErrorCode::TooLarge.is_transient());
        assert!(!ErrorCode::InvalidMedia.is_transient());
        assert!(!ErrorCode::SourceNotFound.is_transient());
        assert!(ErrorCode::UpstreamError.is_transient());
        assert!(ErrorCode::Timeout.is_transient());
        assert!(ErrorCode::WorkerCrashed.is_transient());
    }

    #[test]
    fn the_doors_wait_for_what_will_pass_and_give_up_on_the_rest() {
        for code in [
            ErrorCode::Unavailable,
            ErrorCode::ShuttingDown,
            ErrorCode::DiskFull,
            ErrorCode::Internal,
        ] {
            assert!(code.is_transient(), "{code}");
        }
        for code in [
            ErrorCode::InvalidUrl,
            ErrorCode::SsrfBlocked,
            ErrorCode::NotFound,
            ErrorCode::Cancelled,
        ] {
            assert!(!code.is_transient(), "{code}");
        }
    }

    #[test]
    fn every_code_has_a_status_that_fits_its_nature() {
        let table = [
            (ErrorCode::InvalidUrl, 400),
            (ErrorCode::SsrfBlocked, 400),
            (ErrorCode::InvalidId, 400),
            (ErrorCode::BadRequest, 400),
            (ErrorCode::InvalidQuery, 400),
            (ErrorCode::Unauthorized, 401),
            (ErrorCode::NotFound, 404),
            (ErrorCode::RenditionNotFound, 404),
            (ErrorCode::NotAVideo, 404),
            (ErrorCode::NotReady, 409),
            (ErrorCode::PayloadTooLarge, 413),
            (ErrorCode::UnsupportedMediaType, 415),
            (ErrorCode::WouldUpscale, 422),
            (ErrorCode::TooLarge, 422),
            (ErrorCode::QuotaExceeded, 403),
            (ErrorCode::Internal, 500),
            (ErrorCode::Unavailable, 503),
            (ErrorCode::ShuttingDown, 503),
            (ErrorCode::InsufficientStorage, 507),
            (ErrorCode::DiskFull, 503),
        ];
        for (code, status) in table {
            assert_eq!(code.http_status(), status, "{code}");
        }
        for code in ErrorCode::ALL {
            let status = code.http_status();
            assert!((400..600).contains(&status), "{code}");
            // A client may retry exactly what is transient (5xx but the bug).
            if *code != ErrorCode::Internal {
                assert_eq!(status >= 500, code.is_transient(), "{code}");
            }
        }
    }

    #[test]
    fn long_messages_are_capped() {
        let e = JobError::new(ErrorCode::DownloadFailed, "x".repeat(5000));
        assert_eq!(e.message.chars().count(), JobError::MAX_MESSAGE_CHARS + 1);
    }
}
