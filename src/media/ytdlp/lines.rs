//! What yt-dlp prints on stdout: one line at a time, told apart by the `PRSNL-*` prefixes of
//! the templates in `argv.rs` (info JSON, progress, final path); everything else is noise.
//!
//! Parsing only: a line never fails, it becomes `Line::Other`. Decisions about what a line
//! means for the download are made in `refusals.rs` and `run.rs`, never here.

use std::path::PathBuf;

use serde::Deserialize;

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
}
