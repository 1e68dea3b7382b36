//! A backup's lease in the database (`db::backup_leases`): taken before the dump is read,
//! renewed while files are copied, released at the end. While it holds, no running instance
//! removes a deleted item's files or sweeps orphans, so every file the dump names stays on
//! disk until it is copied. If renewing fails for longer than the lease lasts, the backup
//! cannot trust what it copies after that and fails.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio_util::task::AbortOnDropHandle;

use super::KeepError;
use crate::db::{Db, backup_leases};

/// How long a lease lasts without renewal: a backup killed mid-way holds removals back this
/// long at most.
const TERM: Duration = Duration::from_secs(60);
const RENEW_EVERY: Duration = Duration::from_secs(15);

pub(super) struct BackupLease {
    db: Db,
    id: String,
    lapsed: Arc<AtomicBool>,
    _renewer: AbortOnDropHandle<()>,
}

impl BackupLease {
    pub(super) async fn take(db: &Db) -> Result<Self, KeepError> {
        let id = uuid::Uuid::now_v7().to_string();
        let holder = format!(
            "{} pid {}",
            nix::unistd::gethostname()
                .ok()
                .and_then(|h| h.into_string().ok())
                .unwrap_or_default(),
            std::process::id()
        );
        let now = crate::clock::now();
        backup_leases::take(db, &id, &holder, now, now.plus(TERM)).await?;
        let lapsed = Arc::new(AtomicBool::new(false));
        let renewer = tokio::spawn(renew(db.clone(), id.clone(), Arc::clone(&lapsed)));
        Ok(Self {
            db: db.clone(),
            id,
            lapsed,
            _renewer: AbortOnDropHandle::new(renewer),
        })
    }

    /// Whether the lease held without a gap so far.
    pub(super) fn check(&self) -> Result<(), KeepError> {
        if self.lapsed.load(Ordering::SeqCst) {
            return Err(KeepError::LeaseLost(
                "the backup could not renew its lease in the database for longer than the \
                 lease lasts, so files may have been removed while it copied; run it again"
                    .into(),
            ));
        }
        Ok(())
    }

    pub(super) async fn release(self) {
        if let Err(e) = backup_leases::release(&self.db, &self.id).await {
            tracing::warn!(error = %e, "cannot release the backup's lease; it expires by itself");
        }
    }
}

async fn renew(db: Db, id: String, lapsed: Arc<AtomicBool>) {
    let mut last_renewed = tokio::time::Instant::now();
    loop {
        tokio::time::sleep(RENEW_EVERY).await;
        let now = crate::clock::now();
        match backup_leases::renew(&db, &id, now.plus(TERM)).await {
            Ok(true) => last_renewed = tokio::time::Instant::now(),
            Ok(false) => {
                lapsed.store(true, Ordering::SeqCst);
                tracing::error!("the backup's lease was removed from the database");
            }
            Err(e) => tracing::warn!(error = %e, "cannot renew the backup's lease"),
        }
        if last_renewed.elapsed() >= TERM {
            lapsed.store(true, Ordering::SeqCst);
        }
    }
}
