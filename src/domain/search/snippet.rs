//! The piece of a field shown under a search result, with the matched words marked.
//!
//! Matches are found with the same tokens and folding as the index, so what is highlighted
//! is exactly what made the item match, whichever database answered.

use std::ops::Range;

use super::fold::{Token, tokens};
use super::query::Query;

/// A run of snippet text; `hit` runs are words the query matched, as written in the field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    pub text: String,
    pub hit: bool,
}

const ELLIPSIS: &str = "…";

/// About `max_chars` characters of `text` around its first match of a positive clause of
/// `query`, or `None` when no positive clause matches.
///
/// Roughly a third of the window comes before the match, more when the match is near the
/// end. The window starts and ends at word boundaries when it is cut (marked with `…`).
/// Every occurrence of a positive term inside it (each word of a matched phrase) is a hit
/// segment; whitespace runs show as one space.
pub fn snippet(text: &str, query: &Query, max_chars: usize) -> Option<Vec<Segment>> {
    let toks = tokens(text);
    let hits = hit_ranges(&toks, query);
    let first = hits.first()?.clone();

    let after = units_forward(text, first.start, max_chars).len();
    let before = (max_chars / 3).max(max_chars.saturating_sub(after + 1));
    let start = window_start(text, &toks, first.start, before);
    let cut_before = has_text(&text[..start]);
    let budget = max_chars.saturating_sub(usize::from(cut_before));
    let end = window_end(text, &toks, start, first.clone(), budget);
    let cut_after = has_text(&text[end..]);

    let mut out = render(&text[start..end], start, &hits);
    if cut_before {
        match out.first_mut() {
            Some(s) if !s.hit => s.text.insert_str(0, ELLIPSIS),
            _ => out.insert(
                0,
                Segment {
                    text: ELLIPSIS.into(),
                    hit: false,
                },
            ),
        }
    }
    if cut_after {
        match out.last_mut() {
            Some(s) if !s.hit => s.text.push_str(ELLIPSIS),
            _ => out.push(Segment {
                text: ELLIPSIS.into(),
                hit: false,
            }),
        }
    }
    Some(out)
}

/// Byte ranges of the tokens matched by a positive clause, in text order, merged.
fn hit_ranges(toks: &[Token], query: &Query) -> Vec<Range<usize>> {
    let folded: Vec<&str> = toks.iter().map(|t| t.folded.as_str()).collect();
    let mut hit = vec![false; toks.len()];
    for clause in query.clauses.iter().filter(|c| !c.negated) {
        for range in clause.term.occurrences(&folded) {
            hit[range].iter_mut().for_each(|h| *h = true);
        }
    }
    toks.iter()
        .zip(hit)
        .filter(|(_, hit)| *hit)
        .map(|(t, _)| t.start..t.end)
        .collect()
}

fn has_text(s: &str) -> bool {
    s.chars().any(|c| !c.is_whitespace())
}

/// Byte offsets where each shown character from `from` on starts, at most `limit + 1` of
/// them. A whitespace run counts as one character, and only when text follows it, since
/// trailing whitespace is trimmed from the snippet.
fn units_forward(text: &str, from: usize, limit: usize) -> Vec<usize> {
    let mut units = Vec::new();
    let mut space = None;
    for (i, c) in text[from..].char_indices() {
        if units.len() > limit {
            break;
        }
        if c.is_whitespace() {
            space = space.or(Some(from + i));
            continue;
        }
        if let Some(s) = space.take()
            && !units.is_empty()
        {
            units.push(s);
        }
        units.push(from + i);
    }
    units.truncate(limit + 1);
    units
}

/// Where the window starts: `before` shown characters ahead of `hit_start`, then forward to
/// the start of a word so that none is shown cut; the text's start when that is close.
fn window_start(text: &str, toks: &[Token], hit_start: usize, before: usize) -> usize {
    let mut count = 0;
    let mut in_space = false;
    for (i, c) in text[..hit_start].char_indices().rev() {
        let space = c.is_whitespace();
        if !(space && in_space) {
            count += 1;
        }
        in_space = space;
        if count > before {
            let word = toks.partition_point(|t| t.start <= i);
            return toks.get(word).map_or(hit_start, |t| t.start.min(hit_start));
        }
    }
    0
}

/// Where the window ends: after at most `budget` shown characters, leaving room for the `…`
/// when the text goes on, and then back to the end of a word, unless that would cut the
/// first hit.
fn window_end(
    text: &str,
    toks: &[Token],
    start: usize,
    first: Range<usize>,
    budget: usize,
) -> usize {
    let units = units_forward(text, start, budget);
    if units.len() <= budget {
        return text.len();
    }
    // The next character starts where the kept ones end.
    let keep = budget.saturating_sub(1);
    let cut = units[keep];
    let word = toks.partition_point(|t| t.end <= cut);
    match word.checked_sub(1).map(|w| toks[w].end) {
        Some(end) if end >= first.end => end,
        // The first hit does not fit: show as much of it as the budget allows, but at least
        // its first character.
        _ => {
            let first_char = text[first.start..].chars().next().map_or(0, char::len_utf8);
            cut.max(first.start + first_char)
        }
    }
}

/// Splits `window` (which starts at byte `offset` of the text) into plain and hit segments.
fn render(window: &str, offset: usize, hits: &[Range<usize>]) -> Vec<Segment> {
    let end = offset + window.len();
    let mut out = Vec::new();
    let mut pos = offset;
    for hit in hits.iter().filter(|h| h.end > offset && h.start < end) {
        let (s, e) = (hit.start.max(offset), hit.end.min(end));
        push(&mut out, collapse(&window[pos - offset..s - offset]), false);
        push(&mut out, window[s - offset..e - offset].to_string(), true);
        pos = e;
    }
    push(&mut out, collapse(&window[pos - offset..]), false);

    if let Some(first) = out.first_mut().filter(|s| !s.hit) {
        first.text = first.text.trim_start().to_string();
    }
    if let Some(last) = out.last_mut().filter(|s| !s.hit) {
        last.text.truncate(last.text.trim_end().len());
    }
    out.retain(|s| !s.text.is_empty());
    out
}

fn push(out: &mut Vec<Segment>, text: String, hit: bool) {
    if text.is_empty() {
        return;
    }
    match out.last_mut() {
        Some(last) if last.hit == hit => last.text.push_str(&text),
        _ => out.push(Segment { text, hit }),
    }
}

fn collapse(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut in_space = false;
    for c in s.chars() {
        if c.is_whitespace() {
            if !in_space {
                out.push(' ');
            }
            in_space = true;
        } else {
            out.push(c);
            in_space = false;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> Query {
        Query::parse(s).unwrap()
    }

    /// Renders segments with hits in brackets, for readable expectations.
    fn show(text: &str, query: &str, max_chars: usize) -> Option<String> {
        let segments = snippet(text, &q(query), max_chars)?;
        for pair in segments.windows(2) {
            assert_ne!(
                pair[0].hit, pair[1].hit,
                "adjacent segments of one kind: {segments:?}"
            );
        }
        assert!(segments.iter().all(|s| !s.text.is_empty()), "{segments:?}");
        Some(
            segments
                .iter()
                .map(|s| {
                    if s.hit {
                        format!("[{}]", s.text)
                    } else {
                        s.text.clone()
                    }
                })
                .collect(),
        )
    }

    fn shown_chars(text: &str, query: &str, max_chars: usize) -> usize {
        let segments = snippet(text, &q(query), max_chars).unwrap();
        segments.iter().map(|s| s.text.chars().count()).sum()
    }

    const LONG: &str = "one two three four five six seven eight nine ten eleven twelve \
                        thirteen fourteen fifteen sixteen seventeen eighteen nineteen twenty";

    #[test]
    fn no_hit_gives_none() {
        assert_eq!(show("the quick brown fox", "dog", 80), None);
        assert_eq!(show("the quick brown fox", "\"brown quick\"", 80), None);
        assert_eq!(show("", "dog", 80), None);
        // An exclusion is not a hit.
        assert_eq!(show("the quick brown fox", "dog -fox", 80), None);
    }

    #[test]
    fn short_text_is_shown_whole() {
        assert_eq!(
            show("  The quick\n\n brown   fox.  ", "quick", 80).unwrap(),
            "The [quick] brown fox."
        );
    }

    #[test]
    fn hit_at_the_start() {
        assert_eq!(
            show(LONG, "one", 30).unwrap(),
            "[one] two three four five six…"
        );
    }

    #[test]
    fn hit_in_the_middle() {
        assert_eq!(
            show(LONG, "eleven", 40).unwrap(),
            "…nine ten [eleven] twelve thirteen…"
        );
        assert!(shown_chars(LONG, "eleven", 40) <= 40);
    }

    #[test]
    fn hit_at_the_end_uses_the_whole_window_before_it() {
        assert_eq!(
            show(LONG, "twenty", 40).unwrap(),
            "…seventeen eighteen nineteen [twenty]"
        );
    }

    #[test]
    fn every_occurrence_in_the_window_is_marked() {
        assert_eq!(
            show("Cats, CATS and more cats: cat-astrophe", "cat* -dog", 80).unwrap(),
            "[Cats], [CATS] and more [cats]: [cat]-astrophe"
        );
        assert_eq!(
            show("a cat and a dog", "cat dog", 80).unwrap(),
            "a [cat] and a [dog]"
        );
    }

    #[test]
    fn phrase_words_are_marked_only_where_the_phrase_occurs() {
        assert_eq!(
            show("big dog, big cat, cat big", "\"big cat\"", 80).unwrap(),
            "big dog, [big] [cat], cat big"
        );
    }

    #[test]
    fn prefix_hits_mark_the_whole_word() {
        assert_eq!(
            show("Prefixes are prepared", "pre*", 80).unwrap(),
            "[Prefixes] are [prepared]"
        );
    }

    #[test]
    fn hits_keep_the_original_characters() {
        assert_eq!(
            show("Une crème brûlée, s'il vous plaît", "creme BRULEE", 80).unwrap(),
            "Une [crème] [brûlée], s'il vous plaît"
        );
        assert_eq!(
            show("cafe\u{301} noir", "cafe", 80).unwrap(),
            "[cafe\u{301}] noir"
        );
    }

    #[test]
    fn multibyte_text_is_cut_at_characters() {
        let text = "東京 タワー ".repeat(10) + "富士山 " + &"大阪 城 ".repeat(10);
        let shown = show(&text, "富士山", 20).unwrap();
        assert!(shown.contains("[富士山]"), "{shown}");
        assert!(shown.starts_with('…') && shown.ends_with('…'), "{shown}");
        assert!(shown_chars(&text, "富士山", 20) <= 20);

        let greek = "Καλημέρα κόσμε, ".repeat(8) + "ΟΔΟΣ " + &"ωραία μέρα ".repeat(8);
        let shown = show(&greek, "οδός", 30).unwrap();
        assert!(shown.contains("[ΟΔΟΣ]"), "{shown}");
        assert!(shown_chars(&greek, "οδός", 30) <= 30);
    }

    #[test]
    fn window_is_about_max_chars_and_cut_at_words() {
        for max in [10, 20, 33, 50, 80] {
            for word in ["one", "seven", "fourteen", "twenty"] {
                let shown = show(LONG, word, max).unwrap();
                assert!(shown_chars(LONG, word, max) <= max, "{max} {word}: {shown}");
                let plain = shown.replace(['[', ']', '…'], "");
                assert!(LONG.contains(&plain), "{max} {word}: {shown}");
                for w in plain.split(' ') {
                    assert!(
                        LONG.split(' ').any(|l| l == w),
                        "{max} {word}: cut word {w:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn tiny_windows_still_show_the_hit() {
        assert_eq!(show(LONG, "fourteen", 0).unwrap(), "…[f]…");
        assert_eq!(show(LONG, "fourteen", 5).unwrap(), "…[fou]…");
        assert_eq!(show("fourteen", "fourteen", 3).unwrap(), "[fo]…");
        assert_eq!(show(LONG, "one", 4).unwrap(), "[one]…");
    }

    #[test]
    fn random_texts_give_well_formed_snippets() {
        const PIECES: [&str; 14] = [
            "cat", "Cat", "caté", "e\u{301}", "東京", "ΟΔΟΣ", " ", "\n\n", "\t ", "—", "🦀", "big",
            "don't", "x",
        ];
        let mut seed = 0x2545_F491_4F6C_DD1Du64;
        let mut next = move |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n as u64) as usize
        };
        let queries = [
            "cat",
            "\"big cat\"",
            "ca*",
            "東京",
            "οδος -x",
            "\"don t\" e",
        ];
        for _ in 0..3000 {
            let text: String = (0..next(60)).map(|_| PIECES[next(PIECES.len())]).collect();
            let query = q(queries[next(queries.len())]);
            let max = next(70);
            let Some(segments) = snippet(&text, &query, max) else {
                continue;
            };
            assert!(segments.iter().any(|s| s.hit), "{text:?}");
            for s in &segments {
                assert!(!s.text.is_empty(), "{text:?} {max}: {segments:?}");
                assert!(!s.hit || text.contains(&s.text), "{text:?}: {segments:?}");
                assert!(!s.text.contains(['\n', '\t']) && !s.text.contains("  "));
            }
            for pair in segments.windows(2) {
                assert_ne!(pair[0].hit, pair[1].hit, "{text:?}: {segments:?}");
            }
            let shown: usize = segments.iter().map(|s| s.text.chars().count()).sum();
            assert!(shown <= max.max(3), "{text:?} {max}: {segments:?}");
        }
    }

    #[test]
    fn newlines_and_tabs_collapse_to_one_space() {
        assert_eq!(
            show("first line\n\n\tsecond\r\nthird", "second", 80).unwrap(),
            "first line [second] third"
        );
    }
}
