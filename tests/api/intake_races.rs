//! Recording a submission runs beside the Pipeline, not in its mailbox. These tests put a
//! resubmission of a failed capture and a delete or cancel of the same item in a chosen order
//! (a test holds one of them at a fault point inside its transaction) and check that each
//! order ends in a state one of the two serial orders would give, on both backends; and that
//! a submission is refused, and nothing is recorded for it, once the shutdown drain begins.

use std::time::Duration;

use prsnl::db::record::CaptureOutcome;
use prsnl::db::{items, jobs};
use prsnl::domain::{ErrorCode, ItemId, ItemStatus, JobState, Source};
use prsnl::faults::FaultPoint;

use crate::fixture_server::Route;
use crate::helpers::{TestApp, on_both_backends, spawn_app, wait_for};

/// Long enough for a blocked request to reach the database and wait there (a request that
/// is not blocked finishes well within it).
const SETTLE: Duration = Duration::from_millis(500);

/// A failed capture of a source that now answers, slowly: a reopened capture keeps running.
async fn failed_item(app: &TestApp, path: &str) -> (ItemId, String) {
    let url = app.server.url(path);
    let item = app.capture_and_wait(&url).await;
    assert_eq!(item["status"], "failed", "{item:#}");
    let slow = Route::file(app.fixtures.path("h264_aac_faststart.mp4"), "video/mp4")
        .drip(256, Duration::from_millis(200));
    app.server.add(path, slow);
    (ItemId::parse(item["id"].as_str().unwrap()).unwrap(), url)
}

fn unfinished(state: JobState) -> bool {
    matches!(state, JobState::Queued | JobState::Running)
}

/// The item exists, is waiting or running, and has exactly one unfinished job.
async fn assert_in_progress(app: &TestApp, id: ItemId) {
    let db = &app.ctx().db;
    let item = items::get(db, id).await.unwrap().expect("the item exists");
    assert!(
        !matches!(
            item.status,
            ItemStatus::Failed | ItemStatus::Cancelled | ItemStatus::Completed
        ),
        "{item:?}"
    );
    let jobs = jobs::for_item(db, id).await.unwrap();
    let open = jobs.iter().filter(|j| unfinished(j.state)).count();
    assert_eq!(open, 1, "one job works for the item: {jobs:?}");
}

on_both_backends! {
    /// The resubmission has found the failed item when a delete of it arrives: the delete
    /// waits, the item is reopened, then deleted with its new job. The resubmission is never
    /// answered with an item that is gone as if it were still there.
    async fn a_delete_waits_for_a_resubmission_that_found_the_item(backend: Backend) {
        let app = spawn_app(backend).await;
        let (id, url) = failed_item(&app, "/race-delete-after.mp4").await;

        let mut hold = app.ctx().faults.hold(FaultPoint::RecordAfterLookup);
        let intake = app.intake().clone();
        let submitted = url.clone();
        let resubmit = tokio::spawn(async move { intake.submit_url(&submitted, Source::Api, None).await });
        hold.arrived().await;
        let pipeline = app.handles().pipeline.clone();
        let delete = tokio::spawn(async move { pipeline.delete(id).await });
        tokio::time::sleep(SETTLE).await;
        assert!(!delete.is_finished(), "the delete went past a resubmission that holds the item");
        hold.release();

        let record = resubmit.await.unwrap().expect("the resubmission is recorded");
        assert_eq!(record.outcome, CaptureOutcome::Requeued);
        assert_eq!(record.item.id, id);
        assert!(record.job.is_some());
        assert!(delete.await.unwrap().expect("the delete answers"), "the delete found the item");
        let db = &app.ctx().db;
        assert!(items::get(db, id).await.unwrap().is_none(), "deleted last, the item is gone");
        assert!(jobs::for_item(db, id).await.unwrap().is_empty(), "its new job went with it");

        // What was deleted is captured anew when submitted again.
        let again = app.intake().submit_url(&url, Source::Api, None).await.unwrap();
        assert_eq!(again.outcome, CaptureOutcome::Created);
        assert_in_progress(&app, again.item.id).await;
    }
}

on_both_backends! {
    /// A delete of the failed item is about to commit when the resubmission arrives: the
    /// resubmission waits for it and then records a new item (never "existing", pointing at
    /// the deleted one).
    async fn a_resubmission_waits_for_a_delete_in_progress(backend: Backend) {
        let app = spawn_app(backend).await;
        let (id, url) = failed_item(&app, "/race-delete-before.mp4").await;

        let mut hold = app.ctx().faults.hold(FaultPoint::DeleteBeforeCommit);
        let pipeline = app.handles().pipeline.clone();
        let delete = tokio::spawn(async move { pipeline.delete(id).await });
        hold.arrived().await;
        let intake = app.intake().clone();
        let resubmit = tokio::spawn(async move { intake.submit_url(&url, Source::Api, None).await });
        tokio::time::sleep(SETTLE).await;
        assert!(!resubmit.is_finished(), "the resubmission read an item being deleted");
        hold.release();

        assert!(delete.await.unwrap().expect("the delete answers"));
        let record = resubmit.await.unwrap().expect("the resubmission is recorded");
        assert_eq!(record.outcome, CaptureOutcome::Created, "{record:?}");
        assert_ne!(record.item.id, id);
        assert!(items::get(&app.ctx().db, id).await.unwrap().is_none());
        assert_in_progress(&app, record.item.id).await;
    }
}

on_both_backends! {
    /// A cancel arrives while a resubmission holds the failed item. Either serial order is
    /// right, and the backends differ in which one they give (SQLite's cancel waits for the
    /// writer; PostgreSQL's finds nothing to cancel yet), but the item and its jobs agree
    /// with the cancel's answer.
    async fn a_cancel_during_a_resubmission_agrees_with_its_answer(backend: Backend) {
        let app = spawn_app(backend).await;
        let (id, url) = failed_item(&app, "/race-cancel.mp4").await;

        let mut hold = app.ctx().faults.hold(FaultPoint::RecordAfterLookup);
        let intake = app.intake().clone();
        let resubmit = tokio::spawn(async move { intake.submit_url(&url, Source::Api, None).await });
        hold.arrived().await;
        let pipeline = app.handles().pipeline.clone();
        let cancel = tokio::spawn(async move { pipeline.cancel(id).await });
        tokio::time::sleep(SETTLE).await;
        hold.release();

        let record = resubmit.await.unwrap().expect("the resubmission is recorded");
        assert_eq!(record.outcome, CaptureOutcome::Requeued);
        let cancelled = cancel.await.unwrap().expect("the cancel answers");
        if cancelled {
            // Resubmitted, then cancelled: nothing is left working for the item.
            let db = &app.ctx().db;
            let item = items::get(db, id).await.unwrap().unwrap();
            assert_eq!(item.status, ItemStatus::Cancelled, "{item:?}");
            let jobs = jobs::for_item(db, id).await.unwrap();
            assert!(jobs.iter().all(|j| !unfinished(j.state)), "{jobs:?}");
        } else {
            // Cancelled first (nothing to cancel then), then resubmitted: it works again.
            assert_in_progress(&app, id).await;
        }
    }
}

on_both_backends! {
    /// A submission being recorded when the shutdown begins is finished before the drain
    /// ends, and one arriving after is refused with `shutting_down` and leaves no row.
    async fn the_drain_waits_for_a_recording_and_refuses_what_comes_after(backend: Backend) {
        let mut app = spawn_app(backend).await;
        let slow = Route::file(app.fixtures.path("h264_aac_faststart.mp4"), "video/mp4")
            .drip(256, Duration::from_millis(200));
        let held_url = app.server.add("/drain-held.mp4", slow);
        let late_url = app.server.url("/drain-late.mp4");
        let ctx = app.ctx().clone();

        let mut hold = ctx.faults.hold(FaultPoint::RecordAfterLookup);
        let intake = app.intake().clone();
        let late_intake = intake.clone();
        let held = tokio::spawn(async move { intake.submit_url(&held_url, Source::Api, None).await });
        hold.arrived().await;
        let stopping = app.take_app();
        let stop = tokio::spawn(async move { stopping.shutdown().await });
        assert!(wait_for(Duration::from_secs(30), || async { ctx.is_shutting_down() }).await);
        let late = tokio::spawn(async move { late_intake.submit_url(&late_url, Source::Api, None).await });
        tokio::time::sleep(SETTLE).await;
        assert!(!stop.is_finished(), "the drain ended while a submission was being recorded");
        hold.release();

        let recorded = held.await.unwrap().expect("admitted before the drain, it is recorded");
        assert_eq!(recorded.outcome, CaptureOutcome::Created);
        let refused = late.await.unwrap().expect_err("a submission during the drain is refused");
        assert_eq!(refused.code, ErrorCode::ShuttingDown, "{refused:?}");
        assert_eq!(stop.await.unwrap(), prsnl::Exit::Clean);

        // Nothing was lost: the recorded one waits for the next boot; the refused one left no row.
        let db = app.open_db().await;
        let jobs = jobs::for_item(&db, recorded.item.id).await.unwrap();
        assert_eq!(jobs.len(), 1);
        assert_eq!(jobs[0].state, JobState::Queued, "{jobs:?}");
        let items: u64 = items::count_by_status(&db).await.unwrap().iter().map(|(_, n)| n).sum();
        assert_eq!(items, 1, "the refused submission left no item");
    }
}
