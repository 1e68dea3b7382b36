//! What an exported item consists of: its file, its renditions and thumbnail (taken from the
//! media tree) and its sidecars (written), each at a path the name pattern gives.

use std::path::PathBuf;

use super::sidecar::{self, SiblingNames};
use crate::db::items::Item;
use crate::db::renditions::Rendition;
use crate::domain::export_name::{NameFields, NamePattern};
use crate::domain::layout::subtitle_path;
use crate::domain::{ItemKind, ThumbSize};
use crate::storage::MediaRoot;

/// One file of the export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Planned {
    /// Relative to the export directory, `/`-separated.
    pub rel: String,
    pub content: Content,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Content {
    /// A stored file, by its absolute path under media_root; `None` when the stored path is
    /// unusable (a corrupt row must not make the export read outside the media tree).
    Media(Option<PathBuf>),
    /// A sidecar's text.
    Text(String),
}

/// Every file of `item` in the export.
pub(super) fn plan_item(
    item: &Item,
    renditions: &[Rendition],
    owner: Option<&str>,
    pattern: &NamePattern,
    media: &MediaRoot,
) -> Vec<Planned> {
    let source = &item.source_meta;
    let date = source
        .upload_date
        .clone()
        .or_else(|| item.created_at.day())
        .unwrap_or_default();
    let id = item.id.to_string();
    let segments = pattern.render(&NameFields {
        id: &id,
        title: item.title.as_deref(),
        uploader: source.uploader.as_deref(),
        platform: item.platform.display_name(),
        date: &date,
        source_id: item.platform_media_id.as_deref(),
        kind: item.kind.as_str(),
    });
    let Some((stem, folders)) = segments.split_last() else {
        return Vec::new();
    };
    let folder = folders.iter().map(|s| format!("{s}/")).collect::<String>();
    let at = |name: &str| format!("{folder}{name}");
    let extension = std::path::Path::new(&item.paths.file)
        .extension()
        .and_then(|e| e.to_str())
        .filter(|e| (1..=8).contains(&e.len()) && e.bytes().all(|b| b.is_ascii_alphanumeric()))
        .unwrap_or(match item.kind {
            ItemKind::Video => "mp4",
            ItemKind::Image => "jpg",
        });
    let video = item.kind == ItemKind::Video;
    let names = SiblingNames {
        media: format!("{stem}.{extension}"),
        thumbnail: video.then(|| format!("{stem}-thumb.jpg")),
        nfo: video.then(|| format!("{stem}.nfo")),
        renditions: renditions
            .iter()
            .map(|r| format!("{stem} - {}.mp4", r.quality.as_str()))
            .collect(),
        subtitles: item
            .subtitles
            .iter()
            .map(|t| (t.lang.to_string(), format!("{stem}.{}.vtt", t.lang)))
            .collect(),
    };
    let mut stored = vec![(names.media.clone(), item.paths.file.clone())];
    if let Some(thumbnail) = &names.thumbnail {
        let large = item.paths.thumbnail(ThumbSize::Large).to_string();
        stored.push((thumbnail.clone(), large));
    }
    for (rendition, name) in renditions.iter().zip(&names.renditions) {
        stored.push((name.clone(), rendition.path.clone()));
    }
    for (track, (_, name)) in item.subtitles.iter().zip(&names.subtitles) {
        let sidecar = subtitle_path(&item.paths.file, track.lang.as_str());
        stored.push((name.clone(), sidecar));
    }
    let mut planned = Vec::with_capacity(stored.len() + 2);
    for (name, relative) in stored {
        planned.push(Planned {
            rel: at(&name),
            content: Content::Media(media.resolve(&relative)),
        });
    }
    planned.push(Planned {
        rel: at(&format!("{stem}.info.json")),
        content: Content::Text(sidecar::info_json(item, renditions, owner, &names)),
    });
    if let Some(nfo) = &names.nfo {
        planned.push(Planned {
            rel: at(nfo),
            content: Content::Text(sidecar::nfo(item, &date)),
        });
    }
    planned
}
