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
//! Every capability's start and end is an [`AuditEvent`].

use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

use crate::audit::{AuditEvent, AuditKind, AuditSink};
use crate::error::AuditError;
use crate::types::CallId;

pub(crate) struct RetentionShared {
    call_id: CallId,
    audit: Arc<dyn AuditSink>,
    orphan: Option<Arc<dyn crate::call::OrphanHook>>,
    next_capability: Arc<AtomicU64>,
    // Read on every media write, so kept out of the mutex.
    stopping: AtomicBool,
    revoked: AtomicBool,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    owned_live: usize,
    borrowed_live: usize,
    drain_wakers: Vec<Waker>,
    stop_wakers: Vec<Waker>,
}

impl RetentionShared {
    pub(crate) fn new(
        call_id: CallId,
        audit: Arc<dyn AuditSink>,
        orphan: Option<Arc<dyn crate::call::OrphanHook>>,
        next_capability: Arc<AtomicU64>,
    ) -> Arc<Self> {
        Arc::new(Self {
            call_id,
            audit,
            orphan,
            next_capability,
            stopping: AtomicBool::new(false),
            revoked: AtomicBool::new(false),
            inner: Mutex::new(Inner::default()),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn call_id(&self) -> &CallId {
        &self.call_id
    }

    pub(crate) fn outstanding(&self) -> usize {
        let inner = self.lock();
        inner.owned_live + inner.borrowed_live
    }

    fn audit(&self, kind: AuditKind) -> Result<(), AuditError> {
        self.audit
            .record(&AuditEvent::now(self.call_id.as_str(), kind))
    }

    /// Mints a capability number and records its start. The capability exists only if the
    /// start was recorded.
    fn start(&self, owned: bool) -> Result<u64, AuditError> {
        let capability = self.next_capability.fetch_add(1, Ordering::Relaxed);
        self.audit(AuditKind::RetentionStarted { capability, owned })?;
        let mut inner = self.lock();
        if owned {
            inner.owned_live += 1;
        } else {
            inner.borrowed_live += 1;
        }
        Ok(capability)
    }

    /// Records a capability's end, then releases it. The order matters (G4): the drain may
    /// complete, and the end-of-recording request be audited, only after this end is in the
    /// trail.
    fn end(&self, capability: u64, owned: bool) {
        if let Err(e) = self.audit(AuditKind::RetentionEnded { capability }) {
            tracing::error!(call_id = %self.call_id, capability, error = %e,
                "could not audit the end of a retention capability");
        }
        self.release(owned);
    }

    /// Lets go of a capability and wakes the drain when the last owned one is gone.
    fn release(&self, owned: bool) {
        let wakers = {
            let mut inner = self.lock();
            if owned {
                inner.owned_live -= 1;
            } else {
                inner.borrowed_live -= 1;
            }
            if inner.owned_live == 0 {
                std::mem::take(&mut inner.drain_wakers)
            } else {
                Vec::new()
            }
        };
        wakers.into_iter().for_each(Waker::wake);
    }

    /// Raises the stop signal for owned handles. Returns how many capabilities are alive.
    pub(crate) fn raise_stop(&self) -> usize {
        let (wakers, outstanding) = {
            let mut inner = self.lock();
            self.stopping.store(true, Ordering::SeqCst);
            (
                std::mem::take(&mut inner.stop_wakers),
                inner.owned_live + inner.borrowed_live,
            )
        };
        wakers.into_iter().for_each(Waker::wake);
        outstanding
    }

    /// Revokes every capability: writes through them fail from now on.
    pub(crate) fn revoke(&self) {
        self.revoked.store(true, Ordering::SeqCst);
        let outstanding = self.outstanding();
        self.raise_stop();
        if let Err(e) = self.audit(AuditKind::RetentionRevoked { outstanding }) {
            tracing::error!(call_id = %self.call_id, error = %e,
                "could not audit the revocation of retention");
        }
    }

    /// The call was dropped while recording: revoke, then let the orphan hook report it once
    /// every capability has ended.
    pub(crate) fn orphaned(self: &Arc<Self>) {
        self.revoke();
        if let Some(hook) = &self.orphan {
            hook.orphaned(&self.call_id, self.clone());
        }
    }

    fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    fn is_revoked(&self) -> bool {
        self.revoked.load(Ordering::SeqCst)
    }

    /// Waits (async) until no owned handle is alive, or `deadline` completes first.
    /// Returns the number still alive on timeout.
    pub(crate) async fn drain<D: Future<Output = ()>>(&self, deadline: D) -> Result<(), usize> {
        let mut deadline = std::pin::pin!(deadline);
        std::future::poll_fn(|cx| {
            {
                let mut inner = self.lock();
                if inner.owned_live == 0 {
                    return Poll::Ready(Ok(()));
                }
                if !inner.drain_wakers.iter().any(|w| w.will_wake(cx.waker())) {
                    inner.drain_wakers.push(cx.waker().clone());
                }
            }
            match deadline.as_mut().poll(cx) {
                Poll::Ready(()) => {
                    let inner = self.lock();
                    if inner.owned_live == 0 {
                        Poll::Ready(Ok(()))
                    } else {
                        Poll::Ready(Err(inner.owned_live))
                    }
                }
                Poll::Pending => Poll::Pending,
            }
        })
        .await
    }
}

/// A borrowed retention capability: proof that its call is in `Recording`, for as long as the
/// borrow lasts.
///
/// Obtained from [`Call::<Recording>::retention`](crate::Call::retention). Because it borrows
/// the call, the call cannot be stopped while it is alive.
///
/// ```compile_fail
/// # fn f(call: recording_status::Call<recording_status::Recording>, g: &recording_status::Graph<fn(recording_status::transport::HttpRequest) -> std::future::Ready<Result<recording_status::transport::HttpResponse, std::io::Error>>>) {
/// let retention = call.retention().unwrap();
/// let stopped = call.stop_recording(g, std::future::pending());   // error[E0505]
/// drop(retention);
/// # }
/// ```
#[must_use = "a capability that is not used only adds audit noise"]
pub struct Retention<'c> {
    shared: &'c RetentionShared,
    capability: u64,
}

impl<'c> Retention<'c> {
    pub(crate) fn new(shared: &'c RetentionShared) -> Result<Self, AuditError> {
        let capability = shared.start(false)?;
        Ok(Self { shared, capability })
    }

    /// The call this capability belongs to.
    pub fn call_id(&self) -> &CallId {
        &self.shared.call_id
    }

    /// The capability's number in the audit trail.
    pub fn capability(&self) -> u64 {
        self.capability
    }
}

impl Drop for Retention<'_> {
    fn drop(&mut self) {
        self.shared.end(self.capability, false);
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
/// # async fn media_task(handle: recording_status::RetentionHandle) {
/// let mut writer = recording_status::RetentionWriter::new(handle, Vec::new());
/// loop {
///     // next frame …
///     # let frame = [0u8; 4];
///     if writer.capability().is_stopping() {
///         break;
///     }
///     std::io::Write::write_all(&mut writer, &frame).unwrap();
///     # break;
/// }
/// let (_bytes, _handle) = writer.finish().unwrap(); // dropping the handle lets the drain end
/// # }
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
        let capability = shared.start(true)?;
        Ok(Self {
            shared,
            capability,
            audited: true,
        })
    }

    /// A handle that cannot write: it only keeps the drain waiting until it is dropped.
    fn inert(shared: &Arc<RetentionShared>) -> Self {
        shared.lock().owned_live += 1;
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
        if self.shared.is_revoked() {
            return Ok(Self::inert(&self.shared));
        }
        Self::new(self.shared.clone())
    }

    /// The call this capability belongs to.
    pub fn call_id(&self) -> &CallId {
        &self.shared.call_id
    }

    /// The capability's number in the audit trail.
    pub fn capability(&self) -> u64 {
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
            self.shared.release(true);
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
        let mut inner = self.shared.lock();
        if self.shared.is_stopping() {
            return Poll::Ready(());
        }
        if !inner.stop_wakers.iter().any(|w| w.will_wake(cx.waker())) {
            inner.stop_wakers.push(cx.waker().clone());
        }
        Poll::Pending
    }
}

impl fmt::Debug for Stopping<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Stopping").finish_non_exhaustive()
    }
}

mod capability_sealed {
    #[allow(unnameable_types)] // Sealed on purpose.
    pub trait Sealed {}
    impl Sealed for super::Retention<'_> {}
    impl Sealed for super::RetentionHandle {}
}

/// A retention capability: [`Retention`] or [`RetentionHandle`]. Sealed.
pub trait Capability: capability_sealed::Sealed + fmt::Debug {
    /// The call the capability belongs to.
    fn call(&self) -> &CallId;

    /// `Ok` while writing is allowed.
    ///
    /// # Errors
    /// [`io::ErrorKind::PermissionDenied`] once the capability was revoked.
    fn check(&self) -> io::Result<()>;
}

impl Capability for Retention<'_> {
    fn call(&self) -> &CallId {
        self.call_id()
    }

    fn check(&self) -> io::Result<()> {
        check_revoked(self.shared)
    }
}

impl Capability for RetentionHandle {
    fn call(&self) -> &CallId {
        self.call_id()
    }

    fn check(&self) -> io::Result<()> {
        if !self.audited {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                "this retention handle was never audited and cannot write",
            ));
        }
        check_revoked(&self.shared)
    }
}

fn check_revoked(shared: &RetentionShared) -> io::Result<()> {
    if shared.is_revoked() {
        Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            "retention revoked: the call is no longer recording",
        ))
    } else {
        Ok(())
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
}

impl<C: Capability, W> RetentionWriter<C, W> {
    /// Wraps `inner` behind `capability`.
    pub fn new(capability: C, inner: W) -> Self {
        Self { inner, capability }
    }

    /// The capability writes go through.
    pub fn capability(&self) -> &C {
        &self.capability
    }
}

impl<C: Capability, W: io::Write> RetentionWriter<C, W> {
    /// Flushes the inner writer and returns it with the capability; drop the capability to end
    /// retention.
    ///
    /// # Errors
    /// The flush failed; the writer is lost with the error.
    pub fn finish(mut self) -> io::Result<(W, C)> {
        self.inner.flush()?;
        Ok((self.inner, self.capability))
    }
}

impl<C: Capability, W: io::Write> io::Write for RetentionWriter<C, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.capability.check()?;
        self.inner.write(buf)
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.capability.check()?;
        self.inner.write_all(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.capability.check()?;
        self.inner.flush()
    }
}

#[cfg(feature = "tokio")]
impl<C: Capability + Unpin, W: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite
    for RetentionWriter<C, W>
{
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.capability.check()?;
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.capability.check()?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.capability.check()?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

#[cfg(feature = "tokio")]
impl<C: Capability, W: tokio::io::AsyncWrite + Unpin> RetentionWriter<C, W> {
    /// Flushes the inner async writer and returns it with the capability.
    ///
    /// # Errors
    /// The flush failed.
    pub async fn finish_async(mut self) -> io::Result<(W, C)> {
        tokio::io::AsyncWriteExt::flush(&mut self.inner).await?;
        Ok((self.inner, self.capability))
    }
}
