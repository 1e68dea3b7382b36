//! `GET /api/storage/stats`: bytes and counts by kind, from the StorageActor's accounting.
//! `POST /api/storage/cleanup`: run the storage sweep now and report what it did.

use serde::Serialize;
use warp::Reply;
use warp::reply::Response;

use super::error::respond;
use crate::actors::StorageHandle;
use crate::db::items::Tally;

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
    /// Videos, images, renditions and thumbnails: what the vault keeps.
    stored_bytes: u64,
    /// Everything above together, temp included.
    total_bytes: u64,
    /// The filesystem holding media_root.
    disk: DiskJson,
}

pub async fn stats(storage: StorageHandle) -> Response {
    respond(
        async {
            let stats = storage.stats().await?;
            let s = stats.stored;
            let body = StatsJson {
                stored_bytes: s.stored_bytes(),
                total_bytes: stats.total_bytes(),
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

pub async fn cleanup(storage: StorageHandle) -> Response {
    respond(
        async {
            let report = storage.sweep().await?;
            Ok(warp::reply::json(&report).into_response())
        }
        .await,
    )
}
