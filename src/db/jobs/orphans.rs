//! The queue's side of recovery: finding running jobs whose worker is gone, taking an
//! expired lease over, and cancelling an item's unfinished work.

use sqlx::FromRow;

use super::{Lease, Subject};
use crate::db::{Db, DbError, Tx, on_pool, on_tx, to_u64};
use crate::domain::{ItemId, JobError, JobId, JobKind, Timestamp};

/// A running job whose worker is gone, as recovery finds it.
#[derive(Debug, Clone)]
pub(crate) struct Orphan {
    pub lease: Lease,
    pub subject: Subject,
    /// Process crashes the job went through before this one.
    pub crashes: u32,
}

#[derive(FromRow)]
struct OrphanRow {
    id: String,
    kind: String,
    item_id: String,
    attempt: i64,
    lease_owner: Option<String>,
    crashes: i64,
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
            crashes: to_u64(row.crashes, "crashes")? as u32,
        })
    }
}

/// Running jobs leased by `owner`.
pub(crate) async fn running_of(db: &Db, owner: &str) -> Result<Vec<Orphan>, DbError> {
    let rows: Vec<OrphanRow> = on_pool!(db, pool => sqlx::query_as(
        "SELECT id, kind, item_id, attempt, lease_owner, crashes FROM jobs \
         WHERE state = 'running' AND lease_owner = $1")
        .bind(owner)
        .fetch_all(pool)
        .await)?;
    rows.into_iter().map(Orphan::try_from).collect()
}

/// Running jobs of other owners than `except` whose lease ran out before `now`.
pub(crate) async fn expired(db: &Db, except: &str, now: Timestamp) -> Result<Vec<Orphan>, DbError> {
    let rows: Vec<OrphanRow> = on_pool!(db, pool => sqlx::query_as(
        "SELECT id, kind, item_id, attempt, lease_owner, crashes FROM jobs \
         WHERE state = 'running' AND lease_until < $1 AND lease_owner <> $2")
        .bind(now.as_millis())
        .bind(except)
        .fetch_all(pool)
        .await)?;
    rows.into_iter().map(Orphan::try_from).collect()
}

/// Counts one more process crash of the job, and gives back the attempt it cost.
pub(crate) async fn count_crash(tx: &mut Tx, job: JobId) -> Result<(), DbError> {
    on_tx!(tx, conn => sqlx::query(
        "UPDATE jobs SET crashes = crashes + 1, max_attempts = max_attempts + 1 WHERE id = $1")
        .bind(job.to_string())
        .execute(conn)
        .await
        .map(|done| done.rows_affected()))?;
    Ok(())
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
