//! A dump's rows into a database, whichever kind wrote them: into the schema the dump was
//! written with, in one transaction, then the migrations since. Shared by `restore` and
//! `db copy`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::KeepError;
use super::verify::read_records;
use crate::db::Db;
use crate::db::dump::{KEPT_TABLES, Loader, row_counts};

/// Loads `files` (table → its JSON Lines file) written at `schema`. With `replace`, the
/// target's rows go first, in the same transaction. Answers the rows loaded per table.
pub(super) async fn load(
    db: &Db,
    schema: i64,
    replace: bool,
    files: &BTreeMap<String, PathBuf>,
) -> Result<BTreeMap<String, u64>, KeepError> {
    if schema > db.latest_schema_version() {
        return Err(newer_schema(schema, db.latest_schema_version()));
    }
    if db.schema_version().await? < schema {
        db.migrate_to(schema).await?;
    }
    let mut loader = Loader::begin(db).await?;
    if replace {
        loader.wipe().await?;
    }
    let mut rows = BTreeMap::new();
    for table in KEPT_TABLES {
        let Some(path) = files.get(*table) else {
            continue;
        };
        let mut count = 0u64;
        for record in read_records(path)? {
            loader.insert(table, &record?).await?;
            count += 1;
        }
        rows.insert((*table).to_string(), count);
    }
    loader.commit().await?;
    db.migrate().await?;
    Ok(rows)
}

pub(super) fn newer_schema(schema: i64, known: i64) -> KeepError {
    KeepError::Invalid(format!(
        "the dump was written by a newer prsnl (database schema {schema}; this one knows up \
         to {known}): load it with that version or a later one"
    ))
}

/// What makes `db` not empty: "N rows in TABLE" for each table holding rows.
pub(super) async fn occupied_tables(db: &Db) -> Result<Vec<String>, KeepError> {
    Ok(row_counts(db)
        .await?
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .map(|(table, n)| format!("{n} rows in {table}"))
        .collect())
}
