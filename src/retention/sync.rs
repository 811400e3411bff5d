//! The primitives [`gate`](super::gate) is built on. `tests/loom/main.rs` compiles the same gate
//! against loom's primitives instead, with `fence(SeqCst)` for both fences.

pub(super) use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
pub(super) use std::sync::{Arc, Mutex, MutexGuard};

use std::sync::OnceLock;
use std::sync::atomic::{compiler_fence, fence};

/// Whether the process is registered for `membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED)`: then
/// the write path's fence is a compiler fence and the revocation's a `membarrier`. Decided once
/// per process, before the first write or revocation uses either fence, and never changed.
#[inline]
fn asymmetric() -> bool {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    *REGISTERED.get_or_init(register)
}

#[cfg(target_os = "linux")]
#[cold]
fn register() -> bool {
    use rustix::thread::{MembarrierCommand, membarrier, membarrier_query};
    if !membarrier_query().contains_command(MembarrierCommand::PrivateExpedited) {
        tracing::debug!(
            "membarrier(2) private expedited unavailable: the retention gate uses full fences"
        );
        return false;
    }
    match membarrier(MembarrierCommand::RegisterPrivateExpedited) {
        Ok(()) => true,
        Err(e) => {
            tracing::debug!(error = %e, "membarrier(2) registration refused: the retention gate uses full fences");
            false
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn register() -> bool {
    false
}

/// The write path's half of the gate's fence, between marking the slot busy and reading the
/// revoked flag.
#[inline]
pub(super) fn light_fence() {
    if asymmetric() {
        // The revocation's `membarrier` supplies the hardware barrier; this keeps the compiler
        // from moving the load above the store.
        compiler_fence(Ordering::SeqCst);
    } else {
        fence(Ordering::SeqCst);
    }
}

/// The revocation's half, between setting the revoked flag and reading the slots.
pub(super) fn heavy_fence() {
    fence(Ordering::SeqCst);
    if asymmetric() {
        expedited_barrier();
    }
}

#[cfg(target_os = "linux")]
fn expedited_barrier() {
    use rustix::thread::{MembarrierCommand, membarrier};
    // Registered above, so this does not fail on a kernel that offered it; if it ever did,
    // the global command gives the same guarantee more slowly (no registration needed).
    if let Err(e) = membarrier(MembarrierCommand::PrivateExpedited) {
        tracing::warn!(error = %e, "membarrier(2) private expedited failed; using the global barrier");
        if let Err(e) = membarrier(MembarrierCommand::Global) {
            // Nothing left that orders the writers' plain accesses: refuse to go on rather
            // than let a revocation return while a write may be starting.
            panic!(
                "membarrier(2) failed after registration ({e}); revocation cannot be made final"
            );
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn expedited_barrier() {
    unreachable!("the asymmetric fence is registered only on Linux")
}

/// One step of waiting for a busy slot: writes are short, so spin briefly, then yield, then
/// sleep in growing steps (up to 1 ms) for a write the storage holds up.
pub(super) fn relax(waited: &mut u32) {
    *waited = waited.saturating_add(1);
    match *waited {
        0..=64 => std::hint::spin_loop(),
        65..=128 => std::thread::yield_now(),
        n => std::thread::sleep(std::time::Duration::from_micros(
            u64::from(n - 128).min(1000),
        )),
    }
}
