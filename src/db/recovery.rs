//! Recovery of jobs whose worker is gone: this process's own leases after a restart, and
//! other processes' leases that expired. A process crash (power loss, the OOM killer, a
//! deploy) is not the job's fault: the job is queued again (`worker_lost`) and gets the lost
//! attempt back (its `max_attempts` grows by one, its crashes are counted). The attempt
//! number itself keeps growing: it fences stale attempts and names work directories, so it
//! must never repeat. A job that was running at `max_crashes` crashes probably causes them,
//! and fails with `crash_loop`.

use super::jobs::{self, Orphan};
use super::outcome::{Charge, Requeue, fail_in, requeue_in};
use super::{Db, DbError};
use crate::domain::{ErrorCode, JobError, JobId, Timestamp};

/// What recovery did with jobs whose worker is gone.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recovery {
    pub requeued: Vec<JobId>,
    pub failed: Vec<JobId>,
}

/// Jobs leased by `owner` whose worker is gone: everything it held before this process's
/// PipelineActor started (an earlier boot, or the same boot before the actor restarted).
pub async fn recover_owned(
    db: &Db,
    owner: &str,
    max_crashes: u32,
    now: Timestamp,
) -> Result<Recovery, DbError> {
    let orphans = jobs::running_of(db, owner).await?;
    recover(db, orphans, now, None, max_crashes).await
}

/// Jobs of other processes whose lease ran out (the process died, or lost the database).
/// Each is first taken over with a compare-and-set that requires the lease to still be
/// expired and hands it to `recoverer`: if the old owner renews at the same moment, one of
/// the two wins, and a loser that renews later learns it lost the job. This process's own
/// jobs are never taken: it renews what it runs, and recovers the rest when it restarts.
pub async fn recover_expired(
    db: &Db,
    recoverer: &str,
    max_crashes: u32,
    now: Timestamp,
) -> Result<Recovery, DbError> {
    let orphans = jobs::expired(db, recoverer, now).await?;
    recover(db, orphans, now, Some(recoverer), max_crashes).await
}

async fn recover(
    db: &Db,
    orphans: Vec<Orphan>,
    now: Timestamp,
    take_over_as: Option<&str>,
    max_crashes: u32,
) -> Result<Recovery, DbError> {
    let mut report = Recovery::default();
    let lost = JobError::new(
        ErrorCode::WorkerLost,
        "the worker running this job stopped before finishing it",
    );
    for Orphan {
        mut lease,
        subject,
        crashes,
        ..
    } in orphans
    {
        let mut tx = db.begin_write().await?;
        if let Some(recoverer) = take_over_as {
            let marker = format!("recovering:{recoverer}");
            if !jobs::take_over(&mut tx, &lease, &marker, now).await? {
                continue; // renewed, finished or recovered by someone else meanwhile
            }
            lease.owner = marker;
        }
        let crashes = crashes + 1;
        let requeued = crashes < max_crashes;
        let done = if requeued {
            // Counted as an attempt (the number moves on); `count_crash` gives it back.
            let requeue = Requeue {
                run_after: now,
                reason: Some(&lost),
                charge: Charge::Charged,
            };
            requeue_in(&mut tx, &lease, subject, requeue, now).await?
        } else {
            let looping = JobError::new(
                ErrorCode::CrashLoop,
                format!(
                    "the service stopped {crashes} times while running this job \
                     (queue.max_crashes); it is not tried again"
                ),
            );
            fail_in(&mut tx, &lease, subject, &looping, now).await?
        };
        if done {
            jobs::count_crash(&mut tx, lease.job).await?;
        }
        if done {
            tx.commit().await?;
            if requeued {
                report.requeued.push(lease.job)
            } else {
                report.failed.push(lease.job)
            }
        }
    }
    Ok(report)
}
