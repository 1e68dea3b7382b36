//! A fake Bot API server on loopback: the bot under test is pointed at it through
//! `telegram.api_url` (Telegram itself is unreachable here). It speaks the few methods the bot
//! uses, the way Telegram does (long-polled getUpdates confirmed by offset, file downloads
//! under /file/bot<token>/), and records every call for the tests to inspect.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::sync::Notify;
use warp::Filter;

pub const TOKEN: &str = "123456:TEST-token_for-the-fake";
pub const BOT_USER_ID: u64 = 4242;

#[derive(Debug, Clone)]
pub struct Call {
    pub method: String,
    pub params: Value,
    pub at: Instant,
}

#[derive(Default)]
struct State {
    /// Updates not yet confirmed (an offset past them removes them).
    pending: Vec<Value>,
    /// Updates to deliver once more whatever the offset (a redelivery).
    redeliver: Vec<Value>,
    next_update_id: i64,
    next_message_id: i64,
    calls: Vec<Call>,
    /// How often each update id was delivered.
    deliveries: HashMap<i64, usize>,
    /// The current text of each message the bot sent: (chat, message id) → text.
    messages: HashMap<(i64, i64), String>,
    /// file_id → (file_unique_id, path, bytes); `None` bytes: "file is too big".
    files: HashMap<String, (String, String, Option<Vec<u8>>)>,
    /// Scripted answers for the next calls of a method (e.g. a 429).
    scripted: HashMap<String, Vec<Value>>,
    /// The highest offset getUpdates was called with.
    offset: i64,
}

#[derive(Clone)]
pub struct FakeTelegram {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
    news: Arc<Notify>,
    /// Notified whenever getUpdates hands out updates.
    delivered: Arc<Notify>,
    _server: Arc<tokio_util::task::AbortOnDropHandle<()>>,
}

impl FakeTelegram {
    pub async fn start() -> Self {
        let state = Arc::new(Mutex::new(State {
            next_update_id: 1000,
            next_message_id: 1,
            ..State::default()
        }));
        let news = Arc::new(Notify::new());
        let delivered = Arc::new(Notify::new());
        let method_state = Arc::clone(&state);
        let method_news = Arc::clone(&news);
        let method_delivered = Arc::clone(&delivered);
        let methods = warp::post()
            .and(warp::path!(String / String))
            .and(warp::header::optional::<String>("content-type"))
            .and(warp::body::bytes())
            .then(move |bot: String, method: String, content_type: Option<String>, body: bytes::Bytes| {
                let state = Arc::clone(&method_state);
                let news = Arc::clone(&method_news);
                let delivered = Arc::clone(&method_delivered);
                async move {
                    if bot != format!("bot{TOKEN}") {
                        return reply(json!({"ok": false, "error_code": 401, "description": "Unauthorized"}));
                    }
                    let params = match content_type.as_deref().and_then(|t| t.split_once("boundary=")) {
                        // Methods that may carry files (setWebhook) come as multipart forms.
                        Some((_, boundary)) => form_fields(&body, boundary),
                        None => serde_json::from_slice(&body).unwrap_or(json!({})),
                    };
                    let method = method.to_ascii_lowercase();
                    let answer = answer(&state, &news, &method, params).await;
                    if method == "getupdates" && answer["result"].as_array().is_some_and(|a| !a.is_empty()) {
                        delivered.notify_waiters();
                    }
                    reply(answer)
                }
            });
        let file_state = Arc::clone(&state);
        let files = warp::get().and(warp::path!("file" / String / String)).map(
            move |_bot: String, path: String| {
                let state = file_state.lock().unwrap();
                let body = state
                    .files
                    .values()
                    .find(|(_, p, _)| *p == path)
                    .and_then(|(_, _, bytes)| bytes.clone());
                match body {
                    Some(bytes) => warp::http::Response::builder()
                        .status(200)
                        .body(bytes)
                        .unwrap(),
                    None => warp::http::Response::builder()
                        .status(404)
                        .body(Vec::new())
                        .unwrap(),
                }
            },
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            warp::serve(methods.or(files))
                .incoming(listener)
                .run()
                .await;
        });
        Self {
            addr,
            state,
            news,
            delivered,
            _server: Arc::new(tokio_util::task::AbortOnDropHandle::new(server)),
        }
    }

    /// The `telegram.api_url` that points the bot here.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Queues an update (its `update_id` is assigned); returns the whole update.
    pub fn push(&self, kind: &str, payload: Value) -> Value {
        let mut state = self.state.lock().unwrap();
        state.next_update_id += 1;
        let update = json!({"update_id": state.next_update_id, kind: payload});
        state.pending.push(update.clone());
        drop(state);
        self.news.notify_waiters();
        update
    }

    /// A new message from `user` in `chat` with `content` (e.g. `{"text": "…"}`).
    pub fn message(&self, user: u64, chat: Value, content: Value) -> Value {
        let mut message = json!({
            "message_id": 1,
            "date": 1_700_000_000,
            "chat": chat,
            "from": {"id": user, "is_bot": false, "first_name": "Someone"},
        });
        message
            .as_object_mut()
            .unwrap()
            .extend(content.as_object().unwrap().clone());
        self.push("message", message)
    }

    pub fn text_from(&self, user: u64, text: &str) -> Value {
        self.message(user, private_chat(user), json!({"text": text}))
    }

    /// Delivers `update` once more, as Telegram does when a confirmation was lost.
    pub fn redeliver(&self, update: Value) {
        self.state.lock().unwrap().redeliver.push(update);
        self.news.notify_waiters();
    }

    /// Makes a file downloadable; `None` bytes make getFile answer "file is too big".
    pub fn add_file(&self, file_id: &str, unique_id: &str, bytes: Option<Vec<u8>>) {
        let path = format!("documents_{file_id}.bin");
        self.state
            .lock()
            .unwrap()
            .files
            .insert(file_id.into(), (unique_id.into(), path, bytes));
    }

    /// The next call of `method` gets `answer` instead of the normal one.
    pub fn script(&self, method: &str, answer: Value) {
        self.state
            .lock()
            .unwrap()
            .scripted
            .entry(method.to_ascii_lowercase())
            .or_default()
            .push(answer);
    }

    pub fn calls(&self, method: &str) -> Vec<Call> {
        let method = method.to_ascii_lowercase();
        self.state
            .lock()
            .unwrap()
            .calls
            .iter()
            .filter(|c| c.method == method)
            .cloned()
            .collect()
    }

    /// Texts sent to `chat` by sendMessage, in order.
    pub fn sent_to(&self, chat: i64) -> Vec<String> {
        self.calls("sendMessage")
            .into_iter()
            .filter(|c| c.params["chat_id"].as_i64() == Some(chat))
            .map(|c| c.params["text"].as_str().unwrap_or_default().to_string())
            .collect()
    }

    /// The messages the bot sent to `chat`: (message id, current text), oldest first.
    pub fn messages_in(&self, chat: i64) -> Vec<(i64, String)> {
        let state = self.state.lock().unwrap();
        let mut messages: Vec<_> = state
            .messages
            .iter()
            .filter(|((c, _), _)| *c == chat)
            .map(|((_, id), text)| (*id, text.clone()))
            .collect();
        messages.sort();
        messages
    }

    pub fn deliveries(&self, update: &Value) -> usize {
        let id = update["update_id"].as_i64().unwrap();
        *self.state.lock().unwrap().deliveries.get(&id).unwrap_or(&0)
    }

    /// Resolves when getUpdates next hands out updates (take it before queueing them).
    pub fn next_delivery(&self) -> std::pin::Pin<Box<tokio::sync::futures::OwnedNotified>> {
        let mut next = Box::pin(Arc::clone(&self.delivered).notified_owned());
        next.as_mut().enable();
        next
    }

    /// True once the bot confirmed `update` (asked for updates past it).
    pub fn confirmed(&self, update: &Value) -> bool {
        self.state.lock().unwrap().offset > update["update_id"].as_i64().unwrap()
    }
}

pub fn private_chat(user: u64) -> Value {
    json!({"id": user, "type": "private", "first_name": "Someone"})
}

pub fn group_chat() -> Value {
    json!({"id": -100_200, "type": "group", "title": "Family"})
}

/// The text fields of a multipart/form-data body, as a JSON object of strings.
fn form_fields(body: &[u8], boundary: &str) -> Value {
    let text = String::from_utf8_lossy(body);
    let mut fields = serde_json::Map::new();
    for part in text.split(&format!("--{boundary}")) {
        let Some((head, value)) = part.split_once("\r\n\r\n") else {
            continue;
        };
        let Some(name) = head
            .split("name=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
        else {
            continue;
        };
        fields.insert(name.to_string(), json!(value.trim_end_matches("\r\n")));
    }
    Value::Object(fields)
}

fn reply(body: Value) -> warp::reply::Response {
    use warp::Reply;
    warp::reply::json(&body).into_response()
}

fn ok(result: Value) -> Value {
    json!({"ok": true, "result": result})
}

fn bot_message(message_id: i64, chat: i64, text: &str) -> Value {
    json!({
        "message_id": message_id,
        "date": 1_700_000_000,
        "chat": {"id": chat, "type": "private", "first_name": "Someone"},
        "from": {"id": BOT_USER_ID, "is_bot": true, "first_name": "Vault", "username": "vault_bot"},
        "text": text,
    })
}

async fn answer(state: &Mutex<State>, news: &Notify, method: &str, params: Value) -> Value {
    {
        let mut s = state.lock().unwrap();
        s.calls.push(Call {
            method: method.to_string(),
            params: params.clone(),
            at: Instant::now(),
        });
        if let Some(scripted) = s.scripted.get_mut(method).filter(|v| !v.is_empty()) {
            return scripted.remove(0);
        }
    }
    match method {
        "getme" => ok(json!({
            "id": BOT_USER_ID, "is_bot": true, "first_name": "Vault", "username": "vault_bot",
            "can_join_groups": true, "can_read_all_group_messages": false,
            "supports_inline_queries": false, "can_connect_to_business": false,
            "has_main_web_app": false,
        })),
        "getupdates" => {
            let offset = params["offset"].as_i64().unwrap_or(0);
            // A short long-poll: the bot under test asks again at once.
            let wait = Duration::from_secs(params["timeout"].as_u64().unwrap_or(0))
                .min(Duration::from_millis(500));
            let deadline = tokio::time::Instant::now() + wait;
            loop {
                let notified = news.notified();
                {
                    let mut s = state.lock().unwrap();
                    s.offset = s.offset.max(offset);
                    // An offset confirms every update before it.
                    s.pending
                        .retain(|u| u["update_id"].as_i64().unwrap() >= offset);
                    let mut batch: Vec<Value> = std::mem::take(&mut s.redeliver);
                    batch.extend(s.pending.iter().cloned());
                    if !batch.is_empty() || tokio::time::Instant::now() >= deadline {
                        for u in &batch {
                            *s.deliveries
                                .entry(u["update_id"].as_i64().unwrap())
                                .or_default() += 1;
                        }
                        return ok(Value::Array(batch));
                    }
                }
                let _ = tokio::time::timeout_at(deadline, notified).await;
            }
        }
        "sendmessage" => {
            let chat = params["chat_id"].as_i64().unwrap();
            let text = params["text"].as_str().unwrap_or_default().to_string();
            let mut s = state.lock().unwrap();
            s.next_message_id += 1;
            let id = s.next_message_id;
            s.messages.insert((chat, id), text.clone());
            ok(bot_message(id, chat, &text))
        }
        "editmessagetext" => {
            let chat = params["chat_id"].as_i64().unwrap();
            let id = params["message_id"].as_i64().unwrap();
            let text = params["text"].as_str().unwrap_or_default().to_string();
            let mut s = state.lock().unwrap();
            match s.messages.get_mut(&(chat, id)) {
                None => {
                    json!({"ok": false, "error_code": 400, "description": "Bad Request: message to edit not found"})
                }
                Some(current) if *current == text => json!({"ok": false, "error_code": 400,
                    "description": "Bad Request: message is not modified: specified new message content and reply markup are exactly the same as a current content and reply markup of the message"}),
                Some(current) => {
                    *current = text.clone();
                    ok(bot_message(id, chat, &text))
                }
            }
        }
        "getfile" => {
            let file_id = params["file_id"].as_str().unwrap_or_default();
            let s = state.lock().unwrap();
            match s.files.get(file_id) {
                Some((_, _, None)) => {
                    json!({"ok": false, "error_code": 400, "description": "Bad Request: file is too big"})
                }
                Some((unique, path, Some(bytes))) => ok(json!({
                    "file_id": file_id, "file_unique_id": unique,
                    "file_size": bytes.len(), "file_path": path,
                })),
                None => {
                    json!({"ok": false, "error_code": 400, "description": "Bad Request: invalid file_id"})
                }
            }
        }
        "setwebhook" | "deletewebhook" => ok(json!(true)),
        other => {
            json!({"ok": false, "error_code": 404, "description": format!("Not Found: method {other}")})
        }
    }
}

/// The 429 Telegram answers when a bot goes too fast.
pub fn too_many_requests(retry_after: u64) -> Value {
    json!({"ok": false, "error_code": 429,
        "description": format!("Too Many Requests: retry after {retry_after}"),
        "parameters": {"retry_after": retry_after}})
}
