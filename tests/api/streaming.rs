//! Streaming: RFC 9110 ranges byte for byte, real media clients, flat memory.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::StreamExt;

use crate::fixture_server::Route;
use crate::helpers::{on_both_backends, seed_completed_video, sha256_hex, spawn_app};

/// One row of a golden table: request Range → status, Content-Range, body slice.
struct Row {
    range: Option<&'static str>,
    status: u16,
    content_range: Option<String>,
    body: std::ops::Range<usize>,
}

fn row(
    range: Option<&'static str>,
    status: u16,
    content_range: Option<&str>,
    body: std::ops::Range<usize>,
) -> Row {
    Row {
        range,
        status,
        content_range: content_range.map(String::from),
        body,
    }
}

async fn check_golden_table(app: &crate::helpers::TestApp, bytes: &[u8], rows: &[Row]) {
    let id = app.seed_completed_video(bytes).await;
    let url = app.url(&format!("/api/videos/{id}/stream"));
    for r in rows {
        let mut request = app.client.get(&url);
        if let Some(range) = r.range {
            request = request.header("range", range);
        }
        let response = request.send().await.unwrap();
        let what = format!("{} bytes, Range {:?}", bytes.len(), r.range);
        assert_eq!(response.status().as_u16(), r.status, "{what}");
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .map(|v| v.to_str().unwrap().to_string())
        };
        assert_eq!(header("content-range"), r.content_range, "{what}");
        assert_eq!(
            header("content-length"),
            Some(r.body.len().to_string()),
            "{what}"
        );
        assert_eq!(header("accept-ranges").as_deref(), Some("bytes"), "{what}");
        let body = response.bytes().await.unwrap();
        assert_eq!(body.as_ref(), &bytes[r.body.clone()], "{what}");
    }
}

on_both_backends! {
    async fn ranges_on_a_100_byte_and_an_empty_file_follow_the_golden_table(backend: Backend) {
        let app = spawn_app(backend).await;
        let hundred: Vec<u8> = (0..100u8).collect();
        let rows = [
            row(None, 200, None, 0..100),
            row(Some("bytes=0-0"), 206, Some("bytes 0-0/100"), 0..1),
            row(Some("bytes=0-99"), 206, Some("bytes 0-99/100"), 0..100),
            row(Some("bytes=10-19"), 206, Some("bytes 10-19/100"), 10..20),
            row(Some("bytes=90-110"), 206, Some("bytes 90-99/100"), 90..100),
            row(Some("bytes=50-"), 206, Some("bytes 50-99/100"), 50..100),
            row(Some("bytes=-10"), 206, Some("bytes 90-99/100"), 90..100),
            row(Some("bytes=-500"), 206, Some("bytes 0-99/100"), 0..100),
            row(Some("bytes=99-"), 206, Some("bytes 99-99/100"), 99..100),
            row(Some("bytes=100-"), 416, Some("bytes */100"), 0..0),
            row(Some("bytes=100-200"), 416, Some("bytes */100"), 0..0),
            row(Some("bytes=-0"), 416, Some("bytes */100"), 0..0),
            // Multi-range: the first satisfiable range, as a single-part 206.
            row(Some("bytes=20-29,0-9"), 206, Some("bytes 0-9/100"), 0..10),
            row(Some("bytes=0-50,40-60"), 206, Some("bytes 0-60/100"), 0..61),
            row(Some("bytes=abc"), 200, None, 0..100),
            row(Some("bytes=20-10"), 200, None, 0..100),
            row(Some("items=0-9"), 200, None, 0..100),
            row(Some("0-9"), 200, None, 0..100),
        ];
        check_golden_table(&app, &hundred, &rows).await;

        let empty_rows = [
            row(None, 200, None, 0..0),
            row(Some("bytes=0-0"), 416, Some("bytes */0"), 0..0),
            row(Some("bytes=0-"), 416, Some("bytes */0"), 0..0),
            row(Some("bytes=-1"), 200, None, 0..0),
            row(Some("bytes=junk"), 200, None, 0..0),
        ];
        check_golden_table(&app, &[], &empty_rows).await;
    }
}

/// Deterministic pseudo-random numbers (xorshift64*), so a failure can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn pseudo_random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut rng = Rng(seed);
    let mut bytes = Vec::with_capacity(len + 8);
    while bytes.len() < len {
        bytes.extend_from_slice(&rng.next().to_le_bytes());
    }
    bytes.truncate(len);
    bytes
}

on_both_backends! {
    async fn a_thousand_random_ranges_of_a_50_mb_file_match_the_source(backend: Backend) {
        let app = spawn_app(backend).await;
        let bytes = pseudo_random_bytes(50 * 1024 * 1024, 0x5eed);
        let id = app.seed_completed_video(&bytes).await;
        let url = app.url(&format!("/api/videos/{id}/stream"));
        let len = bytes.len() as u64;
        let mut rng = Rng(42);
        let requests: Vec<(String, std::ops::Range<usize>)> = (0..1000)
            .map(|i| {
                let start = rng.below(len);
                match i % 10 {
                    // Open-ended and suffix forms too, not only first-last.
                    0 => (format!("bytes={start}-"), start as usize..len as usize),
                    1 => {
                        let n = 1 + rng.below(1 << 20);
                        (format!("bytes=-{n}"), len.saturating_sub(n) as usize..len as usize)
                    }
                    _ => {
                        let end = (start + rng.below(256 * 1024)).min(len - 1);
                        (format!("bytes={start}-{end}"), start as usize..end as usize + 1)
                    }
                }
            })
            .collect();
        let checks = futures_util::stream::iter(requests).map(|(range, slice)| {
            let (client, url, bytes) = (&app.client, &url, &bytes);
            async move {
                let response = client.get(url).header("range", &range).send().await.unwrap();
                assert_eq!(response.status(), 206, "{range}");
                let body = response.bytes().await.unwrap();
                assert!(body.as_ref() == &bytes[slice.clone()], "{range}: {} bytes differ from the source slice {slice:?}", body.len());
            }
        });
        checks.buffer_unordered(8).collect::<Vec<()>>().await;
    }
}

fn rss_anon_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("RssAnon:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// Run against the real binary, so its memory is measured alone (the test process holds
/// other tests' allocations).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_over_100_mb_streams_whole_while_memory_stays_flat() {
    let dir = tempfile::tempdir().unwrap();
    let media = dir.path().join("media");
    let db_url = format!("sqlite://{}", dir.path().join("prsnl.db").display());
    let mut settings = prsnl::Settings::defaults();
    settings.database.url = prsnl::settings::Secret::new(&db_url);
    let db = prsnl::db::Db::connect(&settings.database).await.unwrap();
    db.migrate().await.unwrap();
    let block = pseudo_random_bytes(1 << 20, 7);
    let bytes: Vec<u8> = block.iter().copied().cycle().take(120 << 20).collect();
    let expected = sha256_hex(&bytes);
    let media_root = prsnl::storage::MediaRoot::open(&media).unwrap();
    let id = seed_completed_video(&db, media_root.path(), &bytes).await;
    drop(bytes);
    db.close().await;

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = dir.path().join("prsnl.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"127.0.0.1:{port}\"\n[database]\nurl = \"{db_url}\"\n[storage]\nmedia_root = \"{}\"\n[watch]\nenabled = false\n",
            media.display()
        ),
    )
    .unwrap();
    let mut server = Command::new(env!("CARGO_BIN_EXE_prsnl"))
        .args(["serve", "--config"])
        .arg(&config)
        .env_remove("PRSNL_TEST_POSTGRES_URL")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    prsnl::net::install_tls_provider();
    let client = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    let up = crate::helpers::wait_for(Duration::from_secs(30), || async {
        client.get(format!("{base}/healthz")).send().await.is_ok()
    })
    .await;
    assert!(up, "prsnl serve did not come up");
    let pid = server.id();
    let baseline = rss_anon_kib(pid);

    let response = client
        .get(format!("{base}/api/videos/{id}/stream"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let mut body = response.bytes_stream();
    let mut hasher = <sha2::Sha256 as sha2::Digest>::new();
    let (mut received, mut peak, mut last_sample) = (0usize, baseline, Instant::now());
    while let Some(chunk) = body.next().await {
        let chunk = chunk.unwrap();
        received += chunk.len();
        sha2::Digest::update(&mut hasher, &chunk);
        if last_sample.elapsed() > Duration::from_millis(20) {
            peak = peak.max(rss_anon_kib(pid));
            last_sample = Instant::now();
        }
    }
    peak = peak.max(rss_anon_kib(pid));
    server.kill().unwrap();
    let _ = server.wait();
    assert_eq!(received, 120 << 20);
    assert_eq!(hex::encode(sha2::Digest::finalize(hasher)), expected);
    let growth_mib = peak.saturating_sub(baseline) / 1024;
    eprintln!(
        "anonymous memory: {} MiB before, {} MiB peak while streaming 120 MiB",
        baseline / 1024,
        peak / 1024
    );
    assert!(
        growth_mib < 16,
        "anonymous memory grew by {growth_mib} MiB while streaming"
    );
}

on_both_backends! {
    async fn ffprobe_ffmpeg_and_yt_dlp_read_the_stream_over_http(backend: Backend) {
        let app = spawn_app(backend).await;
        let url = app.server.add("/clip.mp4", Route::file(app.fixtures.path("h264_aac_faststart.mp4"), "video/mp4"));
        let item = app.capture_and_wait(&url).await;
        assert_eq!(item["status"], "completed");
        let stream = app.url(item["metadata"]["stream_url"].as_str().unwrap());
        let stored = app.media_path(item["metadata"]["storage_path"].as_str().unwrap());
        let work = tempfile::tempdir().unwrap();
        let (stream_for_tools, dir) = (stream.clone(), work.path().to_path_buf());
        let (duration, seek_ok, downloaded) = tokio::task::spawn_blocking(move || {
            let probe = Command::new("ffprobe")
                .args(["-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", &stream_for_tools])
                .output()
                .unwrap();
            let duration: f64 = String::from_utf8_lossy(&probe.stdout).trim().parse().unwrap();
            // A seek near the end: ffmpeg reads the index, then jumps there with a range request.
            let frame = dir.join("frame.jpg");
            let seek = Command::new("ffmpeg")
                .args(["-nostdin", "-v", "error", "-ss", "2.5", "-i", &stream_for_tools, "-frames:v", "1", "-y"])
                .arg(&frame)
                .status()
                .unwrap();
            let fetched = Command::new("yt-dlp")
                .args(["--ignore-config", "--no-playlist", "-q", "-o", "fetched.%(ext)s", "--", &stream_for_tools])
                .current_dir(&dir)
                .status()
                .unwrap();
            assert!(fetched.success());
            (duration, seek.success() && frame.exists(), std::fs::read(dir.join("fetched.mp4")).unwrap())
        })
        .await
        .unwrap();
        assert!((duration - 3.0).abs() < 0.05, "ffprobe read a duration of {duration}");
        assert!(seek_ok, "ffmpeg could not seek in the stream");
        assert_eq!(sha256_hex(&downloaded), sha256_hex(&std::fs::read(stored).unwrap()));
    }
}
