//! The watch folder: videos and link files dropped into `watch.dir` become items, exactly
//! once, whatever stops the service in between.

use std::io::Write;
use std::num::NonZero;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use crate::fixture_server::Route;
use crate::fixtures::fixtures;
use crate::helpers::{Backend, TestApp, on_both_backends, spawn_app, spawn_app_with, wait_for};

fn assert_completed(item: &Value) {
    assert_eq!(item["status"], "completed", "{item:#}");
}

impl TestApp {
    fn inbox(&self) -> PathBuf {
        self.settings.watch.dir.clone()
    }

    /// Ids of the items the watch folder made, oldest first.
    async fn watch_items(&self) -> Vec<String> {
        watch_item_ids(&self.ctx().db).await
    }

    /// Waits until the watch folder made `n` items; returns their ids.
    async fn wait_watch_items(&self, n: usize) -> Vec<String> {
        let reached = wait_for(Duration::from_secs(60), || async {
            self.watch_items().await.len() >= n
        })
        .await;
        let ids = self.watch_items().await;
        assert!(
            reached,
            "expected {n} items from the watch folder, found {}",
            ids.len()
        );
        ids
    }
}

async fn watch_item_ids(db: &prsnl::db::Db) -> Vec<String> {
    let sql = "SELECT id FROM items WHERE source = 'watch' ORDER BY id";
    match db {
        prsnl::db::Db::Sqlite(pool, _) => sqlx::query_scalar(sql).fetch_all(pool).await.unwrap(),
        prsnl::db::Db::Postgres(pool) => sqlx::query_scalar(sql).fetch_all(pool).await.unwrap(),
    }
}

/// Every file under `dir`, relative, sorted (the inbox's subfolders included).
fn files_in(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(current) = stack.pop() {
        for entry in std::fs::read_dir(&current).unwrap().flatten() {
            let path = entry.path();
            if entry.file_type().unwrap().is_dir() {
                stack.push(path);
            } else {
                found.push(path.strip_prefix(dir).unwrap().display().to_string());
            }
        }
    }
    found.sort();
    found
}

/// The path of `name` under `processed/<today>/`.
fn processed(inbox: &Path, name: &str) -> PathBuf {
    let today = time::OffsetDateTime::now_utc().date();
    inbox
        .join("processed")
        .join(format!(
            "{:04}-{:02}-{:02}",
            today.year(),
            u8::from(today.month()),
            today.day()
        ))
        .join(name)
}

/// Writes a file the way a careful program does: elsewhere, then renamed in.
fn drop_file(inbox: &Path, name: &str, bytes: &[u8]) {
    let staging = inbox.join(format!(".{name}.part"));
    std::fs::write(&staging, bytes).unwrap();
    std::fs::rename(&staging, inbox.join(name)).unwrap();
}

on_both_backends! {
    async fn a_dropped_video_becomes_a_completed_item_and_a_non_video_is_refused(backend: Backend) {
        let app = spawn_app(backend).await;
        let inbox = app.inbox();
        std::fs::copy(app.fixtures.path("h264_aac.mp4"), inbox.join("holiday clip.mp4")).unwrap();
        std::fs::write(inbox.join("notes.mp4"), b"these are only words, not a video\n".repeat(50)).unwrap();

        let ids = app.wait_watch_items(1).await;
        let item = app.wait_terminal(&ids[0]).await;
        assert_completed(&item);
        assert_eq!(item["source"], "watch");
        assert_eq!(item["title"], "holiday clip");
        assert_eq!(item["metadata"]["video_codec"], "h264");
        assert!(wait_for(Duration::from_secs(20), || async {
            inbox.join("failed/notes.mp4.error.txt").exists()
        })
        .await, "the non-video was not refused: {:?}", files_in(&inbox));
        let reason = std::fs::read_to_string(inbox.join("failed/notes.mp4.error.txt")).unwrap();
        assert!(reason.contains("not a video"), "{reason}");
        assert!(processed(&inbox, "holiday clip.mp4").exists(), "{:?}", files_in(&inbox));
        // Nothing is left at the top level, and only the video became an item.
        assert!(app.watch_items().await.len() == 1);
        assert!(std::fs::read_dir(&inbox).unwrap().flatten().all(|e| e.file_type().unwrap().is_dir()));
        let scrape = app.scrape().await;
        assert_eq!(scrape.value("prsnl_watch_files_total", &[("outcome", "imported")]), 1.0);
        assert_eq!(scrape.value("prsnl_watch_files_total", &[("outcome", "failed")]), 1.0);
        assert_eq!(scrape.value("prsnl_capture_requests_total", &[("source", "watch"), ("outcome", "accepted")]), 1.0);
    }
}

on_both_backends! {
    async fn link_files_of_every_kind_become_captures_and_refused_links_are_noted(backend: Backend) {
        let app = spawn_app(backend).await;
        let inbox = app.inbox();
        let first = app.server.add("/watch/first.mp4", Route::file(app.fixtures.path("h264_silent.mp4"), "video/mp4"));
        let second = app.server.url("/watch/second-is-missing.mp4");
        let text = format!("{first}\nsome words that are no link\nhttp://[::1/broken\nand here: {second}\n");
        drop_file(&inbox, "links.txt", text.as_bytes());

        let ids = app.wait_watch_items(2).await;
        assert_eq!(ids.len(), 2);
        let note_path = processed(&inbox, "links.txt.error.txt");
        // The note is written before the file is moved beside it: wait for both.
        assert!(
            wait_for(Duration::from_secs(10), || async {
                note_path.exists() && processed(&inbox, "links.txt").exists()
            })
            .await,
            "{:?}",
            files_in(&inbox)
        );
        let note = std::fs::read_to_string(&note_path).unwrap();
        assert!(note.contains("2 link(s) captured"), "{note}");
        assert!(note.contains("line 2: no link found in \"some words that are no link\""), "{note}");
        assert!(note.contains("http://[::1/broken") && note.contains("invalid_url"), "{note}");
        assert!(processed(&inbox, "links.txt").exists());

        // A Windows shortcut and a macOS webloc, one link each.
        let third = app.server.url("/watch/third.mp4");
        let fourth = app.server.url("/watch/fourth.mp4");
        drop_file(&inbox, "third.url", format!("[InternetShortcut]\r\nURL={third}\r\n").as_bytes());
        let webloc = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<plist version=\"1.0\"><dict><key>URL</key><string>{fourth}</string></dict></plist>\n"
        );
        drop_file(&inbox, "fourth.webloc", webloc.as_bytes());
        app.wait_watch_items(4).await;

        // The same links again: the existing items, nothing new.
        drop_file(&inbox, "again.txt", format!("{first}\n").as_bytes());
        assert!(wait_for(Duration::from_secs(10), || async { processed(&inbox, "again.txt").exists() }).await);
        assert_eq!(app.watch_items().await.len(), 4);

        let ids = app.watch_items().await;
        let mut urls = Vec::new();
        for id in &ids {
            urls.push(app.item(id).await["source_url"].as_str().unwrap().to_string());
        }
        urls.sort();
        let mut expected = vec![first.clone(), second, third, fourth];
        expected.sort();
        assert_eq!(urls, expected);
    }
}

on_both_backends! {
    async fn a_file_written_in_three_chunks_a_second_apart_is_imported_once(backend: Backend) {
        let app = spawn_app(backend).await;
        let inbox = app.inbox();
        let bytes = std::fs::read(app.fixtures.path("h264_aac.mp4")).unwrap();
        let chunk = bytes.len().div_ceil(3);
        let path = inbox.join("slow copy.mp4");
        let writer = std::thread::spawn(move || {
            let mut file = std::fs::File::create(&path).unwrap();
            for (i, part) in bytes.chunks(chunk).enumerate() {
                if i > 0 {
                    std::thread::sleep(Duration::from_secs(1));
                }
                file.write_all(part).unwrap();
                file.flush().unwrap();
            }
        });
        tokio::task::spawn_blocking(move || writer.join().unwrap()).await.unwrap();

        let ids = app.wait_watch_items(1).await;
        assert_completed(&app.wait_terminal(&ids[0]).await);
        // Long enough for a second import of a half-written file to have shown up.
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert_eq!(app.watch_items().await.len(), 1);
        assert_eq!(app.scrape().await.value("prsnl_watch_files_total", &[("outcome", "failed")]), 0.0);
    }
}

on_both_backends! {
    async fn fifty_files_dropped_while_stopped_are_imported_after_start(backend: Backend) {
        let mut app = spawn_app(backend).await;
        app.stop_app().await;
        let inbox = app.inbox();
        // Two videos and 48 link files; the links point at nothing, so those items fail fast.
        std::fs::copy(app.fixtures.path("h264_silent.mp4"), inbox.join("a.mp4")).unwrap();
        std::fs::copy(app.fixtures.path("h264_aac.mp4"), inbox.join("b.mp4")).unwrap();
        for i in 0..48 {
            let url = app.server.url(&format!("/offline/{i}.mp4"));
            std::fs::write(inbox.join(format!("offline-{i}.txt")), format!("{url}\n")).unwrap();
        }
        app.restart().await;
        let ids = app.wait_watch_items(50).await;
        assert_eq!(ids.len(), 50);
        let scrape = app.scrape().await;
        assert_eq!(scrape.value("prsnl_watch_rescans_total", &[("reason", "startup")]), 1.0);
        assert!(wait_for(Duration::from_secs(20), || async {
            std::fs::read_dir(&inbox).unwrap().flatten().all(|e| e.file_type().unwrap().is_dir())
        })
        .await, "files left in the inbox: {:?}", files_in(&inbox));
    }
}

on_both_backends! {
    async fn a_burst_of_500_link_files_is_imported_once_each(backend: Backend) {
        let app = spawn_app(backend).await;
        let inbox = app.inbox();
        for i in 0..500 {
            let url = app.server.url(&format!("/burst/{i}.mp4"));
            drop_file(&inbox, &format!("burst-{i:03}.txt"), format!("{url}\n").as_bytes());
        }
        let ids = app.wait_watch_items(500).await;
        assert_eq!(ids.len(), 500);
        assert!(wait_for(Duration::from_secs(60), || async {
            std::fs::read_dir(&inbox).unwrap().flatten().all(|e| e.file_type().unwrap().is_dir())
        })
        .await, "files left in the inbox");
        // A rescan of everything (as after an overflow) finds nothing new to do.
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(app.watch_items().await.len(), 500);
        let scrape = app.scrape().await;
        assert_eq!(scrape.value("prsnl_watch_files_total", &[("outcome", "links")]), 500.0);
        assert_eq!(
            scrape.value("prsnl_capture_requests_total", &[("source", "watch"), ("outcome", "accepted")]),
            500.0
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hostile_entries_are_refused_without_blocking_anything() {
    let app = spawn_app_with(Backend::Sqlite, |s| {
        s.watch.max_link_file_kb = NonZero::new(1).unwrap()
    })
    .await;
    let inbox = app.inbox();
    nix::unistd::mkfifo(&inbox.join("pipe.mp4"), nix::sys::stat::Mode::S_IRWXU).unwrap();
    std::os::unix::fs::symlink(app.fixtures.path("h264_silent.mp4"), inbox.join("link.mp4"))
        .unwrap();
    std::fs::write(inbox.join("huge.txt"), "https://example.com/\n".repeat(100)).unwrap();
    std::fs::write(inbox.join("latin1.txt"), b"https://example.com/caf\xe9\n").unwrap();
    std::fs::write(inbox.join(".hidden.mp4"), b"ignored").unwrap();
    std::fs::write(inbox.join("clip.mp4.part"), b"ignored").unwrap();
    // The folder keeps working around them.
    let url = app.server.add(
        "/after.mp4",
        Route::file(app.fixtures.path("h264_silent.mp4"), "video/mp4"),
    );
    drop_file(&inbox, "after.txt", format!("{url}\n").as_bytes());
    let ids = app.wait_watch_items(1).await;
    assert_completed(&app.wait_terminal(&ids[0]).await);

    let failed = inbox.join("failed");
    for (name, reason) in [
        ("pipe.mp4", "FIFO"),
        ("link.mp4", "symbolic link"),
        ("huge.txt", "max_link_file_kb"),
        ("latin1.txt", "not UTF-8"),
    ] {
        let note = failed.join(format!("{name}.error.txt"));
        assert!(
            wait_for(Duration::from_secs(20), || async { note.exists() }).await,
            "{name} was not refused: {:?}",
            files_in(&inbox)
        );
        let text = std::fs::read_to_string(&note).unwrap();
        assert!(text.contains(reason), "{name}: {text}");
        assert!(
            failed.join(name).symlink_metadata().is_ok(),
            "{name} is not in failed/"
        );
    }
    // The symlink was moved, never followed: its target is untouched.
    assert!(app.fixtures.path("h264_silent.mp4").exists());
    assert!(inbox.join(".hidden.mp4").exists() && inbox.join("clip.mp4.part").exists());
    assert_eq!(app.watch_items().await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn polling_finds_files_where_inotify_would_not_fire() {
    let app = spawn_app_with(Backend::Sqlite, |s| {
        s.watch.poll = true;
        s.watch.poll_interval_ms = NonZero::new(200).unwrap();
        s.watch.settle_ms = NonZero::new(500).unwrap();
    })
    .await;
    std::fs::copy(
        app.fixtures.path("h264_silent.mp4"),
        app.inbox().join("polled.mp4"),
    )
    .unwrap();
    let ids = app.wait_watch_items(1).await;
    assert_completed(&app.wait_terminal(&ids[0]).await);
}

on_both_backends! {
    async fn a_crash_between_recording_and_moving_imports_the_file_once(backend: Backend) {
        let app = spawn_app(backend).await;
        // The actor dies right after the record, with the file still in the inbox; its
        // restart's startup scan finds the file again.
        app.ctx().faults.arm(prsnl::faults::FaultPoint::WatchAfterRecord, 1);
        std::fs::copy(app.fixtures.path("h264_aac.mp4"), app.inbox().join("crash.mp4")).unwrap();
        let ids = app.wait_watch_items(1).await;
        assert_completed(&app.wait_terminal(&ids[0]).await);
        assert!(wait_for(Duration::from_secs(20), || async { processed(&app.inbox(), "crash.mp4").exists() }).await,
            "{:?}", files_in(&app.inbox()));
        assert_eq!(app.watch_items().await.len(), 1);
        let scrape = app.scrape().await;
        assert_eq!(scrape.value("prsnl_actor_restarts_total", &[("actor", "watch_folder")]), 1.0);
        assert_eq!(scrape.value("prsnl_watch_files_total", &[("outcome", "duplicate")]), 1.0);
    }
}

/// The real binary, SIGKILLed while it imports a dropped video, then started again: the
/// file becomes exactly one completed item.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_service_killed_during_an_import_imports_the_file_once_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let inbox = dir.path().join("inbox");
    let port = crate::cli::free_port();
    let db_url = format!("sqlite://{}", dir.path().join("prsnl.db").display());
    // No compression pass: the big file only has to keep processing busy when the kill lands.
    let config = crate::cli::config(
        dir.path(),
        &format!("[server]\nlisten = \"127.0.0.1:{port}\"\n[processing]\ncompress = \"off\"\n"),
    );
    let serve = || crate::cli::serve(&config);
    // No app runs in this process to choose the TLS provider for the test's own client.
    prsnl::net::install_tls_provider();
    let client = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    let up = || async { client.get(format!("{base}/healthz")).send().await.is_ok() };

    let mut first = serve();
    assert!(
        wait_for(Duration::from_secs(30), up).await,
        "the service did not start"
    );
    // A big file, so that the kill lands while it is still being processed.
    std::fs::copy(fixtures().path("big_noisy.mp4"), inbox.join("big.mp4")).unwrap();
    let settings = {
        let mut s = prsnl::Settings::defaults();
        s.database.url = prsnl::settings::Secret::new(&db_url);
        s
    };
    let db = prsnl::db::Db::connect(&settings.database).await.unwrap();
    assert!(
        wait_for(Duration::from_secs(30), || async {
            !watch_item_ids(&db).await.is_empty()
        })
        .await,
        "the import was never recorded"
    );
    crate::cli::kill_hard(&mut first);

    let mut second = serve();
    // Generous: the rest of the suite may be loading both cores with ffmpeg meanwhile.
    assert!(
        wait_for(Duration::from_secs(90), up).await,
        "the service did not restart"
    );
    let ids = watch_item_ids(&db).await;
    assert_eq!(ids.len(), 1, "one item for one file");
    let done = wait_for(Duration::from_secs(120), || async {
        let item = crate::helpers::get_json(&client, &format!("{base}/api/items/{}", ids[0])).await;
        item["status"] == "completed"
    })
    .await;
    let processed_file = processed(&inbox, "big.mp4");
    let moved = processed_file.exists();
    let _ = second.kill();
    second.wait().unwrap();
    assert!(done, "the import did not complete after the restart");
    assert!(moved, "{:?}", files_in(&inbox));
    assert_eq!(watch_item_ids(&db).await.len(), 1);
}

/// The default `watch.dir` is relative (`./data/inbox`): the real binary, started in a working
/// directory of its own with a relative inbox and no rescan for an hour, takes a dropped video
/// by its file event alone.
#[tokio::test]
async fn a_relative_inbox_takes_files_by_their_event() {
    let dir = tempfile::tempdir().unwrap();
    let port = crate::cli::free_port();
    std::fs::write(
        dir.path().join("prsnl.toml"),
        format!(
            "[server]\nlisten = \"127.0.0.1:{port}\"\n[database]\nurl = \"sqlite://./data/prsnl.db\"\n\
             [storage]\nmedia_root = \"./data/media\"\nmin_free_mb = 1\n\
             [watch]\ndir = \"./data/inbox\"\nrescan_secs = 3600\n[metrics]\nrefresh_secs = 1\n"
        ),
    )
    .unwrap();
    let mut child = crate::cli::prsnl()
        .current_dir(dir.path())
        .args(["serve", "--config", "prsnl.toml"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    prsnl::net::install_tls_provider();
    let client = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    let rescans = |reason: &'static str| {
        let request = client.get(format!("{base}/metrics")).send();
        async move {
            let Ok(response) = request.await else {
                return None;
            };
            let text = response.text().await.ok()?;
            let scrape = crate::exposition::Scrape::parse(&text);
            Some(scrape.value("prsnl_watch_rescans_total", &[("reason", reason)]))
        }
    };
    // Dropped after the startup scan, so only the event can take it.
    let scanned = wait_for(Duration::from_secs(30), || async {
        rescans("startup").await == Some(1.0)
    })
    .await;
    assert!(scanned, "the watch folder never made its startup scan");
    let inbox = dir.path().join("data/inbox");
    let staged = dir.path().join("clip.mp4.part");
    std::fs::copy(fixtures().path("h264_aac_faststart.mp4"), &staged).unwrap();
    std::fs::rename(&staged, inbox.join("clip.mp4")).unwrap();

    let completed = wait_for(Duration::from_secs(60), || {
        let request = client
            .get(format!("{base}/api/items?status=completed"))
            .send();
        async move {
            let Ok(response) = request.await else {
                return false;
            };
            let page: Value = response.json().await.unwrap_or_default();
            page["items"]
                .as_array()
                .is_some_and(|items| items.len() == 1)
        }
    })
    .await;
    let periodic = rescans("periodic").await;
    crate::cli::kill_hard(&mut child);
    assert!(completed, "the dropped video was never taken");
    assert_eq!(periodic, Some(0.0), "no rescan but the startup one ran");
    assert!(inbox.join("processed/clip.mp4").exists() || !inbox.join("clip.mp4").exists());
}
