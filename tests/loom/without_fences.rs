//! The retention gate compiled against loom with no fences at all, for
//! `the_gate_without_its_fences_is_caught` in `tests/loom/main.rs`.

pub(crate) mod sync {
    pub(crate) use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    pub(crate) use loom::sync::{Arc, Mutex, MutexGuard};

    pub(crate) fn light_fence() {}

    pub(crate) fn heavy_fence() {}

    pub(crate) fn relax(_waited: &mut u32) {
        loom::thread::yield_now();
    }
}

#[path = "../../src/retention/gate.rs"]
#[allow(dead_code, unreachable_pub, clippy::duplicate_mod)]
pub(crate) mod gate;
