//! The Bot API client: teloxide's requests, behind the few calls the bot makes, with
//! Telegram's flood control honoured for every call (a 429's `retry_after` pauses them all).

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use teloxide::net::Download;
use teloxide::payloads::{GetUpdatesSetters, SetWebhookSetters};
use teloxide::prelude::Requester;
use teloxide::types::{AllowedUpdate, ChatId, FileId, MessageId, Update};
use teloxide::{ApiError, Bot, RequestError};
use tokio::io::AsyncWriteExt;
use tokio::time::Instant;

use crate::settings::TelegramSettings;

/// How often a call is retried after Telegram asked us to wait.
const FLOOD_RETRIES: u32 = 3;

#[derive(Debug, thiserror::Error)]
pub enum TelegramError {
    #[error("Telegram refused: {0}")]
    Refused(String),
    #[error("cannot reach the Bot API: {0}")]
    Unreachable(String),
    #[error("the file is larger than {0} bytes")]
    TooLarge(u64),
    #[error("cannot write the download: {0}")]
    Io(#[from] std::io::Error),
}

impl TelegramError {
    /// Worth another try later (network trouble, our disk), rather than a final answer.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Unreachable(_) | Self::Io(_))
    }
}

fn convert(e: RequestError) -> TelegramError {
    match e {
        RequestError::Api(api) => TelegramError::Refused(api.to_string()),
        RequestError::MigrateToChatId(chat) => {
            TelegramError::Refused(format!("the group moved to chat {chat}"))
        }
        other => TelegramError::Unreachable(other.to_string()),
    }
}

/// What became of an edit.
#[derive(Debug, PartialEq, Eq)]
pub enum Edited {
    Done,
    /// The message already says this.
    Unchanged,
    /// The message (or chat) is gone: nothing left to edit.
    Gone,
}

#[derive(Clone)]
pub struct TelegramApi {
    bot: Bot,
    /// For file downloads, which may take much longer than a request.
    downloads: Bot,
    paused_until: Arc<Mutex<Option<Instant>>>,
}

impl TelegramApi {
    pub fn new(settings: &TelegramSettings) -> Result<Self, String> {
        let client = |timeout: Duration| {
            teloxide::net::default_reqwest_settings()
                .timeout(timeout)
                .build()
                .map_err(|e| format!("cannot build the Telegram client: {e}"))
        };
        // A long poll holds the request open for poll_timeout_secs; leave room on top.
        let requests = client(Duration::from_secs(settings.poll_timeout_secs + 15))?;
        let downloads = client(Duration::from_secs(600))?;
        let token = settings.token.expose();
        let mut bot = Bot::with_client(token, requests);
        let mut download_bot = Bot::with_client(token, downloads);
        // teloxide speaks reqwest 0.12, whose `Url` is the same `url` crate's type as ours.
        if let Some(url) = &settings.api_url {
            bot = bot.set_api_url(url.clone());
            download_bot = download_bot.set_api_url(url.clone());
        }
        Ok(Self {
            bot,
            downloads: download_bot,
            paused_until: Arc::new(Mutex::new(None)),
        })
    }

    /// Runs `call`, waiting out any flood pause first and after each 429.
    async fn call<T, F, Fut>(&self, mut call: F) -> Result<T, TelegramError>
    where
        F: FnMut(Bot) -> Fut,
        Fut: std::future::Future<Output = Result<T, RequestError>>,
    {
        let mut retries = 0;
        loop {
            let pause = *self.paused_until.lock().expect("pause lock");
            if let Some(until) = pause {
                tokio::time::sleep_until(until).await;
            }
            match call(self.bot.clone()).await {
                Err(RequestError::RetryAfter(wait)) if retries < FLOOD_RETRIES => {
                    retries += 1;
                    let until = Instant::now() + wait.duration();
                    tracing::warn!(wait_secs = wait.seconds(), "Telegram asked us to slow down");
                    let mut paused = self.paused_until.lock().expect("pause lock");
                    *paused = Some(paused.map_or(until, |p| p.max(until)));
                }
                other => return other.map_err(convert),
            }
        }
    }

    pub async fn send(&self, chat: i64, text: &str) -> Result<i32, TelegramError> {
        let text = text.to_string();
        self.call(|bot| {
            let text = text.clone();
            async move { bot.send_message(ChatId(chat), text).await }
        })
        .await
        .map(|message| message.id.0)
    }

    pub async fn edit(&self, chat: i64, message: i32, text: &str) -> Result<Edited, TelegramError> {
        let text = text.to_string();
        let result = self
            .call(|bot| {
                let text = text.clone();
                async move {
                    bot.edit_message_text(ChatId(chat), MessageId(message), text)
                        .await
                }
            })
            .await;
        match result {
            Ok(_) => Ok(Edited::Done),
            Err(TelegramError::Refused(reason)) => {
                if reason == ApiError::MessageNotModified.to_string() {
                    Ok(Edited::Unchanged)
                } else if [
                    ApiError::MessageToEditNotFound,
                    ApiError::ChatNotFound,
                    ApiError::BotBlocked,
                    ApiError::MessageIdInvalid,
                ]
                .iter()
                .any(|gone| gone.to_string() == reason)
                {
                    Ok(Edited::Gone)
                } else {
                    Err(TelegramError::Refused(reason))
                }
            }
            Err(e) => Err(e),
        }
    }

    /// Updates after `offset` (which confirms everything before it to Telegram).
    pub async fn updates(
        &self,
        offset: i32,
        timeout_secs: u32,
    ) -> Result<Vec<Update>, TelegramError> {
        self.call(|bot| async move {
            bot.get_updates()
                .offset(offset)
                .timeout(timeout_secs)
                .allowed_updates([AllowedUpdate::Message])
                .await
        })
        .await
    }

    /// Polling and a webhook exclude each other: polling starts by removing any webhook.
    pub async fn delete_webhook(&self) -> Result<(), TelegramError> {
        self.call(|bot| async move { bot.delete_webhook().await })
            .await
            .map(|_| ())
    }

    pub async fn set_webhook(&self, url: &url::Url, secret: &str) -> Result<(), TelegramError> {
        let secret = secret.to_string();
        self.call(|bot| {
            let (url, secret) = (url.clone(), secret.clone());
            async move {
                bot.set_webhook(url)
                    .secret_token(secret)
                    .allowed_updates([AllowedUpdate::Message])
                    .await
            }
        })
        .await
        .map(|_| ())
    }

    /// Downloads a file into `dest` (through `dest.part`, renamed when complete and synced),
    /// refusing more than `max_bytes`; returns its size.
    pub async fn download(
        &self,
        file_id: &str,
        dest: &Path,
        max_bytes: u64,
    ) -> Result<u64, TelegramError> {
        let file_id = FileId(file_id.to_string());
        let file = self
            .call(|bot| {
                let file_id = file_id.clone();
                async move { bot.get_file(file_id).await }
            })
            .await?;
        if u64::from(file.meta.size) > max_bytes {
            return Err(TelegramError::TooLarge(max_bytes));
        }
        let partial = dest.with_extension("part");
        let mut out = tokio::fs::File::create(&partial).await?;
        let mut stream = self.downloads.download_file_stream(&file.path);
        let mut written = 0u64;
        let result = async {
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(|e| TelegramError::Unreachable(e.to_string()))?;
                written += chunk.len() as u64;
                if written > max_bytes {
                    return Err(TelegramError::TooLarge(max_bytes));
                }
                out.write_all(&chunk).await?;
            }
            out.sync_all().await?;
            Ok(())
        }
        .await;
        if let Err(e) = result {
            let _ = tokio::fs::remove_file(&partial).await;
            return Err(e);
        }
        tokio::fs::rename(&partial, dest).await?;
        Ok(written)
    }
}
