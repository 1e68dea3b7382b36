//! The move between databases: a SQLite snapshot restored into PostgreSQL and back, and
//! `prsnl db copy`, each ending in a vault that serves every item byte for byte.

use std::collections::BTreeMap;

use prsnl::settings::Secret;
use serde_json::Value;

use crate::backups::{rows, run, seed, snapshots, text};
use crate::fixture_server::Route;
use crate::helpers::{Backend, PgDatabase, TestApp, sha256_hex, spawn_app, spawn_app_with};

/// The PostgreSQL server's admin URL, or None (and a note) when the tests have none.
fn postgres_admin() -> Option<String> {
    match Backend::postgres() {
        Some(Backend::Postgres(admin)) => Some(admin),
        _ => {
            eprintln!("PRSNL_TEST_POSTGRES_URL is not set: this cross-database test did not run");
            None
        }
    }
}

/// A SQLite vault with real captures and seeded items: the rows a move must keep.
async fn sqlite_vault() -> TestApp {
    let app = spawn_app(Backend::Sqlite).await;
    for name in ["h264_aac_faststart.mp4", "vp9_opus.webm"] {
        let url = app.server.add(
            &format!("/{name}"),
            Route::file(app.fixtures.path(name), "video/mp4"),
        );
        let item = app.capture_and_wait(&url).await;
        assert_eq!(item["status"], "completed", "{item}");
    }
    seed(&app, 2, 64 * 1024).await;
    app
}

/// Every kept table's rows, each table's sorted (the two databases order text differently).
fn all_rows(snapshot: &std::path::Path) -> BTreeMap<&'static str, Vec<String>> {
    prsnl::db::dump::KEPT_TABLES
        .iter()
        .map(|table| {
            let mut lines: Vec<String> =
                rows(snapshot, table).iter().map(Value::to_string).collect();
            lines.sort();
            (*table, lines)
        })
        .collect()
}

/// Streams every completed item of `snapshot` from `app` and compares its SHA-256.
async fn serves_every_item(app: &TestApp, items: &[Value]) {
    let completed: Vec<&Value> = items
        .iter()
        .filter(|i| i["status"] == "completed")
        .collect();
    assert!(completed.len() >= 4, "{items:?}");
    assert_eq!(app.item_count().await, items.len() as i64);
    for item in completed {
        let id = item["id"].as_str().unwrap();
        let answer = app
            .client
            .get(app.url(&format!("/api/videos/{id}/stream")))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200, "{id}");
        let bytes = answer.bytes().await.unwrap();
        assert_eq!(sha256_hex(&bytes), item["sha256"].as_str().unwrap(), "{id}");
    }
}

/// SQLite → PostgreSQL → SQLite through snapshots: every row of every kept table arrives
/// as it left, and the vault at the end serves every item.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sqlite_snapshot_restores_into_postgres_and_back() {
    let Some(admin) = postgres_admin() else {
        return;
    };
    let app = sqlite_vault().await;
    let first_dir = tempfile::tempdir().unwrap();
    let out = run(&app.settings, first_dir.path(), &["backup", "create"]).await;
    assert!(out.status.success(), "{}", text(&out));
    let [first] = snapshots(first_dir.path()).try_into().unwrap();

    let pg = PgDatabase::create(&admin).await;
    let pg_root = tempfile::tempdir().unwrap();
    let mut on_pg = app.settings.clone();
    on_pg.database.url = Secret::new(pg.url.clone());
    on_pg.storage.media_root = pg_root.path().join("media");
    let out = run(
        &on_pg,
        first_dir.path(),
        &["restore", first.to_str().unwrap()],
    )
    .await;
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("sqlite database"), "{}", text(&out));

    let second_dir = tempfile::tempdir().unwrap();
    let out = run(&on_pg, second_dir.path(), &["backup", "create"]).await;
    assert!(out.status.success(), "{}", text(&out));
    let [second] = snapshots(second_dir.path()).try_into().unwrap();
    assert_eq!(
        all_rows(&first),
        all_rows(&second),
        "rows changed on the way into PostgreSQL"
    );

    let back = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", back.path().join("back.db").display());
    let mut on_sqlite = app.settings.clone();
    on_sqlite.database.url = Secret::new(url.clone());
    on_sqlite.storage.media_root = back.path().join("media");
    let out = run(
        &on_sqlite,
        second_dir.path(),
        &["restore", second.to_str().unwrap()],
    )
    .await;
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("postgres database"), "{}", text(&out));

    let restored = spawn_app_with(Backend::Sqlite, |s| {
        s.database.url = Secret::new(url);
        s.storage.media_root = back.path().join("media");
    })
    .await;
    serves_every_item(&restored, &rows(&first, "items")).await;
}

/// `prsnl db copy` moves the rows into PostgreSQL; the service on PostgreSQL with the same
/// media root serves every item. A non-empty target and the same database are refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn db_copy_moves_a_vault_from_sqlite_to_postgres() {
    let Some(admin) = postgres_admin() else {
        return;
    };
    let mut app = sqlite_vault().await;
    let backups = tempfile::tempdir().unwrap();
    // The rows as they are, for the comparison, from a snapshot of the source.
    let out = run(&app.settings, backups.path(), &["backup", "create"]).await;
    assert!(out.status.success(), "{}", text(&out));
    let [snapshot] = snapshots(backups.path()).try_into().unwrap();
    app.stop_app().await;

    let pg = PgDatabase::create(&admin).await;
    let from = app.settings.database.url.expose().to_string();
    let copy = ["db", "copy", "--from", &from, "--to", &pg.url];
    let out = run(&app.settings, backups.path(), &copy).await;
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("copied"), "{}", text(&out));

    let again = run(&app.settings, backups.path(), &copy).await;
    assert_eq!(again.status.code(), Some(3), "{}", text(&again));
    assert!(text(&again).contains("not empty"), "{}", text(&again));
    let same = run(
        &app.settings,
        backups.path(),
        &["db", "copy", "--to", &from],
    )
    .await;
    assert_eq!(same.status.code(), Some(2), "{}", text(&same));
    let missing = run(
        &app.settings,
        backups.path(),
        &[
            "db",
            "copy",
            "--from",
            "sqlite:///nowhere/x.db",
            "--to",
            &pg.url,
        ],
    )
    .await;
    assert_eq!(missing.status.code(), Some(1), "{}", text(&missing));
    assert!(!std::path::Path::new("/nowhere/x.db").exists());

    let media_root = app.settings.storage.media_root.clone();
    let on_pg = spawn_app_with(Backend::Postgres(admin), |s| {
        s.database.url = Secret::new(pg.url.clone());
        s.storage.media_root = media_root;
    })
    .await;
    serves_every_item(&on_pg, &rows(&snapshot, "items")).await;
}
