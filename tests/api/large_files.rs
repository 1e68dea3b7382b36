//! A real video over 100 MB through the whole pipeline, through yt-dlp (a page that embeds
//! it) and through the native download, in the real binary, whose private memory stays under
//! 100 MB meanwhile.

use std::time::Duration;

use serde_json::Value;

use crate::cli::{answers, free_port, kill_hard, prsnl};
use crate::fixture_server::{FixtureServer, Route};
use crate::fixtures::fixtures;
use crate::helpers::sha256_hex;

/// The process's private (anonymous) resident memory, in bytes.
fn rss_anon(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("RssAnon:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_video_over_100_mb_is_captured_by_yt_dlp_and_natively_in_bounded_memory() {
    let big = fixtures().path("big_noisy.mp4");
    let size = std::fs::metadata(&big).unwrap().len();
    assert!(
        size > 100 * 1024 * 1024,
        "the fixture must be over 100 MB: {size}"
    );
    let source_sha = sha256_hex(&std::fs::read(&big).unwrap());

    let server = FixtureServer::start().await;
    let direct = server.add("/big.mp4", Route::file(&big, "video/mp4"));
    server.add("/embedded/big.mp4", Route::file(&big, "video/mp4"));
    let page = server.add(
        "/watch.html",
        Route::html("<html><head><title>A big one</title></head><body><video controls><source src=\"/embedded/big.mp4\" type=\"video/mp4\"></video></body></html>"),
    );

    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = dir.path().join("prsnl.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"127.0.0.1:{port}\"\n[database]\nurl = \"sqlite://{db}\"\n\
             [storage]\nmedia_root = \"{media}\"\nmin_free_mb = 1\n[watch]\nenabled = false\n\
             [processing]\ncompress = \"off\"\n[security]\nssrf_allow = [\"127.0.0.1:{fixture}\"]\n",
            db = dir.path().join("prsnl.db").display(),
            media = dir.path().join("media").display(),
            fixture = server.addr().port(),
        ),
    )
    .unwrap();
    let mut child = prsnl()
        .args(["serve", "--config"])
        .arg(&config)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    prsnl::net::install_tls_provider();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    assert!(answers(&client, &base).await, "the service did not come up");

    let mut ids = Vec::new();
    for url in [&direct, &page] {
        let response = client
            .post(format!("{base}/api/capture"))
            .json(&serde_json::json!({ "url": url }))
            .send()
            .await
            .unwrap();
        assert!(
            response.status().is_success(),
            "{url}: {}",
            response.status()
        );
        let item: Value = response.json().await.unwrap();
        ids.push(item["id"].as_str().unwrap().to_string());
    }
    // Sample the private memory until both are finished.
    let mut peak = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(240);
    let items = loop {
        peak = peak.max(rss_anon(pid).unwrap_or(0));
        let mut items = Vec::new();
        for id in &ids {
            let item = crate::helpers::get_json(&client, &format!("{base}/api/items/{id}")).await;
            items.push(item);
        }
        if items.iter().all(|i| {
            matches!(
                i["status"].as_str(),
                Some("completed" | "failed" | "cancelled")
            )
        }) {
            break items;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not finished: {items:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    kill_hard(&mut child);
    for item in &items {
        assert_eq!(item["status"], "completed", "{item:#}");
        let meta = &item["metadata"];
        assert_eq!(meta["size_bytes"].as_u64(), Some(size), "{meta}");
        let stored = dir
            .path()
            .join("media")
            .join(meta["storage_path"].as_str().unwrap());
        assert_eq!(sha256_hex(&std::fs::read(&stored).unwrap()), source_sha);
    }
    assert!(peak > 0, "no memory sample was taken");
    assert!(
        peak < 100 * 1024 * 1024,
        "the service's private memory reached {} MiB",
        peak >> 20
    );
}
