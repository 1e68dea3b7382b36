//! Backups the service runs by itself (`actors::backups` drives them): a run per schedule
//! slot, recorded under the slot's key so that it runs once however many instances share
//! the database, or per admin request; claimed by one instance under a lease that is renewed
//! while it runs; each scheduled run followed by a prune.

use std::time::Duration;

use tokio_util::task::AbortOnDropHandle;

use super::KeepError;
use super::create::create;
use super::prune::prune;
use crate::db::Db;
use crate::db::backup_runs::{self, BackupRun, RunLease, RunOutcome};
use crate::domain::Timestamp;
use crate::settings::BackupSettings;
use crate::storage::MediaRoot;

/// A run's lease lasts this long without renewal: an instance that died mid-backup holds the
/// run back this long at most before another takes it over.
const RUN_LEASE: Duration = Duration::from_secs(60);
const RENEW_EVERY: Duration = Duration::from_secs(15);

/// The key of the schedule slot `now` falls in. Slots are aligned to the Unix epoch, so every
/// instance computes the same slot, and a changed interval starts a new series of keys.
pub fn slot_key(interval: Duration, now: Timestamp) -> String {
    let length = i64::try_from(interval.as_millis())
        .unwrap_or(i64::MAX)
        .max(1);
    let start = now.as_millis().div_euclid(length) * length;
    format!("schedule:{}s:{start}", interval.as_secs())
}

/// Records the current slot's run unless it exists; true when this call recorded it.
pub async fn enqueue_slot(db: &Db, interval: Duration, now: Timestamp) -> Result<bool, KeepError> {
    let id = uuid::Uuid::now_v7().to_string();
    let key = slot_key(interval, now);
    Ok(backup_runs::enqueue(db, &id, &key, "schedule", None, now).await?)
}

/// Records a run an admin asked for (each request its own run).
pub async fn request(db: &Db, requested_by: &str) -> Result<BackupRun, KeepError> {
    let id = uuid::Uuid::now_v7().to_string();
    let key = format!("admin:{id}");
    backup_runs::enqueue(
        db,
        &id,
        &key,
        "admin",
        Some(requested_by),
        crate::clock::now(),
    )
    .await?;
    backup_runs::get(db, &id)
        .await?
        .ok_or_else(|| KeepError::Invalid("the backup run vanished as it was recorded".into()))
}

/// Claims the next due run, if any, and runs it to the end. Answers the run as claimed and
/// what became of it.
pub async fn run_next(
    db: &Db,
    media: &MediaRoot,
    settings: &BackupSettings,
    owner: &str,
) -> Result<Option<(BackupRun, RunOutcome)>, KeepError> {
    let now = crate::clock::now();
    let Some(run) = backup_runs::claim(db, owner, now, now.plus(RUN_LEASE)).await? else {
        return Ok(None);
    };
    let lease = RunLease::from(&run);
    tracing::info!(run = %run.id, reason = %run.reason, attempt = run.attempt, "backup started");
    let renewer = AbortOnDropHandle::new(tokio::spawn(renew(db.clone(), lease.clone())));
    let outcome = match create(db, media, &settings.directory).await {
        Ok(report) => {
            if run.reason == "schedule" && !settings.retention.keeps_everything() {
                let (dir, retention) = (settings.directory.clone(), settings.retention);
                match tokio::task::spawn_blocking(move || prune(&dir, retention, false)).await {
                    Ok(Ok(pruned)) if !pruned.removed.is_empty() => {
                        tracing::info!(removed = ?pruned.removed, "old snapshots pruned")
                    }
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => tracing::warn!(error = %e, "cannot prune old snapshots"),
                    Err(e) => tracing::warn!(error = %e, "the prune task failed"),
                }
            }
            let counts = &report.manifest.counts;
            RunOutcome::Completed {
                snapshot: report.name,
                items: saturating(counts.items),
                bytes_new: saturating(counts.bytes_new),
                bytes_linked: saturating(counts.bytes_linked),
                seconds: report.seconds,
            }
        }
        Err(KeepError::Busy(reason)) => {
            tracing::info!(%reason, "backup postponed");
            RunOutcome::Postponed
        }
        Err(e) => RunOutcome::Failed {
            error: e.to_string(),
        },
    };
    drop(renewer);
    if !backup_runs::finish(db, &lease, &outcome, crate::clock::now()).await? {
        tracing::warn!(run = %run.id, "the backup run was taken over before it finished");
    }
    Ok(Some((run, outcome)))
}

fn saturating(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

async fn renew(db: Db, lease: RunLease) {
    loop {
        tokio::time::sleep(RENEW_EVERY).await;
        match backup_runs::renew(&db, &lease, crate::clock::now().plus(RUN_LEASE)).await {
            Ok(true) => {}
            Ok(false) => tracing::warn!(run = %lease.id, "the backup run's lease was lost"),
            Err(e) => {
                tracing::warn!(run = %lease.id, error = %e, "cannot renew the backup run's lease")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_instance_computes_the_same_slot() {
        let day = Duration::from_secs(86_400);
        let a = Timestamp::from_millis(1_764_590_400_000); // 2025-12-01T12:00:00Z
        let b = Timestamp::from_millis(1_764_633_599_999); // 23:59:59.999 that day
        let c = Timestamp::from_millis(1_764_633_600_000); // the next midnight
        assert_eq!(slot_key(day, a), slot_key(day, b));
        assert_ne!(slot_key(day, b), slot_key(day, c));
        assert_eq!(slot_key(day, c), "schedule:86400s:1764633600000");
    }
}
