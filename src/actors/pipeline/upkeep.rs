//! Keeping the Pipeline's attempts honest: leases renewed and lost ones stopped, expired
//! leases of dead instances recovered, attempts whose worker fell silent failed, work lost
//! with a crashed actor failed, and a running attempt's tool stopped wherever it runs.

use std::time::{Duration, Instant};

use ractor::ActorRef;

use super::in_flight::{Holder, Running};
use super::{LostWork, PipelineChild, PipelineMsg, PipelineState};
use crate::actors::download_supervisor::DownloadSupMsg;
use crate::actors::processing_pool::PoolMsg;
use crate::clock;
use crate::db::{jobs, recovery};
use crate::domain::{ErrorCode, JobError, JobId};

impl PipelineState {
    /// Fails the attempts an actor's death took with it (each is retried if it may).
    pub(super) async fn lose(&mut self, myself: &ActorRef<PipelineMsg>, lost: LostWork) {
        let (leases, what) = match lost {
            LostWork::Jobs { leases, what } => (leases, what),
            LostWork::Commits => (
                self.in_flight.held_by(|h| h == Holder::Storage),
                "the storage actor crashed".to_string(),
            ),
        };
        for lease in leases {
            self.fail_attempt(
                myself,
                &lease,
                JobError::new(ErrorCode::WorkerCrashed, what.clone()),
            )
            .await;
        }
    }

    /// Keeps leases alive and recovers jobs whose owner vanished, every third of a lease.
    pub(super) async fn maintain(&mut self, myself: &ActorRef<PipelineMsg>) {
        let lease = Duration::from_secs(self.ctx.settings.queue.lease_secs.get());
        if self.last_maintenance.elapsed() < lease / 3 {
            return;
        }
        self.last_maintenance = Instant::now();
        let now = clock::now();
        let claimant = self.ctx.claimant();
        match jobs::renew_leases(&self.ctx.db, &claimant, &self.in_flight.leases(), now).await {
            Ok(lost) => {
                for lease in lost {
                    // Another process took the job over (we could not renew in time): our
                    // attempt must stop without touching the job, which is no longer ours.
                    if let Some(running) = self.take_running(myself, &lease) {
                        tracing::warn!(job = %lease.job, item = %lease.item, "lost the lease of a running job; stopping this attempt");
                        self.cancel_work(&running);
                        if !Self::holder_cleans_up(running.holder) {
                            self.handles.storage.discard_work_dir(running.work_dir);
                        }
                    }
                }
            }
            Err(e) => tracing::error!(error = %e, "cannot renew job leases"),
        }
        self.fail_silent_attempts(myself).await;
        // Another instance sharing the database may have opened or closed a breaker.
        match super::load_breakers(&self.ctx).await {
            Ok(breakers) => self.breakers = breakers,
            Err(e) => tracing::warn!(error = %e, "cannot re-read the circuit breakers"),
        }
        match recovery::recover_expired(
            &self.ctx.db,
            &self.ctx.lease_owner,
            self.ctx.settings.queue.max_crashes.get(),
            now,
        )
        .await
        {
            Ok(recovered) if !recovered.requeued.is_empty() || !recovered.failed.is_empty() => {
                tracing::warn!(
                    requeued = recovered.requeued.len(),
                    failed = recovered.failed.len(),
                    "recovered jobs with expired leases"
                );
                let _ = myself.send_message(PipelineMsg::Wake);
            }
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "cannot recover expired jobs"),
        }
    }

    /// Fails attempts whose holder has said nothing for longer than its work can take: every
    /// tool runs under a timeout and reports when it ends, so silence past it means a message
    /// was lost. Without this, such a job would keep its renewed lease for ever.
    async fn fail_silent_attempts(&mut self, myself: &ActorRef<PipelineMsg>) {
        let settings = &self.ctx.settings;
        let margin = Duration::from_secs(120);
        let limit = |holder: Holder| match holder {
            Holder::Downloader(_) | Holder::Stager => {
                Duration::from_secs(settings.download.timeout_secs.get()) + margin
            }
            Holder::Storage => Duration::from_secs(600),
            Holder::Processing | Holder::Pipeline => {
                Duration::from_secs(settings.processing.timeout_secs.get()) + margin
            }
        };
        let silent = self
            .in_flight
            .leases_where(|r| r.last_activity.elapsed() > limit(r.holder));
        for lease in silent {
            if let Some(running) = self.in_flight.current(&lease) {
                let (holder, job) = (running.holder, running.job.lease.job);
                tracing::error!(job = %lease.job, item = %lease.item, ?holder, "no word about a running job from its worker; failing the attempt");
                self.cancel_held(holder, job);
            }
            let error = JobError::new(
                ErrorCode::WorkerLost,
                "the worker stopped reporting before the job finished",
            );
            self.fail_attempt(myself, &lease, error).await;
        }
    }

    /// Stops the tool of an attempt, wherever it runs; the actor running it removes the work
    /// directory once the tool is gone.
    pub(super) fn cancel_work(&self, running: &Running) {
        self.cancel_held(running.holder, running.job.lease.job);
    }

    /// Whether the attempt's holder cleans up after a cancel (a tool's actor does; a commit,
    /// a copy or a parked result leave their work directory to the Pipeline).
    pub(super) fn holder_cleans_up(holder: Holder) -> bool {
        matches!(holder, Holder::Downloader(_) | Holder::Processing)
    }

    fn cancel_held(&self, holder: Holder, job: JobId) {
        match holder {
            Holder::Downloader(platform) => {
                if let Some(downloads) = self
                    .children
                    .get::<DownloadSupMsg>(PipelineChild::Downloads)
                {
                    let _ = downloads.send_message(DownloadSupMsg::Cancel(platform, job));
                }
            }
            Holder::Processing => {
                if let Some(pool) = self.children.get::<PoolMsg>(PipelineChild::Processing) {
                    let _ = pool.send_message(PoolMsg::Cancel(job));
                }
            }
            // A commit is a quick rename guarded by the lease, and a copy of an import runs
            // on a blocking thread: neither can be stopped half-way; their results are dropped
            // as stale. A parked result has nothing running.
            Holder::Storage | Holder::Stager | Holder::Pipeline => {}
        }
    }
}
