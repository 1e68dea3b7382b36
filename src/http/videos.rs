//! `/api/videos/{id}/…`: metadata, stream (and renditions), thumbnails, transcode, delete.
//! Only completed items are served. Metadata, thumbnails and delete work for images too; the
//! stream and transcodes answer `not_a_video` for them.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use serde::Deserialize;
use warp::Reply;
use warp::http::{HeaderMap, Method, StatusCode};
use warp::reply::Response;

use super::dto::{MetadataJson, RenditionJson};
use super::error::{ApiError, respond};
use super::file_response::{Presentation, serve};
use super::items::load;
use crate::actors::PipelineHandle;
use crate::context::AppContext;
use crate::db::items::Item;
use crate::db::record::TranscodeRequest;
use crate::db::renditions;
use crate::domain::people::Principal;
use crate::domain::{ErrorCode, ItemId, ItemKind, ItemStatus, Quality, ThumbSize};
use crate::storage::served::{ServedFile, Variant};

pub async fn completed(
    ctx: &AppContext,
    principal: &Principal,
    id: &str,
) -> Result<Item, ApiError> {
    let item = load(ctx, principal, id).await?;
    if item.status != ItemStatus::Completed {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            ErrorCode::NotReady,
            format!("item {} is {}, not completed", item.id, item.status),
        ));
    }
    Ok(item)
}

/// A stream or transcode asked of an image.
fn not_a_video(item: &Item) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        ErrorCode::NotAVideo,
        format!(
            "item {id} is an image; it has no video stream or renditions (its file is at /api/images/{id})",
            id = item.id
        ),
    )
}

/// Refuses a `variant` the item's kind does not have. Checked before a file is cached, so a
/// cached file always passed it.
fn check_variant(item: &Item, variant: Variant) -> Result<(), ApiError> {
    match (item.kind, variant) {
        (_, Variant::Thumbnail(_))
        | (ItemKind::Video, Variant::Video | Variant::Rendition(_))
        | (ItemKind::Image, Variant::Image) => Ok(()),
        (ItemKind::Image, _) => Err(not_a_video(item)),
        (ItemKind::Video, Variant::Image) => Err(ApiError::not_found(format!(
            "item {id} is a video, not an image (its stream is at /api/videos/{id}/stream)",
            id = item.id
        ))),
    }
}

fn parse_quality(text: &str) -> Result<Quality, ApiError> {
    Quality::parse(text).ok_or_else(|| {
        ApiError::bad_request(
            ErrorCode::BadRequest,
            format!(
                "unknown quality '{}'; use 360p, 480p, 720p or 1080p",
                crate::domain::text::clean(text, 20)
            ),
        )
    })
}

pub async fn metadata(id: String, principal: Principal, ctx: Arc<AppContext>) -> Response {
    respond(
        async {
            let item = completed(&ctx, &principal, &id).await?;
            let renditions = renditions::for_item(&ctx.db, item.id)
                .await
                .map_err(ApiError::internal)?;
            let json = MetadataJson::of(&ctx, &item, Some(&renditions), principal.is_admin())
                .ok_or_else(|| ApiError::internal("completed item without media facts"))?;
            Ok(warp::reply::json(&json).into_response())
        }
        .await,
    )
}

/// Completed files never change, so caches may keep them; an item is its owner's, so only
/// private caches may.
pub(super) const CACHE_CONTROL: &str = "private, max-age=31536000, immutable";

/// The file to serve, from memory when recently served, else from the database and disk.
pub(super) async fn served_file(
    ctx: &AppContext,
    principal: &Principal,
    id: &str,
    variant: Variant,
) -> Result<Arc<ServedFile>, ApiError> {
    let item_id = ItemId::parse(id)
        .map_err(|e| ApiError::bad_request(ErrorCode::InvalidId, e.to_string()))?;
    if let Some(file) = ctx.served.get(item_id, variant) {
        if !principal.may_see(file.owner.as_deref()) {
            return Err(ApiError::not_found(format!("no item {item_id}")));
        }
        return Ok(file);
    }
    let item = completed(ctx, principal, id).await?;
    check_variant(&item, variant)?;
    let hash = item.sha256.clone().unwrap_or_default();
    let short = &hash[..hash.len().min(16)];
    let (relative, version) = match variant {
        Variant::Video | Variant::Image => (item.paths.file.clone(), format!("{item_id}-{short}")),
        Variant::Thumbnail(size) => (
            item.paths.thumbnail(size).to_string(),
            format!("{item_id}-{short}-{}", size.as_str()),
        ),
        Variant::Rendition(quality) => {
            let rendition = renditions::get(&ctx.db, item_id, quality)
                .await
                .map_err(ApiError::internal)?
                .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, ErrorCode::RenditionNotFound, format!("item {item_id} has no {quality} rendition; request one with POST /api/videos/{item_id}/transcode")))?;
            let tag = &rendition.sha256[..rendition.sha256.len().min(16)];
            (rendition.path, format!("{item_id}-{quality}-{tag}"))
        }
    };
    let path = ctx
        .media
        .resolve(&relative)
        .ok_or_else(|| ApiError::internal(format!("unsafe stored path for {item_id}")))?;
    let completed_at = item.completed_at;
    let owner = item.owner.clone();
    let file = tokio::task::spawn_blocking(move || {
        ServedFile::open(&path, version, completed_at).map(|file| ServedFile { owner, ..file })
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(|e| ApiError::internal(format!("stored file of {item_id} cannot be opened: {e}")))?;
    let file = Arc::new(file);
    ctx.served.insert(item_id, variant, Arc::clone(&file));
    Ok(file)
}

pub async fn stream(
    id: String,
    principal: Principal,
    query: HashMap<String, String>,
    method: Method,
    headers: HeaderMap,
    ctx: Arc<AppContext>,
) -> Response {
    respond(
        async {
            let variant = match query.get("quality") {
                None => Variant::Video,
                Some(q) => Variant::Rendition(parse_quality(q)?),
            };
            let file = served_file(&ctx, &principal, &id, variant).await?;
            let how = Presentation {
                content_type: "video/mp4",
                cache_control: CACHE_CONTROL,
                sent: ctx.metrics.streamed_counter(),
            };
            Ok(serve(&file, &how, &headers, method == Method::HEAD))
        }
        .await,
    )
}

pub async fn thumbnail(
    id: String,
    size: String,
    principal: Principal,
    method: Method,
    headers: HeaderMap,
    ctx: Arc<AppContext>,
) -> Response {
    respond(
        async {
            let size = ThumbSize::parse(&size).ok_or_else(|| {
                ApiError::not_found("thumbnail sizes are small, medium and large")
            })?;
            let file = served_file(&ctx, &principal, &id, Variant::Thumbnail(size)).await?;
            let how = Presentation {
                content_type: "image/jpeg",
                cache_control: CACHE_CONTROL,
                sent: ctx.metrics.streamed_counter(),
            };
            Ok(serve(&file, &how, &headers, method == Method::HEAD))
        }
        .await,
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TranscodeBody {
    quality: String,
}

/// `POST /api/videos/{id}/transcode {"quality": "480p"}`.
pub async fn transcode(
    id: String,
    principal: Principal,
    body: Bytes,
    ctx: Arc<AppContext>,
    pipeline: PipelineHandle,
) -> Response {
    respond(
        async {
            let body: TranscodeBody = serde_json::from_slice(&body)
                .map_err(|e| ApiError::bad_request(ErrorCode::BadRequest, format!("the body must be JSON like {{\"quality\": \"480p\"}}: {e}")))?;
            let quality = parse_quality(&body.quality)?;
            let item = completed(&ctx, &principal, &id).await?;
            if item.kind != ItemKind::Video {
                return Err(not_a_video(&item));
            }
            let media = item.media.as_ref().ok_or_else(|| ApiError::internal("completed item without media facts"))?;
            quality.frame_for(media.width, media.height).map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, ErrorCode::WouldUpscale, e.to_string()))?;
            let request = match pipeline.transcode(item.id, quality).await {
                Ok(request) => request,
                Err(e) => return Err(ApiError::for_owner(e, &ctx.db, item.owner.as_deref().unwrap_or_default()).await),
            };
            let (status, body) = match request {
                TranscodeRequest::Existing(rendition) => (
                    StatusCode::OK,
                    serde_json::json!({"item_id": item.id.to_string(), "quality": quality.as_str(), "status": "completed", "rendition": RenditionJson::of(&ctx, &item, &rendition)}),
                ),
                TranscodeRequest::Queued { job, .. } => (
                    StatusCode::ACCEPTED,
                    serde_json::json!({"item_id": item.id.to_string(), "quality": quality.as_str(), "status": "queued", "job_id": job.to_string()}),
                ),
            };
            Ok(warp::reply::with_status(warp::reply::json(&body), status).into_response())
        }
        .await,
    )
}

/// `DELETE /api/videos/{id}` (a video or an image): 204, then 404 for ever after.
pub async fn delete(
    id: String,
    principal: Principal,
    ctx: Arc<AppContext>,
    pipeline: PipelineHandle,
) -> Response {
    respond(
        async {
            let item = load(&ctx, &principal, &id).await?.id;
            let deleted = pipeline.delete(item).await?;
            if !deleted {
                return Err(ApiError::not_found(format!("no item {item}")));
            }
            Ok(warp::reply::with_status(warp::reply(), StatusCode::NO_CONTENT).into_response())
        }
        .await,
    )
}
