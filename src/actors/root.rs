//! RootSupervisor: the only module that knows the whole tree (BRIEF §2).
//!
//! ```text
//! RootSupervisor
//! ├── MetricsActor
//! ├── StorageActor
//! ├── PipelineActor
//! │   ├── DownloadSupervisor ── Downloader × 5 platforms
//! │   └── ProcessingPool ────── ProcessingWorker × ≤ cores
//! ├── WatchFolderActor (`watch.enabled`, when serving)
//! ├── BotActor (`telegram.token` set, when serving)
//! └── HttpServer
//! ```
//!
//! Children start in that order and stop in reverse. A graceful shutdown first closes the
//! doors (the API, the watch folder, the bot), then lets the Pipeline drain for the grace period, then
//! stops the rest. Children are
//! restarted one-for-one with a budget; past it the root fails and the process exits
//! non-zero, for the service manager to restart.

use std::sync::Arc;
use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent};

use super::bot::BotActor;
use super::http_server::{HttpServer, HttpServerArgs};
use super::metrics::MetricsActor;
use super::pipeline::{LostWork, PipelineActor, PipelineMsg};
use super::storage::StorageActor;
use super::supervision::{Children, RestartPolicy, follow};
use super::watch_folder::WatchFolderActor;
use crate::context::AppContext;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RootChild {
    Metrics,
    Storage,
    Pipeline,
    Watch,
    Bot,
    Http,
}

impl RootChild {
    fn name(self) -> &'static str {
        match self {
            Self::Metrics => "metrics",
            Self::Storage => "storage",
            Self::Pipeline => "pipeline",
            Self::Watch => "watch_folder",
            Self::Bot => "telegram_bot",
            Self::Http => "http_server",
        }
    }
}

#[derive(Debug)]
pub enum RootMsg {
    Restart(RootChild),
    /// Graceful shutdown; replies when every child has stopped.
    Shutdown(RpcReplyPort<()>),
}

pub struct RootArgs {
    pub ctx: Arc<AppContext>,
    /// The API socket; `None` runs the tree without an API (standalone CLI capture).
    pub listener: Option<Arc<std::net::TcpListener>>,
    /// The separate metrics socket (`server.metrics_listen`), if any.
    pub metrics_listener: Option<Arc<std::net::TcpListener>>,
}

pub struct RootState {
    args: RootArgs,
    children: Children<RootChild>,
    stopping: bool,
}

pub struct RootSupervisor;

async fn spawn_child(
    myself: &ActorRef<RootMsg>,
    state: &mut RootState,
    child: RootChild,
) -> Result<(), ActorProcessingErr> {
    let ctx = Arc::clone(&state.args.ctx);
    let supervisor = myself.get_cell();
    let cell = match child {
        RootChild::Metrics => Actor::spawn_linked(None, MetricsActor, ctx, supervisor)
            .await?
            .0
            .get_cell(),
        RootChild::Storage => Actor::spawn_linked(None, StorageActor, ctx, supervisor)
            .await?
            .0
            .get_cell(),
        RootChild::Pipeline => Actor::spawn_linked(None, PipelineActor, ctx, supervisor)
            .await?
            .0
            .get_cell(),
        RootChild::Watch => {
            // The watch folder is a door of the service, not of a one-off CLI capture.
            if state.args.listener.is_none() || !ctx.settings.watch.enabled {
                return Ok(());
            }
            Actor::spawn_linked(None, WatchFolderActor, ctx, supervisor)
                .await?
                .0
                .get_cell()
        }
        RootChild::Bot => {
            // Like the watch folder, the bot is a door of the service only.
            if state.args.listener.is_none() || !ctx.settings.telegram.enabled() {
                return Ok(());
            }
            Actor::spawn_linked(None, BotActor, ctx, supervisor)
                .await?
                .0
                .get_cell()
        }
        RootChild::Http => {
            let Some(listener) = state.args.listener.clone() else {
                return Ok(());
            };
            let metrics_listener = state.args.metrics_listener.clone();
            Actor::spawn_linked(
                None,
                HttpServer,
                HttpServerArgs {
                    ctx,
                    listener,
                    metrics_listener,
                },
                supervisor,
            )
            .await?
            .0
            .get_cell()
        }
    };
    state.children.started(child, cell);
    Ok(())
}

impl Actor for RootSupervisor {
    type Msg = RootMsg;
    type State = RootState;
    type Arguments = RootArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        args: Self::Arguments,
    ) -> Result<Self::State, ActorProcessingErr> {
        let mut state = RootState {
            args,
            children: Children::new(RestartPolicy::DEFAULT),
            stopping: false,
        };
        for child in [
            RootChild::Metrics,
            RootChild::Storage,
            RootChild::Pipeline,
            RootChild::Watch,
            RootChild::Bot,
            RootChild::Http,
        ] {
            spawn_child(&myself, &mut state, child).await?;
        }
        Ok(state)
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        message: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            RootMsg::Restart(child) => {
                if !state.stopping
                    && let Err(e) = spawn_child(&myself, state, child).await
                {
                    tracing::error!(child = child.name(), error = %e, "actor failed to restart");
                    let decision = state.children.failed_to_start(child);
                    follow(
                        decision,
                        &myself,
                        child,
                        RootMsg::Restart,
                        &state.args.ctx,
                        child.name(),
                        &e.to_string(),
                    )?;
                }
            }
            RootMsg::Shutdown(reply) => {
                let ctx = Arc::clone(&state.args.ctx);
                let grace = Duration::from_secs(ctx.settings.server.shutdown_grace_secs);
                ctx.begin_shutdown();
                state.stopping = true;
                tracing::info!("shutting down: closing the API");
                state.children.stop(RootChild::Http, grace).await;
                state.children.stop(RootChild::Watch, grace).await;
                state.children.stop(RootChild::Bot, grace).await;
                tracing::info!(grace = ?grace, "shutting down: draining running jobs");
                let drained = ctx
                    .pipeline
                    .call(
                        |reply| PipelineMsg::Drain { grace, reply },
                        grace + Duration::from_secs(5),
                    )
                    .await;
                if drained.is_err() {
                    tracing::warn!("the pipeline did not confirm the drain");
                }
                myself.stop(Some("shutdown".into()));
                let _ = reply.send(());
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<Self::Msg>,
        event: SupervisionEvent,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let Some(exit) = state.children.exit_of(&event, state.stopping) else {
            return Ok(());
        };
        tracing::error!(child = exit.key.name(), reason = %exit.reason, "actor exited");
        if exit.key == RootChild::Storage {
            // Commits handed to the old StorageActor will never be confirmed.
            let _ = state
                .args
                .ctx
                .pipeline
                .send(PipelineMsg::WorkLost(LostWork::Commits));
        }
        exit.follow(&myself, RootMsg::Restart, &state.args.ctx, exit.key.name())
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<Self::Msg>,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        state.stopping = true;
        let grace = Duration::from_secs(state.args.ctx.settings.server.shutdown_grace_secs);
        state
            .children
            .stop_all(grace + Duration::from_secs(10))
            .await;
        Ok(())
    }
}
