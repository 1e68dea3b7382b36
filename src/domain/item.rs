//! A captured item as users see it: where it came from, how far it got, what it contains.

use std::fmt;

/// The item's life cycle. `completed` is the only state whose media is served.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ItemStatus {
    Queued,
    Downloading,
    Processing,
    Completed,
    Failed,
    Cancelled,
}

impl ItemStatus {
    pub const ALL: [ItemStatus; 6] = [
        Self::Queued,
        Self::Downloading,
        Self::Processing,
        Self::Completed,
        Self::Failed,
        Self::Cancelled,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Downloading => "downloading",
            Self::Processing => "processing",
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }

    pub const fn is_terminal(self) -> bool {
        matches!(self, Self::Completed | Self::Failed | Self::Cancelled)
    }
}

impl fmt::Display for ItemStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an item holds: a video (captures and video imports) or a still image (photos sent to
/// the bot). The kind is fixed when the item is created and decides its paths and processing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ItemKind {
    Video,
    Image,
}

impl ItemKind {
    pub const ALL: [ItemKind; 2] = [Self::Video, Self::Image];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Video => "video",
            Self::Image => "image",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

impl fmt::Display for ItemKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which door a submission came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    Api,
    Telegram,
    Watch,
}

impl Source {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Api => "api",
            Self::Telegram => "telegram",
            Self::Watch => "watch",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Api, Self::Telegram, Self::Watch]
            .into_iter()
            .find(|v| v.as_str() == s)
    }
}

/// The step a running job is in; shown in progress reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stage {
    Download,
    Probe,
    Convert,
    Compress,
    Thumbnails,
    Finalize,
}

impl Stage {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Download => "download",
            Self::Probe => "probe",
            Self::Convert => "convert",
            Self::Compress => "compress",
            Self::Thumbnails => "thumbnails",
            Self::Finalize => "finalize",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::Download,
            Self::Probe,
            Self::Convert,
            Self::Compress,
            Self::Thumbnails,
            Self::Finalize,
        ]
        .into_iter()
        .find(|v| v.as_str() == s)
    }

    /// The item status a job in this stage shows.
    pub const fn item_status(self) -> ItemStatus {
        match self {
            Self::Download => ItemStatus::Downloading,
            _ => ItemStatus::Processing,
        }
    }
}

/// How far the current stage got. Byte counts come from the downloader; `percent` is derived
/// when the total is known.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Progress {
    pub stage: Stage,
    pub percent: Option<f64>,
    pub downloaded_bytes: Option<u64>,
    pub total_bytes: Option<u64>,
}

impl Progress {
    pub fn stage(stage: Stage) -> Self {
        Self {
            stage,
            percent: None,
            downloaded_bytes: None,
            total_bytes: None,
        }
    }

    pub fn bytes(stage: Stage, downloaded: u64, total: Option<u64>) -> Self {
        let percent = total
            .filter(|t| *t > 0)
            .map(|t| (downloaded as f64 * 100.0 / t as f64).clamp(0.0, 100.0));
        Self {
            stage,
            percent,
            downloaded_bytes: Some(downloaded),
            total_bytes: total,
        }
    }
}

/// What ffprobe says about the stored file. For an image, the fields only a video has
/// (duration, audio, bitrate, frame rate) are `None`, and `video_codec` is the picture's codec.
#[derive(Debug, Clone, PartialEq)]
pub struct MediaInfo {
    pub duration_seconds: Option<f64>,
    pub width: u32,
    pub height: u32,
    pub video_codec: String,
    pub audio_codec: Option<String>,
    pub bitrate_bps: Option<u64>,
    pub fps: Option<f64>,
    pub container: String,
}

/// The three thumbnail widths. Thumbnails are never wider than the source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ThumbSize {
    Small,
    Medium,
    Large,
}

impl ThumbSize {
    pub const ALL: [ThumbSize; 3] = [Self::Small, Self::Medium, Self::Large];

    pub const fn width(self) -> u32 {
        match self {
            Self::Small => 160,
            Self::Medium => 480,
            Self::Large => 1280,
        }
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Small => "small",
            Self::Medium => "medium",
            Self::Large => "large",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_is_derived_only_from_a_known_total() {
        let p = Progress::bytes(Stage::Download, 50, Some(200));
        assert_eq!(p.percent, Some(25.0));
        assert_eq!(Progress::bytes(Stage::Download, 50, None).percent, None);
        assert_eq!(Progress::bytes(Stage::Download, 50, Some(0)).percent, None);
        // A server that under-announces never makes us report more than 100%.
        assert_eq!(
            Progress::bytes(Stage::Download, 500, Some(200)).percent,
            Some(100.0)
        );
    }

    #[test]
    fn names_round_trip() {
        for s in ItemStatus::ALL {
            assert_eq!(ItemStatus::parse(s.as_str()), Some(s));
        }
        for s in ThumbSize::ALL {
            assert_eq!(ThumbSize::parse(s.as_str()), Some(s));
        }
        for k in ItemKind::ALL {
            assert_eq!(ItemKind::parse(k.as_str()), Some(k));
        }
        assert_eq!(ItemKind::parse("audio"), None);
        for s in [Source::Api, Source::Telegram, Source::Watch] {
            assert_eq!(Source::parse(s.as_str()), Some(s));
        }
        assert_eq!(Stage::parse("thumbnails"), Some(Stage::Thumbnails));
        assert_eq!(Stage::Download.item_status(), ItemStatus::Downloading);
        assert_eq!(Stage::Convert.item_status(), ItemStatus::Processing);
    }
}
