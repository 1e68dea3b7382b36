//! People: who is asking. Authentication of API requests (tokens, session cookies, or the
//! first admin while nobody has credentials), signing in with a password, and issuing tokens.
//!
//! Every request looks its token or session up in the database (no cache), so a revocation
//! by another process holds at once. A token's `last_used_at` is written at most once a
//! minute, off the request's path.

pub mod rounds;
pub mod secrets;
pub mod throttle;

use std::net::IpAddr;
use std::time::{Duration, Instant};

use crate::clock;
use crate::db::users::User;
use crate::db::{self, Db, DbError};
use crate::domain::Timestamp;
use crate::domain::people::{Principal, Role, UserId};
use crate::settings::Secret;
pub use rounds::Lookups;
use rounds::{Found, Key};
pub use throttle::SignInThrottle;

/// How long a session lasts after signing in.
pub const SESSION_LIFETIME: Duration = Duration::from_secs(30 * 24 * 3600);

/// What a request presented.
#[derive(Debug, Clone, Copy)]
pub enum Presented<'a> {
    Bearer(&'a str),
    Session(&'a str),
    Nothing,
}

/// Why a request is not let in.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    #[error("{0}")]
    Unauthorized(&'static str),
    #[error("cannot check credentials now: {0}")]
    Unavailable(String),
}

/// Who the request acts for. `loopback` says whether the API listens on a loopback address
/// only: while nobody has a password or a token, requests there act as the first admin.
pub async fn authenticate(
    lookups: &Lookups,
    presented: Presented<'_>,
    loopback: bool,
) -> Result<Principal, Refused> {
    let key = match presented {
        Presented::Bearer(token) => Key::Bearer(secrets::fingerprint(token)),
        Presented::Session(secret) => Key::Session(secrets::fingerprint(secret)),
        Presented::Nothing => Key::Open,
    };
    let found = lookups.find(key).await.map_err(Refused::Unavailable)?;
    let (user, role) = match found {
        Found::Bearer(holder) => {
            holder.ok_or(Refused::Unauthorized("the token is unknown or was revoked"))?
        }
        Found::Session(holder) => holder.ok_or(Refused::Unauthorized(
            "the session has ended: sign in again",
        ))?,
        Found::Open {
            credentials: true, ..
        } => {
            return Err(Refused::Unauthorized(
                "a bearer token or a session is required",
            ));
        }
        Found::Open { .. } if !loopback => {
            return Err(Refused::Unauthorized(
                "nobody has credentials yet: create a user with `prsnl user add`",
            ));
        }
        Found::Open { admin, .. } => (
            admin.ok_or(Refused::Unauthorized("the vault has no admin"))?,
            Role::Admin,
        ),
    };
    Ok(Principal { user, role })
}

/// Why a sign-in failed.
#[derive(Debug, thiserror::Error)]
pub enum SignInRefused {
    #[error("wrong name or password")]
    Wrong,
    #[error("too many failed sign-ins: try again in {} s", .0.as_secs().max(1))]
    Throttled(Duration),
    #[error(transparent)]
    Db(#[from] DbError),
}

/// A session just opened: the cookie's value (shown once, to the browser) and its user.
#[derive(Debug)]
pub struct Session {
    pub secret: String,
    pub user: User,
    pub expires_at: Timestamp,
}

/// Checks a name and password and opens a session. Failed tries are counted per name and per
/// `client`; while either must wait, the password is not even checked.
pub async fn sign_in(
    db: &Db,
    throttle: &SignInThrottle,
    name: &str,
    password: &str,
    client: IpAddr,
) -> Result<Session, SignInRefused> {
    throttle
        .check(name, client, Instant::now())
        .map_err(SignInRefused::Throttled)?;
    let found = db::users::credentials(db, name).await?;
    let stored = found.as_ref().map_or_else(
        || secrets::decoy_hash().to_string(),
        |(_, hash)| hash.clone(),
    );
    let password = password.to_string();
    let matches = tokio::task::spawn_blocking(move || secrets::verify_password(&stored, &password))
        .await
        .unwrap_or(false);
    let user = match found {
        Some((user, _)) if matches => user,
        _ => {
            throttle.failed(name, client, Instant::now());
            return Err(SignInRefused::Wrong);
        }
    };
    throttle.succeeded(name, client);
    let secret = secrets::new_session_secret();
    let now = clock::now();
    let lifetime = i64::try_from(SESSION_LIFETIME.as_millis()).unwrap_or(i64::MAX);
    let expires_at = Timestamp::from_millis(now.as_millis() + lifetime);
    db::sessions::insert(db, &secrets::fingerprint(&secret), user.id, now, expires_at).await?;
    Ok(Session {
        secret,
        user,
        expires_at,
    })
}

/// Ends the session whose cookie is `secret`.
pub async fn sign_out(db: &Db, secret: &str) -> Result<(), DbError> {
    db::sessions::delete(db, &secrets::fingerprint(secret), clock::now()).await
}

/// A token just issued: its id (for listing and revoking) and the token itself, shown once.
#[derive(Debug)]
pub struct IssuedToken {
    pub id: String,
    pub token: String,
}

/// Issues a new API token for `user`.
pub async fn issue_token(db: &Db, user: UserId, label: &str) -> Result<IssuedToken, DbError> {
    let token = secrets::new_token();
    let id = secrets::new_token_id();
    db::tokens::insert(
        db,
        &id,
        user,
        label,
        &secrets::fingerprint(&token),
        clock::now(),
    )
    .await?;
    Ok(IssuedToken { id, token })
}

/// Sets a user's password (hashed on a blocking thread) and ends their sessions.
pub async fn set_password(db: &Db, user: UserId, password: &str) -> Result<(), DbError> {
    let password = password.to_string();
    let hash = tokio::task::spawn_blocking(move || secrets::hash_password(&password))
        .await
        .map_err(|e| DbError::Corrupt(format!("hashing stopped: {e}")))?
        .map_err(DbError::Corrupt)?;
    db::users::set_password(db, user, Some(&hash)).await?;
    db::sessions::delete_of(db, user).await
}

/// Brings an existing vault up to people: an admin exists, every item has an owner, and the
/// tokens still listed in `security.api_tokens` are the admin's tokens (hashed; the key is
/// deprecated). Idempotent; runs at every start.
pub async fn upgrade(db: &Db, config_tokens: &[Secret]) -> Result<User, DbError> {
    let admin = db::people::ensure_admin(db, clock::now()).await?;
    let adopted = db::people::adopt_orphans(db, admin.id).await?;
    if adopted > 0 {
        tracing::info!(adopted, admin = %admin.name, "items without an owner now belong to the admin (or their linked Telegram user)");
    }
    if !config_tokens.is_empty() {
        tracing::warn!(
            tokens = config_tokens.len(),
            admin = %admin.name,
            "security.api_tokens is deprecated: its tokens are now the admin's personal tokens \
             (prsnl token list); remove the key and manage tokens with prsnl token"
        );
    }
    for (n, token) in config_tokens.iter().enumerate() {
        let hash = secrets::fingerprint(token.expose());
        let id = secrets::new_token_id();
        let label = format!("security.api_tokens #{}", n + 1);
        db::tokens::insert(db, &id, admin.id, &label, &hash, clock::now()).await?;
    }
    Ok(admin)
}
