//! What an update asks of the bot, and whether its sender may ask (THREATS TG-02).
//!
//! Only new messages act. Edits, channel posts, messages sent on behalf of a chat (no person
//! behind them) and every other kind of update are ignored. In groups a message counts only
//! when its sender is on the allow-list, and strangers there are ignored silently; in a private
//! chat a stranger is told, once, that this bot is not for them.

use teloxide::types::{Message, Update, UpdateKind};

use crate::domain::text::{clean, find_links};

/// The most links one message may submit (a pasted list is fine, a flood is not).
pub const MAX_LINKS_PER_MESSAGE: usize = 20;

#[derive(Debug, Clone, PartialEq)]
pub enum Incoming {
    Ignore(&'static str),
    /// A private message from someone not on the allow-list.
    Stranger {
        chat: i64,
        user: u64,
    },
    Act(Request),
}

/// An allowed sender's message.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub chat: i64,
    pub user: u64,
    pub message: i32,
    pub private: bool,
    pub what: What,
}

#[derive(Debug, Clone, PartialEq)]
pub enum What {
    Command(Command),
    Links(Vec<String>),
    Upload(Upload),
    /// A document that is not a video, a sticker, a voice message…
    Unsupported(&'static str),
    /// Text without links.
    Chatter,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Start,
    Help,
    Status(Option<String>),
    Recent,
    Stats,
    Delete(Option<String>),
    Cancel(Option<String>),
    Unknown(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UploadKind {
    Video,
    Photo,
}

/// A file sent to the bot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upload {
    pub kind: UploadKind,
    pub file_id: String,
    /// Stable across messages and bots: the same file sent twice is one item.
    pub unique_id: String,
    pub size: u64,
    /// A file name extension for the download (the pipeline decides what it really is).
    pub extension: &'static str,
    pub title: Option<String>,
    /// What people call it, for replies ("video", "photo").
    pub label: &'static str,
}

pub fn classify(update: &Update, allowed: &[u64]) -> Incoming {
    let UpdateKind::Message(message) = &update.kind else {
        return Incoming::Ignore("not a new message");
    };
    let Some(user) = message.from.as_ref() else {
        return Incoming::Ignore("no person sent it");
    };
    // Anonymous group admins and linked channels speak as the chat itself: `sender_chat` is
    // set, and `from` names a stand-in account, not a person who could be on the list.
    if message.sender_chat.is_some() || user.is_bot {
        return Incoming::Ignore("sent on behalf of a chat or by a bot");
    }
    let private = message.chat.is_private();
    if !allowed.contains(&user.id.0) {
        return if private {
            Incoming::Stranger {
                chat: message.chat.id.0,
                user: user.id.0,
            }
        } else {
            Incoming::Ignore("sender not on the allow-list")
        };
    }
    Incoming::Act(Request {
        chat: message.chat.id.0,
        user: user.id.0,
        message: message.id.0,
        private,
        what: what(message),
    })
}

fn what(message: &Message) -> What {
    if let Some(upload) = upload(message) {
        return upload;
    }
    let Some(text) = message.text() else {
        return What::Chatter;
    };
    if let Some(command) = text.strip_prefix('/') {
        return What::Command(parse_command(command));
    }
    let mut links = find_links(text);
    // Hidden links ("text links") carry their URL in an entity, not in the text.
    for entity in message.entities().unwrap_or_default() {
        if let teloxide::types::MessageEntityKind::TextLink { url } = &entity.kind {
            links.push(url.to_string());
        }
    }
    links.dedup();
    links.truncate(MAX_LINKS_PER_MESSAGE);
    if links.is_empty() {
        What::Chatter
    } else {
        What::Links(links)
    }
}

fn upload(message: &Message) -> Option<What> {
    let title = message
        .caption()
        .map(|c| clean(c, 200))
        .filter(|c| !c.is_empty());
    let video = |file: &teloxide::types::FileMeta,
                 name: Option<&String>,
                 mime: Option<&str>,
                 label: &'static str| {
        What::Upload(Upload {
            kind: UploadKind::Video,
            file_id: file.id.0.clone(),
            unique_id: file.unique_id.0.clone(),
            size: u64::from(file.size),
            extension: video_extension(name.map(String::as_str), mime),
            title: title
                .clone()
                .or_else(|| name.map(|n| clean(n, 200)).filter(|n| !n.is_empty())),
            label,
        })
    };
    if let Some(v) = message.video() {
        let mime = v.mime_type.as_ref().map(|m| m.essence_str());
        return Some(video(&v.file, v.file_name.as_ref(), mime, "video"));
    }
    if let Some(a) = message.animation() {
        let mime = a.mime_type.as_ref().map(|m| m.essence_str());
        return Some(video(&a.file, a.file_name.as_ref(), mime, "animation"));
    }
    if let Some(n) = message.video_note() {
        return Some(video(&n.file, None, None, "video note"));
    }
    if let Some(d) = message.document() {
        let mime = d.mime_type.as_ref().map(|m| m.essence_str());
        return Some(if mime.is_some_and(|m| m.starts_with("video/")) {
            video(&d.file, d.file_name.as_ref(), mime, "video file")
        } else {
            What::Unsupported("only videos and photos can be stored; this file is neither")
        });
    }
    if let Some(sizes) = message.photo() {
        // Telegram sends every size it made; the largest is the photo as it was sent.
        let largest = sizes
            .iter()
            .max_by_key(|p| u64::from(p.width) * u64::from(p.height))?;
        return Some(What::Upload(Upload {
            kind: UploadKind::Photo,
            file_id: largest.file.id.0.clone(),
            unique_id: largest.file.unique_id.0.clone(),
            size: u64::from(largest.file.size),
            // Telegram re-encodes every photo as JPEG.
            extension: "jpg",
            title,
            label: "photo",
        }));
    }
    if message.voice().is_some() || message.audio().is_some() || message.sticker().is_some() {
        return Some(What::Unsupported(
            "only videos and photos can be stored; voice, audio and stickers are not",
        ));
    }
    None
}

fn video_extension(name: Option<&str>, mime: Option<&str>) -> &'static str {
    let from_name = name
        .and_then(|n| n.rsplit_once('.'))
        .map(|(_, ext)| ext.to_ascii_lowercase());
    match (from_name.as_deref(), mime) {
        (Some("mov"), _) | (_, Some("video/quicktime")) => "mov",
        (Some("webm"), _) | (_, Some("video/webm")) => "webm",
        (Some("mkv"), _) | (_, Some("video/x-matroska")) => "mkv",
        (Some("avi"), _) | (_, Some("video/x-msvideo")) => "avi",
        _ => "mp4",
    }
}

/// `status@MyBot abc` → `Status(Some("abc"))`.
fn parse_command(text: &str) -> Command {
    let mut words = text.split_whitespace();
    let head = words.next().unwrap_or_default();
    let name = head.split_once('@').map_or(head, |(name, _)| name);
    let argument = words.next().map(|w| clean(w, 64));
    match name.to_ascii_lowercase().as_str() {
        "start" => Command::Start,
        "help" => Command::Help,
        "status" => Command::Status(argument),
        "recent" => Command::Recent,
        "stats" => Command::Stats,
        "delete" => Command::Delete(argument),
        "cancel" => Command::Cancel(argument),
        _ => Command::Unknown(clean(name, 32)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    // Parsed from text, as updates arrive: teloxide's update types borrow from their input
    // and do not all deserialize from a `Value`.
    fn update(message: serde_json::Value) -> Update {
        serde_json::from_str(&json!({"update_id": 1, "message": message}).to_string()).unwrap()
    }

    fn message(from: u64, chat: serde_json::Value, extra: serde_json::Value) -> serde_json::Value {
        let mut m = json!({
            "message_id": 10,
            "date": 1_700_000_000,
            "chat": chat,
            "from": {"id": from, "is_bot": false, "first_name": "A"},
        });
        m.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        m
    }

    fn private(id: u64) -> serde_json::Value {
        json!({"id": id, "type": "private", "first_name": "A"})
    }

    fn group() -> serde_json::Value {
        json!({"id": -100, "type": "group", "title": "G"})
    }

    #[test]
    fn links_from_an_allowed_user_become_a_request() {
        let u = update(message(
            5,
            private(5),
            json!({"text": "two: https://a.example/1 and (https://b.example/2)."}),
        ));
        let Incoming::Act(request) = classify(&u, &[5]) else {
            panic!("not acted on")
        };
        assert_eq!(
            request.what,
            What::Links(vec![
                "https://a.example/1".into(),
                "https://b.example/2".into()
            ])
        );
        assert_eq!((request.chat, request.user, request.message), (5, 5, 10));
    }

    #[test]
    fn strangers_are_refused_in_private_and_ignored_in_groups() {
        let text = json!({"text": "https://a.example/1"});
        assert_eq!(
            classify(&update(message(6, private(6), text.clone())), &[5]),
            Incoming::Stranger { chat: 6, user: 6 }
        );
        assert!(matches!(
            classify(&update(message(6, group(), text.clone())), &[5]),
            Incoming::Ignore(_)
        ));
        // An empty allow-list lets nobody in.
        assert!(matches!(
            classify(&update(message(5, private(5), text.clone())), &[]),
            Incoming::Stranger { .. }
        ));
        // In a group, a listed sender counts.
        assert!(matches!(
            classify(&update(message(5, group(), text)), &[5]),
            Incoming::Act(_)
        ));
    }

    #[test]
    fn channel_posts_and_chat_voices_are_ignored() {
        let post: Update = serde_json::from_str(
            &json!({"update_id": 2, "channel_post": {
            "message_id": 1, "date": 1_700_000_000,
            "chat": {"id": -1001, "type": "channel", "title": "C"},
            "text": "https://a.example/1"}})
            .to_string(),
        )
        .unwrap();
        assert!(matches!(classify(&post, &[5]), Incoming::Ignore(_)));
        let mut anonymous = message(5, group(), json!({"text": "https://a.example/1"}));
        anonymous["sender_chat"] = json!({"id": -100, "type": "group", "title": "G"});
        assert!(matches!(
            classify(&update(anonymous), &[5]),
            Incoming::Ignore(_)
        ));
    }

    #[test]
    fn commands_are_parsed_with_their_argument() {
        let cmd = |text: &str| {
            let u = update(message(5, private(5), json!({"text": text})));
            match classify(&u, &[5]) {
                Incoming::Act(Request {
                    what: What::Command(c),
                    ..
                }) => c,
                other => panic!("{other:?}"),
            }
        };
        assert_eq!(
            cmd("/status@vault_bot abc"),
            Command::Status(Some("abc".into()))
        );
        assert_eq!(cmd("/delete"), Command::Delete(None));
        assert_eq!(cmd("/RECENT"), Command::Recent);
        assert_eq!(cmd("/nope"), Command::Unknown("nope".into()));
    }

    #[test]
    fn videos_documents_and_photos_are_uploads() {
        let file = |id: &str, size: u32| json!({"file_id": id, "file_unique_id": format!("u{id}"), "file_size": size});
        let mut video = file("v", 1000);
        video.as_object_mut().unwrap().extend(
            json!({"width": 1, "height": 1, "duration": 1, "mime_type": "video/quicktime"})
                .as_object()
                .unwrap()
                .clone(),
        );
        let u = update(message(
            5,
            private(5),
            json!({"video": video, "caption": "My clip"}),
        ));
        let Incoming::Act(Request {
            what: What::Upload(up),
            ..
        }) = classify(&u, &[5])
        else {
            panic!("not an upload")
        };
        assert_eq!(
            (up.kind, up.unique_id.as_str(), up.size, up.extension),
            (UploadKind::Video, "uv", 1000, "mov")
        );
        assert_eq!(up.title.as_deref(), Some("My clip"));

        let mut doc = file("d", 5);
        doc["mime_type"] = json!("application/pdf");
        let u = update(message(5, private(5), json!({"document": doc})));
        assert!(matches!(
            classify(&u, &[5]),
            Incoming::Act(Request {
                what: What::Unsupported(_),
                ..
            })
        ));

        let sizes: Vec<_> = [(90, 51), (1280, 720), (320, 180)]
            .iter()
            .map(|(w, h)| {
                let mut p = file(&format!("p{w}"), *w);
                p["width"] = json!(w);
                p["height"] = json!(h);
                p
            })
            .collect();
        let u = update(message(5, private(5), json!({"photo": sizes})));
        let Incoming::Act(Request {
            what: What::Upload(photo),
            ..
        }) = classify(&u, &[5])
        else {
            panic!("not an upload")
        };
        assert_eq!(
            (photo.kind, photo.file_id.as_str(), photo.extension),
            (UploadKind::Photo, "p1280", "jpg")
        );
    }
}
