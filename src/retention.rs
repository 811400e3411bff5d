//! Retention capabilities: the only values storage code accepts, minted only by a
//! [`Call<Recording>`](crate::Call).
//!
//! - [`Retention<'c>`](Retention) borrows the call. While one is alive the call cannot be
//!   moved, so `stop_recording` does not compile (G2, statically).
//! - [`RetentionHandle`] is owned, `Clone + Send + 'static`, for spawned media tasks. Leaving
//!   `Recording` raises a stop signal ([`RetentionHandle::stopping`]) and then waits until every
//!   handle has been dropped, under a deadline; the end-of-recording request is built only after
//!   that (G2, by an awaited drain).
//! - [`RetentionWriter`] wraps any [`std::io::Write`] (and, with the `tokio` feature,
//!   `tokio::io::AsyncWrite`) so that bytes reach storage only through a capability.
//!
//! Every capability's start and end is an [`AuditEvent`](crate::audit::AuditEvent), but for
//! capabilities minted after the call's retention was revoked: those can never write, and
//! neither their start nor their end is audited.
//!
//! # Revocation is final (G8)
//!
//! When [`Call::end`](crate::Call::end) returns, or a `Call<Recording>` has been dropped, no
//! byte reaches storage through any capability of that call any more: [`RetentionWriter`]
//! holds its capability around every inner `write`, `flush` and `poll_*` call (one check per
//! inner write, never one for a whole buffer), revocation waits until the writes in flight have
//! returned, and every later write fails with [`io::ErrorKind::PermissionDenied`].
//!
//! Revocation waits for the writes in flight, so a write that never returns keeps `end()` (or
//! the drop) waiting too; do not end or drop a call while holding a lock that a media task's
//! inner writer needs.
//!
//! An `AsyncWrite` that finishes writes in the background after `poll_write` returns
//! (`tokio::fs::File` hands each write to a blocking thread) is outside the gate for those
//! bytes: `end()` can return while such a write is still landing. Write files through a
//! `std::fs::File` inside `tokio::task::spawn_blocking`, or use an `AsyncWrite` whose
//! `poll_write` has written when it returns Ready (a socket, an in-memory buffer).
//!
//! Put buffers *outside* the writer: `BufWriter::new(RetentionWriter::new(handle, file))`.
//! Bytes a buffer inside the writer (`RetentionWriter::new(handle, BufWriter::new(file))`) has
//! accepted reach the file whenever that buffer decides, which may be when it is dropped after
//! revocation; a buffer outside can reach the file only through the capability.

use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use crate::audit::{AuditKind, AuditSink, record_for};
use crate::error::AuditError;
use crate::types::CallId;

mod gate;
mod sync;

use gate::{Gate, Slot, WriteGuard};

/// What the retention of one recording episode needs from the call it belongs to, supplied by
/// the registry of live calls above this layer: where its events go, numbers for its
/// capabilities, and who to tell when the recording call is dropped.
pub(crate) trait RetentionOwner: Send + Sync {
    /// The trail the call's events go to.
    fn audit(&self) -> &dyn AuditSink;
    /// A capability number, unique in the trail.
    fn next_capability(&self) -> u64;
    /// The recording call was dropped and `retention` revoked: a best-effort report may be
    /// owed to Graph (the driver sends it).
    fn orphaned(self: Arc<Self>, retention: Arc<RetentionShared>);
}

/// The state every capability of one recording episode shares: the gate writes pass, the stop
/// signal, and the events the sink refused.
pub(crate) struct RetentionShared {
    call_id: CallId,
    owner: Arc<dyn RetentionOwner>,
    /// The recording episode these capabilities belong to (its orphan report is checked
    /// against it).
    episode: u64,
    gate: Gate,
    /// Ends (and a revocation) the audit sink refused: recorded again before any
    /// end-of-recording request is built (G9).
    unrecorded: Mutex<Vec<AuditKind>>,
}

impl RetentionShared {
    pub(crate) fn new(call_id: CallId, owner: Arc<dyn RetentionOwner>, episode: u64) -> Arc<Self> {
        Arc::new(Self {
            call_id,
            owner,
            episode,
            gate: Gate::new(),
            unrecorded: Mutex::new(Vec::new()),
        })
    }

    pub(crate) fn episode(&self) -> u64 {
        self.episode
    }

    pub(crate) fn call_id(&self) -> &CallId {
        &self.call_id
    }

    pub(crate) fn outstanding(&self) -> usize {
        self.gate.outstanding()
    }

    fn audit(&self, kind: AuditKind) -> Result<(), AuditError> {
        record_for(self.owner.audit(), &self.call_id, kind)
    }

    /// Mints a capability: a number, with its start recorded (`Some`), or, once retention was
    /// revoked, one that can never write and is not audited (`None`). The capability exists
    /// only if this returns `Ok`.
    fn start(&self, owned: bool) -> Result<Option<u64>, AuditError> {
        let mut capability = 0;
        let started = self.gate.mint_unless_revoked(owned, || {
            capability = self.owner.next_capability();
            self.audit(AuditKind::RetentionStarted { capability, owned })
        })?;
        Ok(started.then_some(capability))
    }

    /// Records a capability's end, then releases it. The order matters (G4): the drain may
    /// complete, and the end-of-recording request be audited, only after this end is in the
    /// trail. An end the sink refuses is kept and recorded again before any end-of-recording
    /// request ([`record_unrecorded`](Self::record_unrecorded)).
    fn end(&self, capability: u64, owned: bool) {
        self.audit_or_keep(AuditKind::RetentionEnded { capability });
        self.gate.release(owned);
    }

    fn audit_or_keep(&self, kind: AuditKind) {
        if let Err(e) = self.audit(kind.clone()) {
            tracing::error!(call_id = %self.call_id, error = %e, event = ?kind,
                "could not audit a retention event; it is retried before the end of recording \
                 is reported, and nothing is reported until it is recorded");
            self.unrecorded
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(kind);
        }
    }

    /// Records the ends (and revocation) the sink refused earlier. Until this succeeds, no
    /// end-of-recording request may be built: the trail would show the report before the end.
    ///
    /// # Errors
    /// The sink still refuses; what is not yet recorded is kept for the next try.
    pub(crate) fn record_unrecorded(&self) -> Result<(), AuditError> {
        let mut kept = self
            .unrecorded
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        while let Some(kind) = kept.first() {
            self.audit(kind.clone())?;
            kept.remove(0);
        }
        Ok(())
    }

    /// Raises the stop signal for owned handles. Returns how many capabilities are alive.
    pub(crate) fn raise_stop(&self) -> usize {
        self.gate.raise_stop()
    }

    /// Revokes every capability: writes through them fail from now on, and this returns only
    /// once no write is in flight (G8).
    pub(crate) fn revoke(&self) {
        let outstanding = self.gate.revoke();
        self.audit_or_keep(AuditKind::RetentionRevoked { outstanding });
    }

    /// The call was dropped while recording: revoke, then let the orphan hook report it once
    /// every capability has ended.
    pub(crate) fn orphaned(self: &Arc<Self>) {
        self.revoke();
        self.owner.clone().orphaned(self.clone());
    }

    pub(crate) fn is_stopping(&self) -> bool {
        self.gate.is_stopping()
    }

    pub(crate) fn is_revoked(&self) -> bool {
        self.gate.is_revoked()
    }

    /// Waits (async) until no owned handle is alive, or `deadline` completes first.
    /// Returns the number still alive on timeout.
    pub(crate) async fn drain<D: Future<Output = ()>>(&self, deadline: D) -> Result<(), usize> {
        let mut deadline = std::pin::pin!(deadline);
        std::future::poll_fn(|cx| {
            if self.gate.drained_or_register(cx.waker()) {
                return Poll::Ready(Ok(()));
            }
            match deadline.as_mut().poll(cx) {
                Poll::Ready(()) => match self.gate.owned() {
                    0 => Poll::Ready(Ok(())),
                    alive => Poll::Ready(Err(alive)),
                },
                Poll::Pending => Poll::Pending,
            }
        })
        .await
    }

    /// [`drain`](Self::drain) on this thread: parks until no owned handle is alive (the last
    /// one to end unparks it), or `timeout` has passed.
    pub(crate) fn drain_blocking(&self, timeout: Duration) -> Result<(), usize> {
        let deadline = Instant::now() + timeout;
        let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
        loop {
            if self.gate.drained_or_register(&waker) {
                return Ok(());
            }
            let now = Instant::now();
            if now >= deadline {
                return match self.gate.owned() {
                    0 => Ok(()),
                    alive => Err(alive),
                };
            }
            std::thread::park_timeout(deadline - now);
        }
    }
}

/// Wakes a thread parked in [`RetentionShared::drain_blocking`].
struct Unpark(std::thread::Thread);

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
}

#[cold]
fn revoked() -> io::Error {
    io::Error::new(
        io::ErrorKind::PermissionDenied,
        "retention revoked: the call is no longer recording",
    )
}

/// A borrowed retention capability: proof that its call is in `Recording`, for as long as the
/// borrow lasts.
///
/// Obtained from [`Call::<Recording>::retention`](crate::Call::retention). Because it borrows
/// the call, the call cannot be stopped while it is alive.
///
/// ```compile_fail,E0505
/// # fn f(call: recording_status::Call<recording_status::Recording>, g: &recording_status::Graph<fn(recording_status::transport::HttpRequest) -> std::future::Ready<Result<recording_status::transport::HttpResponse, std::io::Error>>>) -> Result<(), Box<dyn std::error::Error>> {
/// let retention = call.retention()?;
/// let stopped = call.stop_recording(g, std::future::pending());   // error[E0505]
/// drop(retention);
/// # Ok(())
/// # }
/// ```
#[must_use = "a capability that is not used only adds audit noise"]
pub struct Retention<'c> {
    shared: &'c RetentionShared,
    capability: u64,
    /// `false` for a capability minted after revocation (Graph terminated the call): it never
    /// writes, and neither its start nor its end is audited.
    audited: bool,
}

impl<'c> Retention<'c> {
    pub(crate) fn new(shared: &'c RetentionShared) -> Result<Self, AuditError> {
        let started = shared.start(false)?;
        Ok(Self {
            shared,
            capability: started.unwrap_or(0),
            audited: started.is_some(),
        })
    }

    /// The call this capability belongs to.
    pub fn call_id(&self) -> &CallId {
        &self.shared.call_id
    }

    /// The capability's number in the audit trail (its `retention_started` event); `0` for a
    /// capability minted after revocation, which has no such event (numbers start at 1).
    pub fn number(&self) -> u64 {
        self.capability
    }
}

impl Drop for Retention<'_> {
    fn drop(&mut self) {
        if self.audited {
            self.shared.end(self.capability, false);
        } else {
            self.shared.gate.release(false);
        }
    }
}

impl fmt::Debug for Retention<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Retention")
            .field("call_id", &self.shared.call_id)
            .field("capability", &self.capability)
            .finish()
    }
}

/// An owned retention capability for media tasks that must be `'static` (spawned tasks,
/// threads). `Clone + Send + Sync + 'static`; every clone is a capability of its own.
///
/// Leaving `Recording` raises [`stopping`](Self::stopping) and then waits until every clone has
/// been dropped. A task should `select!` on `stopping()` next to its media source, flush, and
/// drop its handle. If the call is dropped or ends instead, the handle is *revoked*:
/// [`RetentionWriter`] refuses further writes.
///
/// # Example
/// ```
/// use std::io::Write;
/// use recording_status::{RetentionHandle, RetentionWriter};
///
/// fn media_task(handle: RetentionHandle) -> std::io::Result<Vec<u8>> {
///     let mut writer = RetentionWriter::new(handle, Vec::new());
///     loop {
///         // next frame …
///         # let frame = [0u8; 4];
///         if writer.capability().is_stopping() {
///             break;
///         }
///         // Refused (`PermissionDenied`) once the call is revoked: stop then, too.
///         writer.write_all(&frame)?;
///         # break;
///     }
///     let (bytes, handle) = writer.finish()?;
///     drop(handle); // lets the drain end
///     Ok(bytes)
/// }
/// ```
#[must_use = "an unused handle delays the drain when recording stops"]
pub struct RetentionHandle {
    shared: Arc<RetentionShared>,
    capability: u64,
    /// `false` for a clone whose start could not be audited, or that was made after
    /// revocation: it never writes, and its end is not audited either.
    audited: bool,
}

impl RetentionHandle {
    pub(crate) fn new(shared: Arc<RetentionShared>) -> Result<Self, AuditError> {
        // Once retention was revoked (Graph terminated the call), a handle that cannot write.
        let started = shared.start(true)?;
        Ok(Self {
            shared,
            capability: started.unwrap_or(0),
            audited: started.is_some(),
        })
    }

    /// A handle that cannot write: it only keeps the drain waiting until it is dropped.
    fn inert(shared: &Arc<RetentionShared>) -> Self {
        shared.gate.mint(true);
        Self {
            shared: shared.clone(),
            capability: 0,
            audited: false,
        }
    }

    /// A new capability for the same call, like `clone`, but reporting an audit failure
    /// instead of logging it. After the call ended (revocation) the clone cannot write.
    ///
    /// # Errors
    /// The audit sink refused the start event; no capability was minted.
    pub fn try_clone(&self) -> Result<Self, AuditError> {
        Self::new(self.shared.clone())
    }

    /// The call this capability belongs to.
    pub fn call_id(&self) -> &CallId {
        &self.shared.call_id
    }

    /// The capability's number in the audit trail (its `retention_started` event); `0` for a
    /// capability minted after revocation, which has no such event (numbers start at 1).
    pub fn number(&self) -> u64 {
        self.capability
    }

    /// Whether leaving `Recording` has begun: finish the current frame and drop the handle.
    pub fn is_stopping(&self) -> bool {
        self.shared.is_stopping()
    }

    /// Whether the call ended or was dropped: writes through this handle now fail.
    pub fn is_revoked(&self) -> bool {
        self.shared.is_revoked()
    }

    /// Completes when leaving `Recording` begins (or the call ends). Cancel-safe.
    pub fn stopping(&self) -> Stopping<'_> {
        Stopping {
            shared: &self.shared,
        }
    }
}

impl Clone for RetentionHandle {
    /// A new capability (with its own audit start). If the audit sink fails, or the call has
    /// ended, the clone cannot write (its writes fail like a revoked handle's); use
    /// [`RetentionHandle::try_clone`] to see the audit failure instead.
    fn clone(&self) -> Self {
        match self.try_clone() {
            Ok(h) => h,
            Err(e) => {
                tracing::error!(call_id = %self.shared.call_id, error = %e,
                    "could not audit the start of a cloned retention capability; the clone cannot write");
                Self::inert(&self.shared)
            }
        }
    }
}

impl Drop for RetentionHandle {
    fn drop(&mut self) {
        if self.audited {
            self.shared.end(self.capability, true);
        } else {
            self.shared.gate.release(true);
        }
    }
}

impl fmt::Debug for RetentionHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetentionHandle")
            .field("call_id", &self.shared.call_id)
            .field("capability", &self.capability)
            .field("stopping", &self.is_stopping())
            .field("revoked", &self.is_revoked())
            .finish()
    }
}

/// The future returned by [`RetentionHandle::stopping`].
#[must_use = "futures do nothing unless polled"]
pub struct Stopping<'h> {
    shared: &'h RetentionShared,
}

impl Future for Stopping<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.shared.gate.stopping_or_register(cx.waker()) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

impl fmt::Debug for Stopping<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Stopping").finish_non_exhaustive()
    }
}

mod capability_sealed {
    /// Seals [`Capability`](super::Capability) and carries the gate every write enters.
    #[allow(unnameable_types)] // Sealed on purpose.
    pub trait Sealed {
        /// The gate every write through the capability enters, or why it cannot write at all.
        fn usable(&self) -> std::io::Result<&super::Gate>;
    }
}

/// A retention capability: [`Retention`] or [`RetentionHandle`]. Sealed.
pub trait Capability: capability_sealed::Sealed + fmt::Debug {
    /// The call the capability belongs to.
    fn call_id(&self) -> &CallId;

    /// `Ok` while writing is allowed. This is a snapshot, for callers that want to skip work;
    /// [`RetentionWriter`] does not rely on it but checks, and holds, the capability around
    /// every inner write.
    ///
    /// # Errors
    /// [`io::ErrorKind::PermissionDenied`] once the capability was revoked.
    fn check(&self) -> io::Result<()> {
        if self.usable()?.is_revoked() {
            return Err(revoked());
        }
        Ok(())
    }
}

impl capability_sealed::Sealed for Retention<'_> {
    #[inline]
    fn usable(&self) -> io::Result<&Gate> {
        if !self.audited {
            return Err(revoked());
        }
        Ok(&self.shared.gate)
    }
}

impl Capability for Retention<'_> {
    fn call_id(&self) -> &CallId {
        &self.shared.call_id
    }
}

impl capability_sealed::Sealed for RetentionHandle {
    #[inline]
    fn usable(&self) -> io::Result<&Gate> {
        if !self.audited {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                "this retention handle was never audited and cannot write",
            ));
        }
        Ok(&self.shared.gate)
    }
}

impl Capability for RetentionHandle {
    fn call_id(&self) -> &CallId {
        &self.shared.call_id
    }
}

/// A writer that persists media only through a retention capability.
///
/// Wraps any [`std::io::Write`] (or, with the `tokio` feature, any `tokio::io::AsyncWrite`).
/// Every write first checks the capability; once it is revoked, writes fail with
/// [`io::ErrorKind::PermissionDenied`] and nothing reaches the inner writer.
///
/// # Example: a borrowed capability and a file
/// ```no_run
/// # fn f(call: &recording_status::Call<recording_status::Recording>) -> Result<(), Box<dyn std::error::Error>> {
/// use std::io::Write;
/// let file = std::fs::File::create("call.raw")?;
/// let mut writer = recording_status::RetentionWriter::new(call.retention()?, file);
/// writer.write_all(b"frame")?;
/// writer.finish()?; // flushes, then ends the capability
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct RetentionWriter<C: Capability, W> {
    // Declared first so that it drops first: whatever `W` flushes on drop reaches storage
    // while the capability is still alive, never after the drain completed.
    inner: W,
    capability: C,
    /// This writer's place at the capability's gate (G8).
    slot: Slot,
}

impl<C: Capability, W> RetentionWriter<C, W> {
    /// Wraps `inner` behind `capability`.
    pub fn new(capability: C, inner: W) -> Self {
        let slot = match capability.usable() {
            Ok(gate) => gate.slot(),
            // A capability that can never write gets a slot of no gate; every write through it
            // is refused by `usable` before the slot is used.
            Err(_) => Slot::unattached(),
        };
        Self {
            inner,
            capability,
            slot,
        }
    }

    /// Enters `capability`'s gate through `slot` for one inner write: the guard holds it
    /// until dropped. Takes the fields, not `self`, so that the inner writer stays free to
    /// borrow mutably.
    /// Runs `write` on the inner writer holding the capability (G8): the async writes of the
    /// `tokio` feature go through here, as the blocking ones go through [`enter`](Self::enter).
    #[allow(dead_code)] // Used by the `tokio` feature's `AsyncWrite`.
    pub(crate) fn through<R>(&mut self, write: impl FnOnce(&mut W) -> R) -> io::Result<R> {
        let _held = Self::enter(&self.capability, &self.slot)?;
        Ok(write(&mut self.inner))
    }

    /// The inner writer and the capability, without a flush.
    #[allow(dead_code)] // Used by the `tokio` feature's `finish_async`.
    pub(crate) fn into_parts(self) -> (W, C) {
        (self.inner, self.capability)
    }

    fn enter<'a>(capability: &'a C, slot: &'a Slot) -> io::Result<WriteGuard<'a>> {
        capability
            .usable()?
            .enter(slot)
            .map_err(|gate::Revoked| revoked())
    }

    /// The capability writes go through.
    pub fn capability(&self) -> &C {
        &self.capability
    }
}

impl<C: Capability, W: io::Write> RetentionWriter<C, W> {
    /// Flushes the inner writer (through the capability, like every write) and returns it
    /// with the capability; drop the capability to end retention.
    ///
    /// # Errors
    /// The flush failed, or the capability was revoked; the writer is lost with the error.
    pub fn finish(mut self) -> io::Result<(W, C)> {
        io::Write::flush(&mut self)?;
        Ok((self.inner, self.capability))
    }
}

/// Every inner call holds the capability for its duration (G8): one check per inner write,
/// and revocation waits until the call returns. `write_all` and `write_fmt` are the standard
/// loops over [`write`](io::Write::write), so each chunk the inner writer takes is checked on
/// its own: a revocation in the middle of a large buffer stops it at the next chunk.
impl<C: Capability, W: io::Write> io::Write for RetentionWriter<C, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let _held = Self::enter(&self.capability, &self.slot)?;
        self.inner.write(buf)
    }

    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        let _held = Self::enter(&self.capability, &self.slot)?;
        self.inner.write_vectored(bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        let _held = Self::enter(&self.capability, &self.slot)?;
        self.inner.flush()
    }
}
