//! What each transition's result becomes when the trail loses the lines of the step that made
//! it (a sync failed before they were durable): the transition the trail refused. See
//! [`Output`](crate::exchange::Output).

use super::{Begin, Call, CanBegin, NotSent, StopError};
use crate::error::{AuditError, Error};
use crate::exchange::unrecorded::Unrecorded;
use crate::protocol::CallState;
use crate::state::{Failed, NotRecording, PendingRecording, Recording, State, Unsettled};

impl<S: State> Call<S> {
    /// Enters `Failed` because the trail lost the step that made this state; the transition is
    /// written best effort (the trail stopped, so it is refused, and logged).
    fn unrecorded_into_failed(
        self,
        error: AuditError,
        unsettled: Option<Box<Unsettled>>,
    ) -> Call<Failed> {
        let reason = Error::Audit(error);
        self.transition_audit(
            CallState::Failed,
            &format!("trail lost the last step: {reason}"),
        );
        self.into_state(Failed { reason, unsettled })
    }
}

impl Call<Recording> {
    /// No capability was minted yet (the result is fresh from its step): none can be now.
    fn unrecorded(mut self, error: AuditError) -> Call<Failed> {
        use crate::state::sealed::Sealed as _;
        self.state.revoke();
        self.unrecorded_into_failed(error, None)
    }
}

impl Call<PendingRecording> {
    /// Graph may still complete the request: the call keeps what recognises it.
    fn unrecorded(self, error: AuditError) -> Call<Failed> {
        let unsettled = Box::new(Unsettled {
            context: self.state.context.as_str().to_owned(),
            operation_id: self.state.operation_id.clone(),
            episode: self.state.episode,
        });
        self.unrecorded_into_failed(error, Some(unsettled))
    }
}

impl Unrecorded for Begin {
    fn unrecorded(self, error: AuditError) -> Self {
        match self {
            Self::Recording(call) => Self::Failed(call.unrecorded(error)),
            Self::Pending(call) => Self::Failed(call.unrecorded(error)),
            failed @ Self::Failed(_) => failed,
        }
    }
}

impl<S: CanBegin> Unrecorded for Result<Begin, NotSent<S>> {
    fn unrecorded(self, error: AuditError) -> Self {
        self.map(|begin| begin.unrecorded(error))
    }
}

impl Unrecorded for Call<Failed> {
    fn unrecorded(self, _: AuditError) -> Self {
        self
    }
}

impl Unrecorded for Result<Call<NotRecording>, StopError> {
    /// As when the trail refuses the stop's answer: `Failed`, unacknowledged.
    fn unrecorded(self, error: AuditError) -> Self {
        self.and_then(|call| {
            Err(StopError::Unacknowledged {
                call: call.unrecorded_into_failed(error, None),
            })
        })
    }
}

impl Unrecorded for Result<Call<Failed>, StopError> {
    fn unrecorded(self, _: AuditError) -> Self {
        self
    }
}
