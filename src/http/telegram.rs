//! The Telegram webhook (`telegram.mode = "webhook"`): Telegram posts each update to
//! `telegram.webhook_path` with the secret we registered in `X-Telegram-Bot-Api-Secret-Token`.
//!
//! The secret is compared in constant time before the body is read (TG-01), and an update is
//! stored before we answer 200: an error answer makes Telegram deliver it again, so a crash
//! in between loses nothing (TG-03).

use std::sync::Arc;

use bytes::Bytes;
use subtle::ConstantTimeEq;
use warp::Filter;
use warp::filters::BoxedFilter;
use warp::http::StatusCode;
use warp::reply::{Reply, Response};

use super::error::{ApiError, respond};
use super::{nothing, with, with_ctx};
use crate::bot::door::BotDoor;
use crate::bot::receive::{Received, receive};
use crate::context::AppContext;
use crate::domain::ErrorCode;

/// Updates are small JSON documents (a message with file ids); anything bigger is not one.
const MAX_UPDATE_BYTES: u64 = 1024 * 1024;
const SECRET_HEADER: &str = "x-telegram-bot-api-secret-token";

/// The webhook route, when the bot runs in webhook mode (`bot` is the app's bot door).
pub fn webhook(ctx: Arc<AppContext>, bot: Option<Arc<BotDoor>>) -> BoxedFilter<(Response,)> {
    let Some(bot) = bot.filter(|_| ctx.settings.telegram.uses_webhook()) else {
        return nothing();
    };
    let path = ctx.settings.telegram.webhook_path.clone();
    warp::path::full()
        .and_then(move |full: warp::path::FullPath| {
            let matches = full.as_str() == path;
            async move {
                if matches {
                    Ok(())
                } else {
                    Err(warp::reject::not_found())
                }
            }
        })
        .untuple_one()
        .and(warp::post())
        .and(warp::header::optional::<String>(SECRET_HEADER))
        .and(with_ctx(Arc::clone(&ctx)))
        .and_then(|secret: Option<String>, ctx: Arc<AppContext>| async move {
            check_secret(&ctx, secret.as_deref()).map_err(warp::reject::custom)
        })
        .untuple_one()
        .and(warp::body::content_length_limit(MAX_UPDATE_BYTES))
        .and(warp::body::bytes())
        .and(with_ctx(ctx))
        .and(with(bot))
        .then(accept)
        .boxed()
}

fn check_secret(ctx: &AppContext, presented: Option<&str>) -> Result<(), ApiError> {
    let expected = ctx.settings.telegram.webhook_secret.expose().as_bytes();
    let presented = presented.unwrap_or_default().as_bytes();
    if bool::from(expected.ct_eq(presented)) {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            ErrorCode::Unauthorized,
            "the webhook secret is missing or wrong",
        ))
    }
}

async fn accept(body: Bytes, ctx: Arc<AppContext>, bot: Arc<BotDoor>) -> Response {
    respond(
        async {
            let update: teloxide::types::Update = serde_json::from_slice(&body).map_err(|e| {
                ApiError::bad_request(ErrorCode::BadRequest, format!("not a Telegram update: {e}"))
            })?;
            let received = receive(&ctx, &update).await.map_err(|e| {
                tracing::warn!(error = %e, "cannot store a Telegram update; Telegram will send it again");
                ApiError::unavailable(ErrorCode::Unavailable, "cannot store the update now")
            })?;
            match received {
                // If the bot is restarting, it handles what is stored when it is back.
                Received::Stored => bot.stored(),
                Received::Refuse { chat, user } => bot.refuse(chat, user),
                Received::Duplicate | Received::Ignored(_) => {}
            }
            Ok(warp::reply::json(&serde_json::json!({"ok": true})).into_response())
        }
        .await,
    )
}
