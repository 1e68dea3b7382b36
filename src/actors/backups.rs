//! BackupsActor: runs the backups the service makes by itself. Every tick it records the
//! current schedule slot's run (when `backup.interval_secs` is set; the slot's key makes that
//! once per slot across instances) and, unless a backup of its own is under way, claims the
//! next due run (`keeping::scheduled`). A run's task belongs to the actor's state, so a
//! restart or a shutdown drops it; its lease then runs out and the run is taken over.

use std::sync::Arc;
use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef};
use tokio_util::task::AbortOnDropHandle;

use super::Env;
use super::handle::Slot;
use crate::context::AppContext;
use crate::db::backup_runs::RunOutcome;
use crate::keeping::scheduled;
use crate::metrics::Event;

/// How often a slot and due runs are looked for: runs another instance recorded, or that
/// waited behind a backup writing to the directory, start within this.
const TICK: Duration = Duration::from_secs(30);

#[derive(Debug)]
pub enum BackupsMsg {
    /// Look for a slot to record and a run to start.
    Tick,
}

/// How the admin routes reach the BackupsActor.
#[derive(Clone)]
pub struct BackupsHandle {
    slot: Arc<Slot<BackupsMsg>>,
}

impl BackupsHandle {
    pub(in crate::actors) fn new() -> Self {
        Self {
            slot: Arc::new(Slot::new("backups")),
        }
    }

    /// A run was recorded: start it now rather than at the next tick. A restarting actor
    /// finds it at its first tick.
    pub fn poke(&self) {
        let _ = self.slot.send(BackupsMsg::Tick);
    }
}

pub struct BackupsState {
    ctx: Arc<AppContext>,
    handle: BackupsHandle,
    running: Option<AbortOnDropHandle<()>>,
    _ticker: AbortOnDropHandle<()>,
}

pub struct BackupsActor;

impl Actor for BackupsActor {
    type Msg = BackupsMsg;
    type State = BackupsState;
    type Arguments = Env;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        Env { ctx, handles }: Self::Arguments,
    ) -> Result<Self::State, ActorProcessingErr> {
        let _ = myself.send_message(BackupsMsg::Tick);
        let ticker = AbortOnDropHandle::new(myself.send_interval(TICK, || BackupsMsg::Tick));
        handles.backups.slot.set(myself);
        Ok(BackupsState {
            ctx,
            handle: handles.backups,
            running: None,
            _ticker: ticker,
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        message: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let BackupsMsg::Tick = message;
        let ctx = &state.ctx;
        if let Some(interval) = ctx.settings.backup.interval
            && let Err(e) = scheduled::enqueue_slot(&ctx.db, interval, crate::clock::now()).await
        {
            tracing::warn!(error = %e, "cannot record the scheduled backup's run");
        }
        if state
            .running
            .as_ref()
            .is_some_and(|task| !task.is_finished())
        {
            return Ok(());
        }
        let ctx = Arc::clone(&state.ctx);
        state.running = Some(AbortOnDropHandle::new(tokio::spawn(async move {
            // After a run that finished, the next due run, if any, starts without waiting for
            // the tick; after nothing (or a postponement) the tick comes as usual — never at
            // once, which would spin an idle service on the database.
            if run_due(&ctx).await {
                let _ = myself.send_message(BackupsMsg::Tick);
            }
        })));
        Ok(())
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<Self::Msg>,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        state.handle.slot.clear();
        Ok(())
    }
}

/// Runs the next due run this instance can claim; true when one ran to its end (completed or
/// failed), so another may be due right after it.
async fn run_due(ctx: &AppContext) -> bool {
    let settings = &ctx.settings.backup;
    match scheduled::run_next(&ctx.db, &ctx.media, settings, &ctx.lease_owner).await {
        Ok(None) => false,
        Ok(Some((run, outcome))) => {
            let reason = if run.reason == "admin" {
                "admin"
            } else {
                "schedule"
            };
            let label = match &outcome {
                RunOutcome::Completed {
                    snapshot, seconds, ..
                } => {
                    tracing::info!(run = %run.id, %snapshot, seconds, "backup completed");
                    "completed"
                }
                RunOutcome::Failed { error } => {
                    tracing::error!(run = %run.id, %error, "backup failed");
                    "failed"
                }
                RunOutcome::Postponed => "postponed",
            };
            ctx.metrics.record(&Event::BackupFinished {
                reason,
                outcome: label,
            });
            !matches!(outcome, RunOutcome::Postponed)
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot run the due backup");
            false
        }
    }
}
