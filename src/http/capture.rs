//! `POST /api/capture`: the API door of intake.

use std::sync::Arc;

use bytes::Bytes;
use serde::Deserialize;
use warp::Reply;
use warp::http::StatusCode;
use warp::reply::Response;

use super::dto::ItemJson;
use super::error::{ApiError, respond};
use crate::context::AppContext;
use crate::db::record::CaptureOutcome;
use crate::domain::people::Principal;
use crate::domain::{ErrorCode, Source};
use crate::intake::Intake;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CaptureBody {
    url: String,
}

pub async fn create(
    principal: Principal,
    body: Bytes,
    ctx: Arc<AppContext>,
    intake: Intake,
) -> Response {
    respond(capture(&principal, &body, &ctx, &intake).await)
}

/// Records a capture for whoever asked: the same URL from two people makes two items.
async fn capture(
    principal: &Principal,
    body: &[u8],
    ctx: &AppContext,
    intake: &Intake,
) -> Result<Response, ApiError> {
    let body: CaptureBody = serde_json::from_slice(body).map_err(|e| {
        intake.count_submission(Source::Api, Err(ErrorCode::BadRequest));
        ApiError::bad_request(
            ErrorCode::BadRequest,
            format!("the body must be JSON like {{\"url\": \"…\"}}: {e}"),
        )
    })?;
    let owner = principal.user.to_string();
    let record = match intake
        .submit_url(&body.url, Source::Api, Some(owner.clone()))
        .await
    {
        Ok(record) => record,
        Err(e) => return Err(ApiError::for_owner(e, &ctx.db, &owner).await),
    };
    let status = match record.outcome {
        CaptureOutcome::Created | CaptureOutcome::Requeued => StatusCode::ACCEPTED,
        CaptureOutcome::Existing => StatusCode::OK,
    };
    let json = warp::reply::json(&ItemJson::of(ctx, &record.item, None, principal.is_admin()));
    Ok(warp::reply::with_status(json, status).into_response())
}
