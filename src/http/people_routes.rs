//! The routes of people: `/api/me`, signing in and out, and the admins' routes for users
//! and tokens (handlers in `people.rs` and `session.rs`).

use std::collections::HashMap;
use std::sync::Arc;

use warp::Filter;
use warp::filters::BoxedFilter;
use warp::reply::Response;

use super::{auth, people, session, storage_metrics, with, with_ctx};
use crate::actors::PipelineHandle;
use crate::context::AppContext;

/// `/api/me`, signing in and out, and the admins' routes for users and tokens.
pub(super) fn routes(
    ctx: Arc<AppContext>,
    pipeline: &PipelineHandle,
    body_limit: u64,
) -> BoxedFilter<(Response,)> {
    let who = || auth::principal(ctx.clone());
    let trusted = Arc::new(ctx.settings.server.trusted_proxies.clone());
    let me = warp::path!("me")
        .and(warp::get())
        .and(who())
        .and(with_ctx(ctx.clone()))
        .then(people::me);
    let sign_in = warp::path!("session")
        .and(warp::post())
        .and(warp::body::content_length_limit(body_limit))
        .and(warp::body::bytes())
        .and(warp::ext::optional::<auth::Peer>())
        .and(warp::header::headers_cloned())
        .and(with(trusted))
        .and(with_ctx(ctx.clone()))
        .then(
            |body,
             peer,
             headers: warp::http::HeaderMap,
             trusted: Arc<Vec<std::net::IpAddr>>,
             ctx| {
                let client = auth::client_address(peer, &headers, &trusted);
                let secure = auth::via_https(peer, &headers, &trusted);
                session::sign_in(body, client, secure, ctx)
            },
        );
    let sign_out = warp::path!("session")
        .and(warp::delete())
        .and(warp::header::optional::<String>("cookie"))
        .and(with_ctx(ctx.clone()))
        .then(session::sign_out);
    let users = warp::path!("admin" / "users")
        .and(warp::get())
        .and(who())
        .and(with_ctx(ctx.clone()))
        .then(people::list);
    let add_user = warp::path!("admin" / "users")
        .and(warp::post())
        .and(who())
        .and(warp::body::content_length_limit(body_limit))
        .and(warp::body::bytes())
        .and(with_ctx(ctx.clone()))
        .then(people::create);
    let change_user = warp::path!("admin" / "users" / String)
        .and(warp::patch())
        .and(who())
        .and(warp::body::content_length_limit(body_limit))
        .and(warp::body::bytes())
        .and(with_ctx(ctx.clone()))
        .then(people::update);
    let remove_user = warp::path!("admin" / "users" / String)
        .and(warp::delete())
        .and(warp::query::<HashMap<String, String>>())
        .and(who())
        .and(with_ctx(ctx.clone()))
        .and(with(pipeline.clone()))
        .then(people::remove);
    let issue_token = warp::path!("admin" / "users" / String / "tokens")
        .and(warp::post())
        .and(who())
        .and(optional_body(body_limit))
        .and(with_ctx(ctx.clone()))
        .then(people::issue_token);
    let revoke_token = warp::path!("admin" / "tokens" / String)
        .and(warp::delete())
        .and(who())
        .and(with_ctx(ctx.clone()))
        .then(people::revoke_token);
    let storage_metrics = warp::path!("admin" / "storage" / "metrics")
        .and(warp::get())
        .and(who())
        .and(with_ctx(ctx))
        .then(storage_metrics::report);
    me.or(sign_in)
        .unify()
        .or(sign_out)
        .unify()
        .or(users)
        .unify()
        .or(add_user)
        .unify()
        .or(change_user)
        .unify()
        .or(remove_user)
        .unify()
        .or(issue_token)
        .unify()
        .or(revoke_token)
        .unify()
        .or(storage_metrics)
        .unify()
        .boxed()
}

/// A JSON body of at most `limit` bytes, or none at all: a POST without a body (no
/// `Content-Length`, not chunked) reads as empty instead of `411`.
fn optional_body(limit: u64) -> BoxedFilter<(bytes::Bytes,)> {
    let sized = warp::body::content_length_limit(limit).and(warp::body::bytes());
    let absent = warp::header::optional::<String>("content-length")
        .and(warp::header::optional::<String>("transfer-encoding"))
        .and_then(
            |length: Option<String>, chunked: Option<String>| async move {
                if length.is_none() && chunked.is_none() {
                    Ok(bytes::Bytes::new())
                } else {
                    Err(warp::reject::not_found())
                }
            },
        );
    sized.or(absent).unify().boxed()
}
