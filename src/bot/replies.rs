//! What the bot says about an item, in plain words. Replies are sent as plain text (no parse
//! mode), so nothing in a title can format or link anything; titles and error messages are
//! cleaned of control and bidi characters and capped (THREATS SUB-08).

use crate::db::items::Item;
use crate::domain::layout::public_link;
use crate::domain::text::clean;
use crate::domain::{ItemKind, ItemStatus, Progress, Stage};

/// A reply's text, and whether it tells the end of the item (no more edits).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub text: String,
    pub finished: bool,
}

/// Where the stored files can be fetched: `server.public_base_url` (a CDN mirroring the media
/// tree) when set, else the API's own routes.
#[derive(Debug, Clone)]
pub struct Links {
    pub public_base_url: String,
}

impl Links {
    /// The video's stream, or the image itself.
    pub fn stream(&self, item: &Item) -> String {
        let api_path = match item.kind {
            ItemKind::Video => format!("/api/videos/{}/stream", item.id),
            ItemKind::Image => format!("/api/images/{}", item.id),
        };
        public_link(&self.public_base_url, &item.paths.file, api_path)
    }
}

/// What was sent, as people say it: the platform of a link ("YouTube"), or the kind of file.
pub fn label(item: &Item) -> &'static str {
    match (item.canonical_url.is_some(), item.kind) {
        (true, _) => item.platform.display_name(),
        (false, ItemKind::Video) => "video",
        (false, ItemKind::Image) => "photo",
    }
}

/// The reply about `item` as it is now.
pub fn render(item: &Item, links: &Links) -> Rendered {
    let label = label(item);
    let text = match item.status {
        ItemStatus::Queued => format!("queued · {label}"),
        ItemStatus::Downloading | ItemStatus::Processing => {
            format!("{} · {label}", progress_words(item.progress.as_ref()))
        }
        ItemStatus::Completed => completed(item, links),
        ItemStatus::Failed => match &item.error {
            Some(error) => format!(
                "could not save it ({label}): {} [{}]",
                clean(&error.message, 300),
                error.code.as_str()
            ),
            None => format!("could not save it ({label})"),
        },
        ItemStatus::Cancelled => format!("cancelled · {label}"),
    };
    Rendered {
        text,
        finished: item.status.is_terminal(),
    }
}

fn progress_words(progress: Option<&Progress>) -> String {
    let Some(progress) = progress else {
        return "working".into();
    };
    match progress.stage {
        Stage::Download => match (progress.percent, progress.downloaded_bytes) {
            (Some(percent), _) => format!("downloading {percent:.0}%"),
            (None, Some(bytes)) => format!("downloading {}", human_bytes(bytes)),
            (None, None) => "downloading".into(),
        },
        Stage::Probe => "checking the video".into(),
        Stage::Convert => "converting".into(),
        Stage::Compress => "compressing".into(),
        Stage::Thumbnails => "making thumbnails".into(),
        Stage::Finalize => "storing".into(),
    }
}

fn completed(item: &Item, links: &Links) -> String {
    let title = item
        .title
        .as_deref()
        .map(|t| clean(t, 200))
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| "untitled".into());
    let mut facts = Vec::new();
    if let Some(media) = &item.media {
        if let Some(seconds) = media.duration_seconds.filter(|s| *s > 0.0) {
            facts.push(duration(seconds));
        }
        facts.push(format!("{}×{}", media.width, media.height));
    }
    if let Some(size) = item.size_bytes {
        facts.push(human_bytes(size));
    }
    let mut text = format!("saved: {title}");
    if !facts.is_empty() {
        text.push('\n');
        text.push_str(&facts.join(" · "));
    }
    text.push('\n');
    text.push_str(&links.stream(item));
    text
}

/// `m:ss`, or `h:mm:ss` from an hour on.
pub fn duration(seconds: f64) -> String {
    let total = seconds.round().max(0.0) as u64;
    let (h, m, s) = (total / 3600, total / 60 % 60, total % 60);
    if h > 0 {
        format!("{h}:{m:02}:{s:02}")
    } else {
        format!("{m}:{s:02}")
    }
}

pub fn human_bytes(bytes: u64) -> String {
    crate::domain::people::format_size_decimal(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::layout::MediaPaths;
    use crate::domain::{ErrorCode, ItemId, JobError, MediaInfo, Platform, Source};

    fn item(status: ItemStatus) -> Item {
        let id = ItemId::new();
        Item {
            id,
            owner: None,
            source: Source::Telegram,
            source_url: None,
            canonical_url: Some("https://www.youtube.com/watch?v=x".into()),
            platform: Platform::Youtube,
            platform_media_id: None,
            status,
            progress: None,
            error: None,
            title: None,
            media: None,
            size_bytes: None,
            thumbnails_bytes: None,
            sha256: None,
            kind: ItemKind::Video,
            paths: MediaPaths::for_item(
                id.as_uuid(),
                ItemKind::Video,
                time::OffsetDateTime::UNIX_EPOCH,
            ),
            warnings: Vec::new(),
            encoding: None,
            source_meta: Default::default(),
            subtitles: Vec::new(),
            user: Default::default(),
            created_at: Default::default(),
            updated_at: Default::default(),
            completed_at: None,
        }
    }

    fn links(base: &str) -> Links {
        Links {
            public_base_url: base.into(),
        }
    }

    #[test]
    fn a_moving_item_says_what_it_is_doing() {
        let mut it = item(ItemStatus::Downloading);
        it.progress = Some(Progress {
            stage: Stage::Download,
            percent: Some(45.4),
            downloaded_bytes: Some(1),
            total_bytes: Some(2),
        });
        let r = render(&it, &links(""));
        assert_eq!(r.text, "downloading 45% · YouTube");
        assert!(!r.finished);
        assert_eq!(
            render(&item(ItemStatus::Queued), &links("")).text,
            "queued · YouTube"
        );
    }

    #[test]
    fn a_completed_item_gives_its_details_and_link() {
        let mut it = item(ItemStatus::Completed);
        it.title = Some("A \u{202e}title\nwith a break".into());
        it.size_bytes = Some(12_345_678);
        it.media = Some(MediaInfo {
            duration_seconds: Some(83.4),
            width: 1280,
            height: 720,
            video_codec: "h264".into(),
            audio_codec: None,
            bitrate_bps: None,
            fps: None,
            container: "mp4".into(),
        });
        let r = render(&it, &links("https://cdn.example/"));
        assert!(r.finished);
        assert_eq!(
            r.text,
            format!(
                "saved: A title with a break\n1:23 · 1280×720 · 12.3 MB\nhttps://cdn.example/{}",
                it.paths.file
            )
        );
        // A photo sent to the bot links to the image itself.
        let mut photo = it.clone();
        photo.kind = ItemKind::Image;
        photo.canonical_url = None;
        assert!(
            render(&photo, &links(""))
                .text
                .ends_with(&format!("/api/images/{}", it.id))
        );
        assert_eq!(label(&photo), "photo");
        let local = render(&it, &links(""));
        assert!(
            local
                .text
                .ends_with(&format!("/api/videos/{}/stream", it.id))
        );
    }

    #[test]
    fn a_failure_is_told_in_plain_words_with_its_code() {
        let mut it = item(ItemStatus::Failed);
        it.platform = Platform::Generic;
        it.error = Some(JobError::new(ErrorCode::SsrfBlocked, "no\u{1b}[31m way"));
        let r = render(&it, &links(""));
        assert_eq!(r.text, "could not save it (web): no[31m way [ssrf_blocked]");
        assert!(r.finished);
    }

    #[test]
    fn durations_and_sizes_read_naturally() {
        assert_eq!(duration(5.0), "0:05");
        assert_eq!(duration(3725.0), "1:02:05");
        assert_eq!(human_bytes(999), "999 B");
        assert_eq!(human_bytes(20_000_000), "20.0 MB");
    }
}
