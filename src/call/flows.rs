//! What each transition does with the end of its requests: the answer written to the trail
//! with the state it leads to, and the next state (or the next request: the best-effort
//! `failed` report after a failure).

use std::time::Duration;

use super::{ACKNOWLEDGED, Begin, Call, CanBegin, NotSent, StopError};
use crate::error::Error;
use crate::exchange::{Concluded, Exchange, Finished, Flow, Prelude, Progress, Reply, Step};
use crate::protocol::CallState;
use crate::registry::CallEntry;
use crate::response::Outcome;
use crate::state::{Failed, NotRecording, PendingRecording, Recording, State, Unsettled};
use crate::status::RecordingStatus;
use crate::types::ClientContext;

/// Why a call leaves `Recording`.
#[derive(Debug)]
pub(crate) enum Leaving {
    /// `stop_recording`: report `notRecording`.
    Stop,
    /// `report_failure`: report `failed`, for this reason.
    Failure(String),
}

impl Leaving {
    pub(crate) fn status(&self) -> RecordingStatus {
        match self {
            Self::Stop => RecordingStatus::NotRecording,
            Self::Failure(_) => RecordingStatus::Failed,
        }
    }

    pub(crate) fn into_reason(self) -> String {
        match self {
            Self::Stop => String::new(),
            Self::Failure(reason) => reason,
        }
    }
}

/// A step of a transition's flow, as the flow's progress: the result, or the next phase on
/// the same exchange (which takes over the policy and hooks of the phase before).
fn progress<O>(step: Step<O>, exchange: &mut Exchange) -> Progress<O> {
    match step {
        Step::Done(out) => Progress::Done(out),
        Step::Next { update, .. } => {
            let (next, flow) = update.into_parts();
            exchange.continue_with(next);
            Progress::Again(flow)
        }
    }
}

fn begun_failed<S: State>(call: Call<Failed>) -> Result<Begin, NotSent<S>> {
    Ok(Begin::Failed(call))
}

/// `recording`, from `NotRecording` or `Failed`.
pub(crate) struct BeginFlow<S: State> {
    pub(crate) call: Call<S>,
    pub(crate) episode: u64,
}

impl<S: CanBegin> Flow<Result<Begin, NotSent<S>>> for BeginFlow<S> {
    fn entry(&self) -> &CallEntry {
        &self.call.claim.entry
    }

    fn finished(
        self: Box<Self>,
        exchange: &mut Exchange,
        finished: Finished,
    ) -> Progress<Result<Begin, NotSent<S>>> {
        let Self { call, episode } = *self;
        let concluded = match finished {
            Finished::Unsent(error) => {
                // Back where it was: the transition to `PendingRecording` is in the trail.
                call.forced(&crate::audit::AuditEvent::now(
                    call.id.normalized(),
                    crate::audit::AuditKind::Transition {
                        from: CallState::PendingRecording,
                        to: S::STATE,
                        reason: "request not sent".to_owned(),
                    },
                ));
                return Progress::Done(Err(NotSent { call, error }));
            }
            Finished::Sent(concluded) => concluded,
        };
        let (context, client_request_id) = match &concluded.update {
            Some(update) => (
                update.client_context().clone(),
                update.client_request_id().to_owned(),
            ),
            // Every sent phase keeps its last request; an empty context matches nothing.
            None => (ClientContext::fresh(), String::new()),
        };
        let pending = call.into_state(PendingRecording {
            context,
            client_request_id,
            operation_id: None,
            episode,
        });
        progress(answered(pending, concluded), exchange)
    }
}

/// Records the `recording` request's answer, with the transition to `Recording` when it
/// acknowledges the request (one batch: both or neither), and settles it.
fn answered<S: CanBegin>(
    mut pending: Call<PendingRecording>,
    concluded: Concluded,
) -> Step<Result<Begin, NotSent<S>>> {
    let acknowledged = matches!(
        &concluded.reply,
        Reply::Answered(Outcome::Completed { operation, .. })
            if operation.client_context.as_deref().is_none_or(|c| c == pending.client_context())
    );
    let transition = acknowledged.then(|| pending.transition(CallState::Recording, ACKNOWLEDGED));
    let outcome = match concluded.record(pending.sink(), transition).0 {
        // Lost, or the answer refused by the trail: as if it had not come.
        Reply::Lost(error) => return pending.fail_pending(error, begun_failed::<S>),
        Reply::Answered(outcome) => outcome,
    };
    let reason = match outcome {
        Outcome::Completed { operation, .. } if acknowledged => {
            pending.state.operation_id = operation.id;
            return Step::Done(Ok(Begin::Recording(pending.into_recording())));
        }
        Outcome::Pending { operation, .. } => {
            pending.state.operation_id = operation.and_then(|o| o.id);
            return Step::Done(Ok(Begin::Pending(pending)));
        }
        // Completed for another `clientContext`: not this request's acknowledgement.
        Outcome::Completed { .. } => Error::ContextMismatch,
        Outcome::Failed { operation } => Error::OperationFailed(Box::new(operation)),
        Outcome::GraphError(e) => Error::Graph(Box::new(e)),
        Outcome::Unparseable { body, .. } => Error::Unparseable(body),
    };
    pending.fail_pending(reason, begun_failed::<S>)
}

/// The best-effort `failed` report after a failure, and the transition to `Failed`.
pub(crate) struct FailFlow<X: State, O> {
    pub(crate) call: Call<X>,
    pub(crate) reason: Error,
    pub(crate) unsettled: Option<Box<Unsettled>>,
    pub(crate) wrap: fn(Call<Failed>) -> O,
}

impl<X: State, O: 'static> Flow<O> for FailFlow<X, O> {
    fn entry(&self) -> &CallEntry {
        &self.call.claim.entry
    }

    fn finished(self: Box<Self>, _: &mut Exchange, finished: Finished) -> Progress<O> {
        let Self {
            call,
            reason,
            unsettled,
            wrap,
        } = *self;
        // The answer and the transition are written together; the transition is forced, so
        // it is written alone if they are refused (or nothing was answered).
        let transition = call.transition(CallState::Failed, &reason.to_string());
        let unrecorded = match finished {
            Finished::Unsent(e) => {
                tracing::warn!(call_id = %call.id, error = %e, "could not report `failed`");
                Some(transition)
            }
            Finished::Sent(concluded) => {
                let (sent, unrecorded) = concluded.record(call.sink(), Some(transition));
                match sent {
                    Reply::Answered(Outcome::Completed { .. } | Outcome::Pending { .. }) => {}
                    Reply::Answered(outcome) => {
                        tracing::warn!(call_id = %call.id, ?outcome, "`failed` report not acknowledged");
                    }
                    Reply::Lost(e) => {
                        tracing::warn!(call_id = %call.id, error = %e, "could not report `failed`");
                    }
                }
                unrecorded
            }
        };
        if let Some(transition) = unrecorded {
            call.forced(&transition);
        }
        Progress::Done(wrap(call.into_state(Failed { reason, unsettled })))
    }
}

/// A stop that sends nothing, with nothing to drain, still took its first step: its signal
/// is written alone (best effort) and, once written, raised.
fn signal_alone(call: &Call<Recording>, exchange: &mut Exchange) {
    if let Some(Prelude { event, raises }) = exchange.take_prelude()
        && call.sink().record(&event).is_ok()
    {
        raises.raise_stop();
    }
}

fn unacknowledged(call: Call<Failed>) -> Result<Call<NotRecording>, StopError> {
    Err(StopError::Unacknowledged { call })
}

/// `notRecording`, once every capability has ended.
pub(crate) struct StopFlow {
    pub(crate) call: Call<Recording>,
}

impl Flow<Result<Call<NotRecording>, StopError>> for StopFlow {
    fn entry(&self) -> &CallEntry {
        &self.call.claim.entry
    }

    fn finished(
        self: Box<Self>,
        exchange: &mut Exchange,
        finished: Finished,
    ) -> Progress<Result<Call<NotRecording>, StopError>> {
        let mut call = self.call;
        let concluded = match finished {
            Finished::Unsent(error) => {
                signal_alone(&call, exchange);
                return Progress::Done(Err(call.still_recording(error)));
            }
            Finished::Sent(concluded) => concluded,
        };
        // Every capability has ended: none can be minted, and dropping the call revokes
        // nothing.
        call.state.armed = false;
        // An acknowledged answer is written with the transition it leads to: both or neither.
        let accepted = matches!(
            concluded.reply,
            Reply::Answered(Outcome::Completed { .. } | Outcome::Pending { .. })
        );
        let transition =
            accepted.then(|| call.transition(CallState::NotRecording, "notRecording reported"));
        let (sent, _) = concluded.record(call.sink(), transition);
        match sent.accepted() {
            Ok(()) => Progress::Done(Ok(call.into_state(NotRecording { _priv: () }))),
            // Refused by Graph, lost, or refused by the trail (with the transition).
            Err(reason) => progress(
                Step::Next {
                    update: call.fail(reason, None, unacknowledged),
                    after: Duration::ZERO,
                },
                exchange,
            ),
        }
    }
}

/// `failed`, once every capability has ended: recording broke.
pub(crate) struct FailureFlow {
    pub(crate) call: Call<Recording>,
    pub(crate) reason: String,
}

impl Flow<Result<Call<Failed>, StopError>> for FailureFlow {
    fn entry(&self) -> &CallEntry {
        &self.call.claim.entry
    }

    fn finished(
        self: Box<Self>,
        exchange: &mut Exchange,
        finished: Finished,
    ) -> Progress<Result<Call<Failed>, StopError>> {
        let Self { mut call, reason } = *self;
        let concluded = match finished {
            Finished::Unsent(error) => {
                signal_alone(&call, exchange);
                return Progress::Done(Err(call.still_recording(error)));
            }
            Finished::Sent(concluded) => concluded,
        };
        call.state.armed = false;
        // The answer and the (forced) transition are written together, or the transition
        // alone if they are refused.
        let transition = call.transition(CallState::Failed, &reason);
        let (sent, unrecorded) = concluded.record(call.sink(), Some(transition));
        if let Some(transition) = unrecorded {
            call.forced(&transition);
        }
        let reported = sent.accepted();
        let acknowledged = reported.is_ok();
        let failed = call.into_state(Failed {
            reason: match reported {
                Ok(()) => Error::Reported(reason),
                Err(e) => e,
            },
            unsettled: None,
        });
        Progress::Done(if acknowledged {
            Ok(failed)
        } else {
            Err(StopError::Unacknowledged { call: failed })
        })
    }
}
