//! RootSupervisor: the only module that knows the whole tree (BRIEF §2).
//!
//! ```text
//! RootSupervisor
//! ├── MetricsActor
//! ├── StorageActor
//! ├── BackupsActor (when serving)
//! ├── WebhooksActor (when serving)
//! ├── PipelineActor
//! │   ├── DownloadSupervisor ── Downloader × 5 platforms
//! │   └── ProcessingPool ────── ProcessingWorker × ≤ cores
//! ├── DoorActor(watch_folder) (`watch.enabled`, when serving)
//! ├── DoorActor(telegram_bot) (`telegram.token` set, when serving)
//! └── DoorActor(http_server)  (when serving)
//! ```
//!
//! The doors' code is not known here: `app.rs` builds them and passes them in `Doors`. The app
//! holds the running tree as a [`Tree`], the root's handle.
//!
//! Children start in that order and stop in reverse. A graceful shutdown first closes the
//! doors (the API, the watch folder, the bot), then lets the Pipeline drain for the grace period, then
//! stops the rest. Children are
//! restarted one-for-one with a budget; past it the root fails and the process exits
//! non-zero, for the service manager to restart.

use std::sync::Arc;
use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent};

use super::backups::BackupsActor;
use super::door::{Door, DoorActor, DoorArgs};
use super::metrics::MetricsActor;
use super::pipeline::{LostWork, PipelineActor};
use super::storage::StorageActor;
use super::supervision::{Children, RestartPolicy, follow};
use super::webhooks::WebhooksActor;
use super::{Env, Handles};
use crate::context::AppContext;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RootChild {
    Metrics,
    Storage,
    Backups,
    Webhooks,
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
            Self::Backups => "backups",
            Self::Webhooks => "webhooks",
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
    pub handles: Handles,
    /// The doors this app opens (none for a standalone CLI capture).
    pub doors: Doors,
}

/// The doors of the service, built by their own modules (`http`, `watch`, `bot`); `None` is a
/// door this app does not open.
#[derive(Default)]
pub struct Doors {
    pub watch: Option<Arc<dyn Door>>,
    pub bot: Option<Arc<dyn Door>>,
    pub http: Option<Arc<dyn Door>>,
}

pub struct RootState {
    args: RootArgs,
    children: Children<RootChild>,
    stopping: bool,
}

pub struct RootSupervisor;

/// The running tree, as the app holds it.
pub struct Tree {
    root: ActorRef<RootMsg>,
    task: tokio::task::JoinHandle<()>,
}

impl Tree {
    /// Starts the root and, in order, its children.
    pub async fn start(args: RootArgs) -> Result<Tree, String> {
        let (root, task) = Actor::spawn(None, RootSupervisor, args)
            .await
            .map_err(|e| e.to_string())?;
        Ok(Tree { root, task })
    }

    /// Graceful shutdown within `deadline`: close the doors, drain, stop the rest. Past the
    /// deadline the root is stopped as it is.
    pub async fn shutdown(&self, deadline: Duration) {
        if self.task.is_finished() {
            return;
        }
        let acknowledged = self.root.call(RootMsg::Shutdown, Some(deadline)).await;
        if acknowledged.is_err() {
            tracing::warn!("the root supervisor did not acknowledge the shutdown; stopping it");
            self.root.stop(Some("shutdown".into()));
        }
    }

    /// Waits until the tree has ended (after a shutdown, or a failure past every budget).
    pub async fn ended(&mut self) {
        let _ = (&mut self.task).await;
    }
}

async fn spawn_child(
    myself: &ActorRef<RootMsg>,
    state: &mut RootState,
    child: RootChild,
) -> Result<(), ActorProcessingErr> {
    let env = Env {
        ctx: Arc::clone(&state.args.ctx),
        handles: state.args.handles.clone(),
    };
    let supervisor = myself.get_cell();
    let door = |door: &Option<Arc<dyn Door>>| {
        door.clone().map(|door| DoorArgs {
            door,
            grace: Duration::from_secs(env.ctx.settings.server.shutdown_grace_secs),
        })
    };
    let cell = match child {
        RootChild::Metrics => Actor::spawn_linked(None, MetricsActor, env, supervisor)
            .await?
            .0
            .get_cell(),
        RootChild::Storage => Actor::spawn_linked(None, StorageActor, env, supervisor)
            .await?
            .0
            .get_cell(),
        // Only a serving process backs up by itself: a short-lived one (a CLI capture) would
        // claim a run and die with it.
        RootChild::Backups if state.args.doors.http.is_none() => return Ok(()),
        RootChild::Backups => Actor::spawn_linked(None, BackupsActor, env, supervisor)
            .await?
            .0
            .get_cell(),
        // Deliveries are sent by a serving process; a CLI capture's events wait for it.
        RootChild::Webhooks if state.args.doors.http.is_none() => return Ok(()),
        RootChild::Webhooks => Actor::spawn_linked(None, WebhooksActor, env, supervisor)
            .await?
            .0
            .get_cell(),
        RootChild::Pipeline => Actor::spawn_linked(None, PipelineActor, env, supervisor)
            .await?
            .0
            .get_cell(),
        RootChild::Watch | RootChild::Bot | RootChild::Http => {
            let doors = &state.args.doors;
            let args = match child {
                RootChild::Watch => door(&doors.watch),
                RootChild::Bot => door(&doors.bot),
                _ => door(&doors.http),
            };
            let Some(args) = args else {
                return Ok(());
            };
            Actor::spawn_linked(None, DoorActor, args, supervisor)
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
            RootChild::Backups,
            RootChild::Webhooks,
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
                if state.args.handles.pipeline.drain(grace).await.is_err() {
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
            state.args.handles.pipeline.work_lost(LostWork::Commits);
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
