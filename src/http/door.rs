//! `HttpDoor`: the API listener (and the metrics listener, when `server.metrics_listen` is
//! set) as a door of the supervision tree.
//!
//! The listening sockets are bound once by the app (so tests can bind port 0 and learn the
//! address); every start of the door serves clones of the same sockets, so a restart keeps
//! the address and loses no connection waiting in the kernel's backlog.

use std::sync::Arc;

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use tokio_util::sync::CancellationToken;
use warp::filters::BoxedFilter;
use warp::reply::Response;

use super::{Reach, metrics_routes, routes, serve};
use crate::actors::door::{Door, DoorTask};
use crate::context::AppContext;

pub struct HttpDoor {
    pub ctx: Arc<AppContext>,
    pub reach: Reach,
    pub listener: Arc<std::net::TcpListener>,
    pub metrics_listener: Option<Arc<std::net::TcpListener>>,
}

impl Door for HttpDoor {
    fn start(&self, stop: CancellationToken) -> BoxFuture<'_, Result<Vec<DoorTask>, String>> {
        async move {
            let api = routes(Arc::clone(&self.ctx), self.reach.clone());
            let mut tasks = vec![self.serving("API server", &self.listener, api, &stop)?];
            if let Some(metrics) = &self.metrics_listener {
                let only_metrics = metrics_routes(Arc::clone(&self.ctx));
                tasks.push(self.serving("metrics server", metrics, only_metrics, &stop)?);
            }
            Ok(tasks)
        }
        .boxed()
    }
}

impl HttpDoor {
    /// Serves `routes` on a clone of `socket` until `stop` fires.
    fn serving(
        &self,
        name: &'static str,
        socket: &std::net::TcpListener,
        routes: BoxedFilter<(Response,)>,
        stop: &CancellationToken,
    ) -> Result<DoorTask, String> {
        let listener = (|| {
            let socket = socket.try_clone()?;
            socket.set_nonblocking(true)?;
            tokio::net::TcpListener::from_std(socket)
        })()
        .map_err(|e| format!("cannot serve the {name}'s socket: {e}"))?;
        let ctx = Arc::clone(&self.ctx);
        let stop = stop.clone();
        Ok(DoorTask::new(name, async move {
            serve(listener, routes, ctx, stop)
                .await
                .map_err(|e| format!("the HTTP server stopped: {e}"))
        }))
    }
}
