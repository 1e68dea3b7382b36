//! BotActor: the Telegram door (see `bot` for what it does and why it is built this way).
//!
//! The actor owns three tasks: the receiver (long polling; in webhook mode the HTTP route
//! receives and this task only registers the webhook), the handler of stored updates, and the
//! reply tracker. A task that panics or ends takes the actor down with it, and the root
//! supervisor restarts the actor, which starts again from the database: updates stored but not
//! handled are handled, polling resumes after the last stored update, replies keep following.

use std::sync::Arc;
use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef};
use tokio::sync::Notify;
use tokio_util::task::AbortOnDropHandle;

use crate::bot::BotCore;
use crate::bot::handle;
use crate::bot::receive::{Received, receive};
use crate::bot::tracker;
use crate::clock;
use crate::context::AppContext;
use crate::db::telegram;
use crate::faults::FaultPoint;

/// Handling that keeps failing for a passing reason is given up after this many attempts
/// (with backoff up to `MAX_BACKOFF`, that is well over an hour).
const MAX_ATTEMPTS: u32 = 20;
const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// Handled updates are kept this long (Telegram never redelivers a confirmed one).
const KEEP_HANDLED: Duration = Duration::from_secs(24 * 3600);

#[derive(Debug)]
pub enum BotMsg {
    /// An update was stored (by the webhook route): handle it.
    Stored,
    /// A stranger wrote in private (seen by the webhook route): refuse politely.
    Refuse { chat: i64, user: u64 },
    /// One of the actor's tasks ended; the actor fails so that it is restarted.
    TaskEnded { task: &'static str, reason: String },
}

pub struct BotState {
    core: Arc<BotCore>,
    wake: Arc<Notify>,
    _tasks: Vec<AbortOnDropHandle<()>>,
}

pub struct BotActor;

impl Actor for BotActor {
    type Msg = BotMsg;
    type State = BotState;
    type Arguments = Arc<AppContext>;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        ctx: Self::Arguments,
    ) -> Result<Self::State, ActorProcessingErr> {
        let settings = &ctx.settings.telegram;
        if settings.allowed_users.is_empty() {
            tracing::warn!(
                "telegram.allowed_users is empty: the bot answers nobody (add your numeric user id)"
            );
        }
        let core = Arc::new(BotCore::new(Arc::clone(&ctx))?);
        let wake = Arc::new(Notify::new());
        // Nothing here may wait on Telegram: it being unreachable must not stop the service.
        let tasks = vec![
            if settings.uses_webhook() {
                supervised(
                    &myself,
                    "webhook registration",
                    register_webhook(Arc::clone(&core)),
                )
            } else {
                supervised(
                    &myself,
                    "receiver",
                    poll(Arc::clone(&core), Arc::clone(&wake)),
                )
            },
            supervised(
                &myself,
                "handler",
                handle_stored(Arc::clone(&core), Arc::clone(&wake)),
            ),
            supervised(&myself, "tracker", track(Arc::clone(&core))),
        ];
        ctx.bot.set(myself.clone());
        tracing::info!(
            mode = if settings.uses_webhook() {
                "webhook"
            } else {
                "polling"
            },
            allowed_users = settings.allowed_users.len(),
            "Telegram bot started"
        );
        Ok(BotState {
            core,
            wake,
            _tasks: tasks,
        })
    }

    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        message: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            BotMsg::Stored => state.wake.notify_one(),
            BotMsg::Refuse { chat, user } => {
                let core = Arc::clone(&state.core);
                tokio::spawn(async move { core.refuse(chat, user).await });
            }
            BotMsg::TaskEnded { task, reason } => {
                return Err(format!("the bot's {task} task ended: {reason}").into());
            }
        }
        Ok(())
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<Self::Msg>,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        state.core.ctx.bot.clear();
        Ok(())
    }
}

/// Spawns `task`; if it ever ends (a panic included), the actor hears of it.
fn supervised(
    myself: &ActorRef<BotMsg>,
    name: &'static str,
    task: impl std::future::Future<Output = ()> + Send + 'static,
) -> AbortOnDropHandle<()> {
    let inner = tokio::spawn(task);
    let actor = myself.clone();
    AbortOnDropHandle::new(tokio::spawn(async move {
        let mut inner = AbortOnDropHandle::new(inner);
        let reason = match (&mut inner).await {
            Ok(()) => "it returned".to_string(),
            Err(e) if e.is_panic() => "it panicked".to_string(),
            Err(e) => e.to_string(),
        };
        let _ = actor.send_message(BotMsg::TaskEnded { task: name, reason });
    }))
}

/// Exponential backoff for passing failures: 1 s, 2 s, 4 s … up to `MAX_BACKOFF`.
fn backoff(failures: u32) -> Duration {
    Duration::from_secs(1u64 << failures.min(16)).min(MAX_BACKOFF)
}

/// Long polling. An update's offset is confirmed (by asking for the next ones) only after it
/// was stored, refused or deliberately ignored; if storing fails, the same updates are asked
/// for again.
async fn poll(core: Arc<BotCore>, wake: Arc<Notify>) {
    let ctx = &core.ctx;
    let timeout = u32::try_from(ctx.settings.telegram.poll_timeout_secs).unwrap_or(25);
    let mut failures = 0;
    while let Err(e) = core.api.delete_webhook().await {
        failures += 1;
        tracing::warn!(error = %e, "cannot remove the bot's webhook before polling; retrying");
        tokio::time::sleep(backoff(failures)).await;
    }
    failures = 0;
    // Resume after the last stored update (0: whatever Telegram still holds).
    let mut offset = loop {
        match telegram::last_update_id(&ctx.db).await {
            Ok(last) => break last.map_or(0, |id| i32::try_from(id + 1).unwrap_or(0)),
            Err(e) => {
                failures += 1;
                tracing::warn!(error = %e, "cannot read where polling stopped; retrying");
                tokio::time::sleep(backoff(failures)).await;
            }
        }
    };
    failures = 0;
    loop {
        let updates = match core.api.updates(offset, timeout).await {
            Ok(updates) => updates,
            Err(e) => {
                failures += 1;
                tracing::warn!(error = %e, "cannot get updates from Telegram; retrying");
                tokio::time::sleep(backoff(failures)).await;
                continue;
            }
        };
        failures = 0;
        let mut stored_any = false;
        for update in &updates {
            ctx.faults.crash_if_armed(FaultPoint::BotBeforeStore);
            match receive(ctx, update).await {
                Ok(Received::Stored) => stored_any = true,
                Ok(Received::Duplicate | Received::Ignored(_)) => {}
                Ok(Received::Refuse { chat, user }) => core.refuse(chat, user).await,
                Err(e) => {
                    // Not stored: stop here, so Telegram keeps it and sends it again.
                    tracing::warn!(update = update.id.0, error = %e, "cannot store a Telegram update; it will be fetched again");
                    failures += 1;
                    break;
                }
            }
            offset = i32::try_from(update.id.0)
                .unwrap_or(i32::MAX)
                .saturating_add(1);
        }
        if stored_any {
            wake.notify_one();
        }
        if failures > 0 {
            tokio::time::sleep(backoff(failures)).await;
        }
    }
}

/// Webhook mode: tell Telegram where to post (when `telegram.webhook_url` is set), then rest.
async fn register_webhook(core: Arc<BotCore>) {
    let settings = &core.ctx.settings.telegram;
    if !settings.webhook_url.is_empty() {
        let mut failures = 0;
        while let Err(e) = core
            .api
            .set_webhook(&settings.webhook_url, settings.webhook_secret.expose())
            .await
        {
            failures += 1;
            tracing::warn!(error = %e, "cannot register the bot's webhook; retrying");
            tokio::time::sleep(backoff(failures)).await;
        }
        tracing::info!(url = %settings.webhook_url, "webhook registered with Telegram");
    }
    std::future::pending::<()>().await
}

/// Handles stored updates in order, each until it is done or given up.
async fn handle_stored(core: Arc<BotCore>, wake: Arc<Notify>) {
    let db = &core.ctx.db;
    let mut last_prune = None::<tokio::time::Instant>;
    loop {
        if last_prune.is_none_or(|at| at.elapsed() > Duration::from_secs(3600)) {
            let before = clock::now_ms() - KEEP_HANDLED.as_millis() as i64;
            if let Err(e) = telegram::prune_handled(db, before).await {
                tracing::warn!(error = %e, "cannot prune handled Telegram updates");
            }
            last_prune = Some(tokio::time::Instant::now());
        }
        match telegram::next_pending(db, clock::now_ms()).await {
            Ok(Some(pending)) => {
                handle_one(&core, pending).await;
                continue;
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "cannot read stored Telegram updates"),
        }
        // Sleep until woken, or until a postponed update is due (at most a few seconds, which
        // also covers updates stored by another process, and database hiccups).
        let due_in = match telegram::next_due_at(db).await {
            Ok(Some(at)) => Duration::from_millis((at - clock::now_ms()).clamp(0, 5000) as u64),
            _ => Duration::from_secs(5),
        };
        let _ = tokio::time::timeout(due_in.max(Duration::from_millis(50)), wake.notified()).await;
    }
}

async fn handle_one(core: &BotCore, pending: telegram::PendingUpdate) {
    let db = &core.ctx.db;
    let id = pending.update_id;
    let update: teloxide::types::Update = match serde_json::from_str(&pending.payload) {
        Ok(update) => update,
        Err(e) => {
            tracing::error!(update = id, error = %e, "a stored Telegram update cannot be read; skipping it");
            let _ = telegram::mark_handled(db, id, clock::now_ms()).await;
            return;
        }
    };
    match handle::handle(core, &update).await {
        Ok(()) => {
            if let Err(e) = telegram::mark_handled(db, id, clock::now_ms()).await {
                // Handled again later: captures and imports are idempotent.
                tracing::warn!(update = id, error = %e, "cannot mark a Telegram update handled");
            }
        }
        Err(passing) if pending.attempts + 1 < MAX_ATTEMPTS => {
            let wait = backoff(pending.attempts + 1);
            tracing::warn!(update = id, attempt = pending.attempts + 1, error = %passing, ?wait, "cannot handle a Telegram update now; trying again");
            let run_after = clock::now_ms() + wait.as_millis() as i64;
            if let Err(e) = telegram::postpone(db, id, run_after).await {
                tracing::warn!(update = id, error = %e, "cannot postpone a Telegram update");
                tokio::time::sleep(wait).await;
            }
        }
        Err(passing) => {
            tracing::error!(update = id, error = %passing, "giving up on a Telegram update");
            if let Some(chat) = chat_of(&update) {
                handle::say(
                    core,
                    chat,
                    &format!(
                        "Sorry, I could not store that: {passing}. Please send it again later."
                    ),
                )
                .await;
            }
            let _ = telegram::mark_handled(db, id, clock::now_ms()).await;
        }
    }
}

fn chat_of(update: &teloxide::types::Update) -> Option<i64> {
    match &update.kind {
        teloxide::types::UpdateKind::Message(m) => Some(m.chat.id.0),
        _ => None,
    }
}

async fn track(core: Arc<BotCore>) {
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        if let Err(e) = tracker::tick(&core).await {
            tracing::warn!(error = %e, "cannot update the bot's replies");
        }
    }
}
