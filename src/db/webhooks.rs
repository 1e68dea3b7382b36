//! The `webhook_events` and `webhook_deliveries` tables: the outbox of item events and one
//! delivery per event and webhook, with its attempts (a table module: its own statements only).

use serde_json::json;
use sqlx::FromRow;

use super::items::Item;
use super::{Db, DbError, Tx, on_pool, on_tx, to_u64};
use crate::domain::Timestamp;
use crate::domain::layout::subtitle_path;
use crate::domain::webhook::WebhookEvent;

/// What a receiver is told about the item: the item as it was when the event happened.
pub fn snapshot(item: &Item) -> serde_json::Value {
    let media = item.media.as_ref();
    let meta = &item.source_meta;
    json!({
        "id": item.id.to_string(),
        "kind": item.kind.as_str(),
        "owner": item.owner,
        "status": item.status.as_str(),
        "title": item.user.title.clone().or_else(|| item.title.clone()),
        "source_title": item.title,
        "platform": item.platform.as_str(),
        "source_url": item.source_url,
        "paths": {
            "file": item.paths.file,
            "thumbnails": {
                "small": item.paths.thumb_small,
                "medium": item.paths.thumb_medium,
                "large": item.paths.thumb_large,
            },
            // Each subtitle sidecar by language, beside the file it belongs to.
            "subtitles": item
                .subtitles
                .iter()
                .map(|t| (t.lang.to_string(), subtitle_path(&item.paths.file, t.lang.as_str()).into()))
                .collect::<serde_json::Map<String, serde_json::Value>>(),
        },
        "error": item.error.as_ref().map(|e| json!({"code": e.code.as_str(), "message": e.message})),
        "metadata": media.map(|m| json!({
            "duration_seconds": m.duration_seconds,
            "width": m.width,
            "height": m.height,
            "video_codec": m.video_codec,
            "audio_codec": m.audio_codec,
            "size_bytes": item.size_bytes,
            "sha256": item.sha256,
            "uploader": meta.uploader,
            "upload_date": meta.upload_date,
            "tags": meta.tags,
            "subtitles": item.subtitles.iter().map(|t| t.lang.as_str()).collect::<Vec<_>>(),
        })),
        "user": {"title": item.user.title, "tags": item.user.tags, "note": item.user.note},
    })
}

/// Records `event` for `item` in the transaction that makes it happen.
pub(crate) async fn record(
    tx: &mut Tx,
    event: WebhookEvent,
    item: &Item,
    now: Timestamp,
) -> Result<(), DbError> {
    on_tx!(tx, conn => sqlx::query(
        "INSERT INTO webhook_events (id, event, item_id, payload, created_at) VALUES ($1, $2, $3, $4, $5)")
        .bind(uuid::Uuid::now_v7().to_string())
        .bind(event.as_str())
        .bind(item.id.to_string())
        .bind(snapshot(item).to_string())
        .bind(now.as_millis())
        .execute(conn)
        .await
        .map(|done| done.rows_affected()))?;
    Ok(())
}

/// An event not yet fanned out to the webhooks.
#[derive(Debug, Clone, FromRow)]
pub struct PendingEvent {
    pub id: String,
    pub event: String,
    pub item_id: String,
}

pub async fn pending_events(db: &Db, limit: u32) -> Result<Vec<PendingEvent>, DbError> {
    Ok(on_pool!(db, pool => sqlx::query_as(
        "SELECT id, event, item_id FROM webhook_events WHERE fanned_out = 0 ORDER BY id LIMIT $1")
        .bind(i64::from(limit))
        .fetch_all(pool)
        .await)?)
}

/// Gives `event` one delivery per webhook in `webhooks` (a delivery that exists already
/// stays as it is: its id never changes) and marks it fanned out, in one transaction.
pub async fn fan_out(
    db: &Db,
    event: &PendingEvent,
    webhooks: &[&str],
    now: Timestamp,
) -> Result<(), DbError> {
    let mut tx = db.begin_write().await?;
    for webhook in webhooks {
        on_tx!(&mut tx, conn => sqlx::query(
            "INSERT INTO webhook_deliveries (id, event_id, webhook, event, item_id, state, next_at, \
             created_at, updated_at) VALUES ($1, $2, $3, $4, $5, 'pending', $6, $6, $6) \
             ON CONFLICT (event_id, webhook) DO NOTHING")
            .bind(uuid::Uuid::now_v7().to_string())
            .bind(&event.id)
            .bind(*webhook)
            .bind(&event.event)
            .bind(&event.item_id)
            .bind(now.as_millis())
            .execute(conn)
            .await
            .map(|done| done.rows_affected()))?;
    }
    on_tx!(&mut tx, conn => sqlx::query("UPDATE webhook_events SET fanned_out = 1 WHERE id = $1")
        .bind(&event.id)
        .execute(conn)
        .await
        .map(|done| done.rows_affected()))?;
    tx.commit().await
}

/// A delivery to make now, with what it carries.
#[derive(Debug, Clone, FromRow)]
pub struct Due {
    pub id: String,
    pub webhook: String,
    pub event: String,
    pub attempts: i64,
    pub payload: String,
}

/// Claims up to `limit` due deliveries until `lease_until`. Looked for with a read first (a
/// tick that finds nothing takes no write lock); each claim is a conditional update, so of
/// two instances claiming one delivery only one wins.
pub async fn claim_due(
    db: &Db,
    now: Timestamp,
    lease_until: Timestamp,
    limit: u32,
) -> Result<Vec<Due>, DbError> {
    let candidates: Vec<String> = on_pool!(db, pool => sqlx::query_scalar(
        "SELECT id FROM webhook_deliveries WHERE state = 'pending' AND next_at <= $1 \
         AND (lease_until IS NULL OR lease_until < $1) ORDER BY next_at LIMIT $2")
        .bind(now.as_millis())
        .bind(i64::from(limit))
        .fetch_all(pool)
        .await)?;
    if candidates.is_empty() {
        return Ok(Vec::new());
    }
    let mut tx = db.begin_write().await?;
    let mut due = Vec::with_capacity(candidates.len());
    for id in candidates {
        let claimed = on_tx!(&mut tx, conn => sqlx::query(
            "UPDATE webhook_deliveries SET lease_until = $2 WHERE id = $1 AND state = 'pending' \
             AND (lease_until IS NULL OR lease_until < $3)")
            .bind(&id)
            .bind(lease_until.as_millis())
            .bind(now.as_millis())
            .execute(conn)
            .await
            .map(|done| done.rows_affected()))?;
        if claimed == 0 {
            continue;
        }
        let row: Option<Due> = on_tx!(&mut tx, conn => sqlx::query_as(
            "SELECT d.id, d.webhook, d.event, CAST(d.attempts AS BIGINT) AS attempts, e.payload \
             FROM webhook_deliveries d JOIN webhook_events e ON e.id = d.event_id WHERE d.id = $1")
            .bind(&id)
            .fetch_optional(conn)
            .await)?;
        due.extend(row);
    }
    tx.commit().await?;
    Ok(due)
}

/// How an attempt ended.
#[derive(Debug, Clone)]
pub enum Attempted {
    Delivered {
        status: u16,
    },
    /// Tried again at `next_at`.
    Retry {
        status: Option<u16>,
        error: String,
        next_at: Timestamp,
    },
    /// Given up.
    Failed {
        status: Option<u16>,
        error: String,
    },
}

pub async fn record_attempt(
    db: &Db,
    id: &str,
    attempted: &Attempted,
    now: Timestamp,
) -> Result<(), DbError> {
    let (state, status, error, next_at, delivered_at) = match attempted {
        Attempted::Delivered { status } => ("delivered", Some(*status), None, now, Some(now)),
        Attempted::Retry {
            status,
            error,
            next_at,
        } => ("pending", *status, Some(error), *next_at, None),
        Attempted::Failed { status, error } => ("failed", *status, Some(error), now, None),
    };
    on_pool!(db, pool => sqlx::query(
        "UPDATE webhook_deliveries SET state = $2, attempts = attempts + 1, last_status = $3, \
         last_error = $4, next_at = $5, delivered_at = $6, lease_until = NULL, updated_at = $7 \
         WHERE id = $1")
        .bind(id)
        .bind(state)
        .bind(status.map(i64::from))
        .bind(error)
        .bind(next_at.as_millis())
        .bind(delivered_at.map(Timestamp::as_millis))
        .bind(now.as_millis())
        .execute(pool)
        .await
        .map(|done| done.rows_affected()))?;
    Ok(())
}

/// A delivery as the log shows it.
#[derive(Debug, Clone)]
pub struct Logged {
    pub id: String,
    pub event: String,
    pub item_id: String,
    pub state: String,
    pub attempts: u64,
    pub last_status: Option<u16>,
    pub last_error: Option<String>,
    pub created_at: Timestamp,
    pub next_at: Timestamp,
    pub delivered_at: Option<Timestamp>,
}

type LoggedRow = (
    String,
    String,
    String,
    String,
    i64,
    Option<i64>,
    Option<String>,
    i64,
    i64,
    Option<i64>,
);

/// The newest `limit` deliveries of `webhook`.
pub async fn recent(db: &Db, webhook: &str, limit: u32) -> Result<Vec<Logged>, DbError> {
    let rows: Vec<LoggedRow> = on_pool!(db, pool => sqlx::query_as(
        "SELECT id, event, item_id, state, CAST(attempts AS BIGINT), CAST(last_status AS BIGINT), \
         last_error, created_at, next_at, delivered_at FROM webhook_deliveries WHERE webhook = $1 \
         ORDER BY id DESC LIMIT $2")
        .bind(webhook)
        .bind(i64::from(limit))
        .fetch_all(pool)
        .await)?;
    rows.into_iter()
        .map(
            |(id, event, item_id, state, attempts, status, error, created, next, delivered)| {
                Ok(Logged {
                    id,
                    event,
                    item_id,
                    state,
                    attempts: to_u64(attempts, "attempts")?,
                    last_status: status.and_then(|s| u16::try_from(s).ok()),
                    last_error: error,
                    created_at: Timestamp::from_millis(created),
                    next_at: Timestamp::from_millis(next),
                    delivered_at: delivered.map(Timestamp::from_millis),
                })
            },
        )
        .collect()
}

/// Forgets fanned-out events and finished deliveries older than `before`.
pub async fn prune(db: &Db, before: Timestamp) -> Result<(), DbError> {
    on_pool!(db, pool => sqlx::query(
        "DELETE FROM webhook_deliveries WHERE state <> 'pending' AND updated_at < $1")
        .bind(before.as_millis())
        .execute(pool)
        .await
        .map(|done| done.rows_affected()))?;
    on_pool!(db, pool => sqlx::query(
        "DELETE FROM webhook_events WHERE fanned_out = 1 AND created_at < $1 \
         AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.event_id = webhook_events.id)")
        .bind(before.as_millis())
        .execute(pool)
        .await
        .map(|done| done.rows_affected()))?;
    Ok(())
}
