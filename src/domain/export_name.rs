//! The names `prsnl export` gives an item's files: a pattern such as
//! `{platform}/{date} {title} [{id}]` rendered into path segments that are safe on every common
//! filesystem (ext4, APFS, NTFS, exFAT, FAT32, SMB shares).
//!
//! Titles come from the platforms and are hostile: a title may hold `/`, `..`, control or
//! bidi characters, names Windows reserves, or a thousand characters. Each field's value is
//! made safe on its own (so it can never add a directory), then each segment as a whole.

use unicode_normalization::UnicodeNormalization;

use super::text;

/// The most bytes of one rendered segment before the title is cut: the file name gets at most
/// ` - 1080p.mp4` or `.info.json` more, well under the 255 bytes (or UTF-16 units) every
/// common filesystem allows.
const SEGMENT_BUDGET: usize = 180;
/// The most bytes of a field other than the title (uploaders and platform ids are short; a
/// hostile one must not crowd the id out).
const FIELD_MAX: usize = 48;
/// The most bytes of the literal text of one segment of a pattern.
const LITERAL_MAX: usize = 40;
/// Windows refuses these as a file's name, whatever the extension (and `COM`/`LPT` with a
/// digit, including ¹ ² ³).
const RESERVED: [&str; 6] = ["CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"];

/// A field a pattern may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// The item's id: every pattern's last segment holds it, so no two items share a name.
    Id,
    Title,
    /// The source's uploader; the platform's name until uploaders are kept.
    Uploader,
    Platform,
    /// `YYYY-MM-DD` of the source's upload, or of the capture when the source gave none.
    Date,
    Year,
    Month,
    /// The platform's own id of the video (empty for a direct link).
    SourceId,
    /// `video` or `image`.
    Kind,
}

impl Field {
    const ALL: [(&'static str, Field); 9] = [
        ("id", Self::Id),
        ("title", Self::Title),
        ("uploader", Self::Uploader),
        ("platform", Self::Platform),
        ("date", Self::Date),
        ("year", Self::Year),
        ("month", Self::Month),
        ("source_id", Self::SourceId),
        ("kind", Self::Kind),
    ];

    /// The most bytes the field's value takes in a name (the title: none, it takes what is
    /// left).
    const fn widest(self) -> usize {
        match self {
            Self::Id => 36,
            Self::Title => 0,
            Self::Date => 10,
            Self::Year => 4,
            Self::Month => 2,
            Self::Kind => 5,
            Self::Platform => 16,
            Self::Uploader | Self::SourceId => FIELD_MAX,
        }
    }

    fn parse(name: &str) -> Option<Self> {
        Self::ALL
            .iter()
            .find(|(known, _)| *known == name)
            .map(|(_, f)| *f)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(String),
    Field(Field),
}

/// A parsed name pattern: segments separated by `/`, the last one the file's name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamePattern {
    source: String,
    segments: Vec<Vec<Part>>,
}

/// What an item's name is made of. Values are as stored; rendering makes them safe.
#[derive(Debug, Clone, Default)]
pub struct NameFields<'a> {
    pub id: &'a str,
    pub title: Option<&'a str>,
    pub uploader: Option<&'a str>,
    /// The platform's display name (`YouTube`).
    pub platform: &'a str,
    /// `YYYY-MM-DD`.
    pub date: &'a str,
    pub source_id: Option<&'a str>,
    pub kind: &'a str,
}

impl NamePattern {
    /// Parses a pattern; the error says what is wrong with it, for the settings' message.
    pub fn parse(pattern: &str) -> Result<Self, String> {
        if pattern.trim().is_empty() {
            return Err("the pattern is empty".into());
        }
        let mut segments = Vec::new();
        for raw in pattern.split('/') {
            segments.push(parse_segment(raw)?);
        }
        let last = segments.last().map(Vec::as_slice).unwrap_or_default();
        if !last.contains(&Part::Field(Field::Id)) {
            return Err(
                "the last segment (the file's name) must hold {id}, so that no two items \
                 share a name"
                    .into(),
            );
        }
        Ok(Self {
            source: pattern.to_string(),
            segments,
        })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// The safe path segments for an item: directories, then the file's name without an
    /// extension.
    pub fn render(&self, fields: &NameFields<'_>) -> Vec<String> {
        self.segments
            .iter()
            .map(|parts| render_segment(parts, fields))
            .collect()
    }
}

fn parse_segment(raw: &str) -> Result<Vec<Part>, String> {
    let mut parts = Vec::new();
    let mut literal = String::new();
    let mut rest = raw;
    while let Some(open) = rest.find(['{', '}']) {
        if rest[open..].starts_with('}') {
            return Err(format!("an unmatched '}}' in \"{raw}\""));
        }
        literal.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let close = after
            .find('}')
            .ok_or_else(|| format!("an unclosed '{{' in \"{raw}\""))?;
        let name = &after[..close];
        let field = Field::parse(name).ok_or_else(|| {
            let known: Vec<String> = Field::ALL.iter().map(|(n, _)| format!("{{{n}}}")).collect();
            format!("unknown field {{{name}}}; known: {}", known.join(" "))
        })?;
        if parts.contains(&Part::Field(field)) {
            return Err(format!("{{{name}}} appears twice in \"{raw}\""));
        }
        if !literal.is_empty() {
            parts.push(Part::Literal(std::mem::take(&mut literal)));
        }
        parts.push(Part::Field(field));
        rest = &after[close + 1..];
    }
    literal.push_str(rest);
    if !literal.is_empty() {
        parts.push(Part::Literal(literal));
    }
    let literal_bytes: usize = parts
        .iter()
        .map(|p| match p {
            Part::Literal(s) => s.len(),
            Part::Field(_) => 0,
        })
        .sum();
    if literal_bytes > LITERAL_MAX {
        return Err(format!(
            "\"{raw}\" has more than {LITERAL_MAX} bytes of fixed text"
        ));
    }
    // Only the title shrinks to fit; what the other fields can take must leave it room.
    let widest = literal_bytes
        + parts
            .iter()
            .map(|p| match p {
                Part::Field(f) => f.widest(),
                Part::Literal(_) => 0,
            })
            .sum::<usize>();
    if widest > SEGMENT_BUDGET {
        return Err(format!(
            "\"{raw}\" could make a name longer than {SEGMENT_BUDGET} bytes; use fewer fields \
             in one segment"
        ));
    }
    if parts.is_empty() || raw.trim().is_empty() || raw.trim() == "." || raw.trim() == ".." {
        return Err(format!(
            "\"{raw}\" is not a usable segment (empty, '.' or '..')"
        ));
    }
    Ok(parts)
}

fn render_segment(parts: &[Part], fields: &NameFields<'_>) -> String {
    let value = |field: Field| -> String {
        let raw = match field {
            Field::Id => fields.id,
            Field::Title => fields
                .title
                .filter(|t| !t.trim().is_empty())
                .unwrap_or("Untitled"),
            Field::Uploader => fields
                .uploader
                .filter(|u| !u.trim().is_empty())
                .unwrap_or(fields.platform),
            Field::Platform => fields.platform,
            Field::Date => fields.date,
            Field::Year => fields.date.get(..4).unwrap_or(""),
            Field::Month => fields.date.get(5..7).unwrap_or(""),
            Field::SourceId => fields.source_id.unwrap_or(""),
            Field::Kind => fields.kind,
        };
        let safe = safe_text(raw);
        match field {
            Field::Title => safe,
            _ => cut(&safe, FIELD_MAX),
        }
    };
    let without_title: usize = parts
        .iter()
        .map(|p| match p {
            Part::Literal(s) => safe_chars(s).len(),
            Part::Field(Field::Title) => 0,
            Part::Field(f) => value(*f).len(),
        })
        .sum();
    let title_budget = SEGMENT_BUDGET.saturating_sub(without_title);
    let mut out = String::new();
    for part in parts {
        match part {
            Part::Literal(s) => out.push_str(&safe_chars(s)),
            Part::Field(Field::Title) => out.push_str(&cut(&value(Field::Title), title_budget)),
            Part::Field(f) => out.push_str(&value(*f)),
        }
    }
    finish_segment(&out)
}

/// A value without control, bidi or invisible characters, whitespace collapsed and trimmed,
/// and every character some filesystem refuses turned into `_`.
fn safe_text(value: &str) -> String {
    // More than any segment can hold; the budget cuts later, by bytes.
    safe_chars(&text::clean(value, 1024))
}

/// `s` without control, bidi or invisible characters, and `< > : " / \ | ? *` (refused by
/// some filesystem) turned into `_`. Spaces stay as they are (a pattern's literal text).
fn safe_chars(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_control() && !text::is_bidi_control(*c) && !hidden_in_names(*c))
        .map(|c| {
            if matches!(c, '<' | '>' | ':' | '"' | '/' | '\\' | '|' | '?' | '*') {
                '_'
            } else {
                c
            }
        })
        .collect()
}

/// Zero-width and other format characters that make two names look alike.
fn hidden_in_names(c: char) -> bool {
    // Beyond what text never keeps: the joiners (wanted in text, two look-alike names here)
    // and the soft hyphen.
    text::is_invisible(c) || matches!(c, '\u{200C}' | '\u{200D}' | '\u{00AD}')
}

/// At most `max` bytes of `s`, cut at a character boundary, with `…` when cut.
fn cut(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let keep = max.saturating_sub('…'.len_utf8());
    let mut end = keep;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    let mut out = s[..end].trim_end().to_string();
    if !out.is_empty() {
        out.push('…');
    }
    out
}

/// A whole segment made acceptable: no leading dot (a hidden file) or space, no trailing dot
/// or space (Windows drops them, so two names could meet), never a name Windows reserves, and
/// never empty.
fn finish_segment(s: &str) -> String {
    // An empty field leaves two spaces where it was.
    let collapsed = s
        .split(' ')
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    let trimmed = collapsed.trim_matches(|c: char| c == ' ' || c == '.');
    let mut out = if trimmed.is_empty() {
        "_".to_string()
    } else {
        trimmed.to_string()
    };
    let stem = out
        .split('.')
        .next()
        .unwrap_or("")
        .trim_end()
        .to_uppercase();
    let numbered = ["COM", "LPT"].iter().any(|device| {
        stem.strip_prefix(device).is_some_and(|n| {
            let mut chars = n.chars();
            matches!(
                (chars.next(), chars.next()),
                (Some('0'..='9' | '¹' | '²' | '³'), None)
            )
        })
    });
    if RESERVED.contains(&stem.as_str()) || numbered {
        out.insert(0, '_');
    }
    // One spelling of each name: macOS and SMB shares would otherwise show two files that
    // look the same, or treat them as one.
    out.nfc().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields<'a>(title: Option<&'a str>) -> NameFields<'a> {
        NameFields {
            id: "01a2b3c4-0000-7000-8000-000000000001",
            title,
            uploader: None,
            platform: "YouTube",
            date: "2026-11-30",
            source_id: Some("dQw4w9WgXcQ"),
            kind: "video",
        }
    }

    fn render(pattern: &str, title: Option<&str>) -> Vec<String> {
        NamePattern::parse(pattern).unwrap().render(&fields(title))
    }

    #[test]
    fn the_default_pattern_gives_a_folder_and_a_dated_name() {
        assert_eq!(
            render("{uploader}/{date} {title} [{id}]", Some("A talk")),
            [
                "YouTube",
                "2026-11-30 A talk [01a2b3c4-0000-7000-8000-000000000001]"
            ]
        );
        assert_eq!(
            render("{year}/{month}/{platform} {source_id} {kind} {id}", None),
            [
                "2026",
                "11",
                "YouTube dQw4w9WgXcQ video 01a2b3c4-0000-7000-8000-000000000001"
            ]
        );
    }

    #[test]
    fn bad_patterns_are_refused_with_the_reason() {
        let long = format!("{} {{id}}", "x".repeat(41));
        for (pattern, says) in [
            ("", "empty"),
            ("{title}", "must hold {id}"),
            ("{id}/{title}", "must hold {id}"),
            ("{nope} {id}", "unknown field {nope}"),
            ("{title {id}", "unknown field"),
            ("{id", "unclosed"),
            ("a}{id}", "unmatched"),
            ("{id} {id}", "twice"),
            ("a//{id}", "not a usable segment"),
            ("../{id}", "not a usable segment"),
            ("/{id}", "not a usable segment"),
            (long.as_str(), "fixed text"),
            (
                "{uploader} {source_id} {platform} {kind} {date} {year} {month} {id} abcdefghij",
                "longer than",
            ),
        ] {
            let error = NamePattern::parse(pattern).unwrap_err();
            assert!(error.contains(says), "{pattern}: {error}");
        }
    }

    #[test]
    fn hostile_titles_cannot_leave_the_folder_or_hide() {
        for (title, expected) in [
            ("../../etc/passwd", "_.._etc_passwd [x]"),
            ("a/b\\c:d*e?f\"g<h>i|j", "a_b_c_d_e_f_g_h_i_j [x]"),
            (
                "\u{1b}[31mred\nline\u{202E}gpj.exe",
                "[31mred linegpj.exe [x]",
            ),
            ("zero\u{200B}width\u{FEFF}", "zerowidth [x]"),
            ("..", "[x]"),
        ] {
            let got = NamePattern::parse("{title} [{id}]")
                .unwrap()
                .render(&NameFields {
                    id: "x",
                    title: Some(title),
                    ..Default::default()
                });
            assert_eq!(got, [expected], "{title:?}");
        }
    }

    #[test]
    fn names_windows_refuses_or_hides_are_changed() {
        let one = |title: &str| {
            NamePattern::parse("{title}/{id}")
                .unwrap()
                .render(&NameFields {
                    id: "x",
                    title: Some(title),
                    ..Default::default()
                })[0]
                .clone()
        };
        assert_eq!(one("CON"), "_CON");
        assert_eq!(one("nul.txt"), "_nul.txt");
        assert_eq!(one("com1"), "_com1");
        assert_eq!(one("LPT²"), "_LPT²");
        assert_eq!(one("conin$"), "_conin$");
        assert_eq!(one("COM10"), "COM10");
        assert_eq!(one("e\u{301}cole"), "\u{e9}cole", "composed (NFC)");
        assert_eq!(one("COMPUTER"), "COMPUTER");
        assert_eq!(one(".hidden"), "hidden");
        assert_eq!(one("ends with dots..."), "ends with dots");
        assert_eq!(one("   "), "Untitled");
    }

    #[test]
    fn long_titles_are_cut_but_the_id_stays() {
        let long = "é".repeat(500);
        let name = &render("{date} {title} [{id}]", Some(&long))[0];
        assert!(name.len() <= SEGMENT_BUDGET, "{} bytes", name.len());
        assert!(
            name.ends_with(" [01a2b3c4-0000-7000-8000-000000000001]"),
            "{name}"
        );
        assert!(name.contains("éé…"), "{name}");
        let uploader = "u".repeat(300);
        let got = NamePattern::parse("{uploader} {title} {id}")
            .unwrap()
            .render(&NameFields {
                id: "id",
                uploader: Some(&uploader),
                title: Some(&long),
                ..Default::default()
            });
        assert!(
            got[0].len() <= SEGMENT_BUDGET && got[0].ends_with(" id"),
            "{got:?}"
        );
    }

    #[test]
    fn a_missing_uploader_is_the_platform_and_a_missing_title_is_untitled() {
        let got = NamePattern::parse("{uploader}/{title} {source_id} {id}")
            .unwrap()
            .render(&NameFields {
                id: "i",
                platform: "web",
                uploader: Some(" "),
                ..Default::default()
            });
        assert_eq!(
            got,
            ["web", "Untitled i"],
            "an empty field leaves no double space"
        );
    }
}
