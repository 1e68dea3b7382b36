//! One webhook delivery over HTTP: the receiver's name resolved once and judged by the
//! webhook's own address policy (THREATS SSRF-04: every answer must pass, and the checked
//! addresses are dialled, never the name again), no proxy, no redirects, signed.

use std::time::SystemTime;

use crate::domain::ssrf::EgressPolicy;
use crate::domain::text;
use crate::domain::webhook::signature;
use crate::net::resolve::resolve_checked;
use crate::settings::WebhookSettings;

/// How a send ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sent {
    /// The receiver answered with this status.
    Answered(u16),
    /// Nothing was sent, or no answer came: why.
    Refused(String),
}

pub async fn send(
    policy: &EgressPolicy,
    hook: &WebhookSettings,
    delivery: &str,
    event: &str,
    body: Vec<u8>,
) -> Sent {
    let url = &hook.url;
    let (Some(host), Some(port)) = (url.host_str(), url.port_or_known_default()) else {
        return Sent::Refused("the webhook URL has no host".into());
    };
    let addrs = match resolve_checked(policy, host, port).await {
        Ok(addrs) => addrs,
        Err(e) => return Sent::Refused(e.to_string()),
    };
    let client = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(hook.timeout)
        .resolve_to_addrs(host.trim_start_matches('[').trim_end_matches(']'), &addrs)
        .user_agent(concat!("prsnl-vault/", env!("CARGO_PKG_VERSION")))
        .build();
    let client = match client {
        Ok(client) => client,
        Err(e) => return Sent::Refused(e.to_string()),
    };
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let request = client
        .post(url.clone())
        .header("content-type", "application/json")
        .header("x-prsnl-event", event)
        .header("x-prsnl-delivery", delivery)
        .header(
            "x-prsnl-signature",
            signature(hook.secret.expose().as_bytes(), now, &body),
        )
        .body(body);
    match request.send().await {
        Ok(response) => Sent::Answered(response.status().as_u16()),
        Err(e) => Sent::Refused(text::clean(&format!("no answer: {e}"), 300)),
    }
}
