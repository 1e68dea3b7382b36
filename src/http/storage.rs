//! `GET /api/storage/stats`: bytes and counts by kind, from the StorageActor's accounting.
//! `POST /api/storage/cleanup`: run the storage sweep now and report what it did.

use serde::Serialize;
use warp::Reply;
use warp::reply::Response;

use std::sync::Arc;

use super::error::{ApiError, respond};
use crate::actors::StorageHandle;
use crate::context::AppContext;
use crate::db::items::Tally;
use crate::domain::people::Principal;

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
    subtitles: TallyJson,
    temp: TallyJson,
    /// Videos, images, renditions, thumbnails and subtitles: what the vault keeps.
    stored_bytes: u64,
    /// Everything above together, temp included.
    total_bytes: u64,
    /// The filesystem holding media_root.
    disk: DiskJson,
    /// The asking admin's own usage.
    user: MineJson,
}

/// What a user keeps against their quota.
#[derive(Serialize)]
struct MineJson {
    usage_bytes: u64,
    quota_bytes: Option<u64>,
}

/// An admin sees the whole vault and their own usage; a member only their own usage and
/// quota (the vault's totals are not theirs to know).
pub async fn stats(principal: Principal, ctx: Arc<AppContext>, storage: StorageHandle) -> Response {
    respond(
        async {
            let user = crate::db::users::by_id(&ctx.db, principal.user)
                .await
                .map_err(ApiError::internal)?;
            let mine = MineJson {
                usage_bytes: crate::db::quota::usage_of(&ctx.db, principal.user)
                    .await
                    .map_err(ApiError::internal)?,
                quota_bytes: user.and_then(|u| u.quota_bytes),
            };
            if !principal.is_admin() {
                return Ok(warp::reply::json(&serde_json::json!({ "user": mine })).into_response());
            }
            let stats = storage.stats().await?;
            let s = stats.stored;
            let body = StatsJson {
                stored_bytes: s.stored_bytes(),
                total_bytes: stats.total_bytes(),
                videos: s.videos.into(),
                images: s.images.into(),
                renditions: s.renditions.into(),
                thumbnails: s.thumbnails.into(),
                subtitles: s.subtitles.into(),
                temp: stats.temp.into(),
                disk: DiskJson {
                    total_bytes: stats.disk_total_bytes,
                    free_bytes: stats.disk_free_bytes,
                },
                user: mine,
            };
            Ok(warp::reply::json(&body).into_response())
        }
        .await,
    )
}

pub async fn cleanup(principal: Principal, storage: StorageHandle) -> Response {
    respond(
        async {
            super::auth::admin(&principal)?;
            let report = storage.sweep().await?;
            Ok(warp::reply::json(&report).into_response())
        }
        .await,
    )
}
