//! What a name in the inbox is: ignored (partial downloads, editor temp files, dotfiles), a
//! link file, or a candidate video (which only its content can confirm).

use std::path::Path;

/// The kinds of link file, told apart by extension (their content is text or a plist).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkFileKind {
    /// One or more links, one per line.
    Text,
    /// A Windows InternetShortcut (`[InternetShortcut]` / `URL=`).
    WindowsShortcut,
    /// A macOS `.webloc` property list (XML or binary).
    Webloc,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    /// Not ours to touch: a file still being written by some program, or a hidden one.
    Ignored,
    Links(LinkFileKind),
    /// Anything else: a video if its content says so.
    Media,
}

/// Suffixes of files that some program is still writing (or keeps as a backup).
const PARTIAL_SUFFIXES: [&str; 8] = [
    ".part",
    ".tmp",
    ".crdownload",
    ".download",
    ".partial",
    ".swp",
    ".swx",
    ".swo",
];

pub fn classify(path: &Path) -> EntryKind {
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        // A name that is not UTF-8 is still a file someone dropped: take it, and let its
        // content decide (a failure note explains what happened).
        return EntryKind::Media;
    };
    let lower = name.to_ascii_lowercase();
    let editor_temp = name.ends_with('~')
        || (name.starts_with('#') && name.ends_with('#'))
        // vim probes a directory's writability with a file of this name.
        || name == "4913";
    if name.starts_with('.') || editor_temp || PARTIAL_SUFFIXES.iter().any(|s| lower.ends_with(s)) {
        return EntryKind::Ignored;
    }
    match Path::new(&lower).extension().and_then(|e| e.to_str()) {
        Some("txt") => EntryKind::Links(LinkFileKind::Text),
        Some("url") => EntryKind::Links(LinkFileKind::WindowsShortcut),
        Some("webloc") => EntryKind::Links(LinkFileKind::Webloc),
        _ => EntryKind::Media,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_classified() {
        let cases = [
            ("clip.mp4", EntryKind::Media),
            ("clip", EntryKind::Media),
            ("CLIP.MOV", EntryKind::Media),
            ("links.txt", EntryKind::Links(LinkFileKind::Text)),
            ("Links.TXT", EntryKind::Links(LinkFileKind::Text)),
            ("site.url", EntryKind::Links(LinkFileKind::WindowsShortcut)),
            ("page.webloc", EntryKind::Links(LinkFileKind::Webloc)),
            (".hidden.mp4", EntryKind::Ignored),
            (".DS_Store", EntryKind::Ignored),
            ("clip.mp4.part", EntryKind::Ignored),
            ("clip.mp4.PART", EntryKind::Ignored),
            ("clip.tmp", EntryKind::Ignored),
            ("clip.mp4.crdownload", EntryKind::Ignored),
            ("links.txt~", EntryKind::Ignored),
            (".links.txt.swp", EntryKind::Ignored),
            ("links.txt.swp", EntryKind::Ignored),
            ("#links.txt#", EntryKind::Ignored),
            ("4913", EntryKind::Ignored),
        ];
        for (name, expected) in cases {
            assert_eq!(classify(Path::new(name)), expected, "{name}");
        }
    }

    #[test]
    fn a_name_that_is_not_utf8_is_still_taken() {
        use std::os::unix::ffi::OsStrExt;
        let name = std::ffi::OsStr::from_bytes(b"clip-\xff.mp4");
        assert_eq!(classify(Path::new(name)), EntryKind::Media);
    }
}
