//! The synchronisation under every retention capability of one recording episode: which
//! capabilities are alive, whether leaving `Recording` has begun, whether the call's retention
//! was revoked, and which writes are in flight.
//!
//! G8 lives here. A write *enters* the gate before each inner write and *leaves* it afterwards.
//! Entering and revoking touch one atomic word, so they are ordered: either the write entered
//! first, and revocation waits until it has left, or revocation came first, and the write is
//! refused. When [`Gate::revoke`] returns, no write is in flight and none can start.
//!
//! This file is also compiled by `tests/loom.rs` against loom's primitives (`super::sync`),
//! which model-checks every interleaving of a writer, a cloner and a revocation or drain.

use std::sync::PoisonError;
use std::task::Waker;

use super::sync::{AtomicUsize, Condvar, Mutex, MutexGuard, Ordering};

/// Bit 0 of [`Gate::state`]: retention was revoked; every write is refused from now on.
const REVOKED: usize = 1;
/// Bit 1: leaving `Recording` has begun; media tasks should finish and drop their capability.
const STOPPING: usize = 1 << 1;
/// The remaining bits count writes in flight, in units of this.
const ONE_WRITE: usize = 1 << 2;

/// See the [module documentation](self).
pub(crate) struct Gate {
    /// `REVOKED | STOPPING | writes in flight * ONE_WRITE`. Touched on every media write, so
    /// kept out of the mutex.
    state: AtomicUsize,
    counts: Mutex<Counts>,
    /// Signalled when the last write in flight leaves a revoked gate.
    idle: Condvar,
}

#[derive(Default)]
struct Counts {
    owned: usize,
    borrowed: usize,
    drain_wakers: Vec<Waker>,
    stop_wakers: Vec<Waker>,
}

/// A write in flight; leaving the gate when dropped.
#[allow(unnameable_types)] // Named only inside the crate's sealed `Capability` machinery.
#[derive(Debug)]
pub struct WriteGuard<'g> {
    gate: &'g Gate,
}

/// The gate was revoked: the write must not happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Revoked;

impl Gate {
    pub(crate) fn new() -> Self {
        Self {
            state: AtomicUsize::new(0),
            counts: Mutex::new(Counts::default()),
            idle: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Counts> {
        self.counts.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Counts a new capability as alive.
    pub(crate) fn mint(&self, owned: bool) {
        let mut counts = self.lock();
        if owned {
            counts.owned += 1;
        } else {
            counts.borrowed += 1;
        }
    }

    /// Counts a capability as gone, waking the drain when the last owned one goes.
    pub(crate) fn release(&self, owned: bool) {
        let wakers = {
            let mut counts = self.lock();
            if owned {
                counts.owned -= 1;
            } else {
                counts.borrowed -= 1;
            }
            if counts.owned == 0 {
                std::mem::take(&mut counts.drain_wakers)
            } else {
                Vec::new()
            }
        };
        wakers.into_iter().for_each(Waker::wake);
    }

    /// Capabilities alive, owned and borrowed.
    pub(crate) fn outstanding(&self) -> usize {
        let counts = self.lock();
        counts.owned + counts.borrowed
    }

    /// Owned capabilities alive.
    pub(crate) fn owned(&self) -> usize {
        self.lock().owned
    }

    pub(crate) fn is_stopping(&self) -> bool {
        self.state.load(Ordering::Acquire) & STOPPING != 0
    }

    pub(crate) fn is_revoked(&self) -> bool {
        self.state.load(Ordering::Acquire) & REVOKED != 0
    }

    /// Raises the stop signal. Returns how many capabilities are alive.
    pub(crate) fn raise_stop(&self) -> usize {
        let (wakers, outstanding) = {
            let mut counts = self.lock();
            self.state.fetch_or(STOPPING, Ordering::AcqRel);
            (
                std::mem::take(&mut counts.stop_wakers),
                counts.owned + counts.borrowed,
            )
        };
        wakers.into_iter().for_each(Waker::wake);
        outstanding
    }

    /// Revokes: from now on every write is refused, and this returns only once no write is in
    /// flight. Returns how many capabilities were alive.
    ///
    /// A write that blocks forever inside the inner writer blocks this too: revocation is final
    /// only once the writes it waits for have ended.
    pub(crate) fn revoke(&self) -> usize {
        let (wakers, outstanding) = {
            let mut counts = self.lock();
            let mut state = self.state.fetch_or(REVOKED | STOPPING, Ordering::AcqRel);
            while state / ONE_WRITE > 0 {
                counts = self
                    .idle
                    .wait(counts)
                    .unwrap_or_else(PoisonError::into_inner);
                state = self.state.load(Ordering::Acquire);
            }
            (
                std::mem::take(&mut counts.stop_wakers),
                counts.owned + counts.borrowed,
            )
        };
        wakers.into_iter().for_each(Waker::wake);
        outstanding
    }

    /// Enters the gate for one inner write.
    ///
    /// # Errors
    /// [`Revoked`]: the write must not happen.
    pub(crate) fn enter(&self) -> Result<WriteGuard<'_>, Revoked> {
        let before = self.state.fetch_add(ONE_WRITE, Ordering::AcqRel);
        let guard = WriteGuard { gate: self };
        if before & REVOKED != 0 {
            // Leaving wakes a revocation that may be waiting for this very count.
            drop(guard);
            return Err(Revoked);
        }
        Ok(guard)
    }

    fn leave(&self) {
        let before = self.state.fetch_sub(ONE_WRITE, Ordering::AcqRel);
        if before & REVOKED != 0 && before / ONE_WRITE == 1 {
            // The revocation waits under the lock, so taking it here cannot miss its wait.
            let _counts = self.lock();
            self.idle.notify_all();
        }
    }

    /// Whether no owned capability is alive; if some are, `waker` is woken when the last one
    /// goes.
    pub(crate) fn drained_or_register(&self, waker: &Waker) -> bool {
        let mut counts = self.lock();
        if counts.owned == 0 {
            return true;
        }
        if !counts.drain_wakers.iter().any(|w| w.will_wake(waker)) {
            counts.drain_wakers.push(waker.clone());
        }
        false
    }

    /// Whether the stop signal is raised; if not, `waker` is woken when it is.
    pub(crate) fn stopping_or_register(&self, waker: &Waker) -> bool {
        let mut counts = self.lock();
        if self.is_stopping() {
            return true;
        }
        if !counts.stop_wakers.iter().any(|w| w.will_wake(waker)) {
            counts.stop_wakers.push(waker.clone());
        }
        false
    }
}

impl Drop for WriteGuard<'_> {
    fn drop(&mut self) {
        self.gate.leave();
    }
}

impl std::fmt::Debug for Gate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.state.load(Ordering::Acquire);
        f.debug_struct("Gate")
            .field("revoked", &(state & REVOKED != 0))
            .field("stopping", &(state & STOPPING != 0))
            .field("writes_in_flight", &(state / ONE_WRITE))
            .finish_non_exhaustive()
    }
}
