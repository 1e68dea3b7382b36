//! `POST /api/session` (sign in with a name and a password: an HttpOnly session cookie) and
//! `DELETE /api/session` (sign out). Programs use tokens instead.

use std::net::IpAddr;
use std::sync::Arc;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use warp::Reply;
use warp::http::{HeaderValue, StatusCode};
use warp::reply::Response;

use super::auth::{SESSION_COOKIE, session_cookie};
use super::error::{ApiError, respond};
use crate::context::AppContext;
use crate::domain::ErrorCode;
use crate::people::{self, SignInRefused};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SignIn {
    name: String,
    password: String,
}

#[derive(Serialize)]
struct SignedIn<'a> {
    id: String,
    name: &'a str,
    role: &'static str,
    expires_at: String,
}

pub async fn sign_in(body: Bytes, client: IpAddr, secure: bool, ctx: Arc<AppContext>) -> Response {
    respond(
        async {
            let body: SignIn = serde_json::from_slice(&body).map_err(|e| {
                ApiError::bad_request(
                    ErrorCode::BadRequest,
                    format!(
                        "the body must be JSON like {{\"name\": \"…\", \"password\": \"…\"}}: {e}"
                    ),
                )
            })?;
            let session =
                people::sign_in(&ctx.db, &ctx.sign_ins, &body.name, &body.password, client)
                    .await
                    .map_err(|e| match e {
                        SignInRefused::Wrong => ApiError::new(
                            StatusCode::UNAUTHORIZED,
                            ErrorCode::Unauthorized,
                            e.to_string(),
                        ),
                        SignInRefused::Throttled(_) => ApiError::new(
                            StatusCode::TOO_MANY_REQUESTS,
                            ErrorCode::TooManyAttempts,
                            e.to_string(),
                        ),
                        SignInRefused::Db(e) => ApiError::internal(e),
                    })?;
            let max_age = people::SESSION_LIFETIME.as_secs();
            let cookie = format!(
                "{SESSION_COOKIE}={}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Strict{}",
                session.secret,
                if secure { "; Secure" } else { "" }
            );
            let body = SignedIn {
                id: session.user.id.to_string(),
                name: &session.user.name,
                role: session.user.role.as_str(),
                expires_at: crate::clock::rfc3339(session.expires_at),
            };
            let mut response = warp::reply::json(&body).into_response();
            response.headers_mut().insert(
                "set-cookie",
                HeaderValue::from_str(&cookie).map_err(ApiError::internal)?,
            );
            Ok(response)
        }
        .await,
    )
}

pub async fn sign_out(cookie: Option<String>, ctx: Arc<AppContext>) -> Response {
    respond(
        async {
            if let Some(secret) = cookie.as_deref().and_then(session_cookie) {
                people::sign_out(&ctx.db, secret)
                    .await
                    .map_err(ApiError::internal)?;
            }
            let mut response = StatusCode::NO_CONTENT.into_response();
            response.headers_mut().insert(
                "set-cookie",
                HeaderValue::from_static(
                    "prsnl_session=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict",
                ),
            );
            Ok(response)
        }
        .await,
    )
}
