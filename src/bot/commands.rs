//! The bot's commands. `/status`, `/delete` and `/cancel` act on the sender's own items (an
//! admin's: any); `/recent` lists the sender's; `/stats` shows a member their own items and
//! usage, and an admin the whole vault.

use super::BotCore;
use super::handle::Passing;
use super::incoming::{Command, Request};
use super::replies::{self, human_bytes};
use crate::db::items::{self, Item};
use crate::domain::people::Principal;
use crate::domain::{ItemId, ItemStatus, JobError};

pub const HELP: &str = "Send me a link (YouTube, Instagram, X, TikTok or any page with a video), \
a video, or a photo, and I will keep it in the vault.\n\n\
/status <id> — where an item is\n\
/recent — your last five items\n\
/stats — what the vault holds\n\
/delete <id> — delete one of your items\n\
/cancel <id> — stop one of your items that is still being saved\n\
/help — this text";

const RECENT: u32 = 5;

pub async fn run(core: &BotCore, request: &Request, command: &Command) -> Result<String, Passing> {
    let sender = core.sender(request.user).await?;
    let owner = sender.user.to_string();
    match command {
        Command::Start | Command::Help => Ok(HELP.into()),
        Command::Unknown(name) => Ok(format!("I do not know /{name}. /help lists what I can do.")),
        Command::Status(id) => {
            let item = match find(core, &sender, id.as_deref(), "status").await? {
                Ok(item) => item,
                Err(answer) => return Ok(answer),
            };
            Ok(format!(
                "{}\n{}",
                item.id,
                replies::render(&item, &core.links).text
            ))
        }
        Command::Recent => {
            let recent = items::recent_of_owner(&core.ctx.db, &owner, RECENT)
                .await
                .map_err(|e| Passing::new(e.to_string()))?;
            if recent.is_empty() {
                return Ok("You have not sent me anything yet.".into());
            }
            Ok(recent
                .iter()
                .map(|item| format!("{}\n{}", item.id, replies::render(item, &core.links).text))
                .collect::<Vec<_>>()
                .join("\n\n"))
        }
        Command::Stats if sender.is_admin() => stats(core).await,
        Command::Stats => own_stats(core, &sender).await,
        Command::Delete(id) => {
            let item = match find(core, &sender, id.as_deref(), "delete").await? {
                Ok(item) => item,
                Err(answer) => return Ok(answer),
            };
            let deleted = match answer(core.pipeline.delete(item.id).await)? {
                Ok(deleted) => deleted,
                Err(answer) => return Ok(answer),
            };
            Ok(if deleted {
                format!("Deleted {}.", item.id)
            } else {
                format!("There is no item {} (any more).", item.id)
            })
        }
        Command::Cancel(id) => {
            let item = match find(core, &sender, id.as_deref(), "cancel").await? {
                Ok(item) => item,
                Err(answer) => return Ok(answer),
            };
            if item.status.is_terminal() {
                return Ok(format!(
                    "{} is already {}; nothing to cancel.",
                    item.id,
                    item.status.as_str()
                ));
            }
            let cancelled = match answer(core.pipeline.cancel(item.id).await)? {
                Ok(cancelled) => cancelled,
                Err(answer) => return Ok(answer),
            };
            Ok(if cancelled {
                format!("Cancelled {}.", item.id)
            } else {
                format!("{} had already finished; nothing to cancel.", item.id)
            })
        }
    }
}

/// The item named by `id` if the sender may see it (their own; an admin's: any), or the
/// answer that explains why there is none. Someone else's item reads as no item at all.
async fn find(
    core: &BotCore,
    sender: &Principal,
    id: Option<&str>,
    command: &str,
) -> Result<Result<Item, String>, Passing> {
    let Some(id) = id else {
        return Ok(Err(format!(
            "Which item? Send /{command} <id> (the id is in /recent)."
        )));
    };
    let Ok(parsed) = ItemId::parse(id) else {
        return Ok(Err(format!("'{id}' is not an item id.")));
    };
    match items::get(&core.ctx.db, parsed).await {
        Ok(Some(item)) if sender.may_see(item.owner.as_deref()) => Ok(Ok(item)),
        Ok(_) => Ok(Err(format!("There is no item {parsed}."))),
        Err(e) => Err(Passing::new(e.to_string())),
    }
}

/// The Pipeline's answer: a refusal that will pass is `Passing` (the update is tried again),
/// any other is what the user is told.
fn answer<R>(answer: Result<R, JobError>) -> Result<Result<R, String>, Passing> {
    match answer {
        Ok(value) => Ok(Ok(value)),
        Err(e) if e.is_transient() => Err(Passing::refused(e)),
        Err(e) => Ok(Err(format!(
            "That did not work: {} [{}]",
            e.message,
            e.code.as_str()
        ))),
    }
}

/// "N stored, N being saved, N failed, N cancelled" of counts by status.
fn by_status(counts: &[(ItemStatus, u64)]) -> String {
    let count = |status: ItemStatus| {
        counts
            .iter()
            .find(|(s, _)| *s == status)
            .map_or(0, |(_, n)| *n)
    };
    let working =
        count(ItemStatus::Queued) + count(ItemStatus::Downloading) + count(ItemStatus::Processing);
    format!(
        "{} stored, {working} being saved, {} failed, {} cancelled",
        count(ItemStatus::Completed),
        count(ItemStatus::Failed),
        count(ItemStatus::Cancelled),
    )
}

/// A member's /stats: their own items and usage (the vault's totals are not theirs to know).
async fn own_stats(core: &BotCore, sender: &Principal) -> Result<String, Passing> {
    let db = &core.ctx.db;
    let counts = items::count_by_status_of(db, &sender.user.to_string())
        .await
        .map_err(|e| Passing::new(e.to_string()))?;
    let standing = crate::db::quota::standing_of(db, sender.user)
        .await
        .map_err(|e| Passing::new(e.to_string()))?;
    let quota = match standing.quota_bytes {
        Some(quota) => format!(" of your {} quota", human_bytes(quota)),
        None => String::new(),
    };
    Ok(format!(
        "your items: {}\nyou keep: {}{quota}",
        by_status(&counts),
        human_bytes(standing.usage_bytes),
    ))
}

/// An admin's /stats: the whole vault.
async fn stats(core: &BotCore) -> Result<String, Passing> {
    let counts = items::count_by_status(&core.ctx.db)
        .await
        .map_err(|e| Passing::new(e.to_string()))?;
    let storage = core.storage.stats().await.map_err(Passing::refused)?;
    let s = &storage.stored;
    Ok(format!(
        "items: {}\n\
         stored: {} ({} videos {}, {} images {}, renditions {}, thumbnails {}, subtitles {}; work in progress {})\n\
         disk: {} free of {}",
        by_status(&counts),
        human_bytes(s.stored_bytes()),
        s.videos.files,
        human_bytes(s.videos.bytes),
        s.images.files,
        human_bytes(s.images.bytes),
        human_bytes(s.renditions.bytes),
        human_bytes(s.thumbnails.bytes),
        human_bytes(s.subtitles.bytes),
        human_bytes(storage.temp.bytes),
        human_bytes(storage.disk_free_bytes),
        human_bytes(storage.disk_total_bytes),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_read_as_stored_saving_failed_cancelled() {
        let counts = [
            (ItemStatus::Completed, 4),
            (ItemStatus::Queued, 1),
            (ItemStatus::Downloading, 2),
            (ItemStatus::Processing, 3),
            (ItemStatus::Cancelled, 5),
        ];
        assert_eq!(
            by_status(&counts),
            "4 stored, 6 being saved, 0 failed, 5 cancelled"
        );
    }

    #[test]
    fn help_lists_every_command() {
        for command in [
            "/status", "/recent", "/stats", "/delete", "/cancel", "/help",
        ] {
            assert!(HELP.contains(command), "{command} missing from the help");
        }
    }

    #[test]
    fn a_passing_pipeline_refusal_is_tried_again_and_any_other_is_told() {
        use crate::domain::ErrorCode;
        let passing = answer::<bool>(Err(JobError::new(ErrorCode::Unavailable, "restarting")));
        assert!(matches!(passing, Err(Passing { message, .. }) if message == "restarting"));
        let told = answer::<bool>(Err(JobError::new(ErrorCode::NotFound, "no item x")));
        assert_eq!(
            told.unwrap(),
            Err("That did not work: no item x [not_found]".into())
        );
    }
}
