//! Observability: the metrics a capture leaves behind (checked by promtool and scraped by a
//! real Prometheus), gauges that follow the queue, the metrics listener and switch, bounded
//! cardinality, readiness, request ids, the storage sweep, and the deploy files.

use std::collections::BTreeSet;
use std::num::NonZero;
use std::time::Duration;

use futures_util::StreamExt;
use serde_json::Value;

use crate::exposition::Scrape;
use crate::fixture_server::Route;
use crate::helpers::{Backend, TestApp, on_both_backends, spawn_app, spawn_app_with, wait_for};
use crate::prometheus_tools::{PrometheusServer, deploy_dir, run_promtool};

/// Waits until a scrape satisfies `check`; returns that scrape (fails with the last one).
async fn scrape_until(app: &TestApp, what: &str, check: impl Fn(&Scrape) -> bool) -> Scrape {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let scrape = app.scrape().await;
        if check(&scrape) {
            return scrape;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{what} never held:\n{}",
            scrape.text
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

on_both_backends! {
    async fn a_capture_is_counted_end_to_end_and_promtool_finds_nothing_to_report(backend: Backend) {
        let app = spawn_app(backend).await;
        let url = app.server.add("/clip.mp4", Route::file(app.fixtures.path("h264_aac.mp4"), "video/mp4"));
        let item = app.capture_and_wait(&url).await;
        assert_eq!(item["status"], "completed", "{item}");
        let id = item["id"].as_str().unwrap();
        assert_eq!(app.post_capture(&url).await.status(), 200, "the same URL again");
        assert_eq!(app.post_capture("not a url").await.status(), 400);
        let video = app.client.get(app.url(&format!("/api/videos/{id}/stream"))).send().await.unwrap();
        let streamed = video.bytes().await.unwrap().len() as f64;

        // Storage counts the files at the commit, a moment before the job completes: wait for a
        // refresh taken after both, which the gauges reach by their next period.
        let scrape = scrape_until(&app, "gauges show the stored video and an empty queue", |s| {
            s.value("prsnl_storage_files", &[("kind", "videos")]) == 1.0
                && s.value("prsnl_storage_files", &[("kind", "thumbnails")]) == 3.0
                && s.value("prsnl_queue_jobs", &[]) == 0.0
        })
        .await;
        let api = |outcome| scrape.value("prsnl_capture_requests_total", &[("source", "api"), ("outcome", outcome)]);
        assert_eq!((api("accepted"), api("duplicate"), api("rejected")), (1.0, 1.0, 1.0));
        assert_eq!(scrape.value("prsnl_capture_requests_total", &[("source", "telegram")]), 0.0);
        assert_eq!(
            scrape.value("prsnl_downloads_total", &[("platform", "generic"), ("outcome", "success"), ("code", "none")]),
            1.0
        );
        assert_eq!(scrape.value("prsnl_download_duration_seconds_count", &[("platform", "generic")]), 1.0);
        for stage in ["probe", "thumbnails"] {
            assert_eq!(
                scrape.value("prsnl_processing_duration_seconds_count", &[("stage", stage), ("outcome", "success")]),
                1.0,
                "{stage}"
            );
        }
        assert_eq!(
            scrape.value("prsnl_job_attempts_total", &[("kind", "capture"), ("outcome", "completed")]),
            1.0
        );
        assert_eq!(
            scrape.value(
                "prsnl_http_requests_total",
                &[("route", "/api/capture"), ("method", "POST"), ("status_class", "2xx")]
            ),
            2.0
        );
        assert_eq!(
            scrape.value("prsnl_http_requests_total", &[("route", "/api/videos/{id}/stream"), ("status_class", "2xx")]),
            1.0
        );
        assert_eq!(scrape.value("prsnl_http_streamed_bytes_total", &[]), streamed);
        assert!(scrape.value("prsnl_storage_bytes", &[("kind", "videos")]) > 0.0);
        assert!(scrape.value("prsnl_disk_total_bytes", &[]) > 0.0);
        assert_eq!(scrape.value("prsnl_queue_jobs", &[]), 0.0, "nothing left to do");
        assert_eq!(scrape.value("prsnl_breaker_state", &[("state", "closed")]), 5.0);
        assert!(scrape.value("prsnl_gauges_refreshed_timestamp_seconds", &[]) > 1.7e9);
        assert!(scrape.value("process_resident_memory_bytes", &[]) > 0.0);
        let build: Vec<_> = scrape.matching("prsnl_build_info", &[]).collect();
        assert_eq!(build.len(), 1);
        assert_eq!(build[0].labels["version"], env!("CARGO_PKG_VERSION"));
        assert!(!build[0].labels["git_commit"].is_empty());

        let (ok, report) = run_promtool(&["check", "metrics"], Some(&scrape.text));
        assert!(ok && report.trim().is_empty(), "promtool check metrics:\n{report}");
    }
}

on_both_backends! {
    async fn queue_and_breaker_gauges_follow_the_database(backend: Backend) {
        let app = spawn_app_with(backend, |s| s.platforms.generic.max_concurrent = NonZero::new(1).unwrap()).await;
        let slow = Route::file(app.fixtures.path("h264_aac.mp4"), "video/mp4").drip(1024, Duration::from_millis(200));
        let first = app.capture(&app.server.add("/slow1.mp4", slow.clone())).await;
        let second = app.capture(&app.server.add("/slow2.mp4", slow)).await;
        let capture = |state| [("kind", "capture"), ("state", state), ("platform", "generic")];
        let scrape = scrape_until(&app, "one running and one queued", |s| {
            s.value("prsnl_queue_jobs", &capture("running")) == 1.0
                && s.value("prsnl_queue_jobs", &capture("queued")) == 1.0
        })
        .await;
        assert_eq!(scrape.value("prsnl_jobs_in_flight", &[("kind", "capture")]), 1.0);
        assert_eq!(scrape.value("prsnl_queue_jobs", &[("platform", "youtube")]), 0.0);

        let now = prsnl::clock::now();
        let open = prsnl::domain::breaker::Breaker { failures: 2, open_until: now.as_millis() + 3_600_000 };
        prsnl::db::breakers::save(&app.ctx().db, prsnl::domain::Platform::Youtube, &open, Some("429"), now)
            .await
            .unwrap();
        scrape_until(&app, "youtube's breaker shows open", |s| {
            s.value("prsnl_breaker_state", &[("platform", "youtube"), ("state", "open")]) == 1.0
                && s.value("prsnl_breaker_state", &[("platform", "youtube"), ("state", "closed")]) == 0.0
        })
        .await;

        // The queued one first, so that it never starts running.
        for item in [&second, &first] {
            let id = item["id"].as_str().unwrap();
            let deleted = app.client.delete(app.url(&format!("/api/videos/{id}"))).send().await.unwrap();
            assert_eq!(deleted.status(), 204);
        }
        let scrape = scrape_until(&app, "the queue emptied", |s| s.value("prsnl_queue_jobs", &[]) == 0.0).await;
        assert_eq!(scrape.value("prsnl_jobs_in_flight", &[]), 0.0);
        assert_eq!(scrape.value("prsnl_queue_oldest_due_seconds", &[]), 0.0);
        assert_eq!(
            scrape.value("prsnl_job_attempts_total", &[("kind", "capture"), ("outcome", "cancelled")]),
            1.0,
            "only the running one had an attempt to cancel"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_move_to_their_own_listener_when_configured() {
    let app = spawn_app_with(Backend::Sqlite, |s| {
        s.server.metrics_listen = Some("127.0.0.1:0".parse().unwrap())
    })
    .await;
    let metrics = app.metrics_addr.expect("a metrics listener");
    assert_ne!(metrics, app.addr);
    assert_eq!(
        app.client
            .get(app.url("/metrics"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    let scrape = app.scrape().await;
    assert!(scrape.families.contains_key("prsnl_capture_requests_total"));
    let on_metrics = |path: &str| app.client.get(format!("http://{metrics}{path}")).send();
    assert_eq!(on_metrics("/healthz").await.unwrap().status(), 200);
    assert_eq!(
        on_metrics("/api/items").await.unwrap().status(),
        404,
        "the API is not on it"
    );
    assert_eq!(
        app.client
            .get(app.url("/api/items"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_can_be_switched_off() {
    let app = spawn_app_with(Backend::Sqlite, |s| s.metrics.enabled = false).await;
    assert_eq!(
        app.client
            .get(app.url("/metrics"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    let answer = app.client.get(app.url("/api/items")).send().await.unwrap();
    assert_eq!(answer.status(), 200);
    assert!(
        answer.headers().contains_key("x-request-id"),
        "logs do not depend on metrics"
    );
    let counted =
        app.ctx()
            .metrics
            .http
            .requests(prsnl::metrics::Route::Items, &http::Method::GET, 200);
    assert_eq!(counted, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_response_carries_a_request_id() {
    let app = spawn_app(Backend::Sqlite).await;
    let id_of = |r: &reqwest::Response| r.headers()["x-request-id"].to_str().unwrap().to_string();
    let given = app
        .client
        .get(app.url("/api/items"))
        .header("x-request-id", "edge-7f3a.1")
        .send()
        .await
        .unwrap();
    assert_eq!(id_of(&given), "edge-7f3a.1");
    let made = app.client.get(app.url("/api/items")).send().await.unwrap();
    let other = app
        .client
        .get(app.url("/no/such/route"))
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 404);
    let (a, b) = (id_of(&made), id_of(&other));
    assert!(
        a.len() == 16 && a.chars().all(|c| c.is_ascii_hexdigit()),
        "{a}"
    );
    assert_ne!(a, b);
    let hostile = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", "a b;c")
        .send()
        .await
        .unwrap();
    assert_ne!(id_of(&hostile), "a b;c");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_names_each_tool_with_its_version_and_fails_without_one() {
    let app = spawn_app(Backend::Sqlite).await;
    let ready = app.get_json("/readyz").await;
    assert_eq!(ready["status"], "ready", "{ready}");
    let version = |tool: &str| {
        ready["checks"][tool]["detail"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    assert!(version("ffmpeg").starts_with("ffmpeg version"), "{ready}");
    assert!(version("ffprobe").starts_with("ffprobe version"), "{ready}");
    assert!(version("yt-dlp").starts_with("20"), "{ready}");
    for platform in ["youtube", "instagram", "twitter", "tiktok", "generic"] {
        assert_eq!(ready["platforms"][platform]["breaker"], "closed", "{ready}");
    }
    app.ctx().begin_shutdown();
    let stopping = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(stopping.status(), 503);
    let stopping: Value = stopping.json().await.unwrap();
    assert_eq!(stopping["checks"]["accepting_work"]["ok"], false);

    let broken = spawn_app_with(Backend::Sqlite, |s| {
        s.download.ytdlp_path = "/nonexistent/yt-dlp".into()
    })
    .await;
    let answer = broken
        .client
        .get(broken.url("/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 503);
    let answer: Value = answer.json().await.unwrap();
    assert_eq!(answer["checks"]["yt-dlp"]["ok"], false, "{answer}");
    assert_eq!(answer["checks"]["ffmpeg"]["ok"], true, "{answer}");
    assert_eq!(
        broken
            .client
            .get(broken.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sweep_quarantines_orphans_and_clears_leftovers_without_touching_stored_videos() {
    let app = spawn_app_with(Backend::Sqlite, |s| s.storage.sweep_min_age_secs = 0).await;
    let url = app.server.add(
        "/keep.mp4",
        Route::file(app.fixtures.path("h264_aac.mp4"), "video/mp4"),
    );
    let item = app.capture_and_wait(&url).await;
    let id = item["id"].as_str().unwrap();
    let stored = app.files_under("videos");
    let orphan = app.media_path("videos/2020/01/orphan.mp4");
    std::fs::create_dir_all(orphan.parent().unwrap()).unwrap();
    std::fs::write(&orphan, b"left behind by a failed delete").unwrap();
    let work_dir = app.media_path(&format!("temp/processing/{}-1", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&work_dir).unwrap();
    std::fs::write(work_dir.join("download.part"), b"partial").unwrap();
    let resume = app.media_path(&format!("temp/resume/{}.part", uuid::Uuid::now_v7()));
    std::fs::write(&resume, b"partial").unwrap();

    let report: Value = app
        .client
        .post(app.url("/api/storage/cleanup"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(report["orphans"]["done"], 1, "{report}");
    assert_eq!(report["temp"]["done"], 1, "{report}");
    assert_eq!(report["resume"]["done"], 1, "{report}");
    assert_eq!(report["orphan_bytes"], 30, "{report}");
    assert!(!orphan.exists() && !work_dir.exists() && !resume.exists());
    assert!(
        app.media_path("quarantine/videos/2020/01/orphan.mp4")
            .exists()
    );
    assert_eq!(app.files_under("videos"), stored, "stored files stay");
    let stream = app
        .client
        .get(app.url(&format!("/api/videos/{id}/stream")))
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);

    let again: Value = app
        .client
        .post(app.url("/api/storage/cleanup"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(again["orphans"]["done"], 0, "{again}");
    let scrape = scrape_until(&app, "the sweep is counted", |s| {
        s.value(
            "prsnl_cleanup_operations_total",
            &[("operation", "orphan"), ("status", "quarantined")],
        ) == 1.0
    })
    .await;
    assert_eq!(
        scrape.value(
            "prsnl_cleanup_operations_total",
            &[("operation", "resume"), ("status", "removed")]
        ),
        1.0
    );
    // The capture's own work directory was removed after it, and the stale one by the sweep.
    assert!(
        scrape.value(
            "prsnl_cleanup_operations_total",
            &[("operation", "temp"), ("status", "removed")]
        ) >= 2.0
    );
}

/// Identifiers in a PromQL text that name this service's metrics.
fn metric_names(expr: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = expr;
    while let Some(start) = rest.find("prsnl_").or_else(|| rest.find("process_")) {
        let tail = &rest[start..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        names.insert(tail[..end].to_string());
        rest = &tail[end..];
    }
    names
}

/// Every query of the Grafana dashboard.
fn dashboard_queries() -> Vec<String> {
    let text = std::fs::read_to_string(deploy_dir().join("grafana-dashboard.json")).unwrap();
    let dashboard: Value = serde_json::from_str(&text).expect("the dashboard is valid JSON");
    let mut queries = Vec::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        for target in panel["targets"].as_array().expect("targets") {
            queries.push(target["expr"].as_str().expect("a PromQL expr").to_string());
        }
    }
    queries
}

/// Every `expr:` of the alert rules (block scalars included).
fn alert_expressions() -> Vec<String> {
    let text = std::fs::read_to_string(deploy_dir().join("alerts.yml")).unwrap();
    let mut exprs = Vec::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        let Some(value) = line.trim_start().strip_prefix("expr:") else {
            continue;
        };
        if value.trim() == "|" {
            let indent = lines.peek().map_or(0, |l| l.len() - l.trim_start().len());
            let mut block = String::new();
            while let Some(next) = lines.peek() {
                if next.trim().is_empty() || next.len() - next.trim_start().len() < indent {
                    break;
                }
                block.push_str(lines.next().unwrap().trim());
                block.push(' ');
            }
            exprs.push(block);
        } else {
            exprs.push(value.trim().to_string());
        }
    }
    exprs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_deploy_files_are_valid_and_name_only_exported_metrics() {
    let deploy = deploy_dir();
    let path = |name: &str| deploy.join(name).display().to_string();
    for args in [
        vec!["check", "config", &path("prometheus.yml")],
        vec!["check", "rules", &path("alerts.yml")],
        vec!["test", "rules", &path("alerts.test.yml")],
    ] {
        let (ok, report) = run_promtool(&args, None);
        assert!(ok, "promtool {args:?}:\n{report}");
    }

    let app = spawn_app(Backend::Sqlite).await;
    // The tool families appear with the first tool probe; a readiness probe runs one.
    let ready = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    let exported = app.scrape().await;
    let queries = dashboard_queries();
    let alerts = alert_expressions();
    assert!(
        queries.len() >= 10 && alerts.len() >= 7,
        "{queries:?} {alerts:?}"
    );
    for expr in queries.iter().chain(&alerts) {
        for name in metric_names(expr) {
            let family = exported.family_of(&name);
            assert!(
                exported.families.contains_key(&family),
                "{name} in `{expr}` is not exported"
            );
        }
    }
    let dashboard = queries.join("\n");
    for needed in [
        "prsnl_queue_jobs",
        "prsnl_downloads_total",
        "prsnl_download_duration_seconds_bucket",
        "prsnl_storage_bytes",
    ] {
        assert!(dashboard.contains(needed), "the dashboard shows {needed}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_prometheus_scrapes_the_service_and_evaluates_the_rules() {
    let app = spawn_app(Backend::Sqlite).await;
    let prometheus =
        PrometheusServer::start(&app.addr.to_string(), &[deploy_dir().join("alerts.yml")]).await;
    let up = wait_for(Duration::from_secs(30), || async {
        prometheus.scalar("up{job=\"prsnl\"}").await == Some(1.0)
    })
    .await;
    assert!(
        up,
        "Prometheus never saw the service up: {}",
        prometheus.api("targets", &[]).await
    );
    let accepted = "sum(prsnl_capture_requests_total{source=\"api\",outcome=\"accepted\"})";
    assert_eq!(prometheus.scalar(accepted).await, Some(0.0));

    let url = app.server.add(
        "/p.mp4",
        Route::file(app.fixtures.path("h264_aac.mp4"), "video/mp4"),
    );
    assert_eq!(app.capture_and_wait(&url).await["status"], "completed");
    let moved = wait_for(Duration::from_secs(30), || async {
        prometheus.scalar(accepted).await == Some(1.0)
            && prometheus
                .scalar("sum(prsnl_storage_files{kind=\"videos\"})")
                .await
                == Some(1.0)
    })
    .await;
    assert!(moved, "the capture never reached Prometheus");

    // Every dashboard query and alert expression parses and runs on this Prometheus.
    for expr in dashboard_queries().iter().chain(&alert_expressions()) {
        let answer = prometheus.api("query", &[("query", expr)]).await;
        assert_eq!(answer["status"], "success", "`{expr}`: {answer}");
    }
    let healthy = wait_for(Duration::from_secs(30), || async {
        let rules = prometheus.api("rules", &[]).await;
        let all: Vec<Value> = rules["data"]["groups"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
            .collect();
        all.len() == alert_expressions().len() && all.iter().all(|r| r["health"] == "ok")
    })
    .await;
    assert!(healthy, "{}", prometheus.api("rules", &[]).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_distinct_urls_add_no_series() {
    let app = spawn_app_with(Backend::Sqlite, |s| {
        s.platforms.generic.max_concurrent = NonZero::new(4).unwrap();
        s.download.max_concurrent = NonZero::new(4).unwrap();
    })
    .await;
    let base = app.server.url("");
    let submit = |range: std::ops::Range<usize>, tag: &'static str| {
        let app = &app;
        let base = base.clone();
        futures_util::stream::iter(range)
            .map(move |i| {
                let url = format!("{base}/gone/{tag}-{i}.mp4?v={i}");
                async move {
                    let ids = match i % 10 {
                        // Every tenth is refused at the door: a private address, a bad URL.
                        0 => {
                            app.post_capture(&format!(
                                "http://10.1.{}.{}/{tag}{i}",
                                i / 250,
                                i % 250
                            ))
                            .await
                        }
                        5 => {
                            app.post_capture(&format!("ftp://example.com/{tag}{i}"))
                                .await
                        }
                        _ => app.post_capture(&url).await,
                    };
                    ids.status()
                }
            })
            .buffer_unordered(8)
            .collect::<Vec<_>>()
    };
    let settled = || async {
        wait_for(Duration::from_secs(300), || async {
            let prsnl::db::Db::Sqlite(pool, _) = &app.ctx().db else { unreachable!() };
            let unfinished: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM items WHERE status IN ('queued', 'downloading', 'processing')",
            )
            .fetch_one(pool)
            .await
            .unwrap();
            unfinished == 0
        })
        .await
    };
    // Warm up every path once (accepted, refused, failed downloads, each route).
    let warm = submit(0..20, "warm").await;
    assert!(warm.iter().any(|s| s.is_success()) && warm.iter().any(|s| s.is_client_error()));
    assert!(settled().await, "the warm-up captures never finished");
    // The tools' versions are published by the first readiness probe, or a minute after
    // start, which a slow run reaches mid-test: publish them before the baseline.
    app.client.get(app.url("/readyz")).send().await.unwrap();
    assert!(
        wait_for(Duration::from_secs(60), || async {
            app.scrape()
                .await
                .series_per_family()
                .contains_key("prsnl_tool_info")
        })
        .await,
        "the readiness probe did not publish the tools' versions"
    );
    let before = app.scrape().await;

    let statuses = submit(0..1000, "load").await;
    assert_eq!(statuses.len(), 1000);
    assert_eq!(statuses.iter().filter(|s| s.as_u16() == 202).count(), 800);
    assert!(settled().await, "the captures never finished");
    let after = app.scrape().await;

    assert_eq!(
        after.value("prsnl_capture_requests_total", &[("source", "api")])
            - before.value("prsnl_capture_requests_total", &[("source", "api")]),
        1000.0
    );
    assert_eq!(
        after.value(
            "prsnl_downloads_total",
            &[("outcome", "failure"), ("code", "source_not_found")]
        ) - before.value(
            "prsnl_downloads_total",
            &[("outcome", "failure"), ("code", "source_not_found")]
        ),
        800.0
    );
    assert_eq!(
        before.series_per_family(),
        after.series_per_family(),
        "no family gained series"
    );
    for sample in &after.samples {
        for value in sample.labels.values() {
            assert!(
                !value.contains("gone")
                    && !value.contains("127.0.0.1")
                    && !value.contains("10.1.")
                    && value.len() < 64,
                "an unbounded label value: {} {:?}",
                sample.name,
                sample.labels
            );
        }
    }
}
