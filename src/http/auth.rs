//! Who a request acts for (THREATS AUTH-01/02/03): a bearer token, or a session cookie, looked
//! up in the database on every request (`people::authenticate`); while nobody has a password
//! or a token, requests on a loopback listener act as the first admin.
//!
//! A cookie rides along with every request a browser makes, including those another site
//! triggers, so cookie-authenticated requests that change something must come from our own
//! origin (SameSite=Strict on the cookie, and the `Origin` header when the browser sends it).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use warp::Filter;
use warp::http::{HeaderMap, Method, StatusCode};

use super::error::ApiError;
use crate::context::AppContext;
use crate::domain::ErrorCode;
use crate::domain::people::Principal;
use crate::people::{self, Presented, Refused};

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "prsnl_session";

/// The peer of a connection, put into each request's extensions by the server.
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub SocketAddr);

fn unauthorized(message: &str) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, ErrorCode::Unauthorized, message)
}

/// The value of our session cookie in a `Cookie` header.
pub fn session_cookie(header: &str) -> Option<&str> {
    header
        .split(';')
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.trim())
        .filter(|value| !value.is_empty())
}

/// What the request presents: a bearer token wins over a cookie.
fn presented(headers: &HeaderMap) -> Result<Presented<'_>, ApiError> {
    if let Some(value) = headers.get("authorization") {
        let value = value
            .to_str()
            .map_err(|_| unauthorized("the Authorization header is not text"))?;
        let token = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| unauthorized("the Authorization header must be `Bearer <token>`"))?;
        return Ok(Presented::Bearer(token));
    }
    let cookie = headers
        .get_all("cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(session_cookie);
    Ok(cookie.map_or(Presented::Nothing, Presented::Session))
}

/// A cookie-authenticated request that changes something must not come from another site.
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get("origin").and_then(|v| v.to_str().ok()) else {
        return true; // not a cross-site request a browser would make without it
    };
    let host = headers.get("host").and_then(|v| v.to_str().ok());
    let origin_host = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"));
    matches!((origin_host, host), (Some(o), Some(h)) if o.eq_ignore_ascii_case(h))
}

/// Authenticates a request's headers.
pub async fn principal_of(
    ctx: &AppContext,
    method: &Method,
    headers: &HeaderMap,
) -> Result<Principal, ApiError> {
    let presented = presented(headers)?;
    if matches!(presented, Presented::Session(_))
        && !matches!(*method, Method::GET | Method::HEAD)
        && !same_origin(headers)
    {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            ErrorCode::Forbidden,
            "a signed-in browser may change things only from this service's own pages",
        ));
    }
    let loopback = ctx.settings.server.listen.ip().is_loopback();
    people::authenticate(&ctx.credentials, presented, loopback)
        .await
        .map_err(|e| match e {
            Refused::Unauthorized(message) => unauthorized(message),
            e @ Refused::Unavailable(_) => {
                ApiError::unavailable(ErrorCode::Unavailable, e.to_string())
            }
        })
}

/// A filter that authenticates the request and hands on who it acts for (401 otherwise).
pub fn principal(
    ctx: Arc<AppContext>,
) -> impl Filter<Extract = (Principal,), Error = warp::Rejection> + Clone {
    warp::method().and(warp::header::headers_cloned()).and_then(
        move |method: Method, headers: HeaderMap| {
            let ctx = Arc::clone(&ctx);
            async move {
                principal_of(&ctx, &method, &headers)
                    .await
                    .map_err(warp::reject::custom)
            }
        },
    )
}

/// Lets only admins through (403 `forbidden` for members).
pub fn admin(principal: &Principal) -> Result<(), ApiError> {
    if principal.is_admin() {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            ErrorCode::Forbidden,
            "this route is for admins",
        ))
    }
}

/// The client's address: the socket's peer, or the first address `X-Forwarded-For` names
/// when the peer is a trusted proxy (`server.trusted_proxies`). The proxy appends the address
/// it saw, so the rightmost entry not itself a trusted proxy is the client.
pub fn client_address(peer: Option<Peer>, headers: &HeaderMap, trusted: &[IpAddr]) -> IpAddr {
    let socket = peer.map_or(IpAddr::from([127, 0, 0, 1]), |p| p.0.ip());
    if !trusted.contains(&socket) {
        return socket;
    }
    let forwarded: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|a| a.trim().parse().ok())
        .collect();
    forwarded
        .iter()
        .rev()
        .find(|a| !trusted.contains(a))
        .copied()
        .unwrap_or(socket)
}

/// Whether the request reached us over HTTPS through a trusted proxy (the cookie is then
/// marked `Secure`).
pub fn via_https(peer: Option<Peer>, headers: &HeaderMap, trusted: &[IpAddr]) -> bool {
    peer.is_some_and(|p| trusted.contains(&p.0.ip()))
        && headers
            .get("x-forwarded-proto")
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"https"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, value.parse().unwrap());
        }
        map
    }

    #[test]
    fn the_session_cookie_is_found_among_others() {
        assert_eq!(session_cookie("a=1; prsnl_session=abc; b=2"), Some("abc"));
        assert_eq!(session_cookie("prsnl_session="), None);
        assert_eq!(session_cookie("xprsnl_session=abc"), None);
    }

    #[test]
    fn forwarded_addresses_count_only_from_trusted_proxies() {
        let proxy: IpAddr = "10.0.0.2".parse().unwrap();
        let peer = |ip: IpAddr| Some(Peer(SocketAddr::new(ip, 40000)));
        let h = headers(&[("x-forwarded-for", "198.51.100.7, 203.0.113.9")]);
        // Not trusted: the socket's address, whatever the header says.
        assert_eq!(client_address(peer(proxy), &h, &[]), proxy);
        // Trusted: the rightmost address the proxy did not add itself.
        assert_eq!(
            client_address(peer(proxy), &h, &[proxy]),
            "203.0.113.9".parse::<IpAddr>().unwrap()
        );
        let spoofed = headers(&[("x-forwarded-for", "garbage")]);
        assert_eq!(client_address(peer(proxy), &spoofed, &[proxy]), proxy);
    }

    #[test]
    fn cross_site_origins_are_told_apart() {
        assert!(same_origin(&headers(&[("host", "vault.lan:8080")])));
        assert!(same_origin(&headers(&[
            ("host", "vault.lan:8080"),
            ("origin", "http://vault.lan:8080")
        ])));
        assert!(!same_origin(&headers(&[
            ("host", "vault.lan:8080"),
            ("origin", "https://evil.example")
        ])));
        assert!(!same_origin(&headers(&[
            ("host", "vault.lan:8080"),
            ("origin", "null")
        ])));
    }
}
