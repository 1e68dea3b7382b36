//! Storage quotas: what a user keeps, and the check that keeps a completion within their
//! quota, atomically with it.
//!
//! A user's usage is the bytes of their completed items' files, thumbnails and subtitles and
//! their items' renditions. A file two of their items share counts once; a file shared with another owner
//! counts for each (it is theirs to keep as long as they keep the item).
//!
//! The check runs inside the transaction that writes a completion, after the write: the usage
//! it reads then includes the new bytes, and the owner's row is locked first (PostgreSQL;
//! SQLite's write transaction holds the whole database), so concurrent completions of one
//! owner are counted one after the other and can never overshoot together.

use super::{Db, DbError, Tx, on_pool, on_tx, to_u64};
use crate::domain::ItemId;
use crate::domain::people::UserId;
use crate::domain::quota::Standing;

/// Bytes of one user's completed items' files, thumbnails (grouped by file, so shared files
/// count once) and renditions (grouped by path).
const USAGE: &str = "SELECT CAST(\
      COALESCE((SELECT SUM(COALESCE(size_bytes, 0) + COALESCE(thumbnails_bytes, 0) \
                           + COALESCE(subtitles_bytes, 0)) \
                FROM (SELECT video_path, MAX(size_bytes) AS size_bytes, \
                             MAX(thumbnails_bytes) AS thumbnails_bytes, \
                             MAX(subtitles_bytes) AS subtitles_bytes \
                      FROM items WHERE owner = $1 AND status = 'completed' \
                      GROUP BY video_path) AS files), 0) \
    + COALESCE((SELECT SUM(size_bytes) \
                FROM (SELECT r.path, MAX(r.size_bytes) AS size_bytes FROM renditions r \
                      JOIN items i ON i.id = r.item_id WHERE i.owner = $1 \
                      GROUP BY r.path) AS made), 0) AS BIGINT)";

/// The bytes `user` keeps.
pub async fn usage_of(db: &Db, user: UserId) -> Result<u64, DbError> {
    let bytes: i64 = on_pool!(db, pool => sqlx::query_scalar(USAGE)
        .bind(user.to_string())
        .fetch_one(pool)
        .await)?;
    to_u64(bytes, "usage")
}

/// Where `user` stands.
pub async fn standing_of(db: &Db, user: UserId) -> Result<Standing, DbError> {
    Ok(Standing {
        usage_bytes: usage_of(db, user).await?,
        quota_bytes: quota_of(db, user).await?,
    })
}

/// Where the owner of new work stands, when they have a quota (`None`: no quota, or an owner
/// that is not a user; nothing to check, and their usage is not even summed).
pub async fn limited(db: &Db, owner: &str) -> Result<Option<Standing>, DbError> {
    let Ok(user) = UserId::parse(owner) else {
        return Ok(None);
    };
    let Some(quota) = quota_of(db, user).await? else {
        return Ok(None);
    };
    Ok(Some(Standing {
        usage_bytes: usage_of(db, user).await?,
        quota_bytes: Some(quota),
    }))
}

async fn quota_of(db: &Db, user: UserId) -> Result<Option<u64>, DbError> {
    let quota: Option<Option<i64>> = on_pool!(db, pool => sqlx::query_scalar(
        "SELECT quota_bytes FROM users WHERE id = $1")
        .bind(user.to_string())
        .fetch_optional(pool)
        .await)?;
    quota.flatten().map(|q| to_u64(q, "quota")).transpose()
}

/// In a completion's transaction, after its write: `Err` with the owner's standing when
/// `item`'s owner is now over their quota (the caller rolls back). Locks the owner's row
/// until the transaction ends (PostgreSQL).
pub(crate) async fn within_in(tx: &mut Tx, item: ItemId) -> Result<Result<(), Standing>, DbError> {
    const QUOTA: &str = "SELECT u.id, u.quota_bytes FROM users u \
         JOIN items i ON i.owner = u.id WHERE i.id = $1";
    const QUOTA_AND_LOCK: &str = "SELECT u.id, u.quota_bytes FROM users u \
         JOIN items i ON i.owner = u.id WHERE i.id = $1 FOR UPDATE OF u";
    let owner: Option<(String, Option<i64>)> = match tx {
        Tx::Sqlite(conn, _) => {
            sqlx::query_as(QUOTA)
                .bind(item.to_string())
                .fetch_optional(&mut **conn)
                .await?
        }
        Tx::Postgres(conn) => {
            sqlx::query_as(QUOTA_AND_LOCK)
                .bind(item.to_string())
                .fetch_optional(&mut **conn)
                .await?
        }
    };
    let Some((user, Some(quota))) = owner else {
        return Ok(Ok(()));
    };
    let usage: i64 = on_tx!(tx, conn => sqlx::query_scalar(USAGE)
        .bind(&user)
        .fetch_one(conn)
        .await)?;
    let standing = Standing {
        usage_bytes: to_u64(usage, "usage")?,
        quota_bytes: Some(to_u64(quota, "quota")?),
    };
    Ok(if standing.is_over() {
        Err(standing)
    } else {
        Ok(())
    })
}
