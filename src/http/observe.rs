//! The envelope of every request: a request id in a tracing span around the handler (so every
//! line logged while handling it carries the id) and in the `x-request-id` response header;
//! one access-log line; the HTTP metrics.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use tracing::Instrument;
use warp::http::{HeaderMap, HeaderValue, Request};
use warp::reply::Response;

use crate::context::AppContext;
use crate::metrics::Route;

pub const REQUEST_ID: &str = "x-request-id";

/// The client's request id when it is a sane token (a proxy in front may have set one, and
/// following it across services is the point), otherwise a new one. Anything else a client
/// sends is not trusted into logs or headers.
fn request_id(headers: &HeaderMap) -> String {
    headers
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            (1..=64).contains(&v.len())
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        })
        .map_or_else(|| format!("{:016x}", rand::random::<u64>()), str::to_string)
}

/// Wraps the router's service.
#[derive(Clone)]
pub struct Observed<S> {
    inner: S,
    ctx: Arc<AppContext>,
    /// The configurable path of the Telegram webhook, when it is served.
    webhook_path: Option<Arc<str>>,
}

impl<S> Observed<S> {
    pub fn new(inner: S, ctx: Arc<AppContext>) -> Self {
        let telegram = &ctx.settings.telegram;
        let webhook_path = telegram
            .uses_webhook()
            .then(|| Arc::from(telegram.webhook_path.as_str()));
        Self {
            inner,
            ctx,
            webhook_path,
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

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let started = Instant::now();
        // The webhook's path is configurable; it is one route whatever it is called.
        let route = if self.webhook_path.as_deref() == Some(request.uri().path()) {
            Route::TelegramWebhook
        } else {
            Route::of_path(request.uri().path())
        };
        let method = request.method().clone();
        let path = request.uri().path().to_string();
        let id = request_id(request.headers());
        let span = tracing::info_span!("request", request_id = %id);
        let handled = span.in_scope(|| self.inner.call(request));
        let ctx = Arc::clone(&self.ctx);
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
                let millis = elapsed.as_secs_f64() * 1000.0;
                // Probes and scrapes arrive every few seconds; they are not news.
                if matches!(route, Route::Healthz | Route::Readyz | Route::Metrics) {
                    tracing::debug!(target: "prsnl::access", %method, %path, status, millis, "request");
                } else {
                    tracing::info!(target: "prsnl::access", %method, %path, status, millis, "request");
                }
                if let Ok(value) = HeaderValue::from_str(&id) {
                    response.headers_mut().insert(REQUEST_ID, value);
                }
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
            request_id(&headers)
        };
        assert_eq!(with("abc-123_x.y"), "abc-123_x.y");
        for hostile in ["", "has space", "semi;colon", &"a".repeat(65), "quote\"d"] {
            let id = with(hostile);
            assert_ne!(id, hostile);
            assert_eq!(id.len(), 16, "{id}");
        }
        assert_eq!(request_id(&HeaderMap::new()).len(), 16);
    }
}
