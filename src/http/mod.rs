//! The HTTP API (warp), served through hyper-util with a header-read timeout, a connection cap
//! and graceful shutdown (THREATS fact 5: warp's own server has no header timeout).
//!
//! Only this module knows the JSON shapes. Handlers validate input, read through `db`, and
//! reach the Pipeline and Storage through their handles; they never write job state
//! themselves. `door::HttpDoor` is how the supervision tree runs the server.

mod access_log;
mod auth;
mod backups;
mod capture;
pub mod door;
pub mod dto;
mod error;
mod events;
mod file_response;
mod health;
mod images;
mod item_query;
mod items;
mod json_type;
pub mod observe;
mod people;
mod people_routes;
mod search_match;
mod session;
mod storage;
mod storage_metrics;
mod subtitles;
mod telegram;
mod videos;
mod webhooks;

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use warp::Filter;
use warp::filters::BoxedFilter;
use warp::reply::Response;

use crate::actors::Handles;
use crate::bot::door::BotDoor;
use crate::context::AppContext;
use crate::faults::FaultPoint;
use crate::intake::Intake;

fn with_ctx(
    ctx: Arc<AppContext>,
) -> impl Filter<Extract = (Arc<AppContext>,), Error = Infallible> + Clone {
    with(ctx)
}

/// Hands each request a clone of `value` (a handle, the intake, the bot door).
fn with<T: Clone + Send + Sync + 'static>(
    value: T,
) -> impl Filter<Extract = (T,), Error = Infallible> + Clone {
    warp::any().map(move || value.clone())
}

/// What the API reaches beyond the shared services.
#[derive(Clone)]
pub struct Reach {
    pub handles: Handles,
    pub intake: Intake,
    /// The bot, when it runs in webhook mode (its updates arrive here).
    pub bot: Option<Arc<BotDoor>>,
}

/// `GET /metrics`, or nothing when metrics are off.
fn metrics_endpoint(ctx: Arc<AppContext>) -> BoxedFilter<(Response,)> {
    if !ctx.metrics.enabled() {
        return nothing();
    }
    warp::path!("metrics")
        .and(warp::get())
        .and(with_ctx(ctx))
        .map(health::metrics)
        .boxed()
}

/// A route that matches no request.
fn nothing() -> BoxedFilter<(Response,)> {
    warp::any()
        .and_then(|| async { Err::<Response, _>(warp::reject::not_found()) })
        .boxed()
}

/// What the separate metrics listener (`server.metrics_listen`) serves.
pub fn metrics_routes(ctx: Arc<AppContext>) -> BoxedFilter<(Response,)> {
    let healthz = warp::path!("healthz").and(warp::get()).map(health::healthz);
    metrics_endpoint(ctx)
        .or(healthz)
        .unify()
        .recover(error::recover)
        .unify()
        .boxed()
}

/// `/api/admin/backups`: start one, list them, follow one (`backups.rs`).
fn backup_routes(
    ctx: Arc<AppContext>,
    backups: crate::actors::BackupsHandle,
) -> BoxedFilter<(Response,)> {
    let who = || auth::principal(ctx.clone());
    let start = warp::path!("admin" / "backups")
        .and(warp::post())
        .and(who())
        .and(with_ctx(ctx.clone()))
        .and(with(backups))
        .then(backups::start);
    let list = warp::path!("admin" / "backups")
        .and(warp::get())
        .and(who())
        .and(with_ctx(ctx.clone()))
        .then(backups::list);
    let one = warp::path!("admin" / "backups" / String)
        .and(warp::get())
        .and(who())
        .and(with_ctx(ctx.clone()))
        .then(backups::get);
    let webhooks = warp::path!("admin" / "webhooks")
        .and(warp::get())
        .and(who())
        .and(with_ctx(ctx))
        .then(webhooks::log);
    start
        .or(list)
        .unify()
        .or(one)
        .unify()
        .or(webhooks)
        .unify()
        .boxed()
}

/// Every route of the API (and `/metrics`, unless it has a listener of its own).
pub fn routes(ctx: Arc<AppContext>, reach: Reach) -> BoxedFilter<(Response,)> {
    let pipeline = reach.handles.pipeline.clone();
    let storage = reach.handles.storage.clone();
    let body_limit = ctx.settings.server.max_body_kb.get() * 1024;
    let get_or_head = || warp::get().or(warp::head()).unify();

    let healthz = warp::path!("healthz").and(warp::get()).map(health::healthz);
    let readyz = warp::path!("readyz")
        .and(warp::get())
        .and(with_ctx(ctx.clone()))
        .and(with(pipeline.clone()))
        .then(health::readyz);
    let metrics = if ctx.settings.server.metrics_listen.is_none() {
        metrics_endpoint(ctx.clone())
    } else {
        nothing() // served on its own listener only
    };

    // Who the request acts for: every /api route but signing in and out names it.
    let who = || auth::principal(ctx.clone());
    let capture = warp::path!("capture")
        .and(warp::post())
        .and(who())
        .and(warp::body::content_length_limit(body_limit))
        .and(warp::body::bytes())
        .and(with_ctx(ctx.clone()))
        .and(with(reach.intake.clone()))
        .then(capture::create);
    let list = warp::path!("items")
        .and(warp::get())
        .and(warp::query::<HashMap<String, String>>())
        .and(who())
        .and(with_ctx(ctx.clone()))
        .then(items::list);
    let item = warp::path!("items" / String)
        .and(warp::get())
        .and(who())
        .and(with_ctx(ctx.clone()))
        .then(items::get);
    let edit = warp::path!("items" / String)
        .and(warp::patch())
        .and(who())
        .and(warp::header::optional::<String>("content-type"))
        .and(warp::body::content_length_limit(body_limit))
        .and(warp::body::bytes())
        .and(with_ctx(ctx.clone()))
        .then(items::edit);
    let metadata = warp::path!("videos" / String / "metadata")
        .and(warp::get())
        .and(who())
        .and(with_ctx(ctx.clone()))
        .then(videos::metadata);
    let events = warp::path!("items" / String / "events")
        .and(warp::get())
        .and(who())
        .and(with_ctx(ctx.clone()))
        .then(events::follow);
    let stream = warp::path!("videos" / String / "stream")
        .and(get_or_head())
        .and(who())
        .and(warp::query::<HashMap<String, String>>())
        .and(warp::method())
        .and(warp::header::headers_cloned())
        .and(with_ctx(ctx.clone()))
        .then(videos::stream);
    let thumbnail = warp::path!("videos" / String / "thumbnail" / String)
        .and(get_or_head())
        .and(who())
        .and(warp::method())
        .and(warp::header::headers_cloned())
        .and(with_ctx(ctx.clone()))
        .then(videos::thumbnail);
    let subtitle = warp::path!("videos" / String / "subtitles" / String)
        .and(get_or_head())
        .and(who())
        .and(warp::method())
        .and(warp::header::headers_cloned())
        .and(with_ctx(ctx.clone()))
        .then(subtitles::subtitle);
    let image = warp::path!("images" / String)
        .and(get_or_head())
        .and(who())
        .and(warp::method())
        .and(warp::header::headers_cloned())
        .and(with_ctx(ctx.clone()))
        .then(images::image);
    let transcode = warp::path!("videos" / String / "transcode")
        .and(warp::post())
        .and(who())
        .and(warp::body::content_length_limit(body_limit))
        .and(warp::body::bytes())
        .and(with_ctx(ctx.clone()))
        .and(with(pipeline.clone()))
        .then(videos::transcode);
    let delete = warp::path!("videos" / String)
        .and(warp::delete())
        .and(who())
        .and(with_ctx(ctx.clone()))
        .and(with(pipeline.clone()))
        .then(videos::delete);
    let stats = warp::path!("storage" / "stats")
        .and(warp::get())
        .and(who())
        .and(with_ctx(ctx.clone()))
        .and(with(storage.clone()))
        .then(storage::stats);
    let cleanup = warp::path!("storage" / "cleanup")
        .and(warp::post())
        .and(who())
        .and(with(storage))
        .then(storage::cleanup);
    let item_routes = capture
        .or(list)
        .unify()
        .or(item)
        .unify()
        .or(edit)
        .unify()
        .or(events)
        .unify()
        .or(metadata)
        .unify()
        .or(stream)
        .unify()
        .or(thumbnail)
        .unify()
        .or(subtitle)
        .unify()
        .or(image)
        .unify()
        .or(transcode)
        .unify()
        .or(delete)
        .unify()
        .or(stats)
        .unify()
        .or(cleanup)
        .unify()
        .boxed();
    let api = warp::path("api").and(
        item_routes
            .or(people_routes::routes(ctx.clone(), &pipeline, body_limit))
            .unify()
            .or(backup_routes(ctx.clone(), reach.handles.backups.clone()))
            .unify(),
    );

    // The webhook authenticates with Telegram's secret header, not with API tokens.
    let telegram_webhook = telegram::webhook(ctx.clone(), reach.bot);

    healthz
        .or(readyz)
        .unify()
        .or(metrics)
        .unify()
        .or(telegram_webhook)
        .unify()
        .or(api)
        .unify()
        .recover(error::recover)
        .unify()
        .boxed()
}

/// Serves `routes` on `listener` until `stop` fires, then lets open requests finish for the
/// shutdown grace period.
pub async fn serve(
    listener: TcpListener,
    routes: BoxedFilter<(Response,)>,
    ctx: Arc<AppContext>,
    stop: CancellationToken,
) -> std::io::Result<()> {
    let server = &ctx.settings.server;
    let grace = Duration::from_secs(server.shutdown_grace_secs);
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(server.header_read_timeout_secs.get()))
        .keep_alive(true);
    let service = observe::Observed::new(warp::service(routes), Arc::clone(&ctx));
    let slots = Arc::new(Semaphore::new(server.max_connections.get()));
    let graceful = GracefulShutdown::new();
    // Connection tasks belong to the server: whatever is still open after the grace period
    // (an event stream, a slow download) is closed when this set is dropped.
    let mut connections = JoinSet::new();
    let stop = stop.cancelled();
    let mut stop = std::pin::pin!(stop);

    loop {
        // Wait for a free slot before accepting: past the cap, clients queue in the kernel's
        // backlog instead of costing us memory.
        let permit = tokio::select! {
            permit = Arc::clone(&slots).acquire_owned() => permit.expect("the semaphore is never closed"),
            _ = &mut stop => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    ctx.faults.crash_if_armed(FaultPoint::HttpAccept);
                    (stream, peer)
                }
                Err(e) if is_transient(&e) => {
                    tracing::warn!(error = %e, "cannot accept a connection; retrying");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
                Err(e) => return Err(e),
            },
            _ = &mut stop => break,
        };
        let connection = builder.serve_connection(
            TokioIo::new(stream),
            TowerToHyperService::new(service.for_peer(peer)),
        );
        let watched = graceful.watch(connection);
        connections.spawn(async move {
            // Errors here are the client's (reset, timeout, malformed request).
            let _ = watched.await;
            drop(permit);
        });
        // Reap finished connections so the set does not grow with the server's uptime.
        while connections.try_join_next().is_some() {}
    }
    drop(listener);
    if tokio::time::timeout(grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            open = connections.len(),
            "connections still open after the grace period; closing them"
        );
    }
    connections.shutdown().await;
    Ok(())
}

/// Accept errors that concern one connection or a passing shortage, not the listener.
fn is_transient(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        ConnectionAborted | ConnectionReset | Interrupted | WouldBlock
    ) || matches!(
        e.raw_os_error(),
        Some(nix::libc::EMFILE | nix::libc::ENFILE | nix::libc::ENOBUFS | nix::libc::ENOMEM)
    )
}
