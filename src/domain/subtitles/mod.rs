//! Subtitles from hostile sources re-validated into plain cues and a clean WebVTT sidecar.
//!
//! WebVTT and SRT files come from platforms via yt-dlp, or out of uploaded files via ffmpeg,
//! and the browser would run whatever markup, styling and positioning they carry. A player
//! only needs when each cue shows and its plain text, so that is all that is kept: markup is
//! stripped, entities decoded once, and each line cleaned like any outside text (control,
//! bidi and invisible characters dropped, THREATS SUB-08). The same cues feed the full-text
//! index one row per cue, so a search hit can seek to the cue's start.
//!
//! Bad cues are skipped rather than failing the file: one broken timestamp should not cost
//! the viewer every other line. Sizes are capped so a file cannot blow up memory or the index.

use std::fmt::{self, Write as _};
use std::iter::Peekable;

mod cue_text;

use cue_text::cue_text;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubtitleFormat {
    Vtt,
    Srt,
}

impl SubtitleFormat {
    /// The format yt-dlp or ffmpeg wrote, from the file's extension.
    pub fn from_extension(ext: &str) -> Option<Self> {
        if ext.eq_ignore_ascii_case("vtt") {
            Some(Self::Vtt)
        } else if ext.eq_ignore_ascii_case("srt") {
            Some(Self::Srt)
        } else {
            None
        }
    }
}

/// One cue: shown from `start_ms` to `end_ms`, plain text with lines joined by `'\n'`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cue {
    pub start_ms: u64,
    pub end_ms: u64,
    pub text: String,
}

/// What a file held, and what of it did not fit the caps (said in the log: a track that
/// stops early or a cue that ends in `…` is otherwise a puzzle).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    pub cues: Vec<Cue>,
    /// Cues past [`MAX_CUES`], left out.
    pub cues_dropped: usize,
    /// Cues whose text was cut to [`MAX_CUE_CHARS`].
    pub texts_cut: usize,
}

#[derive(Debug, PartialEq, Eq)]
pub enum SubtitleError {
    TooLarge,
    NotUtf8,
    NotSubtitles,
    NoCues,
}

impl fmt::Display for SubtitleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::TooLarge => "subtitle file is too large",
            Self::NotUtf8 => "subtitle file is not UTF-8 text",
            Self::NotSubtitles => "not a WebVTT or SRT subtitle file",
            Self::NoCues => "subtitle file has no usable cues",
        })
    }
}

impl std::error::Error for SubtitleError {}

/// Real subtitle tracks are a few hundred KiB at most; anything larger is not worth parsing.
pub const MAX_BYTES: usize = 5 * 1024 * 1024;
/// About one cue every 18 s over 100 hours; bounds the search index rows per item.
pub const MAX_CUES: usize = 20_000;
/// A cue is read in a few seconds; more text than this is padding or an attack on the index.
pub const MAX_CUE_CHARS: usize = 1_000;

/// No real video runs longer, and the bound keeps every time far from overflow.
const MAX_TIME_MS: u64 = 100 * 3_600_000;

/// YouTube's automatic captions end one cue and start the same text again within a few ms.
const MERGE_GAP_MS: u64 = 10;

/// Parses `bytes` as `format`, keeping every valid cue in file order, within the caps.
pub fn parse(bytes: &[u8], format: SubtitleFormat) -> Result<Parsed, SubtitleError> {
    if bytes.len() > MAX_BYTES {
        return Err(SubtitleError::TooLarge);
    }
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let text = std::str::from_utf8(bytes).map_err(|_| SubtitleError::NotUtf8)?;
    let text = if text.contains('\r') {
        text.replace("\r\n", "\n").replace('\r', "\n")
    } else {
        text.to_string()
    };
    let mut lines = text.split('\n').peekable();
    if format == SubtitleFormat::Vtt {
        skip_vtt_header(&mut lines)?;
    }
    let (parsed, saw_timing) = read_cues(&mut lines, format);
    if !parsed.cues.is_empty() {
        Ok(parsed)
    } else if format == SubtitleFormat::Srt && !saw_timing {
        // An HTML error page or a binary saved as `.srt` is not "subtitles with no cues".
        Err(SubtitleError::NotSubtitles)
    } else {
        Err(SubtitleError::NoCues)
    }
}

/// A WebVTT file of `cues` that every browser loads as a `<track>` and that `parse` reads back
/// to the same cues.
pub fn to_webvtt(cues: &[Cue]) -> String {
    let mut out = String::from("WEBVTT\n\n");
    for cue in cues {
        write_time(&mut out, cue.start_ms);
        out.push_str(" --> ");
        write_time(&mut out, cue.end_ms);
        out.push('\n');
        // An empty line would end the cue early and let the rest be read as a new block.
        for line in cue.text.split(['\n', '\r']).filter(|l| !l.is_empty()) {
            // Escaping `>` also keeps a text `-->` from being read as a timing line.
            for c in line.chars() {
                match c {
                    '&' => out.push_str("&amp;"),
                    '<' => out.push_str("&lt;"),
                    '>' => out.push_str("&gt;"),
                    c => out.push(c),
                }
            }
            out.push('\n');
        }
        out.push('\n');
    }
    out
}

fn write_time(out: &mut String, ms: u64) {
    let (h, m, s) = (ms / 3_600_000, ms / 60_000 % 60, ms / 1_000 % 60);
    // Writing to a String cannot fail.
    let _ = write!(out, "{h:02}:{m:02}:{s:02}.{:03}", ms % 1_000);
}

type Lines<'a> = Peekable<std::str::Split<'a, char>>;

/// The signature is what tells a WebVTT file from anything else; the header lines after it
/// (`Kind:`, `Language:`) carry nothing a player needs.
fn skip_vtt_header(lines: &mut Lines<'_>) -> Result<(), SubtitleError> {
    let first = lines.next().unwrap_or_default();
    let signed = first
        .strip_prefix("WEBVTT")
        .is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', '\t']));
    if !signed {
        return Err(SubtitleError::NotSubtitles);
    }
    // Like browsers, a timing line ends the header even without a blank line before it.
    while lines
        .next_if(|l| !l.is_empty() && !l.contains("-->"))
        .is_some()
    {}
    Ok(())
}

/// Reads blocks until the end: returns the kept cues and whether any line looked like a
/// timing line at all.
fn read_cues(lines: &mut Lines<'_>, format: SubtitleFormat) -> (Parsed, bool) {
    let mut cues: Vec<Cue> = Vec::new();
    let (mut cues_dropped, mut texts_cut) = (0, 0);
    let mut saw_timing = false;
    // A WebVTT cue's text cannot hold `-->`, so such a line starts the next cue; in SRT only
    // a line that is a timing line does (an arrow typed in the text is text).
    let ends_text = |l: &str| match format {
        SubtitleFormat::Vtt => l.contains("-->"),
        SubtitleFormat::Srt => parse_timing(l, format).is_some(),
    };
    // WebVTT ends a block only at an empty line (YouTube puts lines of one space inside cues);
    // hand-made SRT files often leave spaces on their separating lines.
    let is_blank = |l: &str| match format {
        SubtitleFormat::Vtt => l.is_empty(),
        SubtitleFormat::Srt => l.trim().is_empty(),
    };
    while let Some(first) = lines.next() {
        if is_blank(first) {
            continue;
        }
        if format == SubtitleFormat::Vtt && is_vtt_metadata(first) {
            skip_block(lines, is_blank);
            continue;
        }
        // The cue identifier (SRT's number) is optional and unused: seeking is by time.
        let timing = if first.contains("-->") {
            first
        } else if let Some(timing) = lines.next_if(|l| l.contains("-->")) {
            timing
        } else {
            skip_block(lines, is_blank);
            continue;
        };
        saw_timing |= looks_like_timing(timing);
        let Some((start_ms, end_ms)) = parse_timing(timing, format) else {
            skip_block(lines, is_blank);
            continue;
        };
        let raw = std::iter::from_fn(|| lines.next_if(|l| !is_blank(l) && !ends_text(l)));
        let (text, cut) = cue_text(raw, format);
        if text.is_empty() {
            continue;
        }
        // Only exact repeats that touch are merged: YouTube's rolling two-line captions also
        // repeat a line inside the next cue's text, but undoing that needs guessing, and a
        // duplicate line costs the viewer nothing.
        if let Some(last) = cues.last_mut()
            && last.text == text
            && start_ms <= last.end_ms + MERGE_GAP_MS
        {
            last.end_ms = last.end_ms.max(end_ms);
            continue;
        }
        if cues.len() == MAX_CUES {
            cues_dropped += 1;
            continue;
        }
        texts_cut += usize::from(cut);
        cues.push(Cue {
            start_ms,
            end_ms,
            text,
        });
    }
    let parsed = Parsed {
        cues,
        cues_dropped,
        texts_cut,
    };
    (parsed, saw_timing)
}

/// Skips the rest of a block that is not a cue; a timing line starts a new block, as in browsers.
fn skip_block(lines: &mut Lines<'_>, is_blank: impl Fn(&str) -> bool) {
    while lines
        .next_if(|l| !is_blank(l) && !l.contains("-->"))
        .is_some()
    {}
}

/// Comments, stylesheets and region layouts: styling from a hostile source is not wanted.
fn is_vtt_metadata(line: &str) -> bool {
    ["NOTE", "STYLE", "REGION"].iter().any(|keyword| {
        line.strip_prefix(keyword)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', '\t']))
    })
}

/// Tells a broken subtitle file from something else that merely contains `-->` (an HTML
/// comment, say).
fn looks_like_timing(line: &str) -> bool {
    line.split_once("-->").is_some_and(|(start, _)| {
        let start = start.trim();
        !start.is_empty()
            && start
                .bytes()
                .all(|b| b.is_ascii_digit() || matches!(b, b':' | b'.' | b','))
    })
}

/// Start and end of a timing line; cue settings after the end time (position, alignment) are
/// layout a hostile file should not control, so they are dropped.
fn parse_timing(line: &str, format: SubtitleFormat) -> Option<(u64, u64)> {
    let separators: &[char] = match format {
        SubtitleFormat::Vtt => &['.'],
        SubtitleFormat::Srt => &[',', '.'],
    };
    let (start, rest) = line.split_once("-->")?;
    let end = rest.split_whitespace().next()?;
    let start = parse_time(start.trim(), separators)?;
    let end = parse_time(end, separators)?;
    (start <= end).then_some((start, end))
}

/// `[h…h:]mm:ss.ttt` in milliseconds.
fn parse_time(s: &str, separators: &[char]) -> Option<u64> {
    let (clock, millis) = s.rsplit_once(separators)?;
    let mut parts = clock.rsplit(':');
    let seconds = number(parts.next()?, 2, 2)?;
    let minutes = number(parts.next()?, 2, 2)?;
    // Ten digits cannot overflow a u64 of milliseconds; the range check follows anyway.
    let hours = parts.next().map_or(Some(0), |h| number(h, 1, 10))?;
    if parts.next().is_some() || minutes >= 60 || seconds >= 60 {
        return None;
    }
    let ms = hours * 3_600_000 + minutes * 60_000 + seconds * 1_000 + number(millis, 3, 3)?;
    (ms <= MAX_TIME_MS).then_some(ms)
}

fn number(s: &str, min_digits: usize, max_digits: usize) -> Option<u64> {
    if s.len() < min_digits || s.len() > max_digits || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

#[cfg(test)]
mod tests;
