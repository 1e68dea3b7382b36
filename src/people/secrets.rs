//! The secrets people hold: API tokens and session cookies (random, stored only as their
//! SHA-256, which is right for random values: nothing to guess, so a fast hash suffices) and
//! passwords (argon2id, memory-hard, verified off the async threads).

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// Every API token starts with this, so that a leaked one is recognisable (secret scanners,
/// logs) and cannot be mistaken for a session or a password.
pub const TOKEN_PREFIX: &str = "prsnl_";
/// Random bytes in a token or a session cookie.
const SECRET_BYTES: usize = 32;

/// A new API token: `prsnl_` and 43 URL-safe characters (32 random bytes).
pub fn new_token() -> String {
    format!("{TOKEN_PREFIX}{}", random_text())
}

/// A token's public id (listed, used to revoke it): random, unrelated to the token.
pub fn new_token_id() -> String {
    let mut bytes = [0u8; 8];
    rand::rng().fill_bytes(&mut bytes);
    format!("tok_{}", hex::encode(bytes))
}

/// A new session cookie value (no prefix: it never leaves the browser's cookie jar).
pub fn new_session_secret() -> String {
    random_text()
}

fn random_text() -> String {
    let mut bytes = [0u8; SECRET_BYTES];
    rand::rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// What the database keeps of a token or session: its SHA-256 in hex.
pub fn fingerprint(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Hashes a password with argon2id and a random salt (the PHC string holds both). Slow on
/// purpose (tens of milliseconds): run it on a blocking thread.
pub fn hash_password(password: &str) -> Result<String, String> {
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(|e| format!("cannot make a salt: {e}"))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| format!("cannot hash the password: {e}"))
}

/// Whether `password` matches the stored PHC string. A malformed stored hash never matches.
pub fn verify_password(stored: &str, password: &str) -> bool {
    PasswordHash::new(stored).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

/// A hash of no one's password: verified against when the name is unknown, so that a wrong
/// name costs as long as a wrong password and timing does not tell which names exist.
pub fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| hash_password(&random_text()).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_long_random_and_recognisable() {
        let a = new_token();
        let b = new_token();
        assert_ne!(a, b);
        assert!(a.starts_with(TOKEN_PREFIX));
        assert_eq!(a.len(), TOKEN_PREFIX.len() + 43);
        assert!(
            a[TOKEN_PREFIX.len()..]
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
        assert_eq!(fingerprint(&a).len(), 64);
        assert_ne!(fingerprint(&a), fingerprint(&b));
    }

    #[test]
    fn passwords_verify_only_themselves() {
        let hash = hash_password("correct horse").unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password(&hash, "correct horse"));
        assert!(!verify_password(&hash, "correct horsE"));
        assert!(!verify_password("not a hash", "correct horse"));
        assert!(!verify_password(decoy_hash(), "correct horse"));
    }
}
