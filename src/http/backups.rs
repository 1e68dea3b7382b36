//! `POST /api/admin/backups` (a backup now: 202 with its run, which the BackupsActor starts
//! at once), `GET /api/admin/backups` (the schedule, recent runs and the snapshots on disk)
//! and `GET /api/admin/backups/{id}` (one run, to follow it). Admins only.

use std::sync::Arc;

use serde::Serialize;
use warp::Reply;
use warp::http::StatusCode;
use warp::reply::Response;

use super::auth::admin;
use super::error::{ApiError, respond};
use crate::actors::BackupsHandle;
use crate::clock::rfc3339;
use crate::context::AppContext;
use crate::db::backup_runs::{self, BackupRun};
use crate::domain::people::Principal;
use crate::domain::{ErrorCode, Timestamp};
use crate::keeping::{self, scheduled};

/// How many runs the listing shows, newest first.
const RECENT_RUNS: i64 = 50;

#[derive(Serialize)]
struct RunJson {
    id: String,
    reason: String,
    state: String,
    attempt: i64,
    requested_by: Option<String>,
    snapshot: Option<String>,
    items: Option<i64>,
    bytes_new: Option<i64>,
    bytes_linked: Option<i64>,
    seconds: Option<f64>,
    error: Option<String>,
    created_at: String,
    started_at: Option<String>,
    finished_at: Option<String>,
}

impl From<BackupRun> for RunJson {
    fn from(run: BackupRun) -> Self {
        let at = |ms: i64| rfc3339(Timestamp::from_millis(ms));
        Self {
            id: run.id,
            reason: run.reason,
            state: run.state,
            attempt: run.attempt,
            requested_by: run.requested_by,
            snapshot: run.snapshot,
            items: run.items,
            bytes_new: run.bytes_new,
            bytes_linked: run.bytes_linked,
            seconds: run.seconds,
            error: run.error,
            created_at: at(run.created_at),
            started_at: run.started_at.map(at),
            finished_at: run.finished_at.map(at),
        }
    }
}

#[derive(Serialize)]
struct SnapshotJson {
    name: String,
    created_at: String,
    database: String,
    items: u64,
    media_files: u64,
    bytes: u64,
    bytes_new: u64,
}

#[derive(Serialize)]
struct ScheduleJson {
    /// 0: not scheduled.
    interval_secs: u64,
    keep_daily: u32,
    keep_weekly: u32,
    keep_monthly: u32,
}

#[derive(Serialize)]
struct ListingJson {
    schedule: ScheduleJson,
    runs: Vec<RunJson>,
    /// The complete snapshots in this instance's backup directory, oldest first.
    snapshots: Vec<SnapshotJson>,
}

pub async fn start(principal: Principal, ctx: Arc<AppContext>, backups: BackupsHandle) -> Response {
    respond(
        async {
            admin(&principal)?;
            let run = scheduled::request(&ctx.db, &principal.user.to_string())
                .await
                .map_err(ApiError::internal)?;
            backups.poke();
            let body = serde_json::json!({ "job": RunJson::from(run) });
            Ok(
                warp::reply::with_status(warp::reply::json(&body), StatusCode::ACCEPTED)
                    .into_response(),
            )
        }
        .await,
    )
}

pub async fn list(principal: Principal, ctx: Arc<AppContext>) -> Response {
    respond(
        async {
            admin(&principal)?;
            let runs = backup_runs::recent(&ctx.db, RECENT_RUNS)
                .await
                .map_err(ApiError::internal)?;
            let dir = ctx.settings.backup.directory.clone();
            let snapshots = tokio::task::spawn_blocking(move || keeping::list(&dir))
                .await
                .map_err(ApiError::internal)?
                .map_err(ApiError::internal)?;
            let backup = &ctx.settings.backup;
            let body = ListingJson {
                schedule: ScheduleJson {
                    interval_secs: backup.interval.map_or(0, |i| i.as_secs()),
                    keep_daily: backup.retention.daily,
                    keep_weekly: backup.retention.weekly,
                    keep_monthly: backup.retention.monthly,
                },
                runs: runs.into_iter().map(RunJson::from).collect(),
                snapshots: snapshots
                    .into_iter()
                    .map(|s| SnapshotJson {
                        name: s.name,
                        created_at: s.manifest.created_at,
                        database: s.manifest.database.kind,
                        items: s.manifest.counts.items,
                        media_files: s.manifest.counts.media_files,
                        bytes: s.manifest.counts.bytes,
                        bytes_new: s.manifest.counts.bytes_new,
                    })
                    .collect(),
            };
            Ok(warp::reply::json(&body).into_response())
        }
        .await,
    )
}

pub async fn get(id: String, principal: Principal, ctx: Arc<AppContext>) -> Response {
    respond(
        async {
            admin(&principal)?;
            let run = backup_runs::get(&ctx.db, &id)
                .await
                .map_err(ApiError::internal)?
                .ok_or_else(|| {
                    ApiError::new(
                        StatusCode::NOT_FOUND,
                        ErrorCode::NotFound,
                        "no such backup run",
                    )
                })?;
            Ok(warp::reply::json(&RunJson::from(run)).into_response())
        }
        .await,
    )
}
