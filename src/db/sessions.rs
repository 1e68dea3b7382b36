//! The `sessions` table: signed-in browsers, stored only as the SHA-256 of the cookie's value.

use super::{Db, DbError, on_pool, on_tx};
use crate::domain::Timestamp;
use crate::domain::people::{Role, UserId};

/// Stores a new session.
pub async fn insert(
    db: &Db,
    hash: &str,
    user: UserId,
    now: Timestamp,
    expires_at: Timestamp,
) -> Result<(), DbError> {
    let mut tx = db.begin_write().await?;
    on_tx!(&mut tx, conn => sqlx::query(
        "INSERT INTO sessions (hash, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4)")
        .bind(hash)
        .bind(user.to_string())
        .bind(now.as_millis())
        .bind(expires_at.as_millis())
        .execute(conn)
        .await
        .map(|_| ()))?;
    tx.commit().await
}

/// The user and role of a live session.
pub async fn holder(
    db: &Db,
    hash: &str,
    now: Timestamp,
) -> Result<Option<(UserId, Role)>, DbError> {
    let row: Option<(String, String)> = on_pool!(db, pool => sqlx::query_as(
        "SELECT s.user_id, u.role FROM sessions s JOIN users u ON u.id = s.user_id \
         WHERE s.hash = $1 AND s.expires_at > $2")
        .bind(hash)
        .bind(now.as_millis())
        .fetch_optional(pool)
        .await)?;
    let Some((user, role)) = row else {
        return Ok(None);
    };
    let user =
        UserId::parse(&user).map_err(|e| DbError::Corrupt(format!("sessions.user_id: {e}")))?;
    let role =
        Role::parse(&role).ok_or_else(|| DbError::Corrupt(format!("users.role '{role}'")))?;
    Ok(Some((user, role)))
}

/// Ends a session (signing out); also drops every expired one.
pub async fn delete(db: &Db, hash: &str, now: Timestamp) -> Result<(), DbError> {
    let mut tx = db.begin_write().await?;
    on_tx!(&mut tx, conn => sqlx::query("DELETE FROM sessions WHERE hash = $1 OR expires_at <= $2")
        .bind(hash)
        .bind(now.as_millis())
        .execute(conn)
        .await
        .map(|_| ()))?;
    tx.commit().await
}

/// Ends every session of a user (a new password signs out everywhere).
pub async fn delete_of(db: &Db, user: UserId) -> Result<(), DbError> {
    let mut tx = db.begin_write().await?;
    on_tx!(&mut tx, conn => sqlx::query("DELETE FROM sessions WHERE user_id = $1")
        .bind(user.to_string())
        .execute(conn)
        .await
        .map(|_| ()))?;
    tx.commit().await
}
