//! Outbound network policy: resolving names under the SSRF policy, and the egress guard that
//! enforces it on every connection a download makes.

pub mod egress;
pub mod resolve;
pub mod webhook;

/// Chooses the TLS implementation of every HTTP client in the process (ring). Idempotent:
/// later calls, from a second app in the same process, find it installed.
pub fn install_tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
