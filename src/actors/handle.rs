//! `Slot`: how callers reach an actor that may be restarted.
//!
//! A restarted actor has a new `ActorRef`. The supervisor that (re)spawns a child stores the
//! new ref in the child's slot, and everybody else sends through the slot, so nobody holds a
//! ref that went stale. There are no global names (tests run many apps in one process).

use std::sync::RwLock;
use std::time::Duration;

use ractor::rpc::CallResult;
use ractor::{ActorRef, Message, RpcReplyPort};

/// The actor is not running right now (restarting, or stopped).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{0} is not available right now")]
pub struct Unavailable(pub &'static str);

/// What a door is told when the actor it asked is restarting: `unavailable`, a transient
/// code, so it tries again later.
impl From<Unavailable> for crate::domain::JobError {
    fn from(e: Unavailable) -> Self {
        Self::new(
            crate::domain::ErrorCode::Unavailable,
            format!("{e}; try again"),
        )
    }
}

pub struct Slot<M> {
    name: &'static str,
    current: RwLock<Option<ActorRef<M>>>,
}

impl<M: Message> Slot<M> {
    pub fn new(name: &'static str) -> Self {
        Self {
            name,
            current: RwLock::new(None),
        }
    }

    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Called by the supervisor after spawning the actor.
    pub fn set(&self, actor: ActorRef<M>) {
        *self.current.write().expect("slot lock") = Some(actor);
    }

    /// Called by the supervisor when the actor stopped.
    pub fn clear(&self) {
        *self.current.write().expect("slot lock") = None;
    }

    pub fn get(&self) -> Option<ActorRef<M>> {
        self.current.read().expect("slot lock").clone()
    }

    /// Fire-and-forget.
    pub fn send(&self, message: M) -> Result<(), Unavailable> {
        self.get()
            .ok_or(Unavailable(self.name))?
            .send_message(message)
            .map_err(|_| Unavailable(self.name))
    }

    /// Request/response with a deadline.
    pub async fn call<R: Send + 'static>(
        &self,
        build: impl FnOnce(RpcReplyPort<R>) -> M,
        timeout: Duration,
    ) -> Result<R, Unavailable> {
        let actor = self.get().ok_or(Unavailable(self.name))?;
        match actor.call(build, Some(timeout)).await {
            Ok(CallResult::Success(reply)) => Ok(reply),
            _ => Err(Unavailable(self.name)),
        }
    }
}
