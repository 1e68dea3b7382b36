//! What the housekeepers read: queue depth for the metrics, and the rows the storage sweeps
//! check files against. Read-only, and cheap enough to run on a timer.

use std::collections::HashSet;

use sqlx::FromRow;

use super::{Db, DbError, on_pool};
use crate::domain::subtitle_track::SubtitleTrack;
use crate::domain::{JobKind, Platform, Quality, Timestamp};

/// One group of unfinished jobs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueGroup {
    pub kind: JobKind,
    pub platform: Option<Platform>,
    /// `queued` (due), `waiting` (backoff or breaker) or `running`.
    pub state: &'static str,
    /// Running under this instance's lease.
    pub mine: bool,
    pub count: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueDepth {
    pub rows: Vec<QueueGroup>,
    /// `run_after` of the oldest job that is due and not yet claimed.
    pub oldest_due_ms: Option<i64>,
}

#[derive(FromRow)]
struct QueueRow {
    kind: String,
    platform: Option<String>,
    bucket: String,
    mine: i64,
    n: i64,
    oldest: Option<i64>,
}

/// Unfinished jobs by kind, platform and state, as of `now`.
pub async fn queue_depth(db: &Db, owner: &str, now: Timestamp) -> Result<QueueDepth, DbError> {
    let rows: Vec<QueueRow> = on_pool!(db, pool => sqlx::query_as(
        "SELECT kind, platform, \
            CASE WHEN state = 'running' THEN 'running' \
                 WHEN run_after > $2 THEN 'waiting' ELSE 'queued' END AS bucket, \
            CAST(CASE WHEN state = 'running' AND lease_owner = $1 THEN 1 ELSE 0 END AS BIGINT) AS mine, \
            CAST(COUNT(*) AS BIGINT) AS n, \
            MIN(CASE WHEN state = 'queued' AND run_after <= $2 THEN run_after END) AS oldest \
         FROM jobs WHERE state IN ('queued', 'running') \
         GROUP BY kind, platform, bucket, mine")
        .bind(owner)
        .bind(now.as_millis())
        .fetch_all(pool)
        .await)?;
    let mut depth = QueueDepth::default();
    for row in rows {
        // Rows this build does not know (a newer instance's job kind) are not ours to count.
        let Some(kind) = JobKind::parse(&row.kind) else {
            continue;
        };
        let state = match row.bucket.as_str() {
            "running" => "running",
            "waiting" => "waiting",
            _ => "queued",
        };
        depth.oldest_due_ms = match (depth.oldest_due_ms, row.oldest) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        depth.rows.push(QueueGroup {
            kind,
            platform: row.platform.as_deref().and_then(Platform::parse),
            state,
            mine: row.mine != 0,
            count: row.n,
        });
    }
    Ok(depth)
}

/// Work directory names (`{job}-{attempt}`) of attempts running now, on any instance.
pub async fn running_attempts(db: &Db) -> Result<HashSet<String>, DbError> {
    let rows: Vec<(String, i64)> = on_pool!(db, pool => sqlx::query_as(
        "SELECT id, CAST(attempt AS BIGINT) FROM jobs WHERE state = 'running'")
        .fetch_all(pool)
        .await)?;
    Ok(rows
        .into_iter()
        .map(|(id, attempt)| format!("{id}-{attempt}"))
        .collect())
}

/// Every relative path under media_root that a row refers to, or will once its job finishes:
/// each item's video and thumbnails (whatever its status), each stored rendition, and the
/// rendition path of every quality (a rendition is renamed into place just before its row
/// is written).
pub async fn referenced_paths(db: &Db) -> Result<HashSet<String>, DbError> {
    let items: Vec<(String, String, String, String, Option<String>)> = on_pool!(db, pool => sqlx::query_as(
        "SELECT video_path, thumb_small_path, thumb_medium_path, thumb_large_path, subtitles FROM items")
        .fetch_all(pool)
        .await)?;
    let renditions: Vec<String> = on_pool!(db, pool => sqlx::query_scalar(
        "SELECT path FROM renditions")
        .fetch_all(pool)
        .await)?;
    let mut paths = HashSet::with_capacity(items.len() * 8 + renditions.len());
    for (video, small, medium, large, subtitles) in items {
        for quality in Quality::ALL {
            paths.insert(crate::domain::layout::rendition_path(&video, quality));
        }
        // A list that cannot be read names nothing; its files then look orphaned, and the
        // sweep's "most files unknown" guard is what stands between them and quarantine.
        let tracks: Vec<SubtitleTrack> = subtitles
            .and_then(|s| serde_json::from_str(&s).ok())
            .unwrap_or_default();
        paths.extend(
            tracks
                .iter()
                .map(|t| crate::domain::layout::subtitle_path(&video, t.lang.as_str())),
        );
        paths.extend([video, small, medium, large]);
    }
    paths.extend(renditions);
    Ok(paths)
}
