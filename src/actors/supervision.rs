//! Restart decisions for supervisors: one-for-one, with a budget and backoff.
//!
//! ractor's default `handle_supervisor_evt` stops the supervisor when any child exits; every
//! supervisor here overrides it and asks a [`RestartTracker`] what to do. A child that keeps
//! failing is restarted more and more slowly, and past the budget (`max_restarts` within
//! `window`) the supervisor gives up and fails itself, escalating to its own supervisor.

use std::collections::VecDeque;
use std::fmt::Debug;
use std::time::{Duration, Instant};

use ractor::{ActorCell, ActorProcessingErr, ActorRef, Message, SupervisionEvent};

use crate::context::AppContext;
use crate::metrics::Event;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestartPolicy {
    pub max_restarts: usize,
    pub window: Duration,
    pub base_backoff: Duration,
    pub max_backoff: Duration,
}

impl RestartPolicy {
    /// Five restarts a minute, waiting 100 ms, 200 ms, 400 ms, … (at most 5 s) between them.
    pub const DEFAULT: RestartPolicy = RestartPolicy {
        max_restarts: 5,
        window: Duration::from_secs(60),
        base_backoff: Duration::from_millis(100),
        max_backoff: Duration::from_secs(5),
    };
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    RestartAfter(Duration),
    /// The budget is spent: the supervisor fails itself.
    Escalate,
}

/// The restart history of one child.
#[derive(Debug, Clone)]
pub struct RestartTracker {
    policy: RestartPolicy,
    recent: VecDeque<Instant>,
}

impl RestartTracker {
    pub fn new(policy: RestartPolicy) -> Self {
        Self {
            policy,
            recent: VecDeque::new(),
        }
    }

    /// Records a failure at `now` and decides what to do about it.
    pub fn on_failure(&mut self, now: Instant) -> Decision {
        while self
            .recent
            .front()
            .is_some_and(|t| now.duration_since(*t) > self.policy.window)
        {
            self.recent.pop_front();
        }
        if self.recent.len() >= self.policy.max_restarts {
            return Decision::Escalate;
        }
        self.recent.push_back(now);
        let exponent = (self.recent.len() - 1).min(16) as u32;
        let delay = self
            .policy
            .base_backoff
            .saturating_mul(1 << exponent)
            .min(self.policy.max_backoff);
        Decision::RestartAfter(delay)
    }
}

/// A child's exit that its supervisor must act on.
#[derive(Debug)]
pub struct ChildExit<K> {
    pub key: K,
    pub reason: String,
    decision: Decision,
}

impl<K: Copy + Debug + Send + 'static> ChildExit<K> {
    /// Carries out the restart decision: `restart(key)` is sent to the supervisor after the
    /// backoff (and counted as a restart of `actor`), or, past the budget, the supervisor
    /// fails itself and so escalates to its own supervisor.
    pub fn follow<M: Message>(
        &self,
        myself: &ActorRef<M>,
        restart: fn(K) -> M,
        ctx: &AppContext,
        actor: &'static str,
    ) -> Result<(), ActorProcessingErr> {
        follow(
            self.decision,
            myself,
            self.key,
            restart,
            ctx,
            actor,
            &self.reason,
        )
    }
}

/// See [`ChildExit::follow`]; also used when a restart itself fails.
pub fn follow<K: Copy + Debug + Send + 'static, M: Message>(
    decision: Decision,
    myself: &ActorRef<M>,
    key: K,
    restart: fn(K) -> M,
    ctx: &AppContext,
    actor: &'static str,
    reason: &str,
) -> Result<(), ActorProcessingErr> {
    match decision {
        Decision::RestartAfter(delay) => {
            ctx.observe(Event::ActorRestarted { actor });
            myself.send_after(delay, move || restart(key));
            Ok(())
        }
        Decision::Escalate => {
            Err(format!("{actor} {key:?} keeps failing ({reason}); giving up").into())
        }
    }
}

/// The children of one supervisor, in start order, each with its restart history.
pub struct Children<K> {
    policy: RestartPolicy,
    entries: Vec<Entry<K>>,
}

struct Entry<K> {
    key: K,
    cell: Option<ActorCell>,
    tracker: RestartTracker,
}

impl<K: Copy + Eq + Debug> Children<K> {
    pub fn new(policy: RestartPolicy) -> Self {
        Self {
            policy,
            entries: Vec::new(),
        }
    }

    /// Records that `key` runs as `cell` (first start or restart). Start order is the order
    /// of the first `started` call of each key.
    pub fn started(&mut self, key: K, cell: ActorCell) {
        match self.entries.iter_mut().find(|e| e.key == key) {
            Some(entry) => entry.cell = Some(cell),
            None => self.entries.push(Entry {
                key,
                cell: Some(cell),
                tracker: RestartTracker::new(self.policy),
            }),
        }
    }

    /// Registers `key` without a running actor (its first start failed and will be retried).
    pub fn failed_to_start(&mut self, key: K) -> Decision {
        if !self.entries.iter().any(|e| e.key == key) {
            self.entries.push(Entry {
                key,
                cell: None,
                tracker: RestartTracker::new(self.policy),
            });
        }
        let entry = self
            .entries
            .iter_mut()
            .find(|e| e.key == key)
            .expect("just inserted");
        entry.tracker.on_failure(Instant::now())
    }

    /// The typed ref of a running child.
    pub fn get<M: Message>(&self, key: K) -> Option<ActorRef<M>> {
        self.entries
            .iter()
            .find(|e| e.key == key)
            .and_then(|e| e.cell.clone())
            .map(ActorRef::from)
    }

    /// Interprets a supervision event: the exit (failure or stop) of a current child, with
    /// what to do about it. `None` for other events, for cells that are not (or no longer)
    /// children here, and while the supervisor is stopping (its children exit on purpose).
    pub fn exit_of(&mut self, event: &SupervisionEvent, stopping: bool) -> Option<ChildExit<K>> {
        let (cell, reason) = match event {
            SupervisionEvent::ActorFailed(cell, err) => (cell, err.to_string()),
            SupervisionEvent::ActorTerminated(cell, _, reason) => {
                (cell, reason.clone().unwrap_or_else(|| "stopped".into()))
            }
            _ => return None,
        };
        if stopping {
            return None;
        }
        let entry = self
            .entries
            .iter_mut()
            .find(|e| e.cell.as_ref().is_some_and(|c| c.get_id() == cell.get_id()))?;
        entry.cell = None;
        Some(ChildExit {
            key: entry.key,
            reason,
            decision: entry.tracker.on_failure(Instant::now()),
        })
    }

    /// Stops one child (it will not be restarted: its exit no longer matches a running entry).
    pub async fn stop(&mut self, key: K, timeout: Duration) {
        let cell = self
            .entries
            .iter_mut()
            .find(|e| e.key == key)
            .and_then(|e| e.cell.take());
        if let Some(cell) = cell
            && cell.stop_and_wait(None, Some(timeout)).await.is_err()
        {
            tracing::warn!(child = ?key, "child did not stop in time; killing it");
            cell.kill();
        }
    }

    /// Stops every child, last started first, waiting up to `timeout` for each.
    pub async fn stop_all(&mut self, timeout: Duration) {
        for entry in self.entries.iter_mut().rev() {
            if let Some(cell) = entry.cell.take()
                && let Err(e) = cell.stop_and_wait(None, Some(timeout)).await
            {
                tracing::warn!(child = ?entry.key, error = %e, "child did not stop in time; killing it");
                cell.kill();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backs_off_then_escalates_past_the_budget() {
        let mut tracker = RestartTracker::new(RestartPolicy::DEFAULT);
        let t0 = Instant::now();
        let delays: Vec<Decision> = (0..5)
            .map(|i| tracker.on_failure(t0 + Duration::from_secs(i)))
            .collect();
        assert_eq!(
            delays,
            [100, 200, 400, 800, 1600].map(|ms| Decision::RestartAfter(Duration::from_millis(ms)))
        );
        assert_eq!(
            tracker.on_failure(t0 + Duration::from_secs(6)),
            Decision::Escalate
        );
    }

    #[test]
    fn old_failures_leave_the_window() {
        let mut tracker = RestartTracker::new(RestartPolicy::DEFAULT);
        let t0 = Instant::now();
        for i in 0..5 {
            tracker.on_failure(t0 + Duration::from_secs(i));
        }
        let later = t0 + Duration::from_secs(120);
        assert_eq!(
            tracker.on_failure(later),
            Decision::RestartAfter(Duration::from_millis(100))
        );
    }
}
