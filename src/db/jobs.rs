//! The `jobs` table: the durable queue.
//!
//! A job is claimed atomically (SQLite: `BEGIN IMMEDIATE … UPDATE … RETURNING`; PostgreSQL:
//! `FOR UPDATE SKIP LOCKED`), which charges it an attempt and gives it a lease. Every later
//! transition is a compare-and-set on (state = running, attempt, lease_owner): a worker that
//! lost its lease (a zombie after a restart) can no longer change the job (THREATS DB-04).
//!
//! A table module: the queue's own statements only. Operations that change a job and its
//! item or rendition together live above (`outcome`, `record`, `removal`, `recovery`), each
//! one transaction.

use std::time::Duration;

use sqlx::FromRow;

use super::{Backend, Db, DbError, Tx, on_pool, on_tx, to_u64};
use crate::domain::{ErrorCode, ItemId, JobError, JobId, JobKind, JobState, Platform, Timestamp};

/// A job to enqueue.
#[derive(Debug, Clone)]
pub struct NewJob {
    pub kind: JobKind,
    pub item_id: ItemId,
    pub platform: Option<Platform>,
    pub max_attempts: u32,
    pub idempotency_key: String,
    pub run_after: Timestamp,
    /// Kind-specific parameters as JSON (a transcode's quality).
    pub payload: Option<String>,
}

pub(crate) async fn insert(tx: &mut Tx, new: &NewJob) -> Result<JobId, DbError> {
    let id = JobId::new();
    on_tx!(tx, conn => sqlx::query(
        "INSERT INTO jobs (id, kind, item_id, platform, state, attempt, max_attempts, run_after, \
         idempotency_key, payload, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, 'queued', 0, $5, $6, $7, $8, $6, $6)")
        .bind(id.to_string())
        .bind(new.kind.as_str())
        .bind(new.item_id.to_string())
        .bind(new.platform.map(Platform::as_str))
        .bind(i64::from(new.max_attempts))
        .bind(new.run_after.as_millis())
        .bind(&new.idempotency_key)
        .bind(new.payload.as_deref())
        .execute(conn)
        .await.map(|done| done.rows_affected()))?;
    Ok(id)
}

/// Who claims: this process (`owner`, stable across restarts) in this boot.
#[derive(Debug, Clone)]
pub struct Claimant {
    pub owner: String,
    pub boot_id: String,
    pub lease: Duration,
}

/// The fencing token of one running attempt. Every transition of the job presents it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Lease {
    pub job: JobId,
    pub attempt: u32,
    pub owner: String,
    /// The job's item (fixed for the job's life): named on every log line about the attempt.
    pub item: ItemId,
}

/// A job this process now runs.
#[derive(Debug, Clone)]
pub struct ClaimedJob {
    pub lease: Lease,
    pub kind: JobKind,
    pub item_id: ItemId,
    pub platform: Option<Platform>,
    pub max_attempts: u32,
    pub payload: Option<String>,
}

/// Which queue a claim takes from: downloads are claimed per platform (each has its own cap),
/// work that needs only the processing pool (transcodes, imports of local files) on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lane {
    Download(Platform),
    Processing,
}

impl Lane {
    /// The two job kinds (the same one twice when there is one) and the platform it claims.
    fn filter(self) -> ([&'static str; 2], Option<&'static str>) {
        match self {
            Lane::Download(platform) => ([JobKind::Capture.as_str(); 2], Some(platform.as_str())),
            Lane::Processing => (
                [JobKind::Transcode.as_str(), JobKind::Import.as_str()],
                None,
            ),
        }
    }
}

#[derive(FromRow)]
struct ClaimedRow {
    id: String,
    kind: String,
    item_id: String,
    platform: Option<String>,
    attempt: i64,
    max_attempts: i64,
    payload: Option<String>,
}

const CLAIM_SQLITE: &str = "UPDATE jobs SET state = 'running', attempt = attempt + 1, \
     lease_owner = $1, boot_id = $2, lease_until = $3, updated_at = $4 \
     WHERE id IN (SELECT id FROM jobs WHERE state = 'queued' AND kind IN ($5, $8) \
                  AND ($6 IS NULL OR platform = $6) AND run_after <= $4 \
                  ORDER BY run_after, id LIMIT $7) \
     RETURNING id, kind, item_id, platform, attempt, max_attempts, payload";

const CLAIM_POSTGRES: &str = "UPDATE jobs SET state = 'running', attempt = attempt + 1, \
     lease_owner = $1, boot_id = $2, lease_until = $3, updated_at = $4 \
     WHERE id IN (SELECT id FROM jobs WHERE state = 'queued' AND kind IN ($5, $8) \
                  AND ($6::text IS NULL OR platform = $6) AND run_after <= $4 \
                  ORDER BY run_after, id LIMIT $7 FOR UPDATE SKIP LOCKED) \
     RETURNING id, kind, item_id, platform, attempt, max_attempts, payload";

/// Claims up to `limit` due jobs of `lane`, oldest due first.
pub async fn claim(
    db: &Db,
    who: &Claimant,
    lane: Lane,
    limit: u32,
    now: Timestamp,
) -> Result<Vec<ClaimedJob>, DbError> {
    if limit == 0 {
        return Ok(Vec::new());
    }
    let sql = match db.backend() {
        Backend::Sqlite => CLAIM_SQLITE,
        Backend::Postgres => CLAIM_POSTGRES,
    };
    let lease_until = now.plus(who.lease).as_millis();
    let ([kind, other_kind], platform) = lane.filter();
    let mut tx = db.begin_write().await?;
    let rows: Vec<ClaimedRow> = on_tx!(&mut tx, conn => sqlx::query_as(sql)
        .bind(&who.owner)
        .bind(&who.boot_id)
        .bind(lease_until)
        .bind(now.as_millis())
        .bind(kind)
        .bind(platform)
        .bind(i64::from(limit))
        .bind(other_kind)
        .fetch_all(conn)
        .await)?;
    tx.commit().await?;
    rows.into_iter()
        .map(|row| {
            let corrupt = |what: &str, v: &str| DbError::Corrupt(format!("job {what} '{v}'"));
            let item_id = ItemId::parse(&row.item_id).map_err(|_| corrupt("item", &row.item_id))?;
            Ok(ClaimedJob {
                lease: Lease {
                    job: JobId::parse(&row.id).map_err(|_| corrupt("id", &row.id))?,
                    attempt: u32::try_from(row.attempt)
                        .map_err(|_| corrupt("attempt", &row.attempt.to_string()))?,
                    owner: who.owner.clone(),
                    item: item_id,
                },
                kind: JobKind::parse(&row.kind).ok_or_else(|| corrupt("kind", &row.kind))?,
                item_id,
                platform: row.platform.as_deref().and_then(Platform::parse),
                max_attempts: u32::try_from(row.max_attempts)
                    .map_err(|_| corrupt("max_attempts", &row.max_attempts.to_string()))?,
                payload: row.payload,
            })
        })
        .collect()
}

/// Extends the leases of the attempts this process is running. Only the named attempts are
/// renewed (fenced by attempt and owner): a job the process lost track of must be allowed to
/// expire so that it is recovered. Returns the attempts that could not be renewed: another
/// process has taken them over, and they must stop.
pub async fn renew_leases(
    db: &Db,
    who: &Claimant,
    leases: &[Lease],
    now: Timestamp,
) -> Result<Vec<Lease>, DbError> {
    if leases.is_empty() {
        return Ok(Vec::new());
    }
    let lease_until = now.plus(who.lease).as_millis();
    let mut tx = db.begin_write().await?;
    let mut lost = Vec::new();
    for lease in leases {
        let renewed = on_tx!(&mut tx, conn => sqlx::query(
            "UPDATE jobs SET lease_until = $4 WHERE id = $1 AND state = 'running' AND attempt = $2 AND lease_owner = $3")
            .bind(lease.job.to_string())
            .bind(i64::from(lease.attempt))
            .bind(&lease.owner)
            .bind(lease_until)
            .execute(conn)
            .await
            .map(|done| done.rows_affected()))?;
        if renewed == 0 {
            lost.push(lease.clone());
        }
    }
    tx.commit().await?;
    Ok(lost)
}

/// Compare-and-set from the running attempt named by `lease` to `set` (SQL assignments
/// using $4.. for `extra` binds). True when this attempt still held the job.
pub(crate) async fn transition(
    tx: &mut Tx,
    lease: &Lease,
    set: &'static str,
    bind: impl FnOnce(Binder) -> Binder,
) -> Result<bool, DbError> {
    let binder = bind(Binder::default());
    let sql = format!(
        "UPDATE jobs SET {set} WHERE id = $1 AND state = 'running' AND attempt = $2 AND lease_owner = $3"
    );
    let done = on_tx!(tx, conn => {
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(lease.job.to_string())
            .bind(i64::from(lease.attempt))
            .bind(&lease.owner);
        for value in binder.values {
            query = match value {
                BindValue::Int(v) => query.bind(v),
                BindValue::Text(v) => query.bind(v),
            };
        }
        query.execute(conn).await.map(|done| done.rows_affected())
    })?;
    Ok(done == 1)
}

/// Whether the attempt named by `lease` still holds its job.
pub async fn holds(db: &Db, lease: &Lease) -> Result<bool, DbError> {
    let found: Option<String> = on_pool!(db, pool => sqlx::query_scalar(
        "SELECT id FROM jobs WHERE id = $1 AND state = 'running' AND attempt = $2 AND lease_owner = $3")
        .bind(lease.job.to_string())
        .bind(i64::from(lease.attempt))
        .bind(&lease.owner)
        .fetch_optional(pool)
        .await)?;
    Ok(found.is_some())
}

/// Values bound to the `$4..` parameters of a transition (the statement text is static).
#[derive(Default)]
pub(crate) struct Binder {
    values: Vec<BindValue>,
}

enum BindValue {
    Int(i64),
    Text(Option<String>),
}

impl Binder {
    pub(crate) fn int(mut self, v: i64) -> Self {
        self.values.push(BindValue::Int(v));
        self
    }

    pub(crate) fn text(mut self, v: impl Into<String>) -> Self {
        self.values.push(BindValue::Text(Some(v.into())));
        self
    }

    /// A text that may be absent (bound as NULL).
    pub(crate) fn maybe_text(mut self, v: Option<String>) -> Self {
        self.values.push(BindValue::Text(v));
        self
    }
}

/// What a job works on. The item's own status follows its capture job only: a failed
/// transcode must not mark a completed video failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subject {
    pub kind: JobKind,
    pub item: ItemId,
}

impl Subject {
    pub(crate) fn owns_item_status(&self) -> bool {
        self.kind.makes_item()
    }
}

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

/// A running job whose worker is gone, as recovery finds it.
#[derive(Debug, Clone)]
pub(crate) struct Orphan {
    pub lease: Lease,
    pub subject: Subject,
    pub max_attempts: u32,
}

#[derive(FromRow)]
struct OrphanRow {
    id: String,
    kind: String,
    item_id: String,
    attempt: i64,
    max_attempts: i64,
    lease_owner: Option<String>,
}

impl TryFrom<OrphanRow> for Orphan {
    type Error = DbError;

    fn try_from(row: OrphanRow) -> Result<Self, DbError> {
        let (Ok(job), Ok(item), Some(kind), Some(owner)) = (
            JobId::parse(&row.id),
            ItemId::parse(&row.item_id),
            JobKind::parse(&row.kind),
            row.lease_owner,
        ) else {
            return Err(DbError::Corrupt(format!("job row {}", row.id)));
        };
        Ok(Orphan {
            lease: Lease {
                job,
                attempt: to_u64(row.attempt, "attempt")? as u32,
                owner,
                item,
            },
            subject: Subject { kind, item },
            max_attempts: to_u64(row.max_attempts, "max_attempts")? as u32,
        })
    }
}

/// Running jobs leased by `owner`.
pub(crate) async fn running_of(db: &Db, owner: &str) -> Result<Vec<Orphan>, DbError> {
    let rows: Vec<OrphanRow> = on_pool!(db, pool => sqlx::query_as(
        "SELECT id, kind, item_id, attempt, max_attempts, lease_owner FROM jobs \
         WHERE state = 'running' AND lease_owner = $1")
        .bind(owner)
        .fetch_all(pool)
        .await)?;
    rows.into_iter().map(Orphan::try_from).collect()
}

/// Running jobs of other owners than `except` whose lease ran out before `now`.
pub(crate) async fn expired(db: &Db, except: &str, now: Timestamp) -> Result<Vec<Orphan>, DbError> {
    let rows: Vec<OrphanRow> = on_pool!(db, pool => sqlx::query_as(
        "SELECT id, kind, item_id, attempt, max_attempts, lease_owner FROM jobs \
         WHERE state = 'running' AND lease_until < $1 AND lease_owner <> $2")
        .bind(now.as_millis())
        .bind(except)
        .fetch_all(pool)
        .await)?;
    rows.into_iter().map(Orphan::try_from).collect()
}

/// Hands an expired lease to `new_owner`, if it is still expired and unchanged.
pub(crate) async fn take_over(
    tx: &mut Tx,
    lease: &Lease,
    new_owner: &str,
    now: Timestamp,
) -> Result<bool, DbError> {
    let taken = on_tx!(tx, conn => sqlx::query(
        "UPDATE jobs SET lease_owner = $4 WHERE id = $1 AND state = 'running' AND attempt = $2 \
         AND lease_owner = $3 AND lease_until < $5")
        .bind(lease.job.to_string())
        .bind(i64::from(lease.attempt))
        .bind(&lease.owner)
        .bind(new_owner)
        .bind(now.as_millis())
        .execute(conn)
        .await
        .map(|done| done.rows_affected()))?;
    Ok(taken == 1)
}

/// Cancels the item's unfinished captures and imports; how many there were.
pub(crate) async fn cancel_of_item(
    tx: &mut Tx,
    item: ItemId,
    error: &JobError,
    now: Timestamp,
) -> Result<u64, DbError> {
    let cancelled = on_tx!(tx, conn => sqlx::query(
        "UPDATE jobs SET state = 'cancelled', lease_owner = NULL, lease_until = NULL, \
         last_error_code = $2, last_error = $3, finished_at = $4, updated_at = $4 \
         WHERE item_id = $1 AND state IN ('queued', 'running') AND kind IN ('capture', 'import')")
        .bind(item.to_string())
        .bind(error.code.as_str())
        .bind(&error.message)
        .bind(now.as_millis())
        .execute(conn)
        .await
        .map(|done| done.rows_affected()))?;
    Ok(cancelled)
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
