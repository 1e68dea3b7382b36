//! DoorActor: the lifecycle of one door of the service (the API server, the watch folder, the
//! Telegram bot), and nothing else.
//!
//! What a door does lives in its own module (`http`, `watch`, `bot`), behind the [`Door`]
//! trait; the composition root (`app`) hands the doors to the RootSupervisor. This actor
//! starts the door's tasks, fails when any of them ends on its own (so its supervisor
//! restarts it, and the door starts again from the database), and on stop asks the tasks to
//! finish, waits for them for the grace period, then drops (aborts) what is left.

use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use ractor::{Actor, ActorProcessingErr, ActorRef};
use tokio_util::sync::CancellationToken;
use tokio_util::task::AbortOnDropHandle;

/// One long-running task of a door. `Ok(())` is an orderly end (after `stop` fired); anything
/// else that ends it is a failure of the door.
pub struct DoorTask {
    pub name: &'static str,
    pub run: BoxFuture<'static, Result<(), String>>,
}

impl DoorTask {
    /// A task that is meant to run for as long as the door does (a loop that never returns):
    /// it ends quietly when `stop` fires, and returning before that is a failure.
    pub fn until_stopped(
        name: &'static str,
        stop: &CancellationToken,
        run: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Self {
        let stop = stop.clone();
        Self::new(name, async move {
            tokio::select! {
                () = stop.cancelled() => Ok(()),
                () = run => Err("it returned".to_string()),
            }
        })
    }

    pub fn new(
        name: &'static str,
        run: impl std::future::Future<Output = Result<(), String>> + Send + 'static,
    ) -> Self {
        Self {
            name,
            run: run.boxed(),
        }
    }
}

/// A door: how to start it. Called again on every restart of its actor.
pub trait Door: Send + Sync + 'static {
    /// Does what must succeed before the door counts as up (open the inbox, check the
    /// token), then returns the tasks to run. They should end soon after `stop` fires.
    fn start(&self, stop: CancellationToken) -> BoxFuture<'_, Result<Vec<DoorTask>, String>>;
}

pub struct DoorArgs {
    pub door: Arc<dyn Door>,
    /// How long a stopping door's tasks may take to finish.
    pub grace: Duration,
}

#[derive(Debug)]
pub enum DoorMsg {
    /// A task ended while the door was meant to run: the actor fails and is restarted.
    TaskEnded { task: &'static str, reason: String },
}

pub struct DoorState {
    stop: CancellationToken,
    grace: Duration,
    /// Dropping them aborts them: a door's tasks never outlive its actor.
    tasks: Vec<AbortOnDropHandle<()>>,
}

pub struct DoorActor;

impl Actor for DoorActor {
    type Msg = DoorMsg;
    type State = DoorState;
    type Arguments = DoorArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        args: Self::Arguments,
    ) -> Result<Self::State, ActorProcessingErr> {
        let stop = CancellationToken::new();
        let started = args.door.start(stop.clone()).await?;
        let tasks = started
            .into_iter()
            .map(|task| supervise(&myself, &stop, task))
            .collect();
        Ok(DoorState {
            stop,
            grace: args.grace,
            tasks,
        })
    }

    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        message: Self::Msg,
        _state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let DoorMsg::TaskEnded { task, reason } = message;
        Err(format!("its {task} task ended: {reason}").into())
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<Self::Msg>,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        state.stop.cancel();
        let all = futures_util::future::join_all(state.tasks.iter_mut());
        if tokio::time::timeout(state.grace, all).await.is_err() {
            tracing::warn!("a door did not stop within the grace period; its tasks are aborted");
        }
        state.tasks.clear();
        Ok(())
    }
}

/// Spawns `task`; if it ends (a panic included) while the door should run, the actor hears of
/// it. The task is aborted if the actor goes away without stopping it (a crash of the actor).
fn supervise(
    myself: &ActorRef<DoorMsg>,
    stop: &CancellationToken,
    task: DoorTask,
) -> AbortOnDropHandle<()> {
    let actor = myself.clone();
    let stop = stop.clone();
    let DoorTask { name, run } = task;
    let guard = stop.clone().drop_guard();
    AbortOnDropHandle::new(tokio::spawn(async move {
        // Whatever ends this task, the door's other tasks are asked to stop with it.
        let _guard = guard;
        let outcome = std::panic::AssertUnwindSafe(run).catch_unwind().await;
        if stop.is_cancelled() {
            return;
        }
        let reason = match outcome {
            Ok(Ok(())) => "it returned".to_string(),
            Ok(Err(e)) => e,
            Err(_) => "it panicked".to_string(),
        };
        let _ = actor.send_message(DoorMsg::TaskEnded { task: name, reason });
    }))
}
