//! What a processed attempt leaves to store, the same for every kind of item.
//!
//! A capture and an image import both end with the item's own file, three thumbnails and
//! the media facts ([`ItemOutput`]); a transcode ends with a rendition. The Pipeline commits
//! and completes both item kinds through one path: only the file's kind differs.

use std::path::PathBuf;

use crate::actors::processing_worker::Processed;
use crate::actors::storage::{CommitFile, FileKind};
use crate::db::items::Completion;
use crate::domain::encoding::Encoding;
use crate::domain::layout::{MediaPaths, subtitle_path};
use crate::domain::source_meta::SourceMeta;
use crate::domain::{MediaInfo, Quality, ThumbSize};
use crate::media::processing::Transcoded;
use crate::media::subtitles::GatheredSubtitle;

#[derive(Debug)]
pub enum Output {
    Item(Box<ItemOutput>),
    Rendition(Transcoded),
}

/// The item's own file (a video or an image) and what processing learnt about it.
#[derive(Debug)]
pub struct ItemOutput {
    pub file: PathBuf,
    pub kind: FileKind,
    pub thumbnails: Vec<(ThumbSize, PathBuf)>,
    pub media: MediaInfo,
    pub size_bytes: u64,
    pub thumbnails_bytes: u64,
    pub sha256: String,
    /// How a video was made from its source (`None` for an image).
    pub encoding: Option<Encoding>,
    /// What the file's own tags said (used when the source itself said nothing).
    pub source_meta: SourceMeta,
    /// A video's subtitle tracks, as WebVTT files in the work directory.
    pub subtitles: Vec<GatheredSubtitle>,
}

impl From<Processed> for Output {
    fn from(processed: Processed) -> Self {
        match processed {
            Processed::Capture(video) => Self::Item(Box::new(ItemOutput {
                file: video.video,
                kind: FileKind::Video,
                thumbnails: video.thumbnails,
                media: video.media,
                size_bytes: video.size_bytes,
                thumbnails_bytes: video.thumbnails_bytes,
                sha256: video.sha256,
                encoding: Some(video.encoding),
                source_meta: video.source_meta,
                subtitles: video.subtitles,
            })),
            Processed::Image(image) => Self::Item(Box::new(ItemOutput {
                file: image.image,
                kind: FileKind::Image,
                thumbnails: image.thumbnails,
                media: image.media,
                size_bytes: image.size_bytes,
                thumbnails_bytes: image.thumbnails_bytes,
                sha256: image.sha256,
                encoding: None,
                source_meta: SourceMeta::default(),
                subtitles: Vec::new(),
            })),
            Processed::Rendition(made) => Self::Rendition(made),
        }
    }
}

impl Output {
    /// The files to move into the tree, and where they go; `None` for a rendition whose job
    /// names no quality (the transcode's start refuses those).
    pub fn commit_files(
        &self,
        paths: &MediaPaths,
        quality: Option<Quality>,
    ) -> Option<Vec<CommitFile>> {
        match self {
            Self::Item(item) => {
                let own = CommitFile {
                    source: item.file.clone(),
                    relative: paths.file.clone(),
                    kind: item.kind,
                };
                let thumbnails = item.thumbnails.iter().map(|(size, path)| CommitFile {
                    source: path.clone(),
                    relative: paths.thumbnail(*size).to_string(),
                    kind: FileKind::Thumbnail,
                });
                let subtitles = item.subtitles.iter().map(|sub| CommitFile {
                    source: sub.path.clone(),
                    relative: subtitle_path(&paths.file, sub.track.lang.as_str()),
                    kind: FileKind::Subtitle,
                });
                Some(
                    std::iter::once(own)
                        .chain(thumbnails)
                        .chain(subtitles)
                        .collect(),
                )
            }
            Self::Rendition(made) => quality.map(|quality| {
                vec![CommitFile {
                    source: made.path.clone(),
                    relative: paths.rendition(quality),
                    kind: FileKind::Rendition,
                }]
            }),
        }
    }
}

impl ItemOutput {
    /// The item's completed facts. `shared_paths`: the files of an identical item this one
    /// shares instead of storing its own.
    pub fn completion(
        self,
        title: Option<String>,
        from_source: SourceMeta,
        announced_height: Option<u32>,
        shared_paths: Option<MediaPaths>,
    ) -> Completion {
        Completion {
            title,
            source_meta: if from_source.is_empty() {
                self.source_meta
            } else {
                from_source
            },
            warnings: throttle_warning(announced_height, self.media.height)
                .into_iter()
                .collect(),
            media: self.media,
            size_bytes: self.size_bytes,
            thumbnails_bytes: self.thumbnails_bytes,
            sha256: self.sha256,
            encoding: self.encoding,
            subtitles: self.subtitles.iter().map(|s| s.track.clone()).collect(),
            cues: self
                .subtitles
                .into_iter()
                .map(|s| (s.track.lang, s.cues))
                .collect(),
            shared_paths,
        }
    }
}

/// A source that sends much less than it announced is throttling us (or serving a fallback);
/// the item is kept, with a warning a person can act on.
fn throttle_warning(announced_height: Option<u32>, height: u32) -> Option<String> {
    let announced = announced_height?;
    (f64::from(height) < 0.6 * f64::from(announced)).then(|| {
        format!("the source announced {announced}p but sent {height}p; the download was probably throttled")
    })
}

#[cfg(test)]
mod tests {
    use super::throttle_warning;

    #[test]
    fn only_far_lower_resolutions_are_throttling() {
        assert!(throttle_warning(Some(1080), 240).unwrap().contains("1080p"));
        assert!(throttle_warning(Some(1080), 720).is_none());
        assert!(throttle_warning(Some(720), 720).is_none());
        assert!(throttle_warning(None, 240).is_none());
    }
}
