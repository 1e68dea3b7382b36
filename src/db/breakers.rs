//! The `breakers` table: each platform's circuit breaker, persisted so that a pause survives
//! a restart and is shared by instances on one database.

use sqlx::FromRow;

use super::{Db, DbError, on_pool, to_u64};
use crate::domain::breaker::Breaker;
use crate::domain::{Platform, Timestamp};

/// A platform's breaker and why it last opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredBreaker {
    pub platform: Platform,
    pub breaker: Breaker,
    pub reason: Option<String>,
}

#[derive(FromRow)]
struct BreakerRow {
    platform: String,
    failures: i64,
    open_until: i64,
    reason: Option<String>,
}

pub async fn load_all(db: &Db) -> Result<Vec<StoredBreaker>, DbError> {
    let rows: Vec<BreakerRow> = on_pool!(db, pool => sqlx::query_as(
        "SELECT platform, failures, open_until, reason FROM breakers ORDER BY platform")
        .fetch_all(pool)
        .await)?;
    rows.into_iter()
        .filter_map(|row| Platform::parse(&row.platform).map(|p| (p, row)))
        .map(|(platform, row)| {
            Ok(StoredBreaker {
                platform,
                breaker: Breaker {
                    failures: to_u64(row.failures, "failures")? as u32,
                    open_until: row.open_until,
                },
                reason: row.reason,
            })
        })
        .collect()
}

pub async fn save(
    db: &Db,
    platform: Platform,
    breaker: &Breaker,
    reason: Option<&str>,
    now: Timestamp,
) -> Result<(), DbError> {
    let mut tx = db.begin_write().await?;
    super::on_tx!(&mut tx, conn => sqlx::query(
        "INSERT INTO breakers (platform, failures, open_until, reason, updated_at) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (platform) DO UPDATE SET failures = $2, open_until = $3, reason = $4, updated_at = $5")
        .bind(platform.as_str())
        .bind(i64::from(breaker.failures))
        .bind(breaker.open_until)
        .bind(reason)
        .bind(now.as_millis())
        .execute(conn)
        .await
        .map(|done| done.rows_affected()))?;
    tx.commit().await
}
