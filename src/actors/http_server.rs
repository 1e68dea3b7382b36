//! HttpServer: the API listener (and the metrics listener, when `server.metrics_listen` is
//! set) as a supervised actor.
//!
//! The listening sockets are bound once by the app (so tests can bind port 0 and learn the
//! address); the actor serves them, and a restarted actor serves the same sockets again.

use std::sync::Arc;
use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::context::AppContext;

pub struct HttpServerArgs {
    pub ctx: Arc<AppContext>,
    pub listener: Arc<std::net::TcpListener>,
    pub metrics_listener: Option<Arc<std::net::TcpListener>>,
}

#[derive(Debug)]
pub enum HttpServerMsg {
    /// The serving task ended on its own: the actor fails and is restarted.
    ServerExited(String),
}

pub struct HttpServerState {
    grace: Duration,
    /// One stop signal and serving task per listener.
    servers: Vec<(oneshot::Sender<()>, JoinHandle<()>)>,
}

/// Serves `routes` on a clone of `socket` in a task; a serving error is reported to the actor.
fn start_serving(
    socket: &std::net::TcpListener,
    routes: warp::filters::BoxedFilter<(warp::reply::Response,)>,
    ctx: Arc<AppContext>,
    myself: ActorRef<HttpServerMsg>,
) -> std::io::Result<(oneshot::Sender<()>, JoinHandle<()>)> {
    let socket = socket.try_clone()?;
    socket.set_nonblocking(true)?;
    let listener = tokio::net::TcpListener::from_std(socket)?;
    let (shutdown, stop) = oneshot::channel();
    let task = tokio::spawn(async move {
        let reason = match crate::http::serve(listener, routes, ctx, stop).await {
            Ok(()) => return,
            Err(e) => e.to_string(),
        };
        let _ = myself.send_message(HttpServerMsg::ServerExited(reason));
    });
    Ok((shutdown, task))
}

pub struct HttpServer;

impl Actor for HttpServer {
    type Msg = HttpServerMsg;
    type State = HttpServerState;
    type Arguments = HttpServerArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        args: Self::Arguments,
    ) -> Result<Self::State, ActorProcessingErr> {
        let grace = Duration::from_secs(args.ctx.settings.server.shutdown_grace_secs);
        let ctx = &args.ctx;
        let mut servers = vec![start_serving(
            &args.listener,
            crate::http::routes(Arc::clone(ctx)),
            Arc::clone(ctx),
            myself.clone(),
        )?];
        if let Some(metrics) = &args.metrics_listener {
            servers.push(start_serving(
                metrics,
                crate::http::metrics_routes(Arc::clone(ctx)),
                Arc::clone(ctx),
                myself,
            )?);
        }
        Ok(HttpServerState { grace, servers })
    }

    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        message: Self::Msg,
        _state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let HttpServerMsg::ServerExited(reason) = message;
        Err(format!("the HTTP server stopped: {reason}").into())
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<Self::Msg>,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let servers = std::mem::take(&mut state.servers);
        let mut tasks = Vec::with_capacity(servers.len());
        for (shutdown, task) in servers {
            let _ = shutdown.send(());
            tasks.push(task);
        }
        // Both listeners drain at once, within one grace period.
        let all = futures_util::future::join_all(tasks);
        if tokio::time::timeout(state.grace, all).await.is_err() {
            tracing::warn!("the HTTP server did not stop within the grace period");
        }
        Ok(())
    }
}
