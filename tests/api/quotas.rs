//! Storage quotas: refused at submission, during the download and at commit (atomically, so
//! concurrent captures cannot overshoot), renditions counted, deleting frees at once; and the
//! admin's storage report and per-user gauges.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::fixture_server::Route;
use crate::helpers::{Backend, TestApp, on_both_backends, spawn_app, spawn_app_with, wait_for};
use crate::people::{As, People, capture_done, json_of, people, status};

async fn usage(app: &TestApp, who: &As) -> u64 {
    let (code, me) = json_of(app, who, Method::GET, "/api/me", None).await;
    assert_eq!(code, 200, "{me}");
    me["usage_bytes"].as_u64().unwrap()
}

async fn set_quota(app: &TestApp, p: &People, user: &str, quota: Value) {
    let (code, body) = json_of(
        app,
        &p.admin,
        Method::PATCH,
        &format!("/api/admin/users/{user}"),
        Some(json!({"quota": quota})),
    )
    .await;
    assert_eq!(code, 200, "{body}");
}

/// A new capture (202) followed to its end.
async fn capture_ended(app: &TestApp, who: &As, url: &str) -> Value {
    let (code, item) = crate::people::capture_ended(app, who, url).await;
    assert_eq!(code, 202, "{item}");
    item
}

fn stored_bytes(item: &Value) -> u64 {
    item["metadata"]["size_bytes"].as_u64().unwrap()
}

on_both_backends! {
    async fn concurrent_captures_never_take_a_user_past_their_quota(backend: Backend) {
        let app = spawn_app(backend).await;
        let p = people(&app).await;
        let names = ["h264_aac_faststart.mp4", "h264_silent.mp4", "corpus_h264_aac.mov"];
        let urls: Vec<String> = names
            .iter()
            .map(|name| app.server.add(&format!("/q/{name}"), Route::file(app.fixtures.path(name), "video/mp4").drip(64 * 1024, Duration::from_millis(5))))
            .collect();

        // What each video costs, measured by B (who has no quota) and then given up again.
        let mut costs = Vec::new();
        for url in &urls {
            let before = usage(&app, &p.b).await;
            let item = capture_done(&app, &p.b, url).await;
            costs.push(usage(&app, &p.b).await - before);
            let id = item["id"].as_str().unwrap();
            assert_eq!(status(&app, &p.b, Method::DELETE, &format!("/api/videos/{id}"), None).await, 204);
        }
        assert_eq!(usage(&app, &p.b).await, 0, "deleting frees the quota at once");
        let gone = wait_for(Duration::from_secs(10), || async { app.files_under("videos").is_empty() }).await;
        assert!(gone, "{:?}", app.files_under("videos"));

        // A's quota holds all three but half of the smallest: at least one must be refused.
        let total: u64 = costs.iter().sum();
        let quota = total - costs.iter().min().unwrap() / 2;
        set_quota(&app, &p, &p.a_id, json!(quota)).await;
        let (first, second, third) = tokio::join!(
            capture_ended(&app, &p.a, &urls[0]),
            capture_ended(&app, &p.a, &urls[1]),
            capture_ended(&app, &p.a, &urls[2]),
        );
        let items = [first, second, third];
        let completed: Vec<&Value> = items.iter().filter(|i| i["status"] == "completed").collect();
        let refused: Vec<&Value> = items.iter().filter(|i| i["status"] == "failed").collect();
        assert_eq!(completed.len() + refused.len(), 3, "{items:?}");
        assert!(!refused.is_empty(), "all three fit in a quota made too small for them: {items:?}");
        for item in &refused {
            assert_eq!(item["error"]["code"], "quota_exceeded", "{item}");
            let message = item["error"]["message"].as_str().unwrap();
            assert!(message.contains(&format!("of {quota}")), "the figures are missing: {message}");
        }
        let used = usage(&app, &p.a).await;
        assert!(used <= quota, "{used} > {quota}");
        assert!(used >= completed.iter().map(|i| stored_bytes(i)).sum::<u64>());
        // Nothing of a refused capture stays on disk: one video and three thumbnails per
        // stored item, and no work files.
        let tidy = wait_for(Duration::from_secs(10), || async {
            app.files_under("videos").len() == completed.len()
                && app.files_under("thumbnails").len() == 3 * completed.len()
                && app.files_under("temp").is_empty()
        })
        .await;
        assert!(tidy, "{:?} {:?} {:?}", app.files_under("videos"), app.files_under("thumbnails"), app.files_under("temp"));

        // Full now: a submission is refused at the door, with the figures.
        set_quota(&app, &p, &p.a_id, json!(used)).await;
        let (code, body) = json_of(&app, &p.a, Method::POST, "/api/capture", Some(json!({"url": app.server.url("/q/other.mp4")}))).await;
        assert_eq!(code, 403, "{body}");
        assert_eq!(body["error"]["code"], "quota_exceeded");
        assert_eq!((body["error"]["usage_bytes"].as_u64(), body["error"]["quota_bytes"].as_u64()), (Some(used), Some(used)), "{body}");
        let kept = completed[0]["id"].as_str().unwrap();
        // What they already have is still answered: nothing new would be stored.
        let (code, again) = json_of(&app, &p.a, Method::POST, "/api/capture", Some(json!({"url": completed[0]["source_url"]}))).await;
        assert_eq!((code, again["id"].as_str()), (200, Some(kept)), "{again}");
        // Deleting frees it at once.
        assert_eq!(status(&app, &p.a, Method::DELETE, &format!("/api/videos/{kept}"), None).await, 204);
        assert!(usage(&app, &p.a).await < used);
        assert_eq!(status(&app, &p.a, Method::GET, "/api/storage/stats", None).await, 200);
    }
}

on_both_backends! {
    async fn renditions_and_downloads_count_against_the_quota(backend: Backend) {
        let app = spawn_app(backend).await;
        let p = people(&app).await;
        let url = app.server.add("/clip.mp4", Route::file(app.fixtures.path("h264_aac_faststart.mp4"), "video/mp4"));
        let item = capture_done(&app, &p.a, &url).await;
        let id = item["id"].as_str().unwrap().to_string();
        let used = usage(&app, &p.a).await;

        // A full quota refuses a transcode at the door.
        set_quota(&app, &p, &p.a_id, json!(used)).await;
        let (code, body) = json_of(&app, &p.a, Method::POST, &format!("/api/videos/{id}/transcode"), Some(json!({"quality": "360p"}))).await;
        assert_eq!((code, body["error"]["code"].as_str()), (403, Some("quota_exceeded")), "{body}");
        assert_eq!(body["error"]["usage_bytes"].as_u64(), Some(used), "{body}");

        // A rendition does not fit in the 1000 bytes left: refused, and no file stays.
        set_quota(&app, &p, &p.a_id, json!(used + 1000)).await;
        let (code, body) = json_of(&app, &p.a, Method::POST, &format!("/api/videos/{id}/transcode"), Some(json!({"quality": "360p"}))).await;
        assert_eq!(code, 202, "{body}");
        let job = body["job_id"].as_str().unwrap().to_string();
        let db = app.open_db().await;
        let failed = wait_for(Duration::from_secs(60), || async {
            let job = prsnl::db::jobs::get(&db, prsnl::domain::JobId::parse(&job).unwrap()).await.unwrap().unwrap();
            job.state == prsnl::domain::JobState::Failed
        })
        .await;
        assert!(failed, "the over-quota transcode did not fail");
        let job = prsnl::db::jobs::get(&db, prsnl::domain::JobId::parse(&job).unwrap()).await.unwrap().unwrap();
        assert_eq!(job.last_error.as_ref().map(|e| e.code.as_str()), Some("quota_exceeded"), "{job:?}");
        let tidy = wait_for(Duration::from_secs(10), || async { app.files_under("videos").len() == 1 }).await;
        assert!(tidy, "{:?}", app.files_under("videos"));
        assert_eq!(usage(&app, &p.a).await, used);

        // With room, the rendition is made and counts.
        set_quota(&app, &p, &p.a_id, json!("1GiB")).await;
        let (code, _) = json_of(&app, &p.a, Method::POST, &format!("/api/videos/{id}/transcode"), Some(json!({"quality": "360p"}))).await;
        assert_eq!(code, 202);
        let made = wait_for(Duration::from_secs(60), || async {
            let (_, meta) = json_of(&app, &p.a, Method::GET, &format!("/api/videos/{id}/metadata"), None).await;
            meta["renditions"].as_array().is_some_and(|r| !r.is_empty())
        })
        .await;
        assert!(made);
        let (_, meta) = json_of(&app, &p.a, Method::GET, &format!("/api/videos/{id}/metadata"), None).await;
        let rendition_bytes = meta["renditions"][0]["size_bytes"].as_u64().unwrap();
        assert_eq!(usage(&app, &p.a).await, used + rendition_bytes);

        // A download larger than what is left of the quota stops at the quota's budget.
        let used = usage(&app, &p.a).await;
        set_quota(&app, &p, &p.a_id, json!(used + 1000)).await;
        let big = app.server.add("/big.mp4", Route::file(app.fixtures.path("h264_aac.mp4"), "video/mp4"));
        let refused = capture_ended(&app, &p.a, &big).await;
        assert_eq!(refused["status"], "failed", "{refused}");
        assert_eq!(refused["error"]["code"], "quota_exceeded", "{refused}");
        assert!(refused["error"]["message"].as_str().unwrap().contains("left in the storage quota"), "{refused}");
        let tidy = wait_for(Duration::from_secs(10), || async { app.files_under("temp").is_empty() && app.files_under("videos").len() == 2 }).await;
        assert!(tidy, "{:?} {:?}", app.files_under("temp"), app.files_under("videos"));

        // The admin's report: totals by kind, platform and user, and today's history; the
        // per-user gauges carry ids, never names.
        assert_eq!(status(&app, &p.a, Method::GET, "/api/admin/storage/metrics", None).await, 403);
        let (code, report) = json_of(&app, &p.admin, Method::GET, "/api/admin/storage/metrics", None).await;
        assert_eq!(code, 200, "{report}");
        assert_eq!(report["by_kind"]["videos"]["files"], 1, "{report}");
        assert_eq!(report["by_kind"]["renditions"]["bytes"].as_u64(), Some(rendition_bytes));
        let generic = report["by_platform"].as_array().unwrap().iter().find(|p| p["platform"] == "generic").unwrap();
        assert_eq!(generic["items"], 1);
        let alice = report["by_user"].as_array().unwrap().iter().find(|u| u["id"] == p.a_id.as_str()).unwrap();
        assert_eq!((alice["name"].as_str(), alice["usage_bytes"].as_u64()), (Some("alice"), Some(used)));
        assert_eq!(alice["quota_bytes"].as_u64(), Some(used + 1000));
        let today = report["generated_at"].as_str().unwrap()[..10].to_string();
        let history = report["history"].as_array().unwrap();
        assert!(history.iter().any(|d| d["date"] == today.as_str()), "{report}");
        let counted = wait_for(Duration::from_secs(10), || async {
            let text = app.client.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
            text.contains(&format!("prsnl_user_usage_bytes{{user=\"{}\"}} {used}", p.a_id))
                && text.contains(&format!("prsnl_user_quota_bytes{{user=\"{}\"}} {}", p.a_id, used + 1000))
        })
        .await;
        let text = app.client.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
        assert!(counted, "{}", text.lines().filter(|l| l.contains("prsnl_user")).collect::<Vec<_>>().join("\n"));
        assert!(!text.contains("alice") && !text.contains("bob"), "a user name reached /metrics");
    }
}

#[tokio::test]
async fn the_usage_history_is_recorded_with_metrics_off() {
    let app = spawn_app_with(Backend::Sqlite, |s| s.metrics.enabled = false).await;
    let db = app.open_db().await;
    let today = prsnl::clock::now().day().unwrap();
    let recorded = wait_for(Duration::from_secs(20), || async {
        prsnl::db::usage_history::has_day(&db, &today)
            .await
            .unwrap()
    })
    .await;
    assert!(recorded, "no usage history for {today}");
    let rows = prsnl::db::usage_history::since(&db, &today).await.unwrap();
    // The vault's row, and one for the first admin.
    assert!(rows.iter().any(|r| r.user_id.is_none()), "{rows:?}");
    assert!(rows.iter().any(|r| r.user_id.is_some()), "{rows:?}");
}
