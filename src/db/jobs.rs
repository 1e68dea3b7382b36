//! The `jobs` table: the durable queue.
//!
//! A job is claimed atomically (SQLite: `BEGIN IMMEDIATE … UPDATE … RETURNING`; PostgreSQL:
//! `FOR UPDATE SKIP LOCKED`), which charges it an attempt and gives it a lease. Every later
//! transition is a compare-and-set on (state = running, attempt, lease_owner): a worker that
//! lost its lease (a zombie after a restart) can no longer change the job (THREATS DB-04).
//! Job and item change together, in one transaction.

use std::time::Duration;

use sqlx::FromRow;

use super::items::{self, Completion};
use super::renditions::{self, Rendition};
use super::{Backend, Db, DbError, Tx, on_pool, on_tx, to_u64};
use crate::domain::{ErrorCode, ItemId, ItemStatus, JobError, JobId, JobKind, JobState, Platform};

/// A job to enqueue.
#[derive(Debug, Clone)]
pub struct NewJob {
    pub kind: JobKind,
    pub item_id: ItemId,
    pub platform: Option<Platform>,
    pub max_attempts: u32,
    pub idempotency_key: String,
    pub run_after: i64,
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
        .bind(new.run_after)
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
    now: i64,
) -> Result<Vec<ClaimedJob>, DbError> {
    if limit == 0 {
        return Ok(Vec::new());
    }
    let sql = match db.backend() {
        Backend::Sqlite => CLAIM_SQLITE,
        Backend::Postgres => CLAIM_POSTGRES,
    };
    let lease_until = now + i64::try_from(who.lease.as_millis()).unwrap_or(i64::MAX / 2);
    let ([kind, other_kind], platform) = lane.filter();
    let mut tx = db.begin_write().await?;
    let rows: Vec<ClaimedRow> = on_tx!(&mut tx, conn => sqlx::query_as(sql)
        .bind(&who.owner)
        .bind(&who.boot_id)
        .bind(lease_until)
        .bind(now)
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
    now: i64,
) -> Result<Vec<Lease>, DbError> {
    if leases.is_empty() {
        return Ok(Vec::new());
    }
    let lease_until = now + i64::try_from(who.lease.as_millis()).unwrap_or(i64::MAX / 2);
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
async fn transition(
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
struct Binder {
    values: Vec<BindValue>,
}

enum BindValue {
    Int(i64),
    Text(Option<String>),
}

impl Binder {
    fn int(mut self, v: i64) -> Self {
        self.values.push(BindValue::Int(v));
        self
    }

    fn text(mut self, v: impl Into<String>) -> Self {
        self.values.push(BindValue::Text(Some(v.into())));
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
    fn owns_item_status(&self) -> bool {
        self.kind.makes_item()
    }
}

/// What a successful attempt leaves behind, written with the job's completion.
#[derive(Debug)]
pub enum Effect<'a> {
    /// The item is completed with these facts.
    Captured {
        item: ItemId,
        completion: &'a Completion,
    },
    /// A rendition of the item now exists.
    Rendered(&'a Rendition),
}

/// The attempt succeeded: job `completed`, and its effect recorded, in one transaction.
pub async fn complete(
    db: &Db,
    lease: &Lease,
    effect: Effect<'_>,
    now: i64,
) -> Result<bool, DbError> {
    let mut tx = db.begin_write().await?;
    let held = transition(
        &mut tx,
        lease,
        "state = 'completed', lease_owner = NULL, lease_until = NULL, finished_at = $4, updated_at = $4",
        |b| b.int(now),
    )
    .await?;
    if held {
        match effect {
            Effect::Captured { item, completion } => {
                items::mark_completed(&mut tx, item, completion, now).await?
            }
            Effect::Rendered(rendition) => renditions::insert(&mut tx, rendition).await?,
        }
        tx.commit().await?;
    }
    Ok(held)
}

/// The attempt failed and another is due at `run_after`: the job (and a capture's item) back
/// to `queued`.
pub async fn retry(
    db: &Db,
    lease: &Lease,
    subject: Subject,
    error: &JobError,
    run_after: i64,
    now: i64,
) -> Result<bool, DbError> {
    let mut tx = db.begin_write().await?;
    let held = retry_in(&mut tx, lease, subject, error, run_after, now).await?;
    if held {
        tx.commit().await?;
    }
    Ok(held)
}

async fn retry_in(
    tx: &mut Tx,
    lease: &Lease,
    subject: Subject,
    error: &JobError,
    run_after: i64,
    now: i64,
) -> Result<bool, DbError> {
    let held = transition(
        tx,
        lease,
        "state = 'queued', lease_owner = NULL, lease_until = NULL, run_after = $4, \
         last_error_code = $5, last_error = $6, updated_at = $7",
        |b| {
            b.int(run_after)
                .text(error.code.as_str())
                .text(error.message.clone())
                .int(now)
        },
    )
    .await?;
    if held && subject.owns_item_status() {
        items::mark_queued(tx, subject.item, now).await?;
    }
    Ok(held)
}

/// The attempt failed for good: the job is `failed` (kept, with its reason), and a capture's
/// item too.
pub async fn fail(
    db: &Db,
    lease: &Lease,
    subject: Subject,
    error: &JobError,
    now: i64,
) -> Result<bool, DbError> {
    let mut tx = db.begin_write().await?;
    let held = fail_in(&mut tx, lease, subject, error, now).await?;
    if held {
        tx.commit().await?;
    }
    Ok(held)
}

async fn fail_in(
    tx: &mut Tx,
    lease: &Lease,
    subject: Subject,
    error: &JobError,
    now: i64,
) -> Result<bool, DbError> {
    let held = transition(
        tx,
        lease,
        "state = 'failed', lease_owner = NULL, lease_until = NULL, last_error_code = $4, \
         last_error = $5, finished_at = $6, updated_at = $6",
        |b| {
            b.text(error.code.as_str())
                .text(error.message.clone())
                .int(now)
        },
    )
    .await?;
    if held && subject.owns_item_status() {
        items::mark_failed(tx, subject.item, ItemStatus::Failed, error, now).await?;
    }
    Ok(held)
}

/// The attempt was interrupted by a shutdown, not by its own fault: back to `queued` and the
/// attempt is not charged.
pub async fn release(db: &Db, lease: &Lease, subject: Subject, now: i64) -> Result<bool, DbError> {
    let mut tx = db.begin_write().await?;
    let held = transition(
        &mut tx,
        lease,
        "state = 'queued', attempt = attempt - 1, lease_owner = NULL, lease_until = NULL, \
         run_after = $4, updated_at = $4",
        |b| b.int(now),
    )
    .await?;
    if held {
        if subject.owns_item_status() {
            items::mark_queued(&mut tx, subject.item, now).await?;
        }
        tx.commit().await?;
    }
    Ok(held)
}

/// The platform refused the attempt (rate limit, bot check): the job waits until
/// `run_after`, when the platform is tried again, and the attempt is not charged — the job
/// did nothing wrong.
pub async fn postpone(
    db: &Db,
    lease: &Lease,
    subject: Subject,
    error: &JobError,
    run_after: i64,
    now: i64,
) -> Result<bool, DbError> {
    let mut tx = db.begin_write().await?;
    let held = transition(
        &mut tx,
        lease,
        "state = 'queued', attempt = attempt - 1, lease_owner = NULL, lease_until = NULL, \
         run_after = $4, last_error_code = $5, last_error = $6, updated_at = $7",
        |b| {
            b.int(run_after)
                .text(error.code.as_str())
                .text(error.message.clone())
                .int(now)
        },
    )
    .await?;
    if held {
        if subject.owns_item_status() {
            items::mark_queued(&mut tx, subject.item, now).await?;
        }
        tx.commit().await?;
    }
    Ok(held)
}

/// What recovery did with jobs whose worker is gone.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recovery {
    pub requeued: Vec<JobId>,
    pub failed: Vec<JobId>,
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

/// Jobs leased by `owner` whose worker is gone: everything it held before this process's
/// PipelineActor started (an earlier boot, or the same boot before the actor restarted).
/// The lost attempt stays charged; jobs with attempts left are queued again, the rest fail.
pub async fn recover_owned(db: &Db, owner: &str, now: i64) -> Result<Recovery, DbError> {
    let rows: Vec<OrphanRow> = on_pool!(db, pool => sqlx::query_as(
        "SELECT id, kind, item_id, attempt, max_attempts, lease_owner FROM jobs \
         WHERE state = 'running' AND lease_owner = $1")
        .bind(owner)
        .fetch_all(pool)
        .await)?;
    recover_rows(db, rows, now, None).await
}

/// Jobs of other processes whose lease ran out (the process died, or lost the database).
/// Each is first taken over with a compare-and-set that requires the lease to still be
/// expired and hands it to `recoverer`: if the old owner renews at the same moment, one of
/// the two wins, and a loser that renews later learns it lost the job. This process's own
/// jobs are never taken: it renews what it runs, and recovers the rest when it restarts.
pub async fn recover_expired(db: &Db, recoverer: &str, now: i64) -> Result<Recovery, DbError> {
    let rows: Vec<OrphanRow> = on_pool!(db, pool => sqlx::query_as(
        "SELECT id, kind, item_id, attempt, max_attempts, lease_owner FROM jobs \
         WHERE state = 'running' AND lease_until < $1 AND lease_owner <> $2")
        .bind(now)
        .bind(recoverer)
        .fetch_all(pool)
        .await)?;
    recover_rows(db, rows, now, Some(recoverer)).await
}

async fn recover_rows(
    db: &Db,
    rows: Vec<OrphanRow>,
    now: i64,
    take_over_as: Option<&str>,
) -> Result<Recovery, DbError> {
    let mut report = Recovery::default();
    for row in rows {
        let (Ok(job), Ok(item), Some(kind), Some(owner)) = (
            JobId::parse(&row.id),
            ItemId::parse(&row.item_id),
            JobKind::parse(&row.kind),
            row.lease_owner,
        ) else {
            return Err(DbError::Corrupt(format!("job row {}", row.id)));
        };
        let subject = Subject { kind, item };
        let mut lease = Lease {
            job,
            attempt: to_u64(row.attempt, "attempt")? as u32,
            owner,
            item,
        };
        let max_attempts = to_u64(row.max_attempts, "max_attempts")? as u32;
        let lost = JobError::new(
            ErrorCode::WorkerLost,
            "the worker running this job stopped before finishing it",
        );
        let mut tx = db.begin_write().await?;
        if let Some(recoverer) = take_over_as {
            let marker = format!("recovering:{recoverer}");
            let taken = on_tx!(&mut tx, conn => sqlx::query(
                "UPDATE jobs SET lease_owner = $4 WHERE id = $1 AND state = 'running' AND attempt = $2 \
                 AND lease_owner = $3 AND lease_until < $5")
                .bind(job.to_string())
                .bind(i64::from(lease.attempt))
                .bind(&lease.owner)
                .bind(&marker)
                .bind(now)
                .execute(conn)
                .await
                .map(|done| done.rows_affected()))?;
            if taken == 0 {
                continue; // renewed, finished or recovered by someone else meanwhile
            }
            lease.owner = marker;
        }
        let (done, requeued) = if lease.attempt >= max_attempts {
            (fail_in(&mut tx, &lease, subject, &lost, now).await?, false)
        } else {
            (
                retry_in(&mut tx, &lease, subject, &lost, now, now).await?,
                true,
            )
        };
        if done {
            tx.commit().await?;
            if requeued {
                report.requeued.push(job)
            } else {
                report.failed.push(job)
            }
        }
    }
    Ok(report)
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
pub async fn running_elsewhere(db: &Db, owner: &str, now: i64) -> Result<Vec<String>, DbError> {
    let ids: Vec<String> = on_pool!(db, pool => sqlx::query_scalar(
        "SELECT id FROM jobs WHERE state = 'running' AND lease_owner <> $1 AND lease_until >= $2")
        .bind(owner)
        .bind(now)
        .fetch_all(pool)
        .await)?;
    Ok(ids)
}

/// Cancels the item's unfinished capture or import (a running attempt anywhere loses its
/// lease: its completion will not hold) and marks the item cancelled. False when nothing was
/// left to cancel.
pub async fn cancel_item(
    db: &Db,
    item: ItemId,
    error: &JobError,
    now: i64,
) -> Result<bool, DbError> {
    let mut tx = db.begin_write().await?;
    let cancelled = on_tx!(&mut tx, conn => sqlx::query(
        "UPDATE jobs SET state = 'cancelled', lease_owner = NULL, lease_until = NULL, \
         last_error_code = $2, last_error = $3, finished_at = $4, updated_at = $4 \
         WHERE item_id = $1 AND state IN ('queued', 'running') AND kind IN ('capture', 'import')")
        .bind(item.to_string())
        .bind(error.code.as_str())
        .bind(&error.message)
        .bind(now)
        .execute(conn)
        .await
        .map(|done| done.rows_affected()))?;
    if cancelled > 0 {
        items::mark_failed(&mut tx, item, ItemStatus::Cancelled, error, now).await?;
    }
    tx.commit().await?;
    Ok(cancelled > 0)
}
