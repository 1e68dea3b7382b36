//! `GET|HEAD /api/images/{id}`: a completed image's JPEG, served like a video's stream
//! (ranges, ETag, immutable caching, nosniff) from the same memory-mapped file cache.

use std::sync::Arc;

use warp::http::{HeaderMap, Method};
use warp::reply::Response;

use super::error::respond;
use super::file_response::{Presentation, serve};
use super::videos::{CACHE_CONTROL, served_file};
use crate::context::AppContext;
use crate::domain::people::Principal;
use crate::storage::served::Variant;

pub async fn image(
    id: String,
    principal: Principal,
    method: Method,
    headers: HeaderMap,
    ctx: Arc<AppContext>,
) -> Response {
    respond(
        async {
            let file = served_file(&ctx, &principal, &id, Variant::Image).await?;
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
