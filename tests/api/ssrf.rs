//! Captures cannot reach private, loopback or metadata addresses, in any notation, on the
//! submitted URL or on any hop of the download (THREATS SSRF-01..03).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::Value;

use crate::fixture_server::Route;
use crate::helpers::{on_both_backends, spawn_app, spawn_app_with};

/// A loopback listener that only counts connections (and keeps the first bytes each sent, to
/// name the culprit): nothing may ever reach it.
struct Sentinel {
    port: u16,
    accepted: Arc<AtomicUsize>,
    heard: Arc<std::sync::Mutex<Vec<String>>>,
    _task: tokio::task::JoinHandle<()>,
}

impl Sentinel {
    /// Bound below the kernel's ephemeral range (32768+ on Linux), where every other server of
    /// the test run binds: a port that no other test ever listened on, so a straggler of a
    /// finished test (a tool still calling its old proxy's port) cannot count as a hit.
    async fn start() -> Self {
        let first = 20_000 + (std::process::id() % 10_000) as u16;
        let mut listener = None;
        for offset in 0..2_000u16 {
            let port = 20_000 + (first - 20_000 + offset * 7) % 12_000;
            if let Ok(bound) = tokio::net::TcpListener::bind(("127.0.0.1", port)).await {
                listener = Some(bound);
                break;
            }
        }
        let listener = listener.expect("a free port below the ephemeral range");
        let port = listener.local_addr().unwrap().port();
        let accepted = Arc::new(AtomicUsize::new(0));
        let heard = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (counter, log) = (Arc::clone(&accepted), Arc::clone(&heard));
        let task = tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                let log = Arc::clone(&log);
                tokio::spawn(async move {
                    use tokio::io::AsyncReadExt;
                    let mut first = [0u8; 200];
                    let n = tokio::time::timeout(
                        std::time::Duration::from_secs(2),
                        stream.read(&mut first),
                    )
                    .await
                    .ok()
                    .and_then(Result::ok)
                    .unwrap_or(0);
                    log.lock()
                        .unwrap()
                        .push(String::from_utf8_lossy(&first[..n]).into_owned());
                });
            }
        });
        Self {
            port,
            accepted,
            heard,
            _task: task,
        }
    }

    fn hits(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    fn heard(&self) -> Vec<String> {
        self.heard.lock().unwrap().clone()
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
            // Loopback by definition (RFC 6761), though no resolver answers for them.
            format!("http://localhost.:{p}/video.mp4"),
            format!("http://videos.localhost:{p}/video.mp4"),
            format!("http://CDN.LOCALHOST.:{p}/video.mp4"),
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

/// A canary file outside media_root: its bytes must never land in the vault.
struct Canary {
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
    marker: String,
}

impl Canary {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let marker = format!("PRSNL-CANARY-{}", std::process::id());
        let path = dir.path().join("canary.ts");
        std::fs::write(&path, marker.repeat(4096)).unwrap();
        Self {
            _dir: dir,
            path,
            marker,
        }
    }

    /// Whether any file under `root` holds the canary's marker.
    fn found_under(&self, root: &std::path::Path) -> bool {
        let needle = self.marker.as_bytes();
        let mut stack = vec![root.to_path_buf()];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    stack.push(path);
                } else if std::fs::read(&path)
                    .is_ok_and(|bytes| bytes.windows(needle.len()).any(|w| w == needle))
                {
                    return true;
                }
            }
        }
        false
    }
}

on_both_backends! {
    /// yt-dlp's own hops (pages, not direct files, so the native downloader is not involved):
    /// an HTTP redirect, HLS and DASH manifests whose segments and keys name a forbidden
    /// address or a local file, and formats on protocols that would bypass the egress proxy
    /// (rtmp, rtsp, ftp, handed to ffmpeg). None reaches the sentinel or stores the canary.
    async fn yt_dlp_is_kept_off_forbidden_addresses_on_every_hop(backend: Backend) {
        let app = spawn_app_with(backend, |s| s.download.native_direct = false).await;
        let sentinel = Sentinel::start().await;
        let canary = Canary::new();
        let forbidden = format!("http://127.0.0.1:{}", sentinel.port);
        let file = format!("file://{}", canary.path.display());
        let hls = |segment: &str, key: Option<&str>| {
            let key = key.map(|k| format!("#EXT-X-KEY:METHOD=AES-128,URI=\"{k}\"\n")).unwrap_or_default();
            format!("#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:0\n{key}#EXTINF:2.0,\n{segment}\n#EXTINF:2.0,\n{segment}\n#EXT-X-ENDLIST\n")
        };
        let dash = |base: &str| {
            format!(
                r#"<?xml version="1.0"?>
<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="static" mediaPresentationDuration="PT4S" minBufferTime="PT2S" profiles="urn:mpeg:dash:profile:isoff-on-demand:2011">
  <BaseURL>{base}/</BaseURL>
  <Period><AdaptationSet mimeType="video/mp4"><Representation id="v" bandwidth="500000" codecs="avc1.64001f" width="640" height="360"><BaseURL>video.mp4</BaseURL></Representation></AdaptationSet></Period>
</MPD>"#
            )
        };
        let video_page = |src: &str, kind: &str| {
            format!("<html><head><title>clip</title></head><body><video controls><source src=\"{src}\" type=\"{kind}\"></video></body></html>")
        };
        let mpegurl = "application/vnd.apple.mpegurl";
        let cases = [
            ("redirect", Route::redirect(&format!("{forbidden}/page.html"))),
            ("hls-segments", Route::bytes(hls(&format!("{forbidden}/seg.ts"), None), mpegurl)),
            ("hls-key", Route::bytes(hls(&app.server.url("/seg-ok.ts"), Some(&format!("{forbidden}/key"))), mpegurl)),
            ("hls-file", Route::bytes(hls(&file, None), mpegurl)),
            ("dash", Route::bytes(dash(&forbidden), "application/dash+xml")),
            ("dash-file", Route::bytes(dash(&format!("file://{}", canary.path.parent().unwrap().display())), "application/dash+xml")),
            ("rtsp", Route::html(&video_page(&format!("rtsp://127.0.0.1:{}/live", sentinel.port), "video/mp4"))),
            ("rtmp", Route::html(&video_page(&format!("rtmp://127.0.0.1:{}/live/clip", sentinel.port), "video/mp4"))),
            ("ftp", Route::html(&video_page(&format!("ftp://127.0.0.1:{}/clip.mp4", sentinel.port), "video/mp4"))),
            ("hls-page", Route::html(&video_page(&app.server.url("/hls-segments"), mpegurl))),
        ];
        app.server.add("/seg-ok.ts", Route::file(app.fixtures.path("h264_aac_faststart.mp4"), "video/mp2t"));
        let mut ids = Vec::new();
        for (name, route) in cases {
            let url = app.server.add(&format!("/{name}"), route);
            ids.push((name, app.capture(&url).await["id"].as_str().unwrap().to_string()));
        }
        for (name, id) in ids {
            let item = app.wait_terminal(&id).await;
            assert_ne!(item["status"], "completed", "{name}: {item:#}");
        }
        assert_eq!(sentinel.hits(), 0, "a forbidden address was reached: {:?}", sentinel.heard());
        assert!(!canary.found_under(&app.settings.storage.media_root), "the canary's bytes landed in media_root");
    }
}
