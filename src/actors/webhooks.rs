//! WebhooksActor: tells the configured webhooks what happened to items. Every tick it fans
//! new events out to one delivery per subscribed webhook, then claims the deliveries that are
//! due and sends them, each in a task of its own, under the webhook's own address policy.
//! Deliveries are rows (`db::webhooks`), so a restart or a crash loses none: a claim's lease
//! runs out and the delivery is sent again, with the same id (at least once).

use std::sync::Arc;
use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef};
use tokio_util::task::AbortOnDropHandle;

use super::Env;
use crate::context::AppContext;
use crate::db::webhooks::{self, Attempted, Due};
use crate::domain::Timestamp;
use crate::domain::webhook::{MAX_ATTEMPTS, WebhookEvent, retry_delay};
use crate::net::webhook::{Sent, send};
use crate::settings::WebhookSettings;

/// How often events and due deliveries are looked for.
const TICK: Duration = Duration::from_secs(1);

/// Deliveries claimed per tick (each sent in its own task).
const CLAIM: u32 = 16;

/// How long a claim keeps other instances off a delivery: longer than any send.
const LEASE: Duration = Duration::from_secs(120);

/// Finished deliveries and their events are kept this long for the log.
const KEEP: Duration = Duration::from_secs(30 * 24 * 3600);

#[derive(Debug)]
pub enum WebhooksMsg {
    Tick,
}

pub struct WebhooksState {
    ctx: Arc<AppContext>,
    /// The previous tick's work; a tick while it runs is skipped.
    running: Option<AbortOnDropHandle<()>>,
    ticks: u64,
    _ticker: AbortOnDropHandle<()>,
}

pub struct WebhooksActor;

impl Actor for WebhooksActor {
    type Msg = WebhooksMsg;
    type State = WebhooksState;
    type Arguments = Env;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        Env { ctx, .. }: Self::Arguments,
    ) -> Result<Self::State, ActorProcessingErr> {
        let ticker = AbortOnDropHandle::new(myself.send_interval(TICK, || WebhooksMsg::Tick));
        Ok(WebhooksState {
            ctx,
            running: None,
            ticks: 0,
            _ticker: ticker,
        })
    }

    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        message: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let WebhooksMsg::Tick = message;
        if state
            .running
            .as_ref()
            .is_some_and(|task| !task.is_finished())
        {
            return Ok(());
        }
        state.ticks += 1;
        let prune = state.ticks % 3600 == 1;
        let ctx = Arc::clone(&state.ctx);
        state.running = Some(AbortOnDropHandle::new(tokio::spawn(async move {
            if let Err(e) = tick(&ctx, prune).await {
                tracing::warn!(error = %e, "webhooks: cannot read or record deliveries");
            }
        })));
        Ok(())
    }
}

async fn tick(ctx: &Arc<AppContext>, prune: bool) -> Result<(), crate::db::DbError> {
    let now = crate::clock::now();
    // Every event is fanned out, to no delivery when nobody listens: the outbox empties.
    for event in webhooks::pending_events(&ctx.db, 100).await? {
        let listening: Vec<&str> = match WebhookEvent::parse(&event.event) {
            Some(kind) => ctx
                .settings
                .webhooks
                .iter()
                .filter(|hook| hook.events.contains(&kind))
                .map(|hook| hook.name.as_str())
                .collect(),
            None => Vec::new(),
        };
        webhooks::fan_out(&ctx.db, &event, &listening, now).await?;
    }
    if prune {
        webhooks::prune(
            &ctx.db,
            Timestamp::from_millis(now.as_millis() - KEEP.as_millis() as i64),
        )
        .await?;
    }
    let lease_until = Timestamp::from_millis(now.as_millis() + LEASE.as_millis() as i64);
    let due = webhooks::claim_due(&ctx.db, now, lease_until, CLAIM).await?;
    let mut sends = Vec::with_capacity(due.len());
    for delivery in due {
        let ctx = Arc::clone(ctx);
        sends.push(tokio::spawn(async move { deliver(&ctx, delivery).await }));
    }
    for send in sends {
        let _ = send.await;
    }
    Ok(())
}

/// Sends one delivery and records how it went.
async fn deliver(ctx: &AppContext, delivery: Due) {
    let Some(hook) = ctx
        .settings
        .webhooks
        .iter()
        .find(|h| h.name == delivery.webhook)
    else {
        // A webhook taken out of the configuration: its deliveries end here.
        let gone = Attempted::Failed {
            status: None,
            error: "the webhook is no longer configured".into(),
        };
        record(ctx, &delivery, &gone).await;
        return;
    };
    let attempt = u32::try_from(delivery.attempts)
        .unwrap_or(u32::MAX)
        .saturating_add(1);
    let body = body(ctx, &delivery);
    let sent = send(
        &ctx.policy.with_allow(hook.allow.clone()),
        hook,
        &delivery.id,
        &delivery.event,
        body,
    )
    .await;
    let attempted = judge(hook, attempt, sent);
    match &attempted {
        Attempted::Delivered { .. } => {}
        Attempted::Retry { error, .. } | Attempted::Failed { error, .. } => {
            tracing::warn!(webhook = %hook.name, delivery = %delivery.id, attempt, error = %error, "a webhook delivery failed")
        }
    }
    record(ctx, &delivery, &attempted).await;
}

/// The JSON sent: the event, its delivery id and the item as it was, with links to it.
fn body(ctx: &AppContext, delivery: &Due) -> Vec<u8> {
    let mut item: serde_json::Value = serde_json::from_str(&delivery.payload).unwrap_or_default();
    if let Some(id) = item.get("id").and_then(|v| v.as_str()).map(str::to_string) {
        let base = ctx
            .settings
            .server
            .public_base_url
            .as_ref()
            .map_or(String::new(), |u| {
                u.as_str().trim_end_matches('/').to_string()
            });
        let api = format!("http://{}", ctx.settings.server.listen);
        let origin = if base.is_empty() { api } else { base.clone() };
        item["stream_url"] = format!("{origin}/api/videos/{id}/stream").into();
        item["metadata_url"] = format!("{origin}/api/items/{id}").into();
    }
    serde_json::json!({
        "event": delivery.event,
        "delivery": delivery.id,
        "sent_at": crate::clock::rfc3339(crate::clock::now()),
        "item": item,
    })
    .to_string()
    .into_bytes()
}

/// 2xx is delivered; anything else is tried again with backoff until the attempts run out.
fn judge(hook: &WebhookSettings, attempt: u32, sent: Sent) -> Attempted {
    let (status, error) = match sent {
        Sent::Answered(status) if (200..300).contains(&status) => {
            return Attempted::Delivered { status };
        }
        Sent::Answered(status) => (Some(status), format!("the receiver answered {status}")),
        Sent::Refused(reason) => (None, reason),
    };
    if attempt >= MAX_ATTEMPTS {
        return Attempted::Failed { status, error };
    }
    let wait = retry_delay(attempt, hook.retry_base);
    let next_at = Timestamp::from_millis(crate::clock::now().as_millis() + wait.as_millis() as i64);
    Attempted::Retry {
        status,
        error,
        next_at,
    }
}

async fn record(ctx: &AppContext, delivery: &Due, attempted: &Attempted) {
    if let Err(e) =
        webhooks::record_attempt(&ctx.db, &delivery.id, attempted, crate::clock::now()).await
    {
        // The claim runs out and the delivery is sent again, with the same id.
        tracing::warn!(delivery = %delivery.id, error = %e, "cannot record a webhook attempt");
    }
}
