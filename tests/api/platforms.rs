//! Platforms: detection and dedup, native direct links, circuit breakers, rate limits,
//! cookies, throttle detection. A second fixture server plays "YouTube" (mapped with
//! `platforms.youtube.extra_hosts`); yt-dlp reaches it through its generic extractor.

use std::num::NonZero;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::fixture_server::{FixtureServer, Route};
use crate::helpers::{Backend, TestApp, on_both_backends, spawn_app, spawn_app_with, wait_for};

/// An app whose "YouTube" is `tube`, with `configure` applied on top.
async fn app_with_tube(
    backend: Backend,
    tube: &FixtureServer,
    configure: impl FnOnce(&mut prsnl::Settings),
) -> TestApp {
    let host = format!("127.0.0.1:{}", tube.addr().port());
    spawn_app_with(backend, move |s| {
        s.platforms.youtube.extra_hosts = vec![host.parse().unwrap()];
        s.security.ssrf_allow.push(host.parse().unwrap());
        configure(s);
    })
    .await
}

async fn readiness(app: &TestApp) -> Value {
    app.client
        .get(app.url("/readyz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn job_of(app: &TestApp, item: &Value) -> prsnl::db::jobs::JobRecord {
    let id = prsnl::domain::ItemId::parse(item["id"].as_str().unwrap()).unwrap();
    prsnl::db::jobs::for_item(&app.ctx().db, id)
        .await
        .unwrap()
        .remove(0)
}

on_both_backends! {
    async fn url_shapes_of_one_video_find_the_same_item(backend: Backend) {
        let app = spawn_app(backend).await;
        let first = app.capture("https://www.youtube.com/watch?v=dQw4w9WgXcQ&feature=share&utm_source=x").await;
        assert_eq!(first["platform"], "youtube");
        assert_eq!(first["platform_media_id"], "dQw4w9WgXcQ");
        assert_eq!(first["canonical_url"], "https://www.youtube.com/watch?v=dQw4w9WgXcQ");
        for shape in ["https://youtu.be/dQw4w9WgXcQ?si=Q1w2E3r4", "https://m.youtube.com/shorts/dQw4w9WgXcQ", "https://www.youtube-nocookie.com/embed/dQw4w9WgXcQ"] {
            let again = app.post_capture(shape).await;
            assert_eq!(again.status(), 200, "{shape}");
            assert_eq!(again.json::<Value>().await.unwrap()["id"], first["id"], "{shape}");
        }
        let tweet = app.capture("https://twitter.com/someone/status/1790000000000000001?s=20").await;
        assert_eq!(app.capture("https://x.com/i/status/1790000000000000001").await["id"], tweet["id"]);
        assert_eq!(app.item_count().await, 2);
    }
}

on_both_backends! {
    async fn direct_links_are_fetched_natively_and_resume_after_a_broken_transfer(backend: Backend) {
        let app = spawn_app(backend).await;
        let clip = app.fixtures.path("h264_aac_faststart.mp4");
        let url = app.server.add("/direct.mp4", Route::file(&clip, "video/mp4"));
        assert_eq!(app.capture_and_wait(&url).await["status"], "completed");
        // yt-dlp would have asked twice (its extractor, then the download).
        assert_eq!(app.server.hits("/direct.mp4"), 1);

        let size = std::fs::metadata(&clip).unwrap().len() as usize;
        let cut = app.server.add("/broken.mp4", Route::file(&clip, "application/octet-stream").cut_first_after(size / 3));
        let item = app.capture_and_wait(&cut).await;
        assert_eq!(item["status"], "completed", "{item}");
        let resumed: Vec<String> = app.server.log().into_iter().filter(|h| h.target == "/broken.mp4").filter_map(|h| h.range).collect();
        assert_eq!(resumed, vec![format!("bytes={}-", size / 3)], "the second attempt asks only for the rest");
        let stored = std::fs::read(app.media_path(item["metadata"]["storage_path"].as_str().unwrap())).unwrap();
        assert_eq!(stored, std::fs::read(&clip).unwrap(), "the resumed file is whole");
        assert_eq!(job_of(&app, &item).await.attempt, 2);
    }
}

on_both_backends! {
    async fn identical_content_shares_one_stored_file(backend: Backend) {
        let app = spawn_app(backend).await;
        let clip = app.fixtures.path("h264_silent.mp4");
        let a = app.capture_and_wait(&app.server.add("/a.mp4", Route::file(&clip, "video/mp4"))).await;
        let b = app.capture_and_wait(&app.server.add("/b.mp4", Route::file(&clip, "video/mp4"))).await;
        assert_ne!(a["id"], b["id"]);
        assert_eq!(b["metadata"]["storage_path"], a["metadata"]["storage_path"]);
        assert_eq!(app.files_under("videos").len(), 1);
        let stats: Value = app.client.get(app.url("/api/storage/stats")).send().await.unwrap().json().await.unwrap();
        assert_eq!(stats["videos"]["files"], 1);
        // The file stays while one item still has it.
        let a_id = a["id"].as_str().unwrap();
        assert_eq!(app.client.delete(app.url(&format!("/api/videos/{a_id}"))).send().await.unwrap().status(), 204);
        let b_stream = app.url(b["metadata"]["stream_url"].as_str().unwrap());
        assert_eq!(app.client.get(&b_stream).send().await.unwrap().bytes().await.unwrap().as_ref(), std::fs::read(&clip).unwrap().as_slice());
        let b_id = b["id"].as_str().unwrap();
        assert_eq!(app.client.delete(app.url(&format!("/api/videos/{b_id}"))).send().await.unwrap().status(), 204);
        assert!(wait_for(Duration::from_secs(10), || async { app.files_under("videos").is_empty() }).await);
    }
}

on_both_backends! {
    async fn a_refusing_platform_pauses_while_others_go_on_and_recovers(backend: Backend) {
        let tube = FixtureServer::start().await;
        let app = app_with_tube(backend, &tube, |s| {
            s.platforms.youtube.breaker_base_secs = NonZero::new(1).unwrap();
            s.platforms.youtube.breaker_max_secs = 2;
        })
        .await;
        tube.add("/watch", Route::status(429));
        let urls = ["AAAAAAAAAAA", "BBBBBBBBBBB"].map(|v| tube.url(&format!("/watch?v={v}")));
        let refused: Vec<Value> = futures_util::future::join_all(urls.iter().map(|u| app.capture(u))).await;
        let clip = app.fixtures.path("h264_silent.mp4");
        for i in 0..3 {
            let item = app.capture_and_wait(&app.server.add(&format!("/other{i}.mp4"), Route::file(&clip, "video/mp4"))).await;
            assert_eq!(item["status"], "completed", "other platforms go on");
        }
        let opened = wait_for(Duration::from_secs(30), || async { readiness(&app).await["platforms"]["youtube"]["refusals"].as_u64().unwrap_or(0) >= 1 }).await;
        assert!(opened, "{}", readiness(&app).await);
        let ready = readiness(&app).await;
        assert_eq!(ready["status"], "ready", "an open breaker does not make the service unready");
        assert!(ready["platforms"]["youtube"]["reason"].as_str().unwrap().contains("limiting"), "{ready}");
        for item in &refused {
            let now = app.item(item["id"].as_str().unwrap()).await;
            assert_ne!(now["status"], "failed", "refused jobs wait, they do not fail: {now}");
        }
        // The platform answers again: a probe goes through, the breaker closes, all complete.
        tube.add("/watch", Route::file(&clip, "video/mp4"));
        for item in &refused {
            let done = app.wait_terminal(item["id"].as_str().unwrap()).await;
            assert_eq!(done["status"], "completed", "{done}");
            assert_eq!(job_of(&app, &done).await.attempt, 1, "waiting for the breaker costs no attempt");
        }
        assert_eq!(readiness(&app).await["platforms"]["youtube"]["breaker"], "closed");
        assert_eq!(readiness(&app).await["platforms"]["generic"]["breaker"], "closed");
    }
}

on_both_backends! {
    async fn a_job_paused_by_the_breaker_survives_a_restart(backend: Backend) {
        let tube = FixtureServer::start().await;
        // Long enough that a restart on a loaded machine cannot outlast the pause.
        let mut app = app_with_tube(backend, &tube, |s| {
            s.platforms.youtube.breaker_base_secs = NonZero::new(10).unwrap();
            s.platforms.youtube.breaker_max_secs = 10;
        })
        .await;
        tube.add("/watch", Route::status(429));
        let item = app.capture(&tube.url("/watch?v=CCCCCCCCCCC")).await;
        let paused = wait_for(Duration::from_secs(30), || async {
            job_of(&app, &item).await.last_error.is_some_and(|e| e.code == prsnl::domain::ErrorCode::RateLimited)
        })
        .await;
        assert!(paused);
        app.restart().await;
        let ready = readiness(&app).await;
        assert_eq!(ready["platforms"]["youtube"]["breaker"], "open", "the pause outlives the restart: {ready}");
        let asked = tube.hits("/watch");
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(tube.hits("/watch"), asked, "nothing is asked of the platform while its breaker is open");
        tube.add("/watch", Route::file(app.fixtures.path("h264_silent.mp4"), "video/mp4"));
        let done = app.wait_terminal(item["id"].as_str().unwrap()).await;
        assert_eq!(done["status"], "completed", "{done}");
        assert_eq!(job_of(&app, &done).await.state, prsnl::domain::JobState::Completed);
    }
}

on_both_backends! {
    async fn twenty_jobs_keep_to_the_platforms_rate_and_concurrency(backend: Backend) {
        let tube = FixtureServer::start().await;
        let app = app_with_tube(backend, &tube, |s| {
            let yt = &mut s.platforms.youtube;
            yt.max_concurrent = NonZero::new(2).unwrap();
            yt.requests_per_minute = NonZero::new(240).unwrap(); // one start every 250 ms
            yt.burst = NonZero::new(1).unwrap();
        })
        .await;
        // Slow enough that downloads overlap when the cap lets them.
        tube.add("/watch", Route::file(app.fixtures.path("h264_silent.mp4"), "video/mp4").drip(8 * 1024, Duration::from_millis(40)));
        let ids: Vec<String> = (0..20).map(|i| format!("{i:0>11}")).collect();
        let urls: Vec<String> = ids.iter().map(|v| tube.url(&format!("/watch?v={v}"))).collect();
        let items = futures_util::future::join_all(urls.iter().map(|u| app.capture(u))).await;
        let ids_stored: Vec<&str> = items.iter().map(|item| item["id"].as_str().unwrap()).collect();
        for item in app.wait_all_terminal(&ids_stored).await {
            assert_eq!(item["status"], "completed", "{item}");
        }
        // Measured at the server: each job is one yt-dlp run, seen as requests for its URL.
        let log = tube.log();
        let spans: Vec<(Instant, Instant)> = ids
            .iter()
            .map(|v| {
                let mine: Vec<_> = log.iter().filter(|h| h.target.ends_with(&format!("v={v}"))).collect();
                assert!(!mine.is_empty(), "job {v} never reached the server");
                (mine.iter().map(|h| h.started).min().unwrap(), mine.iter().filter_map(|h| h.ended).max().unwrap())
            })
            .collect();
        let busiest = spans.iter().map(|(start, _)| spans.iter().filter(|(s, e)| s <= start && start < e).count()).max().unwrap();
        assert!(busiest <= 2, "{busiest} downloads ran at once; the cap is 2");
        let mut starts: Vec<Instant> = spans.iter().map(|(s, _)| *s).collect();
        starts.sort();
        // A lower bound only: a slow machine spaces starts further apart, never closer.
        for (k, start) in starts.iter().enumerate().skip(1) {
            let earliest = Duration::from_millis(250) * (k as u32 - 1);
            assert!(start.duration_since(starts[0]) >= earliest, "start {k} came {:?} after the first", start.duration_since(starts[0]));
        }
    }
}

on_both_backends! {
    async fn cookies_reach_yt_dlp_through_a_copy(backend: Backend) {
        let tube = FixtureServer::start().await;
        let dir = tempfile::tempdir().unwrap();
        let cookies = dir.path().join("youtube-cookies.txt");
        let text = "# Netscape HTTP Cookie File\n127.0.0.1\tFALSE\t/\tFALSE\t0\tsession\tsecret123\n";
        std::fs::write(&cookies, text).unwrap();
        let path = cookies.clone();
        let app = app_with_tube(backend, &tube, move |s| s.platforms.youtube.cookies_file = path).await;
        tube.add("/watch", Route::file(app.fixtures.path("h264_silent.mp4"), "video/mp4"));
        let item = app.capture_and_wait(&tube.url("/watch?v=DDDDDDDDDDD")).await;
        assert_eq!(item["status"], "completed");
        let sent: Vec<String> = tube.log().into_iter().filter_map(|h| h.cookie).collect();
        assert!(!sent.is_empty() && sent.iter().all(|c| c.contains("session=secret123")), "{sent:?}");
        assert_eq!(std::fs::read_to_string(&cookies).unwrap(), text, "the operator's file is never rewritten");
        assert_eq!(readiness(&app).await["platforms"]["youtube"]["cookies"], "ok");
        assert_eq!(readiness(&app).await["platforms"]["twitter"]["cookies"], "not configured");
    }
}

on_both_backends! {
    async fn a_download_far_below_its_announced_resolution_is_flagged(backend: Backend) {
        let app = spawn_app(backend).await;
        app.server.add_dir("/hls", &app.fixtures.path("hls_announces_1080p"));
        let item = app.capture_and_wait(&app.server.url("/hls/master.m3u8")).await;
        assert_eq!(item["status"], "completed", "{item}");
        assert_eq!(item["metadata"]["height"], 240);
        let warnings = item["warnings"].as_array().expect("a warning");
        assert!(warnings[0].as_str().unwrap().contains("1080p"), "{warnings:?}");
        let metrics = app.client.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
        assert!(metrics.contains(r#"prsnl_download_throttled_total{platform="generic"} 1"#), "{metrics}");
    }
}
