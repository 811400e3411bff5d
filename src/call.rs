//! [`Call<S>`](Call): a call whose recording status is tracked in its type, and the
//! transitions between states, each of which consumes the call.
//!
//! Every transition is a sequence of steps with no I/O: a first step that writes the trail
//! and returns the [`StatusUpdate`] to exchange with Graph (or, for a notification, the next
//! state at once), and the update's own steps ([`exchange`](crate::exchange)), whose result is
//! the next typed state. [`Graph`](crate::Graph) runs them (async, or blocking); so can the
//! driver, or a bot's own loop.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use crate::audit::{AuditEvent, AuditKind, AuditSink};
use crate::auth::Authenticated;
use crate::error::{AuditError, Error};
use crate::exchange::{Attempts, Exchange, Flow, Prelude, Scope, StatusUpdate, Step};
use crate::protocol::CallState;
use crate::registry::{Calls, Claim};
use crate::response::Operation;
use crate::retention::{Retention, RetentionHandle, RetentionShared};
use crate::state::{Failed, NotRecording, PendingRecording, Recording, State, Unsettled};
use crate::status::{OperationStatus, RecordingStatus};
use crate::types::{CallId, normalize_id};

mod flows;
mod unrecorded;

use flows::{BeginFlow, FailFlow, FailureFlow, Leaving, StopFlow};

/// The reason of the transition to `Recording`.
const ACKNOWLEDGED: &str = "recording acknowledged as completed";

/// A call whose compliance-recording status is tracked in its type.
///
/// # Types
/// `S` is [`NotRecording`], [`PendingRecording`], [`Recording`] or [`Failed`]. Each transition
/// consumes the call and returns it in its new state, so a wrong sequence of calls is a compile
/// error naming these types. Only `Call<Recording>` has [`retention`](Call::retention) and
/// [`retention_handle`](Call::retention_handle).
///
/// # Call order
/// 1. [`Calls::open`](crate::Calls::open) (or [`Driver::call`](crate::driver::Driver::call))
///    → `Call<NotRecording>`. There is one live value per Graph call (G7): a second one for the
///    same call, under any spelling of its id, is refused.
/// 2. [`begin_recording`](Call::begin_recording) → [`Begin`]: `Recording` if Graph answered
///    `completed`, `Pending` if the operation is still running, `Failed` otherwise. (Each
///    transition also exists as steps with no I/O: here [`start_recording`](Call::start_recording).)
/// 3. While pending, feed operation updates from notifications to
///    [`handle_operation`](Call::handle_operation), or [`abandon`](Call::abandon) at the deadline.
/// 4. While recording, persist media through retention capabilities only.
/// 5. [`stop_recording`](Call::stop_recording) or [`report_failure`](Call::report_failure):
///    both end every capability before the status request is built.
/// 6. [`end`](Call::end) when the call terminates.
///
/// Every step is recorded in the call's [`AuditSink`] before it takes effect.
#[must_use = "dropping a call loses track of its Graph recording status"]
pub struct Call<S: State> {
    id: CallId,
    /// This value's claim on its registry entry (episodes, audit sink), freed when the value
    /// is dropped.
    claim: Claim,
    state: S,
}

impl<S: State> fmt::Debug for Call<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Call")
            .field("id", &self.id)
            .field("state", &self.state)
            .finish()
    }
}

/// The result of [`Call::begin_recording`] and of [`Call::handle_operation`].
#[derive(Debug)]
#[non_exhaustive]
pub enum Begin {
    /// Graph acknowledged `recording` as `completed`: media may be persisted.
    Recording(Call<Recording>),
    /// The operation is not final; wait for its notification (with a deadline).
    Pending(Call<PendingRecording>),
    /// The update was rejected or its outcome is unknown; `failed` was reported best effort.
    /// [`Call::reason`] says why.
    Failed(Call<Failed>),
}

/// A transition that sent nothing: the call comes back unchanged, with the reason.
#[derive(Debug, thiserror::Error)]
#[error("status update not sent: {error}")]
#[non_exhaustive]
pub struct NotSent<S: State> {
    /// The call, in the state it was in.
    pub call: Call<S>,
    /// Why nothing was sent.
    #[source]
    pub error: Error,
}

/// Why leaving `Recording` did not end in the requested state.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StopError {
    /// Nothing was reported and the call is still `Recording`. `error` says why, and what to
    /// do:
    /// - [`Error::DrainTimeout`]: capabilities were alive at the drain deadline. The stop
    ///   signal stays raised ([`Call::is_stopping`]): end the media tasks, then stop again.
    /// - [`Error::Audit`]: the trail refused an event. If it refused the stop signal itself,
    ///   the signal was not raised (`is_stopping()` is `false`: the signal exists only once its
    ///   event does, G9), so the media tasks were not told. Stop again once the sink accepts
    ///   events (the signal is written and raised then), or end the media tasks by your own
    ///   means and drop their handles.
    /// - Anything else (no token, a request that could not be built): nothing was sent. The
    ///   signal stays raised if capabilities were alive; fix the cause and stop again.
    #[error("still recording: {error}")]
    StillRecording {
        /// The call, still recording.
        call: Box<Call<Recording>>,
        /// Why.
        error: Error,
    },
    /// Retention ended and the request was sent, but Graph did not acknowledge it. The call is
    /// `Failed` (`failed` was reported best effort); [`Call::reason`] says why.
    #[error("end of recording not acknowledged: {}", .call.reason())]
    Unacknowledged {
        /// The call, failed.
        call: Call<Failed>,
    },
}

/// A call that terminated; no further request is sent for it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Ended {
    /// The call.
    pub call_id: CallId,
    /// The state the call was in when it ended.
    pub last_state: CallState,
}

/// Any call, whatever its state, for keeping calls in a map or one variable across a retry
/// loop. Every `Call<S>`, [`Begin`] and [`driver::Started`](crate::driver::Started) converts
/// into it with `into()`.
///
/// # Example: retrying `begin_recording`
/// ```
/// # #[cfg(feature = "driver")]
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # tokio::runtime::Builder::new_current_thread().enable_time().build()?.block_on(async {
/// use std::sync::Arc;
/// use recording_status::audit::MemorySink;
/// use recording_status::driver::{Driver, DriverConfig};
/// use recording_status::testing::{ScriptedTransport, Step};
/// use recording_status::{AccessToken, AnyCall, Graph};
///
/// // Graph fails the first operation (the driver then reports `failed`), completes the next.
/// let transport = ScriptedTransport::new()
///     .then(Step::operation(Some("failed")))
///     .then(Step::completed())
///     .then(Step::completed());
/// let graph = Graph::new(transport, AccessToken::new("eyJ0eXAi…"));
/// let audit = Arc::new(MemorySink::default());
/// let (driver, _events) = Driver::new(graph, audit, DriverConfig::default());
///
/// let id = "57dab8b1-894c-409a-b240-bd8beae78896".parse()?;
/// let mut call: AnyCall = driver.call(id)?.into();
/// for _attempt in 0..3 {
///     // `Call<NotRecording>` and `Call<Failed>` can both begin; a `NotSent` hands the call back.
///     call = match call {
///         AnyCall::NotRecording(c) => match driver.begin_recording(c).await {
///             Ok(started) => started.into(),
///             Err(not_sent) => not_sent.call.into(),
///         },
///         AnyCall::Failed(c) => match driver.begin_recording(c).await {
///             Ok(started) => started.into(),
///             Err(not_sent) => not_sent.call.into(),
///         },
///         other => other,
///     };
///     if let AnyCall::Recording(_) = call {
///         break;
///     }
/// }
/// assert!(matches!(call, AnyCall::Recording(_)));
/// # Ok(())
/// # })
/// # }
/// # #[cfg(not(feature = "driver"))]
/// # fn main() {}
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum AnyCall {
    /// See [`NotRecording`].
    NotRecording(Call<NotRecording>),
    /// See [`PendingRecording`].
    PendingRecording(Call<PendingRecording>),
    /// See [`Recording`].
    Recording(Call<Recording>),
    /// See [`Failed`].
    Failed(Call<Failed>),
}

impl AnyCall {
    /// The call's id.
    pub fn id(&self) -> &CallId {
        match self {
            Self::NotRecording(c) => c.id(),
            Self::PendingRecording(c) => c.id(),
            Self::Recording(c) => c.id(),
            Self::Failed(c) => c.id(),
        }
    }

    /// The call's state.
    pub fn state(&self) -> CallState {
        match self {
            Self::NotRecording(_) => CallState::NotRecording,
            Self::PendingRecording(_) => CallState::PendingRecording,
            Self::Recording(_) => CallState::Recording,
            Self::Failed(_) => CallState::Failed,
        }
    }
}

macro_rules! any_call_from {
    ($($state:ident),*) => {$(
        impl From<Call<$state>> for AnyCall {
            fn from(call: Call<$state>) -> Self {
                Self::$state(call)
            }
        }
    )*};
}
any_call_from!(NotRecording, PendingRecording, Recording, Failed);

impl From<Begin> for AnyCall {
    fn from(b: Begin) -> Self {
        match b {
            Begin::Recording(c) => Self::Recording(c),
            Begin::Pending(c) => Self::PendingRecording(c),
            Begin::Failed(c) => Self::Failed(c),
        }
    }
}

impl<S: State> Call<S> {
    /// The call's id.
    pub fn id(&self) -> &CallId {
        &self.id
    }

    /// The call's state, as a value.
    pub fn state(&self) -> CallState {
        S::STATE
    }

    /// The call terminated (Graph notified `terminated`/`deleted`, or the bot left): every
    /// retention capability is revoked and no request will be sent for this call again.
    ///
    /// A call opened through a [`Driver`](crate::driver::Driver) ends through
    /// [`Driver::end`](crate::driver::Driver::end) instead, which also tells the driver's hub
    /// (so that it refuses later requests and ignores late updates for the call).
    pub fn end(mut self) -> Ended {
        self.state.revoke();
        self.transition_audit(CallState::Ended, "call ended");
        Ended {
            call_id: self.id.clone(),
            last_state: S::STATE,
        }
    }

    fn audit(&self) -> &Arc<dyn AuditSink> {
        &self.claim.entry.registry.audit
    }

    fn sink(&self) -> &dyn AuditSink {
        &**self.audit()
    }

    /// Whether the call's sink [`defers`](AuditSink::defers) and whether it
    /// [`blocks`](AuditSink::blocks): how the async loops run its steps.
    pub(crate) fn audit_waits(&self) -> (bool, bool) {
        (self.sink().defers(), self.sink().blocks())
    }

    /// Records a transition; a failure is logged (the state change itself already happened
    /// or is forced, e.g. into `Failed`).
    fn transition_audit(&self, to: CallState, reason: &str) {
        self.forced(&self.transition(to, reason));
    }

    /// Records the event of a forced transition (made by [`transition`](Self::transition));
    /// a failure is logged.
    fn forced(&self, transition: &AuditEvent) {
        if let Err(e) = self.sink().record(transition) {
            let AuditKind::Transition { to, .. } = transition.kind else {
                return;
            };
            tracing::error!(call_id = %self.id, from = %S::STATE, %to, error = %e,
                "could not audit a transition");
        }
    }

    /// The event of a transition from `S`, for recording alone or in a batch with the event
    /// that leads to it.
    fn transition(&self, to: CallState, reason: &str) -> AuditEvent {
        tracing::info!(call_id = %self.id, from = %S::STATE, %to, reason, "recording status transition");
        AuditEvent::now(
            self.id.normalized(),
            AuditKind::Transition {
                from: S::STATE,
                to,
                reason: reason.to_owned(),
            },
        )
    }

    /// An exchange of `status` for this call, as `attempts` allow.
    fn exchange(&self, status: RecordingStatus, attempts: Attempts) -> Exchange {
        Exchange::new(self.id.clone(), status, attempts, Scope::Current)
    }

    fn into_state<N: State>(self, state: N) -> Call<N> {
        Call {
            id: self.id,
            claim: self.claim,
            state,
        }
    }

    /// Enters `Failed` for `reason`, reporting `failed` best effort: the next step is that
    /// report (one attempt, within the retry policy's grace), whose result `wrap` turns into
    /// the transition's.
    fn fail<O: 'static>(
        self,
        reason: Error,
        unsettled: Option<Box<Unsettled>>,
        wrap: fn(Call<Failed>) -> O,
    ) -> StatusUpdate<O> {
        let exchange = self.exchange(RecordingStatus::Failed, Attempts::Once);
        StatusUpdate::new(
            exchange,
            Box::new(FailFlow {
                call: self,
                reason,
                unsettled,
                wrap,
            }),
        )
    }
}

// `Calls` is the registry's; opening a value is this layer's, so `open` is defined here.
impl Calls {
    /// Opens `id`: a new `Call<NotRecording>`.
    ///
    /// # Errors
    /// [`Error::AlreadyOpen`] if a value for the same call (under any spelling of its id) is
    /// alive: use that one, or drop it first.
    pub fn open(&self, id: CallId) -> Result<Call<NotRecording>, Error> {
        let claim = self.claim(&id)?;
        Ok(Call {
            id,
            claim,
            state: NotRecording { _priv: () },
        })
    }
}

impl Call<Failed> {
    /// Why the call failed.
    pub fn reason(&self) -> &Error {
        &self.state.reason
    }

    /// The `recording` attempt whose outcome is unknown, if the failure was ambiguous (for
    /// the driver, which remembers it).
    pub(crate) fn unsettled(&self) -> Option<&Unsettled> {
        self.state.unsettled.as_deref()
    }
}

mod begin_sealed {
    #[allow(unnameable_types)] // Sealed on purpose.
    pub trait Sealed {}
    impl Sealed for crate::state::NotRecording {}
    impl Sealed for crate::state::Failed {}
}

/// The states recording can begin from: [`NotRecording`] and [`Failed`]. Sealed.
pub trait CanBegin: State + begin_sealed::Sealed {}
impl CanBegin for NotRecording {}
impl CanBegin for Failed {}

/// What a `recording` update comes to: see [`Call::start_recording`].
pub type Beginning<S> = StatusUpdate<Result<Begin, NotSent<S>>>;

impl<S: CanBegin> Call<S> {
    /// The first step of [`begin_recording`](Self::begin_recording), with no I/O: begins a
    /// recording episode (from now on no report of an earlier one is sent, G7) and writes the
    /// transition to `PendingRecording`; returns the `recording` update to exchange with Graph
    /// (fresh `clientContext` and `client-request-id` per attempt). Its result: only a 2xx whose
    /// operation is `completed` leads to [`Begin::Recording`]; a failure first reports `failed`
    /// best effort (the update's next step), unless Graph refused the request outright.
    ///
    /// # Errors
    /// [`NotSent`] with the call unchanged if the transition could not be written.
    pub fn start_recording(self) -> Result<Beginning<S>, NotSent<S>>
    where
        S: 'static,
    {
        // A new episode: from here on, no report of an earlier one is sent (G7). It begins,
        // and its transition is written, before any turn of the call is awaited: a report of
        // an earlier episode that holds the turn (sleeping out a `Retry-After`) is superseded
        // at its next attempt instead of being sent while this begin waits.
        let (episode, audited) = self.claim.entry.begin_episode(|episode| {
            self.sink().record(&self.transition(
                CallState::PendingRecording,
                &format!("recording requested (registry episode {episode})"),
            ))
        });
        if let Err(error) = audited {
            return Err(NotSent {
                call: self,
                error: error.into(),
            });
        }
        let exchange = self.exchange(RecordingStatus::Recording, Attempts::Policy);
        Ok(StatusUpdate::new(
            exchange,
            Box::new(BeginFlow {
                call: self,
                episode,
            }),
        ))
    }
}

impl Call<PendingRecording> {
    /// The `clientContext` of the outstanding `recording` request.
    pub fn client_context(&self) -> &str {
        self.state.context.as_str()
    }

    /// The `client-request-id` of the outstanding `recording` request.
    pub fn client_request_id(&self) -> &str {
        &self.state.client_request_id
    }

    /// The operation id Graph gave, once known.
    pub fn operation_id(&self) -> Option<&str> {
        self.state.operation_id.as_deref()
    }

    /// The recording episode the outstanding request began.
    pub fn episode(&self) -> u64 {
        self.state.episode
    }

    /// Whether `operation` is about this call's outstanding request.
    ///
    /// It must be a recording operation (`updateRecordingStatusOperation`, `commsOperation`, or
    /// untyped), and agree with the request on everything both sides know: the operation id
    /// (compared lower-case without dashes) and the `clientContext`. At least one of the two
    /// must match, and neither may contradict: an update carrying this request's operation id
    /// with another request's `clientContext` is not about this request.
    pub fn is_for_this_request(&self, operation: &Operation) -> bool {
        self.mismatch(operation).is_none()
    }

    /// Why `operation` is not about this call's outstanding request, if it is not.
    fn mismatch(&self, operation: &Operation) -> Option<&'static str> {
        if !operation.may_settle_recording() {
            return Some("not a recording operation");
        }
        let id = match (&self.state.operation_id, &operation.id) {
            (Some(mine), Some(theirs)) => Some(normalize_id(mine) == normalize_id(theirs)),
            _ => None,
        };
        let context = operation
            .client_context
            .as_deref()
            .map(|c| c == self.client_context());
        match (id, context) {
            (Some(false), _) | (_, Some(false)) => {
                Some(if id == Some(true) || context == Some(true) {
                    "operation id and clientContext contradict each other"
                } else {
                    "for another request"
                })
            }
            (Some(true), _) | (_, Some(true)) => None,
            (None, None) => Some("carries neither an operation id nor a clientContext to match"),
        }
    }

    /// The steps of [`handle_operation`](Self::handle_operation), with no I/O: writes the
    /// update to the trail and applies it. [`Step::Done`] with the next state, unless the
    /// operation failed: then [`Step::Next`], the best-effort `failed` report to send, whose
    /// result is [`Begin::Failed`].
    ///
    /// An update for another request, or one that is not final, leaves the call pending.
    /// `completed` leads to `Recording`. `proof` shows the notification's webhook request was
    /// authenticated (see [`crate::auth`]): a forged `completed` would otherwise unlock
    /// retention. How it was authenticated is written to the trail with the update.
    pub fn apply_operation(self, proof: &Authenticated, operation: &Operation) -> Step<Begin> {
        let mismatch = self.mismatch(operation);
        let update = AuditEvent::now(
            self.id.normalized(),
            AuditKind::OperationUpdate {
                operation_id: operation.id.clone(),
                client_context: operation.client_context.clone(),
                status: operation.status.as_ref().map(|s| s.as_str().to_owned()),
                matched: mismatch.is_none(),
                via: proof.method().to_string(),
                reason: mismatch.map(str::to_owned),
            },
        );
        let acknowledged = mismatch.is_none() && operation.is_successful_completion();
        let audited = if acknowledged {
            // Nothing lies between the update and the step it leads to: one batch, both or
            // neither, before retention can begin.
            let transition = self.transition(CallState::Recording, ACKNOWLEDGED);
            self.sink().record_batch(&[update, transition])
        } else {
            self.sink().record(&update)
        };
        if let Err(e) = audited {
            return self.fail_pending(e.into(), Begin::Failed);
        }
        if mismatch.is_some() {
            return Step::Done(Begin::Pending(self));
        }
        if acknowledged {
            return Step::Done(Begin::Recording(self.into_recording()));
        }
        match operation.status {
            // `failed`, or `completed` with an error: never an acknowledgement (fail closed).
            Some(OperationStatus::Failed | OperationStatus::Completed) => self.fail_pending(
                Error::OperationFailed(Box::new(operation.clone())),
                Begin::Failed,
            ),
            _ => Step::Done(Begin::Pending(self)),
        }
    }

    /// The steps of [`abandon`](Self::abandon), with no I/O: the outcome is unknown, so the
    /// call enters `Failed`; the next step is the best-effort `failed` report.
    pub fn give_up_waiting(self) -> Step<Call<Failed>> {
        self.fail_pending(Error::Abandoned, std::convert::identity)
    }

    /// Enters `Failed`, remembering the attempt when its outcome is unknown, so that a late
    /// `completed` for it can still be recognised; `failed` is reported best effort.
    ///
    /// When Graph refused the `recording` request outright (`400`, `403`, `404`, `8506`, …),
    /// nothing was accepted and Graph would refuse a `failed` report too: the call enters
    /// `Failed` without one, and the trail says so.
    fn fail_pending<O: 'static>(self, reason: Error, wrap: fn(Call<Failed>) -> O) -> Step<O> {
        if reason.is_refused_outright() {
            self.transition_audit(
                CallState::Failed,
                &format!("{reason} (refused outright: no `failed` report)"),
            );
            return Step::Done(wrap(self.into_state(Failed {
                reason,
                unsettled: None,
            })));
        }
        let unsettled = reason.is_unknown_outcome().then(|| {
            Box::new(Unsettled {
                context: self.state.context.as_str().to_owned(),
                operation_id: self.state.operation_id.clone(),
                episode: self.state.episode,
            })
        });
        Step::Next {
            update: self.fail(reason, unsettled, wrap),
            after: Duration::ZERO,
        }
    }

    /// Enters `Recording`, once the transition is in the trail.
    fn into_recording(self) -> Call<Recording> {
        let shared = RetentionShared::new(
            self.id.clone(),
            self.claim.entry.clone(),
            self.state.episode,
        );
        self.claim.entry.set_recording(&shared);
        self.into_state(Recording {
            shared,
            armed: true,
        })
    }
}

/// What leaving `Recording` comes to: see [`Call::start_stop`] and
/// [`Call::start_failure_report`].
pub type Stopping = Draining<Result<Call<NotRecording>, StopError>>;

/// See [`Stopping`].
pub type ReportingFailure = Draining<Result<Call<Failed>, StopError>>;

/// A call leaving `Recording`, its stop signal raised (or, with no capability alive, ready to
/// be written with the request): wait until every retention capability has ended
/// ([`drained`](Self::drained)), then exchange the status update it returns. The request is
/// built only after that point (G2).
///
/// Dropping it drops the call: a `Call<Recording>` dropped, revoked at once.
#[must_use = "leaving `Recording` needs the drain, then the request"]
pub struct Draining<O> {
    call: Call<Recording>,
    /// The stop signal, when no capability was alive: written with the first request.
    signal: Option<AuditEvent>,
    leaving: Leaving,
    flow: fn(Call<Recording>, Leaving) -> Box<dyn Flow<O>>,
}

impl<O> fmt::Debug for Draining<O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Draining")
            .field("call", &self.call)
            .field("leaving", &self.leaving)
            .finish_non_exhaustive()
    }
}

impl<O: 'static> Draining<O> {
    /// How many capabilities are still alive.
    pub fn outstanding(&self) -> usize {
        self.call.outstanding()
    }

    /// Waits until every capability has ended, or `deadline` completes first (e.g.
    /// `tokio::time::sleep(…)`; any future, so no runtime is assumed): then the status update
    /// to exchange. Waiting is not I/O: capabilities wake it as they end.
    ///
    /// # Errors
    /// [`StopError::StillRecording`] if capabilities outlived the deadline
    /// ([`Error::DrainTimeout`]), or an end the trail refused earlier still cannot be written;
    /// the stop signal stays raised.
    ///
    /// # Cancellation
    /// Dropping the future drops the call: a `Call<Recording>` dropped, revoked at once.
    pub async fn drained<D: Future<Output = ()>>(
        self,
        deadline: D,
    ) -> Result<StatusUpdate<O>, StopError> {
        if self.signal.is_none()
            && let Err(outstanding) = self.call.state.shared.drain(deadline).await
        {
            return Err(self.timed_out(outstanding));
        }
        self.into_update()
    }

    /// [`drained`](Self::drained) on this thread, waiting at most `timeout`.
    ///
    /// # Errors
    /// As [`drained`](Self::drained).
    pub fn drained_blocking(self, timeout: Duration) -> Result<StatusUpdate<O>, StopError> {
        if self.signal.is_none()
            && let Err(outstanding) = self.call.state.shared.drain_blocking(timeout)
        {
            return Err(self.timed_out(outstanding));
        }
        self.into_update()
    }

    fn timed_out(self, outstanding: usize) -> StopError {
        let _ = crate::audit::record_for(
            self.call.sink(),
            &self.call.id,
            AuditKind::DrainTimedOut { outstanding },
        );
        self.call
            .still_recording(Error::DrainTimeout { outstanding })
    }

    /// Every owned handle is gone, and no borrowed one can exist: the call was moved in. An end
    /// the sink refused earlier must be in the trail before the report (G9).
    fn into_update(self) -> Result<StatusUpdate<O>, StopError> {
        let Self {
            call,
            signal,
            leaving,
            flow,
        } = self;
        if let Err(e) = call.state.shared.record_unrecorded() {
            call.signal_alone(signal);
            return Err(call.still_recording(e.into()));
        }
        let mut exchange = call.exchange(leaving.status(), Attempts::Policy);
        if let Some(event) = signal {
            // Nothing lies between the signal and the request: written together, and the
            // signal raised then (meanwhile no capability can be minted: the call was moved
            // in, and none is alive to be cloned).
            exchange = exchange.with_prelude(Prelude {
                event,
                raises: call.state.shared.clone(),
            });
        }
        Ok(StatusUpdate::new(exchange, flow(call, leaving)))
    }
}

impl Call<Recording> {
    /// The recording episode this recording belongs to: the number the trail and the logs
    /// give the `recording` request that began it (one sequence for every call of the
    /// process).
    pub fn episode(&self) -> u64 {
        self.state.shared.episode()
    }

    /// A borrowed retention capability. While it is alive the call cannot be stopped.
    ///
    /// Once the call's retention was revoked (Graph terminated the call), the capability
    /// cannot write, and neither its start nor its end is audited; the same holds for
    /// [`retention_handle`](Self::retention_handle).
    ///
    /// # Errors
    /// The audit sink refused the start event; no capability exists.
    pub fn retention(&self) -> Result<Retention<'_>, AuditError> {
        Retention::new(&self.state.shared)
    }

    /// An owned retention capability for `'static` media tasks. Leaving `Recording` waits until
    /// every handle (and clone) has been dropped.
    ///
    /// # Errors
    /// The audit sink refused the start event; no capability exists.
    pub fn retention_handle(&self) -> Result<RetentionHandle, AuditError> {
        RetentionHandle::new(self.state.shared.clone())
    }

    /// How many capabilities are alive.
    pub fn outstanding(&self) -> usize {
        self.state.shared.outstanding()
    }

    /// Whether the stop signal is raised: a stop began (its event is in the trail) and the
    /// media tasks see [`RetentionHandle::is_stopping`].
    pub fn is_stopping(&self) -> bool {
        self.state.shared.is_stopping()
    }

    /// The first step of [`stop_recording`](Self::stop_recording), with no I/O: raises the
    /// stop signal (written to the trail first, G9) and returns the call [`Draining`]. With no
    /// capability alive, the signal is written with the `notRecording` request instead,
    /// nothing lying between them.
    ///
    /// The result: Graph's answer counts as acknowledged when it is a 2xx whose operation is
    /// `completed` or not yet final (`running`, `notStarted`, `null`): retention has ended
    /// either way. Otherwise `failed` is reported best effort and the result is
    /// [`StopError::Unacknowledged`].
    ///
    /// # Errors
    /// [`StopError::StillRecording`] if the signal could not be written (nothing changed).
    pub fn start_stop(self) -> Result<Stopping, StopError> {
        self.leave(Leaving::Stop, |call, _| Box::new(StopFlow { call }))
    }

    /// The first step of [`report_failure`](Self::report_failure), with no I/O: as
    /// [`start_stop`](Self::start_stop), then `failed` is reported for `reason`.
    ///
    /// # Errors
    /// As [`start_stop`](Self::start_stop).
    pub fn start_failure_report(
        self,
        reason: impl Into<String>,
    ) -> Result<ReportingFailure, StopError> {
        self.leave(Leaving::Failure(reason.into()), |call, leaving| {
            Box::new(FailureFlow {
                call,
                reason: leaving.into_reason(),
            })
        })
    }

    /// Raises the stop signal, once its event is in the trail (G9): a refused signal leaves
    /// the call as it was. With capabilities alive, the drain is a step of its own: the signal
    /// is written and raised before it waits. With none, the signal waits to be written with
    /// the request.
    fn leave<O>(
        self,
        leaving: Leaving,
        flow: fn(Self, Leaving) -> Box<dyn Flow<O>>,
    ) -> Result<Draining<O>, StopError> {
        let outstanding = self.outstanding();
        let signal = AuditEvent::now(
            self.id.normalized(),
            AuditKind::DrainStarted { outstanding },
        );
        let signal = if outstanding == 0 {
            Some(signal)
        } else {
            if let Err(e) = self.sink().record(&signal) {
                return Err(self.still_recording(e.into()));
            }
            self.state.shared.raise_stop();
            None
        };
        Ok(Draining {
            call: self,
            signal,
            leaving,
            flow,
        })
    }

    /// A stop that sends nothing, with nothing to drain, still took its first step: its signal
    /// is written alone (best effort) and, once written, raised.
    fn signal_alone(&self, signal: Option<AuditEvent>) {
        if let Some(signal) = signal
            && self.sink().record(&signal).is_ok()
        {
            self.state.shared.raise_stop();
        }
    }

    fn still_recording(self, error: Error) -> StopError {
        StopError::StillRecording {
            call: Box::new(self),
            error,
        }
    }
}
