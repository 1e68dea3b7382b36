//! Handling one stored update: links become captures, uploads imports, commands answers.
//!
//! Handling may run again for the same update (a crash before it was marked handled, or a
//! passing failure): captures and imports are idempotent, so a second run finds the same
//! items. Nothing is replied before everything the message asked for has been recorded, so a
//! retry does not repeat half of the replies.

use teloxide::types::Update;

use super::incoming::{Incoming, Request, What, classify};
use super::{BotCore, commands, replies, uploads};
use crate::clock;
use crate::db::items::Item;
use crate::db::telegram::{self, Reply};
use crate::domain::Source;
use crate::domain::text::clean;

/// Handling failed for a reason that will pass (database or pipeline unavailable, Telegram
/// unreachable, shutting down, the disk below its floor): the update stays pending and is
/// tried again.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Passing {
    pub message: String,
    /// The vault refused new work for lack of disk space: the update waits, however long that
    /// takes, and the sender is told once.
    pub waits_for_space: bool,
}

impl Passing {
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            waits_for_space: false,
        }
    }

    /// A transient refusal of the intake or the pipeline.
    pub fn refused(e: crate::domain::JobError) -> Self {
        Self {
            waits_for_space: e.code == crate::domain::ErrorCode::InsufficientStorage,
            message: e.message,
        }
    }
}

const HINT: &str =
    "Send me a link, a video or a photo and I will keep it. /help lists the commands.";

pub async fn handle(core: &BotCore, update: &Update) -> Result<(), Passing> {
    // The allow-list is checked again: it may have changed since the update was stored.
    let Incoming::Act(request) = classify(update, &core.ctx.settings.telegram.allowed_accounts())
    else {
        return Ok(());
    };
    match &request.what {
        What::Links(links) => submit_links(core, &request, links).await,
        What::Upload(upload) => uploads::handle(core, &request, upload).await,
        What::Command(command) => {
            let answer = commands::run(core, &request, command).await?;
            say(core, request.chat, &answer).await;
            Ok(())
        }
        What::Unsupported(why) => {
            say(core, request.chat, why).await;
            Ok(())
        }
        What::Chatter => {
            if request.private {
                say(core, request.chat, HINT).await;
            }
            Ok(())
        }
    }
}

async fn submit_links(core: &BotCore, request: &Request, links: &[String]) -> Result<(), Passing> {
    let owner = core.sender(request.user).await?.user.to_string();
    let mut outcomes = Vec::with_capacity(links.len());
    for link in links {
        match core
            .intake
            .submit_url(link, Source::Telegram, Some(owner.clone()))
            .await
        {
            Ok(record) => outcomes.push(Ok(record.item)),
            Err(e) if e.is_transient() => return Err(Passing::refused(e)),
            Err(e) => outcomes.push(Err((link, e))),
        }
    }
    for outcome in outcomes {
        match outcome {
            Ok(item) => follow(core, request.chat, &item).await,
            Err((link, e)) => {
                let text = format!(
                    "cannot save {}: {} [{}]",
                    clean(link, 200),
                    clean(&e.message, 300),
                    e.code.as_str()
                );
                say(core, request.chat, &text).await;
            }
        }
    }
    Ok(())
}

/// Replies about `item` and records the reply, so the tracker edits it as the item moves.
pub async fn follow(core: &BotCore, chat: i64, item: &Item) {
    let rendered = replies::render(item, &core.links);
    let message = match core.api.send(chat, &rendered.text).await {
        Ok(message) => message,
        Err(e) => {
            tracing::warn!(item = %item.id, error = %e, "cannot reply on Telegram");
            return;
        }
    };
    let reply = Reply {
        chat_id: chat,
        message_id: i64::from(message),
        item_id: item.id.to_string(),
        text: rendered.text,
        edited_at: clock::now().as_millis(),
    };
    if let Err(e) = telegram::insert_reply(&core.ctx.db, &reply, item.id, rendered.finished).await {
        tracing::warn!(item = %item.id, error = %e, "cannot record a reply; it will not be updated");
    }
}

/// Sends `text`; a reply that cannot be sent is logged, not retried (the work is recorded).
pub async fn say(core: &BotCore, chat: i64, text: &str) {
    if let Err(e) = core.api.send(chat, text).await {
        tracing::warn!(error = %e, "cannot reply on Telegram");
    }
}
