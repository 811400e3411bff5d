//! A global allocator that wraps [`System`] and counts: bytes live now, the peak of that,
//! allocation calls and bytes allocated. Install it in a bench binary with
//! `#[global_allocator] static ALLOC: count_alloc::Counting = count_alloc::Counting;`.
//!
//! The counters are process-wide atomics (relaxed): every thread's allocations count, so
//! measure with no other thread allocating, or say what else ran.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};

/// The counting allocator; all its state is in statics.
#[derive(Debug, Clone, Copy, Default)]
pub struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);
static ALLOCS: AtomicU64 = AtomicU64::new(0);
static REALLOCS: AtomicU64 = AtomicU64::new(0);
static FREES: AtomicU64 = AtomicU64::new(0);
static ALLOCATED: AtomicU64 = AtomicU64::new(0);

fn grew(by: usize) {
    let live = LIVE.fetch_add(by, Relaxed) + by;
    PEAK.fetch_max(live, Relaxed);
}

// SAFETY: every method forwards to `System` with the caller's arguments unchanged and only
// updates atomic counters besides, so `System`'s guarantees carry over.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded as received.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            ALLOCS.fetch_add(1, Relaxed);
            ALLOCATED.fetch_add(layout.size() as u64, Relaxed);
            grew(layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded as received.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            ALLOCS.fetch_add(1, Relaxed);
            ALLOCATED.fetch_add(layout.size() as u64, Relaxed);
            grew(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded as received.
        unsafe { System.dealloc(ptr, layout) };
        FREES.fetch_add(1, Relaxed);
        LIVE.fetch_sub(layout.size(), Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded as received.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            REALLOCS.fetch_add(1, Relaxed);
            if new_size > layout.size() {
                ALLOCATED.fetch_add((new_size - layout.size()) as u64, Relaxed);
                grew(new_size - layout.size());
            } else {
                LIVE.fetch_sub(layout.size() - new_size, Relaxed);
            }
        }
        p
    }
}

/// The counters at one instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Snapshot {
    /// Bytes allocated and not yet freed (requested sizes, not the allocator's rounding).
    pub live: usize,
    /// The highest `live` since the start, or since the last [`reset_peak`].
    pub peak: usize,
    /// Calls to `alloc` and `alloc_zeroed`.
    pub allocs: u64,
    /// Calls to `realloc`.
    pub reallocs: u64,
    /// Calls to `dealloc`.
    pub frees: u64,
    /// Bytes requested by `alloc`, `alloc_zeroed`, and the growth of `realloc`.
    pub allocated: u64,
}

/// Reads the counters.
pub fn snapshot() -> Snapshot {
    Snapshot {
        live: LIVE.load(Relaxed),
        peak: PEAK.load(Relaxed),
        allocs: ALLOCS.load(Relaxed),
        reallocs: REALLOCS.load(Relaxed),
        frees: FREES.load(Relaxed),
        allocated: ALLOCATED.load(Relaxed),
    }
}

/// Restarts the peak from the bytes live now.
pub fn reset_peak() {
    PEAK.store(LIVE.load(Relaxed), Relaxed);
}

impl Snapshot {
    /// What happened between `before` and `self` (`live` may be negative: freed more than
    /// allocated; `peak` is `self`'s peak minus `before`'s live bytes).
    pub fn since(&self, before: &Self) -> Delta {
        Delta {
            live: self.live as i64 - before.live as i64,
            peak_above: self.peak as i64 - before.live as i64,
            allocs: self.allocs - before.allocs,
            reallocs: self.reallocs - before.reallocs,
            frees: self.frees - before.frees,
            allocated: self.allocated - before.allocated,
        }
    }
}

/// The difference between two snapshots.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Delta {
    /// Change of live bytes.
    pub live: i64,
    /// The later snapshot's peak above the earlier one's live bytes.
    pub peak_above: i64,
    /// `alloc` calls in between.
    pub allocs: u64,
    /// `realloc` calls in between.
    pub reallocs: u64,
    /// `dealloc` calls in between.
    pub frees: u64,
    /// Bytes allocated in between.
    pub allocated: u64,
}
