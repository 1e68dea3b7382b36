//! What yt-dlp prints on stdout: one line at a time, told apart by the `PRSNL-*` prefixes of
//! the templates in `argv.rs` (info JSON, progress, final path); everything else is noise.
//!
//! Parsing only: a line never fails, it becomes `Line::Other`. Decisions about what a line
//! means for the download are made in `refusals.rs` and `run.rs`, never here.

use std::path::PathBuf;

use serde::Deserialize;

use crate::domain::source_meta::{RawSourceMeta, SourceMeta};

const INFO_PREFIX: &str = "PRSNL-INFO ";
const PROGRESS_PREFIX: &str = "PRSNL-PROGRESS ";
const FILE_PREFIX: &str = "PRSNL-FILE ";

/// One line of yt-dlp's stdout.
#[derive(Debug)]
pub enum Line {
    Info(Box<VideoInfo>),
    Progress { downloaded: u64, total: Option<u64> },
    File(PathBuf),
    Other,
}

/// The parts of yt-dlp's info JSON we act on.
#[derive(Debug, Default, Deserialize)]
pub struct VideoInfo {
    pub title: Option<String>,
    #[serde(rename = "_type")]
    pub kind: Option<String>,
    pub duration: Option<f64>,
    pub filesize: Option<f64>,
    pub filesize_approx: Option<f64>,
    pub is_live: Option<bool>,
    pub live_status: Option<String>,
    pub playlist_index: Option<u64>,
    pub n_entries: Option<u64>,
    /// Height of the format(s) yt-dlp chose.
    #[serde(default, deserialize_with = "lenient_height")]
    pub height: Option<u32>,
    // What the source says about the video. Extractors differ in which of these they fill
    // and in their types, so each is read leniently: a surprise drops the value, never the
    // line (which carries the checks above).
    #[serde(default, deserialize_with = "lenient_text")]
    pub uploader: Option<String>,
    #[serde(default, deserialize_with = "lenient_text")]
    pub channel: Option<String>,
    #[serde(default, deserialize_with = "lenient_text")]
    pub uploader_id: Option<String>,
    #[serde(default, deserialize_with = "lenient_text")]
    pub channel_id: Option<String>,
    #[serde(default, deserialize_with = "lenient_text")]
    pub uploader_url: Option<String>,
    #[serde(default, deserialize_with = "lenient_text")]
    pub channel_url: Option<String>,
    #[serde(default, deserialize_with = "lenient_text")]
    pub upload_date: Option<String>,
    #[serde(default, deserialize_with = "lenient_text")]
    pub release_date: Option<String>,
    #[serde(default, deserialize_with = "lenient_text")]
    pub description: Option<String>,
    #[serde(default, deserialize_with = "lenient_text")]
    pub language: Option<String>,
    #[serde(default, deserialize_with = "lenient_text")]
    pub thumbnail: Option<String>,
    #[serde(default)]
    pub tags: Option<serde_json::Value>,
    #[serde(default)]
    pub categories: Option<serde_json::Value>,
    #[serde(default)]
    pub chapters: Option<serde_json::Value>,
}

impl VideoInfo {
    /// What the source says, checked (`SourceMeta::from_raw`).
    pub fn source_meta(&self) -> SourceMeta {
        let strings = |v: &Option<serde_json::Value>| -> Vec<String> {
            v.as_ref()
                .and_then(serde_json::Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|t| t.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default()
        };
        let mut tags = strings(&self.tags);
        tags.extend(strings(&self.categories));
        let chapters: Vec<(f64, Option<f64>, Option<String>)> = self
            .chapters
            .as_ref()
            .and_then(serde_json::Value::as_array)
            .map(|list| {
                list.iter()
                    .filter_map(|c| {
                        let start = c.get("start_time")?.as_f64()?;
                        let end = c.get("end_time").and_then(serde_json::Value::as_f64);
                        let title = c.get("title").and_then(|t| t.as_str()).map(str::to_string);
                        Some((start, end, title))
                    })
                    .collect()
            })
            .unwrap_or_default();
        SourceMeta::from_raw(&RawSourceMeta {
            uploader: self.uploader.as_deref().or(self.channel.as_deref()),
            uploader_id: self.uploader_id.as_deref().or(self.channel_id.as_deref()),
            uploader_url: self.uploader_url.as_deref().or(self.channel_url.as_deref()),
            upload_date: self.upload_date.as_deref().or(self.release_date.as_deref()),
            description: self.description.as_deref(),
            tags: tags.iter().map(String::as_str).collect(),
            chapters: chapters
                .iter()
                .map(|(s, e, t)| (*s, *e, t.as_deref()))
                .collect(),
            language: self.language.as_deref(),
            thumbnail_url: self.thumbnail.as_deref(),
        })
    }
}

/// A string, or nothing when the extractor handed over another type.
fn lenient_text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let value = Option::<serde_json::Value>::deserialize(d)?;
    Ok(value.and_then(|v| match v {
        serde_json::Value::String(s) => Some(s),
        _ => None,
    }))
}

/// The info JSON of an info line, as yt-dlp printed it.
pub fn info_json(line: &str) -> Option<&str> {
    line.strip_prefix(INFO_PREFIX)
}

/// yt-dlp writes heights as integers, but extractors may hand over floats or strings.
fn lenient_height<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    let value = Option::<serde_json::Value>::deserialize(d)?;
    Ok(value
        .and_then(|v| v.as_f64().or_else(|| v.as_str()?.parse().ok()))
        .filter(|h| *h > 0.0)
        .map(|h| h as u32))
}

pub fn parse_line(line: &str) -> Line {
    if let Some(json) = line.strip_prefix(INFO_PREFIX) {
        return match serde_json::from_str(json) {
            Ok(info) => Line::Info(Box::new(info)),
            Err(_) => Line::Other,
        };
    }
    if let Some(rest) = line.strip_prefix(PROGRESS_PREFIX) {
        let mut fields = rest.split_whitespace().map(|f| f.parse::<f64>().ok());
        let downloaded = fields.next().flatten();
        let total = fields.next().flatten();
        let estimate = fields.next().flatten();
        if let Some(downloaded) = downloaded {
            return Line::Progress {
                downloaded: downloaded as u64,
                total: total.or(estimate).map(|t| t as u64),
            };
        }
        return Line::Other;
    }
    if let Some(path) = line.strip_prefix(FILE_PREFIX) {
        return Line::File(PathBuf::from(path));
    }
    Line::Other
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn parses_the_three_kinds_of_lines() {
        match parse_line(r#"PRSNL-INFO {"title": "Cat", "duration": 12.5, "_type": "video"}"#) {
            Line::Info(info) => {
                assert_eq!(info.title.as_deref(), Some("Cat"));
                assert_eq!(info.duration, Some(12.5));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            parse_line("PRSNL-PROGRESS 1024 4096 NA"),
            Line::Progress {
                downloaded: 1024,
                total: Some(4096)
            }
        ));
        assert!(matches!(
            parse_line("PRSNL-PROGRESS 1024 NA 9000.5"),
            Line::Progress {
                downloaded: 1024,
                total: Some(9000)
            }
        ));
        assert!(matches!(parse_line("PRSNL-PROGRESS NA NA NA"), Line::Other));
        assert!(
            matches!(parse_line("PRSNL-FILE /w/j1.mp4"), Line::File(p) if p == Path::new("/w/j1.mp4"))
        );
        assert!(matches!(
            parse_line("[generic] Extracting URL"),
            Line::Other
        ));
        assert!(matches!(parse_line("PRSNL-INFO {broken"), Line::Other));
    }

    #[test]
    fn what_the_source_says_is_read_leniently() {
        let line = concat!(
            r#"PRSNL-INFO {"title": "Talk", "duration": 3, "channel": "Ada", "uploader_id": 42, "#,
            r#""channel_url": "https://v.example/@ada", "upload_date": "20260530", "#,
            r#""description": "Line one\nLine two", "tags": ["rust", null, 7, "talk"], "#,
            r#""categories": ["Education"], "chapters": [{"start_time": 0, "end_time": 1.5, "#,
            r#""title": "Intro"}, {"title": "no start"}], "language": "en", "#,
            r#""thumbnail": "https://i.example/t.jpg"}"#
        );
        let Line::Info(info) = parse_line(line) else {
            panic!("not parsed");
        };
        let meta = info.source_meta();
        assert_eq!(meta.uploader.as_deref(), Some("Ada"));
        assert_eq!(
            meta.uploader_id, None,
            "a number where text belongs is dropped"
        );
        assert_eq!(meta.uploader_url.as_deref(), Some("https://v.example/@ada"));
        assert_eq!(meta.upload_date.as_deref(), Some("2026-05-30"));
        assert_eq!(meta.description.as_deref(), Some("Line one\nLine two"));
        assert_eq!(meta.tags, ["rust", "talk", "Education"]);
        assert_eq!(meta.chapters.len(), 1);
        assert_eq!(meta.chapters[0].title, "Intro");
        assert_eq!(meta.language.as_deref(), Some("en"));
        assert_eq!(
            info.title.as_deref(),
            Some("Talk"),
            "the title is read as before"
        );
    }
}
