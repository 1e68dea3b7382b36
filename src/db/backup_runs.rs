//! The `backup_runs` table: backups the service runs by itself, scheduled per slot or asked
//! for by an admin, each claimed by one instance under a lease (renewed while it runs), and
//! their outcomes (the history `GET /api/admin/backups` shows, and the backup metrics).

use sqlx::FromRow;

use super::{Backend, Db, DbError, on_pool, on_tx};
use crate::domain::Timestamp;

/// How many times a run is started before one that keeps dying (its instance killed, its
/// lease expired each time) is failed.
pub const MAX_ATTEMPTS: i64 = 3;

#[derive(Debug, Clone, PartialEq, FromRow)]
pub struct BackupRun {
    pub id: String,
    pub slot_key: String,
    /// `schedule` or `admin`.
    pub reason: String,
    pub requested_by: Option<String>,
    /// `queued`, `running`, `completed` or `failed`.
    pub state: String,
    pub attempt: i64,
    pub lease_owner: Option<String>,
    pub lease_until: Option<i64>,
    pub snapshot: Option<String>,
    pub items: Option<i64>,
    pub bytes_new: Option<i64>,
    pub bytes_linked: Option<i64>,
    pub seconds: Option<f64>,
    pub error: Option<String>,
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
}

const COLUMNS: &str = "id, slot_key, reason, requested_by, state, CAST(attempt AS BIGINT) AS attempt, \
     lease_owner, lease_until, snapshot, items, bytes_new, bytes_linked, seconds, error, \
     created_at, started_at, finished_at";

/// A new run unless one with `slot_key` exists; true when this call recorded it. The key is
/// unique, so instances racing for one slot record it once.
pub async fn enqueue(
    db: &Db,
    id: &str,
    slot_key: &str,
    reason: &str,
    requested_by: Option<&str>,
    now: Timestamp,
) -> Result<bool, DbError> {
    let mut tx = db.begin_write().await?;
    let added = on_tx!(&mut tx, conn => sqlx::query(
        "INSERT INTO backup_runs (id, slot_key, reason, requested_by, state, created_at) \
         VALUES ($1, $2, $3, $4, 'queued', $5) ON CONFLICT (slot_key) DO NOTHING")
        .bind(id)
        .bind(slot_key)
        .bind(reason)
        .bind(requested_by)
        .bind(now.as_millis())
        .execute(conn)
        .await
        .map(|done| done.rows_affected()))?;
    tx.commit().await?;
    Ok(added == 1)
}

/// Claims the oldest run that is queued, or running under a lease that ran out (its instance
/// died), unless another run holds a live lease: one backup at a time. A run that would start
/// a fourth time fails instead.
pub async fn claim(
    db: &Db,
    owner: &str,
    now: Timestamp,
    until: Timestamp,
) -> Result<Option<BackupRun>, DbError> {
    let lock = match db.backend() {
        Backend::Sqlite => "",
        Backend::Postgres => " FOR UPDATE SKIP LOCKED",
    };
    let mut tx = db.begin_write().await?;
    let busy: Option<String> = on_tx!(&mut tx, conn => sqlx::query_scalar(
        "SELECT id FROM backup_runs WHERE state = 'running' AND lease_until > $1 LIMIT 1")
        .bind(now.as_millis())
        .fetch_optional(conn)
        .await)?;
    if busy.is_some() {
        return Ok(None);
    }
    let sql = format!(
        "SELECT {COLUMNS} FROM backup_runs WHERE state = 'queued' \
         OR (state = 'running' AND lease_until <= $1) ORDER BY created_at, id LIMIT 1{lock}"
    );
    let found: Option<BackupRun> = on_tx!(&mut tx, conn => sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(now.as_millis())
        .fetch_optional(conn)
        .await)?;
    let Some(run) = found else {
        return Ok(None);
    };
    if run.attempt >= MAX_ATTEMPTS {
        on_tx!(&mut tx, conn => sqlx::query(
            "UPDATE backup_runs SET state = 'failed', lease_owner = NULL, lease_until = NULL, \
             error = $2, finished_at = $3 WHERE id = $1")
            .bind(&run.id)
            .bind(format!("stopped after {} attempts: each one's instance died or lost its lease", run.attempt))
            .bind(now.as_millis())
            .execute(conn)
            .await
            .map(|done| done.rows_affected()))?;
        tx.commit().await?;
        return Ok(None);
    }
    let sql = format!(
        "UPDATE backup_runs SET state = 'running', attempt = attempt + 1, lease_owner = $2, \
         lease_until = $3, started_at = $4 WHERE id = $1 RETURNING {COLUMNS}"
    );
    let claimed: BackupRun = on_tx!(&mut tx, conn => sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(&run.id)
        .bind(owner)
        .bind(until.as_millis())
        .bind(now.as_millis())
        .fetch_one(conn)
        .await)?;
    tx.commit().await?;
    Ok(Some(claimed))
}

/// The fencing of a running attempt: every later change names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunLease {
    pub id: String,
    pub attempt: i64,
    pub owner: String,
}

impl From<&BackupRun> for RunLease {
    fn from(run: &BackupRun) -> Self {
        Self {
            id: run.id.clone(),
            attempt: run.attempt,
            owner: run.lease_owner.clone().unwrap_or_default(),
        }
    }
}

/// Moves the lease's end; false when the run is no longer this attempt's.
pub async fn renew(db: &Db, lease: &RunLease, until: Timestamp) -> Result<bool, DbError> {
    let mut tx = db.begin_write().await?;
    let changed = on_tx!(&mut tx, conn => sqlx::query(
        "UPDATE backup_runs SET lease_until = $4 \
         WHERE id = $1 AND attempt = $2 AND lease_owner = $3 AND state = 'running'")
        .bind(&lease.id)
        .bind(lease.attempt)
        .bind(&lease.owner)
        .bind(until.as_millis())
        .execute(conn)
        .await
        .map(|done| done.rows_affected()))?;
    tx.commit().await?;
    Ok(changed == 1)
}

/// What a finished attempt made.
#[derive(Debug, Clone, PartialEq)]
pub enum RunOutcome {
    Completed {
        snapshot: String,
        items: i64,
        bytes_new: i64,
        bytes_linked: i64,
        seconds: f64,
    },
    Failed {
        error: String,
    },
    /// Not run after all (another backup was writing to the directory): queued again.
    Postponed,
}

/// Records the attempt's outcome; false when the run is no longer this attempt's.
pub async fn finish(
    db: &Db,
    lease: &RunLease,
    outcome: &RunOutcome,
    now: Timestamp,
) -> Result<bool, DbError> {
    let fence = "WHERE id = $1 AND attempt = $2 AND lease_owner = $3 AND state = 'running'";
    let sql = match outcome {
        RunOutcome::Completed { .. } => format!(
            "UPDATE backup_runs SET state = 'completed', lease_owner = NULL, lease_until = NULL, \
             finished_at = $4, snapshot = $5, items = $6, bytes_new = $7, bytes_linked = $8, \
             seconds = $9, error = NULL {fence}"
        ),
        RunOutcome::Failed { .. } => format!(
            "UPDATE backup_runs SET state = 'failed', lease_owner = NULL, lease_until = NULL, \
             finished_at = $4, error = $5 {fence}"
        ),
        // The attempt is given back: it never began.
        RunOutcome::Postponed => format!(
            "UPDATE backup_runs SET state = 'queued', lease_owner = NULL, lease_until = NULL, \
             attempt = attempt - 1, started_at = NULL, finished_at = $4 {fence}"
        ),
    };
    let mut tx = db.begin_write().await?;
    let changed = on_tx!(&mut tx, conn => {
        let query = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(&lease.id)
            .bind(lease.attempt)
            .bind(&lease.owner)
            .bind(now.as_millis());
        let query = match outcome {
            RunOutcome::Completed { snapshot, items, bytes_new, bytes_linked, seconds } => query
                .bind(snapshot)
                .bind(*items)
                .bind(*bytes_new)
                .bind(*bytes_linked)
                .bind(*seconds),
            RunOutcome::Failed { error } => query.bind(error),
            RunOutcome::Postponed => query,
        };
        query.execute(conn).await.map(|done| done.rows_affected())
    })?;
    tx.commit().await?;
    Ok(changed == 1)
}

/// The newest runs first.
pub async fn recent(db: &Db, limit: i64) -> Result<Vec<BackupRun>, DbError> {
    let sql =
        format!("SELECT {COLUMNS} FROM backup_runs ORDER BY created_at DESC, id DESC LIMIT $1");
    Ok(
        on_pool!(db, pool => sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(limit)
        .fetch_all(pool)
        .await)?,
    )
}

pub async fn get(db: &Db, id: &str) -> Result<Option<BackupRun>, DbError> {
    let sql = format!("SELECT {COLUMNS} FROM backup_runs WHERE id = $1");
    Ok(
        on_pool!(db, pool => sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(pool)
        .await)?,
    )
}

/// The last completed run, and when the first run of all was recorded (backups have been
/// expected since then).
pub async fn last_success(db: &Db) -> Result<(Option<BackupRun>, Option<i64>), DbError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM backup_runs WHERE state = 'completed' \
         ORDER BY finished_at DESC, id DESC LIMIT 1"
    );
    let last: Option<BackupRun> = on_pool!(db, pool => sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .fetch_optional(pool)
        .await)?;
    let first: Option<i64> = on_pool!(db, pool => sqlx::query_scalar(
        "SELECT MIN(created_at) FROM backup_runs")
        .fetch_one(pool)
        .await)?;
    Ok((last, first))
}
