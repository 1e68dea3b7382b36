//! Which content this Pipeline is committing right now.
//!
//! Identical videos (the same sha256) that finish processing at the same moment would each
//! find no stored twin and store a copy of their own. The first to finish claims the content
//! and commits; the others wait here until it has left the table, then look again and find
//! its files. Across instances sharing a database the race remains, and costs only a
//! second copy.

use std::collections::HashMap;

use crate::db::jobs::Lease;
use crate::domain::JobId;

/// `T` is the parked work (the Pipeline's processed result).
#[derive(Debug)]
pub struct ContentClaims<T> {
    owners: HashMap<String, JobId>,
    waiting: HashMap<String, Vec<(Lease, T)>>,
}

impl<T> Default for ContentClaims<T> {
    fn default() -> Self {
        Self {
            owners: HashMap::new(),
            waiting: HashMap::new(),
        }
    }
}

impl<T> ContentClaims<T> {
    /// Claims `sha256` for `lease`'s job and hands `processed` back, or parks it behind the
    /// job that is committing the same content (`None`). A claim whose owner is no longer
    /// running (`is_running` says no) is stale and taken over.
    pub fn claim_or_wait(
        &mut self,
        sha256: &str,
        lease: &Lease,
        processed: T,
        is_running: impl Fn(JobId) -> bool,
    ) -> Option<T> {
        match self.owners.get(sha256) {
            Some(&owner) if owner != lease.job && is_running(owner) => {
                self.waiting
                    .entry(sha256.to_string())
                    .or_default()
                    .push((lease.clone(), processed));
                None
            }
            _ => {
                self.owners.insert(sha256.to_string(), lease.job);
                Some(processed)
            }
        }
    }

    /// Drops the claims of `job` and returns the work that waited behind them.
    pub fn release(&mut self, job: JobId) -> Vec<(Lease, T)> {
        let released: Vec<String> = self
            .owners
            .iter()
            .filter(|(_, owner)| **owner == job)
            .map(|(sha, _)| sha.clone())
            .collect();
        let mut woken = Vec::new();
        for sha in released {
            self.owners.remove(&sha);
            woken.extend(self.waiting.remove(&sha).unwrap_or_default());
        }
        woken
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ItemId;

    fn lease() -> Lease {
        Lease {
            job: JobId::new(),
            attempt: 1,
            owner: "test".into(),
            item: ItemId::new(),
        }
    }

    #[test]
    fn the_first_claims_and_the_rest_wait_until_it_is_released() {
        let mut claims = ContentClaims::default();
        let (first, second, third) = (lease(), lease(), lease());
        let running = |_| true;
        assert_eq!(claims.claim_or_wait("aa", &first, 1, running), Some(1));
        assert_eq!(claims.claim_or_wait("aa", &second, 2, running), None);
        assert_eq!(claims.claim_or_wait("aa", &third, 3, running), None);
        // Other content is not held up.
        assert_eq!(claims.claim_or_wait("bb", &second, 4, running), Some(4));
        let woken = claims.release(first.job);
        assert_eq!(woken, vec![(second.clone(), 2), (third.clone(), 3)]);
        assert!(claims.release(first.job).is_empty());
        // Woken work claims afresh: one of them commits, the other waits again.
        assert_eq!(claims.claim_or_wait("aa", &second, 2, running), Some(2));
        assert_eq!(claims.claim_or_wait("aa", &third, 3, running), None);
    }

    #[test]
    fn a_claim_whose_owner_is_gone_is_taken_over() {
        let mut claims = ContentClaims::default();
        let (gone, next) = (lease(), lease());
        assert_eq!(claims.claim_or_wait("aa", &gone, 1, |_| true), Some(1));
        assert_eq!(
            claims.claim_or_wait("aa", &next, 2, |job| job != gone.job),
            Some(2)
        );
        assert!(claims.release(gone.job).is_empty());
    }

    #[test]
    fn a_job_presenting_its_own_claim_again_keeps_it() {
        let mut claims = ContentClaims::default();
        let only = lease();
        assert_eq!(claims.claim_or_wait("aa", &only, 1, |_| true), Some(1));
        assert_eq!(claims.claim_or_wait("aa", &only, 2, |_| true), Some(2));
    }
}
