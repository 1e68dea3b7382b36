//! People: users, tokens and sessions, private libraries, and the upgrade of a vault made
//! before people existed. Every `/api` route is tried as member A, member B, an admin, no one,
//! and a revoked token.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::fixture_server::Route;
use crate::helpers::{TestApp, on_both_backends, sha256_hex, spawn_app, spawn_app_with};

/// Who sends a request.
#[derive(Clone)]
pub(crate) enum As {
    Token(String),
    Cookie(String),
    Nobody,
}

pub(crate) async fn send(
    app: &TestApp,
    who: &As,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> reqwest::Response {
    let mut request = app.client.request(method, app.url(path));
    request = match who {
        As::Token(token) => request.bearer_auth(token),
        As::Cookie(cookie) => request.header("cookie", format!("prsnl_session={cookie}")),
        As::Nobody => request,
    };
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.unwrap()
}

pub(crate) async fn status(
    app: &TestApp,
    who: &As,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> u16 {
    send(app, who, method, path, body).await.status().as_u16()
}

pub(crate) async fn json_of(
    app: &TestApp,
    who: &As,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let response = send(app, who, method, path, body).await;
    let code = response.status().as_u16();
    (code, response.json().await.unwrap_or(Value::Null))
}

/// A vault with an admin (token), two members A and B (tokens) and a revoked token of A's.
pub(crate) struct People {
    pub(crate) admin: As,
    pub(crate) a: As,
    pub(crate) b: As,
    pub(crate) revoked: As,
    pub(crate) a_id: String,
    pub(crate) b_id: String,
    pub(crate) a_token: String,
}

pub(crate) async fn people(app: &TestApp) -> People {
    // Nobody has credentials yet: a loopback request acts as the first admin.
    let (code, me) = json_of(app, &As::Nobody, Method::GET, "/api/me", None).await;
    assert_eq!(code, 200, "{me}");
    assert_eq!(me["role"], "admin");
    let admin_id = me["id"].as_str().unwrap().to_string();
    let token = |user: &str| format!("/api/admin/users/{user}/tokens");
    let (code, issued) = json_of(
        app,
        &As::Nobody,
        Method::POST,
        &token(&admin_id),
        Some(json!({"label": "test"})),
    )
    .await;
    assert_eq!(code, 201, "{issued}");
    let admin = As::Token(issued["token"].as_str().unwrap().to_string());
    // From the first credential on, nobody is let in without one.
    assert_eq!(
        status(app, &As::Nobody, Method::GET, "/api/me", None).await,
        401
    );

    let mut ids = Vec::new();
    let mut tokens = Vec::new();
    for name in ["alice", "bob"] {
        let (code, user) = json_of(
            app,
            &admin,
            Method::POST,
            "/api/admin/users",
            Some(json!({"name": name, "password": format!("{name}-password-1")})),
        )
        .await;
        assert_eq!(code, 201, "{user}");
        assert_eq!(user["role"], "member");
        let id = user["id"].as_str().unwrap().to_string();
        let (code, issued) = json_of(app, &admin, Method::POST, &token(&id), None).await;
        assert_eq!(code, 201, "{issued}");
        let secret = issued["token"].as_str().unwrap().to_string();
        assert!(
            secret.starts_with("prsnl_") && secret.len() >= 6 + 43,
            "{secret}"
        );
        ids.push(id);
        tokens.push(secret);
    }
    let (code, spare) = json_of(app, &admin, Method::POST, &token(&ids[0]), None).await;
    assert_eq!(code, 201);
    let revoked = As::Token(spare["token"].as_str().unwrap().to_string());
    assert_eq!(
        status(app, &revoked, Method::GET, "/api/me", None).await,
        200
    );
    let revoke = format!("/api/admin/tokens/{}", spare["id"].as_str().unwrap());
    assert_eq!(
        status(app, &admin, Method::DELETE, &revoke, None).await,
        204
    );
    // Revoked means at once.
    assert_eq!(
        status(app, &revoked, Method::GET, "/api/me", None).await,
        401
    );
    People {
        admin,
        a: As::Token(tokens[0].clone()),
        b: As::Token(tokens[1].clone()),
        revoked,
        a_id: ids[0].clone(),
        b_id: ids[1].clone(),
        a_token: tokens[0].clone(),
    }
}

/// Submits a capture as `who` and waits for it to end, whatever the end: the submission's
/// status code and the item as it ended.
pub(crate) async fn capture_ended(app: &TestApp, who: &As, url: &str) -> (u16, Value) {
    let (code, item) = json_of(
        app,
        who,
        Method::POST,
        "/api/capture",
        Some(json!({"url": url})),
    )
    .await;
    assert!(code == 202 || code == 200, "{code} {item}");
    let id = item["id"].as_str().unwrap().to_string();
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let (_, item) = json_of(app, who, Method::GET, &format!("/api/items/{id}"), None).await;
        if matches!(
            item["status"].as_str(),
            Some("completed" | "failed" | "cancelled")
        ) {
            return (code, item);
        }
        assert!(Instant::now() < deadline, "{item}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Submits a capture as `who` and waits for it to complete.
pub(crate) async fn capture_done(app: &TestApp, who: &As, url: &str) -> Value {
    let (_, item) = capture_ended(app, who, url).await;
    assert_eq!(item["status"], "completed", "{item}");
    item
}

pub(crate) fn listed(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_string())
        .collect()
}

on_both_backends! {
    async fn every_api_route_keeps_a_members_library_private(backend: Backend) {
        let app = spawn_app(backend).await;
        let p = people(&app).await;
        let url = app.server.add("/clip.mp4", Route::file(app.fixtures.path("h264_aac_faststart.mp4"), "video/mp4"));
        let item = capture_done(&app, &p.a, &url).await;
        let id = item["id"].as_str().unwrap().to_string();

        // Item routes: A and the admin see it; B is told it does not exist; strangers and
        // revoked tokens are not let in at all.
        let routes: Vec<(Method, String, Option<Value>)> = vec![
            (Method::GET, format!("/api/items/{id}"), None),
            (Method::GET, format!("/api/items/{id}/events"), None),
            (Method::GET, format!("/api/videos/{id}/metadata"), None),
            (Method::GET, format!("/api/videos/{id}/stream"), None),
            (Method::HEAD, format!("/api/videos/{id}/stream"), None),
            (Method::GET, format!("/api/videos/{id}/thumbnail/small"), None),
        ];
        for (method, path, body) in &routes {
            for who in [&p.a, &p.admin] {
                assert_eq!(status(&app, who, method.clone(), path, body.clone()).await, 200, "{method} {path}");
            }
            // Asked again: a file now in the served cache is still refused.
            for _ in 0..2 {
                assert_eq!(status(&app, &p.b, method.clone(), path, body.clone()).await, 404, "B: {method} {path}");
            }
            for who in [&As::Nobody, &p.revoked] {
                assert_eq!(status(&app, who, method.clone(), path, body.clone()).await, 401, "{method} {path}");
            }
        }
        let (code, body) = json_of(&app, &p.b, Method::GET, &format!("/api/items/{id}"), None).await;
        assert_eq!((code, body["error"]["code"].as_str()), (404, Some("not_found")), "{body}");
        let image = format!("/api/images/{id}");
        assert_eq!(status(&app, &p.b, Method::GET, &image, None).await, 404);
        let transcode = format!("/api/videos/{id}/transcode");
        assert_eq!(status(&app, &p.b, Method::POST, &transcode, Some(json!({"quality": "360p"}))).await, 404);
        assert_eq!(status(&app, &As::Nobody, Method::POST, &transcode, Some(json!({"quality": "360p"}))).await, 401);
        let delete = format!("/api/videos/{id}");
        assert_eq!(status(&app, &p.b, Method::DELETE, &delete, None).await, 404);
        assert_eq!(status(&app, &p.revoked, Method::DELETE, &delete, None).await, 401);
        assert_eq!(status(&app, &p.a, Method::GET, &format!("/api/items/{id}"), None).await, 200, "B's delete did nothing");

        // Listings: each member sees their own; the admin everyone's, or one owner's.
        let (_, page) = json_of(&app, &p.a, Method::GET, "/api/items", None).await;
        assert_eq!(listed(&page), vec![id.clone()]);
        let (_, page) = json_of(&app, &p.b, Method::GET, "/api/items", None).await;
        assert!(listed(&page).is_empty(), "{page}");
        let (_, page) = json_of(&app, &p.admin, Method::GET, &format!("/api/items?owner={}", p.a_id), None).await;
        assert_eq!(listed(&page), vec![id.clone()]);
        let (_, page) = json_of(&app, &p.admin, Method::GET, "/api/items?owner=bob", None).await;
        assert!(listed(&page).is_empty(), "{page}");
        assert_eq!(status(&app, &p.b, Method::GET, &format!("/api/items?owner={}", p.a_id), None).await, 400);
        assert_eq!(status(&app, &As::Nobody, Method::GET, "/api/items", None).await, 401);
        assert_eq!(status(&app, &p.revoked, Method::POST, "/api/capture", Some(json!({"url": url}))).await, 401);

        // Who am I, and storage: a member sees only their own usage.
        let (_, me) = json_of(&app, &p.a, Method::GET, "/api/me", None).await;
        assert_eq!((me["name"].as_str(), me["role"].as_str(), me["items"].as_u64()), (Some("alice"), Some("member"), Some(1)));
        assert!(me["usage_bytes"].as_u64().unwrap() >= item["metadata"]["size_bytes"].as_u64().unwrap(), "{me}");
        let (code, stats) = json_of(&app, &p.a, Method::GET, "/api/storage/stats", None).await;
        assert_eq!(code, 200);
        assert!(stats.get("videos").is_none() && stats["user"]["usage_bytes"].is_u64(), "{stats}");
        let (_, stats) = json_of(&app, &p.admin, Method::GET, "/api/storage/stats", None).await;
        assert_eq!(stats["videos"]["files"], 1, "{stats}");
        assert_eq!(status(&app, &p.a, Method::POST, "/api/storage/cleanup", None).await, 403);
        assert_eq!(status(&app, &p.admin, Method::POST, "/api/storage/cleanup", None).await, 200);

        // Admin routes are for admins.
        let admin_routes: Vec<(Method, String, Option<Value>)> = vec![
            (Method::GET, "/api/admin/users".into(), None),
            (Method::POST, "/api/admin/users".into(), Some(json!({"name": "mallory"}))),
            (Method::PATCH, format!("/api/admin/users/{}", p.b_id), Some(json!({"role": "admin"}))),
            (Method::DELETE, format!("/api/admin/users/{}", p.b_id), None),
            (Method::POST, format!("/api/admin/users/{}/tokens", p.a_id), None),
            (Method::DELETE, "/api/admin/tokens/tok_0000000000000000".into(), None),
        ];
        for (method, path, body) in &admin_routes {
            assert_eq!(status(&app, &p.a, method.clone(), path, body.clone()).await, 403, "{method} {path}");
            assert_eq!(status(&app, &As::Nobody, method.clone(), path, body.clone()).await, 401, "{method} {path}");
            assert_eq!(status(&app, &p.revoked, method.clone(), path, body.clone()).await, 401, "{method} {path}");
        }
        let (_, users) = json_of(&app, &p.admin, Method::GET, "/api/admin/users", None).await;
        assert_eq!(users["users"].as_array().unwrap().len(), 3, "{users}");

        // The same URL from B is B's own item; it does not touch A's.
        let theirs = capture_done(&app, &p.b, &url).await;
        assert_ne!(theirs["id"], item["id"]);
        let (_, page) = json_of(&app, &p.b, Method::GET, "/api/items", None).await;
        assert_eq!(listed(&page), vec![theirs["id"].as_str().unwrap().to_string()]);
        let (_, page) = json_of(&app, &p.admin, Method::GET, "/api/items", None).await;
        assert_eq!(listed(&page).len(), 2);

        // A deletes: gone for A, B's stays.
        assert_eq!(status(&app, &p.a, Method::DELETE, &delete, None).await, 204);
        assert_eq!(status(&app, &p.a, Method::GET, &format!("/api/items/{id}"), None).await, 404);
        let stream = format!("/api/videos/{}/stream", theirs["id"].as_str().unwrap());
        assert_eq!(status(&app, &p.b, Method::GET, &stream, None).await, 200);

        // Only hashes are stored: a copy of the database gives nobody a working token.
        let hash = sha256_hex(p.a_token.as_bytes());
        let stored: Vec<String> = match &app.ctx().db {
            prsnl::db::Db::Sqlite(pool, _) => sqlx::query_scalar("SELECT hash FROM api_tokens").fetch_all(pool).await.unwrap(),
            prsnl::db::Db::Postgres(pool) => sqlx::query_scalar("SELECT hash FROM api_tokens").fetch_all(pool).await.unwrap(),
        };
        assert!(stored.contains(&hash), "{stored:?}");
        if let Some(file) = app.settings.database.url.expose().strip_prefix("sqlite://") {
            // Checkpoint so the file holds every row, then read it and its WAL byte for byte.
            if let prsnl::db::Db::Sqlite(pool, _) = &app.ctx().db {
                sqlx::query("PRAGMA wal_checkpoint(FULL)").execute(pool).await.unwrap();
            }
            let mut bytes = std::fs::read(file).unwrap();
            bytes.extend(std::fs::read(format!("{file}-wal")).unwrap_or_default());
            let haystack = String::from_utf8_lossy(&bytes);
            assert!(haystack.contains(&hash), "the hash is stored");
            for token in [&p.a_token, "alice-password-1"] {
                assert!(!haystack.contains(token), "a secret is in the database file");
            }
        }
    }
}

on_both_backends! {
    async fn people_sign_in_with_a_password_and_guessing_is_slowed_down(backend: Backend) {
        let app = spawn_app(backend).await;
        let p = people(&app).await;
        let sign_in = |name: &str, password: &str| json!({"name": name, "password": password});
        let wrong = send(&app, &As::Nobody, Method::POST, "/api/session", Some(sign_in("alice", "not-her-password"))).await;
        assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
        let unknown = send(&app, &As::Nobody, Method::POST, "/api/session", Some(sign_in("nobody", "whatever-1"))).await;
        assert_eq!(unknown.status(), StatusCode::UNAUTHORIZED);

        let right = send(&app, &As::Nobody, Method::POST, "/api/session", Some(sign_in("alice", "alice-password-1"))).await;
        assert_eq!(right.status(), 200);
        let cookie = right.headers().get("set-cookie").unwrap().to_str().unwrap().to_string();
        assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict") && cookie.contains("Path=/"), "{cookie}");
        let secret = cookie.split(';').next().unwrap().strip_prefix("prsnl_session=").unwrap().to_string();
        let session = As::Cookie(secret.clone());
        let (_, me) = json_of(&app, &session, Method::GET, "/api/me", None).await;
        assert_eq!(me["name"], "alice");
        assert_eq!(me["id"].as_str(), Some(p.a_id.as_str()));

        // Another site cannot make a signed-in browser change things.
        let forged = app.client.post(app.url("/api/capture"))
            .header("cookie", format!("prsnl_session={secret}"))
            .header("origin", "https://evil.example")
            .json(&json!({"url": "https://example.com/v.mp4"}))
            .send().await.unwrap();
        assert_eq!(forged.status(), 403);
        assert_eq!(app.item_count().await, 0);

        // Signing out ends the session.
        assert_eq!(status(&app, &session, Method::DELETE, "/api/session", None).await, 204);
        assert_eq!(status(&app, &session, Method::GET, "/api/me", None).await, 401);
        // A new password ends every session too.
        let again = send(&app, &As::Nobody, Method::POST, "/api/session", Some(sign_in("alice", "alice-password-1"))).await;
        let secret = again.headers().get("set-cookie").unwrap().to_str().unwrap().split(';').next().unwrap().strip_prefix("prsnl_session=").unwrap().to_string();
        let patch = format!("/api/admin/users/{}", p.a_id);
        assert_eq!(status(&app, &p.admin, Method::PATCH, &patch, Some(json!({"password": "a-new-password"}))).await, 200);
        assert_eq!(status(&app, &As::Cookie(secret), Method::GET, "/api/me", None).await, 401);

        // Guessing: a few failures are free, then even the right password must wait.
        for _ in 0..5 {
            let guess = send(&app, &As::Nobody, Method::POST, "/api/session", Some(sign_in("bob", "guess-guess"))).await;
            assert_eq!(guess.status(), 401);
        }
        let (code, body) = json_of(&app, &As::Nobody, Method::POST, "/api/session", Some(sign_in("bob", "bob-password-1"))).await;
        assert_eq!((code, body["error"]["code"].as_str()), (429, Some("too_many_attempts")), "{body}");
        // Tokens are not affected by sign-in throttling.
        assert_eq!(status(&app, &p.b, Method::GET, "/api/me", None).await, 200);

        // Concurrent requests with one token share database reads, yet a revocation holds
        // for every request that arrives after it.
        let (_, issued) = json_of(&app, &p.admin, Method::POST, &format!("/api/admin/users/{}/tokens", p.b_id), None).await;
        let token = As::Token(issued["token"].as_str().unwrap().to_string());
        let burst = || futures_util::future::join_all((0..64).map(|_| status(&app, &token, Method::GET, "/api/me", None)));
        assert!(burst().await.iter().all(|s| *s == 200));
        let revoke = format!("/api/admin/tokens/{}", issued["id"].as_str().unwrap());
        assert_eq!(status(&app, &p.admin, Method::DELETE, &revoke, None).await, 204);
        assert!(burst().await.iter().all(|s| *s == 401));
    }
}

on_both_backends! {
    async fn tokens_of_the_deprecated_key_become_the_admins(backend: Backend) {
        // Only a token in the (deprecated) configuration key: it becomes the admin's token.
        let token = "legacy-token-0123456789";
        let app = spawn_app_with(backend, |s| s.security.api_tokens = vec![prsnl::settings::Secret::new(token)]).await;
        let (code, me) = json_of(&app, &As::Token(token.into()), Method::GET, "/api/me", None).await;
        assert_eq!((code, me["role"].as_str(), me["name"].as_str()), (200, Some("admin"), Some("admin")), "{me}");
        let (_, users) = json_of(&app, &As::Token(token.into()), Method::GET, "/api/admin/users", None).await;
        assert_eq!(users["users"].as_array().unwrap().len(), 1);
    }
}
