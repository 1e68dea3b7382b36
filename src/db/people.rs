//! Use cases over users and items: the upgrade that gives every item an owner, and moving a
//! user's items to someone else before the user is removed.

use super::users::{self, NewUser, User};
use super::{Db, DbError, on_pool, on_tx, to_u64};
use crate::domain::Timestamp;
use crate::domain::people::{Role, UserId};

/// The name of the admin the upgrade (or a fresh vault) creates.
pub const FIRST_ADMIN: &str = "admin";

/// Makes sure the vault has an admin: a fresh or upgraded vault gets one named `admin` with
/// no password (it acts for requests while authentication is off). Returns the first admin.
pub async fn ensure_admin(db: &Db, now: Timestamp) -> Result<User, DbError> {
    if let Some(admin) = users::first_admin(db).await? {
        return Ok(admin);
    }
    let mut tx = db.begin_write().await?;
    // Another process may have made one meanwhile; `admin` may also be a member's name.
    for name in [FIRST_ADMIN, "vault-admin", "vault-admin-2"] {
        let new = NewUser {
            name,
            role: Role::Admin,
            password_hash: None,
            quota_bytes: None,
        };
        if users::insert_in(&mut tx, &new, now).await?.is_some() {
            break;
        }
    }
    tx.commit().await?;
    users::first_admin(db)
        .await?
        .ok_or_else(|| DbError::Corrupt("no admin could be created".into()))
}

/// Gives every item without a known owner one: items of a Telegram account
/// (`telegram:<id>`, as earlier releases recorded them) go to the user linked to it, all
/// others to `admin`. Returns how many items were adopted.
pub async fn adopt_orphans(db: &Db, admin: UserId) -> Result<u64, DbError> {
    let strays: Vec<(Option<String>,)> = on_pool!(db, pool => sqlx::query_as(
        "SELECT DISTINCT owner FROM items \
         WHERE owner IS NULL OR owner NOT IN (SELECT id FROM users)")
        .fetch_all(pool)
        .await)?;
    let mut adopted = 0;
    for (stray,) in strays {
        let linked = match stray.as_deref().and_then(|o| o.strip_prefix("telegram:")) {
            Some(account) => match account.parse::<i64>() {
                Ok(account) => users::by_telegram(db, account).await?.map(|u| u.id),
                Err(_) => None,
            },
            None => None,
        };
        let to = linked.unwrap_or(admin).to_string();
        let mut tx = db.begin_write().await?;
        let moved = match &stray {
            Some(old) => on_tx!(&mut tx, conn => sqlx::query(
                "UPDATE items SET owner = $1 WHERE owner = $2")
                .bind(&to)
                .bind(old)
                .execute(conn)
                .await
                .map(|done| done.rows_affected()))?,
            None => on_tx!(&mut tx, conn => sqlx::query(
                "UPDATE items SET owner = $1 WHERE owner IS NULL")
                .bind(&to)
                .execute(conn)
                .await
                .map(|done| done.rows_affected()))?,
        };
        tx.commit().await?;
        adopted += moved;
    }
    Ok(adopted)
}

/// How many items a user owns.
pub async fn items_of(db: &Db, user: UserId) -> Result<u64, DbError> {
    let n: i64 = on_pool!(db, pool => sqlx::query_scalar(
        "SELECT COUNT(*) FROM items WHERE owner = $1")
        .bind(user.to_string())
        .fetch_one(pool)
        .await)?;
    to_u64(n, "items")
}

/// Moves `from`'s items to `to`, except those `to` already has (the same URL or platform
/// video: one item per owner and video). Returns how many moved and how many stayed.
pub async fn transfer_items(db: &Db, from: UserId, to: UserId) -> Result<(u64, u64), DbError> {
    let mut tx = db.begin_write().await?;
    let moved = on_tx!(&mut tx, conn => sqlx::query(
        "UPDATE items SET owner = $2 WHERE owner = $1 \
         AND NOT EXISTS (SELECT 1 FROM items mine WHERE mine.owner = $2 \
             AND ((items.canonical_url IS NOT NULL AND mine.canonical_url = items.canonical_url) \
               OR (items.platform_media_id IS NOT NULL AND mine.platform = items.platform \
                   AND mine.platform_media_id = items.platform_media_id)))")
        .bind(from.to_string())
        .bind(to.to_string())
        .execute(conn)
        .await
        .map(|done| done.rows_affected()))?;
    tx.commit().await?;
    Ok((moved, items_of(db, from).await?))
}

/// Why a user could not be removed or demoted.
#[derive(Debug, thiserror::Error)]
pub enum RemovalRefused {
    #[error("{0} is the last admin: make another user an admin first")]
    LastAdmin(String),
    #[error(
        "{name} owns {items} items: move them with --transfer-to OTHER or delete them with --delete-items"
    )]
    OwnsItems { name: String, items: u64 },
    #[error(transparent)]
    Db(#[from] DbError),
}

/// Removes a user who owns nothing (their tokens and sessions go with them); never the last
/// admin. One transaction, so two removals cannot leave the vault without an admin.
pub async fn remove_user(db: &Db, user: &User) -> Result<(), RemovalRefused> {
    let mut tx = db.begin_write().await?;
    if user.role == Role::Admin && users::admins_in(&mut tx).await? <= 1 {
        return Err(RemovalRefused::LastAdmin(user.name.clone()));
    }
    let owned: i64 = on_tx!(&mut tx, conn => sqlx::query_scalar(
        "SELECT COUNT(*) FROM items WHERE owner = $1")
        .bind(user.id.to_string())
        .fetch_one(conn)
        .await)
    .map_err(DbError::from)?;
    if owned > 0 {
        return Err(RemovalRefused::OwnsItems {
            name: user.name.clone(),
            items: to_u64(owned, "items")?,
        });
    }
    users::delete_in(&mut tx, user.id).await?;
    tx.commit().await?;
    Ok(())
}

/// Changes a user's role; never demotes the last admin.
pub async fn set_role(db: &Db, user: &User, role: Role) -> Result<(), RemovalRefused> {
    let mut tx = db.begin_write().await?;
    if user.role == Role::Admin && role != Role::Admin && users::admins_in(&mut tx).await? <= 1 {
        return Err(RemovalRefused::LastAdmin(user.name.clone()));
    }
    users::set_role_in(&mut tx, user.id, role).await?;
    tx.commit().await?;
    Ok(())
}

/// The user a Telegram account acts as: the one linked to it, or else a member named
/// `telegram-<id>` made (and linked) now.
pub async fn telegram_user(db: &Db, account: i64, now: Timestamp) -> Result<User, DbError> {
    if let Some(user) = users::by_telegram(db, account).await? {
        return Ok(user);
    }
    let name = format!("telegram-{account}");
    let mut tx = db.begin_write().await?;
    let new = NewUser {
        name: &name,
        role: Role::Member,
        password_hash: None,
        quota_bytes: None,
    };
    if let Some(user) = users::insert_in(&mut tx, &new, now).await? {
        on_tx!(&mut tx, conn => sqlx::query(
            "UPDATE users SET telegram_id = $2 WHERE id = $1 \
             AND NOT EXISTS (SELECT 1 FROM users WHERE telegram_id = $2)")
            .bind(user.id.to_string())
            .bind(account)
            .execute(conn)
            .await
            .map(|_| ()))?;
    }
    tx.commit().await?;
    users::by_telegram(db, account)
        .await?
        .ok_or_else(|| DbError::Corrupt(format!("no user for Telegram account {account}")))
}
