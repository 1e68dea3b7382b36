//! `GET /api/storage/stats`: bytes and counts by kind, from the StorageActor's accounting.
//! `POST /api/storage/cleanup`: run the storage sweep now and report what it did.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use warp::Reply;
use warp::reply::Response;

use super::error::{ApiError, respond};
use crate::actors::storage::StorageMsg;
use crate::context::AppContext;
use crate::db::items::Tally;
use crate::domain::ErrorCode;
use crate::storage::sweep::SweepReport;

#[derive(Serialize)]
struct TallyJson {
    files: u64,
    bytes: u64,
}

impl From<Tally> for TallyJson {
    fn from(t: Tally) -> Self {
        Self {
            files: t.files,
            bytes: t.bytes,
        }
    }
}

#[derive(Serialize)]
struct DiskJson {
    total_bytes: u64,
    free_bytes: u64,
}

#[derive(Serialize)]
struct StatsJson {
    videos: TallyJson,
    images: TallyJson,
    renditions: TallyJson,
    thumbnails: TallyJson,
    temp: TallyJson,
    /// Everything above together.
    total_bytes: u64,
    /// The filesystem holding media_root.
    disk: DiskJson,
}

pub async fn stats(ctx: Arc<AppContext>) -> Response {
    respond(
        async {
            let stats = ctx
                .storage
                .call(StorageMsg::Stats, Duration::from_secs(10))
                .await
                .map_err(|e| ApiError::unavailable(ErrorCode::Unavailable, e.to_string()))?;
            let s = stats.stored;
            let body = StatsJson {
                total_bytes: s.videos.bytes
                    + s.images.bytes
                    + s.renditions.bytes
                    + s.thumbnails.bytes
                    + stats.temp.bytes,
                videos: s.videos.into(),
                images: s.images.into(),
                renditions: s.renditions.into(),
                thumbnails: s.thumbnails.into(),
                temp: stats.temp.into(),
                disk: DiskJson {
                    total_bytes: stats.disk_total_bytes,
                    free_bytes: stats.disk_free_bytes,
                },
            };
            Ok(warp::reply::json(&body).into_response())
        }
        .await,
    )
}

pub async fn cleanup(ctx: Arc<AppContext>) -> Response {
    respond(
        async {
            // A sweep walks the whole tree; a large library takes a while.
            let report = ctx
                .storage
                .call(
                    |reply| StorageMsg::Sweep(Some(reply)),
                    Duration::from_secs(600),
                )
                .await
                .map_err(|e| ApiError::unavailable(ErrorCode::Unavailable, e.to_string()))?
                .map_err(|e| ApiError::unavailable(ErrorCode::Unavailable, e))?;
            let report: SweepReport = report;
            Ok(warp::reply::json(&report).into_response())
        }
        .await,
    )
}
