//! `prsnl db copy --from URL --to URL`: the whole database into another one, of either kind:
//! the way a vault that outgrew SQLite moves to PostgreSQL (and back). The media root stays
//! where it is; only rows move.
//!
//! It is a backup's dump and a restore's load without the media: the source is read in one
//! snapshot into JSON Lines files in a work directory, then loaded into the target in one
//! transaction. Rows are counted on both sides.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use super::KeepError;
use super::load::{load, newer_schema, occupied_tables};
use super::table_files::TableFiles;
use crate::db::dump::{self, KEPT_TABLES};
use crate::db::{Backend, Db};

#[derive(Debug, Clone)]
pub struct CopyReport {
    /// Rows copied per kept table.
    pub rows: BTreeMap<String, u64>,
    pub from: Backend,
    pub to: Backend,
    pub seconds: f64,
}

/// Copies every kept table of `from` into `to`, which must hold no rows unless `replace`.
/// `work` is a directory for the dump's files, removed afterwards.
pub async fn copy_database(
    from: &Db,
    to: &Db,
    replace: bool,
    work: &Path,
) -> Result<CopyReport, KeepError> {
    let started = Instant::now();
    let schema = from.schema_version().await?;
    if schema == 0 {
        return Err(KeepError::Invalid(
            "the source database holds no vault (it was never migrated)".into(),
        ));
    }
    if schema > to.latest_schema_version() {
        return Err(newer_schema(schema, to.latest_schema_version()));
    }
    if !replace {
        let occupied = occupied_tables(to).await?;
        if !occupied.is_empty() {
            return Err(KeepError::NotEmpty(format!(
                "the target database is not empty ({}): copy into an empty database, or pass \
                 --force to replace its rows",
                occupied.join(", ")
            )));
        }
    }
    let dir = work.join(format!(".prsnl-db-copy-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir).map_err(|e| KeepError::io(&dir, e))?;
    let copied = dump_and_load(from, to, replace, &dir).await;
    let _ = std::fs::remove_dir_all(&dir);
    let (dumped, rows) = copied?;
    if dumped != rows {
        return Err(KeepError::Invalid(format!(
            "rows read and rows written differ (read {dumped:?}, wrote {rows:?})"
        )));
    }
    Ok(CopyReport {
        rows,
        from: from.backend(),
        to: to.backend(),
        seconds: started.elapsed().as_secs_f64(),
    })
}

async fn dump_and_load(
    from: &Db,
    to: &Db,
    replace: bool,
    dir: &Path,
) -> Result<(BTreeMap<String, u64>, BTreeMap<String, u64>), KeepError> {
    let mut tables = TableFiles::create(dir)?;
    let summary = dump::dump(from, |table, record| tables.write(table, record)).await?;
    tables.finish()?;
    let files: BTreeMap<String, PathBuf> = KEPT_TABLES
        .iter()
        .filter(|table| summary.rows.contains_key(**table))
        .map(|table| ((*table).to_string(), dir.join(format!("{table}.jsonl"))))
        .collect();
    let rows = load(to, summary.schema_version, replace, &files).await?;
    Ok((summary.rows, rows))
}
