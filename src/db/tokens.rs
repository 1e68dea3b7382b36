//! The `api_tokens` table: personal API tokens, stored only as the SHA-256 of the token.

use sqlx::FromRow;

use super::{Db, DbError, on_pool, on_tx};
use crate::domain::Timestamp;
use crate::domain::people::{Role, UserId};

/// A token as listed (never the token itself: it is not stored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub id: String,
    pub user: UserId,
    pub user_name: String,
    pub label: String,
    pub created_at: Timestamp,
    pub last_used_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
}

#[derive(FromRow)]
struct TokenRow {
    id: String,
    user_id: String,
    name: String,
    label: String,
    created_at: i64,
    last_used_at: Option<i64>,
    revoked_at: Option<i64>,
}

impl TryFrom<TokenRow> for Token {
    type Error = DbError;

    fn try_from(row: TokenRow) -> Result<Self, DbError> {
        Ok(Self {
            user: UserId::parse(&row.user_id)
                .map_err(|e| DbError::Corrupt(format!("api_tokens.user_id: {e}")))?,
            id: row.id,
            user_name: row.name,
            label: row.label,
            created_at: Timestamp::from_millis(row.created_at),
            last_used_at: row.last_used_at.map(Timestamp::from_millis),
            revoked_at: row.revoked_at.map(Timestamp::from_millis),
        })
    }
}

const LISTED: &str = "SELECT t.id, t.user_id, u.name, t.label, t.created_at, t.last_used_at, \
     t.revoked_at FROM api_tokens t JOIN users u ON u.id = t.user_id";

/// Stores a token's hash for `user`; false when the hash is known already (the same token).
pub async fn insert(
    db: &Db,
    id: &str,
    user: UserId,
    label: &str,
    hash: &str,
    now: Timestamp,
) -> Result<bool, DbError> {
    let mut tx = db.begin_write().await?;
    let done = on_tx!(&mut tx, conn => sqlx::query(
        "INSERT INTO api_tokens (id, user_id, label, hash, created_at) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (hash) DO NOTHING")
        .bind(id)
        .bind(user.to_string())
        .bind(label)
        .bind(hash)
        .bind(now.as_millis())
        .execute(conn)
        .await
        .map(|done| done.rows_affected()))?;
    tx.commit().await?;
    Ok(done == 1)
}

/// Who a live token (by its hash) belongs to: the token's id, the user, their role and when
/// the token was last used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bearer {
    pub token: String,
    pub user: UserId,
    pub role: Role,
    pub last_used_at: Option<Timestamp>,
}

/// Looks a presented token's hash up; revoked tokens are not found.
pub async fn bearer(db: &Db, hash: &str) -> Result<Option<Bearer>, DbError> {
    let row: Option<(String, String, String, Option<i64>)> = on_pool!(db, pool => sqlx::query_as(
        "SELECT t.id, t.user_id, u.role, t.last_used_at FROM api_tokens t \
         JOIN users u ON u.id = t.user_id WHERE t.hash = $1 AND t.revoked_at IS NULL")
        .bind(hash)
        .fetch_optional(pool)
        .await)?;
    let Some((token, user, role, last_used_at)) = row else {
        return Ok(None);
    };
    Ok(Some(Bearer {
        token,
        user: UserId::parse(&user)
            .map_err(|e| DbError::Corrupt(format!("api_tokens.user_id: {e}")))?,
        role: Role::parse(&role).ok_or_else(|| DbError::Corrupt(format!("users.role '{role}'")))?,
        last_used_at: last_used_at.map(Timestamp::from_millis),
    }))
}

/// Records a use of the token (callers write it at most once a minute).
pub async fn touch(db: &Db, id: &str, now: Timestamp) -> Result<(), DbError> {
    let mut tx = db.begin_write().await?;
    on_tx!(&mut tx, conn => sqlx::query("UPDATE api_tokens SET last_used_at = $2 WHERE id = $1")
        .bind(id)
        .bind(now.as_millis())
        .execute(conn)
        .await
        .map(|_| ()))?;
    tx.commit().await
}

/// Revokes a token; false when there is no such live token.
pub async fn revoke(db: &Db, id: &str, now: Timestamp) -> Result<bool, DbError> {
    let mut tx = db.begin_write().await?;
    let done = on_tx!(&mut tx, conn => sqlx::query(
        "UPDATE api_tokens SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL")
        .bind(id)
        .bind(now.as_millis())
        .execute(conn)
        .await
        .map(|done| done.rows_affected()))?;
    tx.commit().await?;
    Ok(done == 1)
}

pub async fn get(db: &Db, id: &str) -> Result<Option<Token>, DbError> {
    let row: Option<TokenRow> = on_pool!(db, pool => sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{LISTED} WHERE t.id = $1")))
        .bind(id)
        .fetch_optional(pool)
        .await)?;
    row.map(Token::try_from).transpose()
}

/// Every token, or those of one user, oldest first.
pub async fn list(db: &Db, user: Option<UserId>) -> Result<Vec<Token>, DbError> {
    let rows: Vec<TokenRow> = match user {
        Some(user) => on_pool!(db, pool => sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "{LISTED} WHERE t.user_id = $1 ORDER BY t.id")))
            .bind(user.to_string())
            .fetch_all(pool)
            .await)?,
        None => {
            on_pool!(db, pool => sqlx::query_as(sqlx::AssertSqlSafe(format!("{LISTED} ORDER BY t.id")))
            .fetch_all(pool)
            .await)?
        }
    };
    rows.into_iter().map(Token::try_from).collect()
}
