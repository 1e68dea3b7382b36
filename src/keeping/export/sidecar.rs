//! The text files written beside an exported item: `.info.json` (everything the vault knows
//! about it, for people and scripts) and `.nfo` (what Jellyfin, Kodi and Plex read).
//!
//! Both are built from stored values only, so re-running the export writes the same bytes
//! when nothing changed. Titles and URLs come from platforms: JSON escapes them itself, and
//! the XML here escapes every markup character and drops what XML 1.0 cannot hold.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::clock;
use crate::db::items::Item;
use crate::db::renditions::Rendition;
use crate::domain::encoding::Encoding;
use crate::domain::source_meta::SourceMeta;

/// The file names the item's sidecars refer to (relative to the item's folder).
pub(super) struct SiblingNames {
    pub media: String,
    pub thumbnail: Option<String>,
    pub nfo: Option<String>,
    /// Each rendition's file, in the renditions' order.
    pub renditions: Vec<String>,
    /// Each subtitle track's file (`{stem}.{lang}.vtt`, as media servers look for them), by
    /// language.
    pub subtitles: Vec<(String, String)>,
}

#[derive(Serialize)]
struct InfoJson<'a> {
    /// What wrote this file, and the version of its shape.
    format: &'static str,
    id: String,
    kind: &'static str,
    title: Option<&'a str>,
    platform: &'static str,
    platform_name: &'static str,
    platform_media_id: Option<&'a str>,
    source: &'static str,
    source_url: Option<&'a str>,
    canonical_url: Option<&'a str>,
    /// The user who captured it.
    owner: Option<&'a str>,
    captured_at: String,
    completed_at: Option<String>,
    duration_seconds: Option<f64>,
    width: Option<u32>,
    height: Option<u32>,
    video_codec: Option<&'a str>,
    audio_codec: Option<&'a str>,
    bitrate_bps: Option<u64>,
    fps: Option<f64>,
    container: Option<&'a str>,
    size_bytes: Option<u64>,
    sha256: Option<&'a str>,
    encoding: Option<&'a Encoding>,
    /// What the source said: uploader, upload date, description, tags, chapters, language.
    #[serde(skip_serializing_if = "SourceMeta::is_empty")]
    source_metadata: &'a SourceMeta,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    warnings: &'a [String],
    files: FilesJson<'a>,
    renditions: Vec<RenditionJson<'a>>,
    /// Where the file sits in the vault's own tree (under media_root).
    vault_path: &'a str,
}

#[derive(Serialize)]
struct FilesJson<'a> {
    media: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    thumbnail: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    nfo: Option<&'a str>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    subtitles: BTreeMap<&'a str, &'a str>,
}

#[derive(Serialize)]
struct RenditionJson<'a> {
    quality: &'static str,
    width: u32,
    height: u32,
    size_bytes: u64,
    sha256: &'a str,
    file: &'a str,
}

/// The item's `.info.json`, pretty-printed, ending with a newline.
pub(super) fn info_json(
    item: &Item,
    renditions: &[Rendition],
    owner: Option<&str>,
    names: &SiblingNames,
) -> String {
    let media = item.media.as_ref();
    let info = InfoJson {
        format: "prsnl-export/1",
        id: item.id.to_string(),
        kind: item.kind.as_str(),
        title: item.title.as_deref(),
        platform: item.platform.as_str(),
        platform_name: item.platform.display_name(),
        platform_media_id: item.platform_media_id.as_deref(),
        source: item.source.as_str(),
        source_url: item.source_url.as_deref(),
        canonical_url: item.canonical_url.as_deref(),
        owner,
        captured_at: clock::rfc3339(item.created_at),
        completed_at: item.completed_at.map(clock::rfc3339),
        duration_seconds: media.and_then(|m| m.duration_seconds),
        width: media.map(|m| m.width),
        height: media.map(|m| m.height),
        video_codec: media.map(|m| m.video_codec.as_str()),
        audio_codec: media.and_then(|m| m.audio_codec.as_deref()),
        bitrate_bps: media.and_then(|m| m.bitrate_bps),
        fps: media.and_then(|m| m.fps),
        container: media.map(|m| m.container.as_str()),
        size_bytes: item.size_bytes,
        sha256: item.sha256.as_deref(),
        encoding: item.encoding.as_ref(),
        source_metadata: &item.source_meta,
        warnings: &item.warnings,
        files: FilesJson {
            media: &names.media,
            thumbnail: names.thumbnail.as_deref(),
            nfo: names.nfo.as_deref(),
            subtitles: names
                .subtitles
                .iter()
                .map(|(lang, file)| (lang.as_str(), file.as_str()))
                .collect(),
        },
        renditions: renditions
            .iter()
            .zip(&names.renditions)
            .map(|(r, file)| RenditionJson {
                quality: r.quality.as_str(),
                width: r.width,
                height: r.height,
                size_bytes: r.size_bytes,
                sha256: &r.sha256,
                file,
            })
            .collect(),
        vault_path: &item.paths.file,
    };
    let mut text = serde_json::to_string_pretty(&info).expect("plain data serializes");
    text.push('\n');
    text
}

/// The item's `.nfo`: a Kodi `<movie>` document, which Jellyfin and Plex's agents read too.
pub(super) fn nfo(item: &Item, date: &str) -> String {
    let mut out =
        String::from("<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n<movie>\n");
    let mut tag = |name: &str, attributes: &str, value: &str| {
        out.push_str(&format!(
            "  <{name}{attributes}>{}</{name}>\n",
            xml_text(value)
        ));
    };
    let source = &item.source_meta;
    tag("title", "", item.title.as_deref().unwrap_or("Untitled"));
    let from = item.platform.display_name();
    let plot = match (source.description.as_deref(), item.source_url.as_deref()) {
        (Some(description), _) => description.to_string(),
        (None, Some(url)) => format!("Captured from {from}: {url}"),
        (None, None) => format!("Captured from {from}"),
    };
    tag("plot", "", &plot);
    tag("premiered", "", date);
    tag("studio", "", source.uploader.as_deref().unwrap_or(from));
    for name in &source.tags {
        tag("tag", "", name);
    }
    if let Some(seconds) = item.media.as_ref().and_then(|m| m.duration_seconds) {
        // Kodi counts whole minutes; a 20-second clip is still one.
        let minutes = (seconds / 60.0).ceil().max(1.0);
        tag("runtime", "", &format!("{minutes:.0}"));
    }
    let added = clock::datetime(item.created_at);
    tag(
        "dateadded",
        "",
        &format!(
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
            added.year(),
            u8::from(added.month()),
            added.day(),
            added.hour(),
            added.minute(),
            added.second()
        ),
    );
    tag(
        "uniqueid",
        " type=\"prsnl\" default=\"true\"",
        &item.id.to_string(),
    );
    if let Some(platform_id) = item.platform_media_id.as_deref() {
        tag(
            "uniqueid",
            &format!(" type=\"{}\"", item.platform.as_str()),
            platform_id,
        );
    }
    out.push_str("</movie>\n");
    out
}

/// `value` as XML character data: markup escaped, and characters XML 1.0 forbids (controls
/// other than tab and newline) dropped.
fn xml_text(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' => out.push(c),
            c if c.is_control() || matches!(c, '\u{FFFE}' | '\u{FFFF}') => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_text_escapes_markup_and_drops_what_xml_cannot_hold() {
        assert_eq!(
            xml_text("</title><script>&'\"\u{0}\u{1b}ok\tok"),
            "&lt;/title&gt;&lt;script&gt;&amp;&apos;&quot;ok\tok"
        );
    }
}
