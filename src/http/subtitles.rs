//! `GET /api/videos/{id}/subtitles/{lang}`: a video's WebVTT sidecar, with the same ranges,
//! validators and access rules as its stream. Not kept in the served-file cache: these files
//! are small and asked for once per playback.

use std::sync::Arc;

use warp::http::{HeaderMap, Method};
use warp::reply::Response;

use super::error::{ApiError, respond};
use super::file_response::{Presentation, serve};
use super::videos::{CACHE_CONTROL, completed};
use crate::context::AppContext;
use crate::domain::layout::subtitle_path;
use crate::domain::people::Principal;
use crate::domain::subtitle_track::SubtitleLang;
use crate::storage::served::ServedFile;

pub async fn subtitle(
    id: String,
    lang: String,
    principal: Principal,
    method: Method,
    headers: HeaderMap,
    ctx: Arc<AppContext>,
) -> Response {
    respond(
        async {
            let item = completed(&ctx, &principal, &id).await?;
            let track = SubtitleLang::parse(&lang)
                .and_then(|lang| item.subtitles.iter().find(|t| t.lang == lang))
                .ok_or_else(|| {
                    let have: Vec<&str> = item.subtitles.iter().map(|t| t.lang.as_str()).collect();
                    ApiError::not_found(if have.is_empty() {
                        format!("item {} has no subtitles", item.id)
                    } else {
                        format!("item {} has subtitles in {}", item.id, have.join(", "))
                    })
                })?;
            let relative = subtitle_path(&item.paths.file, track.lang.as_str());
            let path = ctx
                .media
                .resolve(&relative)
                .ok_or_else(|| ApiError::internal(format!("unsafe stored path for {}", item.id)))?;
            let hash = item.sha256.as_deref().unwrap_or_default();
            let version = format!("{}-{}-{}", item.id, &hash[..hash.len().min(16)], track.lang);
            let completed_at = item.completed_at;
            let file =
                tokio::task::spawn_blocking(move || ServedFile::open(&path, version, completed_at))
                    .await
                    .map_err(ApiError::internal)?
                    .map_err(|e| {
                        ApiError::internal(format!(
                            "stored subtitles of {} cannot be opened: {e}",
                            item.id
                        ))
                    })?;
            let how = Presentation {
                content_type: "text/vtt; charset=utf-8",
                cache_control: CACHE_CONTROL,
                sent: ctx.metrics.streamed_counter(),
            };
            Ok(serve(&file, &how, &headers, method == Method::HEAD))
        }
        .await,
    )
}
