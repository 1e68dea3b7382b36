//! `spawn_app()`: a real app on a fresh database (SQLite always, PostgreSQL when
//! `PRSNL_TEST_POSTGRES_URL` is set), its own media root and port, and a fixture server whose
//! address the SSRF allow-list opens.

use std::future::Future;
use std::net::SocketAddr;
use std::num::NonZero;
use std::sync::Arc;
use std::time::{Duration, Instant};

use prsnl::context::AppContext;
use prsnl::{App, Settings, StartOptions};
use serde_json::Value;

use crate::fixture_server::FixtureServer;
use crate::fixtures::{Fixtures, fixtures};

#[derive(Debug, Clone)]
pub enum Backend {
    Sqlite,
    /// The admin URL; each test gets its own database on that server.
    Postgres(String),
}

impl Backend {
    pub fn postgres() -> Option<Backend> {
        std::env::var("PRSNL_TEST_POSTGRES_URL")
            .ok()
            .filter(|u| !u.is_empty())
            .map(Backend::Postgres)
    }
}

/// Runs the same scenario on SQLite and on PostgreSQL (when configured), as two tests:
/// `name::sqlite` and `name::postgres`.
macro_rules! on_both_backends {
    ($(#[$meta:meta])* async fn $name:ident($backend:ident: Backend) $body:block) => {
        $(#[$meta])*
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            async fn scenario($backend: $crate::helpers::Backend) $body

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                scenario($crate::helpers::Backend::Sqlite).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                match $crate::helpers::Backend::postgres() {
                    Some(backend) => scenario(backend).await,
                    None => eprintln!("PRSNL_TEST_POSTGRES_URL is not set: PostgreSQL variant not run"),
                }
            }
        }
    };
}
pub(crate) use on_both_backends;

/// A fresh PostgreSQL database, dropped (forcibly) when this guard goes.
pub struct PgDatabase {
    admin_url: String,
    name: String,
    pub url: String,
}

impl PgDatabase {
    pub async fn create(admin_url: &str) -> Self {
        let name = format!("prsnl_t_{}", uuid::Uuid::now_v7().simple());
        let pool = sqlx::PgPool::connect(admin_url)
            .await
            .expect("PostgreSQL reachable at PRSNL_TEST_POSTGRES_URL");
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
        let mut url = url::Url::parse(admin_url).unwrap();
        url.set_path(&format!("/{name}"));
        Self {
            admin_url: admin_url.to_string(),
            name,
            url: url.to_string(),
        }
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let (admin, name) = (self.admin_url.clone(), self.name.clone());
        // Drop runs inside the test's runtime; a thread with its own runtime does the async
        // cleanup without blocking on the caller's executor.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                if let Ok(pool) = sqlx::PgPool::connect(&admin).await {
                    let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                        "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
                    )))
                    .execute(&pool)
                    .await;
                    pool.close().await;
                }
            });
        })
        .join();
    }
}

pub struct TestApp {
    app: Option<App>,
    pub addr: SocketAddr,
    /// The separate metrics listener, when `server.metrics_listen` is set.
    pub metrics_addr: Option<SocketAddr>,
    pub base: String,
    pub client: reqwest::Client,
    pub settings: Settings,
    pub server: FixtureServer,
    pub fixtures: &'static Fixtures,
    _dir: tempfile::TempDir,
    _pg: Option<PgDatabase>,
}

/// Settings for a test app: everything under `dir`, quick retries, the fixture server allowed.
pub fn test_settings(dir: &std::path::Path, database_url: &str, fixture_port: u16) -> Settings {
    let mut s = Settings::defaults();
    s.database.url = prsnl::settings::Secret::new(database_url);
    s.storage.media_root = dir.join("media");
    s.server.listen = "127.0.0.1:0".parse().unwrap();
    s.server.shutdown_grace_secs = 5;
    s.server.instance_id = format!("test-{}", uuid::Uuid::now_v7().simple());
    s.queue.retry_base_ms = NonZero::new(200).unwrap();
    s.queue.retry_max_ms = 1000;
    s.queue.poll_interval_ms = NonZero::new(200).unwrap();
    s.queue.max_attempts = NonZero::new(3).unwrap();
    for platform in prsnl::domain::Platform::ALL {
        let p = s.platforms.get_mut(platform);
        p.max_attempts = NonZero::new(3).unwrap();
        p.retry_base_ms = NonZero::new(200).unwrap();
        p.retry_max_ms = 1000;
        p.pause_min_ms = 0;
        p.pause_max_ms = 0;
        p.requests_per_minute = NonZero::new(6000).unwrap();
        p.burst = NonZero::new(100).unwrap();
    }
    s.security.ssrf_allow = vec![format!("127.0.0.1:{fixture_port}").parse().unwrap()];
    s.metrics.refresh_secs = NonZero::new(1).unwrap();
    // The suite must not refuse work on a machine with little free disk.
    s.storage.min_free_mb = 1;
    s.watch.dir = dir.join("inbox");
    s.backup.directory = dir.join("backups");
    s.export.directory = dir.join("export");
    s
}

pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, |_| {}).await
}

pub async fn spawn_app_with(backend: Backend, configure: impl FnOnce(&mut Settings)) -> TestApp {
    let fixtures = fixtures();
    let dir = tempfile::tempdir().unwrap();
    let server = FixtureServer::start().await;
    let (database_url, pg) = match &backend {
        Backend::Sqlite => (
            format!("sqlite://{}", dir.path().join("prsnl.db").display()),
            None,
        ),
        Backend::Postgres(admin) => {
            let db = PgDatabase::create(admin).await;
            (db.url.clone(), Some(db))
        }
    };
    let mut settings = test_settings(dir.path(), &database_url, server.addr().port());
    configure(&mut settings);
    let (app, addr) = start(settings.clone()).await;
    TestApp {
        metrics_addr: app.metrics_addr(),
        app: Some(app),
        addr,
        base: format!("http://{addr}"),
        client: reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap(),
        settings,
        server,
        fixtures,
        _dir: dir,
        _pg: pg,
    }
}

async fn start(settings: Settings) -> (App, SocketAddr) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let app = App::start(
        settings,
        StartOptions {
            listener: Some(listener),
            lease_owner: None,
        },
    )
    .await
    .expect("app starts");
    (app, addr)
}

impl TestApp {
    pub fn ctx(&self) -> &Arc<AppContext> {
        self.app.as_ref().expect("app running").context()
    }

    pub fn intake(&self) -> &prsnl::intake::Intake {
        self.app.as_ref().expect("app running").intake()
    }

    pub fn handles(&self) -> &prsnl::actors::Handles {
        self.app.as_ref().expect("app running").handles()
    }

    /// The running app, taken out to be stopped by the caller (in a task of its own, say).
    pub fn take_app(&mut self) -> App {
        self.app.take().expect("app running")
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A scrape of `/metrics` (from the metrics listener when there is one).
    pub async fn scrape(&self) -> crate::exposition::Scrape {
        let base = match self.metrics_addr {
            Some(addr) => format!("http://{addr}"),
            None => self.base.clone(),
        };
        let response = self
            .client
            .get(format!("{base}/metrics"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "GET /metrics");
        crate::exposition::Scrape::parse(&response.text().await.unwrap())
    }

    pub async fn post_capture(&self, url: &str) -> reqwest::Response {
        self.client
            .post(self.url("/api/capture"))
            .json(&serde_json::json!({ "url": url }))
            .send()
            .await
            .unwrap()
    }

    /// Submits `url` and expects it accepted; returns the item JSON.
    pub async fn capture(&self, url: &str) -> Value {
        let response = self.post_capture(url).await;
        let status = response.status();
        let body: Value = response.json().await.unwrap();
        assert!(
            status.is_success(),
            "capture of {url} refused: {status} {body}"
        );
        body
    }

    pub async fn item(&self, id: &str) -> Value {
        let response = self
            .client
            .get(self.url(&format!("/api/items/{id}")))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "GET item {id}");
        response.json().await.unwrap()
    }

    /// The JSON body of `GET path`, whatever the status.
    pub async fn get_json(&self, path: &str) -> Value {
        get_json(&self.client, &self.url(path)).await
    }

    /// How many items `GET /api/items?status=…` lists (one page of up to 100).
    pub async fn count_with_status(&self, status: &str) -> usize {
        let page = self
            .get_json(&format!("/api/items?status={status}&limit=100"))
            .await;
        page["items"].as_array().unwrap().len()
    }

    /// Polls the item until it is completed, failed or cancelled.
    pub async fn wait_terminal(&self, id: &str) -> Value {
        self.wait_terminal_by(id, Instant::now() + Duration::from_secs(90))
            .await
    }

    /// Polls every item until each is completed, failed or cancelled; returns them in order.
    /// The deadline is shared and grows with the batch: jobs are claimed in the order the
    /// server stored them, not the order they are awaited, so the item awaited second may be
    /// the batch's last, and a loaded machine runs a batch slower than one item.
    pub async fn wait_all_terminal(&self, ids: &[&str]) -> Vec<Value> {
        let budget = Duration::from_secs(60) + Duration::from_secs(15) * ids.len() as u32;
        let deadline = Instant::now() + budget;
        let mut done = Vec::with_capacity(ids.len());
        for id in ids {
            done.push(self.wait_terminal_by(id, deadline).await);
        }
        done
    }

    /// Polls the item until it is completed, failed or cancelled, failing at `deadline` (a
    /// guard against a hang, not a timing claim).
    async fn wait_terminal_by(&self, id: &str, deadline: Instant) -> Value {
        loop {
            let item = self.item(id).await;
            if matches!(
                item["status"].as_str(),
                Some("completed" | "failed" | "cancelled")
            ) {
                return item;
            }
            assert!(
                Instant::now() < deadline,
                "item {id} did not finish: {item}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Captures `url` and waits for the end; returns the final item JSON.
    pub async fn capture_and_wait(&self, url: &str) -> Value {
        let item = self.capture(url).await;
        self.wait_terminal(item["id"].as_str().unwrap()).await
    }

    pub fn media_path(&self, relative: &str) -> std::path::PathBuf {
        self.ctx().media.path().join(relative)
    }

    /// Every regular file under a media subtree (relative paths, sorted).
    pub fn files_under(&self, subtree: &str) -> Vec<String> {
        let root = self.ctx().media.path().to_path_buf();
        let mut found = Vec::new();
        let mut stack = vec![root.join(subtree)];
        while let Some(dir) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let path = entry.path();
                if path.is_dir() {
                    stack.push(path);
                } else {
                    found.push(path.strip_prefix(&root).unwrap().display().to_string());
                }
            }
        }
        found.sort();
        found
    }

    pub async fn item_count(&self) -> i64 {
        let ctx = self.ctx();
        match &ctx.db {
            prsnl::db::Db::Sqlite(pool, _) => sqlx::query_scalar("SELECT COUNT(*) FROM items")
                .fetch_one(pool)
                .await
                .unwrap(),
            prsnl::db::Db::Postgres(pool) => sqlx::query_scalar("SELECT COUNT(*) FROM items")
                .fetch_one(pool)
                .await
                .unwrap(),
        }
    }

    /// Stops the app gracefully (if running) and starts a new one on the same database and
    /// media root, as a new boot of the same instance.
    pub async fn restart(&mut self) {
        if self.app.is_some() {
            self.stop_app().await;
        }
        let (app, addr) = start(self.settings.clone()).await;
        self.app = Some(app);
        self.addr = addr;
        self.base = format!("http://{addr}");
    }

    /// A separate connection to the app's database, usable while the app is stopped.
    pub async fn open_db(&self) -> prsnl::db::Db {
        prsnl::db::Db::connect(&self.settings.database)
            .await
            .unwrap()
    }

    /// Graceful shutdown; returns how long it took.
    pub async fn stop_app(&mut self) -> Duration {
        let started = Instant::now();
        let exit = self.app.take().expect("app running").shutdown().await;
        assert_eq!(exit, prsnl::Exit::Clean);
        started.elapsed()
    }
}

/// Polls `condition` every 50 ms until it holds or `timeout` passes; true when it held.
/// The JSON body of `GET url`, whatever the status.
pub async fn get_json(client: &reqwest::Client, url: &str) -> Value {
    client.get(url).send().await.unwrap().json().await.unwrap()
}

pub async fn wait_for<F, Fut>(timeout: Duration, mut condition: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if condition().await {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// SHA-256 of bytes as lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// A migrated database on `backend` alone, without an app (for queue contract tests).
pub async fn fresh_db(backend: &Backend) -> (prsnl::db::Db, tempfile::TempDir, Option<PgDatabase>) {
    let dir = tempfile::tempdir().unwrap();
    let (url, pg) = match backend {
        Backend::Sqlite => (
            format!("sqlite://{}", dir.path().join("queue.db").display()),
            None,
        ),
        Backend::Postgres(admin) => {
            let db = PgDatabase::create(admin).await;
            (db.url.clone(), Some(db))
        }
    };
    let mut settings = Settings::defaults();
    settings.database.url = prsnl::settings::Secret::new(url);
    // Enough connections for eight concurrent claimers plus completions.
    settings.database.max_connections = NonZero::new(16).unwrap();
    let db = prsnl::db::Db::connect(&settings.database).await.unwrap();
    db.migrate().await.unwrap();
    (db, dir, pg)
}

impl TestApp {
    /// Stores `bytes` as the video of a new completed item (see [`seed_completed_video`]).
    pub async fn seed_completed_video(&self, bytes: &[u8]) -> prsnl::domain::ItemId {
        seed_completed_video(&self.ctx().db, self.ctx().media.path(), bytes).await
    }
}

/// Stores `bytes` as the video of a new completed item, without downloading anything: for
/// HTTP tests that need files of exact sizes. Written with SQL so no job exists that a
/// pipeline could pick up.
pub async fn seed_completed_video(
    db: &prsnl::db::Db,
    media_root: &std::path::Path,
    bytes: &[u8],
) -> prsnl::domain::ItemId {
    let id = prsnl::domain::ItemId::new();
    let now = prsnl::clock::now();
    let paths = prsnl::domain::layout::MediaPaths::for_item(
        id.as_uuid(),
        prsnl::domain::ItemKind::Video,
        prsnl::clock::datetime(now),
    );
    let path = media_root.join(&paths.file);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, bytes).unwrap();
    let sql = "INSERT INTO items (id, source, source_url, canonical_url, platform, status, title, \
         duration_seconds, width, height, video_codec, audio_codec, container, size_bytes, sha256, \
         thumbnails_bytes, video_path, thumb_small_path, thumb_medium_path, thumb_large_path, \
         created_at, updated_at, completed_at) \
         VALUES ($1, 'api', $2, $2, 'generic', 'completed', 'seeded', 1.0, 640, 360, 'h264', 'aac', 'mp4', \
         $3, $4, 0, $5, $6, $7, $8, $9, $9, $9)";
    let url = format!("https://seed.invalid/{id}.mp4");
    macro_rules! run {
        ($pool:expr) => {
            sqlx::query(sql)
                .bind(id.to_string())
                .bind(&url)
                .bind(bytes.len() as i64)
                .bind(sha256_hex(bytes))
                .bind(&paths.file)
                .bind(&paths.thumb_small)
                .bind(&paths.thumb_medium)
                .bind(&paths.thumb_large)
                .bind(now.as_millis())
                .execute($pool)
                .await
                .unwrap()
        };
    }
    match db {
        prsnl::db::Db::Sqlite(pool, _) => drop(run!(pool)),
        prsnl::db::Db::Postgres(pool) => drop(run!(pool)),
    }
    id
}

/// True when no process on the machine mentions `needle` (a job id) on its command line: the
/// tools of that job are gone.
pub fn no_process_mentions(needle: &str) -> bool {
    std::fs::read_dir("/proc").unwrap().flatten().all(|entry| {
        std::fs::read(entry.path().join("cmdline"))
            .map(|cmdline| !String::from_utf8_lossy(&cmdline).contains(needle))
            .unwrap_or(true)
    })
}
