//! The whole database as plain rows, for backups: every kept table read in one consistent
//! snapshot, each row a JSON object keyed by column name; and the way back in, one
//! transaction, on either backend whatever backend wrote the rows.
//!
//! Columns are read from the database's own catalog, not listed here, so a migration that
//! adds a column is dumped and loaded without a change in this file. Tables are listed,
//! because their load order matters (foreign keys) and because each table is a decision:
//! kept in a backup, or not. `tests/api/backups.rs` fails on a table that is neither.

use std::collections::BTreeMap;

use futures_util::TryStreamExt;
use serde_json::{Map, Value};
use sqlx::Row;

use super::{Backend, Db, DbError, Tx, on_pool, on_tx};

/// The tables a backup keeps, in load order (a table after those it refers to).
pub const KEPT_TABLES: &[&str] = &[
    "users",
    "items",
    "jobs",
    "renditions",
    "api_tokens",
    "breakers",
    "telegram_updates",
    "telegram_replies",
    "usage_history",
];

/// Tables a backup leaves out: sign-in sessions (a restored vault asks people to sign in
/// again, and a snapshot holds no live credential that a token would not also be), the
/// leases of backups running at the time, and the history of backup runs (it describes the
/// backup directory of the vault it ran in, not the vault).
pub const NOT_KEPT_TABLES: &[&str] = &[
    "sessions",
    "backup_leases",
    "backup_runs",
    // Webhook deliveries: a restored vault does not tell receivers again what they were told.
    "webhook_deliveries",
    "webhook_events",
];

/// Tables derived from the kept ones: the search index (`search::derived`).
pub use super::search::DERIVED_TABLES;

/// The bookkeeping table of the migrations, which is neither data nor kept.
const MIGRATIONS_TABLE: &str = "_sqlx_migrations";

/// One row: column name → value (null, integer, float or string).
pub type Record = Map<String, Value>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnType {
    /// PostgreSQL's `integer`; SQLite's integers are all 64-bit.
    Int32,
    Int64,
    Real,
    Text,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub name: String,
    pub kind: ColumnType,
}

#[derive(Debug, thiserror::Error)]
pub enum DumpError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("cannot write the dump: {0}")]
    Write(#[from] std::io::Error),
    #[error("table {table}, column {column}: type {declared} is not one a dump knows")]
    UnknownType {
        table: String,
        column: String,
        declared: String,
    },
    #[error("table {table}: {message}")]
    BadRow { table: String, message: String },
}

impl From<sqlx::Error> for DumpError {
    fn from(e: sqlx::Error) -> Self {
        Self::Db(DbError::Sqlx(e))
    }
}

/// What a dump read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DumpSummary {
    pub backend: Backend,
    pub schema_version: i64,
    /// Rows per kept table.
    pub rows: BTreeMap<String, u64>,
}

/// Reads every kept table in one snapshot (a read transaction; `REPEATABLE READ` on
/// PostgreSQL) and hands each row to `write` with its table's name. Writers are not blocked.
pub async fn dump(
    db: &Db,
    mut write: impl FnMut(&str, &Record) -> std::io::Result<()>,
) -> Result<DumpSummary, DumpError> {
    let backend = db.backend();
    on_pool!(db, pool => {
        let mut tx = pool.begin().await?;
        if backend == Backend::Postgres {
            sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                .execute(&mut *tx)
                .await?;
        }
        let schema_version: i64 = sqlx::query_scalar(
            "SELECT COALESCE(MAX(version), 0) FROM _sqlx_migrations WHERE success")
            .fetch_one(&mut *tx)
            .await?;
        let mut rows = BTreeMap::new();
        for table in KEPT_TABLES {
            let columns = {
                let declared: Vec<(String, String)> = sqlx::query_as(catalog_sql(backend))
                    .bind(*table)
                    .fetch_all(&mut *tx)
                    .await?;
                typed(table, backend, declared)?
            };
            if columns.is_empty() {
                continue; // a table of a later schema than this database's
            }
            let sql = format!("SELECT {} FROM {table} ORDER BY 1", column_list(&columns));
            let mut stream = sqlx::query(sqlx::AssertSqlSafe(sql)).fetch(&mut *tx);
            let mut count = 0u64;
            while let Some(row) = stream.try_next().await? {
                let mut record = Record::new();
                for (i, column) in columns.iter().enumerate() {
                    let value = match column.kind {
                        ColumnType::Int32 => row.try_get::<Option<i32>, _>(i)?.map(Value::from),
                        ColumnType::Int64 => row.try_get::<Option<i64>, _>(i)?.map(Value::from),
                        ColumnType::Real => row.try_get::<Option<f64>, _>(i)?.map(Value::from),
                        ColumnType::Text => row.try_get::<Option<String>, _>(i)?.map(Value::from),
                    };
                    record.insert(column.name.clone(), value.unwrap_or(Value::Null));
                }
                write(table, &record)?;
                count += 1;
            }
            drop(stream);
            rows.insert((*table).to_string(), count);
        }
        tx.rollback().await?;
        Ok(DumpSummary { backend, schema_version, rows })
    })
}

/// The tables the database holds (without the migrations' own, and without FTS5's shadow
/// tables, which belong to their virtual table).
pub async fn tables(db: &Db) -> Result<Vec<String>, DbError> {
    Ok(all_tables(db)
        .await?
        .into_iter()
        .filter(|name| name != MIGRATIONS_TABLE && !super::search::is_shadow_table(name))
        .collect())
}

/// Whether any migration ever ran here.
pub(super) async fn tables_with_migrations(db: &Db) -> Result<bool, DbError> {
    Ok(all_tables(db).await?.iter().any(|t| t == MIGRATIONS_TABLE))
}

async fn all_tables(db: &Db) -> Result<Vec<String>, DbError> {
    let sql = match db.backend() {
        Backend::Sqlite => {
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' \
             ORDER BY name"
        }
        Backend::Postgres => {
            "SELECT table_name::text FROM information_schema.tables \
             WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' ORDER BY 1"
        }
    };
    Ok(on_pool!(db, pool => sqlx::query_scalar(sql).fetch_all(pool).await)?)
}

/// Rows in each kept and not-kept table that exists: what a restore would replace.
pub async fn row_counts(db: &Db) -> Result<BTreeMap<String, u64>, DbError> {
    let present = tables(db).await?;
    let mut counts = BTreeMap::new();
    for table in KEPT_TABLES.iter().chain(NOT_KEPT_TABLES) {
        if !present.iter().any(|t| t == table) {
            continue;
        }
        let sql = format!("SELECT COUNT(*) FROM {table}");
        let n: i64 = on_pool!(db, pool => sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .fetch_one(pool)
            .await)?;
        counts.insert((*table).to_string(), u64::try_from(n).unwrap_or(0));
    }
    Ok(counts)
}

/// A restore's one transaction: rows go in through `insert`, all or nothing at `commit`.
pub struct Loader {
    tx: Tx,
    columns: BTreeMap<String, Vec<Column>>,
}

impl Loader {
    /// Begins the transaction and reads the target's columns of every kept table.
    pub async fn begin(db: &Db) -> Result<Self, DumpError> {
        let backend = db.backend();
        let mut tx = db.begin_write().await?;
        let mut columns = BTreeMap::new();
        for table in KEPT_TABLES {
            let declared: Vec<(String, String)> = on_tx!(&mut tx, conn =>
                sqlx::query_as(catalog_sql(backend)).bind(*table).fetch_all(conn).await)?;
            columns.insert((*table).to_string(), typed(table, backend, declared)?);
        }
        Ok(Self { tx, columns })
    }

    /// Deletes every row of the kept and not-kept tables (a restore over a vault that is not
    /// empty, when told to), children first.
    pub async fn wipe(&mut self) -> Result<(), DumpError> {
        super::search::empty(&mut self.tx).await?;
        for table in NOT_KEPT_TABLES.iter().chain(KEPT_TABLES.iter().rev()) {
            let sql = format!("DELETE FROM {table}");
            on_tx!(&mut self.tx, conn => sqlx::query(sqlx::AssertSqlSafe(sql))
                .execute(conn)
                .await
                .map(|done| done.rows_affected()))?;
        }
        Ok(())
    }

    /// Inserts one row of `table`. Every key must be a column of the target's table, and
    /// every value fit its type; missing columns take their defaults.
    pub async fn insert(&mut self, table: &str, record: &Record) -> Result<(), DumpError> {
        let bad = |message: String| DumpError::BadRow {
            table: table.to_string(),
            message,
        };
        let columns = self
            .columns
            .get(table)
            .filter(|columns| !columns.is_empty())
            .ok_or_else(|| bad("this database has no such table".into()))?;
        let mut bound = Vec::with_capacity(record.len());
        for (name, value) in record {
            let column = columns
                .iter()
                .find(|c| &c.name == name)
                .ok_or_else(|| bad(format!("this database has no column {name}")))?;
            bound.push((column, bind_value(column, value).map_err(bad)?));
        }
        if bound.is_empty() {
            return Err(bad("an empty row".into()));
        }
        let names: Vec<String> = bound.iter().map(|(c, _)| quoted(&c.name)).collect();
        let marks: Vec<String> = (1..=bound.len()).map(|i| format!("${i}")).collect();
        let sql = format!(
            "INSERT INTO {table} ({}) VALUES ({})",
            names.join(", "),
            marks.join(", ")
        );
        on_tx!(&mut self.tx, conn => {
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for (_, value) in bound {
                query = match value {
                    Bound::Int32(v) => query.bind(v),
                    Bound::Int64(v) => query.bind(v),
                    Bound::Real(v) => query.bind(v),
                    Bound::Text(v) => query.bind(v),
                };
            }
            query.execute(conn).await.map(|done| done.rows_affected())
        })?;
        Ok(())
    }

    pub async fn commit(self) -> Result<(), DumpError> {
        Ok(self.tx.commit().await?)
    }
}

enum Bound {
    Int32(Option<i32>),
    Int64(Option<i64>),
    Real(Option<f64>),
    Text(Option<String>),
}

fn bind_value(column: &Column, value: &Value) -> Result<Bound, String> {
    let wrong = || format!("column {} cannot hold {value}", column.name);
    Ok(match (column.kind, value) {
        (ColumnType::Int32, Value::Null) => Bound::Int32(None),
        (ColumnType::Int64, Value::Null) => Bound::Int64(None),
        (ColumnType::Real, Value::Null) => Bound::Real(None),
        (ColumnType::Text, Value::Null) => Bound::Text(None),
        (ColumnType::Int32, Value::Number(n)) => Bound::Int32(Some(
            n.as_i64()
                .and_then(|v| i32::try_from(v).ok())
                .ok_or_else(wrong)?,
        )),
        (ColumnType::Int64, Value::Number(n)) => Bound::Int64(Some(n.as_i64().ok_or_else(wrong)?)),
        (ColumnType::Real, Value::Number(n)) => Bound::Real(Some(n.as_f64().ok_or_else(wrong)?)),
        (ColumnType::Text, Value::String(s)) => Bound::Text(Some(s.clone())),
        _ => return Err(wrong()),
    })
}

/// The catalog query giving (column name, declared type) of a table, in column order.
fn catalog_sql(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => "SELECT name, type FROM pragma_table_info($1) ORDER BY cid",
        Backend::Postgres => {
            "SELECT column_name::text, data_type::text FROM information_schema.columns \
             WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position"
        }
    }
}

/// Each declared type as one the dump reads and writes, or the column it cannot.
fn typed(
    table: &str,
    backend: Backend,
    declared: Vec<(String, String)>,
) -> Result<Vec<Column>, DumpError> {
    declared
        .into_iter()
        .map(|(name, ty)| {
            let upper = ty.to_ascii_uppercase();
            let kind = match backend {
                Backend::Postgres => match upper.as_str() {
                    "INTEGER" | "SMALLINT" => Some(ColumnType::Int32),
                    "BIGINT" => Some(ColumnType::Int64),
                    "DOUBLE PRECISION" => Some(ColumnType::Real),
                    "TEXT" | "CHARACTER VARYING" => Some(ColumnType::Text),
                    _ => None,
                },
                // SQLite's affinity rules (https://sqlite.org/datatype3.html §3.1).
                Backend::Sqlite if upper.contains("INT") => Some(ColumnType::Int64),
                Backend::Sqlite if ["CHAR", "CLOB", "TEXT"].iter().any(|t| upper.contains(t)) => {
                    Some(ColumnType::Text)
                }
                Backend::Sqlite if ["REAL", "FLOA", "DOUB"].iter().any(|t| upper.contains(t)) => {
                    Some(ColumnType::Real)
                }
                Backend::Sqlite => None,
            };
            kind.map(|kind| Column {
                name: name.clone(),
                kind,
            })
            .ok_or(DumpError::UnknownType {
                table: table.to_string(),
                column: name,
                declared: ty,
            })
        })
        .collect()
}

fn column_list(columns: &[Column]) -> String {
    columns
        .iter()
        .map(|c| quoted(&c.name))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Column names come from the catalog; quoting keeps a reserved word usable.
fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}
