//! HTTP metrics, updated in place by the request wrapper rather than through the actor: at
//! tens of thousands of requests a second a message per request would cost more than the
//! request. Counters are resolved once per (route, method, status class) and then are plain
//! atomic adds.

use std::sync::OnceLock;

use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, Opts, Registry,
};

/// The route template of a request path: the `route` label. Ids never reach a label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Healthz,
    Readyz,
    Metrics,
    Capture,
    Items,
    Item,
    ItemEvents,
    VideoMetadata,
    VideoStream,
    VideoThumbnail,
    VideoSubtitles,
    VideoTranscode,
    Video,
    Image,
    StorageStats,
    StorageCleanup,
    TelegramWebhook,
    Me,
    Session,
    AdminUsers,
    AdminUser,
    AdminUserTokens,
    AdminToken,
    AdminStorageMetrics,
    AdminBackups,
    AdminWebhooks,
    AdminBackup,
    /// Anything else (answered 404 or 405).
    Other,
}

impl Route {
    pub const ALL: [Route; 28] = [
        Self::Healthz,
        Self::Readyz,
        Self::Metrics,
        Self::Capture,
        Self::Items,
        Self::Item,
        Self::ItemEvents,
        Self::VideoMetadata,
        Self::VideoStream,
        Self::VideoThumbnail,
        Self::VideoSubtitles,
        Self::VideoTranscode,
        Self::Video,
        Self::Image,
        Self::StorageStats,
        Self::StorageCleanup,
        Self::TelegramWebhook,
        Self::Me,
        Self::Session,
        Self::AdminUsers,
        Self::AdminUser,
        Self::AdminUserTokens,
        Self::AdminToken,
        Self::AdminStorageMetrics,
        Self::AdminBackups,
        Self::AdminWebhooks,
        Self::AdminBackup,
        Self::Other,
    ];

    pub const fn template(self) -> &'static str {
        match self {
            Self::Healthz => "/healthz",
            Self::Readyz => "/readyz",
            Self::Metrics => "/metrics",
            Self::Capture => "/api/capture",
            Self::Items => "/api/items",
            Self::Item => "/api/items/{id}",
            Self::ItemEvents => "/api/items/{id}/events",
            Self::VideoMetadata => "/api/videos/{id}/metadata",
            Self::VideoStream => "/api/videos/{id}/stream",
            Self::VideoThumbnail => "/api/videos/{id}/thumbnail/{size}",
            Self::VideoSubtitles => "/api/videos/{id}/subtitles/{lang}",
            Self::VideoTranscode => "/api/videos/{id}/transcode",
            Self::Video => "/api/videos/{id}",
            Self::Image => "/api/images/{id}",
            Self::StorageStats => "/api/storage/stats",
            Self::StorageCleanup => "/api/storage/cleanup",
            Self::TelegramWebhook => "/telegram/webhook",
            Self::Me => "/api/me",
            Self::Session => "/api/session",
            Self::AdminUsers => "/api/admin/users",
            Self::AdminUser => "/api/admin/users/{id}",
            Self::AdminUserTokens => "/api/admin/users/{id}/tokens",
            Self::AdminToken => "/api/admin/tokens/{id}",
            Self::AdminStorageMetrics => "/api/admin/storage/metrics",
            Self::AdminBackups => "/api/admin/backups",
            Self::AdminWebhooks => "/api/admin/webhooks",
            Self::AdminBackup => "/api/admin/backups/{id}",
            Self::Other => "other",
        }
    }

    /// The template `path` matches (the same shapes the router accepts).
    pub fn of_path(path: &str) -> Self {
        let path = path.strip_suffix('/').unwrap_or(path);
        let mut segments = path.split('/').skip(1);
        let parts: [Option<&str>; 6] = std::array::from_fn(|_| segments.next());
        if segments.next().is_some() {
            return Self::Other;
        }
        match parts {
            [Some("healthz"), None, ..] => Self::Healthz,
            [Some("readyz"), None, ..] => Self::Readyz,
            [Some("metrics"), None, ..] => Self::Metrics,
            [Some("telegram"), Some("webhook"), None, ..] => Self::TelegramWebhook,
            [Some("api"), Some("capture"), None, ..] => Self::Capture,
            [Some("api"), Some("items"), None, ..] => Self::Items,
            [Some("api"), Some("items"), Some(_), None, ..] => Self::Item,
            [
                Some("api"),
                Some("items"),
                Some(_),
                Some("events"),
                None,
                ..,
            ] => Self::ItemEvents,
            [Some("api"), Some("videos"), Some(_), None, ..] => Self::Video,
            [Some("api"), Some("images"), Some(_), None, ..] => Self::Image,
            [
                Some("api"),
                Some("videos"),
                Some(_),
                Some("metadata"),
                None,
                ..,
            ] => Self::VideoMetadata,
            [
                Some("api"),
                Some("videos"),
                Some(_),
                Some("stream"),
                None,
                ..,
            ] => Self::VideoStream,
            [
                Some("api"),
                Some("videos"),
                Some(_),
                Some("transcode"),
                None,
                ..,
            ] => Self::VideoTranscode,
            [
                Some("api"),
                Some("videos"),
                Some(_),
                Some("thumbnail"),
                Some(_),
                None,
            ] => Self::VideoThumbnail,
            [
                Some("api"),
                Some("videos"),
                Some(_),
                Some("subtitles"),
                Some(_),
                None,
            ] => Self::VideoSubtitles,
            [Some("api"), Some("storage"), Some("stats"), None, ..] => Self::StorageStats,
            [Some("api"), Some("storage"), Some("cleanup"), None, ..] => Self::StorageCleanup,
            [Some("api"), Some("me"), None, ..] => Self::Me,
            [Some("api"), Some("session"), None, ..] => Self::Session,
            [Some("api"), Some("admin"), Some("users"), None, ..] => Self::AdminUsers,
            [Some("api"), Some("admin"), Some("backups"), None, ..] => Self::AdminBackups,
            [Some("api"), Some("admin"), Some("webhooks"), None, ..] => Self::AdminWebhooks,
            [
                Some("api"),
                Some("admin"),
                Some("backups"),
                Some(_),
                None,
                ..,
            ] => Self::AdminBackup,
            [
                Some("api"),
                Some("admin"),
                Some("storage"),
                Some("metrics"),
                None,
                ..,
            ] => Self::AdminStorageMetrics,
            [Some("api"), Some("admin"), Some("users"), Some(_), None, ..] => Self::AdminUser,
            [
                Some("api"),
                Some("admin"),
                Some("users"),
                Some(_),
                Some("tokens"),
                None,
            ] => Self::AdminUserTokens,
            [
                Some("api"),
                Some("admin"),
                Some("tokens"),
                Some(_),
                None,
                ..,
            ] => Self::AdminToken,
            _ => Self::Other,
        }
    }

    /// Position in `ALL` (declaration order; a test keeps the two in step).
    const fn index(self) -> usize {
        self as usize
    }
}

const METHODS: [&str; 8] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "other",
];
const STATUS_CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

fn method_index(method: &http::Method) -> usize {
    METHODS
        .iter()
        .position(|m| *m == method.as_str())
        .unwrap_or(METHODS.len() - 1)
}

fn status_index(status: u16) -> usize {
    usize::from((status / 100).clamp(1, 5) - 1)
}

pub struct HttpMetrics {
    requests: IntCounterVec,
    resolved: Box<[OnceLock<IntCounter>]>,
    durations: Box<[Histogram]>,
    streamed: IntCounter,
}

/// From a sub-millisecond metadata answer to a slow readiness check.
const LATENCY_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

impl HttpMetrics {
    pub fn register(registry: &Registry) -> Self {
        let requests = IntCounterVec::new(
            Opts::new(
                "prsnl_http_requests_total",
                "HTTP requests by route template, method and status class.",
            ),
            &["route", "method", "status_class"],
        )
        .expect("valid metric");
        let durations = HistogramVec::new(
            HistogramOpts::new(
                "prsnl_http_request_duration_seconds",
                "Time from a request's arrival to its response headers, by route template.",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
            &["route"],
        )
        .expect("valid metric");
        let streamed = IntCounter::new(
            "prsnl_http_streamed_bytes_total",
            "Media bytes (videos, images, renditions, thumbnails) sent in response bodies.",
        )
        .expect("valid metric");
        for collector in [
            Box::new(requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(durations.clone()),
            Box::new(streamed.clone()),
        ] {
            registry
                .register(collector)
                .expect("metric names are unique");
        }
        let slots = Route::ALL.len() * METHODS.len() * STATUS_CLASSES.len();
        let metrics = Self {
            resolved: (0..slots).map(|_| OnceLock::new()).collect(),
            durations: Route::ALL
                .iter()
                .map(|route| durations.with_label_values(&[route.template()]))
                .collect(),
            requests,
            streamed,
        };
        // Each route's common answer exists from the start (see families.rs on why).
        for route in Route::ALL {
            let method = match route {
                Route::Capture | Route::VideoTranscode | Route::StorageCleanup => {
                    http::Method::POST
                }
                Route::TelegramWebhook => http::Method::POST,
                Route::Video => http::Method::DELETE,
                _ => http::Method::GET,
            };
            metrics.counter(route, &method, 200);
        }
        metrics
    }

    fn counter(&self, route: Route, method: &http::Method, status: u16) -> &IntCounter {
        let (m, s) = (method_index(method), status_index(status));
        let slot = (route.index() * METHODS.len() + m) * STATUS_CLASSES.len() + s;
        self.resolved[slot].get_or_init(|| {
            self.requests
                .with_label_values(&[route.template(), METHODS[m], STATUS_CLASSES[s]])
        })
    }

    /// Counts a request that was answered with `status` after `seconds`.
    pub fn observe(&self, route: Route, method: &http::Method, status: u16, seconds: f64) {
        self.counter(route, method, status).inc();
        self.durations[route.index()].observe(seconds);
    }

    /// The counter of media bytes handed to connections (a cheap, shared handle).
    pub fn streamed_counter(&self) -> IntCounter {
        self.streamed.clone()
    }

    pub fn requests(&self, route: Route, method: &http::Method, status: u16) -> u64 {
        self.counter(route, method, status).get()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_map_to_their_templates() {
        let cases = [
            ("/healthz", Route::Healthz),
            ("/readyz", Route::Readyz),
            ("/metrics", Route::Metrics),
            ("/api/capture", Route::Capture),
            ("/api/items", Route::Items),
            ("/api/items/", Route::Items),
            ("/api/items/0190-x", Route::Item),
            ("/api/items/0190-x/events", Route::ItemEvents),
            ("/api/videos/abc", Route::Video),
            ("/api/videos/abc/metadata", Route::VideoMetadata),
            ("/api/videos/abc/stream", Route::VideoStream),
            ("/api/videos/abc/transcode", Route::VideoTranscode),
            ("/api/videos/abc/thumbnail/small", Route::VideoThumbnail),
            ("/api/videos/abc/subtitles/en", Route::VideoSubtitles),
            ("/api/images/abc", Route::Image),
            ("/api/images/abc/x", Route::Other),
            ("/api/storage/stats", Route::StorageStats),
            ("/api/storage/cleanup", Route::StorageCleanup),
            ("/telegram/webhook", Route::TelegramWebhook),
            ("/", Route::Other),
            ("", Route::Other),
            ("/api", Route::Other),
            ("/api/videos/abc/stream/extra", Route::Other),
            ("/api/videos/a/b/c/d/e/f/g", Route::Other),
            ("/wp-login.php", Route::Other),
            ("/api/items/x/y", Route::Other),
        ];
        for (path, route) in cases {
            assert_eq!(Route::of_path(path), route, "{path}");
        }
    }

    #[test]
    fn indexes_follow_the_list() {
        for (i, route) in Route::ALL.iter().enumerate() {
            assert_eq!(route.index(), i);
        }
    }

    #[test]
    fn counters_are_resolved_once_and_keyed_by_class() {
        let metrics = HttpMetrics::register(&Registry::new());
        let get = http::Method::GET;
        metrics.observe(Route::VideoStream, &get, 206, 0.001);
        metrics.observe(Route::VideoStream, &get, 200, 0.001);
        metrics.observe(Route::VideoStream, &get, 416, 0.001);
        assert_eq!(metrics.requests(Route::VideoStream, &get, 299), 2);
        assert_eq!(metrics.requests(Route::VideoStream, &get, 400), 1);
        let odd = http::Method::from_bytes(b"BREW").unwrap();
        metrics.observe(Route::Other, &odd, 405, 0.0);
        assert_eq!(metrics.requests(Route::Other, &odd, 405), 1);
    }
}
