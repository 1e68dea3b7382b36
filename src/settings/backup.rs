//! The `[backup]` section: where snapshots go, how often the service takes one, and what a
//! prune keeps; and the `[export]` section: where the readable copy goes and how it is named.

use super::SettingsError;
use super::raw::{RawBackup, RawExport};
use super::sections::{BackupSettings, ExportSettings};
use crate::domain::export_name::NamePattern;
use crate::domain::retention::Retention;

pub(super) fn export(raw: RawExport) -> Result<ExportSettings, SettingsError> {
    Ok(ExportSettings {
        directory: raw.directory,
        pattern: NamePattern::parse(&raw.pattern)
            .map_err(|e| SettingsError::invalid("export.pattern", e))?,
    })
}

pub(super) fn backup(raw: RawBackup) -> Result<BackupSettings, SettingsError> {
    if raw.interval_secs != 0 && raw.interval_secs < 60 {
        return Err(SettingsError::invalid(
            "backup.interval_secs",
            format!(
                "{} is below 60 seconds (0 turns scheduled backups off)",
                raw.interval_secs
            ),
        ));
    }
    Ok(BackupSettings {
        directory: raw.directory,
        interval: (raw.interval_secs > 0)
            .then(|| std::time::Duration::from_secs(raw.interval_secs)),
        retention: Retention {
            daily: raw.keep_daily,
            weekly: raw.keep_weekly,
            monthly: raw.keep_monthly,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(interval_secs: u64) -> RawBackup {
        RawBackup {
            directory: "b".into(),
            interval_secs,
            keep_daily: 7,
            keep_weekly: 0,
            keep_monthly: 1,
        }
    }

    #[test]
    fn an_export_pattern_is_checked_when_loaded() {
        let raw = |pattern: &str| RawExport {
            directory: "e".into(),
            pattern: pattern.into(),
        };
        assert!(export(raw("{platform}/{date} {title} [{id}]")).is_ok());
        let refused = export(raw("{title}")).unwrap_err().to_string();
        assert!(
            refused.contains("export.pattern") && refused.contains("{id}"),
            "{refused}"
        );
    }

    #[test]
    fn an_interval_is_off_or_at_least_a_minute() {
        assert_eq!(backup(raw(0)).unwrap().interval, None);
        assert_eq!(
            backup(raw(86_400)).unwrap().interval,
            Some(std::time::Duration::from_secs(86_400))
        );
        let refused = backup(raw(59)).unwrap_err().to_string();
        assert!(refused.contains("backup.interval_secs"), "{refused}");
        assert_eq!(backup(raw(60)).unwrap().retention.monthly, 1);
    }
}
