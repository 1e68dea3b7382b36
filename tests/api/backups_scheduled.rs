//! Backups the service runs by itself: on an admin's request over HTTP, and per schedule slot
//! exactly once however many instances share the database; their runs, leases and metrics.

use std::time::Duration;

use reqwest::Method;
use serde_json::Value;

use crate::backups::{run, seed, snapshots, text};
use crate::helpers::{TestApp, on_both_backends, spawn_app, spawn_app_with, wait_for};
use crate::people::{json_of, people, status};
use prsnl::db::backup_runs::{self, MAX_ATTEMPTS};

/// Polls `GET /api/admin/backups/{id}` as `who` until the run has ended.
async fn ended(app: &TestApp, who: &crate::people::As, id: &str) -> Value {
    let mut last = Value::Null;
    for _ in 0..600 {
        let (code, run) = json_of(
            app,
            who,
            Method::GET,
            &format!("/api/admin/backups/{id}"),
            None,
        )
        .await;
        assert_eq!(code, 200, "{run}");
        if run["state"] == "completed" || run["state"] == "failed" {
            return run;
        }
        last = run;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the backup run never ended: {last}");
}

on_both_backends! {
    /// An admin starts a backup: 202 with its run, which completes into a snapshot that
    /// verifies; the listing shows both, the metrics count it; members are refused.
    async fn an_admin_starts_a_backup_over_http_and_follows_it(backend: Backend) {
        let app = spawn_app(backend).await;
        seed(&app, 2, 32 * 1024).await;
        let who = people(&app).await;
        assert_eq!(status(&app, &who.a, Method::POST, "/api/admin/backups", None).await, 403);
        assert_eq!(status(&app, &who.a, Method::GET, "/api/admin/backups", None).await, 403);
        assert_eq!(status(&app, &crate::people::As::Nobody, Method::POST, "/api/admin/backups", None).await, 401);

        let (code, started) = json_of(&app, &who.admin, Method::POST, "/api/admin/backups", None).await;
        assert_eq!(code, 202, "{started}");
        let job = &started["job"];
        assert_eq!(job["reason"], "admin");
        assert!(["queued", "running"].contains(&job["state"].as_str().unwrap()), "{job}");
        let done = ended(&app, &who.admin, job["id"].as_str().unwrap()).await;
        assert_eq!(done["state"], "completed", "{done}");
        assert_eq!(done["items"], 2);
        assert!(done["bytes_new"].as_i64().unwrap() > 2 * 32 * 1024, "{done}");

        let dir = app.settings.backup.directory.clone();
        let [snapshot] = snapshots(&dir).try_into().unwrap();
        assert_eq!(snapshot.file_name().unwrap().to_str(), done["snapshot"].as_str());
        let out = run(&app.settings, &dir, &["backup", "verify", snapshot.to_str().unwrap()]).await;
        assert!(out.status.success(), "{}", text(&out));

        let (code, listing) = json_of(&app, &who.admin, Method::GET, "/api/admin/backups", None).await;
        assert_eq!(code, 200, "{listing}");
        assert_eq!(listing["runs"][0]["id"], job["id"]);
        assert_eq!(listing["snapshots"][0]["name"], done["snapshot"]);
        assert_eq!(listing["snapshots"][0]["items"], 2);
        assert_eq!(listing["schedule"]["interval_secs"], 0);
        assert_eq!(
            status(&app, &who.admin, Method::GET, "/api/admin/backups/no-such-run", None).await,
            404
        );

        let counted = wait_for(Duration::from_secs(20), || async {
            let scrape = app.scrape().await;
            scrape.value("prsnl_backups_total", &[("reason", "admin"), ("outcome", "completed")]) == 1.0
                && scrape.value("prsnl_backup_last_success_timestamp_seconds", &[]) > 0.0
                && scrape.value("prsnl_backup_bytes", &[("kind", "new")])
                    == done["bytes_new"].as_f64().unwrap()
        })
        .await;
        assert!(counted, "the backup metrics never told of the run");
    }
}

on_both_backends! {
    /// Two instances on one database with a schedule: the slot's run is recorded once and
    /// run once, into one snapshot.
    async fn two_instances_run_a_schedule_slot_once(backend: Backend) {
        let first = spawn_app_with(backend.clone(), |s| s.backup.interval = Some(Duration::from_secs(3600))).await;
        seed(&first, 1, 16 * 1024).await;
        let (url, media_root, dir) = (
            first.settings.database.url.clone(),
            first.settings.storage.media_root.clone(),
            first.settings.backup.directory.clone(),
        );
        let second = spawn_app_with(backend, |s| {
            s.database.url = url;
            s.storage.media_root = media_root;
            s.backup.directory = dir.clone();
            s.backup.interval = Some(Duration::from_secs(3600));
        })
        .await;
        let db = &first.ctx().db;
        let completed = wait_for(Duration::from_secs(60), || async {
            let runs = backup_runs::recent(db, 10).await.unwrap();
            runs.iter().any(|r| r.state == "completed")
        })
        .await;
        assert!(completed, "{:?}", backup_runs::recent(db, 10).await.unwrap());
        // Both instances have had their first look (they look at start); a second look at
        // the same slot changes nothing.
        for app in [&first, &second] {
            app.handles().backups.poke();
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
        let runs = backup_runs::recent(db, 10).await.unwrap();
        assert_eq!(runs.len(), 1, "{runs:?}");
        assert_eq!(runs[0].reason, "schedule");
        assert_eq!(runs[0].attempt, 1);
        assert!(runs[0].slot_key.starts_with("schedule:3600s:"), "{runs:?}");
        assert_eq!(snapshots(&dir).len(), 1);
        let scrape = second.scrape().await;
        assert_eq!(scrape.value("prsnl_backup_interval_seconds", &[]), 3600.0);
    }
}

on_both_backends! {
    /// A run whose instance died is taken over when its lease runs out, and one that keeps
    /// dying is failed rather than tried for ever; a live lease keeps others out.
    async fn a_run_whose_instance_died_is_taken_over_then_given_up(backend: Backend) {
        let (db, _dir, _pg) = crate::helpers::fresh_db(&backend).await;
        let t0 = prsnl::domain::Timestamp::from_millis(1_000_000);
        let minute = Duration::from_secs(60);
        assert!(backup_runs::enqueue(&db, "r1", "schedule:60s:0", "schedule", None, t0).await.unwrap());
        assert!(!backup_runs::enqueue(&db, "r2", "schedule:60s:0", "schedule", None, t0).await.unwrap());
        let mut now = t0;
        for attempt in 1..=MAX_ATTEMPTS {
            let owner = format!("instance-{attempt}");
            let run = backup_runs::claim(&db, &owner, now, now.plus(minute)).await.unwrap().unwrap();
            assert_eq!((run.attempt, run.state.as_str()), (attempt, "running"));
            // While its lease holds, nobody else starts a backup.
            assert!(backup_runs::claim(&db, "other", now, now.plus(minute)).await.unwrap().is_none());
            now = now.plus(minute * 2);
        }
        assert!(backup_runs::claim(&db, "last", now, now.plus(minute)).await.unwrap().is_none());
        let run = backup_runs::get(&db, "r1").await.unwrap().unwrap();
        assert_eq!(run.state, "failed");
        assert!(run.error.unwrap().contains("attempts"));
    }
}
