//! Which media files a dumped row names: a completed item its file and three thumbnails, a
//! rendition its file. Read from the dump's own rows, so the files a backup copies are exactly
//! those of the database state it saved.

use serde_json::Value;

use crate::db::dump::Record;
use crate::domain::layout::subtitle_path;
use crate::domain::subtitle_track::SubtitleTrack;

/// A file a row names, and the SHA-256 the database recorded for it when there is one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Named {
    pub path: String,
    pub sha256: Option<String>,
    /// The item that names it, for messages.
    pub item: String,
}

/// The files `record` of `table` names (none for rows of other tables, or for items that
/// are not completed: their files do not exist yet, or no longer).
pub(super) fn named_files(table: &str, record: &Record) -> Vec<Named> {
    let text = |key: &str| record.get(key).and_then(Value::as_str).map(str::to_string);
    let item = text(if table == "items" { "id" } else { "item_id" }).unwrap_or_default();
    match table {
        "items" if text("status").as_deref() == Some("completed") => {
            let mut named = Vec::with_capacity(4);
            if let Some(path) = text("video_path") {
                named.push(Named {
                    path,
                    sha256: text("sha256"),
                    item: item.clone(),
                });
            }
            for key in ["thumb_small_path", "thumb_medium_path", "thumb_large_path"] {
                if let Some(path) = text(key) {
                    named.push(Named {
                        path,
                        sha256: None,
                        item: item.clone(),
                    });
                }
            }
            // Subtitle sidecars are named by the video's path and each track's language.
            let tracks: Vec<SubtitleTrack> = text("subtitles")
                .and_then(|s| serde_json::from_str(&s).ok())
                .unwrap_or_default();
            if let Some(video) = text("video_path") {
                named.extend(tracks.iter().map(|t| Named {
                    path: subtitle_path(&video, t.lang.as_str()),
                    sha256: None,
                    item: item.clone(),
                }));
            }
            named
        }
        "renditions" => text("path")
            .map(|path| Named {
                path,
                sha256: text("sha256"),
                item,
            })
            .into_iter()
            .collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(json: serde_json::Value) -> Record {
        json.as_object().unwrap().clone()
    }

    #[test]
    fn a_completed_item_names_its_file_and_thumbnails() {
        let item = record(serde_json::json!({
            "id": "i1", "status": "completed", "video_path": "videos/2026/11/i1.mp4",
            "sha256": "ab", "thumb_small_path": "thumbnails/2026/11/i1_small.jpg",
            "thumb_medium_path": "thumbnails/2026/11/i1_medium.jpg",
            "thumb_large_path": "thumbnails/2026/11/i1_large.jpg"
        }));
        let named = named_files("items", &item);
        assert_eq!(named.len(), 4);
        assert_eq!(named[0].sha256.as_deref(), Some("ab"));
        assert!(named.iter().all(|n| n.item == "i1"));
    }

    #[test]
    fn unfinished_items_and_other_tables_name_nothing() {
        let queued = record(serde_json::json!({
            "id": "i2", "status": "queued", "video_path": "videos/2026/11/i2.mp4"
        }));
        assert!(named_files("items", &queued).is_empty());
        let job = record(serde_json::json!({"id": "j", "item_id": "i2"}));
        assert!(named_files("jobs", &job).is_empty());
        let rendition = record(serde_json::json!({
            "item_id": "i1", "path": "videos/2026/11/i1_480p.mp4", "sha256": "cd"
        }));
        assert_eq!(named_files("renditions", &rendition)[0].item, "i1");
    }
}
