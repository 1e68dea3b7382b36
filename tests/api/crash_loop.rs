//! The real binary killed with SIGKILL again and again while captures arrive. A process crash
//! is not the jobs' fault: every acknowledged capture ends completed, once, with whole files,
//! an empty temp tree and a clean database.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::Value;

use crate::cli::{answers, free_port, kill_hard, serve};
use crate::fixture_server::{FixtureServer, Route};
use crate::fixtures::fixtures;
use crate::helpers::{Backend, PgDatabase, on_both_backends, sha256_hex, wait_for};

/// Kill cycles per backend, and captures submitted in each.
const CYCLES: usize = 12;
const PER_CYCLE: usize = 3;

on_both_backends! {
    async fn captures_survive_a_burst_of_sigkills_whole_and_uncharged(backend: Backend) {
        let dir = tempfile::tempdir().unwrap();
        let pg = match &backend {
            Backend::Postgres(admin) => Some(PgDatabase::create(admin).await),
            Backend::Sqlite => None,
        };
        let database_url = match &pg {
            Some(pg) => pg.url.clone(),
            None => format!("sqlite://{}", dir.path().join("prsnl.db").display()),
        };
        let server = FixtureServer::start().await;
        let clip = fixtures().path("h264_aac_faststart.mp4");
        let clip_sha = sha256_hex(&std::fs::read(&clip).unwrap());
        let port = free_port();
        let config = dir.path().join("prsnl.toml");
        std::fs::write(
            &config,
            format!(
                "[server]\nlisten = \"127.0.0.1:{port}\"\n[database]\nurl = \"{database_url}\"\n\
                 [storage]\nmedia_root = \"{media}\"\nmin_free_mb = 1\n[watch]\nenabled = false\n\
                 [queue]\nlease_secs = 5\n[platforms.generic]\nmax_concurrent = 4\npause_min_ms = 0\npause_max_ms = 0\n\
                 [security]\nssrf_allow = [\"127.0.0.1:{fixture}\"]\n",
                media = dir.path().join("media").display(),
                fixture = server.addr().port(),
            ),
        )
        .unwrap();
        prsnl::net::install_tls_provider();
        let client = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap();
        let base = format!("http://127.0.0.1:{port}");

        // url → the id the service acknowledged for it.
        let mut acknowledged: HashMap<String, String> = HashMap::new();
        for cycle in 0..CYCLES {
            let mut child = serve(&config);
            assert!(answers(&client, &base).await, "cycle {cycle}: the service did not come up");
            for n in 0..PER_CYCLE {
                // Slow enough that kills land mid-download, mid-processing and mid-commit.
                let slow = Route::file(&clip, "video/mp4").drip(64 * 1024, Duration::from_millis(20));
                let url = server.add(&format!("/clip/{cycle}-{n}.mp4"), slow);
                let answer = client.post(format!("{base}/api/capture")).json(&serde_json::json!({ "url": url })).send().await;
                if let Ok(response) = answer
                    && response.status().is_success()
                {
                    let body: Value = response.json().await.unwrap();
                    acknowledged.insert(url, body["id"].as_str().unwrap().to_string());
                }
            }
            // Somewhere between 0.2 s and 1.6 s in: downloads, conversions, commits.
            tokio::time::sleep(Duration::from_millis(200 + (cycle as u64 * 373) % 1400)).await;
            kill_hard(&mut child);
        }
        assert!(acknowledged.len() >= CYCLES * PER_CYCLE - 2, "the service acknowledged only {} captures", acknowledged.len());

        // The last start runs to the end.
        let mut child = serve(&config);
        assert!(answers(&client, &base).await);
        let ids: Vec<&String> = acknowledged.values().collect();
        let settled = wait_for(Duration::from_secs(180), || {
            let client = client.clone();
            let base = base.clone();
            let ids = ids.clone();
            async move {
                for id in ids {
                    let Ok(response) = client.get(format!("{base}/api/items/{id}")).send().await else { return false };
                    let item: Value = response.json().await.unwrap_or_default();
                    if !matches!(item["status"].as_str(), Some("completed" | "failed" | "cancelled")) {
                        return false;
                    }
                }
                true
            }
        })
        .await;
        assert!(settled, "not every acknowledged capture finished");

        let mut completed = 0;
        for (url, id) in &acknowledged {
            let item: Value = client.get(format!("{base}/api/items/{id}")).send().await.unwrap().json().await.unwrap();
            // Nothing failed that would have completed: every source is a valid video.
            assert_eq!(item["status"], "completed", "{url}: {item:#}");
            // Files whole: the stored bytes are the source's (a faststart H.264/AAC MP4 is kept as it is).
            let stored = dir.path().join("media").join(item["metadata"]["storage_path"].as_str().unwrap());
            assert_eq!(sha256_hex(&std::fs::read(&stored).unwrap()), clip_sha, "{url}");
            completed += 1;
        }
        // Nothing twice: one item per acknowledged URL, and no others.
        let page: Value = client.get(format!("{base}/api/items?limit=100")).send().await.unwrap().json().await.unwrap();
        let all = page["items"].as_array().unwrap();
        assert_eq!(all.len(), completed, "items beyond the acknowledged ones: {page:#}");
        let mut urls: Vec<&str> = all.iter().map(|i| i["source_url"].as_str().unwrap()).collect();
        urls.sort();
        urls.dedup();
        assert_eq!(urls.len(), completed, "a URL was stored twice");

        // Crashes cost no attempt: every job completed with all but one of its attempts left.
        let db = prsnl::db::Db::connect(&{
            let mut settings = prsnl::Settings::defaults().database;
            settings.url = prsnl::settings::Secret::new(database_url.clone());
            settings
        })
        .await
        .unwrap();
        for id in acknowledged.values() {
            let jobs = prsnl::db::jobs::for_item(&db, prsnl::domain::ItemId::parse(id).unwrap()).await.unwrap();
            assert_eq!(jobs.len(), 1, "{jobs:?}");
            assert_eq!(jobs[0].max_attempts - jobs[0].attempt, 4, "a crash was charged: {jobs:?}");
        }
        kill_hard(&mut child);
        // Temp empty: no work directory or resume file is left behind.
        let leftovers: Vec<_> = ["temp/processing", "temp/resume"]
            .iter()
            .flat_map(|sub| std::fs::read_dir(dir.path().join("media").join(sub)).into_iter().flatten().flatten())
            .map(|e| e.path())
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
        assert!(db.integrity_ok().await.unwrap(), "the database's integrity check failed");
        db.close().await;
    }
}
