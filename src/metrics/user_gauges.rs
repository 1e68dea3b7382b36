//! Per-user storage gauges: `prsnl_user_usage_bytes` and `prsnl_user_quota_bytes`, labelled
//! by user id (never by name: `/metrics` shows no names), for at most [`MAX_USER_SERIES`]
//! users, those using the most. Users left out are counted in
//! `prsnl_user_series_dropped`, so a dashboard can tell that the list is cut.

use std::collections::HashSet;
use std::sync::Mutex;

use prometheus::{IntGauge, IntGaugeVec, Opts, Registry};

/// The most users with series of their own (a label per user grows the scrape with them).
pub const MAX_USER_SERIES: usize = 100;

/// One user's figures, as the refresh reads them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserFigures {
    pub id: String,
    pub usage_bytes: u64,
    pub quota_bytes: Option<u64>,
}

pub struct UserGauges {
    usage: IntGaugeVec,
    quota: IntGaugeVec,
    dropped: IntGauge,
    /// The ids that have series now, to remove those of users gone since.
    exported: Mutex<HashSet<String>>,
}

impl UserGauges {
    pub fn register(registry: &Registry) -> Self {
        let usage = IntGaugeVec::new(
            Opts::new(
                "prsnl_user_usage_bytes",
                "Bytes a user keeps (their items' files, thumbnails and renditions), by user id.",
            ),
            &["user"],
        )
        .expect("valid metric");
        let quota = IntGaugeVec::new(
            Opts::new(
                "prsnl_user_quota_bytes",
                "A user's storage quota, by user id (users without a quota have no series).",
            ),
            &["user"],
        )
        .expect("valid metric");
        let dropped = IntGauge::new(
            "prsnl_user_series_dropped",
            "Users without per-user series because more than 100 users exist (the smallest are left out).",
        )
        .expect("valid metric");
        for collector in [
            Box::new(usage.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(quota.clone()),
            Box::new(dropped.clone()),
        ] {
            registry
                .register(collector)
                .expect("metric registered once");
        }
        Self {
            usage,
            quota,
            dropped,
            exported: Mutex::new(HashSet::new()),
        }
    }

    /// Sets the series of the largest users (`users` in any order) and removes the series
    /// of users no longer among them.
    pub fn set(&self, mut users: Vec<UserFigures>) {
        users.sort_by(|a, b| b.usage_bytes.cmp(&a.usage_bytes).then(a.id.cmp(&b.id)));
        let dropped = users.len().saturating_sub(MAX_USER_SERIES);
        users.truncate(MAX_USER_SERIES);
        let mut exported = self.exported.lock().unwrap_or_else(|e| e.into_inner());
        let now: HashSet<String> = users.iter().map(|u| u.id.clone()).collect();
        for gone in exported.difference(&now) {
            let _ = self.usage.remove_label_values(&[gone]);
            let _ = self.quota.remove_label_values(&[gone]);
        }
        for user in &users {
            self.usage
                .with_label_values(&[&user.id])
                .set(i64::try_from(user.usage_bytes).unwrap_or(i64::MAX));
            match user.quota_bytes {
                Some(quota) => self
                    .quota
                    .with_label_values(&[&user.id])
                    .set(i64::try_from(quota).unwrap_or(i64::MAX)),
                None => {
                    let _ = self.quota.remove_label_values(&[&user.id]);
                }
            }
        }
        self.dropped.set(i64::try_from(dropped).unwrap_or(i64::MAX));
        *exported = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn figures(id: usize, usage_bytes: u64, quota_bytes: Option<u64>) -> UserFigures {
        UserFigures {
            id: format!("user-{id:03}"),
            usage_bytes,
            quota_bytes,
        }
    }

    fn series(registry: &Registry, name: &str) -> Vec<(String, i64)> {
        registry
            .gather()
            .into_iter()
            .filter(|family| family.name() == name)
            .flat_map(|family| family.get_metric().to_vec())
            .map(|m| {
                let label = m
                    .get_label()
                    .first()
                    .map(|l| l.value().to_string())
                    .unwrap_or_default();
                (label, m.get_gauge().get_value() as i64)
            })
            .collect()
    }

    #[test]
    fn only_the_largest_users_get_series_and_the_rest_are_counted() {
        let registry = Registry::new();
        let gauges = UserGauges::register(&registry);
        let users: Vec<UserFigures> = (0..MAX_USER_SERIES + 5)
            .map(|i| figures(i, i as u64 * 10, (i % 2 == 0).then_some(1000)))
            .collect();
        gauges.set(users);
        let usage = series(&registry, "prsnl_user_usage_bytes");
        assert_eq!(usage.len(), MAX_USER_SERIES);
        // The five smallest (users 0..5) are the ones left out.
        assert!(
            usage.iter().all(|(id, _)| id.as_str() >= "user-005"),
            "{usage:?}"
        );
        assert_eq!(
            series(&registry, "prsnl_user_series_dropped"),
            vec![(String::new(), 5)]
        );
        let quotas = series(&registry, "prsnl_user_quota_bytes");
        assert_eq!(quotas.len(), MAX_USER_SERIES / 2);
        assert!(quotas.iter().all(|(_, quota)| *quota == 1000));
    }

    #[test]
    fn a_user_gone_or_without_a_quota_loses_their_series() {
        let registry = Registry::new();
        let gauges = UserGauges::register(&registry);
        gauges.set(vec![figures(1, 10, Some(100)), figures(2, 20, Some(100))]);
        gauges.set(vec![figures(1, 15, None)]);
        assert_eq!(
            series(&registry, "prsnl_user_usage_bytes"),
            vec![("user-001".to_string(), 15)]
        );
        assert!(series(&registry, "prsnl_user_quota_bytes").is_empty());
        assert_eq!(
            series(&registry, "prsnl_user_series_dropped"),
            vec![(String::new(), 0)]
        );
    }
}
