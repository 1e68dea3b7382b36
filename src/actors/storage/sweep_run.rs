//! One storage sweep as the StorageActor runs it: read what is in use from the database, let
//! `storage::sweep` decide and remove on the blocking pool, count what was done.
//!
//! What a sweep may remove is decided in `storage::sweep`, never here; this file only gathers
//! its inputs and records its outcome.

use std::time::Duration;

use crate::context::AppContext;
use crate::metrics::{CleanupOperation, CleanupStatus, Event};
use crate::storage::sweep::{self, InUse, SweepReport, SweepRules};

/// Reads what is in use, sweeps on the blocking pool, and counts what was done.
pub(super) async fn run_sweep(ctx: &AppContext) -> Result<SweepReport, String> {
    use crate::db::{housekeeping, jobs};
    let db_error = |e: crate::db::DbError| format!("cannot read the database: {e}");
    // Read in this order: a file committed after `referenced` was read is younger than the
    // minimum age anyway.
    let in_use = InUse {
        running_attempts: housekeeping::running_attempts(&ctx.db)
            .await
            .map_err(db_error)?,
        unfinished_jobs: jobs::unfinished(&ctx.db)
            .await
            .map_err(db_error)?
            .into_iter()
            .collect(),
        referenced: housekeeping::referenced_paths(&ctx.db)
            .await
            .map_err(db_error)?,
        pending_uploads: crate::db::removal::pending_owned_uploads(&ctx.db)
            .await
            .map_err(db_error)?
            .into_iter()
            .collect(),
    };
    // Asked after `referenced` was read: a backup that took its lease after this answer read
    // the database after `referenced` too, so it names no file this sweep would move.
    let backup_running = crate::db::backup_leases::held(&ctx.db, crate::clock::now())
        .await
        .map_err(db_error)?;
    let settings = &ctx.settings.storage;
    let rules = SweepRules {
        backup_running,
        min_age: Duration::from_secs(settings.sweep_min_age_secs),
        quarantine_retention: (settings.quarantine_days > 0)
            .then(|| Duration::from_secs(settings.quarantine_days * 24 * 3600)),
    };
    let media = ctx.media.clone();
    let report = tokio::task::spawn_blocking(move || {
        // The bot may have named an upload through a symlink or with `..`; the sweep walks
        // the canonical tree.
        let in_use = InUse {
            pending_uploads: in_use
                .pending_uploads
                .iter()
                .map(|p| std::fs::canonicalize(p).unwrap_or_else(|_| p.clone()))
                .collect(),
            ..in_use
        };
        sweep::sweep(&media, &in_use, &rules)
    })
    .await
    .map_err(|e| format!("the sweep task failed: {e}"))?;
    for (operation, count) in [
        (CleanupOperation::Temp, report.temp),
        (CleanupOperation::Temp, report.uploads),
        (CleanupOperation::Resume, report.resume),
        (CleanupOperation::Orphan, report.orphans),
        (CleanupOperation::QuarantinePurge, report.quarantine_purged),
    ] {
        for (status, n) in [
            (operation.done(), count.done),
            (CleanupStatus::Failed, count.failed),
        ] {
            if n > 0 {
                ctx.observe(Event::Cleanup {
                    operation,
                    status,
                    count: n,
                });
            }
        }
    }
    Ok(report)
}
