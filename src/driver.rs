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
//!   [`DriverEvent::OrphanNotReported`]. A begin never waits for an earlier episode's report.

use std::collections::{HashSet, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::mpsc;

use crate::audit::{AuditEvent, AuditKind, AuditSink};
use crate::auth::Authenticated;
use crate::call::{Begin, Call, CanBegin, Ended, NotSent, OrphanHook, StopError};
use crate::error::Error;
use crate::graph::{Attempts, Graph, Scope, exchange_with};
use crate::notification::{NotificationError, OperationUpdate, parse_notifications};
use crate::registry::{Calls, Line};
use crate::response::Operation;
use crate::retention::RetentionShared;
use crate::retry::RetryPolicy;
use crate::state::{Failed, NotRecording, PendingRecording, Recording, State};
use crate::status::{OperationStatus, RecordingStatus};
use crate::transport::Transport;
use crate::types::{CallId, normalize_id};

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
    /// How long notification records (settled and abandoned operations, updates that arrived
    /// before their call waited) are kept for correlation (default 10 min).
    pub memory: Duration,
}

impl Default for DriverConfig {
    fn default() -> Self {
        Self {
            pending_deadline: Duration::from_secs(30),
            drain_deadline: Duration::from_secs(10),
            retry: RetryPolicy::default(),
            memory: Duration::from_secs(600),
        }
    }
}

impl DriverConfig {
    /// Sets [`pending_deadline`](Self::pending_deadline).
    #[must_use]
    pub fn with_pending_deadline(mut self, d: Duration) -> Self {
        self.pending_deadline = d;
        self
    }

    /// Sets [`drain_deadline`](Self::drain_deadline).
    #[must_use]
    pub fn with_drain_deadline(mut self, d: Duration) -> Self {
        self.drain_deadline = d;
        self
    }

    /// Sets [`retry`](Self::retry).
    #[must_use]
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
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
    /// to do), or the audit trail refused the revocation or a capability's end (fix the sink;
    /// Graph still shows `recording`).
    OrphanNotReported {
        /// The call.
        call_id: CallId,
        /// Why nothing was reported.
        reason: String,
    },
}

/// A `completed` for an abandoned `recording` request. See [`DriverEvent::LateCompletion`].
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
/// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
/// let graph = Graph::new(ScriptedTransport::new().then(Step::completed()), AccessToken::new("t"));
/// let (driver, _events) = Driver::new(graph, Arc::new(MemorySink::default()), DriverConfig::default());
/// let call = driver.call("57dab8b1-894c-409a-b240-bd8beae78896".parse()?)?;
/// let Started::Recording(call) = driver.begin_recording(call).await? else { panic!() };
/// # drop(call.end());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
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
    audit: Arc<dyn AuditSink>,
    config: DriverConfig,
    hub: Hub,
    events: mpsc::UnboundedSender<DriverEvent>,
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
        let graph = graph.with_retry(config.retry.clone());
        let hub = Hub::new(audit.clone(), events.clone(), config.memory);
        let inner = Arc::new_cyclic(|weak: &std::sync::Weak<Inner<T>>| {
            let hook: Arc<dyn OrphanHook> = Arc::new(Orphans {
                driver: weak.clone(),
            });
            Inner {
                graph,
                calls: Calls::with_orphan_hook(audit.clone(), Some(hook)),
                audit,
                config,
                hub,
                events,
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
    /// [`NotSent`] with the call unchanged if nothing was sent, or if the call has ended.
    pub async fn begin_recording<S: CanBegin>(&self, call: Call<S>) -> Result<Started, NotSent<S>> {
        if self.inner.hub.has_ended(call.id()) {
            return Err(NotSent {
                call,
                error: Error::CallEnded,
            });
        }
        let pending = match call.begin_recording(&self.inner.graph).await? {
            Begin::Recording(c) => return Ok(Started::Recording(c)),
            Begin::Failed(c) => return Ok(self.failed(c)),
            Begin::Pending(c) => c,
        };
        Ok(self.wait_pending(pending).await)
    }

    /// A failed start whose outcome is unknown may still be completed by Graph: remember the
    /// attempt so that a late `completed` is surfaced.
    fn failed(&self, call: Call<Failed>) -> Started {
        if let Some(unsettled) = call.unsettled() {
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

    async fn wait_pending(&self, mut pending: Call<PendingRecording>) -> Started {
        let graph = &self.inner.graph;
        let deadline = tokio::time::Instant::now() + self.inner.config.pending_deadline;
        // If this future is dropped while waiting, the waiter files the request as abandoned,
        // so a later `completed` is still surfaced.
        let mut waiter = self.inner.hub.register(&pending);
        loop {
            tokio::select! {
                biased;
                update = waiter.updates.recv() => {
                    let Some((proof, operation)) = update else { break };
                    match pending.handle_operation(graph, &proof, &operation).await {
                        Begin::Recording(c) => {
                            waiter.settle();
                            return Started::Recording(c);
                        }
                        Begin::Failed(c) => {
                            waiter.settle();
                            return Started::Failed(c);
                        }
                        Begin::Pending(c) => pending = c,
                    }
                }
                () = tokio::time::sleep_until(deadline) => break,
            }
        }
        // Updates routed before the deadline still count; the rest turn late.
        for (proof, operation) in waiter.close() {
            match pending.handle_operation(graph, &proof, &operation).await {
                Begin::Recording(c) => return Started::Recording(c),
                Begin::Failed(c) => return Started::Failed(c),
                Begin::Pending(c) => pending = c,
            }
        }
        tracing::warn!(call_id = %pending.id(), "pending recording operation passed its deadline");
        self.failed(pending.abandon(graph).await)
    }

    /// Stops recording: raises the stop signal, waits up to
    /// [`DriverConfig::drain_deadline`] for every retention capability to end, then reports
    /// `notRecording` (with retries).
    ///
    /// # Errors
    /// As [`Call::stop_recording`].
    pub async fn stop_recording(
        &self,
        call: Call<Recording>,
    ) -> Result<Call<NotRecording>, StopError> {
        let drain = tokio::time::sleep(self.inner.config.drain_deadline);
        call.stop_recording(&self.inner.graph, drain).await
    }

    /// Recording broke: ends every capability, then reports `failed` (with retries).
    ///
    /// # Errors
    /// As [`Call::report_failure`].
    pub async fn report_failure(
        &self,
        call: Call<Recording>,
        reason: impl Into<String>,
    ) -> Result<Call<Failed>, StopError> {
        let drain = tokio::time::sleep(self.inner.config.drain_deadline);
        call.report_failure(&self.inner.graph, reason, drain).await
    }

    /// The call terminated: its retention is revoked, and no request will be sent for it
    /// again by this driver (including reconciliation and orphan reports).
    pub fn end<S: State>(&self, call: Call<S>) -> Ended {
        self.inner.hub.mark_ended(call.id());
        call.end()
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
    pub async fn reconcile(&self, late: &LateCompletion, status: EndStatus) -> Result<(), Error> {
        let status = match status {
            EndStatus::NotRecording => RecordingStatus::NotRecording,
            EndStatus::Failed => RecordingStatus::Failed,
        };
        let line = self.inner.calls.line(&late.call_id);
        self.send_end_status(&late.call_id, status, &line, late.episode)
            .await
    }

    async fn send_end_status(
        &self,
        call: &CallId,
        status: RecordingStatus,
        line: &Line,
        episode: u64,
    ) -> Result<(), Error> {
        if self.inner.hub.has_ended(call) {
            return Err(Error::CallEnded);
        }
        let (sent, _) = exchange_with(
            &self.inner.graph,
            &*self.inner.audit,
            call,
            status,
            Attempts::Policy,
            Scope::Episode(line, episode),
        )
        .await?;
        sent.accepted()
    }
}

/// Queues a best-effort `notRecording` for calls dropped while recording.
struct Orphans<T> {
    /// Weak: the driver owns the registry that owns this hook.
    driver: std::sync::Weak<Inner<T>>,
}

impl<T: Transport + 'static> OrphanHook for Orphans<T> {
    fn orphaned(&self, retention: Arc<RetentionShared>) {
        let call = retention.call_id().clone();
        let Some(inner) = self.driver.upgrade() else {
            tracing::warn!(call_id = %call, "driver gone: cannot report `notRecording` for a dropped recording call");
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::warn!(call_id = %call, "no tokio runtime: cannot report `notRecording` for a dropped recording call");
            return;
        };
        let driver = Driver { inner };
        runtime.spawn(async move {
            // Revocation has returned: no write is in flight and none can start (G8), so the
            // report may go out at once, once the trail holds every end and the revocation.
            let result = match retention.record_unrecorded() {
                Err(e) => Err(Error::Audit(e)),
                Ok(()) => {
                    driver
                        .send_end_status(
                            &call,
                            RecordingStatus::NotRecording,
                            retention.line(),
                            retention.episode(),
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

/// How a notification body was used. See [`Hub::deliver`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Delivery {
    /// Updates handed to a waiting call.
    pub routed: usize,
    /// Late completions surfaced as [`DriverEvent::LateCompletion`].
    pub late: usize,
    /// Updates kept briefly because no call was waiting for them yet.
    pub held: usize,
    /// Entries ignored: not operations, duplicates, out of order, or for settled operations.
    pub ignored: usize,
}

/// Routes operation updates from the bot's notification webhook to the calls waiting for them.
///
/// Correlates by normalised call id and operation id (lower case, no dashes), or by
/// `clientContext`. Duplicates, out-of-order and unknown updates are ignored with an audit entry;
/// an update that arrives before its call started waiting is held for
/// [`DriverConfig::memory`].
#[derive(Clone)]
pub struct Hub {
    state: Arc<Mutex<HubState>>,
    audit: Arc<dyn AuditSink>,
    events: mpsc::UnboundedSender<DriverEvent>,
}

impl fmt::Debug for Hub {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.lock();
        f.debug_struct("Hub")
            .field("waiting", &s.waiters.len())
            .field("abandoned", &s.abandoned.len())
            .field("held", &s.held.len())
            .finish()
    }
}

const MAX_REMEMBERED: usize = 4096;
/// Ended calls remembered (to refuse further requests for them).
const MAX_ENDED: usize = 65_536;

struct HubState {
    next_id: u64,
    waiters: Vec<Waiting>,
    /// Operations that reached a final status (call id, operation id or context).
    settled: VecDeque<(tokio::time::Instant, Key)>,
    abandoned: VecDeque<(tokio::time::Instant, Abandoned)>,
    held: VecDeque<(tokio::time::Instant, Authenticated, OperationUpdate)>,
    ended: HashSet<String>,
    ended_order: VecDeque<String>,
    memory: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Key {
    call: String,
    operation: Option<String>,
    context: String,
    /// The recording episode the request began.
    episode: u64,
}

/// How an update relates to a request's [`Key`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Match {
    Yes,
    No,
    /// About this request by one id, contradicted by the other: audited and ignored.
    Contradiction,
}

impl Key {
    fn matches(&self, update: &OperationUpdate) -> bool {
        self.relate(update) == Match::Yes
    }

    /// An update is about this request when it is a recording operation, its call id (if it
    /// has one) is this call, one of its ids matches and none contradicts. Without a call id
    /// it can match only by `clientContext`.
    fn relate(&self, update: &OperationUpdate) -> Match {
        if !update.operation.may_settle_recording() {
            return Match::No;
        }
        let call = update.normalized_call_id();
        if call.as_deref().is_some_and(|c| c != self.call) {
            return Match::No;
        }
        let op = match (&self.operation, update.normalized_operation_id()) {
            (Some(mine), Some(theirs)) => Some(*mine == theirs),
            _ => None,
        };
        let context = update
            .operation
            .client_context
            .as_deref()
            .map(|c| c == self.context);
        let op = if call.is_none() { None } else { op };
        match (op, context) {
            (Some(true), Some(false)) | (Some(false), Some(true)) => Match::Contradiction,
            (Some(true), None) | (None | Some(true), Some(true)) => Match::Yes,
            _ => Match::No,
        }
    }
}

struct Waiting {
    id: u64,
    key: Key,
    tx: mpsc::UnboundedSender<(Authenticated, Operation)>,
}

struct Abandoned {
    call_id: CallId,
    key: Key,
}

/// The operation handed to a waiting call, with the id from the notification's path when
/// `resourceData` carries none.
fn routed_operation(update: &OperationUpdate) -> Operation {
    let mut operation = update.operation.clone();
    if operation.id.is_none() {
        operation.id.clone_from(&update.operation_id);
    }
    operation
}

/// A pending call's registration with the hub. Dropping it without [`Waiter::settle`] (the
/// waiting future was cancelled) files the request as abandoned.
struct Waiter {
    hub: Hub,
    id: u64,
    call_id: CallId,
    key: Key,
    updates: mpsc::UnboundedReceiver<(Authenticated, Operation)>,
    done: bool,
}

impl Waiter {
    /// The request reached a final status.
    fn settle(mut self) {
        self.done = true;
        let mut s = self.hub.lock();
        s.waiters.retain(|w| w.id != self.id);
        let now = tokio::time::Instant::now();
        s.settled.push_back((now, self.key.clone()));
        s.trim(now);
    }

    /// The deadline passed: unregister and file the request as abandoned in one step, and
    /// return the updates that were routed before that.
    fn close(mut self) -> Vec<(Authenticated, Operation)> {
        self.done = true;
        let mut s = self.hub.lock();
        s.waiters.retain(|w| w.id != self.id);
        let mut routed = Vec::new();
        while let Ok(update) = self.updates.try_recv() {
            routed.push(update);
        }
        s.add_abandoned(self.call_id.clone(), self.key.clone());
        routed
    }
}

impl Drop for Waiter {
    fn drop(&mut self) {
        if !self.done {
            self.hub.abandon(&self.call_id, self.key.clone());
        }
    }
}

impl HubState {
    fn add_abandoned(&mut self, call_id: CallId, key: Key) {
        if !self.abandoned.iter().any(|(_, a)| a.key == key) {
            let now = tokio::time::Instant::now();
            self.abandoned.push_back((now, Abandoned { call_id, key }));
            self.trim(now);
        }
    }

    fn trim(&mut self, now: tokio::time::Instant) {
        let memory = self.memory;
        let fresh = |t: &tokio::time::Instant| now.saturating_duration_since(*t) <= memory;
        while self.settled.front().is_some_and(|(t, _)| !fresh(t))
            || self.settled.len() > MAX_REMEMBERED
        {
            self.settled.pop_front();
        }
        while self.abandoned.front().is_some_and(|(t, _)| !fresh(t))
            || self.abandoned.len() > MAX_REMEMBERED
        {
            self.abandoned.pop_front();
        }
        while self.held.front().is_some_and(|(t, _, _)| !fresh(t))
            || self.held.len() > MAX_REMEMBERED
        {
            self.held.pop_front();
        }
        while self.ended_order.len() > MAX_ENDED {
            if let Some(old) = self.ended_order.pop_front() {
                self.ended.remove(&old);
            }
        }
    }
}

impl Hub {
    fn new(
        audit: Arc<dyn AuditSink>,
        events: mpsc::UnboundedSender<DriverEvent>,
        memory: Duration,
    ) -> Self {
        Self {
            state: Arc::new(Mutex::new(HubState {
                next_id: 1,
                waiters: Vec::new(),
                settled: VecDeque::new(),
                abandoned: VecDeque::new(),
                held: VecDeque::new(),
                ended: HashSet::new(),
                ended_order: VecDeque::new(),
                memory,
            })),
            audit,
            events,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HubState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn mark_ended(&self, call: &CallId) {
        let mut s = self.lock();
        if s.ended.insert(call.normalized().to_owned()) {
            s.ended_order.push_back(call.normalized().to_owned());
            let now = tokio::time::Instant::now();
            s.trim(now);
        }
    }

    fn abandon(&self, call: &CallId, key: Key) {
        self.lock().add_abandoned(call.clone(), key);
    }

    fn has_ended(&self, call: &CallId) -> bool {
        self.lock().ended.contains(call.normalized())
    }

    fn register(&self, call: &Call<PendingRecording>) -> Waiter {
        let (tx, updates) = mpsc::unbounded_channel();
        let key = Key {
            call: call.id().normalized().to_owned(),
            operation: call.operation_id().map(normalize_id),
            context: call.client_context().to_owned(),
            episode: call.episode(),
        };
        let mut s = self.lock();
        let id = s.next_id;
        s.next_id += 1;
        // Updates that raced ahead of the registration.
        let mut kept = VecDeque::new();
        for (at, proof, update) in s.held.drain(..) {
            if key.matches(&update) {
                let _ = tx.send((proof, routed_operation(&update)));
            } else {
                kept.push_back((at, proof, update));
            }
        }
        s.held = kept;
        s.waiters.push(Waiting {
            id,
            key: key.clone(),
            tx,
        });
        Waiter {
            hub: self.clone(),
            id,
            call_id: call.id().clone(),
            key,
            updates,
            done: false,
        }
    }

    /// Hands an authenticated `commsNotifications` body to the waiting calls.
    ///
    /// `proof` shows the webhook request was authenticated (see [`crate::auth`]); without it a
    /// forged `completed` could unlock retention.
    ///
    /// # Errors
    /// [`NotificationError`] if the body is not a `commsNotifications` object; nothing is
    /// routed then. Individual entries that cannot be used are ignored, not errors.
    pub fn deliver(
        &self,
        proof: &Authenticated,
        body: &[u8],
    ) -> Result<Delivery, NotificationError> {
        let parsed = parse_notifications(body)?;
        let mut delivery = Delivery {
            ignored: parsed.ignored.len(),
            ..Delivery::default()
        };
        let now = tokio::time::Instant::now();
        let mut ignored_updates = Vec::new();
        let mut late = Vec::new();
        {
            let mut s = self.lock();
            s.trim(now);
            for update in parsed.updates {
                if let Some(w) = s.waiters.iter().find(|w| w.key.matches(&update))
                    && w.tx
                        .send((proof.clone(), routed_operation(&update)))
                        .is_ok()
                {
                    delivery.routed += 1;
                    continue;
                }
                if s.waiters
                    .iter()
                    .any(|w| w.key.relate(&update) == Match::Contradiction)
                {
                    delivery.ignored += 1;
                    ignored_updates.push((
                        update,
                        "operation id and clientContext contradict the waiting request",
                    ));
                    continue;
                }
                if let Some(pos) = s.abandoned.iter().position(|(_, a)| a.key.matches(&update)) {
                    if update.operation.status == Some(OperationStatus::Completed)
                        && let Some((_, a)) = s.abandoned.remove(pos)
                    {
                        // Surfaced once; later copies count as duplicates.
                        s.settled.push_back((now, a.key.clone()));
                        late.push(LateCompletion {
                            call_id: a.call_id,
                            episode: a.key.episode,
                            operation_id: update.operation_id.clone().or(a.key.operation),
                            client_context: a.key.context,
                        });
                        delivery.late += 1;
                    } else {
                        delivery.ignored += 1;
                        ignored_updates.push((update, "for an abandoned operation"));
                    }
                } else if s.settled.iter().any(|(_, k)| k.matches(&update)) {
                    delivery.ignored += 1;
                    ignored_updates
                        .push((update, "duplicate or out of order for a settled operation"));
                } else if update
                    .normalized_call_id()
                    .is_some_and(|c| s.ended.contains(&c))
                {
                    delivery.ignored += 1;
                    ignored_updates.push((update, "for a call that ended"));
                } else {
                    delivery.held += 1;
                    ignored_updates.push((update.clone(), "no call waiting yet; held"));
                    s.held.push_back((now, proof.clone(), update));
                }
            }
        }
        let audit = |call: &str, kind| {
            if let Err(e) = self.audit.record(&AuditEvent::now(call, kind)) {
                tracing::error!(error = %e, "could not audit a notification");
            }
        };
        audit(
            "",
            AuditKind::NotificationAccepted {
                via: proof.method().to_string(),
                routed: delivery.routed,
                ignored: delivery.ignored,
            },
        );
        for (update, reason) in ignored_updates {
            audit(
                &update.normalized_call_id().unwrap_or_default(),
                AuditKind::NotificationIgnored {
                    operation_id: update.operation_id.clone(),
                    client_context: update.operation.client_context.clone(),
                    status: update
                        .operation
                        .status
                        .as_ref()
                        .map(|s| s.as_str().to_owned()),
                    reason: reason.to_owned(),
                },
            );
        }
        for l in late {
            tracing::warn!(call_id = %l.call_id, "late `completed` for an abandoned recording request");
            audit(
                l.call_id.normalized(),
                AuditKind::LateCompletion {
                    operation_id: l.operation_id.clone(),
                    client_context: l.client_context.clone(),
                },
            );
            if self.events.send(DriverEvent::LateCompletion(l)).is_err() {
                tracing::error!(
                    "late completion could not be surfaced: the DriverEvents receiver was dropped"
                );
            }
        }
        Ok(delivery)
    }
}
