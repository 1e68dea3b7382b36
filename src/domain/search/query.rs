//! The search box language and its translation to SQLite FTS5 and PostgreSQL `tsquery`.
//!
//! `cat dog` needs both words, `"big cat"` the words in that order, `-dog` and `-"big dog"`
//! exclude, `pre*` matches words starting with `pre`. Everything else is literal text: what
//! users paste (titles, URLs, `C++`, SQL) must find what it says, never raise a syntax error.

use std::fmt;
use std::ops::Range;

use super::fold::{MAX_TOKEN_BYTES, has_overlong_word, tokens};

/// Longer queries are refused rather than cut, so the user sees why nothing matched.
pub const MAX_QUERY_CHARS: usize = 500;

/// Bounds the work of one search; nobody needs more words than this.
pub const MAX_CLAUSES: usize = 32;

/// A shorter prefix matches a large part of the vocabulary and makes the search slow, so
/// `a*` is taken as the word `a`.
const MIN_PREFIX_CHARS: usize = 2;

/// What one clause looks for, in folded tokens.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Term {
    Word(String),
    /// Any word starting with this.
    Prefix(String),
    /// These words next to each other, in order; always two or more.
    Phrase(Vec<String>),
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Clause {
    pub term: Term,
    /// The item must not contain the term.
    pub negated: bool,
}

/// A parsed query: the clauses all hold, and at least one is not negated (a search made of
/// exclusions only would list the whole vault).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    pub clauses: Vec<Clause>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryError {
    /// Nothing searchable was typed (blank, or only punctuation and symbols).
    Empty,
    /// Every word is excluded with `-`.
    OnlyExclusions,
    /// More than [`MAX_QUERY_CHARS`] characters or [`MAX_CLAUSES`] clauses.
    TooLong,
    /// A word to look for is longer than any indexed word, so nothing could match it.
    WordTooLong,
}

impl fmt::Display for QueryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("the search has no words to look for"),
            Self::OnlyExclusions => {
                f.write_str("the search only excludes words; add a word to look for")
            }
            Self::TooLong => write!(
                f,
                "the search is too long (at most {MAX_QUERY_CHARS} characters and \
                 {MAX_CLAUSES} words or phrases)"
            ),
            Self::WordTooLong => write!(
                f,
                "the search asks for a word longer than {MAX_TOKEN_BYTES} bytes; such words \
                 are not indexed, so nothing could match it"
            ),
        }
    }
}

impl std::error::Error for QueryError {}

/// One whitespace-separated piece of the query, or one quoted piece.
struct Chunk<'a> {
    text: &'a str,
    negated: bool,
    quoted: bool,
}

impl Query {
    /// Parses what the user typed; see the module documentation for the language.
    pub fn parse(q: &str) -> Result<Query, QueryError> {
        if q.chars().count() > MAX_QUERY_CHARS {
            return Err(QueryError::TooLong);
        }
        let mut clauses: Vec<Clause> = Vec::new();
        for chunk in chunks(q) {
            for clause in chunk_clauses(&chunk)? {
                if !clauses.contains(&clause) {
                    clauses.push(clause);
                }
            }
            if clauses.len() > MAX_CLAUSES {
                return Err(QueryError::TooLong);
            }
        }
        if clauses.iter().all(|c| c.negated) {
            return Err(if clauses.is_empty() {
                QueryError::Empty
            } else {
                QueryError::OnlyExclusions
            });
        }
        Ok(Query { clauses })
    }

    fn positive(&self) -> impl Iterator<Item = &Term> {
        self.clauses.iter().filter(|c| !c.negated).map(|c| &c.term)
    }

    fn negative(&self) -> impl Iterator<Item = &Term> {
        self.clauses.iter().filter(|c| c.negated).map(|c| &c.term)
    }

    /// The query in FTS5 `MATCH` syntax, e.g. `("big cat" AND "pre"*) NOT "dog"`.
    ///
    /// Every token is double-quoted, so `AND`, `NEAR` or `col:` typed by the user are plain
    /// words to FTS5. Its `NOT` is binary and binds tighter than `AND`; the parentheses
    /// make the intended reading explicit rather than relying on that.
    pub fn to_fts5(&self) -> String {
        let positive: Vec<String> = self.positive().map(fts5_term).collect();
        let mut out = positive.join(" AND ");
        let mut negative = self.negative().peekable();
        if positive.len() > 1 && negative.peek().is_some() {
            out = format!("({out})");
        }
        for term in negative {
            out.push_str(" NOT ");
            out.push_str(&fts5_term(term));
        }
        out
    }

    /// The query for PostgreSQL's `to_tsquery('simple', …)`, e.g.
    /// `('big' <-> 'cat') & 'pre':* & !'dog'`.
    pub fn to_tsquery(&self) -> String {
        let terms: Vec<String> = self
            .positive()
            .map(ts_term)
            .chain(self.negative().map(|t| format!("!{}", ts_term(t))))
            .collect();
        terms.join(" & ")
    }

    /// The terms that must all match, for FTS5 (exclusions apply to the whole item, so they
    /// are checked apart: [`Query::to_fts5_excluded`]).
    pub fn to_fts5_required(&self) -> String {
        self.positive()
            .map(fts5_term)
            .collect::<Vec<_>>()
            .join(" AND ")
    }

    /// Any excluded term, for FTS5; `None` without exclusions.
    pub fn to_fts5_excluded(&self) -> Option<String> {
        let any: Vec<String> = self.negative().map(fts5_term).collect();
        (!any.is_empty()).then(|| any.join(" OR "))
    }

    /// The terms that must all match, for `to_tsquery('simple', …)`.
    pub fn to_tsquery_required(&self) -> String {
        self.positive().map(ts_term).collect::<Vec<_>>().join(" & ")
    }

    /// Any excluded term, for `to_tsquery('simple', …)`; `None` without exclusions.
    pub fn to_tsquery_excluded(&self) -> Option<String> {
        let any: Vec<String> = self.negative().map(ts_term).collect();
        (!any.is_empty()).then(|| any.join(" | "))
    }

    /// Whether this token sequence (one field of an item, folded) satisfies the query: every
    /// positive term occurs and no negated one does. Tells which field a hit came from.
    pub fn matches_tokens(&self, folded: &[&str]) -> bool {
        self.clauses
            .iter()
            .all(|c| c.term.occurrences(folded).next().is_some() != c.negated)
    }
}

impl Term {
    /// Where the term occurs in `folded`, as ranges of token indices.
    pub(super) fn occurrences<'a>(
        &'a self,
        folded: &'a [&str],
    ) -> impl Iterator<Item = Range<usize>> + 'a {
        let len = match self {
            Term::Phrase(words) => words.len(),
            _ => 1,
        };
        (0..(folded.len() + 1).saturating_sub(len))
            .filter(move |&i| match self {
                Term::Word(w) => folded[i] == w,
                Term::Prefix(p) => folded[i].starts_with(p.as_str()),
                Term::Phrase(words) => words.iter().zip(&folded[i..]).all(|(w, f)| w == f),
            })
            .map(move |i| i..i + len)
    }
}

/// Splits on whitespace, except inside double quotes; an unclosed quote runs to the end.
fn chunks(q: &str) -> Vec<Chunk<'_>> {
    let mut out = Vec::new();
    let mut rest = q;
    loop {
        rest = rest.trim_start();
        if rest.is_empty() {
            return out;
        }
        let (negated, body) = match rest.strip_prefix('-') {
            Some(body) => (true, body),
            None => (false, rest),
        };
        if let Some(inner) = body.strip_prefix('"') {
            let (text, after) = match inner.find('"') {
                Some(i) => (&inner[..i], &inner[i + 1..]),
                None => (inner, ""),
            };
            out.push(Chunk {
                text,
                negated,
                quoted: true,
            });
            rest = after;
        } else {
            // A quote ends a word, so `say"hi there"` is the word and the phrase.
            let end = body
                .find(|c: char| c.is_whitespace() || c == '"')
                .unwrap_or(body.len());
            out.push(Chunk {
                text: &body[..end],
                negated,
                quoted: false,
            });
            rest = &body[end..];
        }
    }
}

/// The clauses of one chunk. A word too long to be indexed is left out, as it is left out
/// of the text it would be found in (so a pasted URL still finds its item by its other
/// words); a chunk asking for nothing but such a word is refused rather than ignored.
fn chunk_clauses(chunk: &Chunk<'_>) -> Result<Vec<Clause>, QueryError> {
    // Inside quotes `*` is text like any other: the quotes ask for the words as typed.
    let starred = !chunk.quoted && chunk.text.ends_with('*');
    let mut words: Vec<String> = tokens(chunk.text.trim_end_matches('*'))
        .into_iter()
        .map(|t| t.folded)
        .collect();
    if words.is_empty() && !chunk.negated && has_overlong_word(chunk.text) {
        return Err(QueryError::WordTooLong);
    }
    let clause = |term| Clause {
        term,
        negated: chunk.negated,
    };
    let prefix = starred
        && words
            .last()
            .is_some_and(|w| w.chars().count() >= MIN_PREFIX_CHARS);
    if prefix && (words.len() == 1 || !chunk.negated) {
        // `foo-ba*` cannot be one term (a phrase ending in a prefix); the words before the
        // prefix stay a phrase and the prefix becomes a clause of its own, which finds a
        // little more than asked rather than nothing. An exclusion is not split that way:
        // `-foo-ba*` would then hide everything containing `foo`.
        let last = words.pop().unwrap_or_default();
        let mut out: Vec<Clause> = word_or_phrase(words).map(clause).into_iter().collect();
        out.push(clause(Term::Prefix(last)));
        Ok(out)
    } else {
        Ok(word_or_phrase(words).map(clause).into_iter().collect())
    }
}

fn word_or_phrase(mut words: Vec<String>) -> Option<Term> {
    match words.len() {
        0 => None,
        1 => words.pop().map(Term::Word),
        _ => Some(Term::Phrase(words)),
    }
}

/// Tokens only hold alphanumerics, so wrapping them in quotes needs no escaping.
fn assert_plain(token: &str) {
    debug_assert!(
        !token.is_empty() && token.chars().all(char::is_alphanumeric),
        "search token needs quoting: {token:?}"
    );
}

fn fts5_term(term: &Term) -> String {
    match term {
        Term::Word(w) => {
            assert_plain(w);
            format!("\"{w}\"")
        }
        Term::Prefix(p) => {
            assert_plain(p);
            format!("\"{p}\"*")
        }
        Term::Phrase(words) => {
            words.iter().for_each(|w| assert_plain(w));
            format!("\"{}\"", words.join(" "))
        }
    }
}

fn ts_term(term: &Term) -> String {
    match term {
        Term::Word(w) => {
            assert_plain(w);
            format!("'{w}'")
        }
        Term::Prefix(p) => {
            assert_plain(p);
            format!("'{p}':*")
        }
        Term::Phrase(words) => {
            words.iter().for_each(|w| assert_plain(w));
            let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
            format!("({})", quoted.join(" <-> "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn word(w: &str) -> Clause {
        Clause {
            term: Term::Word(w.into()),
            negated: false,
        }
    }

    fn prefix(p: &str) -> Clause {
        Clause {
            term: Term::Prefix(p.into()),
            negated: false,
        }
    }

    fn phrase(words: &[&str]) -> Clause {
        let words = words.iter().map(|w| w.to_string()).collect();
        Clause {
            term: Term::Phrase(words),
            negated: false,
        }
    }

    fn not(c: Clause) -> Clause {
        Clause { negated: true, ..c }
    }

    fn parse(q: &str) -> Vec<Clause> {
        Query::parse(q)
            .unwrap_or_else(|e| panic!("{q:?}: {e}"))
            .clauses
    }

    fn both(q: &str) -> (String, String) {
        let query = Query::parse(q).unwrap_or_else(|e| panic!("{q:?}: {e}"));
        (query.to_fts5(), query.to_tsquery())
    }

    #[test]
    fn words_phrases_exclusions_and_prefixes() {
        assert_eq!(parse("cat dog"), [word("cat"), word("dog")]);
        assert_eq!(parse("  Chat\tCRÈME  "), [word("chat"), word("creme")]);
        assert_eq!(
            parse("\"big cat\" -dog"),
            [phrase(&["big", "cat"]), not(word("dog"))]
        );
        assert_eq!(parse("pre*"), [prefix("pre")]);
        assert_eq!(parse("Pré**"), [prefix("pre")]);
        assert_eq!(parse("p*"), [word("p")]);
        assert_eq!(parse("x -\"a b\""), [word("x"), not(phrase(&["a", "b"]))]);
        assert_eq!(parse("x -pre*"), [word("x"), not(prefix("pre"))]);
    }

    #[test]
    fn punctuation_inside_a_word_makes_a_phrase() {
        assert_eq!(parse("foo-bar"), [phrase(&["foo", "bar"])]);
        assert_eq!(parse("e.mail"), [phrase(&["e", "mail"])]);
        assert_eq!(parse("don't"), [phrase(&["don", "t"])]);
        assert_eq!(
            parse("x -foo-bar"),
            [word("x"), not(phrase(&["foo", "bar"]))]
        );
    }

    #[test]
    fn a_prefix_after_punctuation_applies_to_the_last_word() {
        assert_eq!(parse("foo-ba*"), [word("foo"), prefix("ba")]);
        assert_eq!(parse("a.b.cd*"), [phrase(&["a", "b"]), prefix("cd")]);
        assert_eq!(parse("foo-b*"), [phrase(&["foo", "b"])]);
        // Excluding `foo` everywhere would hide far more than `-foo-ba*` asks for.
        assert_eq!(
            parse("x -foo-ba*"),
            [word("x"), not(phrase(&["foo", "ba"]))]
        );
    }

    #[test]
    fn quotes_are_respected_and_may_be_left_open() {
        assert_eq!(parse("\"big cat"), [phrase(&["big", "cat"])]);
        assert_eq!(parse("a \"b"), [word("a"), word("b")]);
        assert_eq!(
            parse("say\"hi there\"now"),
            [word("say"), phrase(&["hi", "there"]), word("now")]
        );
        assert_eq!(parse("\"pre*\""), [word("pre")]);
        assert_eq!(parse("\"x\"*"), [word("x")]);
    }

    #[test]
    fn stray_operators_are_ignored_or_literal() {
        assert_eq!(parse("- cat"), [word("cat")]);
        assert_eq!(parse("cat -"), [word("cat")]);
        assert_eq!(parse("--x y"), [not(word("x")), word("y")]);
        assert_eq!(parse("*cat"), [word("cat")]);
        assert_eq!(parse("pre*fix"), [phrase(&["pre", "fix"])]);
        assert_eq!(parse("c++ c#"), [word("c")]);
    }

    #[test]
    fn duplicates_are_removed() {
        assert_eq!(
            parse("cat Cat CAT -dog -dog"),
            [word("cat"), not(word("dog"))]
        );
        assert_eq!(parse("cat -cat"), [word("cat"), not(word("cat"))]);
    }

    #[test]
    fn nothing_to_search_is_an_error() {
        for q in [
            "",
            "   ",
            "***",
            "\"\"\"",
            "-",
            "- -- -\"\"",
            "🎉 … ¿?",
            "\"\" *",
        ] {
            assert_eq!(Query::parse(q), Err(QueryError::Empty), "{q:?}");
        }
        for q in ["-cat", "-cat -\"big dog\" -pre*", "--x", "-cat 🎉"] {
            assert_eq!(Query::parse(q), Err(QueryError::OnlyExclusions), "{q:?}");
        }
    }

    #[test]
    fn long_queries_are_refused() {
        assert_eq!(Query::parse(&"a".repeat(600)), Err(QueryError::TooLong));
        // Counted in characters, not bytes.
        assert!(Query::parse(&"é ".repeat(MAX_QUERY_CHARS / 2)).is_ok());
        let forty: Vec<String> = (0..40).map(|i| format!("w{i}")).collect();
        assert_eq!(Query::parse(&forty.join(" ")), Err(QueryError::TooLong));
        let limit: Vec<String> = (0..MAX_CLAUSES).map(|i| format!("w{i}")).collect();
        assert_eq!(parse(&limit.join(" ")).len(), MAX_CLAUSES);
        // Repeats cost nothing, so they do not count.
        assert_eq!(parse(&"cat ".repeat(100)), [word("cat")]);
    }

    #[test]
    fn a_word_too_long_to_be_indexed_is_refused_alone_and_left_out_beside_others() {
        let long = "x".repeat(MAX_TOKEN_BYTES + 1);
        for q in [
            long.clone(),
            format!("cat {long}"),
            format!("\"{long}\""),
            format!("{long}*"),
        ] {
            assert_eq!(Query::parse(&q), Err(QueryError::WordTooLong), "{q:?}");
        }
        // Inside a pasted URL it is dropped, as it is from the indexed URL.
        assert_eq!(
            parse(&format!("https://v.example/{long}/clip")),
            [phrase(&["https", "v", "example", "clip"])]
        );
        // Excluding it excludes nothing.
        assert_eq!(parse(&format!("cat -{long}")), [word("cat")]);
        assert_eq!(
            parse(&"x".repeat(MAX_TOKEN_BYTES)),
            [word(&"x".repeat(MAX_TOKEN_BYTES))]
        );
        assert!(QueryError::WordTooLong.to_string().contains("64 bytes"));
    }

    #[test]
    fn errors_read_as_english() {
        assert_eq!(
            QueryError::Empty.to_string(),
            "the search has no words to look for"
        );
        assert!(QueryError::TooLong.to_string().contains("500 characters"));
        let boxed: Box<dyn std::error::Error> = Box::new(QueryError::OnlyExclusions);
        assert!(boxed.to_string().contains("only excludes"));
    }

    #[test]
    fn backend_syntax() {
        assert_eq!(both("cat"), ("\"cat\"".into(), "'cat'".into()));
        assert_eq!(
            both("cat dog"),
            ("\"cat\" AND \"dog\"".into(), "'cat' & 'dog'".into())
        );
        assert_eq!(both("pre*"), ("\"pre\"*".into(), "'pre':*".into()));
        assert_eq!(
            both("\"big cat\" -dog"),
            (
                "\"big cat\" NOT \"dog\"".into(),
                "('big' <-> 'cat') & !'dog'".into()
            )
        );
        assert_eq!(
            both("-\"a b\" x -pre* Big-Cat c"),
            (
                "(\"x\" AND \"big cat\" AND \"c\") NOT \"a b\" NOT \"pre\"*".into(),
                "'x' & ('big' <-> 'cat') & 'c' & !('a' <-> 'b') & !'pre':*".into()
            )
        );
    }

    #[test]
    fn injection_attempts_become_quoted_words() {
        assert_eq!(
            both("' OR 1=1; --"),
            ("\"or\" AND \"1 1\"".into(), "'or' & ('1' <-> '1')".into())
        );
        assert_eq!(
            both("NEAR AND OR NOT"),
            (
                "\"near\" AND \"and\" AND \"or\" AND \"not\"".into(),
                "'near' & 'and' & 'or' & 'not'".into()
            )
        );
        assert_eq!(
            both("col: ^x {a b} a:* !b (c|d) <->"),
            (
                "\"col\" AND \"x\" AND \"a\" AND \"b\" AND \"c d\"".into(),
                "'col' & 'x' & 'a' & 'b' & ('c' <-> 'd')".into()
            )
        );
        assert_eq!(
            both("x'); DROP TABLE items; --"),
            (
                "\"x\" AND \"drop\" AND \"table\" AND \"items\"".into(),
                "'x' & 'drop' & 'table' & 'items'".into()
            )
        );
    }

    #[test]
    fn matches_tokens_checks_every_clause() {
        let q = Query::parse("\"big cat\" pre* -dog").unwrap();
        assert!(q.matches_tokens(&["a", "big", "cat", "prefix"]));
        assert!(q.matches_tokens(&["pre", "big", "cat"]));
        assert!(!q.matches_tokens(&["big", "red", "cat", "prefix"]));
        assert!(!q.matches_tokens(&["cat", "big", "prefix"]));
        assert!(!q.matches_tokens(&["big", "cat", "pr"]));
        assert!(!q.matches_tokens(&["big", "cat", "prefix", "dog"]));
        assert!(!q.matches_tokens(&[]));
        let q = Query::parse("x -\"hot dog\"").unwrap();
        assert!(q.matches_tokens(&["x", "dog", "hot"]));
        assert!(!q.matches_tokens(&["x", "hot", "dog"]));
    }

    #[test]
    fn occurrences_are_token_ranges() {
        let folded = ["a", "b", "a", "b", "ab"];
        let find = |q: &str| -> Vec<(usize, usize)> {
            let query = Query::parse(q).unwrap();
            let found = query.clauses[0].term.occurrences(&folded);
            found.map(|r| (r.start, r.end)).collect()
        };
        assert_eq!(find("a"), [(0, 1), (2, 3)]);
        assert_eq!(find("\"a b\""), [(0, 2), (2, 4)]);
        assert_eq!(find("ab*"), [(4, 5)]);
        assert_eq!(find("\"b ab c\""), []);
    }
}
