//! Captures cannot reach private, loopback or metadata addresses, in any notation, on the
//! submitted URL or on any hop of the download (THREATS SSRF-01..03).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::Value;

use crate::fixture_server::Route;
use crate::helpers::{on_both_backends, spawn_app, spawn_app_with};

/// A loopback listener that only counts connections: nothing may ever reach it.
struct Sentinel {
    port: u16,
    accepted: Arc<AtomicUsize>,
    _task: tokio::task::JoinHandle<()>,
}

impl Sentinel {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepted = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&accepted);
        let task = tokio::spawn(async move {
            while listener.accept().await.is_ok() {
                counter.fetch_add(1, Ordering::SeqCst);
            }
        });
        Self {
            port,
            accepted,
            _task: task,
        }
    }

    fn hits(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

on_both_backends! {
    async fn forbidden_targets_are_refused_before_any_row_or_connection(backend: Backend) {
        let app = spawn_app(backend).await;
        let sentinel = Sentinel::start().await;
        let p = sentinel.port;
        let blocked = [
            format!("http://127.0.0.1:{p}/video.mp4"),
            format!("http://localhost:{p}/video.mp4"),
            format!("http://[::1]:{p}/video.mp4"),
            format!("http://[::ffff:127.0.0.1]:{p}/video.mp4"),
            format!("http://0x7f.1:{p}/video.mp4"),
            format!("http://2130706433:{p}/video.mp4"),
            format!("http://127.1:{p}/video.mp4"),
            format!("http://0.0.0.0:{p}/video.mp4"),
            "http://169.254.169.254/latest/meta-data/".to_string(),
            "http://[fd00::1]/v.mp4".to_string(),
            "http://10.1.2.3/v.mp4".to_string(),
            "http://100.64.0.1/v.mp4".to_string(),
            "http://192.168.0.1/v.mp4".to_string(),
            "http://172.16.5.4/v.mp4".to_string(),
        ];
        let malformed = [
            "file:///etc/passwd",
            "data:text/plain,hello",
            "ytsearch:cats",
            "-o/tmp/pwned",
            "--exec=touch /tmp/pwned",
            "ftp://example.com/v.mp4",
            "https://user:secret@example.com/v.mp4",
            "javascript:alert(1)",
            "https://exa mple.com/v.mp4",
            "not a url",
            "",
        ];
        let cases = blocked.iter().map(|u| (u.as_str(), "ssrf_blocked")).chain(malformed.iter().map(|u| (*u, "invalid_url")));
        for (url, code) in cases {
            let response = app.post_capture(url).await;
            assert_eq!(response.status(), 400, "{url}");
            let body: Value = response.json().await.unwrap();
            assert_eq!(body["error"]["code"], code, "{url}: {body}");
        }
        assert_eq!(app.item_count().await, 0);
        assert_eq!(sentinel.hits(), 0);
    }
}

on_both_backends! {
    async fn a_redirect_to_an_internal_address_is_stopped_by_the_egress_guard(backend: Backend) {
        let app = spawn_app(backend).await;
        let sentinel = Sentinel::start().await;
        let hop = app.server.add("/innocent.mp4", Route::redirect(&format!("http://127.0.0.1:{}/secret.mp4", sentinel.port)));
        let item = app.capture_and_wait(&hop).await;
        assert_eq!(item["status"], "failed");
        assert_eq!(item["error"]["code"], "ssrf_blocked", "{item}");
        assert_eq!(sentinel.hits(), 0, "the internal address was reached");
        assert!(app.files_under("videos").is_empty());
        assert!(app.server.hits("/innocent.mp4") >= 1);
    }
}

on_both_backends! {
    async fn the_service_never_captures_itself_even_when_loopback_is_allowed(backend: Backend) {
        let app = spawn_app_with(backend, |s| s.security.ssrf_allow = vec!["127.0.0.1:*".parse().unwrap()]).await;
        let own = app.url("/api/items");
        let response = app.post_capture(&own).await;
        assert_eq!(response.status(), 400);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "ssrf_blocked");
        // The wide allow rule does open other loopback ports (here: the fixture server).
        let clip = app.server.add("/ok.mp4", Route::file(app.fixtures.path("h264_silent.mp4"), "video/mp4"));
        assert_eq!(app.capture_and_wait(&clip).await["status"], "completed");
    }
}
