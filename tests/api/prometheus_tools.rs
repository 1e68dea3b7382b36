//! The real Prometheus tools in tests: `promtool` and a `prometheus` server on loopback
//! (`scripts/install-tools --test` puts both on PATH).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::helpers::wait_for;

/// A tool on PATH (or named by `env`), or a failure telling how to install it.
fn tool(name: &str, env: &str) -> PathBuf {
    if let Ok(path) = std::env::var(env) {
        return PathBuf::from(path);
    }
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|candidate| candidate.is_file())
    });
    found.unwrap_or_else(|| {
        panic!("{name} is not installed: run scripts/install-tools --test (or set {env})")
    })
}

pub fn promtool() -> PathBuf {
    tool("promtool", "PRSNL_TEST_PROMTOOL")
}

/// Runs promtool with `args` (and `stdin`); returns (success, stdout + stderr).
pub fn run_promtool(args: &[&str], stdin: Option<&str>) -> (bool, String) {
    let mut child = Command::new(promtool())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool runs");
    {
        let mut input = child.stdin.take().unwrap();
        if let Some(text) = stdin {
            input.write_all(text.as_bytes()).unwrap();
        }
    }
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// The repository's deploy/ directory.
pub fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy")
}

/// A Prometheus server on a loopback port, stopped (killed) when dropped.
pub struct PrometheusServer {
    child: Child,
    pub base: String,
    client: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl PrometheusServer {
    /// Starts Prometheus scraping `target` (host:port) every second, with `rule_files`.
    pub async fn start(target: &str, rule_files: &[PathBuf]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let rules = rule_files
            .iter()
            .map(|f| format!("  - {}\n", f.display()))
            .collect::<String>();
        let config = format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
             rule_files:\n{rules}\
             scrape_configs:\n  - job_name: prsnl\n    static_configs:\n      - targets: [\"{target}\"]\n"
        );
        let config_path = dir.path().join("prometheus.yml");
        std::fs::write(&config_path, config).unwrap();
        for _ in 0..5 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let mut child = Command::new(tool("prometheus", "PRSNL_TEST_PROMETHEUS"))
                .arg(format!("--config.file={}", config_path.display()))
                .arg(format!(
                    "--storage.tsdb.path={}",
                    dir.path().join("data").display()
                ))
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .arg("--log.level=warn")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("prometheus runs");
            let base = format!("http://127.0.0.1:{port}");
            prsnl::net::install_tls_provider();
            let client = reqwest::Client::new();
            let ready = wait_for(Duration::from_secs(30), || {
                let (client, url) = (client.clone(), format!("{base}/-/ready"));
                async move {
                    client
                        .get(url)
                        .send()
                        .await
                        .is_ok_and(|r| r.status().is_success())
                }
            })
            .await;
            if ready {
                return Self {
                    child,
                    base,
                    client,
                    _dir: dir,
                };
            }
            // The port was taken between our probe and Prometheus's bind: try another.
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("prometheus did not start");
    }

    /// `GET /api/v1/<path>` with query parameters; the JSON answer (any status).
    pub async fn api(&self, path: &str, params: &[(&str, &str)]) -> Value {
        let mut url = url::Url::parse(&format!("{}/api/v1/{path}", self.base)).unwrap();
        url.query_pairs_mut().extend_pairs(params);
        self.client
            .get(url)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// The value of an instant query that returns one sample (None: no sample or an error).
    pub async fn scalar(&self, expr: &str) -> Option<f64> {
        let answer = self.api("query", &[("query", expr)]).await;
        let result = answer["data"]["result"].as_array()?;
        let first = result.first()?;
        first["value"][1].as_str()?.parse().ok()
    }
}

impl Drop for PrometheusServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
