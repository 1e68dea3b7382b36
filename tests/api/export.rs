//! `prsnl export`: the vault as folders and names people understand, through the real binary,
//! against a running app's database and media root.

use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Output;

use prsnl::Settings;
use reqwest::Method;
use serde_json::Value;

use crate::backups::{seed, text};
use crate::cli::prsnl;
use crate::fixture_server::Route;
use crate::helpers::{Backend, TestApp, on_both_backends, sha256_hex, spawn_app};
use crate::people::{As, capture_done, people, status};

/// `prsnl export ARGS` on `settings`' database and media root, with `env` on top.
pub(crate) async fn export(settings: &Settings, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = prsnl();
    command
        .env("PRSNL_DATABASE__URL", settings.database.url.expose())
        .env("PRSNL_STORAGE__MEDIA_ROOT", &settings.storage.media_root)
        .env("PRSNL_STORAGE__MIN_FREE_MB", "1")
        .arg("export")
        .args(args);
    for (key, value) in env {
        command.env(key, value);
    }
    tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap()
}

/// What a file in the export is: inode, mode bits, modification time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Seen {
    inode: u64,
    mode: u32,
    mtime_ns: i64,
}

/// Every file under `root` but the export's own bookkeeping, by relative path.
pub(crate) fn tree(root: &Path) -> BTreeMap<String, Seen> {
    let mut found = BTreeMap::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let meta = std::fs::symlink_metadata(entry.path()).unwrap();
            if meta.is_dir() {
                pending.push(entry.path());
                continue;
            }
            let rel = entry
                .path()
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            if rel.starts_with(".prsnl-export") {
                continue;
            }
            let seen = Seen {
                inode: meta.ino(),
                mode: meta.mode() & 0o777,
                mtime_ns: meta.mtime() * 1_000_000_000 + meta.mtime_nsec(),
            };
            found.insert(rel, seen);
        }
    }
    found
}

/// The exported paths of item `id`.
fn of_item(tree: &BTreeMap<String, Seen>, id: &str) -> Vec<String> {
    tree.keys()
        .filter(|rel| rel.contains(id))
        .cloned()
        .collect()
}

fn one_ending(files: &[String], suffix: &str) -> String {
    let found: Vec<&String> = files.iter().filter(|f| f.ends_with(suffix)).collect();
    assert_eq!(found.len(), 1, "{suffix} in {files:?}");
    found[0].clone()
}

/// Sets an item's title and owner with SQL (the API cannot give a hostile title on demand).
async fn set_item(app: &TestApp, id: &str, title: Option<&str>, owner: Option<&str>) {
    let sql = "UPDATE items SET title = $1, owner = $2 WHERE id = $3";
    macro_rules! run {
        ($pool:expr) => {
            sqlx::query(sql)
                .bind(title)
                .bind(owner)
                .bind(id)
                .execute($pool)
                .await
                .unwrap()
        };
    }
    match &app.ctx().db {
        prsnl::db::Db::Sqlite(pool, _) => drop(run!(pool)),
        prsnl::db::Db::Postgres(pool) => drop(run!(pool)),
    }
}

/// The stored file of item `id` (the API shows it to admins).
async fn stored_file(app: &TestApp, admin: &As, id: &str) -> PathBuf {
    let (_, item) =
        crate::people::json_of(app, admin, Method::GET, &format!("/api/items/{id}"), None).await;
    app.media_path(item["metadata"]["storage_path"].as_str().unwrap())
}

const HOSTILE: &str = "../../escaped </title><y>\u{202E}gpj.exe: \"CON\"?";

on_both_backends! {
    /// A captured video and two seeded ones (one with a hostile title, one with none) export
    /// as read-only links with their metadata beside them; a second run changes nothing; a
    /// deleted item leaves the export, the person's own files stay.
    async fn an_export_run_twice_is_the_same_tree_and_a_deleted_item_leaves_it(backend: Backend) {
        let app = spawn_app(backend).await;
        let folks = people(&app).await;
        let url = app.server.add("/talk.mp4", Route::file(app.fixtures.path("h264_aac_faststart.mp4"), "video/mp4"));
        let captured = capture_done(&app, &folks.a, &url).await;
        let captured = captured["id"].as_str().unwrap().to_string();
        let transcode = format!("/api/videos/{captured}/transcode");
        let (code, _) = crate::people::json_of(&app, &folks.a, Method::POST, &transcode, Some(serde_json::json!({"quality": "360p"}))).await;
        assert_eq!(code, 202);
        let made = crate::helpers::wait_for(std::time::Duration::from_secs(60), || async {
            let (_, meta) = crate::people::json_of(&app, &folks.a, Method::GET, &format!("/api/videos/{captured}/metadata"), None).await;
            meta["renditions"].as_array().is_some_and(|r| !r.is_empty())
        })
        .await;
        assert!(made, "the rendition was never made");
        let seeded = seed(&app, 2, 4096).await;
        set_item(&app, &seeded[0], Some(HOSTILE), Some(&folks.b_id)).await;
        set_item(&app, &seeded[1], None, None).await;
        let outside = tempfile::tempdir().unwrap();
        let dir = outside.path().join("export");
        let dir_arg = dir.to_str().unwrap();

        let first = export(&app.settings, &[dir_arg], &[]).await;
        assert!(first.status.success(), "{}", text(&first));
        assert!(text(&first).contains("exported 3 items"), "{}", text(&first));
        let before = tree(&dir);
        assert_eq!(before.len(), 13, "a file, a thumbnail, .info.json and .nfo each, and a rendition: {before:#?}");
        let beside: Vec<_> = std::fs::read_dir(outside.path()).unwrap().flatten().map(|e| e.file_name()).collect();
        assert_eq!(beside, ["export"], "nothing is written outside the export directory");

        for (id, owner) in [(&captured, Some("alice")), (&seeded[0], Some("bob")), (&seeded[1], None)] {
            let files = of_item(&before, id);
            assert_eq!(files.len(), if *id == captured { 5 } else { 4 }, "{files:?}");
            assert!(files.iter().all(|f| f.starts_with("web/")), "{files:?}");
            let video = one_ending(&files, &format!("[{id}].mp4"));
            let stored = stored_file(&app, &folks.admin, id).await;
            let exported = std::fs::metadata(dir.join(&video)).unwrap();
            assert_eq!(exported.ino(), std::fs::metadata(&stored).unwrap().ino(), "a hard link to the vault's file");
            assert_eq!(exported.mode() & 0o777, 0o444, "read-only");
            let info: Value = serde_json::from_slice(&std::fs::read(dir.join(one_ending(&files, ".info.json"))).unwrap()).unwrap();
            assert_eq!(info["id"], id.as_str());
            assert_eq!(info["owner"].as_str(), owner);
            assert_eq!(info["sha256"], sha256_hex(&std::fs::read(dir.join(&video)).unwrap()));
            assert_eq!(info["files"]["media"].as_str(), Path::new(&video).file_name().unwrap().to_str());
            let thumb = one_ending(&files, "-thumb.jpg");
            assert_eq!(info["files"]["thumbnail"].as_str(), Path::new(&thumb).file_name().unwrap().to_str());
            let nfo = std::fs::read_to_string(dir.join(one_ending(&files, ".nfo"))).unwrap();
            assert!(nfo.contains(&format!("<uniqueid type=\"prsnl\" default=\"true\">{id}</uniqueid>")), "{nfo}");
        }
        // The capture's rendition sits beside it, named in its .info.json.
        let files = of_item(&before, &captured);
        let rendition = one_ending(&files, " - 360p.mp4");
        let info: Value = serde_json::from_slice(&std::fs::read(dir.join(one_ending(&files, ".info.json"))).unwrap()).unwrap();
        assert_eq!(info["renditions"][0]["file"].as_str(), Path::new(&rendition).file_name().unwrap().to_str(), "{info}");
        assert_eq!(info["renditions"][0]["sha256"], sha256_hex(&std::fs::read(dir.join(&rendition)).unwrap()));
        // The capture's name carries its date and its title from the source.
        let talk = one_ending(&files, &format!("[{captured}].mp4"));
        let day = &captured_day(&app, &folks.admin, &captured).await;
        assert!(talk.starts_with(&format!("web/{day} ")), "{talk}");
        // The hostile title is one safe name in the folder, and escaped in the .nfo.
        let hostile = one_ending(&of_item(&before, &seeded[0]), ".mp4");
        assert_eq!(hostile.matches('/').count(), 1, "{hostile}");
        assert!(!hostile.contains(['<', '>', '"', ':', '?', '\u{202E}']), "{hostile}");
        let nfo = std::fs::read_to_string(dir.join(one_ending(&of_item(&before, &seeded[0]), ".nfo"))).unwrap();
        assert!(nfo.contains("&lt;/title&gt;&lt;y&gt;") && !nfo.contains("<y>"), "{nfo}");
        let untitled = one_ending(&of_item(&before, &seeded[1]), ".mp4");
        assert!(untitled.contains(" Untitled ["), "{untitled}");

        let second = export(&app.settings, &[dir_arg], &[]).await;
        assert!(second.status.success(), "{}", text(&second));
        assert!(text(&second).contains("0 linked, 0 copied, 0 written, 13 unchanged, 0 removed"), "{}", text(&second));
        assert_eq!(tree(&dir), before, "the same files, not one rewritten");

        // The person's own file in the tree, and a deleted item.
        std::fs::write(dir.join("web/my notes.txt"), "mine").unwrap();
        assert_eq!(status(&app, &folks.admin, Method::DELETE, &format!("/api/videos/{}", seeded[1]), None).await, 204);
        let third = export(&app.settings, &[dir_arg], &[]).await;
        assert!(third.status.success(), "{}", text(&third));
        assert!(text(&third).contains("exported 2 items") && text(&third).contains("4 removed"), "{}", text(&third));
        let after = tree(&dir);
        assert!(of_item(&after, &seeded[1]).is_empty(), "{after:#?}");
        assert_eq!(std::fs::read_to_string(dir.join("web/my notes.txt")).unwrap(), "mine");
        for id in [&captured, &seeded[0]] {
            for rel in of_item(&before, id) {
                assert_eq!(after.get(&rel), before.get(&rel), "{rel} untouched");
            }
        }
    }
}

async fn captured_day(app: &TestApp, admin: &As, id: &str) -> String {
    let (_, item) =
        crate::people::json_of(app, admin, Method::GET, &format!("/api/items/{id}"), None).await;
    item["created_at"].as_str().unwrap()[..10].to_string()
}

/// `--user`, `--copy`, a configured pattern (and a bad one), a file in the way, a folder left
/// empty, and an export on another filesystem.
#[tokio::test]
async fn export_options_keep_to_their_words() {
    let app = spawn_app(Backend::Sqlite).await;
    let folks = people(&app).await;
    let seeded = seed(&app, 2, 8192).await;
    set_item(&app, &seeded[0], Some("Alice's clip"), Some(&folks.a_id)).await;
    set_item(&app, &seeded[1], Some("Bob's clip"), Some(&folks.b_id)).await;
    let outside = tempfile::tempdir().unwrap();
    let at = |name: &str| outside.path().join(name).to_str().unwrap().to_string();

    let refused = export(
        &app.settings,
        &[&at("x")],
        &[("PRSNL_EXPORT__PATTERN", "{title}")],
    )
    .await;
    assert_eq!(refused.status.code(), Some(2), "{}", text(&refused));
    assert!(
        text(&refused).contains("export.pattern") && text(&refused).contains("{id}"),
        "{}",
        text(&refused)
    );
    let nobody = export(&app.settings, &[&at("x"), "--user", "nobody"], &[]).await;
    assert_eq!(nobody.status.code(), Some(2), "{}", text(&nobody));
    assert!(text(&nobody).contains("no user named"), "{}", text(&nobody));

    // One person's items, as independent copies, named by the configured pattern.
    let pattern = [("PRSNL_EXPORT__PATTERN", "{year}/{month}/{title} ({id})")];
    let copies = export(
        &app.settings,
        &[&at("alice"), "--user", "alice", "--copy"],
        &pattern,
    )
    .await;
    assert!(copies.status.success(), "{}", text(&copies));
    let alice = tree(&outside.path().join("alice"));
    assert_eq!(alice.len(), 4, "{alice:#?}");
    assert!(
        of_item(&alice, &seeded[1]).is_empty(),
        "bob's item is not alice's: {alice:#?}"
    );
    let video = one_ending(
        &of_item(&alice, &seeded[0]),
        &format!("Alice's clip ({}).mp4", seeded[0]),
    );
    assert_eq!(video.split('/').count(), 3, "{video}");
    let stored = stored_file(&app, &folks.admin, &seeded[0]).await;
    let copy = std::fs::metadata(outside.path().join("alice").join(&video)).unwrap();
    assert_ne!(copy.ino(), std::fs::metadata(&stored).unwrap().ino());
    assert_eq!(
        copy.permissions().mode() & 0o777,
        0o644,
        "copies are the person's to edit"
    );
    assert_eq!(
        std::fs::read(outside.path().join("alice").join(&video)).unwrap(),
        std::fs::read(&stored).unwrap()
    );
    // Alice edits her copy in place: it is hers now, kept as it is, not an error.
    let edited = outside.path().join("alice").join(&video);
    std::fs::write(&edited, "alice's cut").unwrap();
    let kept = export(
        &app.settings,
        &[&at("alice"), "--user", "alice", "--copy"],
        &pattern,
    )
    .await;
    assert!(kept.status.success(), "{}", text(&kept));
    assert!(
        text(&kept).contains(&format!("kept as it is: {video}")),
        "{}",
        text(&kept)
    );
    assert_eq!(std::fs::read_to_string(&edited).unwrap(), "alice's cut");
    let quiet = export(
        &app.settings,
        &[&at("alice"), "--user", "alice", "--copy"],
        &pattern,
    )
    .await;
    assert!(
        quiet.status.success(),
        "still hers on the next run: {}",
        text(&quiet)
    );
    assert!(
        !text(&quiet).contains("kept as it is"),
        "said once: {}",
        text(&quiet)
    );
    // Alice's directory is hers: another selection there is refused, since it would remove
    // her files.
    let switched = export(&app.settings, &[&at("alice"), "--user", "bob"], &[]).await;
    assert_eq!(switched.status.code(), Some(3), "{}", text(&switched));
    assert!(
        text(&switched).contains("--force") && text(&switched).contains("alice's items"),
        "{}",
        text(&switched)
    );
    // Never inside the media root (the sweep would take it for orphans), and nothing is
    // made there before refusing.
    let inside = app.settings.storage.media_root.join("export");
    let refused = export(&app.settings, &[inside.to_str().unwrap()], &[]).await;
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused));
    assert!(text(&refused).contains("media_root"), "{}", text(&refused));
    assert!(!inside.exists());
    // Nor around it: a folder holding the media root would let a pattern reach the vault's
    // own files.
    let around = app.settings.storage.media_root.parent().unwrap();
    let refused = export(&app.settings, &[around.to_str().unwrap()], &[]).await;
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused));
    assert!(text(&refused).contains("overlap"), "{}", text(&refused));

    // A tree exported before, its record lost, and a sidecar someone changed: identical files
    // are taken back, the changed one is left alone and named.
    let bob_dir = at("bob");
    let first = export(&app.settings, &[&bob_dir, "--user", "bob"], &[]).await;
    assert!(first.status.success(), "{}", text(&first));
    let bob_tree = tree(Path::new(&bob_dir));
    std::fs::remove_file(Path::new(&bob_dir).join(".prsnl-export.json")).unwrap();
    let json = one_ending(&of_item(&bob_tree, &seeded[1]), ".info.json");
    std::fs::write(Path::new(&bob_dir).join(&json), "{\"edited\": true}").unwrap();
    let again = export(&app.settings, &[&bob_dir, "--user", "bob"], &[]).await;
    assert_eq!(again.status.code(), Some(1), "{}", text(&again));
    assert!(
        text(&again).contains(&format!("left alone: {json}")),
        "{}",
        text(&again)
    );
    assert!(text(&again).contains("3 unchanged"), "{}", text(&again));
    assert_eq!(
        std::fs::read_to_string(Path::new(&bob_dir).join(&json)).unwrap(),
        "{\"edited\": true}"
    );

    // Alice's only item deleted: what the export wrote goes; her edited copy stays.
    assert_eq!(
        status(
            &app,
            &folks.admin,
            Method::DELETE,
            &format!("/api/videos/{}", seeded[0]),
            None
        )
        .await,
        204
    );
    let emptied = export(
        &app.settings,
        &[&at("alice"), "--user", "alice", "--copy"],
        &pattern,
    )
    .await;
    assert!(emptied.status.success(), "{}", text(&emptied));
    assert!(text(&emptied).contains("3 removed"), "{}", text(&emptied));
    let left: Vec<String> = tree(&outside.path().join("alice")).into_keys().collect();
    assert_eq!(left, std::slice::from_ref(&video));

    // Another filesystem (tmpfs): hard links cannot cross it, so read-only copies, and a
    // second run leaves them be.
    let shm = tempfile::tempdir_in("/dev/shm").unwrap();
    let elsewhere = shm.path().to_str().unwrap();
    let across = export(&app.settings, &[elsewhere, "--user", "bob"], &[]).await;
    assert!(across.status.success(), "{}", text(&across));
    let video = one_ending(&of_item(&tree(shm.path()), &seeded[1]), ".mp4");
    let meta = std::fs::metadata(shm.path().join(&video)).unwrap();
    let stored = std::fs::metadata(stored_file(&app, &folks.admin, &seeded[1]).await).unwrap();
    if meta.dev() == stored.dev() {
        assert_eq!(meta.ino(), stored.ino(), "one filesystem after all: a link");
    } else {
        assert_ne!(meta.ino(), stored.ino());
        assert_eq!(
            meta.mode() & 0o777,
            0o444,
            "a copy standing in for a link is read-only too"
        );
        assert!(text(&across).contains("2 copied"), "{}", text(&across));
    }
    let rerun = export(&app.settings, &[elsewhere, "--user", "bob"], &[]).await;
    assert!(
        text(&rerun).contains("0 linked, 0 copied, 0 written, 4 unchanged"),
        "{}",
        text(&rerun)
    );
    // The vault's file replaced (as a restore does): the export follows it.
    let stored_path = stored_file(&app, &folks.admin, &seeded[1]).await;
    let replacement = stored_path.with_extension("restored");
    std::fs::write(&replacement, "restored bytes").unwrap();
    std::fs::rename(&replacement, &stored_path).unwrap();
    let followed = export(&app.settings, &[elsewhere, "--user", "bob"], &[]).await;
    let refreshed = if meta.dev() == stored.dev() {
        "1 linked"
    } else {
        "1 copied"
    };
    assert!(text(&followed).contains(refreshed), "{}", text(&followed));
    assert_eq!(
        std::fs::read_to_string(shm.path().join(&video)).unwrap(),
        "restored bytes"
    );
}
