//! The bot's durable state: updates stored before Telegram is told they arrived (so a crash
//! means redelivery, not loss), and the replies that follow items until they end.

use sqlx::FromRow;

use super::{Db, DbError, on_pool, on_tx};
use crate::domain::{ItemId, Timestamp};

/// A stored update waiting to be handled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingUpdate {
    pub update_id: i64,
    pub payload: String,
    pub attempts: u32,
}

/// Stores an update unless it is already there. True when it was new.
pub async fn store_update(
    db: &Db,
    update_id: i64,
    payload: &str,
    now: Timestamp,
) -> Result<bool, DbError> {
    let mut tx = db.begin_write().await?;
    let inserted = on_tx!(&mut tx, conn => sqlx::query(
        "INSERT INTO telegram_updates (update_id, payload, state, run_after, received_at) \
         VALUES ($1, $2, 'pending', $3, $3) ON CONFLICT (update_id) DO NOTHING")
        .bind(update_id)
        .bind(payload)
        .bind(now.as_millis())
        .execute(conn)
        .await
        .map(|done| done.rows_affected()))?;
    tx.commit().await?;
    Ok(inserted == 1)
}

/// The highest update id ever stored: polling resumes after it.
pub async fn last_update_id(db: &Db) -> Result<Option<i64>, DbError> {
    let max: (Option<i64>,) = on_pool!(db, pool => sqlx::query_as(
        "SELECT MAX(update_id) FROM telegram_updates")
        .fetch_one(pool)
        .await)?;
    Ok(max.0)
}

/// The oldest pending update that is due, in arrival order.
pub async fn next_pending(db: &Db, now: Timestamp) -> Result<Option<PendingUpdate>, DbError> {
    let row: Option<(i64, String, i32)> = on_pool!(db, pool => sqlx::query_as(
        "SELECT update_id, payload, attempts FROM telegram_updates \
         WHERE state = 'pending' AND run_after <= $1 ORDER BY update_id LIMIT 1")
        .bind(now.as_millis())
        .fetch_optional(pool)
        .await)?;
    Ok(row.map(|(update_id, payload, attempts)| PendingUpdate {
        update_id,
        payload,
        attempts: u32::try_from(attempts).unwrap_or(0),
    }))
}

/// When the next pending update becomes due, if any is waiting.
pub async fn next_due_at(db: &Db) -> Result<Option<i64>, DbError> {
    let min: (Option<i64>,) = on_pool!(db, pool => sqlx::query_as(
        "SELECT MIN(run_after) FROM telegram_updates WHERE state = 'pending'")
        .fetch_one(pool)
        .await)?;
    Ok(min.0)
}

pub async fn mark_handled(db: &Db, update_id: i64, now: Timestamp) -> Result<(), DbError> {
    let mut tx = db.begin_write().await?;
    on_tx!(&mut tx, conn => sqlx::query(
        "UPDATE telegram_updates SET state = 'handled', payload = '', handled_at = $2 \
         WHERE update_id = $1")
        .bind(update_id)
        .bind(now.as_millis())
        .execute(conn)
        .await
        .map(|_| ()))?;
    tx.commit().await
}

/// Whether a postponement counts against the update's attempts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Postponed {
    /// Handling failed for a passing reason.
    Failed,
    /// A wait that is nobody's fault and may be long (the disk below its floor).
    Waiting,
}

/// Handling cannot finish now: try again at `run_after`.
pub async fn postpone(
    db: &Db,
    update_id: i64,
    run_after: Timestamp,
    why: Postponed,
) -> Result<(), DbError> {
    let charged = i32::from(why == Postponed::Failed);
    let mut tx = db.begin_write().await?;
    on_tx!(&mut tx, conn => sqlx::query(
        "UPDATE telegram_updates SET attempts = attempts + $3, run_after = $2 \
         WHERE update_id = $1 AND state = 'pending'")
        .bind(update_id)
        .bind(run_after.as_millis())
        .bind(charged)
        .execute(conn)
        .await
        .map(|_| ()))?;
    tx.commit().await
}

/// Forgets handled updates received before `before`, keeping the newest row so that polling
/// still knows where it stopped. Telegram never redelivers a confirmed update.
pub async fn prune_handled(db: &Db, before: Timestamp) -> Result<u64, DbError> {
    let mut tx = db.begin_write().await?;
    let pruned = on_tx!(&mut tx, conn => sqlx::query(
        "DELETE FROM telegram_updates WHERE state = 'handled' AND received_at < $1 \
         AND update_id < (SELECT MAX(update_id) FROM telegram_updates)")
        .bind(before.as_millis())
        .execute(conn)
        .await
        .map(|done| done.rows_affected()))?;
    tx.commit().await?;
    Ok(pruned)
}

/// A reply that follows an item.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct Reply {
    pub chat_id: i64,
    pub message_id: i64,
    pub item_id: String,
    pub text: String,
    pub edited_at: i64,
}

impl Reply {
    pub fn item(&self) -> Result<ItemId, DbError> {
        ItemId::parse(&self.item_id)
            .map_err(|_| DbError::Corrupt(format!("reply names item '{}'", self.item_id)))
    }
}

/// Records a reply just sent about `item` (`finished` when it already tells the end).
pub async fn insert_reply(
    db: &Db,
    reply: &Reply,
    item: ItemId,
    finished: bool,
) -> Result<(), DbError> {
    let mut tx = db.begin_write().await?;
    on_tx!(&mut tx, conn => sqlx::query(
        "INSERT INTO telegram_replies (chat_id, message_id, item_id, text, edited_at, finished) \
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (chat_id, message_id) DO NOTHING")
        .bind(reply.chat_id)
        .bind(reply.message_id)
        .bind(item.to_string())
        .bind(&reply.text)
        .bind(reply.edited_at)
        .bind(i32::from(finished))
        .execute(conn)
        .await
        .map(|_| ()))?;
    tx.commit().await
}

/// Replies still following their item whose last edit is at or before `edited_before`.
pub async fn open_replies(
    db: &Db,
    edited_before: Timestamp,
    limit: u32,
) -> Result<Vec<Reply>, DbError> {
    let rows: Vec<Reply> = on_pool!(db, pool => sqlx::query_as(
        "SELECT chat_id, message_id, item_id, text, edited_at FROM telegram_replies \
         WHERE finished = 0 AND edited_at <= $1 ORDER BY edited_at LIMIT $2")
        .bind(edited_before.as_millis())
        .bind(i64::from(limit))
        .fetch_all(pool)
        .await)?;
    Ok(rows)
}

/// Records what a reply says now, and whether it is done following its item.
pub async fn update_reply(
    db: &Db,
    chat_id: i64,
    message_id: i64,
    text: &str,
    edited_at: Timestamp,
    finished: bool,
) -> Result<(), DbError> {
    let mut tx = db.begin_write().await?;
    on_tx!(&mut tx, conn => sqlx::query(
        "UPDATE telegram_replies SET text = $3, edited_at = $4, finished = $5 \
         WHERE chat_id = $1 AND message_id = $2")
        .bind(chat_id)
        .bind(message_id)
        .bind(text)
        .bind(edited_at.as_millis())
        .bind(i32::from(finished))
        .execute(conn)
        .await
        .map(|_| ()))?;
    tx.commit().await
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn db() -> (Db, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let mut settings = crate::settings::Settings::defaults().database;
        settings.url =
            crate::settings::Secret::new(format!("sqlite://{}", dir.path().join("t.db").display()));
        let db = Db::connect(&settings).await.unwrap();
        db.migrate().await.unwrap();
        (db, dir)
    }

    fn at(ms: i64) -> Timestamp {
        Timestamp::from_millis(ms)
    }

    #[tokio::test]
    async fn an_update_is_stored_once_and_handled_in_order() {
        let (db, _dir) = db().await;
        assert!(store_update(&db, 7, "{\"b\":1}", at(10)).await.unwrap());
        assert!(store_update(&db, 5, "{\"a\":1}", at(10)).await.unwrap());
        // Redelivery of a stored update changes nothing.
        assert!(!store_update(&db, 7, "{\"other\":1}", at(20)).await.unwrap());
        assert_eq!(last_update_id(&db).await.unwrap(), Some(7));

        let first = next_pending(&db, at(10)).await.unwrap().unwrap();
        assert_eq!((first.update_id, first.payload.as_str()), (5, "{\"a\":1}"));
        postpone(&db, 5, at(100), Postponed::Failed).await.unwrap();
        // Postponed: the next one due is 7; at 100, 5 again with its attempt counted.
        assert_eq!(
            next_pending(&db, at(50)).await.unwrap().unwrap().update_id,
            7
        );
        mark_handled(&db, 7, at(50)).await.unwrap();
        assert_eq!(next_due_at(&db).await.unwrap(), Some(100));
        let again = next_pending(&db, at(100)).await.unwrap().unwrap();
        assert_eq!((again.update_id, again.attempts), (5, 1));
        // Waiting (for disk space) moves it on without counting an attempt.
        postpone(&db, 5, at(200), Postponed::Waiting).await.unwrap();
        assert_eq!(next_pending(&db, at(150)).await.unwrap(), None);
        let waited = next_pending(&db, at(200)).await.unwrap().unwrap();
        assert_eq!((waited.update_id, waited.attempts), (5, 1));
        mark_handled(&db, 5, at(100)).await.unwrap();
        assert_eq!(next_pending(&db, at(i64::MAX)).await.unwrap(), None);

        // Pruning keeps the newest row, so polling still resumes after 7.
        assert_eq!(prune_handled(&db, at(i64::MAX)).await.unwrap(), 1);
        assert_eq!(last_update_id(&db).await.unwrap(), Some(7));
        assert!(!store_update(&db, 7, "{}", at(30)).await.unwrap());
    }
}
