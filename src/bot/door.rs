//! `BotDoor`: the Telegram door as the supervision tree runs it. Built once per app (so the
//! webhook route and the tasks share one core and one wake-up), started again on every
//! restart of its `DoorActor`.

use std::sync::Arc;

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::{BotCore, run};
use crate::actors::door::{Door, DoorTask};

pub struct BotDoor {
    core: Arc<BotCore>,
    /// Rung when an update was stored: the handler looks at once instead of at its next poll.
    wake: Arc<Notify>,
}

impl BotDoor {
    pub fn new(core: BotCore) -> Self {
        Self {
            core: Arc::new(core),
            wake: Arc::new(Notify::new()),
        }
    }

    /// The webhook route stored an update: handle it. If the bot is restarting, the
    /// wake-up waits for it, and the handler reads what is stored anyway.
    pub fn stored(&self) {
        self.wake.notify_one();
    }

    /// The webhook route saw a stranger write in private: refuse politely (once an hour).
    pub fn refuse(&self, chat: i64, user: u64) {
        let core = Arc::clone(&self.core);
        tokio::spawn(async move { core.refuse(chat, user).await });
    }
}

impl Door for BotDoor {
    fn start(&self, stop: CancellationToken) -> BoxFuture<'_, Result<Vec<DoorTask>, String>> {
        async move {
            let core = &self.core;
            let settings = &core.ctx.settings.telegram;
            if settings.allowed_accounts().is_empty() {
                tracing::warn!(
                    "telegram.allowed_users is empty: the bot answers nobody (add your numeric user id)"
                );
            }
            // Nothing here may wait on Telegram: it being unreachable must not stop the service.
            let receiver = if settings.uses_webhook() {
                DoorTask::until_stopped(
                    "webhook registration",
                    &stop,
                    run::register_webhook(Arc::clone(core)),
                )
            } else {
                DoorTask::until_stopped(
                    "receiver",
                    &stop,
                    run::poll(Arc::clone(core), Arc::clone(&self.wake)),
                )
            };
            let tasks = vec![
                receiver,
                DoorTask::until_stopped(
                    "handler",
                    &stop,
                    run::handle_stored(Arc::clone(core), Arc::clone(&self.wake)),
                ),
                DoorTask::until_stopped("tracker", &stop, run::track(Arc::clone(core))),
            ];
            tracing::info!(
                mode = if settings.uses_webhook() { "webhook" } else { "polling" },
                allowed_users = settings.allowed_users.len(),
                "Telegram bot started"
            );
            Ok(tasks)
        }
        .boxed()
    }
}
