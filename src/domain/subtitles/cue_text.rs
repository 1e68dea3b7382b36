//! A cue's plain text: markup stripped, entities decoded once, each line cleaned like any
//! outside text, capped.

use super::{MAX_CUE_CHARS, SubtitleFormat};
use crate::domain::text;

/// The plain text of a cue's raw lines, at most `MAX_CUE_CHARS` characters, and whether it
/// was cut to fit. Consumes every line, but past the limit does no work on them.
pub(super) fn cue_text<'a>(
    raw: impl Iterator<Item = &'a str>,
    format: SubtitleFormat,
) -> (String, bool) {
    let mut text = String::new();
    let mut chars = 0;
    for line in raw {
        if chars > MAX_CUE_CHARS {
            continue;
        }
        let line = text::clean(&decode_entities(&strip_markup(line, format)), MAX_CUE_CHARS);
        if line.is_empty() {
            continue;
        }
        if !text.is_empty() {
            text.push('\n');
            chars += 1;
        }
        chars += line.chars().count();
        text.push_str(&line);
    }
    let cut = chars > MAX_CUE_CHARS;
    if cut {
        // Cut to exactly the limit so that parsing `to_webvtt`'s output does not cut again.
        text = text.chars().take(MAX_CUE_CHARS - 1).collect();
        text.truncate(text.trim_end().len());
        text.push('…');
    }
    (text, cut)
}

/// Drops every tag (styling, voices, ruby, karaoke timestamps, SRT `<font>`) and, in SRT,
/// ASS override blocks like `{\an8}`. Runs before entity decoding, so an escaped `&lt;b&gt;`
/// stays visible text.
fn strip_markup(line: &str, format: SubtitleFormat) -> String {
    let mut out = String::with_capacity(line.len());
    // Once a closer is missing, no later opener can find one either: remembering that keeps
    // a line of ten thousand `<` linear.
    let mut tags_can_close = true;
    let mut braces_can_close = format == SubtitleFormat::Srt;
    let mut rest = line;
    while let Some(c) = rest.chars().next() {
        let closer = match c {
            '<' if tags_can_close => Some('>'),
            '{' if braces_can_close && rest[1..].starts_with('\\') => Some('}'),
            _ => None,
        };
        if let Some(closer) = closer {
            if let Some(end) = rest.find(closer) {
                rest = &rest[end + 1..];
                continue;
            }
            match closer {
                '>' => tags_can_close = false,
                _ => braces_can_close = false,
            }
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

/// Decodes the entities subtitle files use, in one pass so `&amp;lt;` stays the text `&lt;`.
/// Numeric references to characters `text::clean` would drop are left as written, so that
/// nothing hidden can be smuggled in by number.
fn decode_entities(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        // The longest entity accepted, `&#x10FFFF;`, is ten bytes.
        let decoded = rest.as_bytes()[..rest.len().min(11)]
            .iter()
            .position(|&b| b == b';')
            .and_then(|semi| Some((entity(&rest[1..semi])?, semi)));
        match decoded {
            Some((c, semi)) => {
                out.push(c);
                rest = &rest[semi + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

fn entity(name: &str) -> Option<char> {
    let c = match name {
        "amp" => '&',
        "lt" => '<',
        "gt" => '>',
        "nbsp" => '\u{A0}',
        "lrm" => '\u{200E}',
        "rlm" => '\u{200F}',
        "quot" => '"',
        "apos" => '\'',
        _ => {
            let number = name.strip_prefix('#')?;
            let code = match number.strip_prefix(['x', 'X']) {
                Some(hex) if !hex.is_empty() && hex.bytes().all(|b| b.is_ascii_hexdigit()) => {
                    u32::from_str_radix(hex, 16).ok()?
                }
                None if !number.is_empty() && number.bytes().all(|b| b.is_ascii_digit()) => {
                    number.parse().ok()?
                }
                _ => return None,
            };
            let c = char::from_u32(code)?;
            if c.is_control() || text::is_invisible(c) || text::is_bidi_control(c) {
                return None;
            }
            c
        }
    };
    Some(c)
}
