//! Name resolution under the address policy.
//!
//! A name is resolved once and judged by every answer: if any address is not allowed, the
//! whole name is refused (THREATS SSRF-04, mixed answers). Callers then dial the checked
//! addresses, never the name again, so a rebinding DNS server cannot swap the target.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use crate::domain::ssrf::{Denied, EgressPolicy};

/// How long a lookup may take before the target counts as unreachable.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error(transparent)]
    Denied(#[from] Denied),
    #[error("cannot resolve {host}: {reason}")]
    Lookup { host: String, reason: String },
}

/// Resolves `host:port` and checks every answer against `policy`.
pub async fn resolve_checked(
    policy: &EgressPolicy,
    host: &str,
    port: u16,
) -> Result<Vec<SocketAddr>, ResolveError> {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let addrs: Vec<SocketAddr> = if let Ok(ip) = host.parse::<IpAddr>() {
        vec![SocketAddr::new(ip, port)]
    } else if is_loopback_name(host) {
        // Loopback by definition (RFC 6761), whatever a resolver says or fails to say: judged
        // as 127.0.0.1 at once, not accepted as "does not resolve yet" and left to fail later.
        vec![SocketAddr::new(IpAddr::from([127, 0, 0, 1]), port)]
    } else {
        let lookup = tokio::time::timeout(LOOKUP_TIMEOUT, tokio::net::lookup_host((host, port)));
        let lookup_error = |reason: String| ResolveError::Lookup {
            host: host.to_string(),
            reason,
        };
        lookup
            .await
            .map_err(|_| lookup_error("timed out".into()))?
            .map_err(|e| lookup_error(e.to_string()))?
            .collect()
    };
    if addrs.is_empty() {
        return Err(ResolveError::Lookup {
            host: host.to_string(),
            reason: "no addresses".into(),
        });
    }
    for addr in &addrs {
        policy.check(*addr)?;
    }
    Ok(addrs)
}

/// `localhost` and every name under it, with or without the root's trailing dot, in any case.
pub fn is_loopback_name(host: &str) -> bool {
    let name = host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase();
    name == "localhost" || name.ends_with(".localhost")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_under_localhost_are_loopback_by_definition() {
        for name in [
            "localhost",
            "localhost.",
            "LocalHost",
            "a.localhost",
            "x.y.localhost.",
        ] {
            assert!(is_loopback_name(name), "{name}");
        }
        for name in [
            "localhost.example.com",
            "notlocalhost",
            "example.com",
            "localhost..",
            "",
        ] {
            assert!(!is_loopback_name(name), "{name}");
        }
    }

    #[tokio::test]
    async fn loopback_names_are_refused_without_a_lookup_unless_loopback_is_allowed() {
        let policy = EgressPolicy::default();
        for name in ["localhost.", "video.localhost", "VIDEO.LOCALHOST."] {
            let err = resolve_checked(&policy, name, 80).await.unwrap_err();
            assert!(matches!(err, ResolveError::Denied(_)), "{name}: {err}");
        }
        let allowed = EgressPolicy::new(vec!["127.0.0.1:8081".parse().unwrap()]);
        let addrs = resolve_checked(&allowed, "localhost.", 8081).await.unwrap();
        assert_eq!(addrs, vec!["127.0.0.1:8081".parse().unwrap()]);
    }

    #[tokio::test]
    async fn a_name_that_resolves_to_loopback_is_refused() {
        let policy = EgressPolicy::default();
        let err = resolve_checked(&policy, "localhost", 80).await.unwrap_err();
        assert!(matches!(err, ResolveError::Denied(_)), "{err}");
        assert!(matches!(
            resolve_checked(&policy, "[::1]", 80).await,
            Err(ResolveError::Denied(_))
        ));
    }

    #[tokio::test]
    async fn allowed_literals_pass_without_a_lookup() {
        let policy = EgressPolicy::new(vec!["127.0.0.1:8081".parse().unwrap()]);
        let addrs = resolve_checked(&policy, "127.0.0.1", 8081).await.unwrap();
        assert_eq!(addrs, vec!["127.0.0.1:8081".parse().unwrap()]);
    }
}
