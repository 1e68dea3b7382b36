//! An update arrives: from an allowed sender it is stored before anything else happens; from a
//! stranger it is answered with a refusal and not stored at all (TG-02, TG-03).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use teloxide::types::Update;

use super::incoming::{Incoming, classify};
use crate::clock;
use crate::context::AppContext;
use crate::db::{DbError, telegram};

/// What became of an update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Received {
    /// Stored for handling.
    Stored,
    /// Stored before (a redelivery): nothing more to do.
    Duplicate,
    /// A stranger wrote in private: refuse politely (nothing was stored).
    Refuse {
        chat: i64,
        user: u64,
    },
    Ignored(&'static str),
}

/// Stores `update` if its sender may use the bot. An error means it was not stored, and
/// Telegram must not be told it arrived.
pub async fn receive(ctx: &AppContext, update: &Update) -> Result<Received, DbError> {
    match classify(update, &ctx.settings.telegram.allowed_accounts()) {
        Incoming::Ignore(why) => Ok(Received::Ignored(why)),
        Incoming::Stranger { chat, user } => Ok(Received::Refuse { chat, user }),
        Incoming::Act(_) => {
            let payload = serde_json::to_string(update)
                .map_err(|e| DbError::Corrupt(format!("cannot encode an update: {e}")))?;
            let stored =
                telegram::store_update(&ctx.db, i64::from(update.id.0), &payload, clock::now())
                    .await?;
            Ok(if stored {
                Received::Stored
            } else {
                Received::Duplicate
            })
        }
    }
}

pub const REFUSAL: &str = "Sorry, this is a private bot: it only works for the people who run it. \
     Nothing you send here is stored.";

/// Strangers are told once, not once per message: a refusal per user per `every`.
pub struct Refusals {
    every: Duration,
    last: Mutex<HashMap<u64, Instant>>,
}

impl Refusals {
    pub fn new(every: Duration) -> Self {
        Self {
            every,
            last: Mutex::new(HashMap::new()),
        }
    }

    /// True when `user` should be told now (and records that they were).
    pub fn due(&self, user: u64, now: Instant) -> bool {
        let mut last = self.last.lock().expect("refusals lock");
        // Forget old entries so a crowd of strangers cannot grow the map without bound.
        if last.len() > 10_000 {
            last.retain(|_, at| now.duration_since(*at) < self.every);
        }
        match last.get(&user) {
            Some(at) if now.duration_since(*at) < self.every => false,
            _ => {
                last.insert(user, now);
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stranger_is_refused_once_per_period() {
        let refusals = Refusals::new(Duration::from_secs(3600));
        let now = Instant::now();
        assert!(refusals.due(1, now));
        assert!(!refusals.due(1, now + Duration::from_secs(10)));
        assert!(refusals.due(2, now + Duration::from_secs(10)));
        assert!(refusals.due(1, now + Duration::from_secs(3601)));
    }
}
