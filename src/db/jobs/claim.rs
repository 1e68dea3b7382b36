//! Claiming due jobs (which charges an attempt and gives a lease) and renewing the leases
//! of running attempts.

use sqlx::FromRow;

use super::{Claimant, ClaimedJob, Lease};
use crate::db::{Backend, Db, DbError, on_tx};
use crate::domain::{ItemId, JobId, JobKind, Platform, Timestamp};

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
