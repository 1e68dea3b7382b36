//! The HTTP contract: error shapes and codes, authentication, listing, ranges, timeouts,
//! health and metrics.

use std::num::NonZero;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::fixture_server::Route;
use crate::helpers::{on_both_backends, spawn_app, spawn_app_with, wait_for};

async fn error_of(response: reqwest::Response) -> (u16, String) {
    let status = response.status().as_u16();
    let body: Value = response
        .json()
        .await
        .unwrap_or_else(|e| panic!("error body is not JSON ({status}): {e}"));
    let code = body["error"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("no error code in {body}"))
        .to_string();
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    (status, code)
}

on_both_backends! {
    async fn bad_requests_get_clear_errors_with_stable_codes(backend: Backend) {
        let app = spawn_app(backend).await;
        let get = |path: &str| app.client.get(app.url(path)).send();
        let random = uuid::Uuid::now_v7();
        let cases: Vec<(reqwest::Response, u16, &str)> = vec![
            (get("/api/items/not-an-id").await.unwrap(), 400, "invalid_id"),
            (get("/api/items/..%2F..%2Fetc%2Fpasswd").await.unwrap(), 400, "invalid_id"),
            (get(&format!("/api/items/{random}")).await.unwrap(), 404, "not_found"),
            (get(&format!("/api/videos/{random}/stream")).await.unwrap(), 404, "not_found"),
            (get(&format!("/api/videos/{random}/metadata")).await.unwrap(), 404, "not_found"),
            (get("/api/videos/nope/stream").await.unwrap(), 400, "invalid_id"),
            (get("/api/no-such-route").await.unwrap(), 404, "not_found"),
            (get("/api/items?limit=0").await.unwrap(), 400, "bad_request"),
            (get("/api/items?limit=201").await.unwrap(), 400, "bad_request"),
            (get("/api/items?status=sleeping").await.unwrap(), 400, "bad_request"),
            (get("/api/items?cursor=garbage").await.unwrap(), 400, "bad_request"),
            (app.client.delete(app.url("/api/capture")).send().await.unwrap(), 405, "bad_request"),
            (app.client.post(app.url("/api/capture")).body("{not json").header("content-type", "application/json").send().await.unwrap(), 400, "bad_request"),
            (app.client.post(app.url("/api/capture")).json(&serde_json::json!({"url": 42})).send().await.unwrap(), 400, "bad_request"),
            (app.client.post(app.url("/api/capture")).json(&serde_json::json!({"url": "https://e.com/v", "exec": "x"})).send().await.unwrap(), 400, "bad_request"),
            (app.client.post(app.url("/api/capture")).json(&serde_json::json!({"url": "x".repeat(100_000)})).send().await.unwrap(), 413, "payload_too_large"),
        ];
        for (response, status, code) in cases {
            let url = response.url().to_string();
            assert_eq!(error_of(response).await, (status, code.to_string()), "{url}");
        }
    }
}

on_both_backends! {
    async fn unfinished_items_are_not_served(backend: Backend) {
        let app = spawn_app(backend).await;
        let url = app.server.add("/slow.mp4", Route::file(app.fixtures.path("big_noisy.mp4"), "video/mp4").drip(16 * 1024, Duration::from_millis(100)));
        let item = app.capture(&url).await;
        let id = item["id"].as_str().unwrap();
        for path in [format!("/api/videos/{id}/stream"), format!("/api/videos/{id}/metadata"), format!("/api/videos/{id}/thumbnail/small")] {
            let response = app.client.get(app.url(&path)).send().await.unwrap();
            assert_eq!(error_of(response).await, (409, "not_ready".to_string()), "{path}");
        }
        // Progress is visible while it downloads.
        let progressed = wait_for(Duration::from_secs(30), || async {
            let now = app.item(id).await;
            now["status"] == "downloading" && now["progress"]["stage"] == "download" && now["progress"]["downloaded_bytes"].as_u64().unwrap_or(0) > 0
        })
        .await;
        assert!(progressed, "{}", app.item(id).await);
        let now = app.item(id).await;
        let (done, total) = (now["progress"]["downloaded_bytes"].as_u64().unwrap(), now["progress"]["total_bytes"].as_u64().unwrap());
        assert_eq!(total, std::fs::metadata(app.fixtures.path("big_noisy.mp4")).unwrap().len());
        assert!(now["progress"]["percent"].as_f64().unwrap() <= 100.0 * done as f64 / total as f64 + 0.1);
    }
}

on_both_backends! {
    async fn api_tokens_guard_every_api_route(backend: Backend) {
        let token = "token-0123456789abcdef";
        let app = spawn_app_with(backend, |s| s.security.api_tokens = vec![prsnl::settings::Secret::new(token)]).await;
        let routes = ["/api/items", "/api/items/01a1fe82-0efd-7699-83e3-5bafea1248a7", "/api/videos/01a1fe82-0efd-7699-83e3-5bafea1248a7/stream"];
        for route in routes {
            let none = app.client.get(app.url(route)).send().await.unwrap();
            assert_eq!(none.headers().get("www-authenticate").map(|v| v.to_str().unwrap()), Some("Bearer"));
            assert_eq!(error_of(none).await, (401, "unauthorized".to_string()), "{route}");
            let wrong = app.client.get(app.url(route)).bearer_auth("token-0123456789abcdeX").send().await.unwrap();
            assert_eq!(error_of(wrong).await, (401, "unauthorized".to_string()), "{route}");
            let right = app.client.get(app.url(route)).bearer_auth(token).send().await.unwrap();
            assert_ne!(right.status(), 401, "{route}");
        }
        let capture = app.client.post(app.url("/api/capture")).json(&serde_json::json!({"url": "https://example.com/v.mp4"})).send().await.unwrap();
        assert_eq!(error_of(capture).await.0, 401);
        assert_eq!(app.item_count().await, 0);
        // Health endpoints stay open for orchestrators.
        assert_eq!(app.client.get(app.url("/healthz")).send().await.unwrap().status(), 200);
        assert_eq!(app.client.get(app.url("/readyz")).send().await.unwrap().status(), 200);
    }
}

on_both_backends! {
    async fn the_listing_pages_newest_first_and_filters(backend: Backend) {
        let app = spawn_app(backend).await;
        let mut ids = Vec::new();
        for i in 0..5 {
            let item = app.capture(&format!("https://unresolvable-{i}.invalid/v.mp4")).await;
            ids.push(item["id"].as_str().unwrap().to_string());
        }
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut url = app.url("/api/items?limit=2&platform=generic");
            if let Some(c) = &cursor {
                url.push_str(&format!("&cursor={c}"));
            }
            let page: Value = app.client.get(url).send().await.unwrap().json().await.unwrap();
            seen.extend(page["items"].as_array().unwrap().iter().map(|i| i["id"].as_str().unwrap().to_string()));
            match page["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_string()),
                None => break,
            }
        }
        ids.reverse();
        assert_eq!(seen, ids, "newest first, each once");
        let youtube: Value = app.client.get(app.url("/api/items?platform=youtube")).send().await.unwrap().json().await.unwrap();
        assert!(youtube["items"].as_array().unwrap().is_empty());
        let recorded: Value = app.client.get(app.url("/api/items?status=completed")).send().await.unwrap().json().await.unwrap();
        assert!(recorded["items"].as_array().unwrap().is_empty());
    }
}

on_both_backends! {
    async fn the_stream_answers_ranges_conditionals_and_head(backend: Backend) {
        let app = spawn_app(backend).await;
        let url = app.server.add("/clip.mp4", Route::file(app.fixtures.path("h264_aac_faststart.mp4"), "video/mp4"));
        let item = app.capture_and_wait(&url).await;
        assert_eq!(item["status"], "completed");
        let stream = app.url(item["metadata"]["stream_url"].as_str().unwrap());
        let bytes = app.fixtures.bytes("h264_aac_faststart.mp4");
        let len = bytes.len();

        let partial = app.client.get(&stream).header("range", "bytes=100-199").send().await.unwrap();
        assert_eq!(partial.status(), 206);
        assert_eq!(partial.headers()["content-range"], format!("bytes 100-199/{len}"));
        assert_eq!(partial.headers()["accept-ranges"], "bytes");
        assert_eq!(partial.headers()["x-content-type-options"], "nosniff");
        let etag = partial.headers()["etag"].to_str().unwrap().to_string();
        assert_eq!(partial.bytes().await.unwrap().as_ref(), &bytes[100..200]);

        let tail = app.client.get(&stream).header("range", format!("bytes={}-{}", len - 10, len + 500)).send().await.unwrap();
        assert_eq!(tail.status(), 206);
        assert_eq!(tail.bytes().await.unwrap().as_ref(), &bytes[len - 10..]);

        let beyond = app.client.get(&stream).header("range", format!("bytes={len}-")).send().await.unwrap();
        assert_eq!(beyond.status(), 416);
        assert_eq!(beyond.headers()["content-range"], format!("bytes */{len}"));

        let cached = app.client.get(&stream).header("if-none-match", &etag).send().await.unwrap();
        assert_eq!(cached.status(), 304);
        let stale = app.client.get(&stream).header("range", "bytes=0-9").header("if-range", "\"old\"").send().await.unwrap();
        assert_eq!(stale.status(), 200);
        assert_eq!(stale.bytes().await.unwrap().len(), len);

        let thumb = app.url(item["metadata"]["thumbnails"]["medium"].as_str().unwrap());
        let first = app.client.get(&thumb).send().await.unwrap();
        assert_eq!(first.status(), 200);
        assert_eq!(first.headers()["content-type"], "image/jpeg");
        assert!(first.headers()["cache-control"].to_str().unwrap().contains("immutable"));
        let thumb_etag = first.headers()["etag"].to_str().unwrap().to_string();
        assert_ne!(thumb_etag, etag, "each file has its own validator");
        let revalidated = app.client.get(&thumb).header("if-none-match", &thumb_etag).send().await.unwrap();
        assert_eq!(revalidated.status(), 304);
        let unknown_size = app.client.get(thumb.replace("/medium", "/huge")).send().await.unwrap();
        assert_eq!(unknown_size.status(), 404);

        let head = app.client.head(&stream).send().await.unwrap();
        assert_eq!(head.status(), 200);
        assert_eq!(head.headers()["content-length"], len.to_string());
        assert!(head.headers()["cache-control"].to_str().unwrap().contains("immutable"));
        assert!(head.bytes().await.unwrap().is_empty());
    }
}

on_both_backends! {
    async fn a_client_that_never_finishes_its_headers_is_disconnected(backend: Backend) {
        let app = spawn_app_with(backend, |s| s.server.header_read_timeout_secs = NonZero::new(1).unwrap()).await;
        let mut slow = tokio::net::TcpStream::connect(app.addr).await.unwrap();
        slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n").await.unwrap();
        // Meanwhile, everybody else is served.
        assert_eq!(app.client.get(app.url("/healthz")).send().await.unwrap().status(), 200);
        let mut rest = Vec::new();
        let closed = tokio::time::timeout(Duration::from_secs(15), slow.read_to_end(&mut rest)).await;
        assert!(closed.is_ok(), "the half-sent request was kept open");
    }
}

on_both_backends! {
    async fn health_readiness_and_metrics_report_the_service(backend: Backend) {
        let app = spawn_app(backend).await;
        let health: Value = app.client.get(app.url("/healthz")).send().await.unwrap().json().await.unwrap();
        assert_eq!(health["status"], "ok");
        let ready = app.client.get(app.url("/readyz")).send().await.unwrap();
        assert_eq!(ready.status(), 200);
        let ready: Value = ready.json().await.unwrap();
        assert_eq!(ready["status"], "ready");
        for check in ["database", "media_root", "pipeline", "accepting_work"] {
            assert_eq!(ready["checks"][check]["ok"], true, "{check}: {ready}");
        }
        let url = app.server.add("/m.mp4", Route::file(app.fixtures.path("h264_silent.mp4"), "video/mp4"));
        assert_eq!(app.capture_and_wait(&url).await["status"], "completed");
        let metrics = app.client.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
        assert!(
            metrics.contains(r#"prsnl_job_attempts_total{code="none",kind="capture",outcome="completed"} 1"#),
            "{metrics}"
        );
    }
}

#[tokio::test]
async fn an_unauthenticated_api_refuses_to_listen_beyond_loopback() {
    let dir = tempfile::tempdir().unwrap();
    let settings = crate::helpers::test_settings(
        dir.path(),
        &format!("sqlite://{}", dir.path().join("db").display()),
        1,
    );
    let listener = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
    let started = prsnl::App::start(
        settings,
        prsnl::StartOptions {
            listener: Some(listener),
            lease_owner: None,
        },
    )
    .await;
    assert!(matches!(
        started,
        Err(prsnl::app::StartError::Unauthenticated(_))
    ));
}

#[tokio::test]
async fn a_second_process_with_the_same_instance_name_and_database_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let settings = crate::helpers::test_settings(
        dir.path(),
        &format!("sqlite://{}", dir.path().join("db").display()),
        1,
    );
    let first = prsnl::App::start(settings.clone(), prsnl::StartOptions::default())
        .await
        .expect("first instance starts");
    let second = prsnl::App::start(settings.clone(), prsnl::StartOptions::default()).await;
    assert!(matches!(
        second,
        Err(prsnl::app::StartError::InstanceInUse(_))
    ));
    assert_eq!(first.shutdown().await, prsnl::Exit::Clean);
    // Once the first has stopped, the name is free again.
    let third = prsnl::App::start(settings, prsnl::StartOptions::default())
        .await
        .expect("restarts after a stop");
    third.shutdown().await;
}
