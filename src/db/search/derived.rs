//! The index is derived from the kept tables: a backup leaves it out, a forced restore
//! empties it with the vault, and `catch_up` builds it again.

use super::super::{DbError, Tx, on_tx};

/// Tables derived from the kept ones (the search index; each backend has some of them): left
/// out of backups, emptied with the vault by a forced restore, and rebuilt by
/// `search::catch_up` when the service starts. FTS5's own shadow tables
/// (`item_search_data`, …) go with their table.
pub const DERIVED_TABLES: &[&str] = &[
    "item_search",
    "cue_search",
    "search_docs",
    "subtitle_cues",
    "item_tags",
];

/// Emptying the derived tables, per backend: FTS5's external-content table forgets its rows
/// only through its own command.
const WIPE_SQLITE_INDEX: &[&str] = &[
    "INSERT INTO cue_search (cue_search) VALUES ('delete-all')",
    "DELETE FROM item_search",
    "DELETE FROM search_docs",
    "DELETE FROM subtitle_cues",
    "DELETE FROM item_tags",
];
const WIPE_POSTGRES_INDEX: &[&str] = &[
    "DELETE FROM item_search",
    "DELETE FROM subtitle_cues",
    "DELETE FROM item_tags",
];

/// Empties the index (a forced restore replaces the vault it was made from).
pub(crate) async fn empty(tx: &mut Tx) -> Result<(), DbError> {
    let statements = match tx {
        Tx::Sqlite(..) => WIPE_SQLITE_INDEX,
        Tx::Postgres(_) => WIPE_POSTGRES_INDEX,
    };
    for sql in statements {
        on_tx!(tx, conn => sqlx::query(*sql)
            .execute(conn)
            .await
            .map(|done| done.rows_affected()))?;
    }
    Ok(())
}

/// FTS5's own tables (`item_search_data`, …), which belong to their virtual table.
pub fn is_shadow_table(name: &str) -> bool {
    ["item_search_", "cue_search_"]
        .iter()
        .any(|fts| name.starts_with(fts))
}
