//! The transitions of [`Call`], run over a [`Graph`]: each is its steps
//! ([`Call::start_recording`], [`Call::start_stop`], …) driven by [`Graph::run`], or by
//! [`Graph::run_blocking`] in its blocking twin.

use std::future::Future;
use std::time::Duration;

use super::Graph;
use crate::auth::Authenticated;
use crate::call::{Begin, Call, CanBegin, NotSent, StopError};
use crate::exchange::Step;
use crate::response::Operation;
use crate::state::{Failed, NotRecording, PendingRecording, Recording};
use crate::transport::{BlockingTransport, Transport};

impl<S: CanBegin> Call<S> {
    /// Reports `recording` to Graph (fresh `clientContext` and `client-request-id` per
    /// attempt). From `Failed` this is a retry, which needs its own acknowledgement.
    ///
    /// Only a 2xx whose operation is `completed` leads to [`Begin::Recording`]. The steps:
    /// [`start_recording`](Self::start_recording), then [`Graph::run`].
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
        let (defers, blocks) = self.audit_waits();
        graph
            .run(graph.ahead(defers, blocks, || self.start_recording())?)
            .await
    }

    /// The blocking twin of [`begin_recording`](Self::begin_recording): the same steps, run
    /// by [`Graph::run_blocking`]. Do not call it from async code.
    ///
    /// # Errors
    /// As [`begin_recording`](Self::begin_recording).
    pub fn begin_recording_blocking<T: BlockingTransport>(
        self,
        graph: &Graph<T>,
    ) -> Result<Begin, NotSent<S>> {
        graph.run_blocking(self.start_recording()?)
    }
}

impl Call<PendingRecording> {
    /// Applies an operation update (from a `commsNotification`).
    ///
    /// An update for another request, or one that is not final, leaves the call pending.
    /// `completed` leads to `Recording`; `failed` to `Failed` (reporting `failed` best effort).
    /// The steps: [`apply_operation`](Self::apply_operation), then [`Graph::run`] for the
    /// report.
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
        match self.apply_operation(proof, operation) {
            Step::Done(begin) => begin,
            Step::Next { update, .. } => graph.run(update).await,
        }
    }

    /// The blocking twin of [`handle_operation`](Self::handle_operation).
    pub fn handle_operation_blocking<T: BlockingTransport>(
        self,
        graph: &Graph<T>,
        proof: &Authenticated,
        operation: &Operation,
    ) -> Begin {
        match self.apply_operation(proof, operation) {
            Step::Done(begin) => begin,
            Step::Next { update, .. } => graph.run_blocking(update),
        }
    }

    /// Gives up waiting (the deadline passed): the outcome is unknown, so the call enters
    /// `Failed` and `failed` is reported best effort. The steps:
    /// [`give_up_waiting`](Self::give_up_waiting), then [`Graph::run`].
    ///
    /// # Cancellation
    /// Dropped while the `failed` report is in flight, the call is dropped and the report may
    /// or may not have been sent.
    pub async fn abandon<T: Transport>(self, graph: &Graph<T>) -> Call<Failed> {
        match self.give_up_waiting() {
            Step::Done(call) => call,
            Step::Next { update, .. } => graph.run(update).await,
        }
    }

    /// The blocking twin of [`abandon`](Self::abandon).
    pub fn abandon_blocking<T: BlockingTransport>(self, graph: &Graph<T>) -> Call<Failed> {
        match self.give_up_waiting() {
            Step::Done(call) => call,
            Step::Next { update, .. } => graph.run_blocking(update),
        }
    }
}

impl Call<Recording> {
    /// Stops recording: raises the stop signal, waits until every retention capability has
    /// ended (or `drain_deadline` completes, e.g. `tokio::time::sleep(…)`), and only then
    /// reports `notRecording`. The steps: [`start_stop`](Self::start_stop),
    /// [`drained`](crate::call::Draining::drained), then [`Graph::run`].
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
        let update = self.start_stop()?.drained(drain_deadline).await?;
        graph.run(update).await
    }

    /// The blocking twin of [`stop_recording`](Self::stop_recording), draining for at most
    /// `drain_timeout`.
    ///
    /// # Errors
    /// As [`stop_recording`](Self::stop_recording).
    pub fn stop_recording_blocking<T: BlockingTransport>(
        self,
        graph: &Graph<T>,
        drain_timeout: Duration,
    ) -> Result<Call<NotRecording>, StopError> {
        let update = self.start_stop()?.drained_blocking(drain_timeout)?;
        graph.run_blocking(update)
    }

    /// Recording broke: ends every capability (as [`stop_recording`](Self::stop_recording))
    /// and then reports `failed`. The steps:
    /// [`start_failure_report`](Self::start_failure_report),
    /// [`drained`](crate::call::Draining::drained), then [`Graph::run`].
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
        let update = self
            .start_failure_report(reason)?
            .drained(drain_deadline)
            .await?;
        graph.run(update).await
    }

    /// The blocking twin of [`report_failure`](Self::report_failure).
    ///
    /// # Errors
    /// As [`report_failure`](Self::report_failure).
    pub fn report_failure_blocking<T: BlockingTransport>(
        self,
        graph: &Graph<T>,
        reason: impl Into<String>,
        drain_timeout: Duration,
    ) -> Result<Call<Failed>, StopError> {
        let update = self
            .start_failure_report(reason)?
            .drained_blocking(drain_timeout)?;
        graph.run_blocking(update)
    }
}
