//! Reading link files: `.txt` (links anywhere in its lines), `.url` (Windows
//! InternetShortcut) and `.webloc` (macOS property list, XML or binary).
//!
//! Only the reading is here; each link is then validated like any submitted URL (intake).

use super::names::LinkFileKind;

/// Links found in a file, and the lines that held none.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct LinkList {
    pub links: Vec<String>,
    pub rejected: Vec<Rejected>,
}

/// A line that is neither blank, a `#` comment, nor holds a link.
#[derive(Debug, PartialEq, Eq)]
pub struct Rejected {
    /// 1-based line number.
    pub line: usize,
    pub text: String,
}

/// Why a link file could not be read at all.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum LinkFileError {
    #[error("the file is not UTF-8 text")]
    NotUtf8,
    #[error("the file is not a valid .webloc property list: {0}")]
    BadPlist(String),
    #[error("the .webloc property list has no URL entry")]
    NoWeblocUrl,
    #[error("the .url file has no URL= line in an [InternetShortcut] section")]
    NoShortcutUrl,
}

pub fn parse(kind: LinkFileKind, bytes: &[u8]) -> Result<LinkList, LinkFileError> {
    match kind {
        LinkFileKind::Text => Ok(parse_text(utf8(bytes)?)),
        LinkFileKind::WindowsShortcut => parse_shortcut(utf8(bytes)?).map(single),
        LinkFileKind::Webloc => parse_webloc(bytes).map(single),
    }
}

fn utf8(bytes: &[u8]) -> Result<&str, LinkFileError> {
    let text = std::str::from_utf8(bytes).map_err(|_| LinkFileError::NotUtf8)?;
    Ok(text.strip_prefix('\u{feff}').unwrap_or(text))
}

fn single(link: String) -> LinkList {
    LinkList {
        links: vec![link],
        rejected: Vec::new(),
    }
}

/// Every `http(s)://…` token of every line (links pasted with surrounding text count).
fn parse_text(text: &str) -> LinkList {
    let mut list = LinkList::default();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let found = crate::domain::text::find_links(line);
        if found.is_empty() {
            list.rejected.push(Rejected {
                line: index + 1,
                text: crate::domain::text::clean(line, 200),
            });
        }
        list.links.extend(found);
    }
    list
}

fn parse_shortcut(text: &str) -> Result<String, LinkFileError> {
    let mut in_section = false;
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            in_section = line.eq_ignore_ascii_case("[InternetShortcut]");
            continue;
        }
        if !in_section {
            continue;
        }
        if let Some((key, value)) = line.split_once('=')
            && key.trim().eq_ignore_ascii_case("url")
            && !value.trim().is_empty()
        {
            return Ok(value.trim().to_string());
        }
    }
    Err(LinkFileError::NoShortcutUrl)
}

fn parse_webloc(bytes: &[u8]) -> Result<String, LinkFileError> {
    let value = plist::Value::from_reader(std::io::Cursor::new(bytes))
        .map_err(|e| LinkFileError::BadPlist(e.to_string()))?;
    value
        .as_dictionary()
        .and_then(|dict| dict.get("URL"))
        .and_then(plist::Value::as_string)
        .map(|url| url.trim().to_string())
        .filter(|url| !url.is_empty())
        .ok_or(LinkFileError::NoWeblocUrl)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_text_file_yields_every_link_and_reports_other_lines() {
        let text = "\u{feff}https://www.youtube.com/watch?v=abc\n\
                    \n\
                    # my list\n\
                    look at this: <https://x.com/a/status/1>, and (http://example.com/v.mp4).\n\
                    just some words\n\
                    HTTPS://EXAMPLE.ORG/CAPS https://example.org/second\r\n";
        let list = parse(LinkFileKind::Text, text.as_bytes()).unwrap();
        assert_eq!(
            list.links,
            [
                "https://www.youtube.com/watch?v=abc",
                "https://x.com/a/status/1",
                "http://example.com/v.mp4",
                "HTTPS://EXAMPLE.ORG/CAPS",
                "https://example.org/second",
            ]
        );
        assert_eq!(
            list.rejected,
            [Rejected {
                line: 5,
                text: "just some words".into()
            }]
        );
    }

    #[test]
    fn a_text_file_that_is_not_utf8_is_refused() {
        assert_eq!(
            parse(LinkFileKind::Text, b"https://example.com/\xff\xfe"),
            Err(LinkFileError::NotUtf8)
        );
    }

    #[test]
    fn control_characters_in_a_rejected_line_are_not_echoed() {
        let list = parse(LinkFileKind::Text, b"bad\x1b[31m line\n").unwrap();
        assert_eq!(list.rejected[0].text, "bad[31m line");
    }

    #[test]
    fn a_windows_shortcut_yields_its_url() {
        let text = "[DEFAULT]\r\nBASEURL=https://ignored.example/\r\n[InternetShortcut]\r\nIDList=\r\nURL=https://www.tiktok.com/@a/video/1\r\n";
        let list = parse(LinkFileKind::WindowsShortcut, text.as_bytes()).unwrap();
        assert_eq!(list.links, ["https://www.tiktok.com/@a/video/1"]);
        assert_eq!(
            parse(
                LinkFileKind::WindowsShortcut,
                b"[Other]\nURL=https://x.example/"
            ),
            Err(LinkFileError::NoShortcutUrl)
        );
    }

    #[test]
    fn a_webloc_yields_its_url_in_xml_and_binary_form() {
        let xml = br#"<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0"><dict><key>URL</key><string>https://www.instagram.com/reel/Cabc/?a=1&amp;b=2</string></dict></plist>"#;
        let list = parse(LinkFileKind::Webloc, xml).unwrap();
        assert_eq!(list.links, ["https://www.instagram.com/reel/Cabc/?a=1&b=2"]);

        let mut dict = plist::Dictionary::new();
        dict.insert(
            "URL".into(),
            plist::Value::String("https://vm.tiktok.com/ZM1/".into()),
        );
        let mut binary = Vec::new();
        plist::Value::Dictionary(dict)
            .to_writer_binary(&mut binary)
            .unwrap();
        assert!(binary.starts_with(b"bplist00"));
        let list = parse(LinkFileKind::Webloc, &binary).unwrap();
        assert_eq!(list.links, ["https://vm.tiktok.com/ZM1/"]);
    }

    #[test]
    fn a_broken_webloc_says_why() {
        assert!(matches!(
            parse(LinkFileKind::Webloc, b"not a plist"),
            Err(LinkFileError::BadPlist(_))
        ));
        let empty = br#"<?xml version="1.0"?><plist version="1.0"><dict><key>Other</key><string>x</string></dict></plist>"#;
        assert_eq!(
            parse(LinkFileKind::Webloc, empty),
            Err(LinkFileError::NoWeblocUrl)
        );
    }
}
