//! Where an item's files live, relative to `media_root` (BRIEF §3).
//!
//! The paths are fixed when the item is created, from its creation month, so a retry after a
//! month boundary lands in the same place and a CDN can mirror the tree as it is.

use time::OffsetDateTime;
use uuid::Uuid;

use super::item::{ItemKind, ThumbSize};
use super::quality::Quality;

/// What a stored file is, for the storage accounting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    Video,
    Image,
    Thumbnail,
    Rendition,
    Subtitle,
}

/// The relative paths of one item's files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaPaths {
    /// The item's own file: `videos/YYYY/MM/{id}.mp4` or `images/YYYY/MM/{id}.jpg`.
    pub file: String,
    pub thumb_small: String,
    pub thumb_medium: String,
    pub thumb_large: String,
}

impl MediaPaths {
    pub fn for_item(id: Uuid, kind: ItemKind, created_at: OffsetDateTime) -> Self {
        let month = format!(
            "{:04}/{:02}",
            created_at.year(),
            u8::from(created_at.month())
        );
        let thumb = |size: ThumbSize| format!("thumbnails/{month}/{id}_{}.jpg", size.as_str());
        Self {
            file: match kind {
                ItemKind::Video => format!("videos/{month}/{id}.mp4"),
                ItemKind::Image => format!("images/{month}/{id}.jpg"),
            },
            thumb_small: thumb(ThumbSize::Small),
            thumb_medium: thumb(ThumbSize::Medium),
            thumb_large: thumb(ThumbSize::Large),
        }
    }

    /// A rendition sits beside the video: `videos/YYYY/MM/{id}_{480p}.mp4` (only videos
    /// have renditions).
    pub fn rendition(&self, quality: Quality) -> String {
        rendition_path(&self.file, quality)
    }

    pub fn thumbnail(&self, size: ThumbSize) -> &str {
        match size {
            ThumbSize::Small => &self.thumb_small,
            ThumbSize::Medium => &self.thumb_medium,
            ThumbSize::Large => &self.thumb_large,
        }
    }
}

/// Where a video's subtitle sidecar in `lang` lives: `subtitles/YYYY/MM/{stem}.{lang}.vtt`,
/// beside the video's own month and named after its file, so items sharing a video share
/// its subtitles as they share its thumbnails. `lang` is a checked
/// [`SubtitleLang`](super::subtitle_track::SubtitleLang).
pub fn subtitle_path(video: &str, lang: &str) -> String {
    let stem = video.trim_end_matches(".mp4");
    let stem = stem.strip_prefix("videos/").unwrap_or(stem);
    format!("subtitles/{stem}.{lang}.vtt")
}

/// The path of the `quality` rendition of the video at `video`.
pub fn rendition_path(video: &str, quality: Quality) -> String {
    format!("{}_{quality}.mp4", video.trim_end_matches(".mp4"))
}

/// Where a stored file is fetched from: the CDN mirror of the tree when `public_base_url` is
/// set, else the API route that serves it.
pub fn public_link(public_base_url: &str, relative: &str, api_path: String) -> String {
    let base = public_base_url.trim_end_matches('/');
    if base.is_empty() {
        api_path
    } else {
        format!("{base}/{relative}")
    }
}

/// True when `rel` is a path this module could have produced: relative, no `..`, no empty or
/// hidden components. Checked before any stored path is joined to `media_root` (THREATS FS-05).
pub fn is_safe_relative_path(rel: &str) -> bool {
    !rel.is_empty()
        && !rel.starts_with('/')
        && rel.split('/').all(|part| {
            !part.is_empty()
                && !part.starts_with('.')
                && part
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn paths_follow_the_creation_month() {
        let id = Uuid::parse_str("01932c07-0000-7000-8000-000000000001").unwrap();
        let paths = MediaPaths::for_item(id, ItemKind::Video, datetime!(2026-03-31 23:59:59 UTC));
        assert_eq!(paths.file, format!("videos/2026/03/{id}.mp4"));
        assert_eq!(
            paths.thumb_small,
            format!("thumbnails/2026/03/{id}_small.jpg")
        );
        assert_eq!(
            paths.thumbnail(ThumbSize::Large),
            format!("thumbnails/2026/03/{id}_large.jpg")
        );
        assert_eq!(
            paths.rendition(Quality::P480),
            format!("videos/2026/03/{id}_480p.mp4")
        );
        assert!(is_safe_relative_path(&paths.rendition(Quality::P1080)));
        for p in [
            &paths.file,
            &paths.thumb_small,
            &paths.thumb_medium,
            &paths.thumb_large,
        ] {
            assert!(is_safe_relative_path(p), "{p}");
        }
    }

    #[test]
    fn an_image_lives_under_images_with_the_same_thumbnails() {
        let id = Uuid::parse_str("01932c07-0000-7000-8000-000000000002").unwrap();
        let when = datetime!(2026-12-01 00:00:00 UTC);
        let image = MediaPaths::for_item(id, ItemKind::Image, when);
        assert_eq!(image.file, format!("images/2026/12/{id}.jpg"));
        let video = MediaPaths::for_item(id, ItemKind::Video, when);
        for size in ThumbSize::ALL {
            assert_eq!(image.thumbnail(size), video.thumbnail(size));
        }
        assert_eq!(
            image.thumbnail(ThumbSize::Medium),
            format!("thumbnails/2026/12/{id}_medium.jpg")
        );
        assert!(is_safe_relative_path(&image.file));
    }

    #[test]
    fn traversal_and_hidden_paths_are_unsafe() {
        for bad in [
            "",
            "/etc/passwd",
            "videos/../x",
            "videos/./x",
            "a//b",
            ".env",
            "a/b c",
            "a/%2e%2e/b",
        ] {
            assert!(!is_safe_relative_path(bad), "{bad}");
        }
    }
}
