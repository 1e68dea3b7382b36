//! The API's error shape: `{"error": {"code": "snake_case", "message": "…"}}` with a fitting
//! status. Every failure a client can see goes through here; no Rust debug string leaks out.

use std::convert::Infallible;

use serde::Serialize;
use warp::http::StatusCode;
use warp::reply::Response;
use warp::{Rejection, Reply};

use crate::db::Db;
use crate::domain::people::UserId;
use crate::domain::quota::Standing;
use crate::domain::{ErrorCode, JobError};

#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: ErrorCode,
    pub message: String,
    /// For `quota_exceeded`: the figures, as numbers beside the message.
    pub quota: Option<Standing>,
}

impl warp::reject::Reject for ApiError {}

impl ApiError {
    pub fn new(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            quota: None,
        }
    }

    /// A refusal for `owner` (a user id); a `quota_exceeded` one gets their figures.
    pub async fn for_owner(error: JobError, db: &Db, owner: &str) -> Self {
        let code = error.code;
        let api = Self::from(error);
        if code != ErrorCode::QuotaExceeded {
            return api;
        }
        let Ok(user) = UserId::parse(owner) else {
            return api;
        };
        match crate::db::quota::standing_of(db, user).await {
            Ok(standing) => Self {
                quota: Some(standing),
                ..api
            },
            Err(_) => api,
        }
    }

    pub fn bad_request(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, ErrorCode::NotFound, message)
    }

    pub fn unavailable(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, code, message)
    }

    /// An internal failure: logged in full, reported without detail.
    pub fn internal(error: impl std::fmt::Display) -> Self {
        tracing::error!(error = %error, "request failed");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::Internal,
            "an internal error occurred",
        )
    }

    pub fn into_response(self) -> Response {
        #[derive(Serialize)]
        struct Body<'a> {
            error: Inner<'a>,
        }
        #[derive(Serialize)]
        struct Inner<'a> {
            code: ErrorCode,
            message: &'a str,
            #[serde(skip_serializing_if = "Option::is_none")]
            usage_bytes: Option<u64>,
            /// Present with `usage_bytes`; `null` when the quota was lifted meanwhile.
            #[serde(skip_serializing_if = "Option::is_none")]
            quota_bytes: Option<Option<u64>>,
        }
        let body = Body {
            error: Inner {
                code: self.code,
                message: &self.message,
                usage_bytes: self.quota.map(|q| q.usage_bytes),
                quota_bytes: self.quota.map(|q| q.quota_bytes),
            },
        };
        let mut response =
            warp::reply::with_status(warp::reply::json(&body), self.status).into_response();
        if self.code == ErrorCode::Unauthorized {
            response.headers_mut().insert(
                "www-authenticate",
                warp::http::HeaderValue::from_static("Bearer"),
            );
        }
        response
    }
}

/// A refusal from intake, the Pipeline or Storage, answered with its code's status (the one
/// policy in `ErrorCode::http_status`). An internal failure is logged, not shown.
impl From<JobError> for ApiError {
    fn from(error: JobError) -> Self {
        if error.code == ErrorCode::Internal {
            return Self::internal(error.message);
        }
        let status = StatusCode::from_u16(error.code.http_status())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        Self::new(status, error.code, error.message)
    }
}

/// Handlers return `Result<Response, ApiError>`; this flattens it for warp.
pub fn respond(result: Result<Response, ApiError>) -> Response {
    result.unwrap_or_else(ApiError::into_response)
}

/// Turns warp's own rejections (no route, wrong method, bad body…) into the error shape.
pub async fn recover(rejection: Rejection) -> Result<Response, Infallible> {
    use warp::reject;
    let error = if let Some(api) = rejection.find::<ApiError>() {
        api.clone()
    } else if rejection.is_not_found() {
        ApiError::not_found("no such route")
    } else if rejection.find::<reject::PayloadTooLarge>().is_some() {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::PayloadTooLarge,
            "the request body is too large",
        )
    } else if rejection.find::<reject::LengthRequired>().is_some() {
        ApiError::new(
            StatusCode::LENGTH_REQUIRED,
            ErrorCode::BadRequest,
            "a Content-Length header is required",
        )
    } else if let Some(e) = rejection.find::<reject::InvalidQuery>() {
        ApiError::bad_request(ErrorCode::BadRequest, e.to_string())
    } else if let Some(e) = rejection.find::<reject::InvalidHeader>() {
        ApiError::bad_request(ErrorCode::BadRequest, e.to_string())
    } else if let Some(e) = rejection.find::<reject::MissingHeader>() {
        ApiError::bad_request(ErrorCode::BadRequest, e.to_string())
    } else if rejection.find::<reject::MethodNotAllowed>().is_some() {
        // Last of the known ones: another route on the same path with another method says
        // this, while the route that took the method has the rejection that tells why.
        ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            ErrorCode::BadRequest,
            "method not allowed on this route",
        )
    } else {
        ApiError::internal(format!("unhandled rejection: {rejection:?}"))
    };
    Ok(error.into_response())
}
