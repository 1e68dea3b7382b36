//! `GET /api/items/{id}/events`: Server-Sent Events following one item to its end.
//!
//! Events: `status` (a snapshot: status, progress, error) first and whenever the status
//! changes, `progress` as the job moves, and finally `done` with the whole item JSON, after
//! which the stream ends. A client connecting after the end gets `done` at once. Besides the
//! live events of this process, the item is re-read every few seconds, so progress made by
//! another instance sharing the database is seen too.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{broadcast, mpsc};
use warp::Reply;
use warp::reply::Response;
use warp::sse::Event;

use super::dto::{ErrorJson, ItemJson, ProgressJson};
use super::error::{ApiError, respond};
use super::items::load;
use crate::context::{AppContext, ItemChange, ItemEvent};
use crate::db::items::{self, Item};
use crate::domain::people::Principal;
use crate::domain::{ItemId, ItemStatus};

const RECHECK: Duration = Duration::from_secs(2);
const KEEP_ALIVE: Duration = Duration::from_secs(15);

pub async fn follow(id: String, principal: Principal, ctx: Arc<AppContext>) -> Response {
    respond(
        async {
            // Subscribe before reading the item, so no change falls between the two.
            let live = ctx.events.subscribe();
            let item = load(&ctx, &principal, &id).await?;
            let (tx, mut rx) = mpsc::channel::<Result<Event, Infallible>>(64);
            tokio::spawn(produce(
                Arc::clone(&ctx),
                item,
                principal.is_admin(),
                live,
                tx,
            ));
            let stream = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx));
            Ok::<_, ApiError>(warp::sse::reply(stream).into_response())
        }
        .await,
    )
}

fn snapshot(item: &Item) -> Event {
    let body = serde_json::json!({
        "status": item.status.as_str(),
        "progress": item.progress.as_ref().map(ProgressJson::from),
        "error": item.error.as_ref().map(ErrorJson::from),
    });
    Event::default().event("status").data(body.to_string())
}

fn done(ctx: &AppContext, item: &Item, admin: bool) -> Event {
    let json = serde_json::to_string(&ItemJson::of(ctx, item, None, admin)).unwrap_or_default();
    Event::default().event("done").data(json)
}

fn deleted(id: ItemId) -> Event {
    let body = serde_json::json!({
        "id": id.to_string(),
        "status": ItemStatus::Cancelled.as_str(),
        "error": {"code": "cancelled", "message": "the item was deleted"},
    });
    Event::default().event("done").data(body.to_string())
}

/// Sends the item's events into `tx` until it is terminal or the client is gone.
async fn produce(
    ctx: Arc<AppContext>,
    item: Item,
    admin: bool,
    mut live: broadcast::Receiver<ItemEvent>,
    tx: mpsc::Sender<Result<Event, Infallible>>,
) {
    let id = item.id;
    let send = |event: Event| tx.send(Ok(event));
    if item.status.is_terminal() {
        let _ = send(done(&ctx, &item, admin)).await;
        return;
    }
    if send(snapshot(&item)).await.is_err() {
        return;
    }
    let mut last_status = item.status;
    let mut recheck = tokio::time::interval(RECHECK);
    let mut keep_alive = tokio::time::interval(KEEP_ALIVE);
    recheck.tick().await;
    keep_alive.tick().await;
    loop {
        let reload = tokio::select! {
            received = live.recv() => match received {
                Ok(event) if event.item == id => match event.change {
                    ItemChange::Progress(progress) => {
                        let data = serde_json::to_string(&ProgressJson::from(&progress)).unwrap_or_default();
                        if send(Event::default().event("progress").data(data)).await.is_err() {
                            return;
                        }
                        false
                    }
                    ItemChange::Status { .. } => true,
                },
                Ok(_) => false,
                // Missed events: the database has the current state.
                Err(broadcast::error::RecvError::Lagged(_)) => true,
                Err(broadcast::error::RecvError::Closed) => return,
            },
            _ = recheck.tick() => true,
            _ = keep_alive.tick() => {
                if send(Event::default().comment("keep-alive")).await.is_err() {
                    return;
                }
                false
            }
            _ = tx.closed() => return,
        };
        if !reload {
            continue;
        }
        match items::get(&ctx.db, id).await {
            Ok(Some(current)) if current.status.is_terminal() => {
                let _ = send(done(&ctx, &current, admin)).await;
                return;
            }
            Ok(Some(current)) if current.status != last_status => {
                last_status = current.status;
                if send(snapshot(&current)).await.is_err() {
                    return;
                }
            }
            Ok(Some(_)) => {}
            Ok(None) => {
                let _ = send(deleted(id)).await;
                return;
            }
            Err(e) => {
                tracing::warn!(item = %id, error = %e, "event stream cannot re-read the item")
            }
        }
    }
}
