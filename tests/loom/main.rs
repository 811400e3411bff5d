//! G8, model-checked: the retention gate (`src/retention/gate.rs`, compiled here against
//! loom's primitives instead of std's) is explored over every interleaving of a writer, a
//! cloner, and a revocation (`Call::end`, or the drop of a `Call<Recording>`) or a stop (raise
//! the signal, drain).
//!
//! The property, in every model: once revocation has returned, no inner write is in progress
//! and none starts; a drain completes only when every owned capability is gone, and it is
//! always woken; and no capability's start is audited after its call's revocation (G9).
//! `naive_check_then_write_is_caught` runs the same model over a naive design (a flag checked
//! before the write, not held during it) and expects loom to find the interleaving that
//! breaks it, so the model is known to be able to fail; so does
//! `checking_revocation_before_auditing_the_start_is_caught` for the audit.
//!
//! Runs as an ordinary test (`cargo test --test loom`, a few seconds). The two-thread models
//! explore every interleaving; the three-thread one bounds preemptions to four (a few seconds; unbounded, it runs for minutes).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use loom::sync::Arc;
use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use loom::thread;

/// The primitives `gate.rs` is built on, as `src/retention/sync.rs` provides them from std.
/// Both fences are `fence(SeqCst)` here: the symmetric form of the gate. In the crate, on
/// Linux, the write path's fence is a compiler fence and the revocation's a `membarrier(2)`,
/// which the kernel documents as making every running thread of the process pass a full
/// barrier: the same ordering, paid for by the rare side.
mod sync {
    pub(crate) use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    pub(crate) use loom::sync::{Arc, Mutex, MutexGuard};

    pub(crate) fn light_fence() {
        loom::sync::atomic::fence(Ordering::SeqCst);
    }

    pub(crate) fn heavy_fence() {
        loom::sync::atomic::fence(Ordering::SeqCst);
    }

    /// A spin loop must yield under loom, or the model never schedules the writer.
    pub(crate) fn relax(_waited: &mut u32) {
        loom::thread::yield_now();
    }
}

#[path = "../../src/retention/gate.rs"]
#[allow(dead_code, unreachable_pub)]
// Loaded twice on purpose: here with the fences, and in `without_fences` without them.
#[allow(clippy::duplicate_mod)]
mod gate;

use gate::Gate;

/// What storage saw: writes that reached it, and whether one did after revocation returned.
#[derive(Default)]
struct Storage {
    writes: AtomicUsize,
    revocation_returned: AtomicBool,
}

impl Storage {
    /// An inner write: it must never run once revocation has returned.
    fn write(&self) {
        assert!(
            !self.revocation_returned.load(Ordering::SeqCst),
            "an inner write ran after revocation returned"
        );
        self.writes.fetch_add(1, Ordering::SeqCst);
    }
}

/// A media task: a capability, `frames` writes through the gate, then the capability ends.
fn media_task(gate: &Gate, storage: &Storage, frames: usize) {
    let slot = gate.slot();
    for _ in 0..frames {
        if let Ok(_held) = gate.enter(&slot) {
            storage.write();
        }
    }
    gate.release(true);
}

#[test]
fn revocation_waits_for_the_write_in_flight_and_refuses_the_rest() {
    loom::model(|| {
        let gate = Arc::new(Gate::new());
        let storage = Arc::new(Storage::default());
        gate.mint(true);
        let writer = {
            let (gate, storage) = (gate.clone(), storage.clone());
            thread::spawn(move || media_task(&gate, &storage, 2))
        };
        gate.revoke();
        storage.revocation_returned.store(true, Ordering::SeqCst);
        assert!(
            gate.enter(&gate.slot()).is_err(),
            "a write was let in after revocation"
        );
        writer.join().unwrap();
    });
}

#[test]
fn a_clone_made_during_revocation_cannot_write_after_it() {
    loom::model(|| {
        let gate = Arc::new(Gate::new());
        let storage = Arc::new(Storage::default());
        gate.mint(true);
        let cloner = {
            let (gate, storage) = (gate.clone(), storage.clone());
            thread::spawn(move || {
                // `RetentionHandle::try_clone`: inert once revoked (counted, never writes),
                // else minted.
                if gate.mint_unless_revoked(true, || Ok::<(), ()>(())).unwrap() {
                    media_task(&gate, &storage, 1); // ends with the clone's release
                } else {
                    gate.release(true);
                }
                // The original handle ends too.
                gate.release(true);
            })
        };
        gate.revoke();
        storage.revocation_returned.store(true, Ordering::SeqCst);
        cloner.join().unwrap();
        assert_eq!(gate.outstanding(), 0);
    });
}

/// The trail of one call's capabilities and its revocation, in the order they were audited.
#[derive(Default)]
struct Trail {
    events: loom::sync::Mutex<Vec<&'static str>>,
}

impl Trail {
    fn push(&self, event: &'static str) {
        self.events.lock().unwrap().push(event);
    }

    /// G9: no capability's start is audited after its call's revocation.
    fn check(&self) {
        let events = self.events.lock().unwrap();
        if let Some(revoked) = events.iter().position(|e| *e == "retention_revoked") {
            assert!(
                !events[revoked..].contains(&"retention_started"),
                "a start was audited after the revocation: {events:?}"
            );
        }
    }
}

/// `RetentionShared::revoke`: revoke the gate, then audit it.
fn revoke_and_audit(gate: &Gate, trail: &Trail) {
    gate.revoke();
    trail.push("retention_revoked");
}

#[test]
fn a_capability_minted_during_revocation_is_audited_before_it_or_not_at_all() {
    loom::model(|| {
        let gate = Arc::new(Gate::new());
        let trail = Arc::new(Trail::default());
        let minter = {
            let (gate, trail) = (gate.clone(), trail.clone());
            thread::spawn(move || {
                // `Call::retention` / `RetentionHandle::try_clone`: audited under the gate's
                // lock unless revoked, else inert.
                let started = gate
                    .mint_unless_revoked(false, || {
                        trail.push("retention_started");
                        Ok::<(), ()>(())
                    })
                    .unwrap();
                if started {
                    trail.push("retention_ended");
                }
                gate.release(false);
            })
        };
        revoke_and_audit(&gate, &trail);
        minter.join().unwrap();
        trail.check();
        assert_eq!(gate.outstanding(), 0);
    });
}

/// The design before: revocation checked, then the start audited outside the gate's lock.
#[test]
#[should_panic(expected = "a start was audited after the revocation")]
fn checking_revocation_before_auditing_the_start_is_caught() {
    loom::model(|| {
        let gate = Arc::new(Gate::new());
        let trail = Arc::new(Trail::default());
        let minter = {
            let (gate, trail) = (gate.clone(), trail.clone());
            thread::spawn(move || {
                if !gate.is_revoked() {
                    trail.push("retention_started");
                }
                gate.mint(false);
                gate.release(false);
            })
        };
        revoke_and_audit(&gate, &trail);
        minter.join().unwrap();
        trail.check();
    });
}

/// Three threads: bounded to four preemptions (as tokio bounds its own loom runs), which
/// still covers every place a preemption can fall in one write and one revocation.
#[test]
fn two_writers_and_an_end() {
    let mut model = loom::model::Builder::new();
    model.preemption_bound = Some(4);
    model.check(|| {
        let gate = Arc::new(Gate::new());
        let storage = Arc::new(Storage::default());
        let writers: Vec<_> = (0..2)
            .map(|_| {
                gate.mint(true);
                let (gate, storage) = (gate.clone(), storage.clone());
                thread::spawn(move || media_task(&gate, &storage, 1))
            })
            .collect();
        gate.revoke();
        storage.revocation_returned.store(true, Ordering::SeqCst);
        for w in writers {
            w.join().unwrap();
        }
    });
}

/// Waits for the drain the way `RetentionShared::drain` does (without a deadline).
struct Drain<'g>(&'g Gate);

impl Future for Drain<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0.drained_or_register(cx.waker()) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

#[test]
fn stop_drains_after_every_capability_and_is_always_woken() {
    loom::model(|| {
        let gate = Arc::new(Gate::new());
        let storage = Arc::new(Storage::default());
        let ended = Arc::new(AtomicBool::new(false));
        gate.mint(true);
        let writer = {
            let (gate, storage, ended) = (gate.clone(), storage.clone(), ended.clone());
            thread::spawn(move || {
                // Finish the current frame once stopping, then end the capability.
                let slot = gate.slot();
                for _ in 0..2 {
                    if gate.is_stopping() {
                        break;
                    }
                    if let Ok(_held) = gate.enter(&slot) {
                        storage.write();
                    }
                }
                ended.store(true, Ordering::SeqCst);
                gate.release(true);
            })
        };
        gate.raise_stop();
        // A lost wake-up would leave this blocked, which loom reports as a deadlock.
        loom::future::block_on(Drain(&gate));
        assert!(
            ended.load(Ordering::SeqCst),
            "the drain completed while a capability was alive"
        );
        writer.join().unwrap();
    });
}

/// The design before G8: a flag checked before the inner write, not held during it.
#[derive(Default)]
struct NaiveGate {
    revoked: AtomicBool,
}

#[test]
#[should_panic(expected = "an inner write ran after revocation returned")]
fn naive_check_then_write_is_caught() {
    loom::model(|| {
        let gate = Arc::new(NaiveGate::default());
        let storage = Arc::new(Storage::default());
        let writer = {
            let (gate, storage) = (gate.clone(), storage.clone());
            thread::spawn(move || {
                if !gate.revoked.load(Ordering::SeqCst) {
                    storage.write();
                }
            })
        };
        gate.revoked.store(true, Ordering::SeqCst);
        storage.revocation_returned.store(true, Ordering::SeqCst);
        writer.join().unwrap();
    });
}

/// The same gate with both fences taken out (`tests/loom/without_fences.rs`): the
/// write's store and the revocation's loads may then pass each other, and loom must find the
/// interleaving in which a write starts after revocation returned. This shows that the fences
/// in `sync` carry the proof.
mod without_fences;

#[test]
#[should_panic(expected = "an inner write ran after revocation returned")]
fn the_gate_without_its_fences_is_caught() {
    use without_fences::gate::Gate;
    loom::model(|| {
        let gate = Arc::new(Gate::new());
        let storage = Arc::new(Storage::default());
        gate.mint(true);
        let writer = {
            let (gate, storage) = (gate.clone(), storage.clone());
            thread::spawn(move || {
                let slot = gate.slot();
                if let Ok(_held) = gate.enter(&slot) {
                    storage.write();
                }
                gate.release(true);
            })
        };
        gate.revoke();
        storage.revocation_returned.store(true, Ordering::SeqCst);
        writer.join().unwrap();
    });
}
