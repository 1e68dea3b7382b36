//! What an exported item consists of: its file, its renditions and thumbnail (taken from the
//! media tree) and its sidecars (written), each at a path the name pattern gives.

use std::path::PathBuf;

use super::sidecar::{self, SiblingNames};
use crate::db::items::Item;
use crate::db::renditions::Rendition;
use crate::domain::export_name::{NameFields, NamePattern};
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
    /// A stored file, by its absolute path under media_root.
    Media(PathBuf),
    /// A sidecar's text.
    Text(String),
}

/// Every file of `item` in the export; empty when a stored path is unusable (a corrupt row
/// must not make the export write outside its directory or read outside the media tree).
pub(super) fn plan_item(
    item: &Item,
    renditions: &[Rendition],
    owner: Option<&str>,
    pattern: &NamePattern,
    media: &MediaRoot,
) -> Vec<Planned> {
    let date = item.created_at.day().unwrap_or_default();
    let id = item.id.to_string();
    let segments = pattern.render(&NameFields {
        id: &id,
        title: item.title.as_deref(),
        uploader: None,
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
    let extension = item
        .paths
        .file
        .rsplit_once('.')
        .map_or("mp4", |(_, ext)| ext);
    let video = item.kind == ItemKind::Video;
    let names = SiblingNames {
        media: format!("{stem}.{extension}"),
        thumbnail: video.then(|| format!("{stem}-thumb.jpg")),
        nfo: video.then(|| format!("{stem}.nfo")),
        renditions: renditions
            .iter()
            .map(|r| format!("{stem} - {}.mp4", r.quality.as_str()))
            .collect(),
    };
    let mut stored = vec![(names.media.clone(), item.paths.file.as_str())];
    if let Some(thumbnail) = &names.thumbnail {
        stored.push((thumbnail.clone(), item.paths.thumbnail(ThumbSize::Large)));
    }
    for (rendition, name) in renditions.iter().zip(&names.renditions) {
        stored.push((name.clone(), rendition.path.as_str()));
    }
    let mut planned = Vec::with_capacity(stored.len() + 2);
    for (name, relative) in stored {
        let Some(source) = media.resolve(relative) else {
            return Vec::new();
        };
        planned.push(Planned {
            rel: at(&name),
            content: Content::Media(source),
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
