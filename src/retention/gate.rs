//! The synchronisation under every retention capability of one recording episode: which
//! capabilities are alive, whether leaving `Recording` has begun, whether the call's retention
//! was revoked, and which writes are in flight.
//!
//! G8 lives here. Each [`RetentionWriter`](super::RetentionWriter) has a [`Slot`] at its
//! capability's gate. A write *enters* before each inner write (it marks its slot busy, then
//! reads the revoked flag) and *leaves* afterwards (it clears the slot). A revocation sets the
//! revoked flag, then waits until no slot is busy. The two sides are a store followed by a load
//! each, with a sequentially consistent fence between them (Dekker's pattern), so either the
//! write saw the flag and is refused, or the revocation saw the slot busy and waits for it to
//! clear. When [`Gate::revoke`] returns, no write is in flight and none can start.
//!
//! The fence is asymmetric where the OS allows it ([`sync::light_fence`] on the write path,
//! [`sync::heavy_fence`] on the revocation path): on Linux, `membarrier(2)` makes every running
//! thread of the process pass a full barrier on the revoker's behalf, so the write path needs
//! only a compiler fence and three plain memory accesses, and pays no atomic read-modify-write
//! (revocations are rare, writes are per frame). Elsewhere, or if the kernel refuses the
//! registration, both sides use `fence(SeqCst)`.
//!
//! This file is also compiled by `tests/loom/main.rs` against loom's primitives (`super::sync`),
//! which model-checks every interleaving of writers, a cloner and a revocation or drain, with
//! `fence(SeqCst)` on both sides: the symmetric form the asymmetric one stands in for.

use std::sync::PoisonError;
use std::task::Waker;

use super::sync::{self, Arc, AtomicBool, AtomicUsize, Mutex, MutexGuard, Ordering};

/// Bit 0 of [`Gate::state`]: retention was revoked; every write is refused from now on.
const REVOKED: usize = 1;
/// Bit 1: leaving `Recording` has begun; media tasks should finish and drop their capability.
const STOPPING: usize = 1 << 1;

/// See the [module documentation](self).
#[allow(unnameable_types)] // Named only inside the crate's sealed `Capability` machinery.
pub struct Gate {
    /// `REVOKED | STOPPING`. Read on every media write, so kept out of the mutex.
    state: AtomicUsize,
    counts: Mutex<Counts>,
}

#[derive(Default)]
struct Counts {
    owned: usize,
    borrowed: usize,
    /// Every writer's slot; a slot only the gate still holds belongs to a dropped writer.
    slots: Vec<Arc<AtomicBool>>,
    drain_wakers: Vec<Waker>,
    stop_wakers: Vec<Waker>,
}

/// One writer's place at the gate: busy while its inner write is in flight. Entered by one
/// writer at a time (a `RetentionWriter` writes through `&mut self`).
#[derive(Debug)]
pub(crate) struct Slot {
    busy: Arc<AtomicBool>,
}

impl Slot {
    /// A slot of no gate, for a writer whose capability can never write.
    pub(crate) fn unattached() -> Self {
        Self {
            busy: Arc::new(AtomicBool::new(false)),
        }
    }
}

/// A write in flight; leaving the gate when dropped.
#[derive(Debug)]
pub(crate) struct WriteGuard<'s> {
    busy: &'s AtomicBool,
}

/// The gate was revoked: the write must not happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Revoked;

impl Gate {
    pub(crate) fn new() -> Self {
        Self {
            state: AtomicUsize::new(0),
            counts: Mutex::new(Counts::default()),
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

    /// Counts a new capability as alive once `start` (which audits it) succeeds, unless the
    /// gate was revoked: then `start` does not run and the capability is counted all the same,
    /// as one that can never write. Returns whether `start` ran.
    ///
    /// Under the gate's lock, so that a revocation falls wholly before the check or wholly
    /// after `start`: a capability's start is never audited after its call's revocation.
    pub(crate) fn mint_unless_revoked<E>(
        &self,
        owned: bool,
        start: impl FnOnce() -> Result<(), E>,
    ) -> Result<bool, E> {
        let mut counts = self.lock();
        let live = self.state.load(Ordering::Acquire) & REVOKED == 0;
        if live {
            start()?;
        }
        if owned {
            counts.owned += 1;
        } else {
            counts.borrowed += 1;
        }
        Ok(live)
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

    /// Gives a writer its place at the gate. Slots of dropped writers are forgotten here.
    pub(crate) fn slot(&self) -> Slot {
        let busy = Arc::new(AtomicBool::new(false));
        let mut counts = self.lock();
        counts.slots.retain(|slot| Arc::strong_count(slot) > 1);
        counts.slots.push(busy.clone());
        Slot { busy }
    }

    /// Revokes: from now on every write is refused, and this returns only once no write is in
    /// flight. Returns how many capabilities were alive.
    ///
    /// A write that blocks forever inside the inner writer blocks this too: revocation is final
    /// only once the writes it waits for have ended.
    pub(crate) fn revoke(&self) -> usize {
        let (wakers, outstanding) = {
            let mut counts = self.lock();
            self.state.fetch_or(REVOKED | STOPPING, Ordering::SeqCst);
            // Pairs with the writer's light fence: a write that did not see `REVOKED` has its
            // slot marked busy by the time the loads below run.
            sync::heavy_fence();
            for busy in &counts.slots {
                let mut waited = 0;
                while busy.load(Ordering::Acquire) {
                    sync::relax(&mut waited);
                }
            }
            (
                std::mem::take(&mut counts.stop_wakers),
                counts.owned + counts.borrowed,
            )
        };
        wakers.into_iter().for_each(Waker::wake);
        outstanding
    }

    /// Enters the gate through `slot` for one inner write.
    ///
    /// # Errors
    /// [`Revoked`]: the write must not happen.
    #[inline]
    pub(crate) fn enter<'s>(&self, slot: &'s Slot) -> Result<WriteGuard<'s>, Revoked> {
        slot.busy.store(true, Ordering::Relaxed);
        // Pairs with the revocation's heavy fence: either this load sees `REVOKED`, or the
        // revocation sees the slot busy and waits for the guard to drop.
        sync::light_fence();
        if self.state.load(Ordering::Acquire) & REVOKED != 0 {
            slot.busy.store(false, Ordering::Release);
            return Err(Revoked);
        }
        Ok(WriteGuard { busy: &slot.busy })
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
    #[inline]
    fn drop(&mut self) {
        // Release: the inner write happens before a revocation that reads the slot clear.
        self.busy.store(false, Ordering::Release);
    }
}

impl std::fmt::Debug for Gate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.state.load(Ordering::Acquire);
        let in_flight = self
            .lock()
            .slots
            .iter()
            .filter(|busy| busy.load(Ordering::Relaxed))
            .count();
        f.debug_struct("Gate")
            .field("revoked", &(state & REVOKED != 0))
            .field("stopping", &(state & STOPPING != 0))
            .field("writes_in_flight", &in_flight)
            .finish_non_exhaustive()
    }
}
