//! `GET /api/admin/webhooks` (admins): each configured webhook and its latest deliveries —
//! state, attempts, the receiver's last answer or why nothing was sent.

use std::sync::Arc;

use serde::Serialize;
use warp::Reply;
use warp::reply::Response;

use super::auth::admin;
use super::error::{ApiError, respond};
use crate::clock;
use crate::context::AppContext;
use crate::db::webhooks;
use crate::domain::people::Principal;

/// Deliveries listed per webhook.
const RECENT: u32 = 50;

#[derive(Serialize)]
struct WebhookJson {
    name: String,
    url: String,
    events: Vec<&'static str>,
    deliveries: Vec<DeliveryJson>,
}

#[derive(Serialize)]
struct DeliveryJson {
    id: String,
    event: String,
    item_id: String,
    /// `pending`, `delivered` or `failed` (given up).
    state: String,
    attempts: u64,
    last_status: Option<u16>,
    last_error: Option<String>,
    created_at: String,
    /// When a pending delivery is tried next.
    next_attempt_at: Option<String>,
    delivered_at: Option<String>,
}

pub async fn log(principal: Principal, ctx: Arc<AppContext>) -> Response {
    respond(
        async {
            admin(&principal)?;
            let mut out = Vec::with_capacity(ctx.settings.webhooks.len());
            for hook in &ctx.settings.webhooks {
                let deliveries = webhooks::recent(&ctx.db, &hook.name, RECENT)
                    .await
                    .map_err(ApiError::internal)?
                    .into_iter()
                    .map(|d| DeliveryJson {
                        next_attempt_at: (d.state == "pending").then(|| clock::rfc3339(d.next_at)),
                        delivered_at: d.delivered_at.map(clock::rfc3339),
                        created_at: clock::rfc3339(d.created_at),
                        id: d.id,
                        event: d.event,
                        item_id: d.item_id,
                        state: d.state,
                        attempts: d.attempts,
                        last_status: d.last_status,
                        last_error: d.last_error,
                    })
                    .collect();
                // The path and query may carry a receiver's own token: only the origin shows.
                out.push(WebhookJson {
                    name: hook.name.clone(),
                    url: hook.url.origin().ascii_serialization(),
                    events: hook.events.iter().map(|e| e.as_str()).collect(),
                    deliveries,
                });
            }
            Ok(warp::reply::json(&serde_json::json!({ "webhooks": out })).into_response())
        }
        .await,
    )
}
