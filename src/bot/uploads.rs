//! Videos and photos sent to the bot: fetched with getFile into `temp/uploads/` and imported
//! through the pipeline (probe, convert, thumbnails; no yt-dlp). The same file sent again
//! (Telegram's `file_unique_id`) is the same item.

use std::path::PathBuf;

use super::BotCore;
use super::api::TelegramError;
use super::handle::{Passing, follow, say};
use super::incoming::{Request, Upload, UploadKind};
use super::replies::human_bytes;
use crate::db::imports::{ImportPayload, NewImport};
use crate::db::record;
use crate::domain::{ItemKind, Source};

pub async fn handle(core: &BotCore, request: &Request, upload: &Upload) -> Result<(), Passing> {
    let settings = &core.ctx.settings;
    let max_bytes = (settings.telegram.max_upload_mb * 1024 * 1024).min(settings.max_video_bytes());
    if upload.size > max_bytes {
        say(core, request.chat, &too_large(upload, max_bytes)).await;
        return Ok(());
    }
    let owner = core.sender(request.user).await?.user.to_string();
    // Per owner: the same video forwarded by two people is two items. (Releases before
    // people keyed uploads by the file alone; such an item is found if it is the sender's.)
    let key = format!("telegram:{owner}:{}", upload.unique_id);
    let legacy = format!("telegram:{}", upload.unique_id);
    let earlier = match record::find_import(&core.ctx.db, &key).await {
        Ok(None) => record::find_import(&core.ctx.db, &legacy)
            .await
            .map(|found| found.filter(|item| item.owner.as_deref() == Some(owner.as_str()))),
        found => found,
    };
    match earlier {
        Ok(Some(item)) => {
            follow(core, request.chat, &item).await;
            return Ok(());
        }
        Ok(None) => {}
        Err(e) => return Err(Passing::new(e.to_string())),
    }
    // Below the free-space floor, or at the sender's quota, the import would be refused
    // anyway: not a byte is fetched.
    core.ctx
        .space
        .admit(core.ctx.media.path())
        .map_err(Passing::refused)?;
    match crate::db::quota::limited(&core.ctx.db, &owner).await {
        Ok(Some(standing)) if standing.is_full() => {
            let refusal = standing.refusal();
            say(
                core,
                request.chat,
                &format!("I cannot keep it: {} [{}]", refusal.message, refusal.code),
            )
            .await;
            return Ok(());
        }
        Ok(_) => {}
        Err(e) => return Err(Passing::new(e.to_string())),
    }
    let dest = upload_path(core, upload).map_err(|e| Passing::new(e.to_string()))?;
    match core.api.download(&upload.file_id, &dest, max_bytes).await {
        Ok(bytes) => {
            tracing::info!(file = %dest.display(), bytes, kind = upload.label, "fetched a Telegram upload")
        }
        Err(TelegramError::TooLarge(_)) => {
            say(core, request.chat, &too_large(upload, max_bytes)).await;
            return Ok(());
        }
        // The public Bot API answers getFile for files above 20 MB with "file is too big".
        Err(TelegramError::Refused(reason)) if reason.contains("too big") => {
            say(core, request.chat, &too_large(upload, max_bytes)).await;
            return Ok(());
        }
        Err(e) if e.is_transient() => return Err(Passing::new(e.to_string())),
        Err(e) => {
            say(
                core,
                request.chat,
                &format!("I could not fetch the {} from Telegram: {e}", upload.label),
            )
            .await;
            return Ok(());
        }
    }
    let import = NewImport {
        key,
        source: Source::Telegram,
        owner: Some(owner),
        title: upload
            .title
            .clone()
            .unwrap_or_else(|| format!("Telegram {}", upload.label)),
        kind: match upload.kind {
            UploadKind::Video => ItemKind::Video,
            UploadKind::Photo => ItemKind::Image,
        },
        file: ImportPayload {
            file: dest.clone(),
            found_at: dest.clone(),
            owned: true,
        },
        max_attempts: settings.queue.max_attempts.get(),
    };
    match core.intake.import_file(import).await {
        Ok(record) => {
            follow(core, request.chat, &record.item).await;
            Ok(())
        }
        Err(e) if e.is_transient() => Err(Passing::refused(e)),
        Err(e) => {
            let _ = tokio::fs::remove_file(&dest).await;
            say(
                core,
                request.chat,
                &format!(
                    "I could not save the {}: {} [{}]",
                    upload.label,
                    e.message,
                    e.code.as_str()
                ),
            )
            .await;
            Ok(())
        }
    }
}

/// `<media_root>/temp/uploads/<file_unique_id>.<ext>`: one name per Telegram file, so a
/// retried download replaces its own earlier attempt.
fn upload_path(core: &BotCore, upload: &Upload) -> std::io::Result<PathBuf> {
    let dir = core.ctx.media.uploads_dir();
    std::fs::create_dir_all(&dir)?;
    // file_unique_id is Telegram's base64url; keep it to that alphabet whatever arrives.
    let name: String = upload
        .unique_id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
        .take(64)
        .collect();
    Ok(dir.join(format!("tg-{name}.{}", upload.extension)))
}

fn too_large(upload: &Upload, max_bytes: u64) -> String {
    format!(
        "This {} is {}, more than the {} a bot can download here. Telegram's public Bot API \
         lets bots download files of at most 20 MB. Send me a link to it instead, or have the \
         operator run a self-hosted Bot API server (telegram-bot-api, which lifts the limit to \
         2 GB) and set telegram.api_url and telegram.max_upload_mb.",
        upload.label,
        human_bytes(upload.size),
        human_bytes(max_bytes)
    )
}
