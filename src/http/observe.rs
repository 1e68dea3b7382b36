//! The envelope of every request: a request id in a tracing span around the handler (so every
//! line logged while handling it carries the id) and in the `x-request-id` response header;
//! an access-log line (as `access_log.rs` decides); the HTTP metrics.
//!
//! This runs for every range request of a stream, tens of thousands a second: nothing here is
//! allocated or formatted that the request does not need (the id is made on the stack, the
//! path is kept only when the access log is on).

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use tracing::Instrument;
use warp::http::{HeaderMap, HeaderValue, Request};
use warp::reply::Response;

use super::access_log::{self, AccessLog};
use crate::context::AppContext;
use crate::metrics::Route;

pub const REQUEST_ID: &str = "x-request-id";

/// The client's request id when it is a sane token (a proxy in front may have set one, and
/// following it across services is the point), otherwise a new one. Anything else a client
/// sends is not trusted into logs or headers.
fn request_id(headers: &HeaderMap) -> HeaderValue {
    headers
        .get(REQUEST_ID)
        .filter(|v| {
            let v = v.as_bytes();
            (1..=64).contains(&v.len())
                && v.iter()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        })
        .cloned()
        .unwrap_or_else(new_request_id)
}

/// 16 lowercase hex digits, written on the stack (no `format!`).
fn new_request_id() -> HeaderValue {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let n = rand::random::<u64>();
    let digits: [u8; 16] = std::array::from_fn(|i| HEX[((n >> (60 - 4 * i)) & 0xf) as usize]);
    HeaderValue::from_bytes(&digits).expect("hex digits are a valid header value")
}

/// Wraps the router's service.
#[derive(Clone)]
pub struct Observed<S> {
    inner: S,
    ctx: Arc<AppContext>,
    /// The configurable path of the Telegram webhook, when it is served.
    webhook_path: Option<Arc<str>>,
    access: Arc<AccessLog>,
    /// The connection's peer, handed to the routes (sign-in throttling by address).
    peer: Option<std::net::SocketAddr>,
}

impl<S: Clone> Observed<S> {
    /// This service for one connection from `peer`.
    pub fn for_peer(&self, peer: std::net::SocketAddr) -> Self {
        Self {
            peer: Some(peer),
            ..self.clone()
        }
    }
}

impl<S> Observed<S> {
    pub fn new(inner: S, ctx: Arc<AppContext>) -> Self {
        let telegram = &ctx.settings.telegram;
        let webhook_path = telegram
            .uses_webhook()
            .then(|| Arc::from(telegram.webhook_path.as_str()));
        let access = Arc::new(AccessLog::new(&ctx.settings.log));
        Self {
            inner,
            ctx,
            webhook_path,
            access,
            peer: None,
        }
    }
}

impl<S, B> tower_service::Service<Request<B>> for Observed<S>
where
    S: tower_service::Service<Request<B>, Response = Response, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        let started = Instant::now();
        if let Some(peer) = self.peer {
            request.extensions_mut().insert(super::auth::Peer(peer));
        }
        // The webhook's path is configurable; it is one route whatever it is called.
        let route = if self.webhook_path.as_deref() == Some(request.uri().path()) {
            Route::TelegramWebhook
        } else {
            Route::of_path(request.uri().path())
        };
        let method = request.method().clone();
        // A `Uri` clone shares its bytes; only the access line needs it.
        let uri = self.access.is_on().then(|| request.uri().clone());
        let id = request_id(request.headers());
        let span = tracing::info_span!(
            "request",
            request_id = %id.to_str().expect("request ids are visible ASCII")
        );
        let handled = span.in_scope(|| self.inner.call(request));
        let ctx = Arc::clone(&self.ctx);
        let access = Arc::clone(&self.access);
        Box::pin(
            async move {
                let Ok(mut response) = handled.await;
                let status = response.status().as_u16();
                let elapsed = started.elapsed();
                if ctx.metrics.enabled() {
                    ctx.metrics
                        .http
                        .observe(route, &method, status, elapsed.as_secs_f64());
                }
                if let (Some(level), Some(uri)) = (access.level_for(route, status), &uri) {
                    let millis = elapsed.as_secs_f64() * 1000.0;
                    let path = uri.path();
                    if level == tracing::Level::INFO {
                        tracing::info!(target: access_log::TARGET, %method, %path, status, millis, "request");
                    } else {
                        tracing::debug!(target: access_log::TARGET, %method, %path, status, millis, "request");
                    }
                }
                response.headers_mut().insert(REQUEST_ID, id);
                Ok(response)
            }
            .instrument(span),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sane_client_ids_are_kept_and_others_replaced() {
        let with = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(REQUEST_ID, HeaderValue::from_str(value).unwrap());
            request_id(&headers).to_str().unwrap().to_string()
        };
        assert_eq!(with("abc-123_x.y"), "abc-123_x.y");
        for hostile in ["", "has space", "semi;colon", &"a".repeat(65), "quote\"d"] {
            let id = with(hostile);
            assert_ne!(id, hostile);
            assert_eq!(id.len(), 16, "{id}");
        }
        let made = request_id(&HeaderMap::new());
        assert_eq!(made.len(), 16);
        assert!(
            made.as_bytes()
                .iter()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b)),
            "{made:?}"
        );
    }
}
