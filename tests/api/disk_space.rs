//! Running out of disk, on a real small filesystem: a tmpfs of a few tens of MB as media_root.
//! Below `storage.min_free_mb` nothing new is taken (the API answers 507, the watch folder
//! leaves its file), queued work waits, an attempt that ran out of space because of someone
//! else's bytes waits uncharged, and everything resumes by itself once space is freed. The
//! Telegram bot tells the sender once and keeps the message until then.

use std::io::Write;
use std::num::NonZero;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use prsnl::db::{jobs, record};
use prsnl::domain::{CaptureUrl, ItemId, JobState, Platform, Source};

use serde_json::json;

use crate::fixture_server::Route;
use crate::helpers::{Backend, spawn_app_with, wait_for};
use crate::telegram::ALICE;
use crate::telegram_fake::{FakeTelegram, private_chat};

/// A tmpfs mounted for the test's lifetime (unmounted on drop, even after a failed assert).
struct SmallDisk {
    path: PathBuf,
    _dir: tempfile::TempDir,
}

impl SmallDisk {
    /// Mounts one; fails (never skips) where that cannot be done.
    fn mount(size_mb: u32) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("media");
        std::fs::create_dir(&path).unwrap();
        let output = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size_mb}m"),
                "prsnl-test",
            ])
            .arg(&path)
            .output()
            .expect("mount must exist to run the disk-space test");
        assert!(
            output.status.success(),
            "cannot mount a tmpfs (the test needs root): {}",
            String::from_utf8_lossy(&output.stderr)
        );
        Self { path, _dir: dir }
    }

    /// Writes a file of zeros until the filesystem is full; returns its path.
    fn fill(&self) -> PathBuf {
        let ballast = self.path.join("ballast");
        let mut file = std::fs::File::create(&ballast).unwrap();
        let chunk = vec![0u8; 256 * 1024];
        while file.write_all(&chunk).is_ok() {}
        let small = vec![0u8; 4096];
        while file.write_all(&small).is_ok() {}
        ballast
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

fn free_mb(path: &Path) -> u64 {
    prsnl::storage::disk_space(path).unwrap().1 >> 20
}

#[tokio::test]
async fn below_the_free_space_floor_nothing_new_is_taken_and_everything_resumes() {
    let disk = SmallDisk::mount(48);
    let media = disk.path.clone();
    let app = spawn_app_with(Backend::Sqlite, |s| {
        s.storage.media_root = media;
        s.storage.min_free_mb = 16;
        s.watch.rescan_secs = NonZero::new(2).unwrap();
    })
    .await;

    // A download under way when the disk fills up: it fails with disk_full, because of the
    // ballast, not of its own bytes.
    let clip = app.fixtures.path("h264_aac_faststart.mp4");
    let slow = Route::file(&clip, "video/mp4").drip(16 * 1024, Duration::from_millis(100));
    let running_url = app.server.add("/running.mp4", slow);
    let running = app.capture(&running_url).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let started = wait_for(Duration::from_secs(30), || async {
        app.item(&running).await["progress"]["downloaded_bytes"]
            .as_u64()
            .unwrap_or(0)
            > 0
    })
    .await;
    assert!(started, "{}", app.item(&running).await);
    let ballast = disk.fill();
    assert!(free_mb(&disk.path) < 16);

    // New submissions are refused with 507, and nothing is recorded for them.
    let items_before = app.item_count().await;
    let refused = app.post_capture(&app.server.url("/refused.mp4")).await;
    assert_eq!(refused.status(), 507);
    let body: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "insufficient_storage", "{body}");
    assert_eq!(app.item_count().await, items_before);

    // The watch folder leaves a dropped video where it is.
    let inbox = app.settings.watch.dir.clone();
    std::fs::copy(&clip, inbox.join("dropped.part")).unwrap();
    std::fs::rename(inbox.join("dropped.part"), inbox.join("dropped.mp4")).unwrap();

    // Work queued by other means (another instance, an earlier boot) is not claimed.
    let db = &app.ctx().db;
    let queued_url = app.server.add("/queued.mp4", prsnl_route(&clip));
    let request = record::NewCapture {
        url: CaptureUrl::parse(&queued_url).unwrap(),
        source_url: queued_url.clone(),
        platform: Platform::Generic,
        platform_media_id: None,
        source: Source::Api,
        owner: None,
        max_attempts: 3,
    };
    let faults = prsnl::faults::Faults::default();
    let queued = record::capture(db, &request, prsnl::clock::now(), &faults)
        .await
        .unwrap()
        .item
        .id;

    // The running download ran out of space and waits, uncharged.
    let running_id = ItemId::parse(&running).unwrap();
    let waiting = wait_for(Duration::from_secs(30), || async {
        let jobs = jobs::for_item(db, running_id).await.unwrap();
        jobs[0].state == JobState::Queued
            && jobs[0]
                .last_error
                .as_ref()
                .is_some_and(|e| e.code == prsnl::domain::ErrorCode::DiskFull)
    })
    .await;
    assert!(
        waiting,
        "{:?}",
        jobs::for_item(db, running_id).await.unwrap()
    );
    assert_eq!(
        jobs::for_item(db, running_id).await.unwrap()[0].attempt,
        0,
        "the failed attempt was not charged"
    );
    // Several claim ticks pass below the floor: nothing is claimed, the file stays.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let queued_job = &jobs::for_item(db, queued).await.unwrap()[0];
    assert_eq!(
        (queued_job.state, queued_job.attempt),
        (JobState::Queued, 0),
        "{queued_job:?}"
    );
    assert!(
        inbox.join("dropped.mp4").exists(),
        "the watch folder took a file below the floor"
    );
    assert_eq!(
        app.item_count().await,
        items_before + 1,
        "only the directly recorded job is new"
    );

    // Space is freed: everything resumes by itself.
    std::fs::remove_file(ballast).unwrap();
    let done = app.wait_terminal(&running).await;
    assert_eq!(done["status"], "completed", "{done:#}");
    let jobs = jobs::for_item(db, running_id).await.unwrap();
    assert_eq!(
        jobs[0].attempt, 1,
        "only the attempt that completed counts: {jobs:?}"
    );
    assert_eq!(
        app.wait_terminal(&queued.to_string()).await["status"],
        "completed"
    );
    let taken = wait_for(Duration::from_secs(30), || async {
        !inbox.join("dropped.mp4").exists()
    })
    .await;
    assert!(taken, "the watch folder never took the file back up");
    let all_done = wait_for(Duration::from_secs(60), || async {
        app.count_with_status("completed").await == 3
    })
    .await;
    assert!(
        all_done,
        "the running, the queued and the dropped video all complete"
    );
    assert!(
        app.post_capture(&app.server.url("/refused.mp4"))
            .await
            .status()
            .is_success()
    );
}

fn prsnl_route(clip: &Path) -> Route {
    Route::file(clip, "video/mp4")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bot_says_once_that_the_disk_is_full_and_saves_the_message_when_space_is_back() {
    let disk = SmallDisk::mount(48);
    let fake = FakeTelegram::start().await;
    let media = disk.path.clone();
    let app = {
        let api_url = fake.url();
        spawn_app_with(Backend::Sqlite, move |s| {
            s.storage.media_root = media;
            s.storage.min_free_mb = 16;
            s.telegram.token = prsnl::settings::Secret::new(crate::telegram_fake::TOKEN);
            s.telegram.api_url = Some(api_url.parse().unwrap());
            s.telegram.allowed_users = vec![ALICE];
            s.telegram.poll_timeout_secs = 1;
        })
        .await
    };
    let ballast = disk.fill();
    assert!(free_mb(&disk.path) < 16);

    let url = app.server.add(
        "/clip.mp4",
        Route::file(app.fixtures.path("h264_aac_faststart.mp4"), "video/mp4"),
    );
    fake.text_from(ALICE, &format!("keep this: {url}"));
    let photo = app.fixtures.bytes("photo.jpg");
    fake.add_file("photo-big", "uniq-photo", Some(photo.clone()));
    fake.message(
        ALICE,
        private_chat(ALICE),
        json!({"photo": [{"file_id": "photo-big", "file_unique_id": "uniq-photo",
                          "file_size": photo.len(), "width": 1600, "height": 900}]}),
    );
    let told = |n: usize| {
        let fake = &fake;
        async move {
            fake.sent_to(ALICE as i64)
                .iter()
                .filter(|t| t.contains("out of disk space"))
                .count()
                == n
        }
    };
    assert!(
        wait_for(Duration::from_secs(30), || told(2)).await,
        "{:?}",
        fake.sent_to(ALICE as i64)
    );
    // Past more than one retry: told once per message, nothing stored, nothing fetched.
    tokio::time::sleep(Duration::from_secs(12)).await;
    assert!(told(2).await, "{:?}", fake.sent_to(ALICE as i64));
    assert_eq!(app.item_count().await, 0);
    assert!(
        fake.calls("getFile").is_empty(),
        "a photo was fetched below the floor"
    );

    // Space is back: both are saved without being sent again.
    std::fs::remove_file(ballast).unwrap();
    let saved = wait_for(Duration::from_secs(90), || async {
        app.count_with_status("completed").await == 2
    })
    .await;
    assert!(saved, "{:?}", fake.sent_to(ALICE as i64));
    let replied = wait_for(Duration::from_secs(30), || async {
        fake.messages_in(ALICE as i64)
            .iter()
            .filter(|(_, t)| t.starts_with("saved:"))
            .count()
            == 2
    })
    .await;
    assert!(replied, "{:?}", fake.messages_in(ALICE as i64));
    assert!(told(2).await);
}
