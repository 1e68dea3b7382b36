//! The `usage_history` table: storage used per day, for the whole vault (`user_id` '') and
//! per user. One row per day and scope; recording a day again replaces its figures.

use super::{Db, DbError, Tx, on_pool, on_tx, to_i64, to_u64};

/// The figures of one scope on one day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayUsage {
    /// `YYYY-MM-DD`, UTC.
    pub day: String,
    /// A user's id, or `None` for the whole vault.
    pub user_id: Option<String>,
    pub bytes: u64,
    pub items: u64,
}

pub(crate) async fn upsert_in(tx: &mut Tx, usage: &DayUsage) -> Result<(), DbError> {
    on_tx!(tx, conn => sqlx::query(
        "INSERT INTO usage_history (day, user_id, bytes, items) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (day, user_id) DO UPDATE SET bytes = $3, items = $4")
        .bind(&usage.day)
        .bind(usage.user_id.as_deref().unwrap_or(""))
        .bind(to_i64(usage.bytes))
        .bind(to_i64(usage.items))
        .execute(conn)
        .await
        .map(|done| done.rows_affected()))?;
    Ok(())
}

/// Drops the days before `day` (the history keeps a window, not everything).
pub(crate) async fn prune_in(tx: &mut Tx, before: &str) -> Result<(), DbError> {
    on_tx!(tx, conn => sqlx::query("DELETE FROM usage_history WHERE day < $1")
        .bind(before)
        .execute(conn)
        .await
        .map(|done| done.rows_affected()))?;
    Ok(())
}

/// Whether `day` is recorded already.
pub async fn has_day(db: &Db, day: &str) -> Result<bool, DbError> {
    let found: Option<String> = on_pool!(db, pool => sqlx::query_scalar(
        "SELECT day FROM usage_history WHERE day = $1 AND user_id = '' LIMIT 1")
        .bind(day)
        .fetch_optional(pool)
        .await)?;
    Ok(found.is_some())
}

/// Every row from `day` on, oldest first.
pub async fn since(db: &Db, day: &str) -> Result<Vec<DayUsage>, DbError> {
    let rows: Vec<(String, String, i64, i64)> = on_pool!(db, pool => sqlx::query_as(
        "SELECT day, user_id, bytes, items FROM usage_history WHERE day >= $1 \
         ORDER BY day, user_id")
        .bind(day)
        .fetch_all(pool)
        .await)?;
    rows.into_iter()
        .map(|(day, user, bytes, items)| {
            Ok(DayUsage {
                day,
                user_id: (!user.is_empty()).then_some(user),
                bytes: to_u64(bytes, "usage_history.bytes")?,
                items: to_u64(items, "usage_history.items")?,
            })
        })
        .collect()
}
