//! People at the other doors: the command line beside a running server, the Telegram bot and
//! the watch folder with their owners, a listener beyond loopback, and the upgrade of a vault
//! made before people existed.

use std::time::Duration;

use reqwest::Method;
use serde_json::json;

use crate::fixture_server::Route;
use crate::helpers::{Backend, on_both_backends, spawn_app_with};
use crate::people::{As, capture_done, json_of, listed, send, status};

/// A database as the release before people left it: migrations 0001–0007 (copied apart, so
/// the migrator sees only those), with items of the API (no owner) and of a Telegram account.
async fn previous_release_database(
    backend: &Backend,
    dir: &std::path::Path,
) -> (String, Option<crate::helpers::PgDatabase>) {
    let kind = match backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres(_) => "postgres",
    };
    let old = dir.join("old-migrations");
    std::fs::create_dir_all(&old).unwrap();
    for entry in
        std::fs::read_dir(format!("{}/migrations/{kind}", env!("CARGO_MANIFEST_DIR"))).unwrap()
    {
        let entry = entry.unwrap();
        let name = entry.file_name().into_string().unwrap();
        if name.as_str() < "0008" {
            std::fs::copy(entry.path(), old.join(&name)).unwrap();
        }
    }
    let migrator = sqlx::migrate::Migrator::new(old.as_path()).await.unwrap();
    let (url, pg) = match backend {
        Backend::Sqlite => (format!("sqlite://{}", dir.join("prsnl.db").display()), None),
        Backend::Postgres(admin) => {
            let db = crate::helpers::PgDatabase::create(admin).await;
            (db.url.clone(), Some(db))
        }
    };
    let mut settings = prsnl::Settings::defaults();
    settings.database.url = prsnl::settings::Secret::new(url.clone());
    let db = prsnl::db::Db::connect(&settings.database).await.unwrap();
    // What the earlier release wrote: API items without an owner, a Telegram item, their jobs.
    let mut sql = String::new();
    for (n, owner, source) in [
        (1, "NULL", "api"),
        (2, "'telegram:42'", "telegram"),
        (3, "NULL", "watch"),
    ] {
        let id = format!("01a00000-0000-7000-8000-00000000000{n}");
        sql += &format!(
            "INSERT INTO items (id, owner, source, source_url, canonical_url, platform, status, \
             video_path, thumb_small_path, thumb_medium_path, thumb_large_path, created_at, \
             updated_at, error_code, error_message) VALUES ('{id}', {owner}, '{source}', \
             'https://example.com/{n}.mp4', 'https://example.com/{n}.mp4', 'generic', 'failed', \
             'videos/2026/01/x.mp4', 's', 'm', 'l', 1, 1, 'download_failed', 'it failed');\n\
             INSERT INTO jobs (id, kind, item_id, state, max_attempts, run_after, \
             idempotency_key, created_at, updated_at) VALUES ('job-{n}', 'capture', '{id}', \
             'failed', 3, 0, 'job-{n}', 1, 1);\n"
        );
    }
    match &db {
        prsnl::db::Db::Sqlite(pool, _) => {
            migrator.run(pool).await.unwrap();
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                .execute(pool)
                .await
                .unwrap();
        }
        prsnl::db::Db::Postgres(pool) => {
            migrator.run(pool).await.unwrap();
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                .execute(pool)
                .await
                .unwrap();
        }
    }
    db.close().await;
    (url, pg)
}

on_both_backends! {
    async fn an_upgraded_vault_keeps_every_item_now_owned_by_the_admin(backend: Backend) {
        let dir = tempfile::tempdir().unwrap();
        let (url, _pg) = previous_release_database(&backend, dir.path()).await;
        let token = "legacy-token-0123456789";
        let app = spawn_app_with(backend, |s| {
            s.database.url = prsnl::settings::Secret::new(url);
            s.security.api_tokens = vec![prsnl::settings::Secret::new(token)];
        })
        .await;
        let admin = As::Token(token.into());
        let (_, me) = json_of(&app, &admin, Method::GET, "/api/me", None).await;
        assert_eq!((me["name"].as_str(), me["role"].as_str(), me["items"].as_u64()), (Some("admin"), Some("admin"), Some(3)), "{me}");
        let (_, page) = json_of(&app, &admin, Method::GET, &format!("/api/items?owner={}", me["id"].as_str().unwrap()), None).await;
        assert_eq!(listed(&page).len(), 3, "{page}");
        // The jobs (children of the rebuilt items table on SQLite) are all still there.
        let jobs: i64 = match &app.ctx().db {
            prsnl::db::Db::Sqlite(pool, _) => sqlx::query_scalar("SELECT COUNT(*) FROM jobs").fetch_one(pool).await.unwrap(),
            prsnl::db::Db::Postgres(pool) => sqlx::query_scalar("SELECT COUNT(*) FROM jobs").fetch_one(pool).await.unwrap(),
        };
        assert_eq!(jobs, 3);
        // A member sees none of them; and the same URL is now capturable per person.
        let (_, alice) = json_of(&app, &admin, Method::POST, "/api/admin/users", Some(json!({"name": "alice"}))).await;
        let (_, issued) = json_of(&app, &admin, Method::POST, &format!("/api/admin/users/{}/tokens", alice["id"].as_str().unwrap()), None).await;
        let alice = As::Token(issued["token"].as_str().unwrap().into());
        let (_, page) = json_of(&app, &alice, Method::GET, "/api/items", None).await;
        assert!(listed(&page).is_empty());
        assert_eq!(status(&app, &alice, Method::GET, "/api/items/01a00000-0000-7000-8000-000000000002", None).await, 404);
    }
}

on_both_backends! {
    async fn a_telegram_account_linked_to_a_member_captures_into_their_library(backend: Backend) {
        let fake = crate::telegram_fake::FakeTelegram::start().await;
        let app = crate::telegram::bot_app(backend, &fake, false).await;
        let (code, alice) = json_of(&app, &As::Nobody, Method::POST, "/api/admin/users", Some(json!({"name": "alice"}))).await;
        assert_eq!(code, 201, "{alice}");
        let alice_id = alice["id"].as_str().unwrap().to_string();
        let user = prsnl::domain::people::UserId::parse(&alice_id).unwrap();
        // What `prsnl user link-telegram alice 111` does.
        assert!(prsnl::db::users::set_telegram(&app.ctx().db, user, Some(crate::telegram::ALICE as i64)).await.unwrap());
        let url = app.server.add("/clip.mp4", Route::file(app.fixtures.path("h264_aac_faststart.mp4"), "video/mp4"));
        fake.text_from(crate::telegram::ALICE, &url);
        assert!(crate::helpers::wait_for(Duration::from_secs(30), || async { app.item_count().await == 1 }).await);
        let (_, page) = json_of(&app, &As::Nobody, Method::GET, &format!("/api/items?owner={alice_id}"), None).await;
        assert_eq!(listed(&page).len(), 1, "{page}");
        let (_, me) = json_of(&app, &As::Nobody, Method::GET, "/api/me", None).await;
        assert_eq!(me["items"], 0, "the admin owns nothing: {me}");
    }
}

fn cli(config: &std::path::Path, args: &[&str], stdin: Option<&str>) -> (i32, String, String) {
    use std::io::Write;
    let mut child = crate::cli::prsnl()
        .arg("--config")
        .arg(config)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.unwrap_or("").as_bytes()).unwrap();
    drop(input);
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_and_tokens_are_managed_from_the_command_line_beside_a_running_server() {
    let dir = tempfile::tempdir().unwrap();
    let config = crate::cli::config(dir.path(), "");
    let run = |args: &[&str], stdin: Option<&str>| cli(&config, args, stdin);

    let (code, out, err) = run(
        &[
            "user",
            "add",
            "alice",
            "--quota",
            "20GiB",
            "--password-stdin",
        ],
        Some("alice-password-1\n"),
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("added alice (member"), "{out}");
    assert_eq!(run(&["user", "add", "alice", "--no-password"], None).0, 1);
    assert_eq!(run(&["user", "add", "-bad", "--no-password"], None).0, 2);
    assert_eq!(
        run(
            &["user", "add", "carol", "--password-stdin"],
            Some("short\n")
        )
        .0,
        2
    );
    assert_eq!(
        run(&["user", "add", "bob", "--admin", "--no-password"], None).0,
        0
    );
    let (_, listing, _) = run(&["user", "list"], None);
    assert!(
        listing
            .lines()
            .any(|l| l.starts_with("alice") && l.contains("member") && l.contains("20.0 GiB")),
        "{listing}"
    );
    assert!(
        listing
            .lines()
            .any(|l| l.starts_with("bob") && l.contains("admin")),
        "{listing}"
    );
    let (code, token, err) = run(&["token", "create", "alice", "--label", "laptop"], None);
    assert_eq!(code, 0, "{err}");
    let token = token.trim().to_string();
    assert!(token.starts_with("prsnl_"), "{token}");

    // A server on the same database: the CLI's changes hold at its next request.
    let db_url = format!("sqlite://{}", dir.path().join("prsnl.db").display());
    let media = dir.path().join("media");
    let app = spawn_app_with(Backend::Sqlite, |s| {
        s.database.url = prsnl::settings::Secret::new(db_url);
        s.storage.media_root = media;
    })
    .await;
    let alice = As::Token(token.clone());
    let (code, me) = json_of(&app, &alice, Method::GET, "/api/me", None).await;
    assert_eq!(
        (code, me["name"].as_str(), me["quota_bytes"].as_u64()),
        (200, Some("alice"), Some(20 << 30)),
        "{me}"
    );
    let url = app.server.add(
        "/clip.mp4",
        Route::file(app.fixtures.path("h264_aac_faststart.mp4"), "video/mp4"),
    );
    capture_done(&app, &alice, &url).await;

    let (code, out, err) = run(
        &["user", "passwd", "alice", "--password-stdin"],
        Some("another-password\n"),
    );
    assert_eq!(code, 0, "{out}{err}");
    let signed_in = send(
        &app,
        &As::Nobody,
        Method::POST,
        "/api/session",
        Some(json!({"name": "alice", "password": "another-password"})),
    )
    .await;
    assert_eq!(signed_in.status(), 200);
    assert_eq!(run(&["user", "set", "alice", "--quota", "none"], None).0, 0);
    let (_, me) = json_of(&app, &alice, Method::GET, "/api/me", None).await;
    assert!(me["quota_bytes"].is_null(), "{me}");
    let (_, tokens, _) = run(&["token", "list", "alice"], None);
    let line = tokens
        .lines()
        .find(|l| l.contains("laptop"))
        .unwrap_or_else(|| panic!("{tokens}"));
    assert!(!tokens.contains(&token), "a listing never shows a token");
    let id = line.split_whitespace().next().unwrap();
    assert_eq!(run(&["token", "revoke", id], None).0, 0);
    assert_eq!(
        status(&app, &alice, Method::GET, "/api/me", None).await,
        401
    );
    assert_eq!(run(&["token", "revoke", id], None).0, 1);

    // Removing a user who owns items needs a decision about them.
    let (code, _, err) = run(&["user", "remove", "alice"], None);
    assert_eq!(code, 1);
    assert!(err.contains("owns 1 items"), "{err}");
    let (code, out, err) = run(&["user", "remove", "alice", "--transfer-to", "bob"], None);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("moved 1 items of alice to bob"), "{out}");
    let (_, listing, _) = run(&["user", "list"], None);
    assert!(!listing.contains("alice"), "{listing}");
    // The last admin stays.
    let (code, _, err) = run(&["user", "remove", "bob", "--delete-items"], None);
    assert_eq!(
        code, 0,
        "bob is not the last admin (the first admin is): {err}"
    );
    assert!(
        app.files_under("videos").is_empty(),
        "bob's deleted item took its file along"
    );
    let (code, _, err) = run(&["user", "remove", "admin"], None);
    assert_eq!(code, 1);
    assert!(err.contains("last admin"), "{err}");
    assert_eq!(run(&["user", "link-telegram", "admin", "4242"], None).0, 0);
    let admin = prsnl::db::users::by_telegram(&app.ctx().db, 4242)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(admin.name, "admin");
}

on_both_backends! {
    async fn the_watch_folder_files_belong_to_its_owner(backend: Backend) {
        let app = spawn_app_with(backend, |s| s.watch.owner = Some("alice".into())).await;
        let (code, alice) = json_of(&app, &As::Nobody, Method::POST, "/api/admin/users", Some(json!({"name": "alice"}))).await;
        assert_eq!(code, 201, "{alice}");
        let staged = app.settings.watch.dir.parent().unwrap().join("clip.mp4");
        std::fs::copy(app.fixtures.path("h264_aac_faststart.mp4"), &staged).unwrap();
        std::fs::rename(&staged, app.settings.watch.dir.join("clip.mp4")).unwrap();
        let owned = format!("/api/items?owner={}", alice["id"].as_str().unwrap());
        let taken = crate::helpers::wait_for(Duration::from_secs(60), || async {
            listed(&json_of(&app, &As::Nobody, Method::GET, &owned, None).await.1).len() == 1
        })
        .await;
        assert!(taken, "the file never became alice's item");
        let (_, me) = json_of(&app, &As::Nobody, Method::GET, "/api/me", None).await;
        assert_eq!(me["items"], 0, "{me}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listener_beyond_loopback_opens_once_someone_has_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let settings = crate::helpers::test_settings(
        dir.path(),
        &format!("sqlite://{}", dir.path().join("db").display()),
        1,
    );
    let start = |settings: prsnl::Settings| async move {
        let listener = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
        prsnl::App::start(
            settings,
            prsnl::StartOptions {
                listener: Some(listener),
                lease_owner: None,
            },
        )
        .await
    };
    assert!(matches!(
        start(settings.clone()).await,
        Err(prsnl::app::StartError::Unauthenticated(_))
    ));
    // What `prsnl token create admin` does.
    let db = prsnl::db::Db::connect(&settings.database).await.unwrap();
    let admin = prsnl::people::upgrade(&db, &[]).await.unwrap();
    let issued = prsnl::people::issue_token(&db, admin.id, "cli")
        .await
        .unwrap();
    db.close().await;
    let app = start(settings)
        .await
        .expect("starts on 0.0.0.0 once a token exists");
    let addr = app.local_addr().expect("listening");
    let client = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{}/api/me", addr.port());
    assert_eq!(client.get(&url).send().await.unwrap().status(), 401);
    let me = client
        .get(&url)
        .bearer_auth(&issued.token)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200);
    app.shutdown().await;
}
