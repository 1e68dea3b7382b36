//! Backups: `prsnl backup create|list|verify` and `prsnl restore`, through the real binary,
//! against a running app's database and media root, on both databases.

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use prsnl::Settings;
use serde_json::Value;

use crate::cli::{kill_hard, prsnl};
use crate::fixture_server::Route;
use crate::helpers::{
    Backend, PgDatabase, TestApp, on_both_backends, sha256_hex, spawn_app, spawn_app_with, wait_for,
};

/// `prsnl ARGS` on `settings`' database and media root, snapshots in `backups`.
fn command(settings: &Settings, backups: &Path, args: &[&str]) -> std::process::Command {
    let mut command = prsnl();
    command
        .env("PRSNL_DATABASE__URL", settings.database.url.expose())
        .env("PRSNL_STORAGE__MEDIA_ROOT", &settings.storage.media_root)
        .env("PRSNL_STORAGE__MIN_FREE_MB", "1")
        .env("PRSNL_BACKUP__DIRECTORY", backups)
        .args(args);
    command
}

pub(crate) async fn run(settings: &Settings, backups: &Path, args: &[&str]) -> Output {
    let mut command = command(settings, backups, args);
    tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap()
}

pub(crate) fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// The complete snapshots in `dir` (names not starting with a dot), oldest first.
pub(crate) fn snapshots(dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|e| {
            e.file_type().unwrap().is_dir() && !e.file_name().to_string_lossy().starts_with('.')
        })
        .map(|e| e.path())
        .collect();
    found.sort();
    found
}

fn leftovers(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(".partial-"))
        .map(|e| e.path())
        .collect()
}

fn manifest(snapshot: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(snapshot.join("manifest.json")).unwrap()).unwrap()
}

pub(crate) fn rows(snapshot: &Path, table: &str) -> Vec<Value> {
    std::fs::read_to_string(snapshot.join(format!("database/{table}.jsonl")))
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

/// The manifest's media files: path under media_root → SHA-256.
fn media_files(manifest: &Value) -> BTreeMap<String, String> {
    manifest["files"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| {
            let rel = f["path"].as_str()?.strip_prefix("media/")?;
            Some((rel.to_string(), f["sha256"].as_str().unwrap().to_string()))
        })
        .collect()
}

/// Each seeded thumbnail holds this many bytes.
const THUMB_BYTES: usize = 60;

/// Seeds `n` completed videos of `size` random bytes, with their three thumbnails on disk.
pub(crate) async fn seed(app: &TestApp, n: usize, size: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for _ in 0..n {
        let bytes: Vec<u8> = (0..size).map(|_| rand::random::<u8>()).collect();
        let id = app.seed_completed_video(&bytes).await.to_string();
        let sql =
            "SELECT thumb_small_path, thumb_medium_path, thumb_large_path FROM items WHERE id = $1";
        let thumbs: (String, String, String) = match &app.ctx().db {
            prsnl::db::Db::Sqlite(pool, _) => {
                sqlx::query_as(sql).bind(&id).fetch_one(pool).await.unwrap()
            }
            prsnl::db::Db::Postgres(pool) => {
                sqlx::query_as(sql).bind(&id).fetch_one(pool).await.unwrap()
            }
        };
        for rel in [thumbs.0, thumbs.1, thumbs.2] {
            let path = app.media_path(&rel);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, vec![b't'; THUMB_BYTES]).unwrap();
        }
        ids.push(id);
    }
    ids
}

on_both_backends! {
    /// Captures finished, captures running and captures arriving while the backup runs; the
    /// snapshot is consistent (every item has its files, every file an item), verifies, and
    /// restores into a fresh vault that serves every item byte for byte.
    async fn a_backup_taken_while_capturing_restores_every_item_byte_for_byte(backend: Backend) {
        let app = spawn_app(backend.clone()).await;
        let backups = tempfile::tempdir().unwrap();
        let route = |name: &str| Route::file(app.fixtures.path(name), "video/mp4");
        for name in ["h264_aac_faststart.mp4", "h264_silent.mp4"] {
            let item = app.capture_and_wait(&app.server.add(&format!("/{name}"), route(name))).await;
            assert_eq!(item["status"], "completed", "{item}");
        }
        let slow = |name: &str| route(name).drip(32 * 1024, Duration::from_millis(10));
        for name in ["h264_aac.mp4", "mpeg4_pcm.avi"] {
            let url = app.server.add(&format!("/slow/{name}"), slow(name));
            assert_eq!(app.post_capture(&url).await.status(), 202);
        }
        let settings = app.settings.clone();
        let dir = backups.path().to_path_buf();
        let backup = tokio::spawn(async move { run(&settings, &dir, &["backup", "create"]).await });
        for name in ["hevc_aac.mkv", "vp9_opus.webm"] {
            let url = app.server.add(&format!("/late/{name}"), route(name));
            assert_eq!(app.post_capture(&url).await.status(), 202);
        }
        let out = backup.await.unwrap();
        assert!(out.status.success(), "{}", text(&out));

        let [snapshot] = snapshots(backups.path()).try_into().unwrap();
        let manifest = manifest(&snapshot);
        let files = media_files(&manifest);
        let items = rows(&snapshot, "items");
        let completed: Vec<&Value> = items.iter().filter(|i| i["status"] == "completed").collect();
        assert!(completed.len() >= 2, "{items:?}");
        assert_eq!(manifest["counts"]["items"], items.len());
        let mut named = BTreeSet::new();
        for item in &completed {
            let video = item["video_path"].as_str().unwrap();
            assert_eq!(files.get(video), item["sha256"].as_str().map(str::to_string).as_ref(), "{item}");
            let copy = std::fs::read(snapshot.join("media").join(video)).unwrap();
            assert_eq!(sha256_hex(&copy), item["sha256"].as_str().unwrap());
            named.insert(video.to_string());
            for thumb in ["thumb_small_path", "thumb_medium_path", "thumb_large_path"] {
                let thumb = item[thumb].as_str().unwrap();
                assert!(files.contains_key(thumb), "no {thumb} in the snapshot");
                named.insert(thumb.to_string());
            }
        }
        let unnamed: Vec<&String> = files.keys().filter(|f| !named.contains(*f)).collect();
        assert!(unnamed.is_empty(), "files without an item: {unnamed:?}");
        assert_eq!(manifest["missing_at_source"], serde_json::json!([]));

        let out = run(&app.settings, backups.path(), &["backup", "verify", snapshot.to_str().unwrap()]).await;
        assert!(out.status.success(), "{}", text(&out));

        // A fresh vault on the same kind of database.
        let target = tempfile::tempdir().unwrap();
        let (url, _pg) = match &backend {
            Backend::Sqlite => (format!("sqlite://{}", target.path().join("restored.db").display()), None),
            Backend::Postgres(admin) => {
                let db = PgDatabase::create(admin).await;
                (db.url.clone(), Some(db))
            }
        };
        let mut restored_settings = app.settings.clone();
        restored_settings.database.url = prsnl::settings::Secret::new(url.clone());
        restored_settings.storage.media_root = target.path().join("media");
        let out = run(&restored_settings, backups.path(), &["restore", snapshot.to_str().unwrap()]).await;
        assert!(out.status.success(), "{}", text(&out));
        // Restoring again is refused: the target is no longer empty.
        let again = run(&restored_settings, backups.path(), &["restore", snapshot.to_str().unwrap()]).await;
        assert_eq!(again.status.code(), Some(3), "{}", text(&again));
        assert!(text(&again).contains("not empty"), "{}", text(&again));
        // Told to, it replaces what the target holds: the same rows once, not twice.
        let forced = run(&restored_settings, backups.path(), &["restore", "--force", snapshot.to_str().unwrap()]).await;
        assert!(forced.status.success(), "{}", text(&forced));

        let restored = spawn_app_with(backend, |s| {
            s.database.url = prsnl::settings::Secret::new(url);
            s.storage.media_root = target.path().join("media");
        })
        .await;
        assert_eq!(restored.item_count().await, items.len() as i64);
        for item in &completed {
            let id = item["id"].as_str().unwrap();
            let body = restored
                .client
                .get(restored.url(&format!("/api/videos/{id}/stream")))
                .send()
                .await
                .unwrap();
            assert_eq!(body.status(), 200, "{id}");
            let bytes = body.bytes().await.unwrap();
            assert_eq!(sha256_hex(&bytes), item["sha256"].as_str().unwrap(), "{id}");
            for size in ["small", "medium", "large"] {
                let thumb = restored
                    .client
                    .get(restored.url(&format!("/api/videos/{id}/thumbnail/{size}")))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(thumb.status(), 200, "{id} {size}");
            }
        }
    }
}

on_both_backends! {
    /// While a backup holds its lease, a deleted item's row goes at once but its files stay;
    /// they go when the lease ends.
    async fn a_deleted_items_files_wait_for_a_running_backup(backend: Backend) {
        let app = spawn_app(backend).await;
        let id = app.seed_completed_video(b"kept until the backup is done").await;
        let item = app.item(&id.to_string()).await;
        assert_eq!(item["status"], "completed");
        let db = &app.ctx().db;
        let now = prsnl::clock::now();
        prsnl::db::backup_leases::take(db, "test-lease", "the test", now, now.plus(Duration::from_secs(60)))
            .await
            .unwrap();
        let file = app.files_under("videos").into_iter().find(|f| f.contains(&id.to_string())).unwrap();
        let deleted = app.client.delete(app.url(&format!("/api/videos/{id}"))).send().await.unwrap();
        assert_eq!(deleted.status(), 204);
        assert_eq!(app.client.get(app.url(&format!("/api/items/{id}"))).send().await.unwrap().status(), 404);
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert!(app.media_path(&file).exists(), "removed while a backup held its lease");
        prsnl::db::backup_leases::release(db, "test-lease").await.unwrap();
        assert!(
            wait_for(Duration::from_secs(15), || async { !app.media_path(&file).exists() }).await,
            "the file stayed after the lease ended"
        );
    }
}

on_both_backends! {
    /// Every table is a decision: kept in a backup, or left out on purpose.
    async fn every_table_is_kept_or_left_out_on_purpose(backend: Backend) {
        let (db, _dir, _pg) = crate::helpers::fresh_db(&backend).await;
        let tables: BTreeSet<String> = prsnl::db::dump::tables(&db).await.unwrap().into_iter().collect();
        let known: BTreeSet<String> = prsnl::db::dump::KEPT_TABLES
            .iter()
            .chain(prsnl::db::dump::NOT_KEPT_TABLES)
            .chain(prsnl::db::dump::DERIVED_TABLES)
            .map(|t| t.to_string())
            .collect();
        let undecided: Vec<&String> = tables.difference(&known).collect();
        assert!(undecided.is_empty(), "tables neither kept, left out nor derived: {undecided:?}");
        for kept in prsnl::db::dump::KEPT_TABLES {
            assert!(tables.contains(*kept), "{kept}");
        }
    }
}

/// A second backup of an unchanged vault copies only the database dump: its media are hard
/// links to the first snapshot's copies, which share no inode with the live tree.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unchanged_vault_backs_up_again_as_links() {
    let app = spawn_app(Backend::Sqlite).await;
    let backups = tempfile::tempdir().unwrap();
    seed(&app, 3, 256 * 1024).await;
    for _ in 0..2 {
        let out = run(&app.settings, backups.path(), &["backup", "create"]).await;
        assert!(out.status.success(), "{}", text(&out));
    }
    let [first, second] = snapshots(backups.path()).try_into().unwrap();
    let (m1, m2) = (manifest(&first), manifest(&second));
    assert_eq!(m2["previous"], first.file_name().unwrap().to_str().unwrap());
    let media_bytes = m1["counts"]["bytes_new"].as_u64().unwrap();
    assert!(media_bytes > 3 * 256 * 1024);
    assert_eq!(
        m2["counts"]["bytes_linked"].as_u64().unwrap(),
        (3 * 256 * 1024 + 3 * 3 * THUMB_BYTES) as u64
    );
    let dump_bytes: u64 = m2["files"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["path"].as_str().unwrap().starts_with("database/"))
        .map(|f| f["size"].as_u64().unwrap())
        .sum();
    assert_eq!(m2["counts"]["bytes_new"].as_u64().unwrap(), dump_bytes);
    assert!(dump_bytes < 64 * 1024, "{dump_bytes}");
    for rel in media_files(&m2).keys() {
        let a = std::fs::metadata(first.join("media").join(rel)).unwrap();
        let b = std::fs::metadata(second.join("media").join(rel)).unwrap();
        let live = std::fs::metadata(app.media_path(rel)).unwrap();
        assert_eq!(a.ino(), b.ino(), "{rel} is not a link to the first copy");
        assert_ne!(
            a.ino(),
            live.ino(),
            "{rel} shares an inode with the live tree"
        );
        assert_eq!(b.permissions().mode() & 0o777, 0o444, "{rel}");
    }
    let listed = run(&app.settings, backups.path(), &["backup", "list"]).await;
    assert!(listed.status.success());
    assert_eq!(
        String::from_utf8_lossy(&listed.stdout).lines().count(),
        3,
        "{}",
        text(&listed)
    );
}

/// `verify` re-reads every byte: a flipped byte and a missing file fail it, each named; a
/// restore from that snapshot stops before touching the database.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_names_a_damaged_and_a_missing_file() {
    let app = spawn_app(Backend::Sqlite).await;
    let backups = tempfile::tempdir().unwrap();
    seed(&app, 2, 64 * 1024).await;
    let out = run(&app.settings, backups.path(), &["backup", "create"]).await;
    assert!(out.status.success(), "{}", text(&out));
    let [snapshot] = snapshots(backups.path()).try_into().unwrap();
    let videos: Vec<String> = media_files(&manifest(&snapshot))
        .into_keys()
        .filter(|f| f.starts_with("videos/"))
        .collect();
    let (flipped, removed) = (
        snapshot.join("media").join(&videos[0]),
        snapshot.join("media").join(&videos[1]),
    );
    std::fs::set_permissions(&flipped, std::fs::Permissions::from_mode(0o644)).unwrap();
    let mut bytes = std::fs::read(&flipped).unwrap();
    bytes[1000] ^= 0x01;
    std::fs::write(&flipped, bytes).unwrap();
    std::fs::remove_file(&removed).unwrap();

    let out = run(
        &app.settings,
        backups.path(),
        &["backup", "verify", snapshot.to_str().unwrap()],
    )
    .await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let said = text(&out);
    assert!(
        said.contains(&videos[0]) && said.contains("damaged"),
        "{said}"
    );
    assert!(
        said.contains(&videos[1]) && said.contains("missing"),
        "{said}"
    );
    // By name in the backup directory, too.
    let name = snapshot.file_name().unwrap().to_str().unwrap();
    let by_name = run(&app.settings, backups.path(), &["backup", "verify", name]).await;
    assert_eq!(by_name.status.code(), Some(1));

    let target = tempfile::tempdir().unwrap();
    let mut empty = app.settings.clone();
    let db_path = target.path().join("t.db");
    empty.database.url = prsnl::settings::Secret::new(format!("sqlite://{}", db_path.display()));
    empty.storage.media_root = target.path().join("media");
    let out = run(&empty, backups.path(), &["restore", name]).await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains(&videos[0]), "{}", text(&out));
    let restored = prsnl::db::Db::connect(&empty.database).await.unwrap();
    let counts = prsnl::db::dump::row_counts(&restored).await.unwrap();
    assert!(counts.values().all(|n| *n == 0), "{counts:?}");
}

/// SIGKILL in the middle of a backup: nothing that looks like a finished snapshot remains,
/// and the next backup succeeds and removes the leftover.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_killed_midway_leaves_no_complete_looking_snapshot() {
    let app = spawn_app(Backend::Sqlite).await;
    let backups = tempfile::tempdir().unwrap();
    seed(&app, 24, 3 * 1024 * 1024).await;
    let mut child = command(&app.settings, backups.path(), &["backup", "create"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Watch as closely as a loop can for the backup's working directory, then kill.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while leftovers(backups.path()).is_empty() && std::time::Instant::now() < deadline {
        std::hint::spin_loop();
    }
    kill_hard(&mut child);
    assert!(
        snapshots(backups.path()).is_empty(),
        "a complete-looking snapshot after SIGKILL"
    );
    assert_eq!(leftovers(backups.path()).len(), 1);
    let listed = run(&app.settings, backups.path(), &["backup", "list"]).await;
    assert_eq!(
        String::from_utf8_lossy(&listed.stdout).lines().count(),
        1,
        "{}",
        text(&listed)
    );

    let out = run(&app.settings, backups.path(), &["backup", "create"]).await;
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("removed the leftover"),
        "{}",
        text(&out)
    );
    assert!(leftovers(backups.path()).is_empty());
    let [snapshot] = snapshots(backups.path()).try_into().unwrap();
    assert_eq!(manifest(&snapshot)["counts"]["completed_items"], 24);
    let out = run(
        &app.settings,
        backups.path(),
        &["backup", "verify", snapshot.to_str().unwrap()],
    )
    .await;
    assert!(out.status.success(), "{}", text(&out));
}

/// `prune` keeps what retention says (here: the newest of today) and removes the rest; what
/// stays still verifies, though it was made of links to what went.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prune_removes_what_retention_does_not_keep() {
    let app = spawn_app(Backend::Sqlite).await;
    let backups = tempfile::tempdir().unwrap();
    seed(&app, 2, 64 * 1024).await;
    for _ in 0..3 {
        let out = run(&app.settings, backups.path(), &["backup", "create"]).await;
        assert!(out.status.success(), "{}", text(&out));
    }
    let all = snapshots(backups.path());
    assert_eq!(all.len(), 3);
    let mut keep_one = command(
        &app.settings,
        backups.path(),
        &["backup", "prune", "--dry-run"],
    );
    keep_one
        .env("PRSNL_BACKUP__KEEP_DAILY", "1")
        .env("PRSNL_BACKUP__KEEP_WEEKLY", "0")
        .env("PRSNL_BACKUP__KEEP_MONTHLY", "0");
    let dry = tokio::task::spawn_blocking(move || keep_one.output().unwrap())
        .await
        .unwrap();
    assert!(dry.status.success(), "{}", text(&dry));
    // The newest of today stays: two of the three go.
    assert_eq!(
        text(&dry)
            .lines()
            .filter(|line| line.starts_with("would remove "))
            .count(),
        2,
        "{}",
        text(&dry)
    );
    assert_eq!(
        snapshots(backups.path()).len(),
        3,
        "a dry run removed something"
    );

    let mut prune = command(&app.settings, backups.path(), &["backup", "prune"]);
    prune
        .env("PRSNL_BACKUP__KEEP_DAILY", "1")
        .env("PRSNL_BACKUP__KEEP_WEEKLY", "0")
        .env("PRSNL_BACKUP__KEEP_MONTHLY", "0");
    let out = tokio::task::spawn_blocking(move || prune.output().unwrap())
        .await
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(snapshots(backups.path()), vec![all[2].clone()]);
    assert!(leftovers(backups.path()).is_empty());
    let newest = all[2].to_str().unwrap();
    let out = run(&app.settings, backups.path(), &["backup", "verify", newest]).await;
    assert!(out.status.success(), "{}", text(&out));

    // Everything 0 keeps everything.
    let out = run(&app.settings, backups.path(), &["backup", "create"]).await;
    assert!(out.status.success(), "{}", text(&out));
    let mut none = command(&app.settings, backups.path(), &["backup", "prune"]);
    none.env("PRSNL_BACKUP__KEEP_DAILY", "0")
        .env("PRSNL_BACKUP__KEEP_WEEKLY", "0")
        .env("PRSNL_BACKUP__KEEP_MONTHLY", "0");
    let out = tokio::task::spawn_blocking(move || none.output().unwrap())
        .await
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(snapshots(backups.path()).len(), 2);
}
