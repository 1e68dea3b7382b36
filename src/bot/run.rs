//! The bot's long-running tasks: the receiver (long polling; in webhook mode the HTTP route
//! receives and this only registers the webhook), the handler of stored updates, and the
//! reply tracker. None of them ends while the bot runs: `BotDoor` runs them until the door is
//! stopped, and a task that ends or panics takes the door down, which restarts it from the
//! database (updates stored but not handled are handled, polling resumes after the last
//! stored update, replies keep following).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

use super::receive::{Received, receive};
use super::{BotCore, handle, tracker};
use crate::clock;
use crate::db::telegram::{self, Postponed};
use crate::faults::FaultPoint;

/// Handling that keeps failing for a passing reason is given up after this many attempts
/// (with backoff up to `MAX_BACKOFF`, that is well over an hour).
const MAX_ATTEMPTS: u32 = 20;
/// How often an update that waits for disk space is tried again.
const SPACE_RETRY: Duration = Duration::from_secs(10);
const OUT_OF_SPACE: &str = "The vault is out of disk space, so I cannot save this yet. \
     I am keeping your message and will save it as soon as space is freed.";
const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// Handled updates are kept this long (Telegram never redelivers a confirmed one).
const KEEP_HANDLED: Duration = Duration::from_secs(24 * 3600);

/// Exponential backoff for passing failures: 1 s, 2 s, 4 s … up to `MAX_BACKOFF`.
fn backoff(failures: u32) -> Duration {
    Duration::from_secs(1u64 << failures.min(16)).min(MAX_BACKOFF)
}

/// Long polling. An update's offset is confirmed (by asking for the next ones) only after it
/// was stored, refused or deliberately ignored; if storing fails, the same updates are asked
/// for again.
pub async fn poll(core: Arc<BotCore>, wake: Arc<Notify>) {
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
pub async fn register_webhook(core: Arc<BotCore>) {
    let settings = &core.ctx.settings.telegram;
    if let Some(url) = &settings.webhook_url {
        let mut failures = 0;
        while let Err(e) = core
            .api
            .set_webhook(url, settings.webhook_secret.expose())
            .await
        {
            failures += 1;
            tracing::warn!(error = %e, "cannot register the bot's webhook; retrying");
            tokio::time::sleep(backoff(failures)).await;
        }
        tracing::info!(%url, "webhook registered with Telegram");
    }
    std::future::pending::<()>().await
}

/// Handles stored updates in order, each until it is done or given up.
pub async fn handle_stored(core: Arc<BotCore>, wake: Arc<Notify>) {
    let db = &core.ctx.db;
    let mut last_prune = None::<tokio::time::Instant>;
    loop {
        if last_prune.is_none_or(|at| at.elapsed() > Duration::from_secs(3600)) {
            let before = clock::now().minus(KEEP_HANDLED);
            if let Err(e) = telegram::prune_handled(db, before).await {
                tracing::warn!(error = %e, "cannot prune handled Telegram updates");
            }
            last_prune = Some(tokio::time::Instant::now());
        }
        match telegram::next_pending(db, clock::now()).await {
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
            Ok(Some(at)) => {
                Duration::from_millis((at - clock::now().as_millis()).clamp(0, 5000) as u64)
            }
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
            let _ = telegram::mark_handled(db, id, clock::now()).await;
            return;
        }
    };
    match handle::handle(core, &update).await {
        Ok(()) => {
            told_out_of_space(core).remove(&id);
            if let Err(e) = telegram::mark_handled(db, id, clock::now()).await {
                // Handled again later: captures and imports are idempotent.
                tracing::warn!(update = id, error = %e, "cannot mark a Telegram update handled");
            }
        }
        // Out of disk space: nobody's fault and maybe long; wait without counting it, never
        // give up, tell the sender once.
        Err(passing) if passing.waits_for_space => {
            tracing::warn!(update = id, error = %passing, "a Telegram update waits for disk space");
            if told_out_of_space(core).insert(id)
                && let Some(chat) = chat_of(&update)
            {
                handle::say(core, chat, OUT_OF_SPACE).await;
            }
            if let Err(e) =
                telegram::postpone(db, id, clock::now().plus(SPACE_RETRY), Postponed::Waiting).await
            {
                tracing::warn!(update = id, error = %e, "cannot postpone a Telegram update");
                tokio::time::sleep(SPACE_RETRY).await;
            }
        }
        Err(passing) if pending.attempts + 1 < MAX_ATTEMPTS => {
            let wait = backoff(pending.attempts + 1);
            tracing::warn!(update = id, attempt = pending.attempts + 1, error = %passing, ?wait, "cannot handle a Telegram update now; trying again");
            let run_after = clock::now().plus(wait);
            if let Err(e) = telegram::postpone(db, id, run_after, Postponed::Failed).await {
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
            let _ = telegram::mark_handled(db, id, clock::now()).await;
        }
    }
}

fn told_out_of_space(core: &BotCore) -> std::sync::MutexGuard<'_, std::collections::HashSet<i64>> {
    core.told_out_of_space
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn chat_of(update: &teloxide::types::Update) -> Option<i64> {
    match &update.kind {
        teloxide::types::UpdateKind::Message(m) => Some(m.chat.id.0),
        _ => None,
    }
}

pub async fn track(core: Arc<BotCore>) {
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        if let Err(e) = tracker::tick(&core).await {
            tracing::warn!(error = %e, "cannot update the bot's replies");
        }
    }
}
