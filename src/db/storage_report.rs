//! What the admin's storage report shows: usage by user and by platform, and the daily
//! usage history that the storage side records once a day (`usage_history`).
//!
//! Figures follow the quota's rules (`quota`): a file shared by items of one owner (or of
//! one platform) counts once there; a file shared by two owners counts for each.

use std::collections::HashMap;

use super::items::{self, stored_usage};
use super::usage_history::{self, DayUsage};
use super::users::{self, User};
use super::{Db, DbError, on_pool, to_u64};
use crate::domain::ItemStatus;

/// One user's usage.
#[derive(Debug, Clone)]
pub struct UserUsage {
    pub user: User,
    /// Completed items.
    pub items: u64,
    pub usage_bytes: u64,
}

/// Completed items and the bytes they keep, per platform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlatformUsage {
    pub platform: String,
    pub items: u64,
    pub bytes: u64,
}

/// (items, file bytes) per key, and rendition bytes per key, of one grouping.
type Grouped = HashMap<String, (u64, u64)>;

/// Every user with their completed items and usage, largest usage first.
pub async fn by_user(db: &Db) -> Result<Vec<UserUsage>, DbError> {
    let grouped = grouped(db, "owner").await?;
    let mut report: Vec<UserUsage> = users::list(db)
        .await?
        .into_iter()
        .map(|user| {
            let (items, usage_bytes) = grouped
                .get(&user.id.to_string())
                .copied()
                .unwrap_or_default();
            UserUsage {
                user,
                items,
                usage_bytes,
            }
        })
        .collect();
    report.sort_by(|a, b| {
        b.usage_bytes
            .cmp(&a.usage_bytes)
            .then(a.user.name.cmp(&b.user.name))
    });
    Ok(report)
}

/// Completed items and bytes per platform, largest first.
pub async fn by_platform(db: &Db) -> Result<Vec<PlatformUsage>, DbError> {
    let mut report: Vec<PlatformUsage> = grouped(db, "platform")
        .await?
        .into_iter()
        .map(|(platform, (items, bytes))| PlatformUsage {
            platform,
            items,
            bytes,
        })
        .collect();
    report.sort_by(|a, b| b.bytes.cmp(&a.bytes).then(a.platform.cmp(&b.platform)));
    Ok(report)
}

/// Completed items and bytes (files, thumbnails, subtitles, renditions) per value of `column`
/// (`owner` or `platform`, never user input).
async fn grouped(db: &Db, column: &'static str) -> Result<Grouped, DbError> {
    let files: Vec<(Option<String>, i64, Option<i64>)> = on_pool!(db, pool => sqlx::query_as(
        sqlx::AssertSqlSafe(format!(
        "SELECT {column}, CAST(SUM(n) AS BIGINT), CAST(SUM(s + t + v) AS BIGINT) \
         FROM (SELECT {column}, video_path, COUNT(*) AS n, MAX(COALESCE(size_bytes, 0)) AS s, \
                      MAX(COALESCE(thumbnails_bytes, 0)) AS t, MAX(COALESCE(subtitles_bytes, 0)) AS v \
               FROM items WHERE status = 'completed' GROUP BY {column}, video_path) AS f \
         GROUP BY {column}")))
        .fetch_all(pool)
        .await)?;
    let made: Vec<(Option<String>, Option<i64>)> = on_pool!(db, pool => sqlx::query_as(
        sqlx::AssertSqlSafe(format!(
        "SELECT {column}, CAST(SUM(s) AS BIGINT) \
         FROM (SELECT i.{column} AS {column}, r.path, MAX(r.size_bytes) AS s FROM renditions r \
               JOIN items i ON i.id = r.item_id GROUP BY i.{column}, r.path) AS m \
         GROUP BY {column}")))
        .fetch_all(pool)
        .await)?;
    let mut grouped = Grouped::new();
    for (key, items, bytes) in files {
        let entry = grouped.entry(key.unwrap_or_default()).or_default();
        entry.0 += to_u64(items, "items")?;
        entry.1 += to_u64(bytes.unwrap_or(0), "bytes")?;
    }
    for (key, bytes) in made {
        grouped.entry(key.unwrap_or_default()).or_default().1 +=
            to_u64(bytes.unwrap_or(0), "bytes")?;
    }
    Ok(grouped)
}

/// Records `day`'s figures (the whole vault and every user) and forgets days before
/// `keep_from`. Recording a day again replaces its figures.
pub async fn record_day(db: &Db, day: &str, keep_from: &str) -> Result<(), DbError> {
    let stored = stored_usage(db).await?;
    let completed = items::count_by_status(db)
        .await?
        .into_iter()
        .find(|(status, _)| *status == ItemStatus::Completed)
        .map_or(0, |(_, count)| count);
    let users = by_user(db).await?;
    let mut tx = db.begin_write().await?;
    let vault = DayUsage {
        day: day.to_string(),
        user_id: None,
        bytes: stored.stored_bytes(),
        items: completed,
    };
    usage_history::upsert_in(&mut tx, &vault).await?;
    for usage in users {
        let row = DayUsage {
            day: day.to_string(),
            user_id: Some(usage.user.id.to_string()),
            bytes: usage.usage_bytes,
            items: usage.items,
        };
        usage_history::upsert_in(&mut tx, &row).await?;
    }
    usage_history::prune_in(&mut tx, keep_from).await?;
    tx.commit().await
}
