//! The durable queue's contract, run on both backends against the database layer directly.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prsnl::db::Db;
use prsnl::db::items::{self, Completion};
use prsnl::db::jobs::{self, Claimant, Lane, Lease, Subject};
use prsnl::db::outcome::{self, Charge, Completed, Effect, Requeue};
use prsnl::db::record::{self, NewCapture};
use prsnl::db::recovery;
use prsnl::domain::{
    CaptureUrl, ErrorCode, ItemId, JobError, JobId, JobState, MediaInfo, Platform, Source,
    Timestamp,
};

use crate::helpers::{fresh_db, on_both_backends};

fn claimant(owner: &str, boot: &str) -> Claimant {
    Claimant {
        owner: owner.into(),
        boot_id: boot.into(),
        lease: Duration::from_secs(60),
    }
}

async fn enqueue(db: &Db, n: usize, max_attempts: u32) -> Vec<ItemId> {
    let mut ids = Vec::with_capacity(n);
    for i in 0..n {
        let url = CaptureUrl::parse(&format!("https://example.com/video/{i}.mp4")).unwrap();
        let record = record::capture(
            db,
            &NewCapture {
                source_url: url.to_string(),
                url,
                platform: Platform::Generic,
                platform_media_id: None,
                source: Source::Api,
                owner: None,
                max_attempts,
            },
            now(),
            &prsnl::faults::Faults::default(),
        )
        .await
        .unwrap();
        ids.push(record.item.id);
    }
    ids
}

fn completion() -> Completion {
    Completion {
        title: None,
        media: MediaInfo {
            duration_seconds: Some(1.0),
            width: 2,
            height: 2,
            video_codec: "h264".into(),
            audio_codec: None,
            bitrate_bps: None,
            fps: None,
            container: "mp4".into(),
        },
        size_bytes: 1,
        thumbnails_bytes: 3,
        sha256: "00".into(),
        warnings: Vec::new(),
        encoding: None,
        source_meta: Default::default(),
        subtitles: Vec::new(),
        cues: Vec::new(),
        shared_paths: None,
    }
}

fn capture_of(item: ItemId) -> Subject {
    Subject {
        kind: prsnl::domain::JobKind::Capture,
        item,
    }
}

/// A release at shutdown: back to the queue at once, uncharged, the last error kept.
fn released() -> Requeue<'static> {
    Requeue {
        run_after: now(),
        reason: None,
        charge: Charge::Uncharged,
    }
}

fn later(t: Timestamp, ms: u64) -> Timestamp {
    t.plus(Duration::from_millis(ms))
}

fn captured(item: ItemId, completion: &Completion) -> Effect<'_> {
    Effect::Captured { item, completion }
}

fn now() -> Timestamp {
    prsnl::clock::now()
}

on_both_backends! {
    async fn eight_claimers_process_five_hundred_jobs_exactly_once(backend: Backend) {
        let (db, _dir, _pg) = fresh_db(&backend).await;
        enqueue(&db, 500, 3).await;
        let processed: Arc<Mutex<HashMap<JobId, u32>>> = Arc::default();
        let errors: Arc<Mutex<Vec<String>>> = Arc::default();
        let workers: Vec<_> = (0..8)
            .map(|w| {
                let (db, processed, errors) = (db.clone(), Arc::clone(&processed), Arc::clone(&errors));
                tokio::spawn(async move {
                    let who = claimant(&format!("worker-{w}"), "boot");
                    loop {
                        // Vary the batch size so claims interleave in every way.
                        let claimed = match jobs::claim(&db, &who, Lane::Download(Platform::Generic), 1 + (w % 3) as u32, now()).await {
                            Ok(claimed) => claimed,
                            Err(e) => {
                                errors.lock().unwrap().push(e.to_string());
                                continue;
                            }
                        };
                        if claimed.is_empty() {
                            return;
                        }
                        for job in claimed {
                            *processed.lock().unwrap().entry(job.lease.job).or_default() += 1;
                            match outcome::complete(&db, &job.lease, Effect::Captured { item: job.item_id, completion: &completion() }, now()).await {
                                Ok(Completed::Recorded) => {}
                                Ok(other) => errors.lock().unwrap().push(format!("{other:?}: {}", job.lease.job)),
                                Err(e) => errors.lock().unwrap().push(e.to_string()),
                            }
                        }
                    }
                })
            })
            .collect();
        for worker in workers {
            worker.await.unwrap();
        }
        {
            let errors = errors.lock().unwrap();
            assert!(errors.is_empty(), "{} errors, e.g. {:?}", errors.len(), errors.first());
            let processed = processed.lock().unwrap();
            assert_eq!(processed.len(), 500, "every job processed");
            assert!(processed.values().all(|n| *n == 1), "no job processed twice");
        }
        let states = count_states(&db).await;
        assert_eq!(states.get("completed"), Some(&500), "{states:?}");
    }
}

async fn count_states(db: &Db) -> HashMap<String, i64> {
    let rows: Vec<(String, i64)> = match db {
        Db::Sqlite(pool, _) => sqlx::query_as("SELECT state, COUNT(*) FROM jobs GROUP BY state")
            .fetch_all(pool)
            .await
            .unwrap(),
        Db::Postgres(pool) => sqlx::query_as("SELECT state, COUNT(*) FROM jobs GROUP BY state")
            .fetch_all(pool)
            .await
            .unwrap(),
    };
    rows.into_iter().collect()
}

on_both_backends! {
    async fn jobs_leased_by_an_earlier_boot_return_to_the_queue_uncharged(backend: Backend) {
        let (db, _dir, _pg) = fresh_db(&backend).await;
        let [item] = enqueue(&db, 1, 3).await[..] else { unreachable!() };
        let claimed = jobs::claim(&db, &claimant("host-a", "boot-1"), Lane::Download(Platform::Generic), 5, now()).await.unwrap();
        assert_eq!(claimed.len(), 1);
        // Another instance's recovery does not touch host-a's jobs.
        let other = recovery::recover_owned(&db, "host-b", 25, now()).await.unwrap();
        assert!(other.requeued.is_empty());
        // host-a comes back (a new boot) and takes its orphans back to the queue.
        let recovery = recovery::recover_owned(&db, "host-a", 25, now()).await.unwrap();
        assert_eq!(recovery.requeued, vec![claimed[0].lease.job]);
        let job = &jobs::for_item(&db, item).await.unwrap()[0];
        assert_eq!(job.state, JobState::Queued);
        // A process crash is not the job's fault: it gets the attempt back (the attempt number
        // moves on, so a stale attempt stays fenced off, and so does the budget).
        assert_eq!((job.attempt, job.max_attempts), (1, 4));
        assert_eq!(job.last_error.as_ref().map(|e| e.code), Some(ErrorCode::WorkerLost));
        assert_eq!(items::get(&db, item).await.unwrap().unwrap().status, prsnl::domain::ItemStatus::Queued);
    }
}

on_both_backends! {
    async fn crashes_use_no_attempt_and_a_job_crashing_at_max_crashes_fails_crash_loop(backend: Backend) {
        let (db, _dir, _pg) = fresh_db(&backend).await;
        // One attempt only: crashes must not spend it.
        let [item] = enqueue(&db, 1, 1).await[..] else { unreachable!() };
        for crash in 1..=3 {
            let claimed = jobs::claim(&db, &claimant("host-a", "boot"), Lane::Download(Platform::Generic), 1, now()).await.unwrap();
            assert_eq!(claimed.len(), 1, "crash {crash}");
            assert_eq!(claimed[0].lease.attempt, crash, "crash {crash}: the attempt number moves on");
            let recovered = recovery::recover_owned(&db, "host-a", 3, now()).await.unwrap();
            let job = &jobs::for_item(&db, item).await.unwrap()[0];
            if crash < 3 {
                assert_eq!(recovered.requeued.len(), 1);
                assert_eq!(job.state, JobState::Queued, "crash {crash}");
                assert_eq!(job.max_attempts - job.attempt, 1, "crash {crash}: the one attempt is still left");
                assert_eq!(job.last_error.as_ref().map(|e| e.code), Some(ErrorCode::WorkerLost));
            } else {
                assert_eq!(recovered.failed.len(), 1);
                assert_eq!(job.state, JobState::Failed);
                assert_eq!(job.last_error.as_ref().map(|e| e.code), Some(ErrorCode::CrashLoop));
            }
        }
        let stored = items::get(&db, item).await.unwrap().unwrap();
        assert_eq!(stored.status, prsnl::domain::ItemStatus::Failed);
        assert_eq!(stored.error.map(|e| e.code), Some(ErrorCode::CrashLoop));
        assert!(jobs::claim(&db, &claimant("host-a", "boot"), Lane::Download(Platform::Generic), 1, now()).await.unwrap().is_empty());
    }
}

on_both_backends! {
    async fn a_stale_attempt_cannot_change_the_job(backend: Backend) {
        let (db, _dir, _pg) = fresh_db(&backend).await;
        let [item] = enqueue(&db, 1, 3).await[..] else { unreachable!() };
        let first = jobs::claim(&db, &claimant("a", "1"), Lane::Download(Platform::Generic), 1, now()).await.unwrap().remove(0);
        recovery::recover_owned(&db, "a", 25, now()).await.unwrap();
        let second = jobs::claim(&db, &claimant("b", "1"), Lane::Download(Platform::Generic), 1, now()).await.unwrap().remove(0);
        assert_eq!(second.lease.attempt, 2);
        // The zombie of attempt 1 can neither complete, fail nor release the job.
        let error = JobError::new(ErrorCode::DownloadFailed, "zombie");
        assert_eq!(outcome::complete(&db, &first.lease, captured(item, &completion()), now()).await.unwrap(), Completed::LostLease);
        assert!(!outcome::fail(&db, &first.lease, capture_of(item), &error, now()).await.unwrap());
        assert!(!outcome::requeue(&db, &first.lease, capture_of(item), released(), now()).await.unwrap());
        let forged = Lease { owner: "a".into(), ..second.lease.clone() };
        assert_eq!(outcome::complete(&db, &forged, captured(item, &completion()), now()).await.unwrap(), Completed::LostLease);
        assert_eq!(outcome::complete(&db, &second.lease, captured(item, &completion()), now()).await.unwrap(), Completed::Recorded);
        assert_eq!(jobs::for_item(&db, item).await.unwrap()[0].state, JobState::Completed);
    }
}

on_both_backends! {
    async fn retries_wait_for_their_backoff_and_releases_are_free(backend: Backend) {
        let (db, _dir, _pg) = fresh_db(&backend).await;
        let [item] = enqueue(&db, 1, 3).await[..] else { unreachable!() };
        let who = claimant("a", "1");
        let job = jobs::claim(&db, &who, Lane::Download(Platform::Generic), 1, now()).await.unwrap().remove(0);
        let error = JobError::new(ErrorCode::UpstreamError, "HTTP 500");
        let t = now();
        assert!(outcome::requeue(&db, &job.lease, capture_of(item), Requeue { run_after: later(t, 10_000), reason: Some(&error), charge: Charge::Charged }, t).await.unwrap());
        assert!(jobs::claim(&db, &who, Lane::Download(Platform::Generic), 1, later(t, 1)).await.unwrap().is_empty(), "not due yet");
        assert!(jobs::claim(&db, &who, Lane::Download(Platform::Youtube), 1, later(t, 20_000)).await.unwrap().is_empty(), "other platform");
        let again = jobs::claim(&db, &who, Lane::Download(Platform::Generic), 1, later(t, 20_000)).await.unwrap().remove(0);
        assert_eq!(again.lease.attempt, 2);
        // A shutdown hands the job back without charging the attempt.
        assert!(outcome::requeue(&db, &again.lease, capture_of(item), released(), now()).await.unwrap());
        let record = &jobs::for_item(&db, item).await.unwrap()[0];
        assert_eq!((record.state, record.attempt), (JobState::Queued, 1));
    }
}

on_both_backends! {
    async fn expired_leases_of_other_processes_are_taken_over_and_the_loser_learns_it(backend: Backend) {
        let (db, _dir, _pg) = fresh_db(&backend).await;
        enqueue(&db, 2, 3).await;
        let t = now();
        let mut who = claimant("a", "1");
        who.lease = Duration::from_secs(10);
        let claimed = jobs::claim(&db, &who, Lane::Download(Platform::Generic), 2, t).await.unwrap();
        assert_eq!(claimed.len(), 2);
        let leases: Vec<Lease> = claimed.iter().map(|c| c.lease.clone()).collect();
        // Process "a" renews only the first job; at t+15 s the second one's lease ran out.
        assert!(jobs::renew_leases(&db, &who, &leases[..1], later(t, 9_000)).await.unwrap().is_empty());
        // "a" never recovers its own jobs from under itself...
        assert!(recovery::recover_expired(&db, "a", 25, later(t, 15_000)).await.unwrap().requeued.is_empty());
        // ...but another process takes the expired one over.
        let recovered = recovery::recover_expired(&db, "b", 25, later(t, 15_000)).await.unwrap();
        assert_eq!(recovered.requeued, vec![claimed[1].lease.job]);
        // "a" learns it lost that job at its next renewal, and keeps the other.
        let lost = jobs::renew_leases(&db, &who, &leases, later(t, 16_000)).await.unwrap();
        assert_eq!(lost, vec![leases[1].clone()]);
        assert!(jobs::holds(&db, &leases[0]).await.unwrap());
        assert!(!jobs::holds(&db, &leases[1]).await.unwrap());
    }
}
