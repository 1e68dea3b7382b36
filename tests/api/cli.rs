//! The `prsnl` binary itself: configuration errors, doctor, migrate, serve, capture.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::fixture_server::{FixtureServer, Route};
use crate::fixtures::fixtures;
use crate::helpers::{Backend, spawn_app};

pub(crate) fn prsnl() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_prsnl"));
    // The tests' own environment must not configure the binary by accident.
    for (key, _) in std::env::vars() {
        if key.starts_with("PRSNL_") {
            command.env_remove(key);
        }
    }
    command.env("RUST_LOG", "info");
    command
}

/// A config file for a self-contained instance under `dir` (inbox `dir/inbox`); `extra` is
/// appended (after the `[watch]` section's keys).
pub(crate) fn config(dir: &Path, extra: &str) -> std::path::PathBuf {
    let path = dir.join("prsnl.toml");
    let text = format!(
        "[database]\nurl = \"sqlite://{db}\"\n[storage]\nmedia_root = \"{media}\"\nmin_free_mb = 1\n[watch]\ndir = \"{inbox}\"\n{extra}",
        db = dir.join("prsnl.db").display(),
        media = dir.join("media").display(),
        inbox = dir.join("inbox").display(),
    );
    std::fs::write(&path, text).unwrap();
    path
}

/// `prsnl serve --config config`, its output discarded.
pub(crate) fn serve(config: &Path) -> std::process::Child {
    prsnl()
        .args(["serve", "--config"])
        .arg(config)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

/// SIGKILL: the process gets no chance to shut anything down.
pub(crate) fn kill_hard(child: &mut std::process::Child) {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    child.wait().unwrap();
}

/// Waits (up to 30 s) until a `prsnl serve` at `base` answers `/healthz` with a success.
pub(crate) async fn answers(client: &reqwest::Client, base: &str) -> bool {
    crate::helpers::wait_for(Duration::from_secs(30), || {
        let request = client.get(format!("{base}/healthz")).send();
        async move { request.await.is_ok_and(|r| r.status().is_success()) }
    })
    .await
}

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn an_invalid_setting_stops_the_binary_with_a_message_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let file = config(dir.path(), "[processing]\nmax_width = \"wide\"\n");
    let out = prsnl()
        .args(["doctor", "--config"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("max_width"), "{stderr}");

    let out = prsnl()
        .arg("migrate")
        .env("PRSNL_STORAGE__MAX_VIDEO_SIZE_MB", "many")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .to_lowercase()
            .contains("storage.max_video_size_mb")
    );

    let out = prsnl()
        .arg("migrate")
        .env("PRSNL_SERVER__LISTEN", "nowhere")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("server.listen"));
}

#[test]
fn environment_values_are_parsed_like_file_values() {
    let cases = [
        (
            "PRSNL_SERVER__METRICS_LISTEN",
            "nowhere",
            "server.metrics_listen",
        ),
        ("PRSNL_QUEUE__MAX_ATTEMPTS", "0", "queue.max_attempts"),
        ("PRSNL_PROCESSING__PRESET", "warp9", "processing.preset"),
        (
            "PRSNL_SECURITY__SSRF_ALLOW",
            "[\"0.0.0.0/0:*\"]",
            "security.ssrf_allow",
        ),
        (
            "PRSNL_PLATFORMS__YOUTUBE__EXTRA_HOSTS",
            "[\"a b\"]",
            "platforms.youtube.extra_hosts",
        ),
    ];
    for (variable, value, key) in cases {
        let out = prsnl()
            .arg("migrate")
            .env(variable, value)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{variable}={value}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(key), "{variable}={value}: {stderr}");
    }
    // Good values of every typed kind, given in the environment, make a working configuration.
    let dir = tempfile::tempdir().unwrap();
    let file = config(dir.path(), "");
    let out = prsnl()
        .args(["migrate", "--config"])
        .arg(&file)
        .env("PRSNL_SERVER__METRICS_LISTEN", "127.0.0.1:9100")
        .env("PRSNL_QUEUE__MAX_ATTEMPTS", "2")
        .env("PRSNL_PROCESSING__PRESET", "slow")
        .env("PRSNL_SECURITY__SSRF_ALLOW", "[\"192.168.1.20:8000\"]")
        .env(
            "PRSNL_PLATFORMS__YOUTUBE__EXTRA_HOSTS",
            "[\"tube.example:8443\"]",
        )
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn environment_variables_override_defaults_and_the_config_file_overrides_both() {
    let dir = tempfile::tempdir().unwrap();
    let env_db = dir.path().join("from-env.db");
    let out = prsnl()
        .arg("migrate")
        .env(
            "PRSNL_DATABASE__URL",
            format!("sqlite://{}", env_db.display()),
        )
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(env_db.exists());
    let file = config(dir.path(), "");
    let out = prsnl()
        .args(["migrate", "--config"])
        .arg(&file)
        .env(
            "PRSNL_DATABASE__URL",
            format!("sqlite://{}", dir.path().join("ignored.db").display()),
        )
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(dir.path().join("prsnl.db").exists());
    assert!(!dir.path().join("ignored.db").exists());
}

#[test]
fn doctor_reports_the_tools_and_fails_on_a_broken_check() {
    let dir = tempfile::tempdir().unwrap();
    let file = config(dir.path(), "");
    let out = prsnl()
        .args(["doctor", "--config"])
        .arg(&file)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    for line in [
        "ok   yt-dlp",
        "ok   ffmpeg",
        "ok   ffprobe",
        "ok   database",
        "ok   media_root",
        "ok   free disk",
    ] {
        assert!(stdout.contains(line), "missing {line:?} in:\n{stdout}");
    }
    let broken = config(
        dir.path(),
        "[processing]\nffmpeg_path = \"/nonexistent/ffmpeg\"\n",
    );
    let out = prsnl()
        .args(["doctor", "--config"])
        .arg(&broken)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("FAIL ffmpeg"));
}

#[test]
fn doctor_checks_each_platforms_cookies_file() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.txt");
    std::fs::write(
        &good,
        "# Netscape HTTP Cookie File\n.x.com\tTRUE\t/\tTRUE\t0\tauth\tabc\n",
    )
    .unwrap();
    let bad = dir.path().join("bad.txt");
    std::fs::write(&bad, "auth_token=abc\n").unwrap();
    let extra = format!(
        "[platforms.twitter]\ncookies_file = \"{}\"\n[platforms.instagram]\ncookies_file = \"{}\"\n",
        good.display(),
        bad.display()
    );
    let file = config(dir.path(), &extra);
    let out = prsnl()
        .args(["doctor", "--config"])
        .arg(&file)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("ok   twitter cookies"), "{stdout}");
    assert!(stdout.contains("FAIL instagram cookies"), "{stdout}");
    assert!(
        !stdout.contains("youtube cookies"),
        "unconfigured platforms are not checked: {stdout}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capture_without_a_server_runs_standalone_on_the_local_database() {
    let dir = tempfile::tempdir().unwrap();
    let server = FixtureServer::start().await;
    let url = server.add(
        "/clip.mp4",
        Route::file(fixtures().path("h264_silent.mp4"), "video/mp4"),
    );
    let extra = format!(
        "[server]\nlisten = \"127.0.0.1:{}\"\n[security]\nssrf_allow = [\"127.0.0.1:{}\"]\n",
        free_port(),
        server.addr().port()
    );
    let file = config(dir.path(), &extra);
    let out = tokio::task::spawn_blocking(move || {
        prsnl()
            .args(["capture", &url, "--config"])
            .arg(&file)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("completed "), "{stdout}");
    let stored = stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("stored"))
        .expect("a stored line")
        .trim();
    assert!(Path::new(stored).is_file(), "{stored}");
    assert!(
        stored.starts_with(
            &dir.path()
                .join("media")
                .canonicalize()
                .unwrap()
                .display()
                .to_string()
        )
    );
    assert!(stdout.contains("320×240 h264"), "{stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capture_follows_a_job_on_a_running_server() {
    let app = spawn_app(Backend::Sqlite).await;
    let url = app.server.add(
        "/clip.mp4",
        Route::file(app.fixtures.path("h264_silent.mp4"), "video/mp4"),
    );
    let base = app.base.clone();
    let out = tokio::task::spawn_blocking(move || {
        prsnl()
            .args(["capture", &url, "--server", &base])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(&format!("stream    {}/api/videos/", app.base)),
        "{stdout}"
    );
    assert_eq!(app.item_count().await, 1);
    let failing = app.server.url("/missing.mp4");
    let base = app.base.clone();
    let out = tokio::task::spawn_blocking(move || {
        prsnl()
            .args(["capture", &failing, "--server", &base])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("source_not_found"));
}

#[test]
fn serve_answers_then_stops_cleanly_on_sigterm_without_logging_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let token = "tok-never-in-logs-9f8e7d6c";
    let extra = format!(
        "[server]\nlisten = \"127.0.0.1:{port}\"\n[security]\napi_tokens = [\"{token}\"]\n"
    );
    let file = config(dir.path(), &extra);
    let mut child = prsnl()
        .args(["serve", "--log-format", "json", "--config"])
        .arg(&file)
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let healthz = || -> Option<String> {
        use std::io::Write;
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .ok()?;
        let mut answer = String::new();
        stream.read_to_string(&mut answer).ok()?;
        Some(answer)
    };
    let healthy = loop {
        if healthz().is_some_and(|answer| answer.starts_with("HTTP/1.1 200")) {
            break true;
        }
        if Instant::now() > deadline {
            break false;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(healthy, "prsnl serve never answered /healthz");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let status = child.wait().unwrap();
    let mut logs = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut logs)
        .unwrap();
    assert!(status.success(), "exit {status}: {logs}");
    assert!(logs.contains("\"api_tokens\":1"), "{logs}");
    assert!(!logs.contains(token), "a token reached the logs");
    assert!(
        logs.lines()
            .all(|l| serde_json::from_str::<serde_json::Value>(l).is_ok()),
        "{logs}"
    );
}

/// JSON log lines of a `prsnl serve` run: every line parses; a request's lines carry its id;
/// every line about a job names the job and its item.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_logs_name_the_request_and_the_job_on_every_line() {
    let server = FixtureServer::start().await;
    let url = server.add(
        "/clip.mp4",
        Route::file(fixtures().path("h264_aac.mp4"), "video/mp4"),
    );
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let extra = format!(
        "[server]\nlisten = \"127.0.0.1:{port}\"\n[security]\nssrf_allow = [\"127.0.0.1:{}\"]\n",
        server.addr().port()
    );
    let file = config(dir.path(), &extra);
    let (child, client, base) = serve_with_json_logs(&file, port).await;
    let created: serde_json::Value = client
        .post(format!("{base}/api/capture"))
        .header("x-request-id", "req-logs-1")
        .json(&serde_json::json!({ "url": url }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["id"].as_str().unwrap().to_string();
    let done = crate::helpers::wait_for(Duration::from_secs(60), || {
        let request = client.get(format!("{base}/api/items/{id}")).send();
        async move {
            let item: serde_json::Value = request.await.unwrap().json().await.unwrap();
            item["status"] == "completed"
        }
    })
    .await;
    assert!(done, "the capture did not complete");
    let logs = stop_and_read_logs(child).await;

    let lines: Vec<serde_json::Value> = logs
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let field = |line: &serde_json::Value, key: &str| {
        line.get(key)
            .or_else(|| line["span"].get(key))
            .and_then(|v| v.as_str().map(str::to_string))
    };
    let of_request: Vec<_> = lines
        .iter()
        .filter(|l| field(l, "request_id").as_deref() == Some("req-logs-1"))
        .collect();
    assert!(
        of_request.iter().any(|l| l["target"] == "prsnl::access"
            && l["path"] == "/api/capture"
            && l["status"] == 202),
        "no access line for the capture request:\n{logs}"
    );
    let about_jobs: Vec<_> = lines.iter().filter(|l| field(l, "job").is_some()).collect();
    assert!(
        about_jobs.iter().any(|l| l["message"] == "job completed"),
        "{logs}"
    );
    for line in about_jobs {
        assert_eq!(field(line, "item").as_deref(), Some(id.as_str()), "{line}");
    }
}

/// `prsnl serve` with `extra` config and JSON logs on stderr: sends `requests` (path, id) and
/// returns every access-log line, once the server has stopped.
async fn access_lines(extra: &str, requests: &[(&str, &str)]) -> Vec<serde_json::Value> {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let file = config(
        dir.path(),
        &format!("[server]\nlisten = \"127.0.0.1:{port}\"\n{extra}"),
    );
    let (child, client, base) = serve_with_json_logs(&file, port).await;
    for (path, id) in requests {
        let answer = client
            .get(format!("{base}{path}"))
            .header("x-request-id", *id)
            .send()
            .await
            .unwrap();
        assert_eq!(
            answer.headers()["x-request-id"].to_str().unwrap(),
            *id,
            "the id is echoed whatever the access log does"
        );
    }
    let logs = stop_and_read_logs(child).await;
    logs.lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|l| l["target"] == "prsnl::access")
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_access_log_keeps_one_success_in_n_and_every_error_or_nothing_when_off() {
    let requests = [
        ("/api/items", "ok-1"),
        ("/api/items", "ok-2"),
        ("/api/items", "ok-3"),
        ("/api/items", "ok-4"),
        ("/no/such/route", "missing-1"),
        ("/api/items", "ok-5"),
        ("/no/such/route", "missing-2"),
    ];
    let sampled = access_lines("[log]\naccess_sample = 1000\n", &requests).await;
    let ids: Vec<&str> = sampled
        .iter()
        .map(|l| l["span"]["request_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["ok-1", "missing-1", "missing-2"], "{sampled:?}");
    assert!(sampled.iter().all(|l| l["level"] == "INFO"));
    assert_eq!(sampled[1]["status"], 404);

    let off = access_lines("[log]\naccess_level = \"off\"\n", &requests).await;
    assert!(off.is_empty(), "{off:?}");
}

#[test]
fn a_bad_access_log_setting_names_its_key() {
    let dir = tempfile::tempdir().unwrap();
    for (extra, key) in [
        ("[log]\naccess_level = \"loud\"\n", "access_level"),
        ("[log]\naccess_sample = 0\n", "log.access_sample"),
    ] {
        let file = config(dir.path(), extra);
        let out = prsnl()
            .args(["doctor", "--config"])
            .arg(&file)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{extra}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(key), "{extra}: {stderr}");
    }
}

/// Stops the real binary with SIGTERM, checks that it exited cleanly, and returns what it
/// logged on stderr.
async fn stop_and_read_logs(mut child: std::process::Child) -> String {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    tokio::task::spawn_blocking(move || {
        let status = child.wait().unwrap();
        let mut logs = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut logs)
            .unwrap();
        assert!(status.success(), "exit {status}: {logs}");
        logs
    })
    .await
    .unwrap()
}

/// Starts `prsnl serve` with `file` and JSON logs on stderr, and waits until it answers on
/// `port`: the child, a client, and the base URL.
async fn serve_with_json_logs(
    file: &std::path::Path,
    port: u16,
) -> (std::process::Child, reqwest::Client, String) {
    let child = prsnl()
        .args(["serve", "--log-format", "json", "--config"])
        .arg(file)
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    prsnl::net::install_tls_provider();
    let client = reqwest::Client::new();
    assert!(answers(&client, &base).await, "prsnl serve never answered");
    (child, client, base)
}
