//! [`Graph<T>`](Graph): how status requests reach Graph (endpoint, tokens, transport, retry
//! policy), and the one place where an update is sent, retried and audited.

mod retrying;

use retrying::{Next, Retrying};
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tracing::Instrument;

use crate::audit::{AuditEvent, AuditKind, AuditSink, ResponseKind, TransportFailure};
use crate::endpoint::Endpoint;
use crate::error::{AuditError, Error};
use crate::registry::{CallEntry, Superseded};
use crate::request::UpdateRequest;
use crate::response::{Outcome, interpret_response};
use crate::status::RecordingStatus;
use crate::token::TokenSource;
use crate::transport::{
    BlockingTransport, HttpRequest, HttpResponse, Transport, was_not_delivered,
};
use crate::types::{AccessToken, CallId};

#[cfg(feature = "driver")]
use crate::retry::RetryPolicy;

/// How to reach Graph: an [`Endpoint`], a token (fixed, or a [`TokenSource`]) and a
/// [`Transport`]; with the `driver` feature, also a retry policy.
///
/// Without a retry policy every status request is sent exactly once. With one
/// ([`Graph::with_retry`]), throttling (`429`, `503`) is retried honouring `Retry-After`,
/// failures before the request left are retried with backoff, a `401` refreshes the token once,
/// and everything stays under the policy's deadline; ambiguous failures (`5xx`, timeouts, resets
/// after sending) are never retried. Requests for the same call are sent one at a time, in order.
///
/// # Example
/// ```
/// use recording_status::{AccessToken, Endpoint, Graph};
/// use recording_status::testing::ScriptedTransport;
///
/// let graph = Graph::new(ScriptedTransport::new(), AccessToken::new("token"))
///     .with_endpoint(Endpoint::custom("http://127.0.0.1:8080/v1.0")?);
/// assert!(format!("{graph:?}").contains("[redacted]"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Graph<T> {
    endpoint: Endpoint,
    tokens: Arc<dyn TokenSource>,
    transport: T,
    #[cfg(feature = "driver")]
    retry: Option<RetryPolicy>,
    #[cfg(feature = "driver")]
    in_flight: Arc<InFlight>,
    /// Told right before each `recording` request is handed to the transport (the driver's
    /// hub), so that an outcome nobody waits for any more is still recognised.
    #[cfg(feature = "driver")]
    on_recording_sent: Option<Arc<RecordingSent>>,
    blocking: bool,
}

/// See [`Graph::on_recording_sent`](Graph).
#[cfg(feature = "driver")]
pub(crate) type RecordingSent = dyn Fn(&CallId, &str) -> SendGuard + Send + Sync;

/// Armed while a `recording` request's outcome may still be applied by Graph unseen: dropped
/// armed (the exchange was cancelled, or its outcome is unknown), it runs its action (the
/// driver files the request as abandoned, so a late completion surfaces).
#[cfg(feature = "driver")]
pub(crate) struct SendGuard(Option<Box<dyn FnOnce() + Send>>);

#[cfg(feature = "driver")]
impl SendGuard {
    pub(crate) fn new(on_drop: impl FnOnce() + Send + 'static) -> Self {
        Self(Some(Box::new(on_drop)))
    }

    /// The outcome is known (or the request was not applied): nothing to do on drop.
    fn disarm(&mut self) {
        self.0 = None;
    }
}

#[cfg(feature = "driver")]
impl Drop for SendGuard {
    fn drop(&mut self) {
        if let Some(action) = self.0.take() {
            action();
        }
    }
}

impl<T> Graph<T> {
    /// Graph v1.0 in the global cloud, reached through `transport` with a fixed `token`.
    pub fn new(transport: T, token: AccessToken) -> Self {
        Self::with_token_source(transport, Arc::new(token))
    }

    /// Graph v1.0 in the global cloud, with tokens from `tokens` (refreshed once after `401`).
    pub fn with_token_source(transport: T, tokens: Arc<dyn TokenSource>) -> Self {
        Self {
            endpoint: Endpoint::default(),
            tokens,
            transport,
            #[cfg(feature = "driver")]
            retry: None,
            #[cfg(feature = "driver")]
            in_flight: Arc::default(),
            #[cfg(feature = "driver")]
            on_recording_sent: None,
            blocking: false,
        }
    }

    /// Uses another endpoint (beta, a national cloud, an emulator).
    #[must_use]
    pub fn with_endpoint(mut self, endpoint: Endpoint) -> Self {
        self.endpoint = endpoint;
        self
    }

    /// Retries inside each transition as `policy` says (see the type's docs).
    #[cfg(feature = "driver")]
    #[must_use]
    pub fn with_retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = Some(policy);
        self
    }

    /// Tells `hook` before each `recording` request is sent (the driver's hub).
    #[cfg(feature = "driver")]
    pub(crate) fn with_recording_sent(mut self, hook: Arc<RecordingSent>) -> Self {
        self.on_recording_sent = Some(hook);
        self
    }

    /// The retry policy, if any.
    #[cfg(feature = "driver")]
    pub fn retry(&self) -> Option<&RetryPolicy> {
        self.retry.as_ref()
    }

    /// Replaces the token source with a fixed token.
    pub fn set_token(&mut self, token: AccessToken) {
        self.tokens = Arc::new(token);
    }

    /// The endpoint.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// The transport.
    pub fn transport(&self) -> &T {
        &self.transport
    }

    pub(crate) fn blocking(&self) -> Graph<Blocking<'_, T>> {
        Graph {
            endpoint: self.endpoint.clone(),
            tokens: self.tokens.clone(),
            transport: Blocking(&self.transport),
            #[cfg(feature = "driver")]
            retry: self.retry.clone(),
            #[cfg(feature = "driver")]
            in_flight: self.in_flight.clone(),
            #[cfg(feature = "driver")]
            on_recording_sent: self.on_recording_sent.clone(),
            blocking: true,
        }
    }
}

impl<T> fmt::Debug for Graph<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Graph");
        d.field("endpoint", &self.endpoint)
            .field("tokens", &self.tokens)
            .field("transport", &std::any::type_name::<T>());
        #[cfg(feature = "driver")]
        d.field("retry", &self.retry);
        d.finish()
    }
}

/// Per-call locks: one status request in flight per call, served in arrival order.
#[cfg(feature = "driver")]
#[derive(Default)]
pub(crate) struct InFlight {
    calls: std::sync::Mutex<Locks>,
}

/// The calls' locks, keyed by [`CallId`] (a reference-counted clone, compared by its
/// normalised form). Locks nobody holds or waits for are swept out once the map has doubled
/// since the last sweep, so it stays within twice the calls with requests in flight (and
/// [`Locks::SWEEP_MIN`]); swept locks are kept, up to [`Locks::SPARE`], for calls to come. A
/// lock nobody holds is unlocked, so keeping or reusing it is the same as making a new one, and
/// a request costs no allocation once the map has grown.
#[cfg(feature = "driver")]
#[derive(Default)]
struct Locks {
    map: std::collections::HashMap<CallId, Arc<tokio::sync::Mutex<()>>>,
    spare: Vec<Arc<tokio::sync::Mutex<()>>>,
    /// Sweep when the map holds this many.
    sweep_at: usize,
}

#[cfg(feature = "driver")]
impl Locks {
    const SWEEP_MIN: usize = 64;
    const SPARE: usize = 64;

    fn sweep(&mut self) {
        let spare = &mut self.spare;
        self.map.retain(|_, lock| {
            if Arc::strong_count(lock) > 1 {
                return true;
            }
            if spare.len() < Self::SPARE {
                spare.push(lock.clone());
            }
            false
        });
        self.sweep_at = (self.map.len() * 2).max(Self::SWEEP_MIN);
    }
}

#[cfg(feature = "driver")]
impl InFlight {
    async fn lock(&self, call: &CallId) -> tokio::sync::OwnedMutexGuard<()> {
        let lock = {
            let mut locks = self
                .calls
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if locks.map.len() >= locks.sweep_at {
                locks.sweep();
            }
            match locks.map.get(call) {
                Some(lock) => lock.clone(),
                None => {
                    let lock = locks.spare.pop().unwrap_or_default();
                    locks.map.insert(call.clone(), lock.clone());
                    lock
                }
            }
        };
        lock.lock_owned().await
    }

    /// How many locks the map holds (tests).
    #[cfg(test)]
    fn held(&self) -> usize {
        self.calls
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .map
            .len()
    }
}

/// What one status update came to.
#[derive(Debug)]
pub(crate) enum Sent {
    /// Graph answered (the last attempt's answer, after any retries).
    Answered(Outcome),
    /// No usable answer: the outcome is unknown.
    Lost(Error),
}

impl Sent {
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

/// Which recording episode an exchange belongs to.
#[derive(Clone, Copy)]
pub(crate) enum Scope<'l> {
    /// The call's current one: the caller holds the call's value.
    Any,
    /// A given episode, whose report must not be sent once a later episode of the call has
    /// begun (G7): checked, under the entry's lock, with each attempt's `RequestSent`. Only
    /// the driver sends such reports.
    #[cfg_attr(not(feature = "driver"), allow(dead_code))]
    Episode(&'l CallEntry, u64),
}

/// How many attempts an exchange may make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Attempts {
    /// As the graph's retry policy allows.
    Policy,
    /// One: best-effort reports after a failure must not hold the caller for another deadline.
    Once,
}

/// Sends one status update for `call`, retrying as `attempts` and the graph's policy allow,
/// auditing every attempt and answer. Each attempt gets its fresh `clientContext` and
/// `client-request-id`; the attempt that got the final answer is returned with it.
///
/// `Err` means nothing was sent at all (the token could not be used, or the audit sink failed
/// before the first attempt).
#[cfg(feature = "driver")]
pub(crate) async fn exchange_with<T: Transport>(
    graph: &Graph<T>,
    audit: &dyn AuditSink,
    call: &CallId,
    status: RecordingStatus,
    attempts: Attempts,
    scope: Scope<'_>,
) -> Result<(Sent, UpdateRequest), Error> {
    let exchanged = exchange_unrecorded(graph, audit, call, status, attempts, scope, None).await?;
    let (sent, update, _) = exchanged.record(audit, None);
    Ok((sent, update))
}

/// An exchange whose final answer is not yet in the trail: its `response_received` waits for
/// the caller to [`record`](Self::record) it, together with the event of the step the answer
/// leads to when nothing lies between them, in one [`AuditSink::record_batch`].
///
/// Until then the call's turn is held: no other request for the call is sent (and audited)
/// between this request and its answer.
#[must_use = "the answer must be recorded before it is acted on"]
pub(crate) struct Exchanged {
    pub(crate) sent: Sent,
    pub(crate) update: UpdateRequest,
    /// The final answer's `response_received`; `Some` exactly when `sent` is `Answered`.
    response: Option<AuditEvent>,
    #[cfg(feature = "driver")]
    _turn: tokio::sync::OwnedMutexGuard<()>,
}

impl Exchanged {
    /// Records the answer's `response_received` followed by `step`, the event of the step the
    /// answer leads to, with one batch: both are in the trail or neither is (with a sink that
    /// writes batches all or nothing, as the crate's do). A refusal turns the answer into
    /// [`Sent::Lost`] with the sink's error, exactly as a refused `response_received` alone
    /// did: the caller then takes the path of an answer it never got, and not `step`.
    ///
    /// Returns the outcome, the request, and `step` back if it is not in the trail (refused
    /// with the answer, or there was no answer to record it with): the caller records it
    /// alone if it must.
    pub(crate) fn record(
        self,
        audit: &dyn AuditSink,
        step: Option<AuditEvent>,
    ) -> (Sent, UpdateRequest, Option<AuditEvent>) {
        let Some(response) = self.response else {
            return (self.sent, self.update, step);
        };
        let Some(step) = step else {
            return match audit.record(&response) {
                Ok(()) => (self.sent, self.update, None),
                Err(e) => (Sent::Lost(e.into()), self.update, None),
            };
        };
        let batch = [response, step];
        match audit.record_batch(&batch) {
            Ok(()) => (self.sent, self.update, None),
            Err(e) => {
                let [_, step] = batch;
                (Sent::Lost(e.into()), self.update, Some(step))
            }
        }
    }
}

/// Writes the first attempt's `request_sent` (given to it) together with the event of the
/// step that leads to the request, when nothing lies between them: one
/// [`AuditSink::record_batch`], so both are in the trail or neither is, and the request is
/// sent only if they are. See [`exchange_unrecorded`].
pub(crate) type Opening<'o> = &'o mut (dyn FnMut(AuditEvent) -> Result<(), AuditError> + Send);

/// As [`exchange_with`], leaving the final answer's `response_received` unrecorded for the
/// caller (see [`Exchanged`]). Answers that are retried (throttling, a `401` before the token
/// is refreshed) are recorded before the retry.
///
/// With an `opening`, the first attempt's `request_sent` is written by it (with the step that
/// leads to the request) instead of alone; later attempts' are written alone. The opening runs
/// under the call's turn, once the token is in hand, right before the request leaves. If this
/// returns `Err`, nothing was sent and the opening either never ran or wrote nothing (with a
/// sink whose batches are all or nothing).
pub(crate) async fn exchange_unrecorded<T: Transport>(
    graph: &Graph<T>,
    audit: &dyn AuditSink,
    call: &CallId,
    status: RecordingStatus,
    attempts: Attempts,
    scope: Scope<'_>,
    mut opening: Option<Opening<'_>>,
) -> Result<Exchanged, Error> {
    let span = tracing::info_span!("update_recording_status", call_id = %call, %status);
    async {
        #[cfg(feature = "driver")]
        let turn = graph.in_flight.lock(call).await;
        // Called once, on the way out: the turn goes to the caller with the answer.
        let done = |sent, update, response| Exchanged {
            sent,
            update,
            response,
            #[cfg(feature = "driver")]
            _turn: turn,
        };
        let clock = Clock::start(graph.blocking);
        let mut retrying = Retrying::new(graph, attempts);
        let mut sent_any = false;
        loop {
            let attempt = retrying.next_attempt();
            let update = UpdateRequest::new(status);
            let token = match graph.tokens.token(retrying.refreshed()).await {
                Ok(t) => t,
                Err(e) if !sent_any => return Err(Error::Token(e)),
                Err(e) => return Ok(done(Sent::Lost(Error::Token(e)), update, None)),
            };
            let request = match update.to_http(&graph.endpoint, call, &token) {
                Ok(r) => r,
                Err(e) if !sent_any => return Err(e.into()),
                Err(e) => return Ok(done(Sent::Lost(e.into()), update, None)),
            };
            // One spelling per call in the trail (G7): the normalised id.
            let request_sent = AuditEvent::now(
                call.normalized(),
                AuditKind::RequestSent {
                    status,
                    client_context: update.client_context().as_str().to_owned(),
                    client_request_id: update.client_request_id().to_owned(),
                },
            );
            let opened = opening.take();
            let write = || match opened {
                Some(open) => open(request_sent),
                None => audit.record(&request_sent),
            };
            let audited = match scope {
                Scope::Any => write(),
                Scope::Episode(entry, episode) => match entry.within_episode(episode, write) {
                    Ok(audited) => audited,
                    Err(Superseded { current }) => {
                        let _ = record(
                            audit,
                            call,
                            AuditKind::ReportSuperseded {
                                status,
                                episode,
                                current_episode: current,
                            },
                        );
                        tracing::info!(episode, current, "report superseded by a later episode; not sent");
                        let error = Error::Superseded {
                            call_id: call.clone(),
                            episode,
                            current,
                        };
                        if sent_any {
                            return Ok(done(Sent::Lost(error), update, None));
                        }
                        return Err(error);
                    }
                },
            };
            if let Err(e) = audited {
                if sent_any {
                    return Ok(done(Sent::Lost(e.into()), update, None));
                }
                return Err(e.into());
            }
            sent_any = true;
            tracing::debug!(attempt, client_request_id = update.client_request_id(), "sending");
            let client_request_id = update.client_request_id().to_owned();
            // From here until the outcome is known, a cancelled or unknown `recording` request
            // is remembered by the driver's hub (G10).
            #[cfg(feature = "driver")]
            let mut sent_guard = graph
                .on_recording_sent
                .as_ref()
                .filter(|_| status == RecordingStatus::Recording)
                .map(|hook| hook(call, update.client_context().as_str()));
            let response = clock.send(graph, request, attempts).await;
            let response = match response {
                Ok(r) => r,
                Err(error) => {
                    let not_delivered = error.not_delivered;
                    let kind = if not_delivered {
                        TransportFailure::NotDelivered
                    } else if matches!(error.error, Error::Timeout) {
                        TransportFailure::Timeout
                    } else {
                        TransportFailure::OutcomeUnknown
                    };
                    let _ = record(
                        audit,
                        call,
                        AuditKind::TransportFailed {
                            client_request_id,
                            kind,
                            error: describe(&error.error, &token),
                        },
                    );
                    tracing::warn!(attempt, not_delivered, error = %error.error, "no response");
                    if let Next::RetryAfter(wait) = retrying.after_no_response(not_delivered, clock.elapsed()) {
                        // Not delivered: nothing for Graph to apply.
                        #[cfg(feature = "driver")]
                        if let Some(guard) = sent_guard.as_mut() {
                            guard.disarm();
                        }
                        clock.sleep(wait).await;
                        continue;
                    }
                    return Ok(done(Sent::Lost(error.error), update, None));
                }
            };
            let outcome = interpret_response(&response);
            // A definitive answer (the operation's own status, or a refusal): nothing unseen
            // can follow. 5xx and unreadable bodies stay unknown.
            #[cfg(feature = "driver")]
            if !matches!(outcome, Outcome::Unparseable { .. })
                && !matches!(&outcome, Outcome::GraphError(e) if e.status.is_server_error())
                && let Some(guard) = sent_guard.as_mut()
            {
                guard.disarm();
            }
            let (kind, operation_id, request_id) = summarize(&outcome);
            // One spelling per call in the trail (G7): the normalised id.
            let answered = AuditEvent::now(
                call.normalized(),
                AuditKind::ResponseReceived {
                    client_request_id,
                    http_status: response.status().as_u16(),
                    outcome: kind,
                    operation_id,
                    request_id,
                },
            );
            tracing::debug!(attempt, http_status = response.status().as_u16(), outcome = ?kind, "answered");
            let retry_after = response
                .headers()
                .get(http::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok());
            let next = retrying.after_answer(&outcome, retry_after, clock.elapsed());
            // An answer that is retried is in the trail before the retry.
            if next != Next::Done
                && let Err(e) = audit.record(&answered)
            {
                return Ok(done(Sent::Lost(e.into()), update, None));
            }
            match next {
                Next::RetryAfter(wait) => {
                    // Throttled: Graph did not apply it.
                    #[cfg(feature = "driver")]
                    if let Some(guard) = sent_guard.as_mut() {
                            guard.disarm();
                        }
                    tracing::info!(attempt, wait_ms = wait.as_millis() as u64, "throttled, retrying");
                    clock.sleep(wait).await;
                    continue;
                }
                Next::RefreshToken => {
                    tracing::info!(attempt, "401, refreshing the token once");
                    continue;
                }
                // The final answer: the caller records it, with the step it leads to.
                Next::Done => return Ok(done(Sent::Answered(outcome), update, Some(answered))),
            }
        }
    }
    .instrument(span)
    .await
}

/// An error and its sources, joined with `": "`, with the bearer token removed wherever a
/// transport may have echoed it.
fn describe(error: &Error, token: &AccessToken) -> String {
    let mut text = match error {
        // The variant's own words say only "transport failed"; its sources say why.
        Error::Transport(_) => String::new(),
        other => other.to_string(),
    };
    let mut source = std::error::Error::source(error);
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
    let secret = token.secret();
    if secret.len() >= 8 {
        text = text.replace(secret, "[redacted]");
    }
    text
}

pub(crate) fn record(
    audit: &dyn AuditSink,
    call: &CallId,
    kind: AuditKind,
) -> Result<(), crate::error::AuditError> {
    // One spelling per call in the trail (G7): the normalised id.
    audit.record(&AuditEvent::now(call.normalized(), kind))
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

struct SendError {
    error: Error,
    not_delivered: bool,
}

/// Time for one exchange: tokio's clock (so tests can pause it) in async use, the thread's in
/// the blocking twins.
enum Clock {
    #[cfg(feature = "driver")]
    Tokio(tokio::time::Instant),
    Thread(std::time::Instant),
}

impl Clock {
    fn start(blocking: bool) -> Self {
        #[cfg(feature = "driver")]
        if !blocking {
            return Self::Tokio(tokio::time::Instant::now());
        }
        let _ = blocking;
        Self::Thread(std::time::Instant::now())
    }

    fn elapsed(&self) -> Duration {
        match self {
            #[cfg(feature = "driver")]
            Self::Tokio(t) => t.elapsed(),
            Self::Thread(t) => t.elapsed(),
        }
    }

    async fn sleep(&self, wait: Duration) {
        match self {
            #[cfg(feature = "driver")]
            Self::Tokio(_) => tokio::time::sleep(wait).await,
            Self::Thread(_) => std::thread::sleep(wait),
        }
    }

    /// Sends through the transport; with a retry policy in async use, the attempt is bounded by
    /// what is left of the deadline, and running out is an ambiguous failure.
    async fn send<T: Transport>(
        &self,
        graph: &Graph<T>,
        request: HttpRequest,
        attempts: Attempts,
    ) -> Result<HttpResponse, SendError> {
        let lost = |e: T::Error| SendError {
            not_delivered: was_not_delivered(&e),
            error: Error::Transport(Box::new(e)),
        };
        #[cfg(feature = "driver")]
        if let (Self::Tokio(_), Some(policy)) = (self, &graph.retry) {
            let mut left = policy.deadline.saturating_sub(self.elapsed());
            if attempts == Attempts::Once {
                // A best-effort report after a failed transition: within a short grace, not a
                // deadline of its own.
                left = left.min(policy.report_grace);
            }
            return match tokio::time::timeout(left, graph.transport.send(request)).await {
                Ok(r) => r.map_err(lost),
                Err(_) => Err(SendError {
                    error: Error::Timeout,
                    not_delivered: false,
                }),
            };
        }
        let _ = attempts;
        graph.transport.send(request).await.map_err(lost)
    }
}

/// Adapts a [`BlockingTransport`] to [`Transport`]; the future is ready at once.
pub(crate) struct Blocking<'t, T>(&'t T);

impl<T: BlockingTransport + Sync> Transport for Blocking<'_, T> {
    type Error = T::Error;

    fn send(
        &self,
        request: HttpRequest,
    ) -> impl Future<Output = Result<HttpResponse, Self::Error>> + Send {
        std::future::ready(self.0.send_blocking(request))
    }
}

#[cfg(all(test, feature = "driver"))]
mod tests {
    use super::*;

    fn id(n: usize) -> CallId {
        CallId::new(format!("call-{n}")).unwrap()
    }

    #[tokio::test]
    async fn a_held_lock_survives_sweeps_and_is_shared_by_every_spelling() {
        let in_flight = InFlight::default();
        let held = in_flight.lock(&CallId::new("AB-CD").unwrap()).await;
        // Enough other calls to sweep several times.
        for n in 0..10 * Locks::SWEEP_MIN {
            drop(in_flight.lock(&id(n)).await);
        }
        let other_spelling = CallId::new("abcd").unwrap();
        let again = in_flight.lock(&other_spelling);
        tokio::pin!(again);
        assert!(
            futures_poll_once(again.as_mut()).is_none(),
            "a second request for the call must wait for the first"
        );
        drop(held);
        assert!(futures_poll_once(again.as_mut()).is_some());
    }

    #[tokio::test]
    async fn the_map_stays_bounded() {
        let in_flight = InFlight::default();
        for n in 0..10_000 {
            drop(in_flight.lock(&id(n)).await);
            assert!(in_flight.held() <= Locks::SWEEP_MIN, "{}", in_flight.held());
        }
        let ids: Vec<_> = (0..300).map(id).collect();
        let mut guards = Vec::new();
        for call in &ids {
            guards.push(in_flight.lock(call).await);
        }
        assert!(in_flight.held() <= 2 * 300 + Locks::SWEEP_MIN);
        drop(guards);
        for n in 0..1_000 {
            drop(in_flight.lock(&id(n)).await);
        }
        assert!(in_flight.held() <= 2 * 300);
    }

    fn futures_poll_once<F: Future>(f: std::pin::Pin<&mut F>) -> Option<F::Output> {
        let waker = std::task::Waker::noop();
        match f.poll(&mut std::task::Context::from_waker(waker)) {
            std::task::Poll::Ready(v) => Some(v),
            std::task::Poll::Pending => None,
        }
    }
}
