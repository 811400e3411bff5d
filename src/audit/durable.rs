//! Durability as something to wait for: a synced trail's lines are written to the OS at once,
//! and made durable by a thread of the sink's own, one `fdatasync` for every line written
//! before it began. A caller waits for its own line, blocking ([`Syncer::wait`]) or, inside the
//! crate's async loops, as a future ([`Pending`]) that the sync wakes: no thread is parked for
//! it, so the lines of every call in flight share the next sync.
//!
//! The async loops ask for this ([`deferring`]) around the steps whose effect leaves the loop:
//! a request's `request_sent` (the effect: sending the request) and an answer's lines (the
//! effect: handing the result back, or the next attempt). The effect waits for the future. A
//! transition's first step (a begin's transition, a stop's signal) is written the same way and
//! left to its request's wait: a sync covers every line written before it. Every other write
//! waits in place, as before.
//!
//! **A failed sync stops the trail.** After `fdatasync` fails, Linux may have dropped the
//! unsynced pages and marked them clean, so that a second sync "succeeds" without them (the
//! 2018 "fsyncgate" finding; PostgreSQL has stopped the server on such a failure since its
//! releases of early 2019).
//! The sink cuts the file back to its last synced length and refuses every later event: the
//! steps waiting for the lost lines, and every later step, are not taken. Opening the file again
//! resumes after its last synced line.

use std::cell::RefCell;
use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use std::thread::JoinHandle;

use super::group::Refusal;
use crate::error::AuditError;

/// Syncs the trail's file (a handle of its own, so that lines can be written meanwhile).
pub(super) type SyncFn = Box<dyn FnMut() -> io::Result<()> + Send>;

/// Called by the sync thread, with the journal's lock taken by the callee, when a sync failed:
/// cuts the file back to `len` and refuses everything after.
pub(super) type OnFailure = Box<dyn FnMut(u64, &Refusal) + Send>;

/// The sync state of one trail, shared by its writers, its waiters and its sync thread.
pub(crate) struct Syncer {
    state: Mutex<State>,
    sync: Mutex<SyncFn>,
    on_failure: Mutex<OnFailure>,
    /// The sync thread waits here for work.
    work: Condvar,
    /// Blocking waiters wait here for a sync to end.
    synced: Condvar,
    thread: Mutex<Option<JoinHandle<()>>>,
}

#[derive(Default)]
struct State {
    /// The last `seq` written to the OS, and the file's length after it.
    written: (u64, u64),
    /// The last `seq` known durable, and the file's length after it.
    synced: (u64, u64),
    /// The highest `seq` someone waits for.
    wanted: u64,
    /// Why the trail stopped, after a failed sync.
    failed: Option<Refusal>,
    closing: bool,
    /// Futures waiting: an id, the `seq` each waits for, and its waker.
    wakers: Vec<(u64, u64, Waker)>,
    next_id: u64,
    /// Syncs made, and how many lines they made durable.
    syncs: u64,
    lines: u64,
}

impl Syncer {
    /// Starts the sync thread of a trail whose lines up to `seq` (the file `len` bytes long) are
    /// already durable.
    pub(super) fn start(
        seq: u64,
        len: u64,
        sync: SyncFn,
        on_failure: OnFailure,
    ) -> io::Result<Arc<Self>> {
        let syncer = Arc::new(Self {
            state: Mutex::new(State {
                written: (seq, len),
                synced: (seq, len),
                ..State::default()
            }),
            sync: Mutex::new(sync),
            on_failure: Mutex::new(on_failure),
            work: Condvar::new(),
            synced: Condvar::new(),
            thread: Mutex::new(None),
        });
        let shared = Arc::clone(&syncer);
        let thread = std::thread::Builder::new()
            .name("audit-sync".to_owned())
            .spawn(move || shared.run())?;
        *syncer.thread.lock().unwrap_or_else(PoisonError::into_inner) = Some(thread);
        Ok(syncer)
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The lines up to `seq` are with the OS, the file `len` bytes long (called with the
    /// journal's lock held, so in order).
    pub(super) fn written(&self, seq: u64, len: u64) {
        self.state().written = (seq, len);
    }

    /// Syncs made so far, and the lines they made durable.
    pub(super) fn counts(&self) -> (u64, u64) {
        let state = self.state();
        (state.syncs, state.lines)
    }

    /// Blocks until the line `seq` is durable.
    ///
    /// # Errors
    /// The sync that would have carried it failed (the line was cut off), or the sink closed.
    pub(super) fn wait(&self, seq: u64) -> Result<(), AuditError> {
        let mut state = self.state();
        loop {
            if let Some(done) = state.outcome(seq) {
                return done;
            }
            self.want(&mut state, seq);
            state = self
                .synced
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// Asks the sync thread for a sync that covers `seq`.
    fn want(&self, state: &mut State, seq: u64) {
        if state.wanted < seq {
            state.wanted = seq;
            self.work.notify_one();
        }
    }

    /// Makes what was written durable, ends the thread, and fails whoever still waits.
    pub(super) fn close(&self) {
        self.state().closing = true;
        self.work.notify_one();
        let thread = self
            .thread
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(thread) = thread {
            let _ = thread.join();
        }
    }

    /// The sync thread: syncs whenever someone waits for a line not yet durable, each sync
    /// covering every line written before it began; at close, syncs what is left and ends.
    fn run(&self) {
        loop {
            let mut state = self.state();
            while state.failed.is_none() && !state.closing && state.wanted <= state.synced.0 {
                state = self
                    .work
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner);
            }
            let last = state.closing || state.failed.is_some();
            drop(state);
            self.sync_once();
            if last {
                self.wake();
                return;
            }
        }
    }

    /// Syncs every line written so far (if any is not yet durable and the trail has not
    /// stopped), then wakes the waiters it settled.
    fn sync_once(&self) {
        let state = self.state();
        if state.failed.is_some() || state.written.0 <= state.synced.0 {
            return;
        }
        let target = state.written;
        drop(state);
        let result = (self.sync.lock().unwrap_or_else(PoisonError::into_inner))();
        match result {
            Ok(()) => {
                let mut state = self.state();
                state.syncs += 1;
                state.lines += target.0 - state.synced.0;
                state.synced = target;
            }
            Err(e) => {
                let refusal = Refusal::from(&AuditError::Io(e));
                tracing::error!(error = %refusal.message,
                    "audit trail: sync failed; the trail is cut back to its last synced line and refuses every later event");
                let len = self.state().synced.1;
                // Takes the journal's lock, which it holds while it cuts the file and marks
                // the journal stopped: no line is written after the cut.
                (self
                    .on_failure
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner))(len, &refusal);
                self.state().failed = Some(refusal);
            }
        }
        self.wake();
    }

    /// Wakes the waiters whose lines are settled.
    fn wake(&self) {
        let settled: Vec<_> = {
            let mut state = self.state();
            let (settled, waiting) = std::mem::take(&mut state.wakers)
                .into_iter()
                .partition(|(_, seq, _)| state.outcome(*seq).is_some());
            state.wakers = waiting;
            settled
        };
        self.synced.notify_all();
        for (_, _, waker) in settled {
            waker.wake();
        }
    }
}

impl State {
    /// Whether the line `seq` is durable (`Ok`), lost or never to be synced (`Err`), or neither
    /// yet (`None`).
    fn outcome(&self, seq: u64) -> Option<Result<(), AuditError>> {
        if seq <= self.synced.0 {
            Some(Ok(()))
        } else if let Some(failed) = &self.failed {
            Some(Err(failed.clone().into_error()))
        } else if self.closing {
            Some(Err(AuditError::Io(io::Error::other(
                "audit sink closed before the line was synced",
            ))))
        } else {
            None
        }
    }
}

impl fmt::Debug for Syncer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.state();
        f.debug_struct("Syncer")
            .field("written", &state.written.0)
            .field("synced", &state.synced.0)
            .field("failed", &state.failed.is_some())
            .finish_non_exhaustive()
    }
}

// ---------------------------------------------------------------------------------------------
// Waiting without a thread

/// Lines not yet known durable: each trail's syncer, and the last `seq` written to it.
type Lines = Vec<(Arc<Syncer>, u64)>;

thread_local! {
    /// Inside [`deferring`]: the lines written meanwhile that are still to be made durable.
    static DEFERRED: RefCell<Option<Lines>> = const { RefCell::new(None) };
}

/// Runs `write`; a synced sink it writes to returns once the lines are with the OS, and the
/// returned [`Pending`] waits for them to be durable. The caller must not let the step's effect
/// happen before that wait succeeds.
pub(crate) fn deferring<R>(write: impl FnOnce() -> R) -> (R, Pending) {
    /// Restores the enclosing scope, even if `write` panics.
    struct Scope(Option<Lines>);
    impl Drop for Scope {
        fn drop(&mut self) {
            let outer = self.0.take();
            DEFERRED.with(|d| *d.borrow_mut() = outer);
        }
    }
    let outer = DEFERRED.with(|d| d.borrow_mut().replace(Vec::new()));
    let scope = Scope(outer);
    let out = write();
    let lines = DEFERRED.with(|d| d.borrow_mut().take()).unwrap_or_default();
    drop(scope);
    (
        out,
        Pending {
            lines,
            waiting: None,
        },
    )
}

/// Called by a synced sink after writing the line `seq`: inside [`deferring`], leaves the wait
/// to its caller and returns `true`; otherwise `false` (the sink waits in place).
pub(super) fn defer(syncer: &Arc<Syncer>, seq: u64) -> bool {
    DEFERRED.with(|d| match d.borrow_mut().as_mut() {
        Some(lines) => {
            match lines.iter_mut().find(|(s, _)| Arc::ptr_eq(s, syncer)) {
                Some((_, last)) => *last = (*last).max(seq),
                None => lines.push((Arc::clone(syncer), seq)),
            }
            true
        }
        None => false,
    })
}

/// Lines written in a [`deferring`] scope, not yet known durable: a future that ends once they
/// are (`Ok`) or lost (`Err`, the trail stopped). Dropping it stops waiting; the lines are
/// synced all the same.
#[must_use = "the step's effect must wait for its lines to be durable"]
pub(crate) struct Pending {
    lines: Lines,
    /// The waker registered with the syncer of `lines[0]`, by id.
    waiting: Option<(Arc<Syncer>, u64)>,
}

impl Pending {
    /// Whether there is anything to wait for.
    pub(crate) fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    /// Waits on this thread.
    #[cfg(test)]
    pub(crate) fn wait_blocking(mut self) -> Result<(), AuditError> {
        self.forget_waker();
        std::mem::take(&mut self.lines)
            .into_iter()
            .try_for_each(|(syncer, seq)| syncer.wait(seq))
    }

    fn forget_waker(&mut self) {
        if let Some((syncer, id)) = self.waiting.take() {
            syncer.state().wakers.retain(|(w, _, _)| *w != id);
        }
    }
}

impl Future for Pending {
    type Output = Result<(), AuditError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        while let Some((syncer, seq)) = this.lines.first() {
            let mut state = syncer.state();
            if let Some(done) = state.outcome(*seq) {
                drop(state);
                this.forget_waker();
                this.lines.remove(0);
                done?;
                continue;
            }
            syncer.want(&mut state, *seq);
            let id = match &this.waiting {
                Some((_, id)) => *id,
                None => {
                    state.next_id += 1;
                    state.next_id
                }
            };
            match state.wakers.iter_mut().find(|(w, _, _)| *w == id) {
                Some((_, _, waker)) => waker.clone_from(cx.waker()),
                None => state.wakers.push((id, *seq, cx.waker().clone())),
            }
            drop(state);
            this.waiting = Some((Arc::clone(syncer), id));
            return Poll::Pending;
        }
        Poll::Ready(Ok(()))
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        self.forget_waker();
    }
}

impl fmt::Debug for Pending {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pending")
            .field(
                "lines",
                &self.lines.iter().map(|(_, seq)| seq).collect::<Vec<_>>(),
            )
            .finish()
    }
}
