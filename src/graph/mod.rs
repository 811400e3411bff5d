//! The client: [`Graph<T>`](Graph), how status updates reach Graph (an [`Endpoint`], tokens, a
//! [`Transport`], a retry policy and a [`Timer`]), and the two thin loops that run a
//! transition's [steps](crate::exchange) over it: async ([`Graph::run`]) and blocking
//! ([`Graph::run_blocking`]). Both make the same retry and `Retry-After` decisions: the steps
//! make them.

#[cfg(test)]
mod tests;
mod timer;
mod transitions;

use std::fmt;
use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

pub use timer::{ThreadTimer, Timer};

use crate::audit::durable::deferring;
use crate::endpoint::Endpoint;
use crate::error::Error;
use crate::exchange::{NoAnswer, Output, StatusUpdate, Step};
use crate::retry::RetryPolicy;
use crate::token::{TokenError, TokenSource};
use crate::transport::{BlockingTransport, Transport};
use crate::types::AccessToken;

/// How to reach Graph: an [`Endpoint`], a token (fixed, or a [`TokenSource`]), a
/// [`Transport`] (async, or a [`BlockingTransport`]), a retry policy, and a [`Timer`] for the
/// async loop's waits.
///
/// Without a retry policy every status request is sent exactly once. With one
/// ([`Graph::with_retry`]), throttling (`429`, `503`) is retried honouring `Retry-After`,
/// failures before the request left are retried with backoff, a `401` refreshes the token once,
/// and everything stays under the policy's deadline; ambiguous failures (`5xx`, timeouts, resets
/// after sending) are never retried. The same policy holds async and blocking.
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
    retry: Option<RetryPolicy>,
    timer: Arc<dyn Timer>,
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
            retry: None,
            timer: Arc::new(ThreadTimer),
        }
    }

    /// Uses another endpoint (beta, a national cloud, an emulator).
    #[must_use]
    pub fn with_endpoint(mut self, endpoint: Endpoint) -> Self {
        self.endpoint = endpoint;
        self
    }

    /// Retries inside each transition as `policy` says (see the type's docs).
    #[must_use]
    pub fn with_retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = Some(policy);
        self
    }

    /// Waits and reads the time with `timer` in the async loop (default [`ThreadTimer`], which
    /// needs no runtime; the driver uses tokio's clock).
    #[must_use]
    pub fn with_timer(mut self, timer: Arc<dyn Timer>) -> Self {
        self.timer = timer;
        self
    }

    /// The retry policy, if any.
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

    /// The timer of the async loop.
    pub fn timer(&self) -> &Arc<dyn Timer> {
        &self.timer
    }

    /// The token source.
    pub fn tokens(&self) -> &Arc<dyn TokenSource> {
        &self.tokens
    }

    /// Runs `step`, which may write to an audit sink: in place, or, if the sink's writes wait
    /// for its storage (`blocks`), through the timer's [`Timer::blocking`].
    pub(crate) fn offload<R>(&self, blocks: bool, step: impl FnOnce() -> R) -> R {
        if !blocks {
            return step();
        }
        let mut step = Some(step);
        let mut out = None;
        self.timer.blocking(&mut || {
            if let Some(step) = step.take() {
                out = Some(step());
            }
        });
        match (out, step) {
            (Some(out), _) => out,
            // The timer did not run it: run it here.
            (None, Some(step)) => step(),
            (None, None) => unreachable!("a step that ran has an output"),
        }
    }

    /// Runs `step`, a transition's first write, whose request is the transition's next write
    /// to the same sink (`start_recording`'s transition to `PendingRecording`). With a sink
    /// that [`defers`](crate::audit::AuditSink::defers), the step returns once its lines are
    /// with the OS, and their sync is waited for with the request's `request_sent`: one sync
    /// covers every line written before it, and nothing outside the process happens between
    /// the two. Otherwise as [`offload`](Self::offload).
    pub(crate) fn ahead<R>(&self, defers: bool, blocks: bool, step: impl FnOnce() -> R) -> R {
        if defers {
            let (out, _covered_by_the_request) = deferring(step);
            return out;
        }
        self.offload(blocks, step)
    }

    /// Runs `step`, a step that writes to the trail and leads to a result or to another
    /// attempt. With a sink that [`defers`](crate::audit::AuditSink::defers), its lines go to
    /// the OS and their sync is awaited before what it leads to happens (holding no thread);
    /// if that sync fails, the trail stopped, and what the step led to does not happen: a
    /// result becomes the transition the trail refused ([`Output`]), another attempt gives up.
    /// Otherwise as [`offload`](Self::offload).
    ///
    /// Dropped while it waits, the step has happened in memory and its lines are synced all
    /// the same: dropping the result drops the call in it (a `Call<Recording>` is revoked).
    pub(crate) async fn settle<O: Output>(
        &self,
        defers: bool,
        blocks: bool,
        step: impl FnOnce() -> Step<O>,
    ) -> Step<O> {
        if !defers {
            return self.offload(blocks, step);
        }
        let (step, pending) = deferring(step);
        match (pending.await, step) {
            (Ok(()), step) => step,
            (Err(e), Step::Done(out)) => Step::Done(out.unrecorded(e)),
            (Err(e), Step::Next { update, .. }) => {
                update.give_up(Error::Audit(e), self.timer.now())
            }
        }
    }

    /// `update` with the graph's retry policy, unless it has one of its own.
    pub fn prepare_update<O>(&self, update: StatusUpdate<O>) -> StatusUpdate<O> {
        match &self.retry {
            Some(policy) if !update.has_retry() => update.with_retry(policy.clone()),
            _ => update,
        }
    }
}

impl<T> fmt::Debug for Graph<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Graph")
            .field("endpoint", &self.endpoint)
            .field("tokens", &self.tokens)
            .field("transport", &std::any::type_name::<T>())
            .field("retry", &self.retry)
            .field("timer", &self.timer)
            .finish()
    }
}

/// What the loops do after a step.
enum Then<O> {
    Attempt(StatusUpdate<O>, Duration),
    Return(O),
}

impl<O> From<Step<O>> for Then<O> {
    fn from(step: Step<O>) -> Self {
        match step {
            Step::Next { update, after } => Self::Attempt(update, after),
            Step::Done(out) => Self::Return(out),
        }
    }
}

impl<T: Transport> Graph<T> {
    /// Runs `update` to its result: each attempt's token from the token source (a fresh one
    /// after a `401`), its request through the transport, bounded by what is left of the retry
    /// policy's deadline (measured with the [`Timer`]), and the waits the steps ask for.
    ///
    /// At a synced trail that [`defers`](crate::audit::AuditSink::defers) (a
    /// [`JsonLinesSink`](crate::audit::JsonLinesSink) at `Durability::Synced`), a request's
    /// `request_sent` and an answer's lines are written to the OS, and their sync is awaited
    /// before the request is sent and before the answer's result is returned; no thread waits
    /// meanwhile. If that sync fails, the trail stops (see the sink's docs): the request is not
    /// sent (the attempt ends as one whose event the trail refused), and a result comes back as
    /// the transition the trail refused ([`exchange::Output`](crate::exchange::Output)).
    ///
    /// # Cancellation
    /// Dropping the future drops the update and the call inside it. Dropped before a request
    /// left, nothing more is sent; dropped while one is in flight, Graph may or may not apply
    /// it, and the trail shows the request with no answer (the driver remembers such
    /// `recording` requests; this loop does not). Dropped while a request waits for its line's
    /// sync, the request is not sent, but its line is synced all the same: the trail shows it as
    /// a request in flight, which is what the driver assumes too. A `Call<Recording>` dropped
    /// this way is revoked at once.
    pub async fn run<O: Output>(&self, update: StatusUpdate<O>) -> O {
        let mut update = self.prepare_update(update);
        // Steps that write to a sink waiting on its storage leave the executor's thread to
        // others meanwhile (`Timer::blocking`); at a sink that defers, a request's
        // `request_sent` and an answer's lines are awaited instead, before they take effect.
        let (defers, blocks) = update.audit_waits();
        loop {
            let token = match self.tokens.token(update.wants_fresh_token()).await {
                Ok(token) => token,
                Err(e) => {
                    let now = self.timer.now();
                    match self
                        .offload(blocks, || update.give_up(Error::Token(e), now))
                        .into()
                    {
                        Then::Attempt(next, after) => {
                            self.pause(after).await;
                            update = next;
                            continue;
                        }
                        Then::Return(out) => return out,
                    }
                }
            };
            let now = self.timer.now();
            let prepare = || update.prepare_with(&self.endpoint, token, now, defers);
            let prepared = if defers {
                prepare()
            } else {
                self.offload(blocks, prepare)
            };
            let prepared = match prepared {
                Ok((mut sent, request)) => match sent.durable() {
                    // The request leaves only once its `request_sent` is durable.
                    Some(pending) => match pending.await {
                        Ok(()) => Ok((sent, request)),
                        Err(e) => Err(self.offload(blocks, || sent.withheld(e))),
                    },
                    None => Ok((sent, request)),
                },
                Err(step) => Err(step),
            };
            let (sent, request) = match prepared {
                Ok(attempt) => attempt,
                Err(step) => match step.into() {
                    Then::Attempt(next, after) => {
                        self.pause(after).await;
                        update = next;
                        continue;
                    }
                    Then::Return(out) => return out,
                },
            };
            let answer = match sent.timeout(self.timer.now()) {
                Some(left) => race(self.transport.send(request), self.timer.sleep(left)).await,
                None => Some(self.transport.send(request).await),
            };
            let now = self.timer.now();
            let answered = || match answer {
                Some(Ok(response)) => sent.answer(&response, now),
                Some(Err(error)) => sent.no_answer(NoAnswer::Failed(Box::new(error)), now),
                None => sent.no_answer(NoAnswer::TimedOut, now),
            };
            let step = self.settle(defers, blocks, answered).await;
            match step.into() {
                Then::Attempt(next, after) => {
                    self.pause(after).await;
                    update = next;
                }
                Then::Return(out) => return out,
            }
        }
    }

    async fn pause(&self, after: Duration) {
        if !after.is_zero() {
            self.timer.sleep(after).await;
        }
    }
}

impl<T: BlockingTransport> Graph<T> {
    /// [`run`](Self::run) on this thread: the same steps and decisions, the waits slept by the
    /// thread, each request as long as the transport takes (give the transport a timeout).
    /// Do not call it from async code.
    pub fn run_blocking<O>(&self, update: StatusUpdate<O>) -> O {
        let mut update = self.prepare_update(update);
        loop {
            let token = match block_on_token(&*self.tokens, update.wants_fresh_token()) {
                Ok(token) => token,
                Err(e) => match update
                    .give_up(Error::Token(e), std::time::Instant::now())
                    .into()
                {
                    Then::Attempt(next, after) => {
                        std::thread::sleep(after);
                        update = next;
                        continue;
                    }
                    Then::Return(out) => return out,
                },
            };
            let (sent, request) =
                match update.prepare(&self.endpoint, token, std::time::Instant::now()) {
                    Ok(attempt) => attempt,
                    Err(step) => match step.into() {
                        Then::Attempt(next, after) => {
                            std::thread::sleep(after);
                            update = next;
                            continue;
                        }
                        Then::Return(out) => return out,
                    },
                };
            let answer = self.transport.send_blocking(request);
            let now = std::time::Instant::now();
            let step = match answer {
                Ok(response) => sent.answer(&response, now),
                Err(error) => sent.no_answer(NoAnswer::Failed(Box::new(error)), now),
            };
            match step.into() {
                Then::Attempt(next, after) => {
                    std::thread::sleep(after);
                    update = next;
                }
                Then::Return(out) => return out,
            }
        }
    }
}

/// The first of `work` and `timeout` to complete: `None` if the timeout did.
async fn race<W: Future, D: Future<Output = ()>>(work: W, timeout: D) -> Option<W::Output> {
    let mut work = pin!(work);
    let mut timeout = pin!(timeout);
    std::future::poll_fn(|cx| {
        if let Poll::Ready(out) = work.as_mut().poll(cx) {
            return Poll::Ready(Some(out));
        }
        match timeout.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    })
    .await
}

struct Unpark(std::thread::Thread);

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
}

/// A token from an async [`TokenSource`], on this thread: the blocking loop's only future
/// (a fixed token is ready at once; a source that does I/O wakes the thread when done).
fn block_on_token(tokens: &dyn TokenSource, refresh: bool) -> Result<AccessToken, TokenError> {
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut future = tokens.token(refresh);
    loop {
        if let Poll::Ready(token) = future.as_mut().poll(&mut cx) {
            return token;
        }
        std::thread::park();
    }
}
