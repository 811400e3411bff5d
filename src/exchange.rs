//! One status update of one call, exchanged with Graph attempt by attempt, with no I/O: the
//! steps every way of running a transition (async, blocking, the driver, a bot's own loop)
//! drives.
//!
//! A transition's first step (for example [`Call::start_recording`](crate::Call::start_recording))
//! returns a [`StatusUpdate`]. Each attempt is two steps:
//!
//! 1. [`StatusUpdate::prepare`] builds the `POST …/updateRecordingStatus` request with a fresh
//!    `clientContext` and `client-request-id`, writes its `request_sent` event to the trail
//!    (the request exists only once its event does, G9), and hands the request over;
//! 2. [`SentUpdate::answer`] (or [`SentUpdate::no_answer`]) reads what came back, writes it to
//!    the trail and decides: another attempt after a pause ([`Step::Next`]: throttling honouring
//!    `Retry-After`, a request that never left, one token refresh after `401`, all under the
//!    retry policy's deadline), or the transition's result ([`Step::Done`]), already in the
//!    trail with the state it leads to.
//!
//! Time is passed in (`now`, from the caller's clock); nothing here sleeps, reads a clock, or
//! touches the network. [`Graph`](crate::Graph) runs these steps in a loop, async or blocking.
//!
//! # Example: a blocking bot's own loop
//! ```
//! use std::sync::Arc;
//! use std::time::Instant;
//! use recording_status::audit::MemorySink;
//! use recording_status::exchange::Step;
//! use recording_status::testing::{ScriptedTransport, Step as Answer};
//! use recording_status::{AccessToken, Begin, BlockingTransport, Calls, Endpoint};
//!
//! let transport = ScriptedTransport::new().then(Answer::completed());
//! let calls = Calls::new(Arc::new(MemorySink::default()));
//! let call = calls.open("57dab8b1-894c-409a-b240-bd8beae78896".parse()?)?;
//! let (endpoint, token) = (Endpoint::default(), AccessToken::new("eyJ0eXAi…"));
//!
//! let mut update = call.start_recording().map_err(|not_sent| not_sent.error)?;
//! let begun = loop {
//!     let (sent, request) = match update.prepare(&endpoint, token.clone(), Instant::now()) {
//!         Ok(attempt) => attempt,
//!         Err(Step::Done(begun)) => break begun,
//!         Err(Step::Next { update: next, after }) => {
//!             std::thread::sleep(after);
//!             update = next;
//!             continue;
//!         }
//!     };
//!     let step = match transport.send_blocking(request) {
//!         Ok(response) => sent.answer(&response, Instant::now()),
//!         Err(error) => sent.no_answer(error.into(), Instant::now()),
//!     };
//!     match step {
//!         Step::Next { update: next, after } => {
//!             std::thread::sleep(after);
//!             update = next;
//!         }
//!         Step::Done(begun) => break begun,
//!     }
//! };
//! assert!(matches!(begun, Ok(Begin::Recording(_))));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::audit::durable::{Pending, deferring};
use crate::audit::{AuditEvent, AuditKind, AuditSink, ResponseKind, TransportFailure, record_for};
use crate::endpoint::Endpoint;
use crate::error::{AuditError, Error};
use crate::registry::{CallEntry, SendGuard, Superseded};
use crate::request::UpdateRequest;
use crate::response::{Outcome, interpret_response};
use crate::retention::RetentionShared;
use crate::retry::{RetryPolicy, Verdict, backoff, classify, jitter, may_retry};
use crate::status::RecordingStatus;
use crate::transport::{HttpRequest, HttpResponse, was_not_delivered};
use crate::types::{AccessToken, CallId};

/// A status update ready for its next attempt: call [`prepare`](Self::prepare) with a token,
/// or [`give_up`](Self::give_up) if none can be had. `O` is what the transition comes to (for
/// a `recording` update, `Result<Begin, NotSent<S>>`).
///
/// Dropping it sends nothing more; what the transition had written stays in the trail (for a
/// `recording` update already sent, Graph may still apply it: the driver remembers such
/// requests, a bot's own loop must).
#[must_use = "a status update does nothing until it is prepared and sent"]
pub struct StatusUpdate<O> {
    exchange: Box<Exchange>,
    flow: Box<dyn Flow<O>>,
}

/// A status update with one attempt in flight: the request [`StatusUpdate::prepare`] handed
/// over is in the trail and may be with Graph. Give it what came back:
/// [`answer`](Self::answer) or [`no_answer`](Self::no_answer).
///
/// Not `Clone`: one attempt has one answer.
#[must_use = "what came back must be given to the update"]
pub struct SentUpdate<O> {
    exchange: Box<Exchange>,
    flow: Box<dyn Flow<O>>,
}

/// What an attempt leads to.
#[must_use]
#[allow(clippy::exhaustive_enums)] // By construction: another attempt, or the result.
pub enum Step<O> {
    /// Make another attempt after `after` (zero: at once). The next attempt may be a retry
    /// (throttling, a request that never left, a `401` to retry with a fresh token) or the
    /// transition's next request (the best-effort `failed` report after a failure).
    Next {
        /// The update, ready for its next attempt.
        update: StatusUpdate<O>,
        /// How long to wait first.
        after: Duration,
    },
    /// The transition's result, in the trail with the state it leads to.
    Done(O),
}

/// What a transition comes to (`O` of [`StatusUpdate<O>`]): every result type of the crate's
/// transitions. Sealed.
///
/// The async loop ([`Graph::run`](crate::Graph::run)) needs one thing of it: if the trail
/// stops (a sync fails) after the step that made the result wrote its lines but before they
/// were durable, the result is handed back as a transition the trail refused: a call that
/// would have entered `Recording`, `PendingRecording` or `NotRecording` enters `Failed`
/// instead, with [`Error::Audit`] as its reason, and a report comes back
/// as that error. Nothing more can be written to such a trail, so nothing more happens.
pub trait Output: unrecorded::Unrecorded {}

impl<T: unrecorded::Unrecorded> Output for T {}

pub(crate) mod unrecorded {
    use crate::error::AuditError;

    /// See [`Output`](super::Output).
    #[allow(unnameable_types)] // Sealed on purpose.
    pub trait Unrecorded: Sized {
        /// The result as if the trail had refused the lines of the step that made it.
        fn unrecorded(self, error: AuditError) -> Self;
    }
}

/// Why an attempt has no answer.
#[derive(Debug)]
#[non_exhaustive]
pub enum NoAnswer {
    /// The transport failed; whether the request left is told from the error
    /// ([`NotDelivered`](crate::transport::NotDelivered), a refused connection): only a request
    /// that never left is retried.
    Failed(Box<dyn StdError + Send + Sync + 'static>),
    /// The caller stopped waiting (at [`SentUpdate::timeout`], say): the outcome is unknown.
    TimedOut,
}

impl<E: StdError + Send + Sync + 'static> From<E> for NoAnswer {
    fn from(error: E) -> Self {
        Self::Failed(Box::new(error))
    }
}

impl<O> StatusUpdate<O> {
    pub(crate) fn new(exchange: Exchange, flow: Box<dyn Flow<O>>) -> Self {
        Self {
            exchange: Box::new(exchange),
            flow,
        }
    }

    pub(crate) fn into_parts(self) -> (Box<Exchange>, Box<dyn Flow<O>>) {
        (self.exchange, self.flow)
    }

    /// The call the update is for.
    pub fn call_id(&self) -> &CallId {
        &self.exchange.call
    }

    /// The status the next attempt reports.
    pub fn status(&self) -> RecordingStatus {
        self.exchange.status
    }

    /// Whether the next attempt needs a freshly fetched token (Graph refused the last one
    /// with `401`; this is retried once).
    pub fn wants_fresh_token(&self) -> bool {
        self.exchange.refresh_token
    }

    /// Retries as `policy` says: throttling (`429`, `503`) after `Retry-After`, requests that
    /// never left with backoff, a `401` once with a fresh token, all under its deadline.
    /// Without a policy every request is sent once. Ambiguous failures (`5xx`, timeouts, resets
    /// after sending) are never retried.
    pub fn with_retry(mut self, policy: RetryPolicy) -> Self {
        self.exchange.policy = Some(policy);
        self
    }

    /// Whether a retry policy is set.
    pub fn has_retry(&self) -> bool {
        self.exchange.policy.is_some()
    }

    /// Whether the call's audit sink [`defers`](AuditSink::defers) (the async loop awaits the
    /// sync of a request's and an answer's lines) and whether it [`blocks`](AuditSink::blocks)
    /// (the loop runs its other steps off the executor's thread).
    pub(crate) fn audit_waits(&self) -> (bool, bool) {
        let audit = self.flow.entry().audit();
        (audit.defers(), audit.blocks())
    }

    /// Builds the next attempt's request with `token` for `endpoint`, and writes its
    /// `request_sent` event (with the step that leads to it, when nothing lies between them):
    /// send the request, then give [`SentUpdate`] what came back. `now` is the caller's clock:
    /// the retry policy's deadline counts from the phase's first attempt.
    ///
    /// # Errors
    /// Nothing was sent for this attempt (its event was refused by the trail, the request
    /// could not be built, or, for a report of an earlier recording episode, a later episode
    /// has begun): what that comes to, as after an answer.
    pub fn prepare(
        self,
        endpoint: &Endpoint,
        token: AccessToken,
        now: Instant,
    ) -> Result<(SentUpdate<O>, HttpRequest), Step<O>> {
        self.prepare_with(endpoint, token, now, false)
    }

    /// [`prepare`](Self::prepare); if `defer`, a synced trail returns once `request_sent` is
    /// with the OS, and the caller must await [`SentUpdate::durable`] before sending (the
    /// async loop does).
    pub(crate) fn prepare_with(
        self,
        endpoint: &Endpoint,
        token: AccessToken,
        now: Instant,
        defer: bool,
    ) -> Result<(SentUpdate<O>, HttpRequest), Step<O>> {
        let Self { mut exchange, flow } = self;
        match exchange.prepare(flow.entry(), endpoint, token, now, defer) {
            Ok(request) => Ok((SentUpdate { exchange, flow }, request)),
            Err(error) => {
                let finished = exchange.abort(error);
                Err(step(exchange, flow, finished))
            }
        }
    }

    /// No token can be had (or the bot gives up for another reason): nothing more is sent in
    /// this phase. If nothing was sent yet, the transition comes to nothing (the call comes
    /// back as it was, and the trail says so); otherwise the last attempt's outcome is unknown.
    pub fn give_up(self, error: Error, now: Instant) -> Step<O> {
        let Self { mut exchange, flow } = self;
        exchange.clock(now);
        let finished = exchange.abort(error);
        step(exchange, flow, finished)
    }
}

impl<O> SentUpdate<O> {
    /// The call the update is for.
    pub fn call_id(&self) -> &CallId {
        &self.exchange.call
    }

    /// The status the attempt in flight reports.
    pub fn status(&self) -> RecordingStatus {
        self.exchange.status
    }

    /// The `clientContext` of the attempt in flight.
    pub fn client_context(&self) -> &str {
        self.exchange
            .current
            .as_ref()
            .map_or("", |update| update.client_context().as_str())
    }

    /// How long the caller may wait for this attempt's answer before giving up
    /// ([`NoAnswer::TimedOut`]): what is left of the retry policy's deadline (for a
    /// best-effort report, its short grace). `None` without a policy: wait as long as the
    /// transport does.
    pub fn timeout(&self, now: Instant) -> Option<Duration> {
        self.exchange.timeout(now)
    }

    /// The wait for this attempt's `request_sent` to be durable, if
    /// [`StatusUpdate::prepare_with`] left it to the caller: the request must not be sent
    /// before it ends with `Ok`.
    pub(crate) fn durable(&mut self) -> Option<Pending> {
        self.exchange.durable.take()
    }

    /// The attempt's `request_sent` could not be made durable (the trail stopped): the request
    /// was not sent, and the attempt ends as one whose event the trail refused.
    pub(crate) fn withheld(self, error: AuditError) -> Step<O> {
        let Self { mut exchange, flow } = self;
        exchange.withhold();
        let finished = exchange.abort(Error::Audit(error));
        step(exchange, flow, finished)
    }

    /// Reads Graph's answer: writes it to the trail (a final answer together with the state it
    /// leads to) and decides what comes next.
    pub fn answer(self, response: &HttpResponse, now: Instant) -> Step<O> {
        let Self { mut exchange, flow } = self;
        match exchange.answered(flow.entry(), response, now) {
            Attempted::Again(after) => Step::Next {
                update: StatusUpdate { exchange, flow },
                after,
            },
            Attempted::Finished(finished) => step(exchange, flow, finished),
        }
    }

    /// No answer came: writes the failure to the trail and decides. Only a request that
    /// never left is retried; any other failure leaves the outcome unknown, never a success.
    pub fn no_answer(self, failure: NoAnswer, now: Instant) -> Step<O> {
        let Self { mut exchange, flow } = self;
        match exchange.unanswered(flow.entry(), failure, now) {
            Attempted::Again(after) => Step::Next {
                update: StatusUpdate { exchange, flow },
                after,
            },
            Attempted::Finished(finished) => step(exchange, flow, finished),
        }
    }
}

/// What a finished phase leads to: the transition's result, or its next phase.
fn step<O>(mut exchange: Box<Exchange>, flow: Box<dyn Flow<O>>, finished: Finished) -> Step<O> {
    match flow.finished(&mut exchange, finished) {
        Progress::Done(out) => Step::Done(out),
        Progress::Again(flow) => Step::Next {
            update: StatusUpdate { exchange, flow },
            after: Duration::ZERO,
        },
    }
}

impl<O> fmt::Debug for StatusUpdate<O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StatusUpdate")
            .field("call_id", &self.exchange.call)
            .field("status", &self.exchange.status)
            .field("attempts", &self.exchange.attempt)
            .finish_non_exhaustive()
    }
}

impl<O> fmt::Debug for SentUpdate<O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SentUpdate")
            .field("call_id", &self.exchange.call)
            .field("status", &self.exchange.status)
            .field("attempt", &self.exchange.attempt)
            .field("client_context", &self.client_context())
            .finish_non_exhaustive()
    }
}

impl<O> fmt::Debug for Step<O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Next { update, after } => f
                .debug_struct("Next")
                .field("update", update)
                .field("after", after)
                .finish(),
            Self::Done(_) => f.write_str("Done(..)"),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// What a transition does with the end of each phase (implemented by the call layer)

/// A transition's logic around its requests: what the final answer of a phase (or its
/// absence) comes to. Implemented by the transitions of [`Call`](crate::Call).
pub(crate) trait Flow<O>: Send {
    /// The registry entry of the call the transition is about: its trail and its hooks.
    fn entry(&self) -> &CallEntry;

    /// The phase ended. Either the transition's result, or its next phase, for which the flow
    /// has [`restart`](Exchange::restart)ed the exchange.
    fn finished(self: Box<Self>, exchange: &mut Exchange, finished: Finished) -> Progress<O>;
}

/// See [`Flow::finished`].
pub(crate) enum Progress<O> {
    /// The transition's result.
    Done(O),
    /// The next phase: the exchange was restarted for it.
    Again(Box<dyn Flow<O>>),
}

/// How a phase ended. Not boxed: a phase ends once, and the allocation showed in the
/// driver's throughput at concurrency.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
pub(crate) enum Finished {
    /// Nothing was sent in this phase (`error` says why); the trail holds nothing of it but
    /// what the phase's first step wrote.
    Unsent(Error),
    /// At least one attempt was sent.
    Sent(Concluded),
}

// ---------------------------------------------------------------------------------------------
// The exchange itself

/// Which recording episode an exchange belongs to.
#[derive(Clone)]
pub(crate) enum Scope {
    /// The call's current one: the caller holds the call's value.
    Current,
    /// A given episode, whose report must not be sent once a later episode of the call has
    /// begun (G7): checked, under the entry's lock, with each attempt's `request_sent`.
    Episode(Arc<CallEntry>, u64),
}

/// How many attempts a phase may make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Attempts {
    /// As the retry policy allows.
    Policy,
    /// One, bounded by the policy's report grace: a best-effort report after a failure must
    /// not hold the caller for another deadline.
    Once,
}

/// The events written with the first attempt's `request_sent` (the stop signal, when nothing
/// lies between it and the request), and what to do once they are in the trail.
pub(crate) struct Prelude {
    pub(crate) event: AuditEvent,
    /// The recording whose stop signal is raised once the event is in the trail.
    pub(crate) raises: Arc<RetentionShared>,
}

/// One status update of one call, attempt by attempt: what every attempt shares.
pub(crate) struct Exchange {
    call: CallId,
    status: RecordingStatus,
    attempts: Attempts,
    scope: Scope,
    policy: Option<RetryPolicy>,
    /// Attempts made in this phase.
    attempt: u32,
    /// When this phase's first attempt was prepared (the caller's clock).
    started: Option<Instant>,
    refresh_token: bool,
    refreshed: bool,
    sent_any: bool,
    prelude: Option<Prelude>,
    /// The attempt in flight, or the last one.
    current: Option<UpdateRequest>,
    /// The attempt before `current`, and whether any was sent before it: what is restored if
    /// `current` is withheld.
    previous: Option<UpdateRequest>,
    sent_before: bool,
    /// The wait for `current`'s `request_sent` to be durable, left to the async loop.
    durable: Option<Pending>,
    /// The token of the attempt in flight, to keep it out of what the trail says of failures.
    token: Option<AccessToken>,
    guard: Option<SendGuard>,
}

/// The outcome of one attempt (returned once per attempt: not boxed, see [`Finished`]).
#[allow(clippy::large_enum_variant)]
enum Attempted {
    /// Make another attempt after this long.
    Again(Duration),
    /// The phase is over.
    Finished(Finished),
}

impl Exchange {
    pub(crate) fn new(
        call: CallId,
        status: RecordingStatus,
        attempts: Attempts,
        scope: Scope,
    ) -> Self {
        Self {
            call,
            status,
            attempts,
            scope,
            policy: None,
            attempt: 0,
            started: None,
            refresh_token: false,
            refreshed: false,
            sent_any: false,
            prelude: None,
            current: None,
            previous: None,
            sent_before: false,
            durable: None,
            token: None,
            guard: None,
        }
    }

    pub(crate) fn with_prelude(mut self, prelude: Prelude) -> Self {
        self.prelude = Some(prelude);
        self
    }

    /// The transition's next phase (its next request) goes on `next`, which takes over this
    /// one's retry policy.
    pub(crate) fn continue_with(&mut self, mut next: Box<Self>) {
        next.policy = self.policy.take();
        *self = *next;
    }

    /// The prelude not yet written (nothing was sent), for the flow to write alone.
    pub(crate) fn take_prelude(&mut self) -> Option<Prelude> {
        self.prelude.take()
    }

    fn clock(&mut self, now: Instant) {
        self.started.get_or_insert(now);
    }

    fn elapsed(&self, now: Instant) -> Duration {
        self.started.map_or(Duration::ZERO, |started| {
            now.saturating_duration_since(started)
        })
    }

    fn policy(&self) -> Option<&RetryPolicy> {
        self.policy
            .as_ref()
            .filter(|_| self.attempts == Attempts::Policy)
    }

    fn timeout(&self, now: Instant) -> Option<Duration> {
        let policy = self.policy.as_ref()?;
        let left = policy.deadline.saturating_sub(self.elapsed(now));
        Some(match self.attempts {
            Attempts::Policy => left,
            // A best-effort report after a failed transition: within a short grace, not a
            // deadline of its own.
            Attempts::Once => left.min(policy.report_grace),
        })
    }

    /// Builds and audits the next attempt. `Err`: nothing was sent for it.
    fn prepare(
        &mut self,
        entry: &CallEntry,
        endpoint: &Endpoint,
        token: AccessToken,
        now: Instant,
        defer: bool,
    ) -> Result<HttpRequest, Error> {
        self.clock(now);
        self.attempt += 1;
        self.refresh_token = false;
        let update = UpdateRequest::new(self.status);
        let request = update.to_http(endpoint, &self.call, &token)?;
        // One spelling per call in the trail (G7): the normalised id.
        let request_sent = AuditEvent::now(
            self.call.normalized(),
            AuditKind::RequestSent {
                status: self.status,
                client_context: update.client_context().as_str().to_owned(),
                client_request_id: update.client_request_id().to_owned(),
            },
        );
        let prelude = self.prelude.take();
        let audit = entry.audit();
        let write = || match prelude {
            Some(Prelude { event, raises }) => {
                audit.record_batch(&[event, request_sent])?;
                raises.raise_stop();
                Ok(())
            }
            None => audit.record(&request_sent),
        };
        // Left to the async loop: the request waits for the line's sync, not the thread.
        let mut durable = None;
        let write = || {
            if defer {
                let (written, pending) = deferring(write);
                durable = Some(pending);
                written
            } else {
                write()
            }
        };
        let audited = match &self.scope {
            Scope::Current => write(),
            Scope::Episode(entry, episode) => match entry.within_episode(*episode, write) {
                Ok(audited) => audited,
                Err(Superseded { current }) => {
                    let _ = record_for(
                        audit,
                        &self.call,
                        AuditKind::ReportSuperseded {
                            status: self.status,
                            episode: *episode,
                            current_episode: current,
                        },
                    );
                    // Registry-wide sequence numbers, not the call's own 1, 2, … (see
                    // `audit::CallSummary::episodes`).
                    tracing::info!(call_id = %self.call, episode_seq = *episode,
                        current_episode_seq = current,
                        "report superseded by a later episode; not sent");
                    return Err(Error::Superseded {
                        call_id: self.call.clone(),
                        episode: *episode,
                        current,
                    });
                }
            },
        };
        audited?;
        self.durable = durable.filter(|pending| !pending.is_empty());
        self.sent_before = self.sent_any;
        self.sent_any = true;
        tracing::debug!(call_id = %self.call, status = %self.status, attempt = self.attempt,
            client_request_id = update.client_request_id(), "sending");
        // From here until the outcome is known, a `recording` request whose outcome is lost
        // is remembered by whoever set the hook (G10).
        self.guard = entry
            .recording_sent()
            .filter(|_| self.status == RecordingStatus::Recording)
            .map(|hook| {
                hook.sent(
                    &self.call,
                    entry.episode(),
                    update.client_context().as_str(),
                )
            });
        self.previous = self.current.replace(update);
        self.token = Some(token);
        Ok(request)
    }

    /// The attempt just prepared was not sent: as if its `request_sent` had been refused.
    fn withhold(&mut self) {
        self.durable = None;
        self.sent_any = self.sent_before;
        self.current = self.previous.take();
        // Not sent: nothing for Graph to apply.
        if let Some(guard) = self.guard.as_mut() {
            guard.disarm();
        }
        self.guard = None;
    }

    fn abort(&mut self, error: Error) -> Finished {
        if self.sent_any {
            Finished::Sent(Concluded {
                reply: Reply::Lost(error),
                update: self.current.take(),
                response: None,
            })
        } else {
            Finished::Unsent(error)
        }
    }

    fn client_request_id(&self) -> String {
        self.current
            .as_ref()
            .map(|update| update.client_request_id().to_owned())
            .unwrap_or_default()
    }

    fn unanswered(&mut self, entry: &CallEntry, failure: NoAnswer, now: Instant) -> Attempted {
        let (error, not_delivered) = match failure {
            NoAnswer::Failed(error) => {
                let not_delivered = was_not_delivered(&*error);
                (Error::Transport(error), not_delivered)
            }
            NoAnswer::TimedOut => (Error::Timeout, false),
        };
        let kind = if not_delivered {
            TransportFailure::NotDelivered
        } else if matches!(error, Error::Timeout) {
            TransportFailure::Timeout
        } else {
            TransportFailure::OutcomeUnknown
        };
        let described = describe(&error, self.token.as_ref());
        let _ = record_for(
            entry.audit(),
            &self.call,
            AuditKind::TransportFailed {
                client_request_id: self.client_request_id(),
                kind,
                error: described,
            },
        );
        tracing::warn!(call_id = %self.call, attempt = self.attempt, not_delivered,
            error = %error, "no response");
        if not_delivered && let Some(policy) = self.policy() {
            let wait = backoff(policy, self.attempt, jitter());
            if may_retry(policy, self.attempt, self.elapsed(now), wait) {
                // Not delivered: nothing for Graph to apply.
                if let Some(guard) = self.guard.as_mut() {
                    guard.disarm();
                }
                self.guard = None;
                return Attempted::Again(wait);
            }
        }
        // The outcome is unknown: an armed guard goes off here.
        self.guard = None;
        Attempted::Finished(Finished::Sent(Concluded {
            reply: Reply::Lost(error),
            update: self.current.take(),
            response: None,
        }))
    }

    fn answered(&mut self, entry: &CallEntry, response: &HttpResponse, now: Instant) -> Attempted {
        let outcome = interpret_response(response);
        // A definitive answer (the operation's own status, or a refusal): nothing unseen can
        // follow. 5xx and unreadable bodies stay unknown.
        let definitive = !matches!(outcome, Outcome::Unparseable { .. })
            && !matches!(&outcome, Outcome::GraphError(e) if e.status.is_server_error());
        if definitive && let Some(guard) = self.guard.as_mut() {
            guard.disarm();
        }
        let (kind, operation_id, error_request_id) = summarize(&outcome);
        let answered = AuditEvent::now(
            self.call.normalized(),
            AuditKind::ResponseReceived {
                client_request_id: self.client_request_id(),
                http_status: response.status().as_u16(),
                outcome: kind,
                operation_id,
                request_id: correlation(response, "request-id")
                    .or(error_request_id.filter(|id| is_correlation(id))),
                echoed_client_request_id: correlation(response, "client-request-id"),
                date: correlation(response, "date"),
            },
        );
        tracing::debug!(call_id = %self.call, attempt = self.attempt,
            http_status = response.status().as_u16(), outcome = ?kind, "answered");
        let retry_after = response
            .headers()
            .get(http::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok());
        let next = self.after_answer(&outcome, retry_after, now);
        let Some(next) = next else {
            // The final answer: the flow records it, with the step it leads to.
            self.guard = None;
            return Attempted::Finished(Finished::Sent(Concluded {
                reply: Reply::Answered(outcome),
                update: self.current.take(),
                response: Some(answered),
            }));
        };
        // An answer that is retried is in the trail before the retry.
        if let Err(e) = entry.audit().record(&answered) {
            self.guard = None;
            return Attempted::Finished(Finished::Sent(Concluded {
                reply: Reply::Lost(e.into()),
                update: self.current.take(),
                response: None,
            }));
        }
        // Throttled, or refused with 401: Graph did not apply it.
        if let Some(guard) = self.guard.as_mut() {
            guard.disarm();
        }
        self.guard = None;
        Attempted::Again(next)
    }

    /// After an answer: throttling is retried after `Retry-After`, a `401` once with a fresh
    /// token (`Some(ZERO)`); `None`: the answer stands.
    fn after_answer(
        &mut self,
        outcome: &Outcome,
        retry_after: Option<&str>,
        now: Instant,
    ) -> Option<Duration> {
        let policy = self.policy()?;
        let elapsed = self.elapsed(now);
        let verdict = classify(
            outcome,
            retry_after,
            policy,
            self.attempt,
            jitter(),
            chrono::Utc::now(),
        );
        match verdict {
            Verdict::RetryAfter(wait) if may_retry(policy, self.attempt, elapsed, wait) => {
                tracing::info!(call_id = %self.call, attempt = self.attempt,
                    wait_ms = wait.as_millis() as u64, "throttled, retrying");
                Some(wait)
            }
            Verdict::RefreshToken
                if !self.refreshed && may_retry(policy, self.attempt, elapsed, Duration::ZERO) =>
            {
                tracing::info!(call_id = %self.call, attempt = self.attempt,
                    "401, refreshing the token once");
                self.refreshed = true;
                self.refresh_token = true;
                Some(Duration::ZERO)
            }
            _ => None,
        }
    }
}

/// What one phase's final attempt came to.
#[derive(Debug)]
pub(crate) enum Reply {
    /// Graph answered (the last attempt's answer, after any retries).
    Answered(Outcome),
    /// No usable answer: the outcome is unknown.
    Lost(Error),
}

impl Reply {
    /// Whether an end-of-recording report (`notRecording`/`failed`) was accepted: a 2xx whose
    /// operation is completed or still pending. Anything else is the error to report.
    pub(crate) fn accepted(self) -> Result<(), Error> {
        match self {
            Self::Answered(Outcome::Completed { .. } | Outcome::Pending { .. }) => Ok(()),
            Self::Answered(Outcome::Failed { operation }) => {
                Err(Error::OperationFailed(Box::new(operation)))
            }
            Self::Answered(Outcome::GraphError(e)) => Err(Error::Graph(Box::new(e))),
            Self::Answered(Outcome::Unparseable { body, .. }) => Err(Error::Unparseable(body)),
            Self::Lost(e) => Err(e),
        }
    }
}

/// A phase whose final answer is not yet in the trail: its `response_received` waits for the
/// flow to [`record`](Self::record) it, together with the event of the step the answer leads
/// to when nothing lies between them, in one [`AuditSink::record_batch`].
#[derive(Debug)]
pub(crate) struct Concluded {
    pub(crate) reply: Reply,
    /// The request of the final attempt.
    pub(crate) update: Option<UpdateRequest>,
    /// The final answer's `response_received`; `Some` exactly when `sent` is `Answered`.
    response: Option<AuditEvent>,
}

impl Concluded {
    /// Records the answer's `response_received` followed by `step`, the event of the step the
    /// answer leads to, with one batch: both are in the trail or neither is (with a sink that
    /// writes batches all or nothing, as the crate's do). A refusal turns the answer into
    /// [`Reply::Lost`] with the sink's error, exactly as a refused `response_received` alone
    /// did: the caller then takes the path of an answer it never got, and not `step`.
    ///
    /// Returns the outcome, and `step` back if it is not in the trail (refused with the answer,
    /// or there was no answer to record it with): the caller records it alone if it must.
    pub(crate) fn record(
        self,
        audit: &dyn AuditSink,
        step: Option<AuditEvent>,
    ) -> (Reply, Option<AuditEvent>) {
        let Some(response) = self.response else {
            return (self.reply, step);
        };
        let Some(step) = step else {
            return match audit.record(&response) {
                Ok(()) => (self.reply, None),
                Err(e) => (Reply::Lost(e.into()), None),
            };
        };
        let batch = [response, step];
        match audit.record_batch(&batch) {
            Ok(()) => (self.reply, None),
            Err(e) => {
                let [_, step] = batch;
                (Reply::Lost(e.into()), Some(step))
            }
        }
    }
}

/// An error and its sources, joined with `": "`, with the bearer token removed wherever a
/// transport may have echoed it.
fn describe(error: &Error, token: Option<&AccessToken>) -> String {
    let mut text = match error {
        // The variant's own words say only "transport failed"; its sources say why.
        Error::Transport(_) => String::new(),
        other => other.to_string(),
    };
    let mut source = StdError::source(error);
    let mut depth = 0;
    while let Some(e) = source {
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&e.to_string());
        source = e.source();
        depth += 1;
        if depth == 8 {
            break;
        }
    }
    if text.is_empty() {
        text = error.to_string();
    }
    if let Some(token) = token {
        let secret = token.secret();
        if secret.len() >= 8 {
            text = text.replace(secret, "[redacted]");
        }
    }
    text
}

/// The longest correlation header value kept in the trail; Graph's are GUIDs and HTTP dates.
const MAX_CORRELATION_LEN: usize = 128;

/// A correlation header of `response` (`request-id`, `client-request-id`, `Date`), if it is
/// [`is_correlation`]: a hostile answer cannot flood the trail through it.
fn correlation(response: &HttpResponse, name: &str) -> Option<String> {
    let value = response.headers().get(name)?.to_str().ok()?;
    is_correlation(value).then(|| value.to_owned())
}

/// Whether `value` is visible ASCII (spaces allowed, as in a date) of a sane length.
fn is_correlation(value: &str) -> bool {
    value.len() <= MAX_CORRELATION_LEN && value.bytes().all(|b| b == b' ' || b.is_ascii_graphic())
}

fn summarize(outcome: &Outcome) -> (ResponseKind, Option<String>, Option<String>) {
    match outcome {
        Outcome::Completed { operation, .. } => {
            (ResponseKind::Completed, operation.id.clone(), None)
        }
        Outcome::Pending { operation, .. } => (
            ResponseKind::Pending,
            operation.as_ref().and_then(|o| o.id.clone()),
            None,
        ),
        Outcome::Failed { operation } => (ResponseKind::Failed, operation.id.clone(), None),
        Outcome::GraphError(e) => (ResponseKind::GraphError, None, e.request_id.clone()),
        Outcome::Unparseable { .. } => (ResponseKind::Unparseable, None, None),
    }
}

/// A report of a recording episode that is not the call's value's to make (the driver's
/// best-effort `notRecording` for a dropped recording call, a reconciliation of a late
/// completion): sent only while no later episode of the call has begun (G7), its result only
/// whether Graph accepted it.
pub(crate) fn report(
    call: &CallId,
    status: RecordingStatus,
    entry: Arc<CallEntry>,
    episode: u64,
) -> StatusUpdate<Result<(), Error>> {
    let exchange = Exchange::new(
        call.clone(),
        status,
        Attempts::Policy,
        Scope::Episode(entry.clone(), episode),
    );
    StatusUpdate::new(exchange, Box::new(Report(entry)))
}

/// See [`report`].
struct Report(Arc<CallEntry>);

impl unrecorded::Unrecorded for Result<(), Error> {
    fn unrecorded(self, error: AuditError) -> Self {
        self.and(Err(Error::Audit(error)))
    }
}

impl Flow<Result<(), Error>> for Report {
    fn entry(&self) -> &CallEntry {
        &self.0
    }

    fn finished(
        self: Box<Self>,
        _: &mut Exchange,
        finished: Finished,
    ) -> Progress<Result<(), Error>> {
        Progress::Done(match finished {
            Finished::Unsent(error) => Err(error),
            Finished::Sent(concluded) => concluded.record(self.0.audit(), None).0.accepted(),
        })
    }
}
