//! The async driver: runs a call's recording status end to end against Graph's real
//! behaviour, on tokio.
//!
//! - Each transition retries inside its deadline ([`RetryPolicy`]): `429`/`503` honour
//!   `Retry-After`, failures before sending back off, a `401` refreshes the token once;
//!   ambiguous failures are never retried blindly.
//! - A `recording` update whose operation is `running`/`notStarted`/`null` waits for its
//!   notification, which the bot's webhook hands to the [`Hub`]; when
//!   [`DriverConfig::pending_deadline`] passes first the outcome is unknown, the call goes to
//!   `Failed`, and a late `completed` is surfaced as [`DriverEvent::LateCompletion`].
//! - Requests for one call are sent one at a time, in order.
//! - A `Call<Recording>` dropped without stopping has its retention revoked (no write in
//!   flight, none can start) and a best-effort `notRecording` queued on the current tokio
//!   runtime. If the bot opens the call again and begins a new recording episode before that
//!   report goes out, the report is cancelled rather than waited for: the new episode's own
//!   request decides what Graph shows, the trail records `report_superseded`, and the bot gets
//!   [`DriverEvent::OrphanNotReported`]. A begin waits at most for the attempt such a report
//!   has under way and the `Retry-After` pause after it (the report then fetches its token,
//!   finds the later episode, and stops), never for its further retries.
//! - At a [`JsonLinesSink`](crate::audit::JsonLinesSink) at `Durability::Synced`
//!   ([`AuditSink::defers`]), a request's `request_sent` and an answer's lines go to the OS at
//!   once and their sync is awaited as a future: the request leaves, and the result is handed
//!   back, once they are on the disk, and no thread waits meanwhile, so the lines of every call
//!   in flight share the sink's next sync. The first step of a begin, a stop or a failure
//!   report (the transition to `PendingRecording`, the stop signal) is synced with its
//!   request's `request_sent`, and the transition a notification leads to is awaited as an
//!   answer's is.
//! - At a sink whose other writes wait for their storage ([`AuditSink::blocks`]: the same
//!   file, a [`GroupCommit`](crate::audit::GroupCommit) over a database), each step of the
//!   driver that writes to the trail runs in tokio's `block_in_place` on a multi-threaded
//!   runtime: its worker's other tasks go on on another thread, so the steps of many calls wait
//!   on the sink at once and share its writes. On a current-thread runtime they write in place.
//!   What the bot's own code writes (a capability minted or dropped, a notification handed to
//!   the hub) is written on the thread that does it.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use crate::audit::AuditSink;
use crate::call::{AnyCall, Begin, Call, CanBegin, Ended, NotSent, StopError};
use crate::error::Error;
use crate::exchange::{Output, StatusUpdate, Step};
use crate::graph::{Graph, Timer};
use crate::registry::Calls;
use crate::response::{Permanent, ResultInfo};
use crate::seam::{
    CallEntry, OrphanHook, RecordingSent, RetentionShared, SendGuard, entry, normalize_id,
    registry, report, revoke, unsettled,
};

mod hub;
mod recovery;
mod shutdown;
mod turns;

pub use crate::retry::RetryPolicy;
use crate::state::{Failed, NotRecording, PendingRecording, Recording, State};
use crate::status::RecordingStatus;
use crate::transport::Transport;
use crate::types::CallId;
use hub::{Budget, Key};
pub use hub::{Delivery, Hub, MAX_OPERATION_ID_LEN, MESSAGE_ID_HEADER, ORIGINAL_MESSAGE_ID_HEADER};
pub use recovery::Recovery;
use shutdown::Life;
pub use shutdown::{ShutdownReport, Unreported};
use turns::Turns;

/// tokio's clock for [`Graph`]'s waits ([`Timer`]): the driver's graph uses it, so that tests
/// on tokio's paused clock pause the retries too.
#[derive(Debug, Clone, Copy, Default)]
#[non_exhaustive]
pub struct TokioTimer;

impl Timer for TokioTimer {
    fn now(&self) -> Instant {
        tokio::time::Instant::now().into_std()
    }

    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        Box::pin(tokio::time::sleep(duration))
    }

    /// On a multi-threaded runtime, `work` runs in `tokio::task::block_in_place`: the worker's
    /// other tasks move to another thread while it waits on the sink. Elsewhere (a
    /// current-thread runtime, no runtime) it runs in place.
    fn blocking(&self, work: &mut dyn FnMut()) {
        use tokio::runtime::{Handle, RuntimeFlavor};
        match Handle::try_current() {
            Ok(handle) if handle.runtime_flavor() == RuntimeFlavor::MultiThread => {
                tokio::task::block_in_place(work);
            }
            _ => work(),
        }
    }
}

/// How long the driver waits, and how it retries.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DriverConfig {
    /// How long a pending `recording` operation may wait for its notification (default 30 s,
    /// as the .NET comms SDK).
    pub pending_deadline: Duration,
    /// How long leaving `Recording` waits for retention capabilities to end (default 10 s).
    pub drain_deadline: Duration,
    /// Retries inside one transition.
    pub retry: RetryPolicy,
    /// How long the hub remembers what it correlates later (updates that arrived before their
    /// call waited, abandoned and settled requests, ended calls; default 10 min). What expires
    /// is audited
    /// and surfaced ([`DriverEvent::Forgotten`], [`DriverEvent::OutcomeUnknown`]).
    pub memory: Duration,
    /// How many bytes those memories may hold together (default 64 MiB, about 200,000 entries:
    /// 10,000 concurrent calls fit many times over). Past it the oldest entries are forgotten,
    /// settled requests first, then held updates, then abandoned requests, then ended calls;
    /// each is audited and surfaced like an expired one.
    pub memory_bytes: usize,
}

impl Default for DriverConfig {
    fn default() -> Self {
        Self {
            pending_deadline: Duration::from_secs(30),
            drain_deadline: Duration::from_secs(10),
            retry: RetryPolicy::default(),
            memory: Duration::from_secs(600),
            memory_bytes: 64 << 20,
        }
    }
}

impl DriverConfig {
    /// Sets [`pending_deadline`](Self::pending_deadline).
    #[must_use]
    pub const fn with_pending_deadline(mut self, d: Duration) -> Self {
        self.pending_deadline = d;
        self
    }

    /// Sets [`drain_deadline`](Self::drain_deadline).
    #[must_use]
    pub const fn with_drain_deadline(mut self, d: Duration) -> Self {
        self.drain_deadline = d;
        self
    }

    /// Sets [`retry`](Self::retry).
    #[must_use]
    pub const fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Sets [`memory`](Self::memory).
    #[must_use]
    pub const fn with_memory(mut self, d: Duration) -> Self {
        self.memory = d;
        self
    }

    /// Sets [`memory_bytes`](Self::memory_bytes).
    #[must_use]
    pub const fn with_memory_bytes(mut self, bytes: usize) -> Self {
        self.memory_bytes = bytes;
        self
    }
}

/// Something the bot must know about that is not the result of a call it awaited.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DriverEvent {
    /// Graph completed a `recording` request after the driver had given up on it: Graph now
    /// shows `recording` while the call is `Failed` and retains nothing. Report the truth with
    /// [`Driver::reconcile`].
    LateCompletion(LateCompletion),
    /// A `Call<Recording>` was dropped without stopping; its retention was revoked (no write
    /// was in flight any more, and none could start) and `notRecording` was reported, best
    /// effort. `acknowledged` says whether Graph accepted it.
    OrphanReported {
        /// The call.
        call_id: CallId,
        /// Whether Graph acknowledged the `notRecording`.
        acknowledged: bool,
    },
    /// A `Call<Recording>` was dropped without stopping; its retention was revoked, but
    /// `notRecording` was not reported. `reason` says why: the bot began a later recording
    /// episode of the call first (that episode's outcome now decides what Graph shows: nothing
    /// to do, unless that begin then sent nothing, returning [`NotSent`] or dropped before its
    /// request left; Graph then still shows `recording`: begin again, or begin and stop), or
    /// the audit trail refused the revocation or a capability's end (fix the sink; Graph still
    /// shows `recording`).
    OrphanNotReported {
        /// The call.
        call_id: CallId,
        /// Why nothing was reported.
        reason: String,
    },
    /// The hub forgot something it remembered (its memory is bounded by
    /// [`DriverConfig::memory`] and [`DriverConfig::memory_bytes`]); also in the trail as
    /// `hub_forgot`. An early update forgotten means a call that was about to wait for it will
    /// time out instead; raise the budget if this happens under normal load.
    Forgotten(Forgotten),
    /// Graph notified that the call ended (a `#microsoft.graph.call` with `state: terminated`,
    /// or the call deleted): its retention was revoked at once (no write through it is in
    /// flight, none can start) and no request will be sent for it again. End the call's value
    /// with [`Driver::end`]; `result_info` says why it ended (e.g. `200`/`5001`, "The
    /// conversation has ended").
    CallTerminated {
        /// The call.
        call_id: CallId,
        /// Graph's reason, if the notification carried one.
        result_info: Option<crate::response::ResultInfo>,
    },
    /// The hub can no longer match the outcome of an abandoned `recording` request (its memory
    /// expired or filled): Graph may still complete it and show `recording`. Reconcile it now
    /// with [`Driver::reconcile`], as for a late completion.
    OutcomeUnknown(LateCompletion),
}

/// Something the hub forgot. See [`DriverEvent::Forgotten`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Forgotten {
    /// What was forgotten.
    pub kind: ForgottenKind,
    /// The call it was about, when known.
    pub call_id: Option<CallId>,
    /// Why: `expired` or `over budget`.
    pub reason: String,
}

/// What the hub forgot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ForgottenKind {
    /// An update that arrived before its call waited for it.
    EarlyUpdate,
    /// A request whose call gave up waiting (reported as [`DriverEvent::OutcomeUnknown`]).
    AbandonedRequest,
    /// A request that settled (kept to recognise duplicates).
    SettledRequest,
    /// A call that ended (kept to refuse further requests for it).
    EndedCall,
    /// The id of a notification message applied (kept to apply a resend once).
    DeliveredMessage,
}

impl ForgottenKind {
    /// The name used in the audit trail.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::EarlyUpdate => "early_update",
            Self::AbandonedRequest => "abandoned_request",
            Self::SettledRequest => "settled_request",
            Self::EndedCall => "ended_call",
            Self::DeliveredMessage => "delivered_message",
        }
    }
}

/// A `completed` for an abandoned `recording` request. See [`DriverEvent::LateCompletion`].
///
/// Graph shows `recording` for a call whose value is `Failed` and retains nothing. Keep this
/// value until [`Driver::reconcile`] succeeds (it may be retried with the same value); do not
/// [`Driver::end`] the call first, since reconciliation refuses ended calls. Which status to
/// send: [`EndStatus::NotRecording`] when the bot is simply not recording the call (it gave
/// up waiting, nothing broke), [`EndStatus::Failed`] when the bot could not record a call its
/// policy requires it to (storage down, media unavailable): `failed` is what compliance
/// reporting counts as a recording failure.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LateCompletion {
    /// The call.
    pub call_id: CallId,
    /// The recording episode the abandoned request began. [`Driver::reconcile`] sends nothing
    /// once a later episode of the call has begun.
    pub episode: u64,
    /// The operation id, if known.
    pub operation_id: Option<String>,
    /// The abandoned request's `clientContext`.
    pub client_context: String,
}

/// What the bot may report to reconcile a late completion: never `recording`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum EndStatus {
    /// `notRecording`.
    NotRecording,
    /// `failed`.
    Failed,
}

/// The result of [`Driver::begin_recording`]: the driver has waited out any pending operation.
#[derive(Debug)]
#[non_exhaustive]
pub enum Started {
    /// Graph acknowledged `recording` as `completed`: media may be persisted.
    Recording(Call<Recording>),
    /// Rejected, failed, or unknown (see [`Call::reason`]); `failed` was reported best effort.
    /// Nothing may be persisted.
    ///
    /// What to do with the value: retry with [`Driver::begin_recording`] (a permanent reason
    /// such as [`Permanent::NotComplianceCall`]
    /// will not change), or drop it. When the outcome was unknown (a deadline passed, an
    /// ambiguous error), Graph may still complete the request: the hub remembers it for
    /// [`DriverConfig::memory`] (10 minutes by default) and then reports
    /// [`DriverEvent::LateCompletion`] or [`DriverEvent::OutcomeUnknown`]. Until then do not
    /// [`Driver::end`] the call unless it really ended: ending it makes a later
    /// [`Driver::reconcile`] fail with [`Error::CallEnded`] and leaves Graph showing
    /// `recording`.
    Failed(Call<Failed>),
}

/// Receives [`DriverEvent`]s. Keep polling it: events are never dropped while it lives.
pub type DriverEvents = mpsc::UnboundedReceiver<DriverEvent>;

/// Runs calls' recording status against Graph. Cheap to clone; share one per bot.
///
/// # Example
/// ```
/// use std::sync::Arc;
/// use recording_status::driver::{Driver, DriverConfig, Started};
/// use recording_status::audit::MemorySink;
/// use recording_status::testing::{ScriptedTransport, Step};
/// use recording_status::{AccessToken, Graph};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # tokio::runtime::Builder::new_current_thread().enable_time().build()?.block_on(async {
/// let graph = Graph::new(ScriptedTransport::new().then(Step::completed()), AccessToken::new("t"));
/// let audit = Arc::new(MemorySink::default());
/// let (driver, _events) = Driver::new(graph, audit, DriverConfig::default());
/// let call = driver.call("57dab8b1-894c-409a-b240-bd8beae78896".parse()?)?;
/// let Started::Recording(call) = driver.begin_recording(call).await? else {
///     return Err("not acknowledged: nothing may be persisted".into());
/// };
/// # drop(call.end());
/// # Ok(())
/// # })
/// # }
/// ```
pub struct Driver<T> {
    inner: Arc<Inner<T>>,
}

impl<T> Clone for Driver<T> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

impl<T> fmt::Debug for Driver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Driver")
            .field("graph", &self.inner.graph)
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

struct Inner<T> {
    graph: Graph<T>,
    calls: Calls,
    config: DriverConfig,
    hub: Hub,
    events: mpsc::UnboundedSender<DriverEvent>,
    /// One request in flight per call, in arrival order.
    turns: Turns,
    /// Whether the instance is stopping ([`Driver::shutdown`]), and what still runs.
    life: Life,
}

impl<T: Transport + 'static> Driver<T> {
    /// A driver sending through `graph` (its retry policy is replaced by `config.retry`),
    /// auditing to `audit`. Returns the receiver of [`DriverEvent`]s.
    pub fn new(
        graph: Graph<T>,
        audit: Arc<dyn AuditSink>,
        config: DriverConfig,
    ) -> (Self, DriverEvents) {
        let (events, rx) = mpsc::unbounded_channel();
        let graph = graph
            .with_retry(config.retry.clone())
            .with_timer(Arc::new(TokioTimer));
        let inner = Arc::new_cyclic(|weak: &std::sync::Weak<Inner<T>>| {
            let hook: Arc<dyn OrphanHook> = Arc::new(Orphans {
                driver: weak.clone(),
            });
            // The hub learns of every `recording` request before it is sent: if the exchange is
            // cancelled, or its outcome is unknown, the request is filed as abandoned so that
            // Graph's later completion surfaces as a late completion (G10).
            let remember = Arc::new(Remember {
                driver: weak.clone(),
            });
            let calls = registry(audit.clone(), hook, remember);
            let hub = Hub::new(
                audit.clone(),
                events.clone(),
                Budget {
                    max_age: config.memory,
                    max_bytes: config.memory_bytes,
                },
                calls.clone(),
            );
            Inner {
                graph,
                calls,
                config,
                hub,
                events,
                turns: Turns::default(),
                life: Life::default(),
            }
        });
        (Self { inner }, rx)
    }

    /// The hub the bot's notification webhook hands bodies to.
    pub fn hub(&self) -> &Hub {
        &self.inner.hub
    }

    /// The Graph link.
    pub fn graph(&self) -> &Graph<T> {
        &self.inner.graph
    }

    /// The configuration.
    pub fn config(&self) -> &DriverConfig {
        &self.inner.config
    }

    /// Opens a call, auditing to the driver's sink; if it is ever dropped while recording,
    /// the driver revokes its retention and reports `notRecording` for it.
    ///
    /// # Errors
    /// [`Error::AlreadyOpen`] if a value for the same call (under any spelling of its id) is
    /// alive: one Graph call has one value at a time (G7).
    pub fn call(&self, id: CallId) -> Result<Call<NotRecording>, Error> {
        self.inner.calls.open(id)
    }

    /// The driver's registry of live calls.
    pub fn calls(&self) -> &Calls {
        &self.inner.calls
    }

    /// Reports `recording` and waits until Graph settles it: `completed` (in the response or a
    /// notification) gives [`Started::Recording`]; a rejection, a failed operation, an ambiguous
    /// error or [`DriverConfig::pending_deadline`] give [`Started::Failed`].
    ///
    /// # Errors
    /// [`NotSent`] with the call unchanged if nothing was sent, if the call has ended, or
    /// with [`Error::ShuttingDown`] once [`Driver::shutdown`] has started.
    ///
    /// # Time
    /// At most the retry policy's deadline for the request, plus
    /// [`DriverConfig::pending_deadline`] when Graph answers `running`, plus
    /// [`RetryPolicy::report_grace`](crate::driver::RetryPolicy::report_grace) for the
    /// best-effort `failed` report when the start fails.
    ///
    /// # Cancellation
    /// The call value is moved in, so dropping this future drops it (its registry seat is
    /// freed). Dropped before the request left: nothing was sent. Dropped while the request
    /// was in flight, or while waiting for its notification: the hub knew the request before
    /// it was sent, so it is filed as abandoned, and a later `completed` for it surfaces as
    /// [`DriverEvent::LateCompletion`] (or, if the hub's memory lets it go first, as
    /// [`DriverEvent::OutcomeUnknown`]): reconcile it with [`Driver::reconcile`].
    pub async fn begin_recording<S: CanBegin>(&self, call: Call<S>) -> Result<Started, NotSent<S>> {
        let _active = self.inner.life.enter();
        if self.inner.life.is_closing() {
            return Err(NotSent {
                call,
                error: Error::ShuttingDown,
            });
        }
        if self.inner.hub.has_ended(call.id()) {
            return Err(NotSent {
                call,
                error: Error::CallEnded,
            });
        }
        let begin = self.ahead(|| call.start_recording())?;
        let pending = match self.run(begin).await? {
            Begin::Recording(c) => return Ok(Started::Recording(self.unless_ended(c))),
            Begin::Failed(c) => return Ok(self.failed(c)),
            Begin::Pending(c) => c,
        };
        Ok(self.wait_pending(pending).await)
    }

    /// A call Graph terminated while its `recording` request was pending or in flight may
    /// still be acknowledged: its retention is revoked at once, so no capability of it can
    /// write (G8), and `stop_recording` will hand it back to be ended.
    fn unless_ended(&self, call: Call<Recording>) -> Call<Recording> {
        if self.inner.hub.has_ended(call.id()) {
            tracing::warn!(call_id = %call.id(), "acknowledged after Graph terminated the call; retention revoked");
            revoke(&self.inner.calls, call.id());
        }
        call
    }

    /// Graph answered that the call is gone (`8522` "Call not found", or `404`): it is ended
    /// as a `terminated` notification ends it (retention revoked, no further request,
    /// [`DriverEvent::CallTerminated`]).
    fn gone_if_not_found(&self, call: &CallId, error: &Error) {
        let Error::Graph(e) = error else { return };
        if e.permanent() != Some(Permanent::CallNotFound) || self.inner.hub.has_ended(call) {
            return;
        }
        let info = ResultInfo {
            code: Some(i64::from(e.status.as_u16())),
            subcode: e.code.as_deref().and_then(|c| c.parse().ok()),
            message: e.message.clone(),
        };
        self.inner.hub.call_gone(call.clone(), Some(info));
    }

    /// A failed start whose outcome is unknown may still be completed by Graph: remember the
    /// attempt so that a late `completed` is surfaced.
    fn failed(&self, call: Call<Failed>) -> Started {
        self.gone_if_not_found(call.id(), call.reason());
        if let Some(unsettled) = unsettled(&call) {
            self.inner.hub.abandon(
                call.id(),
                Key {
                    call: call.id().normalized().to_owned(),
                    operation: unsettled.operation_id.as_deref().map(normalize_id),
                    context: unsettled.context.clone(),
                    episode: unsettled.episode,
                },
            );
        }
        Started::Failed(call)
    }

    /// Runs `update` over the driver's graph, holding the call's turn (one request in flight
    /// per call, in arrival order; the answer is in the trail before the next request). The
    /// driver's registry tells the hub of every `recording` request before it is sent.
    ///
    /// # Cancellation
    /// As [`Graph::run`]; a `recording` request dropped in flight is filed as abandoned.
    async fn run<O: Output>(&self, update: StatusUpdate<O>) -> O {
        let _turn = self.inner.turns.take(update.call_id()).await;
        self.inner.graph.run(update).await
    }

    /// Runs `step`, a synchronous step that writes to the trail, off the executor's thread if
    /// the sink's writes wait for its storage ([`AuditSink::blocks`]).
    fn step<R>(&self, step: impl FnOnce() -> R) -> R {
        self.inner
            .graph
            .offload(self.inner.calls.audit().blocks(), step)
    }

    /// Runs `step`, a transition's first step, whose next write to the trail is its request's
    /// `request_sent` (begin, stop, failure report): see [`Graph::ahead`].
    fn ahead<R>(&self, step: impl FnOnce() -> R) -> R {
        let audit = self.inner.calls.audit();
        self.inner.graph.ahead(audit.defers(), audit.blocks(), step)
    }

    /// Runs `step`, which leads to a result or to a request: see [`Graph::settle`].
    async fn settle<O: Output>(&self, step: impl FnOnce() -> Step<O>) -> Step<O> {
        let audit = self.inner.calls.audit();
        self.inner
            .graph
            .settle(audit.defers(), audit.blocks(), step)
            .await
    }

    /// A step that may still need a request: [`run`](Self::run) it.
    async fn finish<O: Output>(&self, step: Step<O>) -> O {
        match step {
            Step::Done(out) => out,
            Step::Next { update, .. } => self.run(update).await,
        }
    }

    async fn wait_pending(&self, mut pending: Call<PendingRecording>) -> Started {
        let deadline = tokio::time::Instant::now() + self.inner.config.pending_deadline;
        // A shutdown may bring the deadline forward.
        let mut closing = self.inner.life.deadline();
        // If this future is dropped while waiting, the waiter files the request as abandoned,
        // so a later `completed` is still surfaced.
        let mut waiter = self.inner.hub.register(&pending);
        loop {
            let until = closing
                .borrow_and_update()
                .map_or(deadline, |shutdown| shutdown.min(deadline));
            tokio::select! {
                biased;
                update = waiter.updates.recv() => {
                    let Some((proof, operation)) = update else { break };
                    let step = self.settle(|| pending.apply_operation(&proof, &operation)).await;
                    match self.finish(step).await {
                        Begin::Recording(c) => {
                            waiter.settle();
                            return Started::Recording(self.unless_ended(c));
                        }
                        Begin::Failed(c) => {
                            waiter.settle();
                            return Started::Failed(c);
                        }
                        Begin::Pending(c) => pending = c,
                    }
                }
                () = tokio::time::sleep_until(until) => break,
                Ok(()) = closing.changed() => {}
            }
        }
        // Updates routed before the deadline still count; the rest turn late.
        for (proof, operation) in waiter.close() {
            match self
                .finish(
                    self.settle(|| pending.apply_operation(&proof, &operation))
                        .await,
                )
                .await
            {
                Begin::Recording(c) => return Started::Recording(self.unless_ended(c)),
                Begin::Failed(c) => return Started::Failed(c),
                Begin::Pending(c) => pending = c,
            }
        }
        tracing::warn!(call_id = %pending.id(), "pending recording operation passed its deadline");
        self.failed(
            self.finish(self.settle(|| pending.give_up_waiting()).await)
                .await,
        )
    }

    /// Stops recording: raises the stop signal, waits up to
    /// [`DriverConfig::drain_deadline`] for every retention capability to end, then reports
    /// `notRecording` (with retries).
    ///
    /// # Errors
    /// As [`Call::stop_recording`]; and [`StopError::StillRecording`] with
    /// [`Error::CallEnded`], sending nothing, if the call has ended (Graph terminated it, or
    /// [`Driver::end`] was called for it): its retention is already revoked; end the value.
    ///
    /// # Cancellation
    /// Dropping this future drops the call: while draining, or while the `notRecording` request
    /// is in flight, the dropped `Call<Recording>` is revoked at once (no write in flight, none
    /// can start) and a best-effort `notRecording` is queued for it, as for any recording call
    /// dropped ([`DriverEvent::OrphanReported`]).
    pub async fn stop_recording(
        &self,
        call: Call<Recording>,
    ) -> Result<Call<NotRecording>, StopError> {
        let _active = self.inner.life.enter();
        let Some(_claim) = self.inner.life.claim_stop(call.id()) else {
            return Err(StopError::StillRecording {
                call: Box::new(call),
                error: Error::ShuttingDown,
            });
        };
        if self.inner.hub.has_ended(call.id()) {
            return Err(StopError::StillRecording {
                call: Box::new(call),
                error: Error::CallEnded,
            });
        }
        let id = call.id().clone();
        let drain = tokio::time::sleep(self.inner.config.drain_deadline);
        let update = self.ahead(|| call.start_stop())?.drained(drain).await?;
        let stopped = self.run(update).await;
        if let Err(StopError::Unacknowledged { call }) = &stopped {
            self.gone_if_not_found(&id, call.reason());
        }
        stopped
    }

    /// Recording broke: ends every capability, then reports `failed` (with retries).
    ///
    /// # Errors
    /// As [`Call::report_failure`]; and as [`Driver::stop_recording`] if the call has ended.
    ///
    /// # Cancellation
    /// As [`Driver::stop_recording`]: the dropped call is revoked and `notRecording` is queued
    /// for it.
    pub async fn report_failure(
        &self,
        call: Call<Recording>,
        reason: impl Into<String>,
    ) -> Result<Call<Failed>, StopError> {
        let _active = self.inner.life.enter();
        let Some(_claim) = self.inner.life.claim_stop(call.id()) else {
            return Err(StopError::StillRecording {
                call: Box::new(call),
                error: Error::ShuttingDown,
            });
        };
        if self.inner.hub.has_ended(call.id()) {
            return Err(StopError::StillRecording {
                call: Box::new(call),
                error: Error::CallEnded,
            });
        }
        let id = call.id().clone();
        let drain = tokio::time::sleep(self.inner.config.drain_deadline);
        let update = self
            .ahead(|| call.start_failure_report(reason))?
            .drained(drain)
            .await?;
        let reported = self.run(update).await;
        if let Err(StopError::Unacknowledged { call }) = &reported {
            self.gone_if_not_found(&id, call.reason());
        }
        reported
    }

    /// The call terminated: its retention is revoked, and no request will be sent for it
    /// again by this driver (including reconciliation and orphan reports) while the hub
    /// remembers that it ended: [`DriverConfig::memory`] (10 minutes by default), or less if
    /// [`DriverConfig::memory_bytes`] runs out (ended calls are the last thing the hub forgets
    /// for bytes, and each one forgotten is a [`DriverEvent::Forgotten`]).
    ///
    /// Call it when the call is over (the bot left, or [`DriverEvent::CallTerminated`]), not
    /// to discard a `Failed` value early: a [`LateCompletion`] that arrives afterwards can no
    /// longer be reconciled (see [`Started::Failed`]). To give up on a call that goes on, drop
    /// the value instead.
    pub fn end<S: State>(&self, call: Call<S>) -> Ended {
        self.inner.hub.mark_ended(call.id());
        self.step(|| call.end())
    }

    /// Reports `notRecording` or `failed` after a [`LateCompletion`], so that Graph stops
    /// showing `recording` for a call that retains nothing.
    ///
    /// The report belongs to the late completion's recording episode. If the bot has begun a
    /// later episode of the call since (it retried, and may be recording again), nothing is
    /// sent: that episode's own outcome decides what Graph shows, and a `notRecording` now
    /// would contradict it (G7). The check is made right before the request, under the lock
    /// that begins episodes.
    ///
    /// # Errors
    /// [`Error::Superseded`] if a later episode has begun (nothing sent, and nothing to do);
    /// [`Error::CallEnded`] if the call has ended; otherwise why Graph did not acknowledge.
    ///
    /// # Cancellation
    /// Dropped while the report is in flight, Graph may or may not apply it; nothing else
    /// changes, and `reconcile` may be called again with the same `late`.
    pub async fn reconcile(&self, late: &LateCompletion, status: EndStatus) -> Result<(), Error> {
        let _active = self.inner.life.enter();
        let status = match status {
            EndStatus::NotRecording => RecordingStatus::NotRecording,
            EndStatus::Failed => RecordingStatus::Failed,
        };
        let entry = entry(&self.inner.calls, &late.call_id);
        self.send_end_status(&late.call_id, status, entry, late.episode)
            .await
    }

    async fn send_end_status(
        &self,
        call: &CallId,
        status: RecordingStatus,
        entry: Arc<CallEntry>,
        episode: u64,
    ) -> Result<(), Error> {
        if self.inner.hub.has_ended(call) {
            return Err(Error::CallEnded);
        }
        let update = report(call, status, entry, episode);
        let reported = self.run(update).await;
        if let Err(e) = &reported {
            self.gone_if_not_found(call, e);
        }
        reported
    }
}

impl From<Started> for AnyCall {
    fn from(started: Started) -> Self {
        match started {
            Started::Recording(c) => Self::Recording(c),
            Started::Failed(c) => Self::Failed(c),
        }
    }
}

/// One of the driver's operations carried out by a spawned task, counted from before the spawn
/// until the task ends or is dropped (see [`Driver::shutdown`]).
struct Detached<T>(Driver<T>);

impl<T> Detached<T> {
    fn enter(driver: Driver<T>) -> Self {
        driver.inner.life.enter_detached();
        Self(driver)
    }
}

impl<T> Drop for Detached<T> {
    fn drop(&mut self) {
        self.0.inner.life.leave();
    }
}

/// Files a `recording` request as abandoned in the hub when its outcome may be applied by
/// Graph unseen (its exchange was dropped, or ended with the outcome unknown).
struct Remember<T> {
    /// Weak: the driver owns the registry that owns this hook.
    driver: std::sync::Weak<Inner<T>>,
}

impl<T: Transport + 'static> RecordingSent for Remember<T> {
    fn sent(&self, call: &CallId, episode: u64, client_context: &str) -> SendGuard {
        let Some(inner) = self.driver.upgrade() else {
            return SendGuard::new(|| {});
        };
        let (call, context) = (call.clone(), client_context.to_owned());
        SendGuard::new(move || {
            let key = Key {
                call: call.normalized().to_owned(),
                operation: None,
                context,
                episode,
            };
            inner.hub.abandon(&call, key);
        })
    }
}

/// Queues a best-effort `notRecording` for calls dropped while recording.
struct Orphans<T> {
    /// Weak: the driver owns the registry that owns this hook.
    driver: std::sync::Weak<Inner<T>>,
}

impl<T: Transport + 'static> OrphanHook for Orphans<T> {
    fn orphaned(&self, entry: Arc<CallEntry>, episode: u64, retention: Arc<RetentionShared>) {
        let call = retention.call_id().clone();
        let Some(inner) = self.driver.upgrade() else {
            tracing::warn!(call_id = %call, "driver gone: cannot report `notRecording` for a dropped recording call");
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::warn!(call_id = %call, "no tokio runtime: cannot report `notRecording` for a dropped recording call");
            return;
        };
        // Counted before the spawn, so that a shutdown starting now waits for this report
        // instead of auditing its stop before the report's request.
        let active = Detached::enter(Driver { inner });
        runtime.spawn(async move {
            let driver = &active.0;
            // Revocation has returned: no write is in flight and none can start (G8), so the
            // report may go out at once, once the trail holds every end and the revocation.
            let result = match retention.record_unrecorded() {
                Err(e) => Err(Error::Audit(e)),
                Ok(()) => {
                    driver
                        .send_end_status(
                            &call,
                            RecordingStatus::NotRecording,
                            entry,
                            episode,
                        )
                        .await
                }
            };
            drop(retention);
            let event = match result {
                Err(Error::CallEnded) => return,
                Ok(()) => DriverEvent::OrphanReported {
                    call_id: call,
                    acknowledged: true,
                },
                Err(e @ (Error::Superseded { .. } | Error::Audit(_))) => {
                    tracing::warn!(call_id = %call, error = %e, "`notRecording` for a dropped recording call not sent");
                    DriverEvent::OrphanNotReported {
                        call_id: call,
                        reason: e.to_string(),
                    }
                }
                Err(e) => {
                    tracing::warn!(call_id = %call, error = %e, "best-effort `notRecording` for a dropped call failed");
                    DriverEvent::OrphanReported {
                        call_id: call,
                        acknowledged: false,
                    }
                }
            };
            let _ = driver.inner.events.send(event);
        });
    }
}
