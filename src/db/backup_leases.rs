//! The `backup_leases` table: backups in progress. While any lease is unexpired, the files of
//! deleted items stay on disk (the StorageActor and the sweep ask `held`), so a backup's
//! database dump never names a file that vanished before it was copied. A backup renews its
//! lease while it copies; one that was killed leaves a lease that expires by itself.

use super::{Db, DbError, Tx, on_pool, on_tx};
use crate::domain::Timestamp;

/// Records a lease. Expired leases (of backups that died) are dropped on the way.
pub async fn take(
    db: &Db,
    id: &str,
    holder: &str,
    now: Timestamp,
    until: Timestamp,
) -> Result<(), DbError> {
    let mut tx = db.begin_write().await?;
    drop_expired_in(&mut tx, now).await?;
    on_tx!(&mut tx, conn => sqlx::query(
        "INSERT INTO backup_leases (id, holder, started_at, expires_at) VALUES ($1, $2, $3, $4)")
        .bind(id)
        .bind(holder)
        .bind(now.as_millis())
        .bind(until.as_millis())
        .execute(conn)
        .await
        .map(|done| done.rows_affected()))?;
    tx.commit().await
}

/// Moves a lease's end; false when the lease is gone (someone removed it by hand).
pub async fn renew(db: &Db, id: &str, until: Timestamp) -> Result<bool, DbError> {
    let mut tx = db.begin_write().await?;
    let changed = on_tx!(&mut tx, conn => sqlx::query(
        "UPDATE backup_leases SET expires_at = $2 WHERE id = $1")
        .bind(id)
        .bind(until.as_millis())
        .execute(conn)
        .await
        .map(|done| done.rows_affected()))?;
    tx.commit().await?;
    Ok(changed == 1)
}

pub async fn release(db: &Db, id: &str) -> Result<(), DbError> {
    let mut tx = db.begin_write().await?;
    on_tx!(&mut tx, conn => sqlx::query("DELETE FROM backup_leases WHERE id = $1")
        .bind(id)
        .execute(conn)
        .await
        .map(|done| done.rows_affected()))?;
    tx.commit().await
}

/// Whether any backup holds an unexpired lease at `now`.
pub async fn held(db: &Db, now: Timestamp) -> Result<bool, DbError> {
    let found: Option<String> = on_pool!(db, pool => sqlx::query_scalar(
        "SELECT id FROM backup_leases WHERE expires_at > $1 LIMIT 1")
        .bind(now.as_millis())
        .fetch_optional(pool)
        .await)?;
    Ok(found.is_some())
}

async fn drop_expired_in(tx: &mut Tx, now: Timestamp) -> Result<(), DbError> {
    on_tx!(tx, conn => sqlx::query("DELETE FROM backup_leases WHERE expires_at <= $1")
        .bind(now.as_millis())
        .execute(conn)
        .await
        .map(|done| done.rows_affected()))?;
    Ok(())
}
