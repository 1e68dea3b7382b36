//! Credential lookups in rounds: every request is answered from a database read that began
//! after the request arrived (so a revocation by another process holds at once: there is no
//! cache), but concurrent requests presenting the same credential share one read.
//!
//! Why: a lookup through the pool costs more server time than serving a 64 KiB range (a
//! handoff to the connection's thread and back), so one read per request would halve the
//! rate of ranges a client streams with a token. Under load the requests of one client
//! arrive together; they wait for the next round of their credential (at most one read in
//! flight per credential, plus the one they wait for) and get its answer.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

use crate::clock;
use crate::db::{self, Db};
use crate::domain::people::{Role, UserId};

/// What is looked up.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Key {
    /// A token's SHA-256.
    Bearer(String),
    /// A session cookie's SHA-256.
    Session(String),
    /// No credential: is authentication off, and who is the first admin.
    Open,
}

/// What a round read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    /// The token's user and role, if it is live.
    Bearer(Option<(UserId, Role)>),
    /// The session's user and role, if it is live.
    Session(Option<(UserId, Role)>),
    /// Whether anyone has credentials, and the first admin.
    Open {
        credentials: bool,
        admin: Option<UserId>,
    },
}

type Answer = Option<Result<Found, String>>;

/// One credential's rounds: the next one collecting callers (not started), and whether a
/// driver task is reading for it.
struct Pending {
    next: Option<watch::Sender<Answer>>,
}

pub struct Lookups {
    db: Db,
    pending: Arc<Mutex<HashMap<Key, Pending>>>,
}

impl Lookups {
    pub fn new(db: Db) -> Self {
        Self {
            db,
            pending: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// Looks `key` up in a round that starts after this call.
    pub async fn find(&self, key: Key) -> Result<Found, String> {
        let mut answer = {
            let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
            match pending.entry(key.clone()) {
                // A driver is reading for this key: join (or open) the round after its read.
                Entry::Occupied(mut entry) => {
                    let round = entry
                        .get_mut()
                        .next
                        .get_or_insert_with(|| watch::channel(None).0);
                    round.subscribe()
                }
                // Nobody is: open a round and start a driver for it.
                Entry::Vacant(entry) => {
                    let (round, answer) = watch::channel(None);
                    entry.insert(Pending { next: Some(round) });
                    tokio::spawn(drive(self.db.clone(), Arc::clone(&self.pending), key));
                    answer
                }
            }
        };
        match answer.wait_for(Option::is_some).await {
            Ok(found) => found.clone().unwrap_or_else(|| Err("no answer".into())),
            Err(_) => Err("the lookup stopped".into()),
        }
    }
}

/// Runs the rounds of `key` one after the other until no caller waits.
async fn drive(db: Db, pending: Arc<Mutex<HashMap<Key, Pending>>>, key: Key) {
    loop {
        let round = {
            let mut map = pending.lock().unwrap_or_else(|p| p.into_inner());
            match map.get_mut(&key).and_then(|p| p.next.take()) {
                Some(round) => round,
                None => {
                    map.remove(&key);
                    return;
                }
            }
        };
        // The round has started: callers arriving from now on wait for the next one.
        let found = read(&db, &key).await.map_err(|e| e.to_string());
        round.send_replace(Some(found));
    }
}

/// A token's last use is recorded at most this often.
const TOUCH_EVERY_MS: i64 = 60_000;

async fn read(db: &Db, key: &Key) -> Result<Found, db::DbError> {
    match key {
        Key::Bearer(hash) => {
            let Some(bearer) = db::tokens::bearer(db, hash).await? else {
                return Ok(Found::Bearer(None));
            };
            let now = clock::now();
            if bearer
                .last_used_at
                .is_none_or(|last| now.as_millis() - last.as_millis() >= TOUCH_EVERY_MS)
            {
                // Off the request's path: a write waits its turn behind other writers.
                let (db, id) = (db.clone(), bearer.token.clone());
                tokio::spawn(async move {
                    if let Err(e) = db::tokens::touch(&db, &id, now).await {
                        tracing::warn!(error = %e, "cannot record a token's last use");
                    }
                });
            }
            Ok(Found::Bearer(Some((bearer.user, bearer.role))))
        }
        Key::Session(hash) => Ok(Found::Session(
            db::sessions::holder(db, hash, clock::now()).await?,
        )),
        Key::Open => {
            let (credentials, admin) = db::users::open_state(db).await?;
            Ok(Found::Open { credentials, admin })
        }
    }
}
