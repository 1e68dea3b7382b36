//! The Telegram door: send the bot a link, a video or a photo and it lands in the vault, with
//! a reply that follows the item until it is stored (or says why not).
//!
//! teloxide is used as the Bot API client only. Its polling dispatcher confirms updates to
//! Telegram before handlers finish, and its webhook listener is axum-only with a secret check
//! that is not constant-time (THREATS fact 7), so the door is built here:
//!
//! - `receive`: every update (from our long-polling loop or the webhook route) is classified;
//!   an allowed sender's update is stored, idempotent on its `update_id`, *before* Telegram is
//!   told it arrived (the next getUpdates offset, or the webhook's 200). A crash in between
//!   means redelivery, and redelivery finds the stored row: exactly one item (TG-03).
//! - `handle`: stored updates are handled in order, each once: links go through `intake` like
//!   API captures (same validation, SSRF policy and dedup), uploads are fetched with getFile
//!   and imported through the pipeline without yt-dlp, commands are answered.
//! - `tracker`: replies about items are edited as the items move (at most every 3 s each).
//!
//! `door::BotDoor` runs these as the tasks of a `DoorActor` (`run`), restarted like any actor;
//! the bot reaches the Pipeline and Storage only through their handles.

pub mod api;
pub mod commands;
pub mod door;
pub mod handle;
pub mod incoming;
pub mod receive;
pub mod replies;
pub mod run;
pub mod tracker;
pub mod uploads;

use std::sync::Arc;

use crate::actors::{Handles, PipelineHandle, StorageHandle};
use crate::context::AppContext;
use crate::domain::people::Principal;
use crate::intake::Intake;

impl BotCore {
    /// Who a Telegram account acts as: the vault user linked to it (`telegram.links`,
    /// `prsnl user link-telegram`), or else a member of its own (`telegram-<id>`), made the
    /// first time it sends something: each account keeps a private library, as before people
    /// existed, and an admin can move it to a real user later (`prsnl user remove
    /// telegram-<id> --transfer-to NAME`).
    pub async fn sender(&self, user: u64) -> Result<Principal, handle::Passing> {
        let account = i64::try_from(user)
            .map_err(|_| handle::Passing::new(String::from("a Telegram user id out of range")))?;
        let found = crate::db::people::telegram_user(&self.ctx.db, account, crate::clock::now())
            .await
            .map_err(|e| handle::Passing::new(e.to_string()))?;
        Ok(Principal {
            user: found.id,
            role: found.role,
        })
    }

    /// Tells a stranger, once an hour at most, that the bot is not for them.
    pub async fn refuse(&self, chat: i64, user: u64) {
        if !self.refusals.due(user, std::time::Instant::now()) {
            return;
        }
        tracing::info!(
            user,
            "refused a Telegram user who is not on telegram.allowed_users"
        );
        if let Err(e) = self.api.send(chat, receive::REFUSAL).await {
            tracing::warn!(error = %e, "cannot send a refusal");
        }
    }
}

/// What the bot's tasks share.
pub struct BotCore {
    pub ctx: Arc<AppContext>,
    pub intake: Intake,
    pub pipeline: PipelineHandle,
    pub storage: StorageHandle,
    pub api: api::TelegramApi,
    pub links: replies::Links,
    pub refusals: receive::Refusals,
    /// Updates whose sender was told that the vault is out of disk space (told once per
    /// update and process, not at every retry).
    pub told_out_of_space: std::sync::Mutex<std::collections::HashSet<i64>>,
}

impl BotCore {
    pub fn new(ctx: Arc<AppContext>, handles: &Handles) -> Result<Self, String> {
        let api = api::TelegramApi::new(&ctx.settings.telegram)?;
        let links = replies::Links {
            public_base_url: ctx
                .settings
                .server
                .public_base_url
                .as_ref()
                .map_or_else(String::new, ToString::to_string),
        };
        Ok(Self {
            intake: Intake::new(Arc::clone(&ctx), handles.pipeline.clone()),
            pipeline: handles.pipeline.clone(),
            storage: handles.storage.clone(),
            ctx,
            api,
            links,
            refusals: receive::Refusals::new(std::time::Duration::from_secs(3600)),
            told_out_of_space: std::sync::Mutex::default(),
        })
    }
}
