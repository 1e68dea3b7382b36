//! How old an installed yt-dlp is. Sites change their pages every few weeks and yt-dlp follows
//! them in new releases, so an old install is the usual cause of 403s and signature errors.
//! yt-dlp numbers its releases by their date (`2026.10.26`; hotfixes `2026.10.26.1`,
//! nightlies `2026.10.26.233012`), so the version alone tells the age, with no network.

use time::{Date, Month};

use crate::domain::Timestamp;

/// The release date a yt-dlp version names, or `None` for a version that is not a date
/// (a build from source, a fork with its own numbering).
pub fn release_date(version: &str) -> Option<Date> {
    // `yt-dlp --version` prints the bare version; tolerate a prefix such as `stable@`.
    let version = version.trim().rsplit('@').next()?;
    let mut parts = version.split('.');
    let year: i32 = parts.next()?.parse().ok()?;
    let month: u8 = parts.next()?.parse().ok()?;
    let day: u8 = parts.next()?.parse().ok()?;
    if !(2000..=9999).contains(&year) {
        return None;
    }
    Date::from_calendar_date(year, Month::try_from(month).ok()?, day).ok()
}

/// What the age of the installed yt-dlp means for the operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Freshness {
    pub version: String,
    /// Whole days since the release, `None` when the version is not a date.
    pub age_days: Option<i64>,
    /// Past `download.ytdlp_warn_age_days` (never when that is 0 or the age is unknown).
    pub stale: bool,
}

impl Freshness {
    /// Judges `version` at `now` against the configured limit (0: never warn).
    pub fn judge(version: &str, now: Timestamp, warn_age_days: u64) -> Self {
        let today = crate::clock::datetime(now).date();
        let age_days = release_date(version).map(|date| (today - date).whole_days().max(0));
        let stale = warn_age_days > 0
            && age_days.is_some_and(|age| u64::try_from(age).unwrap_or(0) > warn_age_days);
        Self {
            version: version.to_string(),
            age_days,
            stale,
        }
    }

    /// The version with its age, as doctor and readiness show it.
    pub fn describe(&self) -> String {
        match self.age_days {
            Some(1) => format!("{} (released 1 day ago)", self.version),
            Some(days) => format!("{} (released {days} days ago)", self.version),
            None => format!("{} (release date unknown)", self.version),
        }
    }

    /// The operator's warning when the install is stale.
    pub fn warning(&self, warn_age_days: u64) -> Option<String> {
        self.stale.then(|| {
            format!(
                "yt-dlp {} is {} days old (download.ytdlp_warn_age_days = {warn_age_days}); \
                 sites change often and an old yt-dlp fails on them: run `prsnl tools update`",
                self.version,
                self.age_days.unwrap_or_default(),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(date: &str) -> Timestamp {
        let date = Date::parse(
            date,
            time::macros::format_description!("[year]-[month]-[day]"),
        )
        .unwrap();
        let nanos = date.midnight().assume_utc().unix_timestamp_nanos();
        Timestamp::from_millis((nanos / 1_000_000) as i64 + 3_600_000)
    }

    #[test]
    fn versions_name_their_release_date() {
        let oct26 = Date::from_calendar_date(2026, Month::October, 26).unwrap();
        for version in [
            "2026.10.26",
            "2026.10.26.1",
            "2026.10.26.233012",
            "stable@2026.10.26",
            " 2026.10.26\n",
        ] {
            assert_eq!(release_date(version), Some(oct26), "{version:?}");
        }
        let jan5 = Date::from_calendar_date(2025, Month::January, 5).unwrap();
        assert_eq!(release_date("2025.1.5"), Some(jan5));
        for not_a_date in [
            "",
            "1.2.3",
            "2026.13.01",
            "2026.02.30",
            "abc",
            "2026.10",
            "master",
        ] {
            assert_eq!(release_date(not_a_date), None, "{not_a_date:?}");
        }
    }

    #[test]
    fn an_install_older_than_the_limit_is_stale() {
        let now = at("2026-11-30");
        let fresh = Freshness::judge("2026.10.26", now, 60);
        assert_eq!(fresh.age_days, Some(35));
        assert!(!fresh.stale);
        assert_eq!(fresh.warning(60), None);
        assert_eq!(fresh.describe(), "2026.10.26 (released 35 days ago)");

        let old = Freshness::judge("2025.01.15", now, 60);
        assert_eq!(old.age_days, Some(684));
        assert!(old.stale);
        let warning = old.warning(60).unwrap();
        assert!(warning.contains("684 days old"), "{warning}");
        assert!(warning.contains("prsnl tools update"), "{warning}");

        // The limit itself is not yet stale; 0 never warns; an unknown age never warns.
        assert!(!Freshness::judge("2026.10.01", now, 60).stale);
        assert!(Freshness::judge("2026.09.30", now, 60).stale);
        assert!(!Freshness::judge("2020.01.01", now, 0).stale);
        let unknown = Freshness::judge("master", now, 60);
        assert_eq!((unknown.age_days, unknown.stale), (None, false));
        assert_eq!(unknown.describe(), "master (release date unknown)");
        // A clock behind the release date does not give a negative age.
        assert_eq!(Freshness::judge("2027.01.01", now, 60).age_days, Some(0));
    }
}
