//! The supervision tree under faults: crashed actors restart, their jobs are retried and
//! complete, the API keeps answering; shutdowns and crashes lose nothing.

use std::num::NonZero;
use std::time::Duration;

use prsnl::db::jobs::{self, Claimant};
use prsnl::db::record::{self, NewCapture};
use prsnl::domain::{CaptureUrl, ErrorCode, ItemId, JobState, Platform, Source};
use prsnl::faults::FaultPoint;

use crate::fixture_server::Route;
use crate::helpers::{no_process_mentions, on_both_backends, spawn_app, spawn_app_with, wait_for};

fn item_id(item: &serde_json::Value) -> ItemId {
    ItemId::parse(item["id"].as_str().unwrap()).unwrap()
}

on_both_backends! {
    async fn a_crashed_downloader_restarts_and_its_job_completes(backend: Backend) {
        let app = spawn_app(backend).await;
        app.ctx().faults.arm(FaultPoint::DownloaderHandle, 1);
        let url = app.server.add("/clip.mp4", Route::file(app.fixtures.path("h264_silent.mp4"), "video/mp4"));
        let item = app.capture(&url).await;
        let id = item["id"].as_str().unwrap().to_string();
        // The API answers while the downloader is down and restarting.
        assert_eq!(app.client.get(app.url("/healthz")).send().await.unwrap().status(), 200);
        let done = app.wait_terminal(&id).await;
        assert_eq!(done["status"], "completed", "{done}");
        let job = &jobs::for_item(&app.ctx().db, item_id(&item)).await.unwrap()[0];
        assert_eq!(job.attempt, 2, "the crash cost one attempt");
        assert_eq!(job.last_error.as_ref().map(|e| e.code), Some(ErrorCode::WorkerCrashed));
        assert_eq!(app.ctx().metrics.actor_restarts("downloader"), 1);
        assert_eq!(app.client.get(app.url("/api/items")).send().await.unwrap().status(), 200);
    }
}

on_both_backends! {
    async fn a_crashed_processing_worker_restarts_and_its_job_completes(backend: Backend) {
        let app = spawn_app(backend).await;
        app.ctx().faults.arm(FaultPoint::ProcessingWorkerHandle, 1);
        let url = app.server.add("/clip.mp4", Route::file(app.fixtures.path("h264_silent.mp4"), "video/mp4"));
        let item = app.capture(&url).await;
        let done = app.wait_terminal(item["id"].as_str().unwrap()).await;
        assert_eq!(done["status"], "completed", "{done}");
        let job = &jobs::for_item(&app.ctx().db, item_id(&item)).await.unwrap()[0];
        assert_eq!(job.attempt, 2);
        assert_eq!(job.last_error.as_ref().map(|e| e.code), Some(ErrorCode::WorkerCrashed));
        assert_eq!(app.ctx().metrics.actor_restarts("processing_worker"), 1);
    }
}

on_both_backends! {
    async fn a_job_that_keeps_crashing_its_worker_fails_with_the_reason_and_is_kept(backend: Backend) {
        let app = spawn_app_with(backend, |s| s.platforms.generic.max_attempts = NonZero::new(2).unwrap()).await;
        app.ctx().faults.arm(FaultPoint::DownloaderHandle, 2);
        let url = app.server.add("/poison.mp4", Route::file(app.fixtures.path("h264_silent.mp4"), "video/mp4"));
        let item = app.capture(&url).await;
        let done = app.wait_terminal(item["id"].as_str().unwrap()).await;
        assert_eq!(done["status"], "failed");
        assert_eq!(done["error"]["code"], "worker_crashed");
        let job = &jobs::for_item(&app.ctx().db, item_id(&item)).await.unwrap()[0];
        assert_eq!((job.state, job.attempt), (JobState::Failed, 2));
        // The downloader survived both crashes and still works.
        let healthy = app.server.add("/fine.mp4", Route::file(app.fixtures.path("h264_silent.mp4"), "video/mp4"));
        let after = app.capture_and_wait(&healthy).await;
        assert_eq!(after["status"], "completed", "{after}");
    }
}

on_both_backends! {
    async fn a_shutdown_mid_job_exits_cleanly_and_the_job_completes_after_the_next_start(backend: Backend) {
        let mut app = spawn_app_with(backend, |s| s.server.shutdown_grace_secs = 1).await;
        let clip = app.fixtures.path("big_noisy.mp4");
        // About 30 s at this pace: the job is certainly mid-download at the shutdown.
        let url = app.server.add("/slow.mp4", Route::file(&clip, "video/mp4").drip(16 * 1024, Duration::from_millis(100)));
        let item = app.capture(&url).await;
        let id = item["id"].as_str().unwrap().to_string();
        let downloading = wait_for(Duration::from_secs(30), || async {
            let now = app.item(&id).await;
            now["progress"]["downloaded_bytes"].as_u64().unwrap_or(0) > 0
        })
        .await;
        assert!(downloading, "the download never started");
        let job_id = jobs::for_item(&app.ctx().db, item_id(&item)).await.unwrap()[0].id.to_string();

        // A generous bound: this checks that shutdown does not hang on the running job, not
        // how fast it is.
        let took = app.stop_app().await;
        assert!(took < Duration::from_secs(20), "shutdown took {took:?}");
        assert!(wait_for(Duration::from_secs(5), || async { no_process_mentions(&job_id) }).await, "a tool process of the job survived the shutdown");
        let db = app.open_db().await;
        let job = &jobs::for_item(&db, item_id(&item)).await.unwrap()[0];
        assert_eq!((job.state, job.attempt), (JobState::Queued, 0), "released without being charged");
        db.close().await;

        app.server.add("/slow.mp4", Route::file(&clip, "video/mp4"));
        app.restart().await;
        let done = app.wait_terminal(&id).await;
        assert_eq!(done["status"], "completed", "{done}");
        assert!(app.files_under("temp").is_empty());
    }
}

on_both_backends! {
    async fn a_job_leased_by_a_crashed_earlier_boot_completes_after_restart(backend: Backend) {
        let mut app = spawn_app(backend).await;
        let url = app.server.add("/orphan.mp4", Route::file(app.fixtures.path("h264_silent.mp4"), "video/mp4"));
        app.stop_app().await;
        // What a kill -9 mid-job leaves behind: a running job leased by this instance, and a
        // half-written work directory.
        let db = app.open_db().await;
        let parsed = CaptureUrl::parse(&url).unwrap();
        let record = record::capture(&db, &NewCapture { source_url: url.clone(), url: parsed, platform: Platform::Generic, platform_media_id: None, source: Source::Api, owner: None, max_attempts: 3 }, prsnl::clock::now(), &prsnl::faults::Faults::default())
            .await
            .unwrap();
        let claimant = Claimant { owner: app.settings.server.instance_id.clone(), boot_id: "crashed-boot".into(), lease: Duration::from_secs(3600) };
        let claimed = jobs::claim(&db, &claimant, jobs::Lane::Download(Platform::Generic), 1, prsnl::clock::now()).await.unwrap();
        assert_eq!(claimed.len(), 1);
        db.close().await;
        let leftover = app.settings.storage.media_root.join(format!("temp/processing/{}-1", claimed[0].lease.job));
        std::fs::create_dir_all(&leftover).unwrap();
        std::fs::write(leftover.join("partial.mp4.part"), b"half a video").unwrap();

        app.restart().await;
        let done = app.wait_terminal(&record.item.id.to_string()).await;
        assert_eq!(done["status"], "completed", "{done}");
        let job = &jobs::for_item(&app.ctx().db, record.item.id).await.unwrap()[0];
        assert_eq!(job.attempt, 2);
        assert_eq!(job.max_attempts, 4, "the crash gave the job its attempt back");
        assert!(!leftover.exists(), "the earlier boot's work directory was swept");
    }
}
