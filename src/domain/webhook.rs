//! Webhooks: the events an item's life sends, how a delivery is signed, and how long a failed
//! delivery waits before the next attempt.
//!
//! A receiver checks a delivery with the secret it shares with us: the
//! `X-Prsnl-Signature: t=<unix seconds>,v1=<hex>` header holds the time the delivery was sent
//! and HMAC-SHA256 over `"<t>.<body>"`; signing the time with the body lets the receiver refuse
//! an old delivery replayed by someone who saw it. `X-Prsnl-Delivery` is one id per event and
//! webhook: a retry (or a resend after a crash) carries the same id, so receivers can drop
//! duplicates; a new event never reuses one.

use std::time::Duration;

/// What happened to an item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WebhookEvent {
    Completed,
    Failed,
    Deleted,
}

impl WebhookEvent {
    pub const ALL: [WebhookEvent; 3] = [Self::Completed, Self::Failed, Self::Deleted];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Completed => "item.completed",
            Self::Failed => "item.failed",
            Self::Deleted => "item.deleted",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|e| e.as_str() == s)
    }
}

/// Attempts a delivery gets before it is given up (about a day of backoff at the default base).
pub const MAX_ATTEMPTS: u32 = 12;

/// The longest wait between two attempts.
const MAX_DELAY: Duration = Duration::from_secs(3600);

/// How long to wait after the `attempt`-th failure (1-based): `base`, doubling, at most an hour.
pub fn retry_delay(attempt: u32, base: Duration) -> Duration {
    let factor = 1u32 << attempt.saturating_sub(1).min(16);
    base.saturating_mul(factor).min(MAX_DELAY)
}

/// The `X-Prsnl-Signature` header's value for `body` sent at `timestamp` (Unix seconds).
pub fn signature(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
    let mut context = ring::hmac::Context::with_key(&key);
    context.update(timestamp.to_string().as_bytes());
    context.update(b".");
    context.update(body);
    format!("t={timestamp},v1={}", hex::encode(context.sign().as_ref()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_round_trip() {
        for event in WebhookEvent::ALL {
            assert_eq!(WebhookEvent::parse(event.as_str()), Some(event));
        }
        assert_eq!(WebhookEvent::parse("item.created"), None);
    }

    #[test]
    fn the_signature_is_hmac_sha256_over_the_time_and_the_body() {
        // RFC 4231 test case 2's key and message, split as "<t>.<body>" would be.
        let sig = signature(b"Jefe", 1_700_000_000, b"{}");
        assert!(sig.starts_with("t=1700000000,v1="), "{sig}");
        assert_eq!(sig.len(), "t=1700000000,v1=".len() + 64);
        assert_ne!(
            sig,
            signature(b"Jefe", 1_700_000_001, b"{}"),
            "the time is signed"
        );
        assert_ne!(sig, signature(b"other", 1_700_000_000, b"{}"));
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, b"Jefe");
        let expected = hex::encode(ring::hmac::sign(&key, b"1700000000.{}").as_ref());
        assert!(sig.ends_with(&expected));
    }

    #[test]
    fn retries_back_off_to_an_hour() {
        let base = Duration::from_secs(10);
        assert_eq!(retry_delay(1, base), Duration::from_secs(10));
        assert_eq!(retry_delay(2, base), Duration::from_secs(20));
        assert_eq!(retry_delay(5, base), Duration::from_secs(160));
        assert_eq!(retry_delay(40, base), MAX_DELAY);
    }
}
