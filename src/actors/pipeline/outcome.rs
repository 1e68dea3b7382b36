//! How an attempt ends, the same for every kind of job: completed, retried with backoff,
//! failed for good, or postponed uncharged (a refusing platform, one of our actors
//! restarting). Each is one compare-and-set on the job (`db::jobs`), then one shared tail
//! (`settle`): a recorded change is told to followers and counted, a lost lease or a
//! database failure is logged, and the attempt's slot and work directory are freed.

use std::time::Duration;

use ractor::ActorRef;

use super::in_flight::Running;
use super::output::Output;
use super::{PipelineMsg, PipelineState};
use crate::actors::storage::FileKind;
use crate::clock;
use crate::context::ItemChange;
use crate::db::DbError;
use crate::db::imports::ImportPayload;
use crate::db::jobs::{ClaimedJob, Lease};
use crate::db::outcome::{self, Charge, Completed, Effect, Requeue};
use crate::db::renditions::Rendition;
use crate::domain::job::{AfterFailure, after_failure};
use crate::domain::{ErrorCode, ItemStatus, JobError, JobKind, Platform, Timestamp};
use crate::metrics::{Event, JobOutcome};

impl PipelineState {
    /// Storage confirmed the commit: the job completes, with its item or rendition, in one
    /// transaction fenced by the lease.
    pub(super) async fn complete(&mut self, myself: &ActorRef<PipelineMsg>, lease: &Lease) {
        let Some(mut running) = self.take_running(myself, lease) else {
            return;
        };
        let now = clock::now();
        let item = running.item.id;
        // What the commit put in the tree, to take out again if the quota refuses it (a
        // capture sharing a stored twin's files committed none).
        let committed: Vec<(String, FileKind)> = match (&running.output, &running.shared) {
            (Some(output), None) => output
                .commit_files(&running.item.paths, running.quality)
                .unwrap_or_default()
                .into_iter()
                .map(|file| (file.relative, file.kind))
                .collect(),
            _ => Vec::new(),
        };
        let recorded = match (running.output.take(), running.quality) {
            (Some(Output::Item(output)), _) => {
                let completion = output.completion(
                    running.title.take(),
                    std::mem::take(&mut running.source_meta),
                    running.announced_height,
                    running.shared.take(),
                );
                if !completion.warnings.is_empty() {
                    self.ctx.observe(Event::DownloadThrottled {
                        platform: running.platform,
                    });
                }
                let effect = Effect::Captured {
                    item,
                    completion: &completion,
                };
                outcome::complete(&self.ctx.db, lease, effect, now).await
            }
            (Some(Output::Rendition(made)), Some(quality)) => {
                let rendition = Rendition {
                    item_id: item,
                    quality,
                    path: running.item.paths.rendition(quality),
                    width: made.width,
                    height: made.height,
                    size_bytes: made.size_bytes,
                    sha256: made.sha256,
                    created_at: now,
                };
                outcome::complete(&self.ctx.db, lease, Effect::Rendered(&rendition), now).await
            }
            _ => {
                tracing::error!(job = %lease.job, item = %lease.item, "commit confirmed for a job that was never processed");
                return;
            }
        };
        let recorded = match recorded {
            Ok(Completed::OverQuota(standing)) => {
                return self
                    .refuse_over_quota(myself, running, committed, standing)
                    .await;
            }
            Ok(Completed::TwinGone) => {
                tracing::warn!(job = %lease.job, item = %lease.item, "the identical stored video was deleted before this one could share it; trying again");
                return self
                    .try_again_uncharged(myself, running, None, Duration::ZERO)
                    .await;
            }
            Ok(Completed::Recorded) => Ok(true),
            Ok(Completed::LostLease) => Ok(false),
            Err(e) => Err(e),
        };
        if recorded.is_ok()
            && let Some(platform) = running.job.platform
        {
            self.platform_answered(platform).await;
        }
        self.settle(&running, JobOutcome::Completed, None, recorded);
        self.finished(myself, running);
    }

    /// An attempt failed: retry with backoff when the error is transient and attempts remain,
    /// otherwise fail the job for good (kept, with its reason).
    pub(super) async fn fail_attempt(
        &mut self,
        myself: &ActorRef<PipelineMsg>,
        lease: &Lease,
        error: JobError,
    ) {
        let Some(running) = self.take_running(myself, lease) else {
            return;
        };
        let subject = running.subject();
        let now = clock::now();
        if error.code == ErrorCode::RateLimited
            && let Some(platform) = running.job.platform
        {
            let until = self.trip_breaker(platform, &error, now).await;
            self.postpone(&running, Some(&error), until, now).await;
            return self.finished(myself, running);
        }
        // Out of space because something else filled the disk (the attempt's own files, about
        // to be removed, do not count): not the job's fault either. It waits, uncharged, and
        // claiming resumes once space is freed.
        if error.code == ErrorCode::DiskFull && self.short_of_space_without(&running) {
            tracing::warn!(job = %lease.job, item = %subject.item, "out of space below storage.min_free_mb; the attempt waits, uncharged");
            return self
                .try_again_uncharged(myself, running, Some(&error), Duration::from_secs(5))
                .await;
        }
        // One of our own actors was restarting: not the job's fault, so it waits, uncharged,
        // for the supervisor to bring it back, rather than spending an attempt on the restart.
        if error.code == ErrorCode::Unavailable {
            return self
                .try_again_uncharged(myself, running, Some(&error), Duration::from_secs(1))
                .await;
        }
        let decision = after_failure(
            lease.attempt,
            running.job.max_attempts,
            &error,
            &self.ctx.settings.retry_policy(running.job.platform),
            rand::random(),
        );
        let (outcome, recorded) = match decision {
            AfterFailure::Retry { after } => {
                tracing::warn!(job = %lease.job, item = %subject.item, attempt = lease.attempt, code = %error.code, message = %error.message, retry_in = ?after, "attempt failed; retrying");
                if !self.draining {
                    myself.send_after(after, || PipelineMsg::Wake);
                }
                let requeue = Requeue {
                    run_after: now.plus(after),
                    reason: Some(&error),
                    charge: Charge::Charged,
                };
                (
                    JobOutcome::Retried,
                    outcome::requeue(&self.ctx.db, lease, subject, requeue, now).await,
                )
            }
            AfterFailure::Fail => {
                tracing::warn!(job = %lease.job, item = %subject.item, attempt = lease.attempt, code = %error.code, message = %error.message, "job failed");
                (
                    JobOutcome::Failed,
                    outcome::fail(&self.ctx.db, lease, subject, &error, now).await,
                )
            }
        };
        self.settle(&running, outcome, Some(&error), recorded);
        self.finished(myself, running);
    }

    /// Puts the attempt back in the queue until `until`, uncharged, telling followers why
    /// (`reason`; `None` keeps the job's last error as it was).
    async fn postpone(
        &self,
        running: &Running,
        reason: Option<&JobError>,
        until: Timestamp,
        now: Timestamp,
    ) {
        let requeue = Requeue {
            run_after: until,
            reason,
            charge: Charge::Uncharged,
        };
        let recorded = outcome::requeue(
            &self.ctx.db,
            running.lease(),
            running.subject(),
            requeue,
            now,
        )
        .await;
        self.settle(running, JobOutcome::Postponed, reason, recorded);
    }

    /// Puts the attempt back in the queue, uncharged, to run again after `wait`, and wakes
    /// the claim then: it was not the job's fault (an actor of ours restarting, a disk filled
    /// by someone else, a twin being fetched or gone before its commit).
    pub(super) async fn try_again_uncharged(
        &mut self,
        myself: &ActorRef<PipelineMsg>,
        running: Running,
        reason: Option<&JobError>,
        wait: Duration,
    ) {
        let now = clock::now();
        self.postpone(&running, reason, now.plus(wait), now).await;
        if !self.draining {
            myself.send_after(wait, || PipelineMsg::Wake);
        }
        self.finished(myself, running);
    }

    /// The end every recorded outcome shares, whatever the job's kind: a change that was
    /// recorded is told to the item's followers (for jobs that move their item) and counted;
    /// a job finished for good drops the upload it imported; a lost lease or a database
    /// failure is logged (the job is then another attempt's, or re-run once its lease
    /// expires).
    pub(super) fn settle(
        &self,
        running: &Running,
        outcome: JobOutcome,
        error: Option<&JobError>,
        recorded: Result<bool, DbError>,
    ) {
        let (lease, subject) = (running.lease(), running.subject());
        match recorded {
            Ok(true) => {
                if outcome == JobOutcome::Completed {
                    tracing::info!(job = %lease.job, item = %subject.item, kind = subject.kind.as_str(), "job completed");
                }
                if matches!(outcome, JobOutcome::Completed | JobOutcome::Failed) {
                    self.discard_owned_upload(&running.job);
                }
                let status = match outcome {
                    JobOutcome::Completed => Some(ItemStatus::Completed),
                    JobOutcome::Failed => Some(ItemStatus::Failed),
                    JobOutcome::Retried | JobOutcome::Postponed => Some(ItemStatus::Queued),
                    JobOutcome::Released | JobOutcome::Cancelled => None,
                };
                if let Some(status) = status.filter(|_| subject.kind.makes_item()) {
                    let error = error.cloned();
                    self.ctx
                        .publish(subject.item, ItemChange::Status { status, error });
                }
                self.ctx.observe(Event::JobFinished {
                    kind: subject.kind,
                    quality: running.quality,
                    outcome,
                    code: error.map(|e| e.code),
                });
            }
            Ok(false) => {
                tracing::warn!(job = %lease.job, item = %lease.item, outcome = outcome.as_str(), "lost the lease before recording the outcome; another attempt owns the job")
            }
            Err(e) => {
                tracing::error!(job = %lease.job, item = %lease.item, outcome = outcome.as_str(), error = %e, "cannot record the outcome of an attempt; the lease will expire and the job re-run")
            }
        }
    }

    /// The platform refused a download: open (or keep open) its breaker. Returns when the
    /// platform may be tried again.
    async fn trip_breaker(
        &mut self,
        platform: Platform,
        error: &JobError,
        now: Timestamp,
    ) -> Timestamp {
        let policy = self.ctx.settings.platforms.get(platform);
        let breaker = self.breakers.entry(platform).or_default();
        let was_closed = breaker.is_closed();
        let until = breaker.trip(
            now.as_millis(),
            Duration::from_secs(policy.breaker_base_secs.get()),
            Duration::from_secs(policy.breaker_max_secs),
            rand::random(),
        );
        let breaker = *breaker;
        if let Err(e) =
            crate::db::breakers::save(&self.ctx.db, platform, &breaker, Some(&error.message), now)
                .await
        {
            tracing::error!(%platform, error = %e, "cannot persist the circuit breaker");
        }
        let until = Timestamp::from_millis(until);
        if was_closed {
            let pause = until.since(now);
            tracing::warn!(%platform, pause = ?pause, reason = %error.message, "circuit breaker opened: the platform is refusing downloads");
        }
        until
    }

    /// A download of `platform` went through: its breaker (if open) closes.
    async fn platform_answered(&mut self, platform: Platform) {
        let Some(breaker) = self.breakers.get_mut(&platform).filter(|b| !b.is_closed()) else {
            return;
        };
        breaker.reset();
        let breaker = *breaker;
        tracing::info!(%platform, "circuit breaker closed: the platform answers again");
        let saved = crate::db::breakers::save(&self.ctx.db, platform, &breaker, None, clock::now());
        if let Err(e) = saved.await {
            tracing::error!(%platform, error = %e, "cannot persist the circuit breaker");
        }
    }

    /// An import job is finished for good: the file it imported, if the service owns it (an
    /// upload), is no longer needed by anyone. Removed off the actor's thread.
    pub(super) fn discard_owned_upload(&self, job: &ClaimedJob) {
        if job.kind != JobKind::Import {
            return;
        }
        let Some(payload) = ImportPayload::parse(job.payload.as_deref()).filter(|p| p.owned) else {
            return;
        };
        let media = self.ctx.media.clone();
        tokio::task::spawn_blocking(move || {
            crate::storage::import::discard_owned(&media, &payload)
        });
    }

    /// Takes an attempt out of the table. Identical videos that waited for its commit go
    /// back through `processed`: they now find its stored files, or one of them commits.
    pub(super) fn take_running(
        &mut self,
        myself: &ActorRef<PipelineMsg>,
        lease: &Lease,
    ) -> Option<Running> {
        let running = self.in_flight.remove(lease)?;
        for (waiter, processed) in self.content.release(lease.job) {
            let _ = myself.send_message(PipelineMsg::Processed {
                lease: waiter,
                result: Ok(processed),
            });
        }
        Some(running)
    }

    /// An attempt that ended here is over: its work directory goes, its slot is free.
    pub(super) fn finished(&mut self, myself: &ActorRef<PipelineMsg>, running: Running) {
        self.handles.storage.discard_work_dir(running.work_dir);
        self.slot_freed(myself);
    }

    /// An attempt left the table: finish a drain, or use the freed slot.
    pub(super) fn slot_freed(&mut self, myself: &ActorRef<PipelineMsg>) {
        if self.draining {
            if self.in_flight.is_empty()
                && let Some(reply) = self.drain_reply.take()
            {
                let _ = reply.send(());
            }
        } else {
            let _ = myself.send_message(PipelineMsg::Wake);
        }
    }
}
