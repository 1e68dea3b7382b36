//! Keeps the bot's replies true: each reply about an item is edited when what it would say
//! changes, at most once per `EDIT_INTERVAL` per message (Telegram throttles edits), until it
//! tells the end. Replies are read from the database, so they keep following their items
//! across restarts.

use std::time::Duration;

use super::BotCore;
use super::api::Edited;
use super::replies::render;
use crate::clock;
use crate::db::telegram::{self, Reply};
use crate::db::{DbError, items};

pub const EDIT_INTERVAL: Duration = Duration::from_secs(3);
/// Replies looked at per tick; the rest wait for the next one.
const BATCH: u32 = 50;

pub async fn tick(core: &BotCore) -> Result<(), DbError> {
    let db = &core.ctx.db;
    let due = telegram::open_replies(db, clock::now().minus(EDIT_INTERVAL), BATCH).await?;
    for reply in due {
        let Ok(item_id) = reply.item() else {
            finish(core, &reply, &reply.text).await?;
            continue;
        };
        // A deleted item takes its replies with it (ON DELETE CASCADE).
        let Some(item) = items::get(db, item_id).await? else {
            continue;
        };
        let rendered = render(&item, &core.links);
        if rendered.text == reply.text {
            if rendered.finished {
                finish(core, &reply, &reply.text).await?;
            }
            continue;
        }
        // Telegram's message ids are 32-bit; a row holding more was not written by us.
        let Ok(message_id) = i32::try_from(reply.message_id) else {
            finish(core, &reply, &reply.text).await?;
            continue;
        };
        match core
            .api
            .edit(reply.chat_id, message_id, &rendered.text)
            .await
        {
            Ok(Edited::Done | Edited::Unchanged) => {
                telegram::update_reply(
                    db,
                    reply.chat_id,
                    reply.message_id,
                    &rendered.text,
                    clock::now(),
                    rendered.finished,
                )
                .await?;
            }
            Ok(Edited::Gone) => finish(core, &reply, &reply.text).await?,
            Err(e) if e.is_transient() => {
                tracing::debug!(error = %e, "cannot edit replies now; trying again later");
                return Ok(());
            }
            Err(e) => {
                tracing::warn!(item = %item.id, error = %e, "Telegram refused an edit; the reply stops following its item");
                finish(core, &reply, &reply.text).await?;
            }
        }
    }
    Ok(())
}

async fn finish(core: &BotCore, reply: &Reply, text: &str) -> Result<(), DbError> {
    telegram::update_reply(
        &core.ctx.db,
        reply.chat_id,
        reply.message_id,
        text,
        clock::now(),
        true,
    )
    .await
}
