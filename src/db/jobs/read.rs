//! Reading jobs: as stored (for the CLI, tests and operators), which will still run, which
//! other processes run, which an idempotency key names, what import and transcode jobs carry.

use sqlx::FromRow;

use crate::db::{Db, DbError, Tx, on_pool, on_tx, to_u64};
use crate::domain::{ErrorCode, ItemId, JobError, JobId, JobKind, JobState, Timestamp};

/// A job as stored, for inspection (CLI, tests, operators).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRecord {
    pub id: JobId,
    pub kind: JobKind,
    pub item_id: ItemId,
    pub state: JobState,
    pub attempt: u32,
    pub max_attempts: u32,
    pub lease_owner: Option<String>,
    pub last_error: Option<JobError>,
}

#[derive(FromRow)]
struct JobRow {
    id: String,
    kind: String,
    item_id: String,
    state: String,
    attempt: i64,
    max_attempts: i64,
    lease_owner: Option<String>,
    last_error_code: Option<String>,
    last_error: Option<String>,
}

impl TryFrom<JobRow> for JobRecord {
    type Error = DbError;

    fn try_from(row: JobRow) -> Result<Self, DbError> {
        let corrupt = |what: &str| DbError::Corrupt(format!("job {} {what}", row.id));
        Ok(JobRecord {
            id: JobId::parse(&row.id).map_err(|_| corrupt("id"))?,
            kind: JobKind::parse(&row.kind).ok_or_else(|| corrupt("kind"))?,
            item_id: ItemId::parse(&row.item_id).map_err(|_| corrupt("item_id"))?,
            state: JobState::parse(&row.state).ok_or_else(|| corrupt("state"))?,
            attempt: to_u64(row.attempt, "attempt")? as u32,
            max_attempts: to_u64(row.max_attempts, "max_attempts")? as u32,
            lease_owner: row.lease_owner,
            last_error: row.last_error_code.map(|code| {
                JobError::new(ErrorCode::parse(&code), row.last_error.unwrap_or_default())
            }),
        })
    }
}

const JOB_COLUMNS: &str = "id, kind, item_id, state, attempt, max_attempts, lease_owner, \
     last_error_code, last_error";

/// The jobs of one item, oldest first.
pub async fn for_item(db: &Db, item: ItemId) -> Result<Vec<JobRecord>, DbError> {
    let sql = format!("SELECT {JOB_COLUMNS} FROM jobs WHERE item_id = $1 ORDER BY id");
    let rows: Vec<JobRow> = on_pool!(db, pool => sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(item.to_string())
        .fetch_all(pool)
        .await)?;
    rows.into_iter().map(JobRecord::try_from).collect()
}

pub async fn get(db: &Db, id: JobId) -> Result<Option<JobRecord>, DbError> {
    let sql = format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = $1");
    let row: Option<JobRow> = on_pool!(db, pool => sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(id.to_string())
        .fetch_optional(pool)
        .await)?;
    row.map(JobRecord::try_from).transpose()
}

/// Ids of jobs that will still run: queued or running (their resume files are kept).
pub async fn unfinished(db: &Db) -> Result<Vec<String>, DbError> {
    let ids: Vec<String> = on_pool!(db, pool => sqlx::query_scalar(
        "SELECT id FROM jobs WHERE state IN ('queued', 'running')")
        .fetch_all(pool)
        .await)?;
    Ok(ids)
}

/// Ids of jobs other live processes are running right now (their work dirs must survive our
/// start-up sweep when instances share a media root).
pub async fn running_elsewhere(
    db: &Db,
    owner: &str,
    now: Timestamp,
) -> Result<Vec<String>, DbError> {
    let ids: Vec<String> = on_pool!(db, pool => sqlx::query_scalar(
        "SELECT id FROM jobs WHERE state = 'running' AND lease_owner <> $1 AND lease_until >= $2")
        .bind(owner)
        .bind(now.as_millis())
        .fetch_all(pool)
        .await)?;
    Ok(ids)
}

/// The item and payload of the job with `key`, if there is one.
pub(crate) async fn by_key(
    tx: &mut Tx,
    key: &str,
) -> Result<Option<(ItemId, Option<String>)>, DbError> {
    let row: Option<(String, Option<String>)> = on_tx!(tx, conn => sqlx::query_as(
        "SELECT item_id, payload FROM jobs WHERE idempotency_key = $1")
        .bind(key)
        .fetch_optional(conn)
        .await)?;
    row.map(|(item, payload)| {
        ItemId::parse(&item)
            .map(|item| (item, payload))
            .map_err(|_| DbError::Corrupt(format!("job {key} names item '{item}'")))
    })
    .transpose()
}

/// The item of the job with `key`, if there is one.
pub async fn item_of_key(db: &Db, key: &str) -> Result<Option<ItemId>, DbError> {
    let item: Option<String> = on_pool!(db, pool => sqlx::query_scalar(
        "SELECT item_id FROM jobs WHERE idempotency_key = $1")
        .bind(key)
        .fetch_optional(pool)
        .await)?;
    item.map(|item| {
        ItemId::parse(&item).map_err(|_| DbError::Corrupt(format!("job {key} names item '{item}'")))
    })
    .transpose()
}

/// The payloads of the import jobs of `item`.
pub(crate) async fn import_payloads_of(
    tx: &mut Tx,
    item: ItemId,
) -> Result<Vec<Option<String>>, DbError> {
    let payloads = on_tx!(tx, conn => sqlx::query_scalar(
        "SELECT payload FROM jobs WHERE item_id = $1 AND kind = $2")
        .bind(item.to_string())
        .bind(JobKind::Import.as_str())
        .fetch_all(conn)
        .await)?;
    Ok(payloads)
}

/// The payloads of import jobs still waiting or running.
pub async fn pending_import_payloads(db: &Db) -> Result<Vec<Option<String>>, DbError> {
    let payloads = on_pool!(db, pool => sqlx::query_scalar(
        "SELECT payload FROM jobs WHERE kind = $1 AND state IN ('queued', 'running')")
        .bind(JobKind::Import.as_str())
        .fetch_all(pool)
        .await)?;
    Ok(payloads)
}

/// The queued or running transcode of `item` with this payload (quality), if any.
pub(crate) async fn active_transcode(
    db: &Db,
    item: ItemId,
    payload: &str,
) -> Result<Option<JobId>, DbError> {
    let id: Option<String> = on_pool!(db, pool => sqlx::query_scalar(
        "SELECT id FROM jobs WHERE item_id = $1 AND kind = 'transcode' AND payload = $2 \
         AND state IN ('queued', 'running')")
        .bind(item.to_string())
        .bind(payload)
        .fetch_optional(pool)
        .await)?;
    id.map(|id| JobId::parse(&id).map_err(|_| DbError::Corrupt(format!("job id {id}"))))
        .transpose()
}
