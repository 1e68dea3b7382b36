//! `/healthz` (the process answers), `/readyz` (it can do its work), `/metrics`.
//!
//! Readiness has one entry per check; any failed check (database, media_root writable with
//! `storage.min_free_mb` free, a missing tool, a restarting pipeline, a shutdown under way)
//! answers 503. Platforms are reported beside the checks: an open breaker pauses one
//! platform, it does not make the service unready. Warnings (an old yt-dlp) are listed too,
//! and leave the answer 200.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use warp::Reply;
use warp::http::StatusCode;
use warp::reply::Response;

use crate::actors::PipelineHandle;
use crate::context::AppContext;
use crate::domain::breaker::Gate;
use crate::domain::{Platform, Timestamp};
use crate::storage;

pub fn healthz() -> Response {
    warp::reply::json(&serde_json::json!({"status": "ok"})).into_response()
}

#[derive(Serialize)]
struct Check {
    ok: bool,
    detail: String,
}

#[derive(Serialize)]
struct Readiness {
    status: &'static str,
    checks: std::collections::BTreeMap<&'static str, Check>,
    /// What an operator should act on although the service works (an old yt-dlp): the status
    /// stays 200.
    warnings: Vec<String>,
    /// How each platform treats us: informational, an open breaker does not make the
    /// service unready (other platforms still work).
    platforms: std::collections::BTreeMap<&'static str, PlatformStatus>,
}

#[derive(Serialize)]
struct PlatformStatus {
    /// closed, open (downloads paused until `open_until`) or probing.
    breaker: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    open_until: Option<String>,
    refusals: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    /// "not configured", "ok", or what is wrong with the cookies file.
    cookies: String,
}

async fn platform_statuses(
    ctx: &AppContext,
) -> std::collections::BTreeMap<&'static str, PlatformStatus> {
    let stored = crate::db::breakers::load_all(&ctx.db)
        .await
        .unwrap_or_default();
    let now = crate::clock::now().as_millis();
    Platform::ALL
        .into_iter()
        .map(|platform| {
            let saved = stored.iter().find(|s| s.platform == platform);
            let breaker = saved.map(|s| s.breaker).unwrap_or_default();
            let (state, open_until) = match breaker.gate(now) {
                Gate::Closed => ("closed", None),
                Gate::Open { until } => (
                    "open",
                    Some(crate::clock::rfc3339(Timestamp::from_millis(until))),
                ),
                Gate::Probe => ("probing", None),
            };
            let cookies_file = &ctx.settings.platforms.get(platform).cookies_file;
            let cookies = if cookies_file.as_os_str().is_empty() {
                "not configured".to_string()
            } else {
                match (
                    crate::media::cookies::check_file(cookies_file),
                    ctx.platform_health.cookie_problem(platform),
                ) {
                    (Err(problem), _) | (Ok(_), Some(problem)) => problem,
                    (Ok(_), None) => "ok".to_string(),
                }
            };
            let status = PlatformStatus {
                breaker: state,
                open_until,
                refusals: breaker.failures,
                reason: saved
                    .and_then(|s| s.reason.clone())
                    .filter(|_| !breaker.is_closed()),
                cookies,
            };
            (platform.as_str(), status)
        })
        .collect()
}

pub async fn readyz(ctx: Arc<AppContext>, pipeline: PipelineHandle) -> Response {
    let mut checks = std::collections::BTreeMap::new();
    let database = match tokio::time::timeout(Duration::from_secs(2), ctx.db.ping()).await {
        Ok(Ok(())) => Check {
            ok: true,
            detail: "reachable".into(),
        },
        Ok(Err(e)) => Check {
            ok: false,
            detail: e.to_string(),
        },
        Err(_) => Check {
            ok: false,
            detail: "no answer within 2 s".into(),
        },
    };
    checks.insert("database", database);
    let root = ctx.media.path().to_path_buf();
    let min_free = ctx.settings.storage.min_free_mb * 1024 * 1024;
    let media = tokio::task::spawn_blocking(move || -> Result<u64, std::io::Error> {
        storage::check_writable(&root)?;
        Ok(storage::disk_space(&root)?.1)
    })
    .await;
    let media = match media {
        Ok(Ok(free)) if free >= min_free => Check {
            ok: true,
            detail: format!("writable, {} MiB free", free >> 20),
        },
        Ok(Ok(free)) => Check {
            ok: false,
            detail: format!("only {} MiB free (storage.min_free_mb)", free >> 20),
        },
        Ok(Err(e)) => Check {
            ok: false,
            detail: format!("not writable: {e}"),
        },
        Err(e) => Check {
            ok: false,
            detail: e.to_string(),
        },
    };
    checks.insert("media_root", media);
    let mut warnings = Vec::new();
    let tools = ctx
        .tools
        .current(&ctx.settings, &ctx.metrics.families)
        .await;
    for tool in tools.iter() {
        warnings.extend(tool.warning(&ctx.settings));
        let check = match tool.describe() {
            Ok(version) => Check {
                ok: true,
                detail: version,
            },
            Err(e) => Check {
                ok: false,
                detail: e,
            },
        };
        checks.insert(tool.name, check);
    }
    let pipeline = pipeline.is_running();
    checks.insert(
        "pipeline",
        Check {
            ok: pipeline,
            detail: if pipeline { "running" } else { "restarting" }.into(),
        },
    );
    let stopping = ctx.is_shutting_down();
    checks.insert(
        "accepting_work",
        Check {
            ok: !stopping,
            detail: if stopping { "shutting down" } else { "yes" }.into(),
        },
    );

    let ready = checks.values().all(|c| c.ok);
    let body = Readiness {
        status: if ready { "ready" } else { "not_ready" },
        checks,
        warnings,
        platforms: platform_statuses(&ctx).await,
    };
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    warp::reply::with_status(warp::reply::json(&body), status).into_response()
}

pub fn metrics(ctx: Arc<AppContext>) -> Response {
    let mut response = Response::new(ctx.metrics.render().into());
    response.headers_mut().insert(
        warp::http::header::CONTENT_TYPE,
        warp::http::HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}
