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

mod claim;
mod orphans;
mod read;

pub use claim::{Lane, claim, renew_leases};
pub(crate) use orphans::{Orphan, cancel_of_item, count_crash, expired, running_of, take_over};
pub use read::{
    JobRecord, for_item, get, item_of_key, pending_import_payloads, running_elsewhere, unfinished,
};
pub(crate) use read::{active_transcode, by_key, import_payloads_of};

use super::{Db, DbError, Tx, on_pool, on_tx};
use crate::domain::{ItemId, JobId, JobKind, Platform, Timestamp};

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
