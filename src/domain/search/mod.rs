//! Full-text search: words, folding, the query language and result snippets.
//!
//! Tokenizing happens here, in Rust, not in the database. The index column holds folded
//! words separated by single spaces (see [`index_text`]) and queries are built from the same
//! folded words ([`Query::to_fts5`], [`Query::to_tsquery`]). SQLite's FTS5 and PostgreSQL's
//! `simple` text search then only split on spaces, so both find the same items for the same
//! query: their own tokenizers differ on accents, case, punctuation and Unicode versions,
//! and PostgreSQL's also depends on the server locale. Snippets use the same tokens, so what
//! is highlighted is what matched, whichever database answered.

mod fold;
mod query;
mod snippet;

pub use fold::{Token, index_text, tokens};
pub use query::{Clause, Query, QueryError, Term};
pub use snippet::{Segment, snippet};
