//! Which snapshots a retention policy keeps. Retention counts calendar periods in UTC,
//! newest first: the newest snapshot of each of the last `daily` days that have one, of the
//! last `weekly` ISO weeks, of the last `monthly` months. The newest snapshot is always kept.

use std::collections::BTreeSet;

use time::OffsetDateTime;

/// How many days, weeks and months keep a snapshot. All zero: prune removes nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Retention {
    pub daily: u32,
    pub weekly: u32,
    pub monthly: u32,
}

impl Retention {
    pub fn keeps_everything(&self) -> bool {
        self.daily == 0 && self.weekly == 0 && self.monthly == 0
    }
}

/// The calendar period (year, and day, week or month in it) a time falls in.
type PeriodOf = fn(OffsetDateTime) -> (i32, u32);

/// The names `retention` keeps among `snapshots` (name, time taken). A snapshot whose time
/// cannot be read is kept: nothing is removed on a guess.
pub fn retained(
    snapshots: &[(String, Option<OffsetDateTime>)],
    retention: Retention,
) -> BTreeSet<String> {
    if retention.keeps_everything() {
        return snapshots.iter().map(|(name, _)| name.clone()).collect();
    }
    let mut dated: Vec<(&String, OffsetDateTime)> = snapshots
        .iter()
        .filter_map(|(name, at)| at.map(|at| (name, at)))
        .collect();
    dated.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| b.0.cmp(a.0)));
    let mut keep: BTreeSet<String> = snapshots
        .iter()
        .filter(|(_, at)| at.is_none())
        .map(|(name, _)| name.clone())
        .collect();
    if let Some((newest, _)) = dated.first() {
        keep.insert((*newest).clone());
    }
    let periods: [(u32, PeriodOf); 3] = [
        (retention.daily, |t| (t.year(), u32::from(t.ordinal()))),
        (retention.weekly, |t| {
            let (year, week, _) = t.to_iso_week_date();
            (year, u32::from(week))
        }),
        (retention.monthly, |t| {
            (t.year(), u32::from(u8::from(t.month())))
        }),
    ];
    for (count, period_of) in periods {
        let mut seen = BTreeSet::new();
        for (name, at) in &dated {
            if seen.len() >= count as usize {
                break;
            }
            // Newest first: the first snapshot met in a period is that period's newest.
            if seen.insert(period_of(*at)) {
                keep.insert((*name).clone());
            }
        }
    }
    keep
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::format_description::well_known::Rfc3339;

    fn at(text: &str) -> Option<OffsetDateTime> {
        Some(OffsetDateTime::parse(text, &Rfc3339).unwrap())
    }

    /// Two snapshots a day, every day of 2026-10-01 .. 2026-12-01 (noon and 18:00 UTC).
    fn twice_daily() -> Vec<(String, Option<OffsetDateTime>)> {
        let mut all = Vec::new();
        let mut day = at("2026-10-01T00:00:00Z").unwrap();
        while day <= at("2026-12-01T00:00:00Z").unwrap() {
            for hour in [12, 18] {
                let t = day + time::Duration::hours(hour);
                all.push((format!("{t}"), Some(t)));
            }
            day += time::Duration::days(1);
        }
        all
    }

    #[test]
    fn the_newest_of_each_day_week_and_month_stays() {
        let all = twice_daily();
        let keep = retained(
            &all,
            Retention {
                daily: 3,
                weekly: 2,
                monthly: 3,
            },
        );
        let kept: Vec<String> = all
            .iter()
            .filter(|(n, _)| keep.contains(n))
            .map(|(_, t)| t.unwrap().to_string())
            .collect();
        let expect = [
            // the last days of October and of November (monthly)
            "2026-10-31 18:00:00.0 +00:00:00",
            // last Sunday 2026-11-29 (weekly: ISO week 48 ends on it)
            "2026-11-29 18:00:00.0 +00:00:00",
            "2026-11-30 18:00:00.0 +00:00:00",
            "2026-12-01 18:00:00.0 +00:00:00",
        ];
        assert_eq!(kept, expect);
    }

    #[test]
    fn undated_snapshots_and_the_newest_always_stay_and_zero_keeps_all() {
        let all = vec![
            ("a".to_string(), at("2026-01-01T00:00:00Z")),
            ("b".to_string(), None),
            ("c".to_string(), at("2026-01-01T01:00:00Z")),
        ];
        let keep = retained(
            &all,
            Retention {
                daily: 0,
                weekly: 0,
                monthly: 1,
            },
        );
        assert_eq!(keep, BTreeSet::from(["b".to_string(), "c".to_string()]));
        assert_eq!(retained(&all, Retention::default()).len(), 3);
    }
}
