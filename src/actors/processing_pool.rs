//! ProcessingPool: a fixed set of ProcessingWorkers (never more than the CPU cores), a queue
//! in front of them, and one-for-one restarts.
//!
//! The pool remembers which job each worker holds, so when a worker dies the Pipeline learns
//! exactly which attempt was lost.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef, SupervisionEvent};

use super::Env;
use super::pipeline::{LostWork, PipelineHandle};
use super::processing_worker::{ProcessTicket, ProcessingWorker, WorkerArgs, WorkerMsg};
use super::storage::StorageHandle;
use super::supervision::{Children, RestartPolicy, follow};
use crate::context::AppContext;
use crate::db::jobs::Lease;
use crate::domain::JobId;
use crate::faults::FaultPoint;

#[derive(Debug)]
pub enum PoolMsg {
    Process(ProcessTicket),
    /// Drop the job, queued or running.
    Cancel(JobId),
    /// A worker finished (or dropped) the attempt it held.
    WorkerIdle(usize, Lease),
    Restart(usize),
}

pub struct PoolState {
    ctx: Arc<AppContext>,
    pipeline: PipelineHandle,
    storage: StorageHandle,
    children: Children<usize>,
    idle: VecDeque<usize>,
    busy: HashMap<usize, Lease>,
    queue: VecDeque<ProcessTicket>,
    stopping: bool,
}

pub struct ProcessingPool;

impl ProcessingPool {
    async fn spawn_worker(
        myself: &ActorRef<PoolMsg>,
        state: &mut PoolState,
        index: usize,
    ) -> Result<(), ActorProcessingErr> {
        let args = WorkerArgs {
            ctx: Arc::clone(&state.ctx),
            pipeline: state.pipeline.clone(),
            storage: state.storage.clone(),
            index,
            pool: myself.clone(),
        };
        let (worker, _) =
            Actor::spawn_linked(None, ProcessingWorker, args, myself.get_cell()).await?;
        state.children.started(index, worker.get_cell());
        state.idle.push_back(index);
        Ok(())
    }

    /// Hands queued work to idle workers.
    fn dispatch(state: &mut PoolState) {
        while !state.queue.is_empty() {
            let Some(index) = state.idle.pop_front() else {
                return;
            };
            let Some(worker) = state.children.get::<WorkerMsg>(index) else {
                continue;
            };
            let ticket = state.queue.pop_front().expect("checked non-empty");
            let lease = ticket.lease.clone();
            match worker.send_message(WorkerMsg::Process(ticket)) {
                Ok(()) => {
                    state.busy.insert(index, lease);
                }
                Err(e) => {
                    // The worker is dying; its exit event will restart it. Requeue the work.
                    if let ractor::MessagingErr::SendErr(WorkerMsg::Process(ticket)) = e {
                        state.queue.push_front(ticket);
                    }
                }
            }
        }
    }
}

impl Actor for ProcessingPool {
    type Msg = PoolMsg;
    type State = PoolState;
    type Arguments = Env;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        Env { ctx, handles }: Self::Arguments,
    ) -> Result<Self::State, ActorProcessingErr> {
        let workers = ctx.settings.processing_workers();
        let mut state = PoolState {
            ctx,
            pipeline: handles.pipeline,
            storage: handles.storage,
            children: Children::new(RestartPolicy::DEFAULT),
            idle: VecDeque::new(),
            busy: HashMap::new(),
            queue: VecDeque::new(),
            stopping: false,
        };
        for index in 0..workers {
            Self::spawn_worker(&myself, &mut state, index).await?;
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
            PoolMsg::Process(ticket) => {
                state
                    .ctx
                    .faults
                    .crash_if_armed(FaultPoint::ProcessingPoolHandle);
                state.queue.push_back(ticket)
            }
            PoolMsg::Cancel(job) => {
                state.queue.retain(|t| t.lease.job != job);
                let holder = state
                    .busy
                    .iter()
                    .find(|(_, lease)| lease.job == job)
                    .map(|(index, _)| *index);
                if let Some(worker) =
                    holder.and_then(|index| state.children.get::<WorkerMsg>(index))
                {
                    // The worker reports itself idle once the job is dropped.
                    let _ = worker.send_message(WorkerMsg::Cancel(job));
                }
            }
            PoolMsg::WorkerIdle(index, lease) => {
                // Only for the attempt the pool gave that worker: a late message about an
                // earlier attempt must not free a worker that is busy with another job.
                if state.busy.get(&index) == Some(&lease) {
                    state.busy.remove(&index);
                    if !state.idle.contains(&index) {
                        state.idle.push_back(index);
                    }
                }
            }
            PoolMsg::Restart(index) => {
                if !state.stopping
                    && let Err(e) = Self::spawn_worker(&myself, state, index).await
                {
                    let decision = state.children.failed_to_start(index);
                    follow(
                        decision,
                        &myself,
                        index,
                        PoolMsg::Restart,
                        &state.ctx,
                        "processing_worker",
                        &e.to_string(),
                    )?;
                }
            }
        }
        Self::dispatch(state);
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
        tracing::error!(worker = exit.key, reason = %exit.reason, "processing worker exited");
        state.idle.retain(|i| *i != exit.key);
        if let Some(lease) = state.busy.remove(&exit.key) {
            let what = "the processing worker crashed".to_string();
            state.pipeline.work_lost(LostWork::Jobs {
                leases: vec![lease],
                what,
            });
        }
        exit.follow(&myself, PoolMsg::Restart, &state.ctx, "processing_worker")
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<Self::Msg>,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        state.stopping = true;
        state.children.stop_all(Duration::from_secs(5)).await;
        Ok(())
    }
}
