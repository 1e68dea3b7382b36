//! Every kind of actor crashing at a fault point (the downloaders', processing workers' and
//! bot's are in `supervision.rs` and `telegram.rs`): it is restarted, nothing is lost, work
//! resumes. Past the restart budget the whole tree stops, and the binary exits non-zero
//! (`cli/serve.rs` maps that end to a failure exit with the log line "the actor system
//! stopped on its own", after the supervisor's "... keeps failing (...); giving up").

use std::num::NonZero;
use std::time::Duration;

use crate::fixture_server::Route;
use crate::helpers::{Backend, TestApp, spawn_app, spawn_app_with, wait_for};
use prsnl::faults::FaultPoint;

/// A capture of a small video that completes.
async fn capture_completes(app: &TestApp, path: &str) {
    let url = app.server.add(
        path,
        Route::file(app.fixtures.path("h264_silent.mp4"), "video/mp4"),
    );
    let item = app.capture(&url).await;
    let done = app.wait_terminal(item["id"].as_str().unwrap()).await;
    assert_eq!(done["status"], "completed", "{done:#}");
}

async fn restarted(app: &TestApp, actor: &str) -> bool {
    wait_for(Duration::from_secs(30), || async {
        app.ctx().metrics.actor_restarts(actor) >= 1
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_pipeline_restarts_and_its_running_job_completes_uncharged() {
    let app = spawn_app(Backend::Sqlite).await;
    let slow = Route::file(app.fixtures.path("h264_silent.mp4"), "video/mp4")
        .drip(8 * 1024, Duration::from_millis(100));
    let url = app.server.add("/slow.mp4", slow);
    let item = app.capture(&url).await;
    let id = item["id"].as_str().unwrap().to_string();
    let downloading = wait_for(Duration::from_secs(30), || async {
        app.item(&id).await["status"] == "downloading"
    })
    .await;
    assert!(downloading);
    app.ctx().faults.arm(FaultPoint::PipelineTick, 1);
    assert!(
        restarted(&app, "pipeline").await,
        "the pipeline was not restarted"
    );
    let done = app.wait_terminal(&id).await;
    assert_eq!(done["status"], "completed", "{done:#}");
    let jobs = prsnl::db::jobs::for_item(&app.ctx().db, prsnl::domain::ItemId::parse(&id).unwrap())
        .await
        .unwrap();
    let budget = app.settings.platforms.generic.max_attempts.get();
    assert_eq!(
        jobs[0].max_attempts - jobs[0].attempt,
        budget - 1,
        "the Pipeline's crash cost the job no attempt: {jobs:?}"
    );
    capture_completes(&app, "/after.mp4").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_storage_actor_restarts_and_the_commit_is_retried() {
    let app = spawn_app(Backend::Sqlite).await;
    app.ctx().faults.arm(FaultPoint::StorageCommit, 1);
    capture_completes(&app, "/clip.mp4").await;
    assert_eq!(app.ctx().metrics.actor_restarts("storage"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crashed_supervisors_restart_and_their_work_is_retried() {
    let app = spawn_app(Backend::Sqlite).await;
    app.ctx()
        .faults
        .arm(FaultPoint::DownloadSupervisorHandle, 1);
    capture_completes(&app, "/one.mp4").await;
    assert_eq!(app.ctx().metrics.actor_restarts("download_supervisor"), 1);
    app.ctx().faults.arm(FaultPoint::ProcessingPoolHandle, 1);
    capture_completes(&app, "/two.mp4").await;
    assert_eq!(app.ctx().metrics.actor_restarts("processing_pool"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_metrics_actor_restarts_and_gauges_refresh_again() {
    let app = spawn_app(Backend::Sqlite).await;
    app.ctx().faults.arm(FaultPoint::MetricsRefresh, 1);
    assert!(restarted(&app, "metrics").await);
    capture_completes(&app, "/clip.mp4").await;
    // The restarted actor refreshes the gauges: the completed item shows up in them.
    let counted = wait_for(Duration::from_secs(10), || async {
        app.scrape()
            .await
            .value("prsnl_storage_files", &[("kind", "videos")])
            == 1.0
    })
    .await;
    assert!(counted, "the gauges were not refreshed after the restart");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crashed_doors_restart_the_watch_folder_and_the_http_server() {
    let app = spawn_app_with(Backend::Sqlite, |s| {
        s.watch.rescan_secs = NonZero::new(1).unwrap()
    })
    .await;
    app.ctx().faults.arm(FaultPoint::WatchRescan, 1);
    assert!(restarted(&app, "watch_folder").await);
    // The restarted watch folder takes a dropped video.
    let inbox = app.settings.watch.dir.clone();
    std::fs::copy(
        app.fixtures.path("h264_silent.mp4"),
        inbox.join("drop.part"),
    )
    .unwrap();
    std::fs::rename(inbox.join("drop.part"), inbox.join("drop.mp4")).unwrap();
    let taken = wait_for(Duration::from_secs(30), || async {
        app.item_count().await == 1
    })
    .await;
    assert!(taken, "the restarted watch folder did not take the file");

    app.ctx().faults.arm(FaultPoint::HttpAccept, 1);
    // The connection that trips the fault is lost; the server comes back on the same address.
    let _ = app.client.get(app.url("/healthz")).send().await;
    assert!(restarted(&app, "http_server").await);
    let back = wait_for(Duration::from_secs(30), || async {
        app.client
            .get(app.url("/healthz"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
    })
    .await;
    assert!(back, "the API did not come back");
    capture_completes(&app, "/after.mp4").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_restart_budget_the_tree_stops_instead_of_staying_half_alive() {
    let mut app = spawn_app(Backend::Sqlite).await;
    // The metrics actor crashes at every refresh (each second), faster than its budget allows.
    app.ctx().faults.arm(FaultPoint::MetricsRefresh, 1_000);
    let mut running = app.take_app();
    let ended = tokio::time::timeout(Duration::from_secs(120), running.wait()).await;
    assert_eq!(
        ended.expect("the tree gave up within two minutes"),
        prsnl::Exit::Failed
    );
}
