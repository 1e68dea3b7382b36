//! `prsnl capture URL`: submit one URL and follow it to its end with a progress bar.
//!
//! With a server (given by `--server`, or found answering at the configured listen address)
//! the CLI is an API client. Without one it starts the service's actor tree in-process, with
//! no API listener, on the local database and media root, and stops it when the job ends.

use std::process::ExitCode;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use serde::Deserialize;

use crate::app::{App, StartOptions};
use crate::domain::Source;
use crate::http::dto::ItemJson;
use crate::settings::Settings;

/// What the CLI reads of an item (the API's item JSON).
#[derive(Debug, Deserialize)]
struct ItemView {
    id: String,
    status: String,
    progress: Option<ProgressView>,
    error: Option<ErrorView>,
    metadata: Option<MetadataView>,
}

#[derive(Debug, Deserialize)]
struct ProgressView {
    stage: String,
    percent: Option<f64>,
    downloaded_bytes: Option<u64>,
}

#[derive(Debug, Deserialize)]
struct ErrorView {
    code: String,
    message: String,
}

#[derive(Debug, Deserialize)]
struct MetadataView {
    title: Option<String>,
    duration_seconds: f64,
    width: u32,
    height: u32,
    video_codec: String,
    audio_codec: Option<String>,
    bitrate_bps: Option<u64>,
    fps: Option<f64>,
    size_bytes: Option<u64>,
    sha256: Option<String>,
    storage_path: String,
    stream_url: String,
}

const POLL: Duration = Duration::from_millis(250);

pub async fn run(
    settings: Settings,
    url: &str,
    server: Option<String>,
    token: Option<String>,
    user: Option<String>,
) -> ExitCode {
    let client = match reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
    {
        Ok(client) => client,
        Err(e) => return fail(format!("cannot build an HTTP client: {e}")),
    };
    let server = match server {
        Some(server) => Some(server.trim_end_matches('/').to_string()),
        None => {
            let local = format!("http://{}", settings.server.listen);
            let probe = client
                .get(format!("{local}/healthz"))
                .timeout(Duration::from_millis(700))
                .send()
                .await;
            probe
                .is_ok_and(|r| r.status().is_success())
                .then_some(local)
        }
    };
    match server {
        // A server knows who is asking from the token.
        Some(_) if user.is_some() => fail(
            "--user is for a capture without a server; a server's captures belong to the token's user",
        ),
        Some(server) => remote(&client, &server, token.as_deref(), url).await,
        None => standalone(settings, url, user.as_deref()).await,
    }
}

fn fail(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("prsnl capture: {message}");
    ExitCode::FAILURE
}

async fn remote(
    client: &reqwest::Client,
    server: &str,
    token: Option<&str>,
    url: &str,
) -> ExitCode {
    let authorized = |request: reqwest::RequestBuilder| match token {
        Some(token) => request.bearer_auth(token),
        None => request,
    };
    let response = authorized(client.post(format!("{server}/api/capture")))
        .json(&serde_json::json!({ "url": url }))
        .send()
        .await;
    let item: ItemView = match response {
        Ok(r) if r.status().is_success() => match r.json().await {
            Ok(item) => item,
            Err(e) => return fail(format!("unexpected answer from {server}: {e}")),
        },
        Ok(r) => {
            let status = r.status();
            let body: serde_json::Value = r.json().await.unwrap_or_default();
            let message = body["error"]["message"].as_str().unwrap_or("no detail");
            return fail(format!(
                "{server} refused the capture ({status}): {message}"
            ));
        }
        Err(e) => return fail(format!("cannot reach {server}: {e}")),
    };
    eprintln!("capturing {url} as {} via {server}", item.id);
    let id = item.id.clone();
    let outcome = follow(item, || async {
        let r = authorized(client.get(format!("{server}/api/items/{id}")))
            .send()
            .await
            .map_err(|e| e.to_string())?;
        r.error_for_status()
            .map_err(|e| e.to_string())?
            .json::<ItemView>()
            .await
            .map_err(|e| e.to_string())
    })
    .await;
    report(
        outcome,
        |path| format!("{path} (under the server's media_root)"),
        Some(server),
    )
}

async fn standalone(settings: Settings, url: &str, user: Option<&str>) -> ExitCode {
    let owner = format!("{}-cli-{}", settings.server.instance_id, std::process::id());
    let options = StartOptions {
        listener: None,
        lease_owner: Some(owner),
    };
    let app = match App::start(settings, options).await {
        Ok(app) => app,
        Err(e) => return fail(e),
    };
    let ctx = std::sync::Arc::clone(app.context());
    let owner = match user {
        None => None, // the first admin's
        Some(name) => match crate::db::users::by_name(&ctx.db, name).await {
            Ok(Some(user)) => Some(user.id.to_string()),
            Ok(None) => {
                app.shutdown().await;
                return fail(format!("there is no user named {}", name.escape_debug()));
            }
            Err(e) => {
                app.shutdown().await;
                return fail(e);
            }
        },
    };
    let record = match app.intake().submit_url(url, Source::Api, owner).await {
        Ok(record) => record,
        Err(e) => {
            app.shutdown().await;
            return fail(format!("{}: {}", e.code, e.message));
        }
    };
    eprintln!(
        "capturing {url} as {} (no server running; working on {} directly)",
        record.item.id,
        ctx.settings.database.redacted_url()
    );
    let view = |item: &crate::db::items::Item| -> Result<ItemView, String> {
        serde_json::to_value(ItemJson::of(&ctx, item, None, true))
            .and_then(serde_json::from_value)
            .map_err(|e| e.to_string())
    };
    let first = match view(&record.item) {
        Ok(first) => first,
        Err(e) => return fail(e),
    };
    let id = record.item.id;
    let outcome = follow(first, || async {
        let item = crate::db::items::get(&ctx.db, id)
            .await
            .map_err(|e| e.to_string())?
            .ok_or("the item vanished")?;
        view(&item)
    })
    .await;
    let root = ctx.media.path().to_path_buf();
    let code = report(outcome, |path| root.join(path).display().to_string(), None);
    app.shutdown().await;
    code
}

/// Polls until the item is terminal, drawing its progress.
async fn follow<F, Fut>(mut item: ItemView, mut fetch: F) -> Result<ItemView, String>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<ItemView, String>>,
{
    let bar = ProgressBar::new(100);
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg:<34} [{bar:30}] {pos:>3}%")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.enable_steady_tick(Duration::from_millis(120));
    loop {
        match item.progress.as_ref() {
            Some(p) => {
                let bytes = p
                    .downloaded_bytes
                    .map(|b| format!(" {:.1} MiB", b as f64 / 1048576.0))
                    .unwrap_or_default();
                bar.set_message(format!("{}{bytes}", p.stage));
                bar.set_position(p.percent.unwrap_or(0.0) as u64);
            }
            None => bar.set_message(item.status.clone()),
        }
        if matches!(item.status.as_str(), "completed" | "failed" | "cancelled") {
            bar.finish_and_clear();
            return Ok(item);
        }
        tokio::time::sleep(POLL).await;
        item = match fetch().await {
            Ok(next) => next,
            Err(e) => {
                bar.abandon();
                return Err(e);
            }
        };
    }
}

fn report(
    outcome: Result<ItemView, String>,
    stored_at: impl Fn(&str) -> String,
    server: Option<&str>,
) -> ExitCode {
    let item = match outcome {
        Ok(item) => item,
        Err(e) => return fail(format!("lost track of the capture: {e}")),
    };
    if item.status != "completed" {
        let (code, message) = item
            .error
            .map_or(("unknown".into(), "no reason recorded".into()), |e| {
                (e.code, e.message)
            });
        return fail(format!("{} {}: {code}: {message}", item.id, item.status));
    }
    let Some(m) = item.metadata else {
        return fail(format!("{} completed without metadata", item.id));
    };
    let codecs = match &m.audio_codec {
        Some(audio) => format!("{}/{audio}", m.video_codec),
        None => format!("{} (no audio)", m.video_codec),
    };
    println!("completed {}", item.id);
    if let Some(title) = &m.title {
        println!("  title     {title}");
    }
    println!("  stored    {}", stored_at(&m.storage_path));
    println!(
        "  video     {}×{} {codecs}{}",
        m.width,
        m.height,
        m.fps.map(|f| format!(", {f} fps")).unwrap_or_default()
    );
    println!("  duration  {:.1} s", m.duration_seconds);
    if let Some(bps) = m.bitrate_bps {
        println!("  bitrate   {:.0} kbit/s", bps as f64 / 1000.0);
    }
    if let Some(size) = m.size_bytes {
        println!("  size      {size} bytes");
    }
    if let Some(sha) = &m.sha256 {
        println!("  sha256    {sha}");
    }
    let stream = match server {
        Some(server) if m.stream_url.starts_with('/') => format!("{server}{}", m.stream_url),
        _ => m.stream_url,
    };
    println!("  stream    {stream}");
    ExitCode::SUCCESS
}
