//! Bearer-token authentication of `/api` routes (THREATS AUTH-01/03).
//!
//! With `security.api_tokens` empty there is no authentication, which settings validation
//! allows only on a loopback listener. Tokens are compared in constant time.

use std::sync::Arc;

use subtle::ConstantTimeEq;
use warp::Filter;
use warp::http::StatusCode;

use super::error::ApiError;
use crate::context::AppContext;
use crate::domain::ErrorCode;

/// Succeeds when the request may use the API.
pub fn check(ctx: &AppContext, authorization: Option<&str>) -> Result<(), ApiError> {
    let tokens = &ctx.settings.security.api_tokens;
    if tokens.is_empty() {
        return Ok(());
    }
    let unauthorized = || {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            ErrorCode::Unauthorized,
            "a valid bearer token is required",
        )
    };
    let presented = authorization
        .and_then(|h| {
            h.strip_prefix("Bearer ")
                .or_else(|| h.strip_prefix("bearer "))
        })
        .map(str::trim)
        .ok_or_else(unauthorized)?;
    // Compare against every token without stopping early, so timing says nothing about which
    // (or whether a prefix of one) matched.
    let matched = tokens.iter().fold(subtle::Choice::from(0), |any, token| {
        any | token.expose().as_bytes().ct_eq(presented.as_bytes())
    });
    if bool::from(matched) {
        Ok(())
    } else {
        Err(unauthorized())
    }
}

/// A filter that rejects unauthenticated requests with 401.
pub fn required(
    ctx: Arc<AppContext>,
) -> impl Filter<Extract = (), Error = warp::Rejection> + Clone {
    warp::header::optional::<String>("authorization")
        .and_then(move |header: Option<String>| {
            let ctx = Arc::clone(&ctx);
            async move { check(&ctx, header.as_deref()).map_err(warp::reject::custom) }
        })
        .untuple_one()
}
