//! Webhooks against a real receiver on loopback: a completed, a failed and a deleted item each
//! reach it signed (HMAC-SHA256 over the time and the body), a 500 is retried with the same
//! delivery id, a webhook aimed at a loopback port outside its own `allow` is refused and
//! never reaches it, and opening an address to a webhook does not open it to captures.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use warp::Filter;
use warp::http::{HeaderMap, StatusCode};

use crate::fixture_server::Route;
use crate::helpers::{on_both_backends, spawn_app_with, wait_for};
use prsnl::domain::webhook::WebhookEvent;
use prsnl::settings::{Secret, WebhookSettings};

const SECRET: &str = "a-shared-secret-of-some-length";

/// What a receiver got: each request's headers and body.
type Received = Arc<Mutex<Vec<(HeaderMap, Vec<u8>)>>>;

/// A receiver on loopback that answers 500 to its first request and 200 after.
async fn receiver() -> (SocketAddr, Received) {
    let received: Received = Arc::default();
    let log = Arc::clone(&received);
    let route = warp::post()
        .and(warp::header::headers_cloned())
        .and(warp::body::bytes())
        .map(move |headers: HeaderMap, body: bytes::Bytes| {
            let mut log = log.lock().unwrap();
            log.push((headers, body.to_vec()));
            let status = if log.len() == 1 {
                StatusCode::INTERNAL_SERVER_ERROR
            } else {
                StatusCode::OK
            };
            warp::reply::with_status("", status)
        });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(warp::serve(route).incoming(listener).run());
    (addr, received)
}

fn webhook(name: &str, addr: SocketAddr, allow: Option<SocketAddr>) -> WebhookSettings {
    WebhookSettings {
        name: name.into(),
        url: format!("http://{addr}/hooks/prsnl?token=receiver-own")
            .parse()
            .unwrap(),
        secret: Secret::new(SECRET),
        events: WebhookEvent::ALL.to_vec(),
        allow: allow
            .map(|a| a.to_string().parse().unwrap())
            .into_iter()
            .collect(),
        timeout: Duration::from_secs(5),
        retry_base: Duration::from_millis(200),
    }
}

/// The signature header checked as a receiver would: HMAC-SHA256 of "<t>.<body>".
fn verify(headers: &HeaderMap, body: &[u8]) {
    let header = headers["x-prsnl-signature"].to_str().unwrap();
    let (t, v1) = header.split_once(",v1=").unwrap();
    let t = t.strip_prefix("t=").unwrap();
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, SECRET.as_bytes());
    let mut signed = format!("{t}.").into_bytes();
    signed.extend_from_slice(body);
    ring::hmac::verify(&key, &signed, &hex::decode(v1).unwrap()).expect("the signature verifies");
    let age = prsnl::clock::now().as_millis() / 1000 - t.parse::<i64>().unwrap();
    assert!((0..600).contains(&age), "signed at send time: {age}");
}

fn events(received: &Received) -> Vec<(String, String, Value)> {
    received
        .lock()
        .unwrap()
        .iter()
        .map(|(headers, body)| {
            verify(headers, body);
            let json: Value = serde_json::from_slice(body).unwrap();
            (
                headers["x-prsnl-event"].to_str().unwrap().to_string(),
                headers["x-prsnl-delivery"].to_str().unwrap().to_string(),
                json,
            )
        })
        .collect()
}

on_both_backends! {
    async fn item_events_reach_a_webhook_signed_retried_and_only_where_allowed(backend: Backend) {
        let (home, received) = receiver().await;
        let (forbidden, forbidden_got) = receiver().await;
        let app = spawn_app_with(backend, |s| {
            s.webhooks = vec![webhook("home", home, Some(home)), webhook("blocked", forbidden, None)];
        })
        .await;
        let url = app.server.add("/clip.mp4", Route::file(app.fixtures.path("h264_aac_faststart.mp4"), "video/mp4"));
        let item = app.capture_and_wait(&url).await;
        assert_eq!(item["status"], "completed", "{item}");
        let id = item["id"].as_str().unwrap().to_string();

        // The first attempt gets a 500, the second a 200: the same delivery both times.
        assert!(wait_for(Duration::from_secs(30), || async { received.lock().unwrap().len() >= 2 }).await, "retried");
        let got = events(&received);
        assert_eq!((got[0].0.as_str(), got[1].0.as_str()), ("item.completed", "item.completed"));
        assert_eq!(got[0].1, got[1].1, "a retry carries the same delivery id");
        let body = &got[1].2;
        assert_eq!((body["event"].as_str(), body["delivery"].as_str()), (Some("item.completed"), Some(got[1].1.as_str())));
        assert_eq!(body["item"]["id"], id.as_str());
        assert_eq!(body["item"]["title"], "clip");
        assert!(body["item"]["paths"]["file"].as_str().unwrap().ends_with(&format!("{id}.mp4")), "{body}");
        assert!(body["item"]["stream_url"].as_str().unwrap().ends_with(&format!("/api/videos/{id}/stream")));
        assert_eq!(body["item"]["metadata"]["width"], 640);

        // A failure and a delete are told too, each with a new delivery id.
        let missing = app.server.add("/gone.mp4", Route::status(404));
        let failed = app.capture_and_wait(&missing).await;
        assert_eq!(failed["status"], "failed", "{failed}");
        let deleted = app.client.delete(app.url(&format!("/api/videos/{id}"))).send().await.unwrap();
        assert!(deleted.status().is_success());
        assert!(wait_for(Duration::from_secs(30), || async { received.lock().unwrap().len() >= 4 }).await, "{:?}", events(&received).iter().map(|e| e.0.clone()).collect::<Vec<_>>());
        let got = events(&received);
        let kinds: Vec<&str> = got.iter().map(|e| e.0.as_str()).collect();
        assert!(kinds.contains(&"item.failed") && kinds.contains(&"item.deleted"), "{kinds:?}");
        let ids: std::collections::BTreeSet<&str> = got.iter().map(|e| e.1.as_str()).collect();
        assert_eq!(ids.len(), 3, "one delivery id per event");
        let gone = got.iter().find(|e| e.0 == "item.deleted").unwrap();
        assert_eq!(gone.2["item"]["id"], id.as_str(), "the item as it was");
        assert_eq!(gone.2["item"]["error"]["code"].as_str(), None);

        // The other webhook's port is loopback outside its own allow: refused, never reached.
        let log = app.get_json("/api/admin/webhooks").await;
        let hooks = log["webhooks"].as_array().unwrap();
        let home_log = hooks.iter().find(|h| h["name"] == "home").unwrap();
        assert_eq!(home_log["url"], format!("http://{home}"), "only the origin is shown");
        let completed = home_log["deliveries"].as_array().unwrap().iter().find(|d| d["event"] == "item.completed").unwrap();
        assert_eq!((completed["state"].as_str(), completed["attempts"].as_u64(), completed["last_status"].as_u64()), (Some("delivered"), Some(2), Some(200)), "{completed}");
        let blocked = hooks.iter().find(|h| h["name"] == "blocked").unwrap();
        let refused = &blocked["deliveries"][0];
        assert_eq!(refused["state"], "pending", "refused deliveries are retried: {refused}");
        assert!(refused["last_error"].as_str().unwrap().contains("127.0.0.1"), "{refused}");
        assert!(forbidden_got.lock().unwrap().is_empty(), "the forbidden port was never reached");

        // Opening the receiver to the webhook did not open it to captures.
        let refused = app.post_capture(&format!("http://{home}/clip.mp4")).await;
        assert_eq!(refused.status(), 400);
        let refused: Value = refused.json().await.unwrap();
        assert_eq!(refused["error"]["code"], "ssrf_blocked", "{refused}");

        // Nobody without credentials reads the log.
        let denied = app.client.get(app.url("/api/admin/webhooks")).bearer_auth("prsnl_not-a-token").send().await.unwrap();
        assert_eq!(denied.status(), 401);
    }
}
