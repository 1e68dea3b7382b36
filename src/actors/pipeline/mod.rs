//! PipelineActor: the only writer of job state.
//!
//! Submissions are recorded by its front desk (`desk.rs`) in the submitter's task; it is
//! woken for them, claims due jobs under a lease (as many as the per-platform and
//! global caps allow), routes each through download → processing → storage, and writes the
//! outcome of every attempt: completed, retried with backoff, or failed with its reason. It
//! supervises the DownloadSupervisor and the ProcessingPool.
//!
//! The database is the source of truth. At start the Pipeline re-reads what it must do: jobs
//! this process leased before (an earlier boot, or this boot before a crash of the Pipeline)
//! are orphans and go back to the queue. Work that dies with a child actor is a failed
//! attempt of its job, never a lost job.

mod claim;
mod content;
mod desk;
mod handle;
mod in_flight;
mod outcome;
mod output;
mod quota_refusal;
mod requests;
mod stages;
mod start;
mod twins;
mod upkeep;

pub use handle::PipelineHandle;
use start::{load_breakers, spawn_child};

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent};
use tokio_util::task::AbortOnDropHandle;

use self::content::ContentClaims;
use self::in_flight::{Capacity, Holder, InFlight};
use super::processing_worker::Processed;
use super::supervision::{Children, RestartPolicy, follow};
use super::{Env, Handles};
use crate::clock;
use crate::context::AppContext;
use crate::db::jobs::Lease;
use crate::db::outcome::{Charge, Requeue};
use crate::db::recovery;
use crate::domain::breaker::Breaker;
use crate::domain::{ErrorCode, ItemId, JobError, Platform, Progress};
use crate::faults::FaultPoint;
use crate::media::ytdlp::Downloaded;
use crate::metrics::JobOutcome;

#[derive(Debug)]
pub enum PipelineMsg {
    /// Delete an item: cancel its running work, remove its rows, then its files. Replies
    /// `false` when there is no such item.
    Delete {
        item: ItemId,
        reply: RpcReplyPort<Result<bool, JobError>>,
    },
    /// Cancel an item's capture or import: its running work stops, its job and the item end
    /// `cancelled`. Replies `false` when nothing was left to cancel.
    Cancel {
        item: ItemId,
        reply: RpcReplyPort<Result<bool, JobError>>,
    },
    /// Due work may be waiting: claim what fits.
    Wake,
    /// Periodic: renew leases, recover expired ones, claim.
    Tick,
    Progress {
        lease: Lease,
        progress: Progress,
    },
    Downloaded {
        lease: Lease,
        result: Result<Downloaded, JobError>,
    },
    Processed {
        lease: Lease,
        result: Result<Processed, JobError>,
    },
    Committed {
        lease: Lease,
        result: Result<(), JobError>,
    },
    /// Work died with an actor; each affected attempt is failed (and retried if it may).
    WorkLost(LostWork),
    /// Stop claiming and reply once running jobs are done, or after `grace`.
    Drain {
        grace: Duration,
        reply: RpcReplyPort<()>,
    },
    DrainDeadline,
    RestartChild(PipelineChild),
}

/// Which running work an actor took with it when it died.
#[derive(Debug, Clone)]
pub enum LostWork {
    /// These attempts (their downloader or processing worker died), and what happened.
    Jobs { leases: Vec<Lease>, what: String },
    /// Everything handed to the StorageActor (it died).
    Commits,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PipelineChild {
    Downloads,
    Processing,
}

impl PipelineChild {
    fn name(self) -> &'static str {
        match self {
            Self::Downloads => "download_supervisor",
            Self::Processing => "processing_pool",
        }
    }
}

pub struct PipelineState {
    ctx: Arc<AppContext>,
    /// Its peers: Storage for commits, discards and deletes; its own handle to keep current.
    handles: Handles,
    in_flight: InFlight,
    /// Content being committed, and identical videos waiting for it.
    content: ContentClaims<Processed>,
    /// Each platform's circuit breaker (mirrors the `breakers` table).
    breakers: HashMap<Platform, Breaker>,
    capacity: Capacity,
    children: Children<PipelineChild>,
    draining: bool,
    /// media_root was below its free-space floor at the last claim: claiming waits.
    short_of_space: bool,
    drain_reply: Option<RpcReplyPort<()>>,
    stopping: bool,
    last_maintenance: Instant,
    _ticker: AbortOnDropHandle<()>,
}

pub struct PipelineActor;

impl Actor for PipelineActor {
    type Msg = PipelineMsg;
    type State = PipelineState;
    type Arguments = Env;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        Env { ctx, handles }: Self::Arguments,
    ) -> Result<Self::State, ActorProcessingErr> {
        let recovered = recovery::recover_owned(
            &ctx.db,
            &ctx.lease_owner,
            ctx.settings.queue.max_crashes.get(),
            clock::now(),
        )
        .await?;
        if !recovered.requeued.is_empty() || !recovered.failed.is_empty() {
            tracing::warn!(
                requeued = recovered.requeued.len(),
                failed = recovered.failed.len(),
                "recovered jobs whose worker was gone"
            );
        }
        let settings = &ctx.settings;
        let workers = settings.processing_workers();
        let capacity = Capacity {
            per_platform: Platform::ALL
                .iter()
                .map(|p| (*p, settings.platforms.get(*p).max_concurrent.get()))
                .collect::<HashMap<_, _>>(),
            downloads: settings.download.max_concurrent.get(),
            processing_backlog: workers * 2,
        };
        let poll = Duration::from_millis(settings.queue.poll_interval_ms.get());
        let ticker = myself.send_interval(poll, || PipelineMsg::Tick);
        let breakers = load_breakers(&ctx).await?;
        let mut state = PipelineState {
            ctx: Arc::clone(&ctx),
            handles: handles.clone(),
            in_flight: InFlight::default(),
            content: ContentClaims::default(),
            breakers,
            capacity,
            children: Children::new(RestartPolicy::DEFAULT),
            draining: false,
            short_of_space: false,
            drain_reply: None,
            stopping: false,
            last_maintenance: Instant::now(),
            _ticker: AbortOnDropHandle::new(ticker),
        };
        for child in [PipelineChild::Downloads, PipelineChild::Processing] {
            spawn_child(&myself, &mut state, child).await?;
        }
        handles.pipeline.slot().set(myself.clone());
        myself.send_message(PipelineMsg::Wake)?;
        Ok(state)
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        message: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            PipelineMsg::Delete { item, reply } => {
                let result = state.delete(&myself, item).await;
                let _ = reply.send(result);
            }
            PipelineMsg::Cancel { item, reply } => {
                let result = state.cancel(&myself, item).await;
                let _ = reply.send(result);
            }
            PipelineMsg::Wake => state.claim(&myself).await,
            PipelineMsg::Tick => {
                state.ctx.faults.crash_if_armed(FaultPoint::PipelineTick);
                state.maintain(&myself).await;
                state.claim(&myself).await;
            }
            PipelineMsg::Progress { lease, progress } => state.progress(&lease, progress).await,
            PipelineMsg::Downloaded { lease, result } => match result {
                Ok(download) => state.downloaded(&myself, &lease, download).await,
                Err(error) => state.fail_attempt(&myself, &lease, error).await,
            },
            PipelineMsg::Processed { lease, result } => match result {
                Ok(processed) => state.processed(&myself, &lease, processed).await,
                Err(error) => state.fail_attempt(&myself, &lease, error).await,
            },
            PipelineMsg::Committed { lease, result } => match result {
                Ok(()) => state.complete(&myself, &lease).await,
                Err(error) => state.fail_attempt(&myself, &lease, error).await,
            },
            PipelineMsg::WorkLost(lost) => state.lose(&myself, lost).await,
            PipelineMsg::Drain { grace, reply } => {
                state.draining = true;
                if state.in_flight.is_empty() {
                    let _ = reply.send(());
                } else {
                    tracing::info!(
                        running = state.in_flight.len(),
                        "draining: waiting for running jobs"
                    );
                    state.drain_reply = Some(reply);
                    myself.send_after(grace, || PipelineMsg::DrainDeadline);
                }
            }
            PipelineMsg::DrainDeadline => {
                if let Some(reply) = state.drain_reply.take() {
                    tracing::info!(
                        running = state.in_flight.len(),
                        "grace period over; stopping running jobs"
                    );
                    let _ = reply.send(());
                }
            }
            PipelineMsg::RestartChild(child) => {
                if !state.stopping
                    && let Err(e) = spawn_child(&myself, state, child).await
                {
                    tracing::error!(?child, error = %e, "pipeline child failed to restart");
                    let decision = state.children.failed_to_start(child);
                    follow(
                        decision,
                        &myself,
                        child,
                        PipelineMsg::RestartChild,
                        &state.ctx,
                        child.name(),
                        &e.to_string(),
                    )?;
                }
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
        let child = exit.key;
        tracing::error!(?child, reason = %exit.reason, "pipeline child exited; its running work is lost");
        // Everything the child was running went down with it.
        let lost: Vec<Lease> = match child {
            PipelineChild::Downloads => state
                .in_flight
                .held_by(|h| matches!(h, Holder::Downloader(_))),
            PipelineChild::Processing => state.in_flight.held_by(|h| h == Holder::Processing),
        };
        for lease in lost {
            let error = JobError::new(
                ErrorCode::WorkerCrashed,
                format!("the {} crashed", child.name()),
            );
            state.fail_attempt(&myself, &lease, error).await;
        }
        exit.follow(&myself, PipelineMsg::RestartChild, &state.ctx, child.name())
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<Self::Msg>,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        state.stopping = true;
        state.handles.pipeline.slot().clear();
        // Children first: stopping them kills their tasks and tool processes.
        state.children.stop_all(Duration::from_secs(10)).await;
        // What is still running was interrupted by the shutdown, not by its own fault: it goes
        // back to the queue without being charged an attempt (THREATS OPS-01).
        let now = clock::now();
        for running in state.in_flight.drain() {
            let release = Requeue {
                run_after: now,
                reason: None,
                charge: Charge::Uncharged,
            };
            let released = crate::db::outcome::requeue(
                &state.ctx.db,
                running.lease(),
                running.subject(),
                release,
                now,
            )
            .await;
            state.settle(&running, JobOutcome::Released, None, released);
            let dir = running.work_dir.clone();
            let _ =
                tokio::task::spawn_blocking(move || crate::storage::remove_work_dir(&dir)).await;
        }
        if let Some(reply) = state.drain_reply.take() {
            let _ = reply.send(());
        }
        Ok(())
    }
}
