//! Words of a text and the folded form each is indexed and searched under.

use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

/// Folded tokens longer than this are dropped: nobody types them (they are hashes, base64 or
/// unspaced runs of CJK), and PostgreSQL would drop words over 2047 bytes on its own, which
/// would make the two databases disagree.
pub const MAX_TOKEN_BYTES: usize = 64;

/// Upper bound of [`index_text`]: keeps an index row small, and PostgreSQL's `tsvector` under
/// its 1 MB limit whatever a description or transcript holds.
pub const MAX_INDEX_BYTES: usize = 100_000;

/// Upper bound on the words of [`index_text`]: PostgreSQL records word positions up to
/// 16383 only, so phrases further on would match in SQLite and not in PostgreSQL.
pub const MAX_INDEX_TOKENS: usize = 16_383;

/// One word of a text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    /// Byte offset of the word in the original text, so snippets can show it as written.
    pub start: usize,
    /// Byte offset just past the word (and its combining marks) in the original text.
    pub end: usize,
    /// What is stored in the index and compared against the query.
    pub folded: String,
}

/// The words of `text`, in order, with their folded form.
///
/// A word is a maximal run of alphanumeric characters (but for a few numbers and symbols,
/// see `is_word_char`), with the combining marks that follow them (a decomposed `é` stays
/// one word). Anything else separates words, so `don't` gives `don` and `t` as SQLite's
/// `unicode61` tokenizer does. Words that fold to nothing, or to more than
/// [`MAX_TOKEN_BYTES`], are left out.
pub fn tokens(text: &str) -> Vec<Token> {
    word_spans(text)
        .filter_map(|(start, end)| {
            let folded = fold(&text[start..end]);
            (!folded.is_empty() && folded.len() <= MAX_TOKEN_BYTES).then_some(Token {
                start,
                end,
                folded,
            })
        })
        .collect()
}

/// Whether `text` holds a word that folds to more than [`MAX_TOKEN_BYTES`]: such a word is
/// never indexed, so a search asking for it can never match.
pub fn has_overlong_word(text: &str) -> bool {
    word_spans(text).any(|(start, end)| fold(&text[start..end]).len() > MAX_TOKEN_BYTES)
}

/// Byte ranges of the maximal runs of word characters (with the combining marks that
/// follow them) in `text`.
fn word_spans(text: &str) -> impl Iterator<Item = (usize, usize)> + '_ {
    let mut chars = text.char_indices().peekable();
    std::iter::from_fn(move || {
        let (start, _) = chars.by_ref().find(|&(_, c)| is_word_char(c))?;
        while chars
            .next_if(|&(_, c)| is_word_char(c) || is_combining_mark(c))
            .is_some()
        {}
        let end = chars.peek().map_or(text.len(), |&(i, _)| i);
        Some((start, end))
    })
}

/// The indexed form of a word: compatibility-decomposed (`ﬁ` → `fi`, `²` → `2`), without
/// marks (`é` → `e`), lowercase, letters and digits only.
///
/// All marks go, not only nonspacing ones: what is left is letters and digits only, which
/// SQLite's `unicode61` and PostgreSQL's parser both take as one word, so neither database
/// splits a stored token again. Folding twice gives the same result, so typing a folded
/// word finds it.
pub fn fold(word: &str) -> String {
    // Most words are ASCII, which decomposes to itself and has no marks: lowercase letters
    // and digits are all that is left. Skipping the Unicode tables makes snippets of long
    // descriptions several times cheaper (the search listing folds every field it shows).
    if word.is_ascii() {
        return word
            .bytes()
            .filter(u8::is_ascii_alphanumeric)
            .map(|b| char::from(b.to_ascii_lowercase()))
            .collect();
    }
    fold_unicode(word)
}

fn fold_unicode(word: &str) -> String {
    word.nfkd()
        .filter(|&c| !is_combining_mark(c) && !was_mark(c))
        .flat_map(char::to_lowercase)
        .map(unify_sigma)
        .filter(|&c| is_word_char(c))
        .collect()
}

/// Vowel signs that Unicode 8 and 10 turned from marks into letters; SQLite's tables still
/// have them as marks and would split a word there.
fn was_mark(c: char) -> bool {
    matches!(
        c,
        '\u{19B0}'..='\u{19C0}' | '\u{19C8}' | '\u{19C9}' | '\u{1CF2}' | '\u{1CF3}'
    )
}

/// Lowercasing one character at a time turns `Σ` into `σ` even at a word's end, where Greek
/// writes `ς`; without this, a typed `οδός` would never find the title `ΟΔΟΣ`.
fn unify_sigma(c: char) -> char {
    if c == 'ς' { 'σ' } else { c }
}

/// Alphanumeric in Unicode, and taken as part of a word by both databases.
///
/// PostgreSQL's parser asks the C library, which knows letters and decimal digits but not
/// other numbers (`❶`, `৴`, `𝋠`); SQLite would keep those, so they separate words here
/// (numbers with a compatibility form such as `²` or `①` fold to digits and stay). Squared
/// and negative-circled letters (`🅰`, `🅿`) count as alphabetic in Unicode but are emoji to
/// a reader and symbols to SQLite.
fn is_word_char(c: char) -> bool {
    if c.is_alphabetic() {
        !matches!(c, '\u{1F130}'..='\u{1F189}') || decomposes(c)
    } else if c.is_ascii_digit() {
        true
    } else {
        c.is_numeric() && (is_decimal_digit(c) || decomposes(c))
    }
}

fn decomposes(c: char) -> bool {
    !c.nfkd().eq([c])
}

/// First code points of the runs of ten decimal digits (general category Nd) that have no
/// compatibility form, as of Unicode 14. Digits of later scripts are left out on purpose:
/// a C library of that age (Debian 12's) does not know them, so PostgreSQL would drop them.
const DIGIT_ZEROS: [u32; 58] = [
    0x660, 0x6F0, 0x7C0, 0x966, 0x9E6, 0xA66, 0xAE6, 0xB66, 0xBE6, 0xC66, 0xCE6, 0xD66, 0xDE6,
    0xE50, 0xED0, 0xF20, 0x1040, 0x1090, 0x17E0, 0x1810, 0x1946, 0x19D0, 0x1A80, 0x1A90, 0x1B50,
    0x1BB0, 0x1C40, 0x1C50, 0xA620, 0xA8D0, 0xA900, 0xA9D0, 0xA9F0, 0xAA50, 0xABF0, 0x104A0,
    0x10D30, 0x11066, 0x110F0, 0x11136, 0x111D0, 0x112F0, 0x11450, 0x114D0, 0x11650, 0x116C0,
    0x11730, 0x118E0, 0x11950, 0x11C50, 0x11D50, 0x11DA0, 0x16A60, 0x16AC0, 0x16B50, 0x1E140,
    0x1E2F0, 0x1E950,
];

fn is_decimal_digit(c: char) -> bool {
    let c = c as u32;
    let run = DIGIT_ZEROS.partition_point(|&zero| zero <= c);
    run > 0 && c - DIGIT_ZEROS[run - 1] < 10
}

/// The text stored in the index for an item: the folded words of all `parts`, separated by
/// single spaces, at most [`MAX_INDEX_BYTES`] long and [`MAX_INDEX_TOKENS`] words, never cut
/// inside a word.
pub fn index_text<'a>(parts: impl IntoIterator<Item = &'a str>) -> String {
    let mut out = String::new();
    let mut count = 0;
    for part in parts {
        for token in tokens(part) {
            let needed = token.folded.len() + usize::from(!out.is_empty());
            if out.len() + needed > MAX_INDEX_BYTES || count == MAX_INDEX_TOKENS {
                return out;
            }
            count += 1;
            if !out.is_empty() {
                out.push(' ');
            }
            out.push_str(&token.folded);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folded(text: &str) -> Vec<String> {
        tokens(text).into_iter().map(|t| t.folded).collect()
    }

    #[test]
    fn the_ascii_shortcut_folds_as_the_unicode_tables_do() {
        let every_ascii: String = (0u8..128).map(char::from).collect();
        for text in [
            every_ascii.as_str(),
            "Hello, World! 42",
            "don't",
            "A-Z_a-z 0-9",
        ] {
            assert_eq!(fold(text), fold_unicode(text), "{text:?}");
        }
        for c in (0u8..128).map(char::from) {
            assert_eq!(fold(&c.to_string()), fold_unicode(&c.to_string()), "{c:?}");
        }
    }

    #[test]
    fn latin_diacritics_and_case_are_folded() {
        assert_eq!(folded("Crème Brûlée"), ["creme", "brulee"]);
        assert_eq!(folded("ÅNGSTRÖM"), ["angstrom"]);
        assert_eq!(folded("Ça, c'est Noël!"), ["ca", "c", "est", "noel"]);
        assert_eq!(
            folded("ﬁnal ＦＵＬＬＷＩＤＴＨ x²"),
            ["final", "fullwidth", "x2"]
        );
    }

    #[test]
    fn greek_and_cyrillic_are_lowercased() {
        assert_eq!(folded("ΚΑΛΗΜΈΡΑ Κόσμε"), ["καλημερα", "κοσμε"]);
        assert_eq!(folded("ΟΔΟΣ οδός"), ["οδοσ", "οδοσ"]);
        assert_eq!(folded("ПРИВЕТ, Мир! Ёлка"), ["привет", "мир", "елка"]);
    }

    #[test]
    fn a_cjk_run_stays_one_token() {
        assert_eq!(folded("東京タワー 2024年"), ["東京タワー", "2024年"]);
    }

    #[test]
    fn a_decomposed_accent_stays_in_its_word() {
        let text = "cafe\u{301} noir";
        let toks = tokens(text);
        assert_eq!(folded(text), ["cafe", "noir"]);
        assert_eq!(&text[toks[0].start..toks[0].end], "cafe\u{301}");
        // A mark with no letter before it belongs to no word.
        assert_eq!(folded("\u{301}abc"), ["abc"]);
    }

    #[test]
    fn emoji_and_symbols_are_dropped() {
        assert_eq!(folded("I ❤️ Rust 🦀🦀 #1 🅰🅱 ✓"), ["i", "rust", "1"]);
        // Squared letters have a plain form; negative ones do not.
        assert_eq!(folded("🄰🄱 🅐"), ["ab"]);
        assert!(folded("🎉🎉 — … ¿?").is_empty());
    }

    #[test]
    fn digits_of_any_script_are_kept_other_numbers_split() {
        assert_eq!(
            folded("٢٠٢٤ १२३ ２０２４ ① x² Ⅻ"),
            ["٢٠٢٤", "१२३", "2024", "1", "x2", "xii"]
        );
        assert_eq!(folded("❶intro a❷b ৴"), ["intro", "a", "b"]);
        assert_eq!(folded("ᦶᦎ ᦎᦱ"), ["ᦎ", "ᦎ"]);
        assert!(is_decimal_digit('٠') && is_decimal_digit('٩') && is_decimal_digit('𞥙'));
        assert!(!is_decimal_digit('٪') && !is_decimal_digit('a') && !is_decimal_digit('\u{65F}'));
    }

    #[test]
    fn apostrophes_split_words() {
        assert_eq!(folded("don't"), ["don", "t"]);
        assert_eq!(folded("l’été"), ["l", "ete"]);
    }

    #[test]
    fn overlong_tokens_are_dropped() {
        let longest = "a".repeat(MAX_TOKEN_BYTES);
        let text = format!("x {longest} {}a y", longest);
        assert_eq!(folded(&text), ["x", longest.as_str(), "y"]);
        // The limit is on the folded bytes: 21 CJK characters fit, 22 do not.
        assert_eq!(folded(&"語".repeat(21)).len(), 1);
        assert!(folded(&"語".repeat(22)).is_empty());
    }

    #[test]
    fn offsets_point_into_the_original_text() {
        let text = "  Ça va,\tÉTÉ 東京!  e\u{301}t\u{301}e\u{301}";
        let toks = tokens(text);
        let originals: Vec<&str> = toks.iter().map(|t| &text[t.start..t.end]).collect();
        assert_eq!(
            originals,
            ["Ça", "va", "ÉTÉ", "東京", "e\u{301}t\u{301}e\u{301}"]
        );
        assert_eq!(folded(text), ["ca", "va", "ete", "東京", "ete"]);
    }

    #[test]
    fn empty_and_separator_only_text_has_no_tokens() {
        assert!(tokens("").is_empty());
        assert!(tokens(" \n\t.,;-'\"*").is_empty());
    }

    #[test]
    fn folding_is_stable_for_every_character() {
        // A folded word must come out of tokens() unchanged: the index text is tokenized
        // again by the database, and a user may type the folded form.
        for c in (0..=0x10FFFF).filter_map(char::from_u32) {
            let f = fold(c.encode_utf8(&mut [0; 4]));
            if f.is_empty() {
                continue;
            }
            assert_eq!(fold(&f), f, "fold is not idempotent for U+{:04X}", c as u32);
            assert!(
                f.chars()
                    .all(|c| c.is_alphanumeric() && !is_combining_mark(c)),
                "U+{:04X} folds to a non-alphanumeric",
                c as u32
            );
            let again = tokens(&f);
            assert!(
                again.len() == 1 && again[0].folded == f || f.len() > MAX_TOKEN_BYTES,
                "U+{:04X} folds to {f:?}, which does not tokenize as one word",
                c as u32
            );
        }
    }

    #[test]
    fn index_text_joins_folded_words_of_all_parts() {
        assert_eq!(
            index_text(["Crème Brûlée", "", "  how-to: don't!  "]),
            "creme brulee how to don t"
        );
        assert_eq!(index_text([]), "");
    }

    #[test]
    fn index_text_is_capped_at_a_token_boundary() {
        let long = "abcdefg ".repeat(20_000);
        let out = index_text([long.as_str()]);
        assert!(out.len() <= MAX_INDEX_BYTES);
        assert!(out.len() > MAX_INDEX_BYTES - 8);
        assert!(out.split(' ').all(|w| w == "abcdefg"));

        let many = "a ".repeat(MAX_INDEX_TOKENS + 10);
        let out = index_text(["b", many.as_str()]);
        assert_eq!(out.split(' ').count(), MAX_INDEX_TOKENS);
        assert!(out.starts_with("b a a"));
    }
}
