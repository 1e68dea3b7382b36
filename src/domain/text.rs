//! Text that comes from outside (titles, tool messages) made safe to store, log and show.
//!
//! Control characters would let a title forge log lines or terminal escapes, and bidi
//! overrides can disguise text (THREATS SUB-08); both are dropped. Length is capped by chars.

/// Drops control and bidi-override characters, collapses whitespace runs, trims, and keeps at
/// most `max_chars` characters (adding `…` when cut).
pub fn clean(text: &str, max_chars: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max_chars.saturating_mul(4)));
    let mut count = 0;
    let mut pending_space = false;
    for c in text.chars() {
        if c.is_whitespace() {
            pending_space = count > 0;
            continue;
        }
        if c.is_control() || is_bidi_control(c) || is_invisible(c) {
            continue;
        }
        if pending_space {
            if count + 1 >= max_chars {
                out.push('…');
                return out;
            }
            out.push(' ');
            count += 1;
            pending_space = false;
        }
        if count == max_chars {
            out.push('…');
            return out;
        }
        out.push(c);
        count += 1;
    }
    out
}

/// Characters that show nothing and make two texts look alike (zero-width space, word joiner,
/// byte-order mark, interlinear marks) or that are no character at all (noncharacters). The
/// zero-width (non-)joiners stay: scripts and emoji sequences need them.
pub fn is_invisible(c: char) -> bool {
    matches!(c, '\u{200B}' | '\u{2060}'..='\u{2064}' | '\u{FEFF}' | '\u{FFF9}'..='\u{FFFB}' | '\u{FDD0}'..='\u{FDEF}')
        || (c as u32) & 0xFFFE == 0xFFFE
}

pub fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}')
}

/// Every `http(s)://…` token of `text`, in order: links pasted amid prose count, without the
/// punctuation that often follows one (`see <https://a.example/x>.` gives `https://a.example/x`).
pub fn find_links(text: &str) -> Vec<String> {
    text.split_whitespace()
        .filter_map(link_token)
        .map(str::to_string)
        .collect()
}

fn link_token(token: &str) -> Option<&str> {
    let token = token.trim_start_matches(['<', '(', '"', '\'']);
    let lower = token.get(..8).unwrap_or(token).to_ascii_lowercase();
    if !(lower.starts_with("http://") || lower.starts_with("https://")) {
        return None;
    }
    Some(token.trim_end_matches(['>', ')', '"', '\'', ',', '.', ';', '!']))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_are_found_amid_prose() {
        assert_eq!(
            find_links("look (https://a.example/x), and <HTTP://b.example/y>. not ftp://c"),
            ["https://a.example/x", "HTTP://b.example/y"]
        );
        assert!(find_links("no links here, just https:/ broken").is_empty());
    }

    #[test]
    fn hostile_titles_become_one_plain_line() {
        assert_eq!(clean("Hello\nWorld\r\n", 100), "Hello World");
        assert_eq!(clean("\u{1b}[31mred\u{1b}[0m", 100), "[31mred[0m");
        assert_eq!(clean("evil\u{202E}txt.exe", 100), "eviltxt.exe");
        assert_eq!(
            clean("\u{200B}in\u{FEFF}visible\u{FFFF}\u{FFFE}", 100),
            "invisible"
        );
        assert_eq!(
            clean("👨\u{200D}👩", 100),
            "👨\u{200D}👩",
            "emoji sequences keep their joiner"
        );
        assert_eq!(clean("  many   spaces  ", 100), "many spaces");
        assert_eq!(clean(&"ab".repeat(1000), 10), "ababababab…");
        assert_eq!(clean("ünïcödé 👍", 100), "ünïcödé 👍");
        assert_eq!(clean("", 10), "");
    }
}
