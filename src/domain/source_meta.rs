//! What the source says about an item beyond its title: who uploaded it and when, its
//! description, tags, chapters and language, and the thumbnail it offered.
//!
//! Every value comes from a platform (yt-dlp's info JSON) or from a file's own tags, so every
//! value is hostile: text is cleaned of control and bidi characters and capped, URLs must be
//! http(s), dates must be real dates, lists are capped. What does not pass is dropped, never
//! the capture.

use serde::{Deserialize, Serialize};
use url::Url;

use super::text;

const NAME_MAX: usize = 200;
const DESCRIPTION_MAX: usize = 20_000;
const TAGS_MAX: usize = 100;
const TAG_MAX: usize = 100;
const CHAPTERS_MAX: usize = 500;
const URL_MAX: usize = 2_000;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SourceMeta {
    pub uploader: Option<String>,
    pub uploader_id: Option<String>,
    pub uploader_url: Option<String>,
    /// `YYYY-MM-DD`.
    pub upload_date: Option<String>,
    /// Line breaks kept.
    pub description: Option<String>,
    /// Tags and categories, in the source's order, without duplicates.
    pub tags: Vec<String>,
    pub chapters: Vec<Chapter>,
    /// A BCP 47 language tag (`en`, `pt-BR`).
    pub language: Option<String>,
    pub thumbnail_url: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Chapter {
    pub start_seconds: f64,
    pub end_seconds: Option<f64>,
    pub title: String,
}

/// The values as a source hands them over, before any checking.
#[derive(Debug, Clone, Default)]
pub struct RawSourceMeta<'a> {
    pub uploader: Option<&'a str>,
    pub uploader_id: Option<&'a str>,
    pub uploader_url: Option<&'a str>,
    /// `YYYYMMDD` (yt-dlp), `YYYY-MM-DD`, or an RFC 3339 time (a file's `creation_time`).
    pub upload_date: Option<&'a str>,
    pub description: Option<&'a str>,
    pub tags: Vec<&'a str>,
    /// (start, end, title).
    pub chapters: Vec<(f64, Option<f64>, Option<&'a str>)>,
    pub language: Option<&'a str>,
    pub thumbnail_url: Option<&'a str>,
}

impl SourceMeta {
    /// The checked values: whatever fails a check is left out.
    pub fn from_raw(raw: &RawSourceMeta<'_>) -> Self {
        let name = |v: Option<&str>| {
            v.map(|v| text::clean(v, NAME_MAX))
                .filter(|v| !v.is_empty())
        };
        let mut tags: Vec<String> = Vec::new();
        for tag in &raw.tags {
            let tag = text::clean(tag, TAG_MAX);
            if !tag.is_empty() && !tags.iter().any(|t| t.eq_ignore_ascii_case(&tag)) {
                tags.push(tag);
            }
            if tags.len() == TAGS_MAX {
                break;
            }
        }
        let chapters = raw
            .chapters
            .iter()
            .filter(|(start, _, _)| start.is_finite() && *start >= 0.0)
            .take(CHAPTERS_MAX)
            .map(|(start, end, title)| Chapter {
                start_seconds: *start,
                end_seconds: end.filter(|e| e.is_finite() && e >= start),
                title: title.map(|t| text::clean(t, NAME_MAX)).unwrap_or_default(),
            })
            .collect();
        Self {
            uploader: name(raw.uploader),
            uploader_id: name(raw.uploader_id),
            uploader_url: raw.uploader_url.and_then(web_url),
            upload_date: raw.upload_date.and_then(calendar_date),
            description: raw
                .description
                .map(|d| multiline(d, DESCRIPTION_MAX))
                .filter(|d| !d.is_empty()),
            tags,
            chapters,
            language: raw.language.and_then(language_tag),
            thumbnail_url: raw.thumbnail_url.and_then(web_url),
        }
    }

    /// True when the source said nothing worth keeping.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// An absolute http(s) URL of reasonable length, as the URL parser writes it.
fn web_url(value: &str) -> Option<String> {
    let value = value.trim();
    if value.len() > URL_MAX {
        return None;
    }
    let url = Url::parse(value).ok()?;
    matches!(url.scheme(), "http" | "https").then(|| url.to_string())
}

/// `YYYY-MM-DD` of a real date from `YYYYMMDD`, `YYYY-MM-DD` or the start of an RFC 3339 time.
fn calendar_date(value: &str) -> Option<String> {
    let value = value.trim();
    let digits: String = if value.len() == 8 && value.bytes().all(|b| b.is_ascii_digit()) {
        value.to_string()
    } else {
        let day = value.get(..10)?;
        let b = day.as_bytes();
        if b[4] != b'-' || b[7] != b'-' {
            return None;
        }
        format!("{}{}{}", &day[..4], &day[5..7], &day[8..10])
    };
    let year: i32 = digits.get(..4)?.parse().ok()?;
    let month: u8 = digits.get(4..6)?.parse().ok()?;
    let day: u8 = digits.get(6..8)?.parse().ok()?;
    let month = time::Month::try_from(month).ok()?;
    let date = time::Date::from_calendar_date(year, month, day).ok()?;
    (1800..=9999).contains(&year).then(|| {
        format!(
            "{:04}-{:02}-{:02}",
            date.year(),
            u8::from(date.month()),
            date.day()
        )
    })
}

/// A language tag: letters, digits and `-`/`_`, at most 35 characters (BCP 47's longest).
fn language_tag(value: &str) -> Option<String> {
    let value = value.trim();
    let ok = !value.is_empty()
        && value.len() <= 35
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        && value != "und";
    ok.then(|| value.replace('_', "-"))
}

/// Text whose line breaks matter: each line cleaned like a title (controls and bidi
/// characters dropped, spaces collapsed), at most two blank lines in a row, `…` when cut.
pub fn multiline(value: &str, max_chars: usize) -> String {
    let mut out = String::new();
    let mut count = 0;
    let mut blank_run = 0;
    for line in value.replace("\r\n", "\n").replace('\r', "\n").split('\n') {
        let line = text::clean(line, max_chars);
        if line.is_empty() {
            blank_run += 1;
            if blank_run > 1 || out.is_empty() {
                continue;
            }
        } else {
            blank_run = 0;
        }
        let needed = line.chars().count() + usize::from(!out.is_empty());
        if count + needed > max_chars {
            // The cut text and its `…` together hold at most `max_chars`.
            let separator = usize::from(!out.is_empty());
            let room = max_chars.saturating_sub(count + separator + 1);
            if room > 0 {
                if separator == 1 {
                    out.push('\n');
                }
                out.extend(line.chars().take(room));
            } else if count >= max_chars {
                out.pop();
            }
            out.push('…');
            return out;
        }
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str(&line);
        count += needed;
    }
    out.trim_end().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checked_values_are_kept_and_the_rest_dropped() {
        let meta = SourceMeta::from_raw(&RawSourceMeta {
            uploader: Some(" Ada\u{202E} Lovelace\n"),
            uploader_id: Some(""),
            uploader_url: Some("javascript:alert(1)"),
            upload_date: Some("20260230"),
            description: None,
            tags: vec!["Talk", "talk", " ", "rust\u{1b}[31m"],
            chapters: vec![
                (0.0, Some(10.0), Some("Intro")),
                (f64::NAN, None, None),
                (12.0, Some(3.0), None),
            ],
            language: Some("en_US"),
            thumbnail_url: Some("https://img.example/t.jpg"),
        });
        assert_eq!(meta.uploader.as_deref(), Some("Ada Lovelace"));
        assert_eq!(meta.uploader_id, None);
        assert_eq!(meta.uploader_url, None, "only http(s)");
        assert_eq!(meta.upload_date, None, "February has no 30th");
        assert_eq!(meta.tags, ["Talk", "rust[31m"]);
        assert_eq!(meta.chapters.len(), 2);
        assert_eq!(
            meta.chapters[1].end_seconds, None,
            "an end before the start is dropped"
        );
        assert_eq!(meta.language.as_deref(), Some("en-US"));
        assert_eq!(
            meta.thumbnail_url.as_deref(),
            Some("https://img.example/t.jpg")
        );
        assert!(SourceMeta::from_raw(&RawSourceMeta::default()).is_empty());
    }

    #[test]
    fn dates_come_in_three_spellings() {
        assert_eq!(calendar_date("20261130").as_deref(), Some("2026-11-30"));
        assert_eq!(calendar_date("2026-11-30").as_deref(), Some("2026-11-30"));
        assert_eq!(
            calendar_date("2026-11-30T10:00:00.000000Z").as_deref(),
            Some("2026-11-30")
        );
        for bad in [
            "",
            "2026",
            "2026/11/30",
            "00001130",
            "2026-13-01",
            "yesterday",
            "２０２６１１３０",
        ] {
            assert_eq!(calendar_date(bad), None, "{bad}");
        }
    }

    #[test]
    fn descriptions_keep_their_lines_but_nothing_hostile() {
        let text = "First line\r\n\r\n\r\n\r\nSecond\u{1b}]0;title\u{7}\n  spaced   out  \n";
        assert_eq!(
            multiline(text, 1000),
            "First line\n\nSecond]0;title\nspaced out"
        );
        let long = "word ".repeat(10_000);
        let cut = multiline(&long, DESCRIPTION_MAX);
        assert!(cut.chars().count() == DESCRIPTION_MAX && cut.ends_with('…'));
        assert_eq!(multiline("abc\ndef", 5), "abc…");
        assert_eq!(multiline("abcde\nf", 5), "abcd…");
    }
}
