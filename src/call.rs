//! [`Call<S>`](Call): a call whose recording status is tracked in its type, and the
//! transitions between states, each of which consumes the call.

use std::fmt;
use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

use crate::audit::{AuditEvent, AuditKind, AuditSink};
use crate::auth::Authenticated;
use crate::error::{AuditError, Error};
use crate::graph::{Attempts, Exchanged, Graph, Opening, Scope, Sent, exchange_unrecorded, record};
use crate::protocol::CallState;
use crate::registry::{Calls, Claim};
use crate::response::{Operation, Outcome};
use crate::retention::{Retention, RetentionHandle, RetentionShared};
use crate::state::{Failed, NotRecording, PendingRecording, Recording, State, Unsettled};
use crate::status::{OperationStatus, RecordingStatus};
use crate::transport::{BlockingTransport, Transport};
use crate::types::{CallId, normalize_id};

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
///    `completed`, `Pending` if the operation is still running, `Failed` otherwise.
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
    /// Nothing was reported and the call is still `Recording`: capabilities were alive at the
    /// drain deadline ([`Error::DrainTimeout`]), or the request could not be built or audited.
    /// The stop signal stays raised; end the media tasks and try again.
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

    fn audit(&self, kind: AuditKind) -> Result<(), AuditError> {
        record(self.sink(), &self.id, kind)
    }

    fn sink(&self) -> &dyn AuditSink {
        &*self.claim.entry.registry.audit
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

    /// Sends `status` (retrying as the graph's policy allows), leaving the final answer for
    /// the caller to record with the step it leads to; with an `opening`, the first request is
    /// written with the step that leads to it (see [`Opening`]).
    async fn exchange<T: Transport>(
        &self,
        graph: &Graph<T>,
        status: RecordingStatus,
        attempts: Attempts,
        opening: Option<Opening<'_>>,
    ) -> Result<Exchanged, Error> {
        let sink = self.sink();
        exchange_unrecorded(graph, sink, &self.id, status, attempts, Scope::Any, opening).await
    }

    fn into_state<N: State>(self, state: N) -> Call<N> {
        Call {
            id: self.id,
            claim: self.claim,
            state,
        }
    }

    /// Reports `failed` best effort and enters `Failed`.
    async fn fail<T: Transport>(self, graph: &Graph<T>, reason: Error) -> Call<Failed> {
        let exchanged = self
            .exchange(graph, RecordingStatus::Failed, Attempts::Once, None)
            .await;
        // The answer and the transition are written together; the transition is forced, so
        // it is written alone if they are refused (or nothing was answered).
        let transition = self.transition(CallState::Failed, &reason.to_string());
        let (sent, unrecorded) = match exchanged {
            Ok(exchanged) => {
                let (sent, _, unrecorded) = exchanged.record(self.sink(), Some(transition));
                (Ok(sent), unrecorded)
            }
            Err(e) => (Err(e), Some(transition)),
        };
        match sent {
            Ok(Sent::Answered(Outcome::Completed { .. } | Outcome::Pending { .. })) => {}
            Ok(Sent::Answered(outcome)) => {
                tracing::warn!(call_id = %self.id, ?outcome, "`failed` report not acknowledged");
            }
            Ok(Sent::Lost(e)) | Err(e) => {
                tracing::warn!(call_id = %self.id, error = %e, "could not report `failed`");
            }
        }
        if let Some(transition) = unrecorded {
            self.forced(&transition);
        }
        self.into_state(Failed {
            reason,
            unsettled: None,
        })
    }

    /// `NotRecording`/`Failed` → `PendingRecording` → …
    ///
    /// The episode begins, and its transition is written, before the call's turn is awaited:
    /// a report of an earlier episode that holds the turn (sleeping out a `Retry-After`, say)
    /// is superseded at its next attempt instead of being sent while this begin waits (G7). So
    /// the transition is written alone, not with the request; if nothing is sent, the way back
    /// ("request not sent") is written too.
    async fn begin<T: Transport>(self, graph: &Graph<T>) -> Result<Begin, NotSent<S>> {
        // A new episode: from here on, no report of an earlier one is sent (G7).
        let (episode, audited) = self.claim.entry.begin_episode(|episode| {
            self.sink().record(&self.transition(
                CallState::PendingRecording,
                &format!("recording requested (episode {episode})"),
            ))
        });
        if let Err(error) = audited {
            return Err(NotSent {
                call: self,
                error: error.into(),
            });
        }
        match self
            .exchange(graph, RecordingStatus::Recording, Attempts::Policy, None)
            .await
        {
            Err(error) => {
                let _ = record(
                    self.sink(),
                    &self.id,
                    AuditKind::Transition {
                        from: CallState::PendingRecording,
                        to: S::STATE,
                        reason: "request not sent".to_owned(),
                    },
                );
                Err(NotSent { call: self, error })
            }
            Ok(exchanged) => {
                let pending = self.into_state(PendingRecording {
                    context: exchanged.update.client_context().clone(),
                    client_request_id: exchanged.update.client_request_id().to_owned(),
                    operation_id: None,
                    episode,
                });
                Ok(pending.answered(graph, exchanged).await)
            }
        }
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

    /// The `recording` attempt whose outcome is unknown, if the failure was ambiguous.
    #[cfg_attr(not(feature = "driver"), allow(dead_code))]
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

impl<S: CanBegin> Call<S> {
    /// Reports `recording` to Graph (fresh `clientContext` and `client-request-id` per
    /// attempt). From `Failed` this is a retry, which needs its own acknowledgement.
    ///
    /// Only a 2xx whose operation is `completed` leads to [`Begin::Recording`].
    ///
    /// # Errors
    /// [`NotSent`] with the call unchanged if nothing was sent (bad token, audit failure).
    ///
    /// # Cancellation
    /// The call is moved in, so dropping this future drops it. Dropped before the request
    /// left, nothing was sent; dropped while it was in flight, Graph may or may not apply it,
    /// and without the driver's hub nothing remembers it: the trail shows the request with no
    /// answer. Use [`Driver`](crate::driver::Driver) to have a late completion surfaced.
    pub async fn begin_recording<T: Transport>(
        self,
        graph: &Graph<T>,
    ) -> Result<Begin, NotSent<S>> {
        self.begin(graph).await
    }

    /// The blocking twin of [`begin_recording`](Self::begin_recording). Do not call it from
    /// async code.
    ///
    /// # Errors
    /// As [`begin_recording`](Self::begin_recording).
    pub fn begin_recording_blocking<T: BlockingTransport + Sync>(
        self,
        graph: &Graph<T>,
    ) -> Result<Begin, NotSent<S>> {
        block_on(self.begin(&graph.blocking()))
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
    #[cfg_attr(not(feature = "driver"), allow(dead_code))]
    pub(crate) fn episode(&self) -> u64 {
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

    /// Applies an operation update (from a `commsNotification`).
    ///
    /// An update for another request, or one that is not final, leaves the call pending.
    /// `completed` leads to `Recording`; `failed` to `Failed` (reporting `failed` best effort).
    ///
    /// `proof` shows the notification's webhook request was authenticated (see
    /// [`crate::auth`]): a forged `completed` would otherwise unlock retention. How it was
    /// authenticated is written to the audit trail with the update.
    ///
    /// # Cancellation
    /// Only a `failed` outcome awaits anything (the best-effort `failed` report); dropped
    /// then, the call is dropped and the report may or may not have been sent.
    pub async fn handle_operation<T: Transport>(
        self,
        graph: &Graph<T>,
        proof: &Authenticated,
        operation: &Operation,
    ) -> Begin {
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
            return Begin::Failed(self.fail_pending(graph, e.into()).await);
        }
        if mismatch.is_some() {
            return Begin::Pending(self);
        }
        if acknowledged {
            return Begin::Recording(self.into_recording());
        }
        match operation.status {
            // `failed`, or `completed` with an error: never an acknowledgement (fail closed).
            Some(OperationStatus::Failed | OperationStatus::Completed) => Begin::Failed(
                self.fail_pending(graph, Error::OperationFailed(Box::new(operation.clone())))
                    .await,
            ),
            _ => Begin::Pending(self),
        }
    }

    /// The blocking twin of [`handle_operation`](Self::handle_operation).
    pub fn handle_operation_blocking<T: BlockingTransport + Sync>(
        self,
        graph: &Graph<T>,
        proof: &Authenticated,
        operation: &Operation,
    ) -> Begin {
        block_on(self.handle_operation(&graph.blocking(), proof, operation))
    }

    /// Gives up waiting (the deadline passed): the outcome is unknown, so the call enters
    /// `Failed` and `failed` is reported best effort.
    ///
    /// # Cancellation
    /// Dropped while the `failed` report is in flight, the call is dropped and the report may
    /// or may not have been sent.
    pub async fn abandon<T: Transport>(self, graph: &Graph<T>) -> Call<Failed> {
        self.fail_pending(graph, Error::Abandoned).await
    }

    /// The blocking twin of [`abandon`](Self::abandon).
    pub fn abandon_blocking<T: BlockingTransport + Sync>(self, graph: &Graph<T>) -> Call<Failed> {
        block_on(self.abandon(&graph.blocking()))
    }

    /// As `fail`, remembering the attempt when its outcome is unknown, so that a late
    /// `completed` for it can still be recognised.
    ///
    /// When Graph refused the `recording` request outright (`400`, `403`, `404`, `8506`, …),
    /// nothing was accepted and Graph would refuse a `failed` report too: the call enters
    /// `Failed` without one, and the trail says so.
    async fn fail_pending<T: Transport>(self, graph: &Graph<T>, reason: Error) -> Call<Failed> {
        if reason.is_refused_outright() {
            self.transition_audit(
                CallState::Failed,
                &format!("{reason} (refused outright: no `failed` report)"),
            );
            return self.into_state(Failed {
                reason,
                unsettled: None,
            });
        }
        let unsettled = reason.is_unknown_outcome().then(|| {
            Box::new(Unsettled {
                context: self.state.context.as_str().to_owned(),
                operation_id: self.state.operation_id.clone(),
                episode: self.state.episode,
            })
        });
        let mut failed = self.fail(graph, reason).await;
        failed.state.unsettled = unsettled;
        failed
    }

    /// Records the `recording` request's answer, with the transition to `Recording` when it
    /// acknowledges the request (one batch: both or neither), and settles it.
    async fn answered<T: Transport>(self, graph: &Graph<T>, exchanged: Exchanged) -> Begin {
        let acknowledged = matches!(
            &exchanged.sent,
            Sent::Answered(Outcome::Completed { operation, .. })
                if operation.client_context.as_deref().is_none_or(|c| c == self.client_context())
        );
        let transition = acknowledged.then(|| self.transition(CallState::Recording, ACKNOWLEDGED));
        match exchanged.record(self.sink(), transition).0 {
            // Lost, or the answer refused by the trail: as if it had not come.
            Sent::Lost(error) => Begin::Failed(self.fail_pending(graph, error).await),
            Sent::Answered(Outcome::Completed { operation, .. }) if acknowledged => {
                let mut pending = self;
                pending.state.operation_id = operation.id;
                Begin::Recording(pending.into_recording())
            }
            Sent::Answered(outcome) => self.settle(graph, outcome).await,
        }
    }

    /// Settles an answer that does not acknowledge the request (already in the trail).
    async fn settle<T: Transport>(mut self, graph: &Graph<T>, outcome: Outcome) -> Begin {
        match outcome {
            Outcome::Completed { .. } => {
                // Completed for another `clientContext`: not this request's acknowledgement.
                Begin::Failed(self.fail_pending(graph, Error::ContextMismatch).await)
            }
            Outcome::Pending { operation, .. } => {
                self.state.operation_id = operation.and_then(|o| o.id);
                Begin::Pending(self)
            }
            Outcome::Failed { operation } => Begin::Failed(
                self.fail_pending(graph, Error::OperationFailed(Box::new(operation)))
                    .await,
            ),
            Outcome::GraphError(e) => {
                Begin::Failed(self.fail_pending(graph, Error::Graph(Box::new(e))).await)
            }
            Outcome::Unparseable { body, .. } => {
                Begin::Failed(self.fail_pending(graph, Error::Unparseable(body)).await)
            }
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

impl Call<Recording> {
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

    /// Stops recording: raises the stop signal, waits until every retention capability has
    /// ended (or `drain_deadline` completes, e.g. `tokio::time::sleep(…)`), and only then
    /// reports `notRecording`.
    ///
    /// Graph's answer counts as acknowledged when it is a 2xx whose operation is `completed`
    /// or not yet final (`running`, `notStarted`, `null`): retention has ended either way, and
    /// the call is `NotRecording` as far as media is concerned.
    ///
    /// # Errors
    /// [`StopError::StillRecording`] if capabilities outlived the deadline or nothing could be
    /// sent; [`StopError::Unacknowledged`] if Graph did not acknowledge the report.
    ///
    /// # Cancellation
    /// Dropping this future drops the call. While draining, or while the request is in
    /// flight, that is a `Call<Recording>` dropped: its retention is revoked at once (no write
    /// in flight, none can start); a driver's call also queues a best-effort `notRecording`.
    pub async fn stop_recording<T: Transport, D: Future<Output = ()> + Send>(
        self,
        graph: &Graph<T>,
        drain_deadline: D,
    ) -> Result<Call<NotRecording>, StopError> {
        let (call, exchanged) = self
            .leave(graph, RecordingStatus::NotRecording, drain_deadline)
            .await?;
        // An acknowledged answer is written with the transition it leads to: both or neither.
        let accepted = matches!(
            exchanged.sent,
            Sent::Answered(Outcome::Completed { .. } | Outcome::Pending { .. })
        );
        let transition =
            accepted.then(|| call.transition(CallState::NotRecording, "notRecording reported"));
        let (sent, _, _) = exchanged.record(call.sink(), transition);
        match sent.accepted() {
            Ok(()) => Ok(call.into_state(NotRecording { _priv: () })),
            // Refused by Graph, lost, or refused by the trail (with the transition).
            Err(reason) => Err(StopError::Unacknowledged {
                call: call.fail(graph, reason).await,
            }),
        }
    }

    /// The blocking twin of [`stop_recording`](Self::stop_recording), draining for at most
    /// `drain_timeout`.
    ///
    /// # Errors
    /// As [`stop_recording`](Self::stop_recording).
    pub fn stop_recording_blocking<T: BlockingTransport + Sync>(
        self,
        graph: &Graph<T>,
        drain_timeout: Duration,
    ) -> Result<Call<NotRecording>, StopError> {
        let deadline = DeadlineAt(Instant::now() + drain_timeout);
        block_on(self.stop_recording(&graph.blocking(), deadline))
    }

    /// Recording broke: ends every capability (as [`stop_recording`](Self::stop_recording))
    /// and then reports `failed`.
    ///
    /// # Errors
    /// As [`stop_recording`](Self::stop_recording); on `Unacknowledged` the call is `Failed`
    /// all the same.
    ///
    /// # Cancellation
    /// As [`stop_recording`](Self::stop_recording).
    pub async fn report_failure<T: Transport, D: Future<Output = ()> + Send>(
        self,
        graph: &Graph<T>,
        reason: impl Into<String>,
        drain_deadline: D,
    ) -> Result<Call<Failed>, StopError> {
        let reason = reason.into();
        let (call, exchanged) = self
            .leave(graph, RecordingStatus::Failed, drain_deadline)
            .await?;
        // The answer and the (forced) transition are written together, or the transition
        // alone if they are refused.
        let transition = call.transition(CallState::Failed, &reason);
        let (sent, _, unrecorded) = exchanged.record(call.sink(), Some(transition));
        if let Some(transition) = unrecorded {
            call.forced(&transition);
        }
        let reported = sent.accepted();
        let failed = call.into_state(Failed {
            reason: match reported {
                Ok(()) => Error::Reported(reason),
                Err(e) => e,
            },
            unsettled: None,
        });
        if matches!(failed.reason(), Error::Reported(_)) {
            Ok(failed)
        } else {
            Err(StopError::Unacknowledged { call: failed })
        }
    }

    /// The blocking twin of [`report_failure`](Self::report_failure).
    ///
    /// # Errors
    /// As [`report_failure`](Self::report_failure).
    pub fn report_failure_blocking<T: BlockingTransport + Sync>(
        self,
        graph: &Graph<T>,
        reason: impl Into<String>,
        drain_timeout: Duration,
    ) -> Result<Call<Failed>, StopError> {
        let deadline = DeadlineAt(Instant::now() + drain_timeout);
        block_on(self.report_failure(&graph.blocking(), reason, deadline))
    }

    /// Drains, then sends `status`. Returns the call disarmed (every capability has ended, so
    /// none can be minted and dropping it revokes nothing) and the exchange, whose answer the
    /// caller records with the transition it leads to.
    async fn leave<T: Transport, D: Future<Output = ()> + Send>(
        self,
        graph: &Graph<T>,
        status: RecordingStatus,
        drain_deadline: D,
    ) -> Result<(Self, Exchanged), StopError> {
        // The stop signal is raised only once its event is in the trail (G9): a refused signal
        // leaves the call as it was. With capabilities alive, the drain is a step of its own:
        // the signal is written and raised before it waits. With none, nothing lies between
        // the signal and the request: they are written together, and the signal raised then
        // (meanwhile no capability can be minted: `self` was moved in, and none is alive to
        // be cloned).
        let shared = &self.state.shared;
        let outstanding = shared.outstanding();
        let signal = AuditEvent::now(
            self.id.normalized(),
            AuditKind::DrainStarted { outstanding },
        );
        let mut signal = if outstanding == 0 {
            Some(signal)
        } else {
            if let Err(e) = self.sink().record(&signal) {
                return Err(self.still_recording(e.into()));
            }
            shared.raise_stop();
            if let Err(outstanding) = shared.drain(drain_deadline).await {
                let _ = self.audit(AuditKind::DrainTimedOut { outstanding });
                return Err(self.still_recording(Error::DrainTimeout { outstanding }));
            }
            None
        };
        // Every owned handle is gone, and no borrowed one can exist: `self` was moved in. An
        // end the sink refused earlier must be in the trail before the report (G9).
        if let Err(e) = shared.record_unrecorded() {
            self.signal_alone(signal.take());
            return Err(self.still_recording(e.into()));
        }
        let sink = self.sink();
        let batched = signal.is_some();
        let mut open = |request_sent: AuditEvent| match signal.take() {
            Some(signal) => {
                sink.record_batch(&[signal, request_sent])?;
                shared.raise_stop();
                Ok(())
            }
            None => sink.record(&request_sent),
        };
        let opening = if batched {
            Some(&mut open as Opening<'_>)
        } else {
            None
        };
        let exchanged = self
            .exchange(graph, status, Attempts::Policy, opening)
            .await;
        let exchanged = match exchanged {
            Ok(exchanged) => exchanged,
            Err(e) => {
                self.signal_alone(signal.take());
                return Err(self.still_recording(e));
            }
        };
        let mut call = self;
        call.state.armed = false;
        Ok((call, exchanged))
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

/// Completes once `Instant::now()` reaches the instant; [`block_on`] re-polls it.
struct DeadlineAt(Instant);

impl Future for DeadlineAt {
    type Output = ();

    fn poll(self: std::pin::Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
        if Instant::now() >= self.0 {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

struct ThreadWaker(Thread);

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
}

/// Runs a future on the current thread. Used by the blocking twins, whose futures never wait on
/// I/O: they wait only on the retention drain (woken) or a [`DeadlineAt`] (re-polled).
fn block_on<F: Future>(future: F) -> F::Output {
    let waker = Waker::from(Arc::new(ThreadWaker(thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut future = pin!(future);
    loop {
        if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
        thread::park_timeout(Duration::from_millis(5));
    }
}
