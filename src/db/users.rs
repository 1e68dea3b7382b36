//! The `users` table: names, roles, password hashes, quotas and Telegram links.

use sqlx::FromRow;

use super::{Db, DbError, Tx, on_pool, on_tx, to_i64, to_u64};
use crate::domain::Timestamp;
use crate::domain::people::{Role, UserId};

/// A user as stored (the password hash stays in this module but for `password_hash`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: UserId,
    pub name: String,
    pub role: Role,
    pub has_password: bool,
    pub quota_bytes: Option<u64>,
    pub telegram_id: Option<i64>,
    pub created_at: Timestamp,
}

#[derive(FromRow)]
struct UserRow {
    id: String,
    name: String,
    role: String,
    password_hash: Option<String>,
    quota_bytes: Option<i64>,
    telegram_id: Option<i64>,
    created_at: i64,
}

impl TryFrom<UserRow> for User {
    type Error = DbError;

    fn try_from(row: UserRow) -> Result<Self, DbError> {
        Ok(Self {
            id: UserId::parse(&row.id).map_err(|e| DbError::Corrupt(format!("users.id: {e}")))?,
            role: Role::parse(&row.role)
                .ok_or_else(|| DbError::Corrupt(format!("users.role '{}'", row.role)))?,
            has_password: row.password_hash.is_some(),
            quota_bytes: row
                .quota_bytes
                .map(|q| to_u64(q, "users.quota_bytes"))
                .transpose()?,
            telegram_id: row.telegram_id,
            created_at: Timestamp::from_millis(row.created_at),
            name: row.name,
        })
    }
}

const COLUMNS: &str = "id, name, role, password_hash, quota_bytes, telegram_id, created_at";

/// A user to create.
#[derive(Debug, Clone)]
pub struct NewUser<'a> {
    pub name: &'a str,
    pub role: Role,
    pub password_hash: Option<&'a str>,
    pub quota_bytes: Option<u64>,
}

/// Creates a user; `None` when the name is taken.
pub async fn insert(db: &Db, new: &NewUser<'_>, now: Timestamp) -> Result<Option<User>, DbError> {
    let mut tx = db.begin_write().await?;
    let user = insert_in(&mut tx, new, now).await?;
    tx.commit().await?;
    Ok(user)
}

pub(crate) async fn insert_in(
    tx: &mut Tx,
    new: &NewUser<'_>,
    now: Timestamp,
) -> Result<Option<User>, DbError> {
    let id = UserId::new();
    let row: Option<UserRow> = on_tx!(tx, conn => sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO users (id, name, role, password_hash, quota_bytes, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (name) DO NOTHING RETURNING {COLUMNS}")))
        .bind(id.to_string())
        .bind(new.name)
        .bind(new.role.as_str())
        .bind(new.password_hash)
        .bind(new.quota_bytes.map(to_i64))
        .bind(now.as_millis())
        .fetch_optional(conn)
        .await)?;
    row.map(User::try_from).transpose()
}

pub async fn by_name(db: &Db, name: &str) -> Result<Option<User>, DbError> {
    let row: Option<UserRow> = on_pool!(db, pool => sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM users WHERE name = $1")))
        .bind(name)
        .fetch_optional(pool)
        .await)?;
    row.map(User::try_from).transpose()
}

pub async fn by_id(db: &Db, id: UserId) -> Result<Option<User>, DbError> {
    let row: Option<UserRow> = on_pool!(db, pool => sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM users WHERE id = $1")))
        .bind(id.to_string())
        .fetch_optional(pool)
        .await)?;
    row.map(User::try_from).transpose()
}

/// The user a Telegram account speaks for.
pub async fn by_telegram(db: &Db, telegram_id: i64) -> Result<Option<User>, DbError> {
    let row: Option<UserRow> = on_pool!(db, pool => sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM users WHERE telegram_id = $1")))
        .bind(telegram_id)
        .fetch_optional(pool)
        .await)?;
    row.map(User::try_from).transpose()
}

/// Every user, oldest first.
pub async fn list(db: &Db) -> Result<Vec<User>, DbError> {
    let rows: Vec<UserRow> = on_pool!(db, pool => sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM users ORDER BY id")))
        .fetch_all(pool)
        .await)?;
    rows.into_iter().map(User::try_from).collect()
}

/// The password hash of `name`, with the user, for signing in.
pub async fn credentials(db: &Db, name: &str) -> Result<Option<(User, String)>, DbError> {
    let row: Option<UserRow> = on_pool!(db, pool => sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM users WHERE name = $1 AND password_hash IS NOT NULL")))
        .bind(name)
        .fetch_optional(pool)
        .await)?;
    match row {
        Some(row) => {
            let hash = row.password_hash.clone().unwrap_or_default();
            Ok(Some((User::try_from(row)?, hash)))
        }
        None => Ok(None),
    }
}

/// Sets (or, with `None`, removes) a user's password hash; false when there is no such user.
pub async fn set_password(db: &Db, id: UserId, hash: Option<&str>) -> Result<bool, DbError> {
    let mut tx = db.begin_write().await?;
    let done = on_tx!(&mut tx, conn => sqlx::query(
        "UPDATE users SET password_hash = $2 WHERE id = $1")
        .bind(id.to_string())
        .bind(hash)
        .execute(conn)
        .await
        .map(|done| done.rows_affected()))?;
    tx.commit().await?;
    Ok(done == 1)
}

/// Sets a user's quota (`None`: no quota).
pub async fn set_quota(db: &Db, id: UserId, quota: Option<u64>) -> Result<bool, DbError> {
    let mut tx = db.begin_write().await?;
    let done = on_tx!(&mut tx, conn => sqlx::query(
        "UPDATE users SET quota_bytes = $2 WHERE id = $1")
        .bind(id.to_string())
        .bind(quota.map(to_i64))
        .execute(conn)
        .await
        .map(|done| done.rows_affected()))?;
    tx.commit().await?;
    Ok(done == 1)
}

/// Sets a user's role in `tx` (the caller checks that an admin remains).
pub(crate) async fn set_role_in(tx: &mut Tx, id: UserId, role: Role) -> Result<bool, DbError> {
    let done = on_tx!(tx, conn => sqlx::query("UPDATE users SET role = $2 WHERE id = $1")
        .bind(id.to_string())
        .bind(role.as_str())
        .execute(conn)
        .await
        .map(|done| done.rows_affected()))?;
    Ok(done == 1)
}

/// Links a Telegram account to a user (`None` unlinks); false when the account is linked to
/// someone else already or the user is gone.
pub async fn set_telegram(db: &Db, id: UserId, telegram_id: Option<i64>) -> Result<bool, DbError> {
    let mut tx = db.begin_write().await?;
    if let Some(account) = telegram_id {
        let taken: i64 = on_tx!(&mut tx, conn => sqlx::query_scalar(
            "SELECT COUNT(*) FROM users WHERE telegram_id = $1 AND id <> $2")
            .bind(account)
            .bind(id.to_string())
            .fetch_one(conn)
            .await)?;
        if taken > 0 {
            return Ok(false);
        }
    }
    let done = on_tx!(&mut tx, conn => sqlx::query(
        "UPDATE users SET telegram_id = $2 WHERE id = $1")
        .bind(id.to_string())
        .bind(telegram_id)
        .execute(conn)
        .await
        .map(|done| done.rows_affected()))?;
    tx.commit().await?;
    Ok(done == 1)
}

/// Removes a user (their tokens and sessions cascade). Their items must have been moved or
/// deleted first (`db::people::remove_user`).
pub(crate) async fn delete_in(tx: &mut Tx, id: UserId) -> Result<bool, DbError> {
    let done = on_tx!(tx, conn => sqlx::query("DELETE FROM users WHERE id = $1")
        .bind(id.to_string())
        .execute(conn)
        .await
        .map(|done| done.rows_affected()))?;
    Ok(done == 1)
}

/// How many admins there are (the last one cannot be removed or demoted).
pub(crate) async fn admins_in(tx: &mut Tx) -> Result<u64, DbError> {
    let n: i64 = on_tx!(tx, conn => sqlx::query_scalar(
        "SELECT COUNT(*) FROM users WHERE role = 'admin'")
        .fetch_one(conn)
        .await)?;
    to_u64(n, "admins")
}

/// The first admin (oldest): the vault's owner, who owns what has no other owner and whom
/// requests act for while authentication is off.
pub async fn first_admin(db: &Db) -> Result<Option<User>, DbError> {
    let row: Option<UserRow> = on_pool!(db, pool => sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM users WHERE role = 'admin' ORDER BY id LIMIT 1")))
        .fetch_optional(pool)
        .await)?;
    row.map(User::try_from).transpose()
}

/// In one read: whether anyone can authenticate, and the first admin (whom requests act as
/// until then, on a loopback listener only).
pub async fn open_state(db: &Db) -> Result<(bool, Option<UserId>), DbError> {
    let (n, admin): (i64, Option<String>) = on_pool!(db, pool => sqlx::query_as(
        "SELECT (SELECT COUNT(*) FROM users WHERE password_hash IS NOT NULL) \
              + (SELECT COUNT(*) FROM api_tokens WHERE revoked_at IS NULL), \
                (SELECT id FROM users WHERE role = 'admin' ORDER BY id LIMIT 1)")
        .fetch_one(pool)
        .await)?;
    let admin = admin
        .map(|id| UserId::parse(&id).map_err(|e| DbError::Corrupt(format!("users.id: {e}"))))
        .transpose()?;
    Ok((n > 0, admin))
}
