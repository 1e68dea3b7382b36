//! The closed sets that label values come from. Anything else that could vary without bound
//! (a URL, a title, an id) has no way into a label: every value here is a `&'static str`.

use crate::domain::ErrorCode;

/// The `code` label: the stable error code, or `none` for success. (An empty label value is
/// the same as no label to Prometheus, which makes selectors surprising; `none` is explicit.)
pub fn code(code: Option<ErrorCode>) -> &'static str {
    code.map_or("none", ErrorCode::as_str)
}

/// How an attempt of a job ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobOutcome {
    Completed,
    /// Failed, and queued for another attempt.
    Retried,
    Failed,
    /// Interrupted by a shutdown and queued again without an attempt being charged.
    Released,
    /// Stopped because its item was deleted.
    Cancelled,
    /// The platform refused it; it waits, uncharged, for the platform's breaker.
    Postponed,
}

impl JobOutcome {
    pub const ALL: [JobOutcome; 6] = [
        Self::Completed,
        Self::Retried,
        Self::Failed,
        Self::Released,
        Self::Cancelled,
        Self::Postponed,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Completed => "completed",
            Self::Retried => "retried",
            Self::Failed => "failed",
            Self::Released => "released",
            Self::Cancelled => "cancelled",
            Self::Postponed => "postponed",
        }
    }
}

/// What became of a submission at the door (API, Telegram, watch folder).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaptureOutcome {
    /// A new capture was queued (or a failed one queued again).
    Accepted,
    /// The URL or video was already stored or queued.
    Duplicate,
    /// Bad input: malformed URL, forbidden address, unsupported file.
    Rejected,
    /// The service could not take it (shutting down, database unavailable).
    Error,
}

impl CaptureOutcome {
    pub const ALL: [CaptureOutcome; 4] =
        [Self::Accepted, Self::Duplicate, Self::Rejected, Self::Error];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Accepted => "accepted",
            Self::Duplicate => "duplicate",
            Self::Rejected => "rejected",
            Self::Error => "error",
        }
    }

    /// The outcome of a submission refused with `code`.
    pub fn of_error(code: ErrorCode) -> Self {
        match code {
            ErrorCode::Unavailable | ErrorCode::ShuttingDown | ErrorCode::Internal => Self::Error,
            _ => Self::Rejected,
        }
    }
}

/// A timed step of processing. Transcodes (renditions) are one step of their own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcessingStage {
    Probe,
    Convert,
    Compress,
    Thumbnails,
    Transcode,
}

impl ProcessingStage {
    pub const ALL: [ProcessingStage; 5] = [
        Self::Probe,
        Self::Convert,
        Self::Compress,
        Self::Thumbnails,
        Self::Transcode,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Probe => "probe",
            Self::Convert => "convert",
            Self::Compress => "compress",
            Self::Thumbnails => "thumbnails",
            Self::Transcode => "transcode",
        }
    }
}

/// A kind of clean-up the StorageActor does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CleanupOperation {
    /// A work directory under temp/processing (after each attempt, and by the sweep).
    Temp,
    /// A partial download kept for resuming, whose job will not run again.
    Resume,
    /// A file in the media tree that no row refers to, moved to quarantine.
    Orphan,
    /// A quarantined file past its retention, deleted.
    QuarantinePurge,
}

impl CleanupOperation {
    pub const ALL: [CleanupOperation; 4] = [
        Self::Temp,
        Self::Resume,
        Self::Orphan,
        Self::QuarantinePurge,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Temp => "temp",
            Self::Resume => "resume",
            Self::Orphan => "orphan",
            Self::QuarantinePurge => "quarantine_purge",
        }
    }

    /// The status of a success of this operation.
    pub const fn done(self) -> CleanupStatus {
        match self {
            Self::Orphan => CleanupStatus::Quarantined,
            _ => CleanupStatus::Removed,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CleanupStatus {
    Removed,
    Quarantined,
    Failed,
}

impl CleanupStatus {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Removed => "removed",
            Self::Quarantined => "quarantined",
            Self::Failed => "failed",
        }
    }
}

/// Why the watch folder was scanned in full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RescanReason {
    /// At start: files dropped while the service was down.
    Startup,
    /// The periodic reconcile (`watch.rescan_secs`).
    Periodic,
    /// The kernel's event queue overflowed: events were lost.
    Overflow,
}

impl RescanReason {
    pub const ALL: [Self; 3] = [Self::Startup, Self::Periodic, Self::Overflow];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Startup => "startup",
            Self::Periodic => "periodic",
            Self::Overflow => "overflow",
        }
    }
}

/// What became of a file taken from the watch folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatchOutcome {
    /// A video, recorded for import.
    Imported,
    /// A file seen before (same device, inode, size and mtime): its earlier record stands.
    Duplicate,
    /// A link file, read (its links were submitted like any capture).
    Links,
    /// Moved to `failed/` with a note.
    Failed,
}

impl WatchOutcome {
    pub const ALL: [Self; 4] = [Self::Imported, Self::Duplicate, Self::Links, Self::Failed];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Imported => "imported",
            Self::Duplicate => "duplicate",
            Self::Links => "links",
            Self::Failed => "failed",
        }
    }
}
