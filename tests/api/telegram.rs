//! The Telegram bot against a fake Bot API on loopback (`telegram_fake`): links, uploads,
//! photos, strangers, redeliveries, the webhook's secret, and a crash between receiving and
//! storing an update.

use std::time::Duration;

use serde_json::{Value, json};

use crate::fixture_server::Route;
use crate::helpers::{TestApp, on_both_backends, spawn_app_with, wait_for};
use crate::telegram_fake::{self, FakeTelegram, group_chat, private_chat, too_many_requests};

pub(crate) const ALICE: u64 = 111;
const MALLORY: u64 = 666;
const WEBHOOK_SECRET: &str = "the-webhook-secret-0123456789";

pub(crate) async fn bot_app(
    backend: crate::helpers::Backend,
    fake: &FakeTelegram,
    webhook: bool,
) -> TestApp {
    let api_url = fake.url();
    spawn_app_with(backend, move |s| {
        s.telegram.token = prsnl::settings::Secret::new(telegram_fake::TOKEN);
        s.telegram.api_url = Some(api_url.parse().unwrap());
        s.telegram.allowed_users = vec![ALICE];
        s.telegram.poll_timeout_secs = 1;
        if webhook {
            s.telegram.mode = prsnl::settings::TelegramMode::Webhook;
            s.telegram.webhook_secret = prsnl::settings::Secret::new(WEBHOOK_SECRET);
            s.telegram.webhook_url = Some(
                format!("{api_url}/our-public-address/telegram/webhook")
                    .parse()
                    .unwrap(),
            );
        }
    })
    .await
}

async fn scalar(app: &TestApp, sql: &'static str) -> i64 {
    match &app.ctx().db {
        prsnl::db::Db::Sqlite(pool, _) => sqlx::query_scalar(sql).fetch_one(pool).await.unwrap(),
        prsnl::db::Db::Postgres(pool) => sqlx::query_scalar(sql).fetch_one(pool).await.unwrap(),
    }
}

async fn only_item_id(app: &TestApp) -> String {
    assert!(
        wait_for(Duration::from_secs(30), || async {
            app.item_count().await == 1
        })
        .await,
        "no item was created"
    );
    let id = match &app.ctx().db {
        prsnl::db::Db::Sqlite(pool, _) => {
            sqlx::query_scalar("SELECT id FROM items")
                .fetch_one(pool)
                .await
        }
        prsnl::db::Db::Postgres(pool) => {
            sqlx::query_scalar("SELECT id FROM items")
                .fetch_one(pool)
                .await
        }
    };
    id.unwrap()
}

/// Waits until the bot's only message in `chat` satisfies `done`; returns its text.
async fn wait_for_reply(fake: &FakeTelegram, chat: i64, done: impl Fn(&str) -> bool) -> String {
    let ok = wait_for(Duration::from_secs(90), || async {
        fake.messages_in(chat)
            .first()
            .is_some_and(|(_, text)| done(text))
    })
    .await;
    let messages = fake.messages_in(chat);
    assert!(ok, "the reply never got there: {messages:?}");
    messages[0].1.clone()
}

on_both_backends! {
    async fn a_link_completes_and_its_reply_is_edited_to_the_details(backend: Backend) {
        let fake = FakeTelegram::start().await;
        let app = bot_app(backend, &fake, false).await;
        let url = app.server.add("/clip.mp4", Route::file(app.fixtures.path("h264_aac_faststart.mp4"), "video/mp4"));
        fake.text_from(ALICE, &format!("keep this one: {url}"));

        let id = only_item_id(&app).await;
        // Answered as soon as the item is recorded (the reply is sent right after, so wait
        // for it), and before the download finished: the first text is the queued one.
        assert!(
            wait_for(Duration::from_secs(10), || async { !fake.calls("sendMessage").is_empty() }).await,
            "no reply was sent"
        );
        let first = fake.calls("sendMessage");
        assert_eq!(first[0].params["text"], "queued · web");

        let text = wait_for_reply(&fake, ALICE as i64, |t| t.starts_with("saved:")).await;
        let item = app.wait_terminal(&id).await;
        assert_eq!(item["status"], "completed", "{item:#}");
        assert_eq!(item["source"], "telegram");
        let meta = &item["metadata"];
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        let facts = format!("{}×{}", meta["width"], meta["height"]);
        assert!(lines[1].contains(&facts), "{text} lacks {facts}");
        assert!(lines[1].contains("0:0"), "{text} lacks the duration");
        assert!(lines[1].ends_with(" KB") || lines[1].ends_with(" MB"), "{text} lacks the size");
        assert_eq!(lines[2], format!("/api/videos/{id}/stream"));
        // Only one reply, edited in place; never two edits of it within 3 s.
        assert_eq!(fake.calls("sendMessage").len(), 1);
        let edits = fake.calls("editMessageText");
        for pair in edits.windows(2) {
            assert!(pair[1].at.duration_since(pair[0].at) >= Duration::from_millis(2900), "edits too close");
        }
    }
}

on_both_backends! {
    async fn a_stranger_gets_one_polite_refusal_and_nothing_is_stored(backend: Backend) {
        let fake = FakeTelegram::start().await;
        let app = bot_app(backend, &fake, false).await;
        let url = app.server.add("/clip.mp4", Route::file(app.fixtures.path("h264_aac_faststart.mp4"), "video/mp4"));
        let first = fake.text_from(MALLORY, &url);
        let second = fake.text_from(MALLORY, &format!("{url}?again"));
        // In a group, a stranger is not even answered.
        let in_group = fake.message(MALLORY, group_chat(), json!({"text": url}));
        assert!(wait_for(Duration::from_secs(20), || async { fake.confirmed(&in_group) }).await);
        assert!(fake.confirmed(&first) && fake.confirmed(&second));

        let told = fake.sent_to(MALLORY as i64);
        assert_eq!(told.len(), 1, "{told:?}");
        assert!(told[0].contains("private bot"), "{told:?}");
        assert!(fake.sent_to(-100_200).is_empty());
        assert_eq!(app.item_count().await, 0);
        assert_eq!(scalar(&app, "SELECT COUNT(*) FROM telegram_updates").await, 0);
        assert_eq!(app.server.hits("/clip.mp4"), 0);
    }
}

on_both_backends! {
    async fn the_same_update_delivered_twice_makes_one_item(backend: Backend) {
        let fake = FakeTelegram::start().await;
        let app = bot_app(backend, &fake, false).await;
        let url = app.server.add("/clip.mp4", Route::file(app.fixtures.path("h264_aac_faststart.mp4"), "video/mp4"));
        let update = fake.text_from(ALICE, &url);
        let id = only_item_id(&app).await;
        wait_for_reply(&fake, ALICE as i64, |t| t.starts_with("saved:")).await;

        // Telegram sends it again (a confirmation that got lost).
        fake.redeliver(update.clone());
        assert!(wait_for(Duration::from_secs(20), || async { fake.deliveries(&update) == 2 }).await);
        // Something after it is handled only after it: once that reply is there, the
        // redelivery has been dealt with.
        fake.text_from(ALICE, "/help");
        assert!(wait_for(Duration::from_secs(20), || async { fake.sent_to(ALICE as i64).len() == 2 }).await);

        assert_eq!(app.item_count().await, 1);
        assert_eq!(only_item_id(&app).await, id);
        let sent = fake.sent_to(ALICE as i64);
        assert!(sent[1].contains("/recent"), "{sent:?}");
    }
}

on_both_backends! {
    async fn a_crash_between_receiving_and_storing_an_update_loses_nothing(backend: Backend) {
        let fake = FakeTelegram::start().await;
        let app = bot_app(backend, &fake, false).await;
        let url = app.server.add("/clip.mp4", Route::file(app.fixtures.path("h264_aac_faststart.mp4"), "video/mp4"));
        // The receiver dies after Telegram handed it the update, before it was stored.
        app.ctx().faults.arm(prsnl::faults::FaultPoint::BotBeforeStore, 1);
        let update = fake.text_from(ALICE, &url);

        let id = only_item_id(&app).await;
        // The restarted bot asked from the same offset, and Telegram delivered it again.
        assert_eq!(fake.deliveries(&update), 2);
        let item = app.wait_terminal(&id).await;
        assert_eq!(item["status"], "completed", "{item:#}");
        wait_for_reply(&fake, ALICE as i64, |t| t.starts_with("saved:")).await;
        assert_eq!(app.item_count().await, 1);
        assert_eq!(fake.calls("sendMessage").len(), 1);
        assert_eq!(app.ctx().metrics.actor_restarts("telegram_bot"), 1);
    }
}

on_both_backends! {
    async fn the_webhook_checks_its_secret_before_reading_the_update(backend: Backend) {
        let fake = FakeTelegram::start().await;
        let app = bot_app(backend, &fake, true).await;
        let url = app.server.add("/clip.mp4", Route::file(app.fixtures.path("h264_aac_faststart.mp4"), "video/mp4"));
        // The bot registered the webhook with its secret.
        assert!(wait_for(Duration::from_secs(10), || async { !fake.calls("setWebhook").is_empty() }).await);
        let registered = &fake.calls("setWebhook")[0].params;
        assert_eq!(registered["secret_token"], WEBHOOK_SECRET);
        assert!(fake.calls("getUpdates").is_empty(), "webhook mode must not poll");

        let update = json!({"update_id": 77, "message": {
            "message_id": 5, "date": 1_700_000_000, "chat": private_chat(ALICE),
            "from": {"id": ALICE, "is_bot": false, "first_name": "Alice"}, "text": url}});
        let post = |secret: Option<&str>, body: String| {
            let mut request = app.client.post(app.url("/telegram/webhook")).body(body);
            if let Some(secret) = secret {
                request = request.header("X-Telegram-Bot-Api-Secret-Token", secret);
            }
            request.send()
        };
        // Missing and wrong secrets are refused before the body is parsed (garbage → 401).
        let missing = post(None, "not json at all".into()).await.unwrap();
        assert_eq!(missing.status(), 401);
        let body: Value = missing.json().await.unwrap();
        assert_eq!(body["error"]["code"], "unauthorized");
        let wrong = post(Some("the-webhook-secret-0123456788"), "not json at all".into()).await.unwrap();
        assert_eq!(wrong.status(), 401);
        assert_eq!(app.item_count().await, 0);

        let right = post(Some(WEBHOOK_SECRET), update.to_string()).await.unwrap();
        assert_eq!(right.status(), 200);
        let id = only_item_id(&app).await;
        // The same update posted again (Telegram retrying) changes nothing.
        let again = post(Some(WEBHOOK_SECRET), update.to_string()).await.unwrap();
        assert_eq!(again.status(), 200);
        // With the right secret, a malformed update is a clear 400.
        let malformed = post(Some(WEBHOOK_SECRET), "{\"nope\": 1}".into()).await.unwrap();
        assert_eq!(malformed.status(), 400);

        let text = wait_for_reply(&fake, ALICE as i64, |t| t.starts_with("saved:")).await;
        assert!(text.contains(&id), "{text}");
        assert_eq!(app.item_count().await, 1);
        assert_eq!(fake.sent_to(ALICE as i64).len(), 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_is_waited_out_before_the_next_edit() {
    let fake = FakeTelegram::start().await;
    let app = bot_app(crate::helpers::Backend::Sqlite, &fake, false).await;
    let url = app.server.add(
        "/clip.mp4",
        Route::file(app.fixtures.path("h264_aac_faststart.mp4"), "video/mp4"),
    );
    fake.script("editMessageText", too_many_requests(2));
    fake.text_from(ALICE, &url);
    wait_for_reply(&fake, ALICE as i64, |t| t.starts_with("saved:")).await;
    let edits = fake.calls("editMessageText");
    assert!(edits.len() >= 2, "{edits:?}");
    // The first edit was refused with retry_after = 2; nothing was edited before that passed.
    assert!(edits[1].at.duration_since(edits[0].at) >= Duration::from_millis(1900));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_answer_and_only_owners_delete() {
    const BOB: u64 = 222;
    let fake = FakeTelegram::start().await;
    let api_url = fake.url();
    let app = spawn_app_with(crate::helpers::Backend::Sqlite, move |s| {
        s.telegram.token = prsnl::settings::Secret::new(telegram_fake::TOKEN);
        s.telegram.api_url = Some(api_url.parse().unwrap());
        s.telegram.allowed_users = vec![ALICE, BOB];
        s.telegram.poll_timeout_secs = 1;
    })
    .await;
    let url = app.server.add(
        "/clip.mp4",
        Route::file(app.fixtures.path("h264_aac_faststart.mp4"), "video/mp4"),
    );
    fake.text_from(ALICE, &url);
    let id = only_item_id(&app).await;
    wait_for_reply(&fake, ALICE as i64, |t| t.starts_with("saved:")).await;

    let ask = |user: u64, text: String| {
        let fake = fake.clone();
        async move {
            let before = fake.sent_to(user as i64).len();
            fake.text_from(user, &text);
            assert!(
                wait_for(Duration::from_secs(20), || async {
                    fake.sent_to(user as i64).len() > before
                })
                .await,
                "no answer to {text}"
            );
            fake.sent_to(user as i64).last().unwrap().clone()
        }
    };
    let status = ask(ALICE, format!("/status {id}")).await;
    assert!(
        status.contains("saved:") && status.contains(&id),
        "{status}"
    );
    let recent = ask(ALICE, "/recent".into()).await;
    assert!(recent.contains(&id), "{recent}");
    assert!(
        ask(BOB, "/recent".into())
            .await
            .contains("not sent me anything")
    );
    let stats = ask(ALICE, "/stats".into()).await;
    assert!(stats.contains("items: 1 stored"), "{stats}");
    assert!(
        ask(ALICE, "/status nonsense".into())
            .await
            .contains("not an item id")
    );
    assert!(
        ask(ALICE, format!("/cancel {id}"))
            .await
            .contains("already completed")
    );

    // Bob's library is his own: Alice's item does not exist for him.
    assert!(
        ask(BOB, format!("/delete {id}"))
            .await
            .contains("There is no item")
    );
    assert!(
        ask(BOB, format!("/status {id}"))
            .await
            .contains("There is no item")
    );
    assert_eq!(app.item_count().await, 1);
    assert!(
        ask(ALICE, format!("/delete {id}"))
            .await
            .contains("Deleted")
    );
    assert_eq!(app.item_count().await, 0);
    let gone = app
        .client
        .get(app.url(&format!("/api/items/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), 404);
    assert!(ask(ALICE, "/start".into()).await.contains("/help"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_stops_an_item_that_is_still_being_saved() {
    let fake = FakeTelegram::start().await;
    let app = bot_app(crate::helpers::Backend::Sqlite, &fake, false).await;
    // A source that trickles: the download is still running when /cancel arrives.
    let url = app.server.add(
        "/slow.mp4",
        Route::file(app.fixtures.path("h264_aac.mp4"), "video/mp4")
            .drip(4096, Duration::from_millis(200)),
    );
    fake.text_from(ALICE, &url);
    let id = only_item_id(&app).await;
    assert!(
        wait_for(Duration::from_secs(30), || async {
            app.server.hits("/slow.mp4") > 0
        })
        .await
    );
    fake.text_from(ALICE, &format!("/cancel {id}"));
    let item = app.wait_terminal(&id).await;
    assert_eq!(item["status"], "cancelled", "{item:#}");
    assert!(
        wait_for(Duration::from_secs(20), || async {
            fake.sent_to(ALICE as i64)
                .iter()
                .any(|t| t.starts_with("Cancelled"))
        })
        .await
    );
    // The reply about the item says so too.
    wait_for_reply(&fake, ALICE as i64, |t| t.starts_with("cancelled")).await;
    assert!(app.files_under("videos").is_empty());
}

/// A `video` message for a file the fake serves.
fn video_message(file_id: &str, unique_id: &str, size: usize, caption: &str) -> Value {
    json!({
        "video": {"file_id": file_id, "file_unique_id": unique_id, "file_size": size,
                  "width": 640, "height": 360, "duration": 2, "mime_type": "video/mp4"},
        "caption": caption,
    })
}

on_both_backends! {
    async fn a_video_upload_is_imported_without_yt_dlp(backend: Backend) {
        let fake = FakeTelegram::start().await;
        let app = bot_app(backend, &fake, false).await;
        let bytes = app.fixtures.bytes("h264_aac.mp4");
        fake.add_file("file-1", "uniq-1", Some(bytes.clone()));
        fake.message(ALICE, private_chat(ALICE), video_message("file-1", "uniq-1", bytes.len(), "Beach day"));

        let id = only_item_id(&app).await;
        let item = app.wait_terminal(&id).await;
        assert_eq!(item["status"], "completed", "{item:#}");
        assert_eq!((item["source"].as_str(), item["kind"].as_str()), (Some("telegram"), Some("video")));
        assert_eq!(item["title"], "Beach day");
        assert_eq!(item["metadata"]["width"], 640);
        let text = wait_for_reply(&fake, ALICE as i64, |t| t.starts_with("saved:")).await;
        assert!(text.starts_with("saved: Beach day\n"), "{text}");
        assert!(text.ends_with(&format!("/api/videos/{id}/stream")), "{text}");
        assert_eq!(fake.calls("getFile").len(), 1);
        // The download was the pipeline's input and is gone once stored.
        assert!(wait_for(Duration::from_secs(10), || async { app.files_under("temp/uploads").is_empty() }).await,
            "{:?}", app.files_under("temp/uploads"));

        // The same file forwarded again (new file_id, same file_unique_id): the same item.
        fake.add_file("file-2", "uniq-1", Some(bytes.clone()));
        fake.message(ALICE, private_chat(ALICE), video_message("file-2", "uniq-1", bytes.len(), "again"));
        assert!(wait_for(Duration::from_secs(20), || async { fake.sent_to(ALICE as i64).len() == 2 }).await);
        assert!(fake.sent_to(ALICE as i64)[1].contains(&id));
        assert_eq!(app.item_count().await, 1);
        assert_eq!(fake.calls("getFile").len(), 1, "a known file is not fetched again");
    }
}

on_both_backends! {
    async fn a_photo_becomes_an_image_item(backend: Backend) {
        let fake = FakeTelegram::start().await;
        let app = bot_app(backend, &fake, false).await;
        let photo = app.fixtures.bytes("photo.jpg");
        let small = app.fixtures.bytes("small.jpg");
        fake.add_file("photo-big", "uniq-photo", Some(photo.clone()));
        fake.add_file("photo-small", "uniq-photo-s", Some(small.clone()));
        fake.message(ALICE, private_chat(ALICE), json!({"photo": [
            {"file_id": "photo-small", "file_unique_id": "uniq-photo-s", "file_size": small.len(), "width": 100, "height": 80},
            {"file_id": "photo-big", "file_unique_id": "uniq-photo", "file_size": photo.len(), "width": 1600, "height": 900},
        ]}));

        let id = only_item_id(&app).await;
        let item = app.wait_terminal(&id).await;
        assert_eq!(item["status"], "completed", "{item:#}");
        assert_eq!(item["kind"], "image");
        assert_eq!((item["metadata"]["width"].as_u64(), item["metadata"]["height"].as_u64()), (Some(1600), Some(900)));
        let month = time::OffsetDateTime::now_utc();
        let stored = app.media_path(&format!("images/{:04}/{:02}/{id}.jpg", month.year(), u8::from(month.month())));
        assert_eq!(std::fs::read(&stored).unwrap(), photo, "the largest size is the one stored");
        let served = app.client.get(app.url(&format!("/api/images/{id}"))).send().await.unwrap();
        assert_eq!(served.status(), 200);
        assert_eq!(served.headers()["content-type"], "image/jpeg");
        let thumbnails = app.files_under("thumbnails");
        assert_eq!(thumbnails.len(), 3, "{thumbnails:?}");

        let text = wait_for_reply(&fake, ALICE as i64, |t| t.starts_with("saved:")).await;
        assert!(text.contains("1600×900"), "{text}");
        assert!(text.ends_with(&format!("/api/images/{id}")), "{text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_over_the_bot_api_limit_get_an_explanation() {
    let fake = FakeTelegram::start().await;
    let app = bot_app(crate::helpers::Backend::Sqlite, &fake, false).await;
    // Telegram says how big it is: nothing is fetched.
    fake.message(
        ALICE,
        private_chat(ALICE),
        video_message("huge", "uniq-huge", 25 * 1024 * 1024, ""),
    );
    assert!(
        wait_for(Duration::from_secs(20), || async {
            !fake.sent_to(ALICE as i64).is_empty()
        })
        .await
    );
    let told = &fake.sent_to(ALICE as i64)[0];
    assert!(
        told.contains("20 MB") && told.contains("self-hosted"),
        "{told}"
    );
    assert!(fake.calls("getFile").is_empty());

    // Its size unknown to us, the Bot API refuses it.
    fake.add_file("big", "uniq-big", None);
    fake.message(
        ALICE,
        private_chat(ALICE),
        video_message("big", "uniq-big", 0, ""),
    );
    assert!(
        wait_for(Duration::from_secs(20), || async {
            fake.sent_to(ALICE as i64).len() == 2
        })
        .await
    );
    assert!(fake.sent_to(ALICE as i64)[1].contains("self-hosted"));
    assert_eq!(app.item_count().await, 0);
    assert!(app.files_under("temp/uploads").is_empty());
}

/// The real binary, SIGKILLed the moment Telegram handed it an update (before or just after
/// it was stored), then started again: Telegram delivers it again and it becomes exactly one
/// completed item.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_service_killed_after_receiving_an_update_makes_exactly_one_item_after_restart() {
    let fake = FakeTelegram::start().await;
    let fixtures = crate::fixture_server::FixtureServer::start().await;
    let url = fixtures.add(
        "/clip.mp4",
        Route::file(
            crate::fixtures::fixtures().path("h264_aac_faststart.mp4"),
            "video/mp4",
        ),
    );
    let dir = tempfile::tempdir().unwrap();
    let port = crate::cli::free_port();
    let config = crate::cli::config(
        dir.path(),
        &format!(
            "[server]\nlisten = \"127.0.0.1:{port}\"\n[security]\nssrf_allow = [\"127.0.0.1:{}\"]\n\
             [telegram]\ntoken = \"{}\"\napi_url = \"{}\"\nallowed_users = [{ALICE}]\npoll_timeout_secs = 1\n",
            fixtures.addr().port(),
            telegram_fake::TOKEN,
            fake.url(),
        ),
    );
    let serve = || crate::cli::serve(&config);
    prsnl::net::install_tls_provider();
    let client = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    let up = || async { client.get(format!("{base}/healthz")).send().await.is_ok() };

    let mut first = serve();
    assert!(
        wait_for(Duration::from_secs(30), up).await,
        "the service did not start"
    );
    let delivered = fake.next_delivery();
    let update = fake.text_from(ALICE, &url);
    delivered.await;
    crate::cli::kill_hard(&mut first);
    // On a loaded machine the first process may have recorded the update and confirmed it
    // (its next getUpdates carries the offset) before the kill landed; Telegram then has no
    // reason to deliver it again, and the one item must come from the first process's record.
    let confirmed_before_kill = fake.confirmed(&update);

    let mut second = serve();
    assert!(
        wait_for(Duration::from_secs(30), up).await,
        "the service did not restart"
    );
    let items = || async {
        let list = crate::helpers::get_json(&client, &format!("{base}/api/items")).await;
        list["items"].as_array().cloned().unwrap_or_default()
    };
    let done = wait_for(Duration::from_secs(90), || async {
        let items = items().await;
        items.len() == 1 && items[0]["status"] == "completed"
    })
    .await;
    let listed = items().await;
    let _ = second.kill();
    second.wait().unwrap();
    assert!(done, "no completed item after the restart: {listed:?}");
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(
        fake.deliveries(&update),
        if confirmed_before_kill { 1 } else { 2 },
        "Telegram was never asked for it again"
    );
}
