//! Where a search hit matched, for `GET /api/items?q=`: the field, a short snippet with the
//! matching words marked, and for a subtitle hit the cue's time and language. Worked out
//! here from the same folded words the index holds, so both databases say the same.

use serde::Serialize;

use crate::db::items::Item;
use crate::db::search::CueHit;
use crate::domain::search::{Query, snippet};

/// Characters of context a snippet shows.
const SNIPPET_CHARS: usize = 160;

#[derive(Debug, Serialize)]
pub struct MatchJson {
    /// `title`, `source_title`, `tags`, `uploader`, `note`, `description`, `url` or
    /// `subtitles`.
    pub field: &'static str,
    /// The snippet in pieces; `hit` marks the matching words. Plain text: show it as text.
    pub snippet: Vec<SegmentJson>,
    /// For a subtitle hit: when the cue starts and ends, and its language.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_seconds: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_seconds: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lang: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct SegmentJson {
    pub text: String,
    pub hit: bool,
}

impl MatchJson {
    /// Where `item` matched `query`: its subtitle cue when it was found by one, else the
    /// first of its fields (in the order people read them) holding a searched word.
    pub fn of(item: &Item, cue: Option<&CueHit>, query: &Query) -> Option<Self> {
        if let Some(cue) = cue {
            return Some(Self {
                field: "subtitles",
                snippet: segments(&cue.text, query),
                start_seconds: Some(cue.start_ms as f64 / 1000.0),
                end_seconds: Some(cue.end_ms as f64 / 1000.0),
                lang: Some(cue.lang.clone()),
            });
        }
        let meta = &item.source_meta;
        let tags = item
            .user
            .tags
            .iter()
            .chain(&meta.tags)
            .cloned()
            .collect::<Vec<_>>()
            .join(", ");
        let fields: [(&'static str, Option<&str>); 8] = [
            ("title", item.user.title.as_deref()),
            ("source_title", item.title.as_deref()),
            ("tags", Some(tags.as_str())),
            ("uploader", meta.uploader.as_deref()),
            ("uploader", meta.uploader_id.as_deref()),
            ("note", item.user.note.as_deref()),
            ("description", meta.description.as_deref()),
            ("url", item.source_url.as_deref()),
        ];
        fields.into_iter().find_map(|(field, text)| {
            let pieces = snippet(text?, query, SNIPPET_CHARS)?;
            Some(Self {
                field,
                snippet: pieces
                    .into_iter()
                    .map(|s| SegmentJson {
                        text: s.text,
                        hit: s.hit,
                    })
                    .collect(),
                start_seconds: None,
                end_seconds: None,
                lang: None,
            })
        })
    }
}

fn segments(text: &str, query: &Query) -> Vec<SegmentJson> {
    snippet(text, query, SNIPPET_CHARS)
        .map(|pieces| {
            pieces
                .into_iter()
                .map(|s| SegmentJson {
                    text: s.text,
                    hit: s.hit,
                })
                .collect()
        })
        .unwrap_or_else(|| {
            vec![SegmentJson {
                text: text.chars().take(SNIPPET_CHARS).collect(),
                hit: false,
            }]
        })
}
