//! The four type-level states of a [`Call`](crate::Call). Their value-level names and the
//! transition table are in [`protocol`](crate::protocol).

use std::fmt;
use std::sync::Arc;

use crate::error::Error;
use crate::protocol::CallState;
use crate::retention::RetentionShared;
use crate::types::ClientContext;

pub(crate) mod sealed {
    /// Seals [`State`](super::State): only this crate's four states implement it.
    #[allow(unnameable_types)] // Sealed on purpose.
    pub trait Sealed {
        /// Called when the call ends without a transition (terminated or dropped).
        fn revoke(&mut self) {}
    }
}

/// A recording state of a [`Call`](crate::Call): [`NotRecording`], [`PendingRecording`],
/// [`Recording`] or [`Failed`]. Sealed: no other type can be a state.
pub trait State: sealed::Sealed + fmt::Debug + Send + Sync + 'static {
    /// The value-level name of this state.
    const STATE: CallState;
}

/// No recording is in progress; nothing may be persisted. The initial state, and the state
/// after a successful stop. Graph's `notRecording`.
#[derive(Debug)]
pub struct NotRecording {
    pub(crate) _priv: (),
}

/// A `recording` update was sent and its outcome is not known yet; nothing may be persisted.
/// This state is this crate's own: Graph has no name for it.
#[derive(Debug)]
pub struct PendingRecording {
    pub(crate) context: ClientContext,
    pub(crate) client_request_id: String,
    pub(crate) operation_id: Option<String>,
    /// The recording episode this request began.
    pub(crate) episode: u64,
}

/// Graph acknowledged `recording` as `completed`: media may be persisted, through retention
/// capabilities only. Graph's `recording`.
pub struct Recording {
    pub(crate) shared: Arc<RetentionShared>,
    pub(crate) armed: bool,
}

/// Recording could not start or broke; nothing may be persisted. Graph's `failed`.
#[derive(Debug)]
pub struct Failed {
    pub(crate) reason: Error,
    /// The `recording` attempt whose outcome is unknown (so Graph may still complete it).
    pub(crate) unsettled: Option<Box<Unsettled>>,
}

/// A `recording` attempt whose outcome is unknown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Unsettled {
    pub(crate) context: String,
    pub(crate) operation_id: Option<String>,
    pub(crate) episode: u64,
}

impl fmt::Debug for Recording {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Recording")
            .field("outstanding", &self.shared.outstanding())
            .finish()
    }
}

impl Drop for Recording {
    fn drop(&mut self) {
        if self.armed {
            tracing::warn!(
                call_id = %self.shared.call_id(),
                "a recording call was dropped without stop_recording or report_failure; \
                 retention is revoked and Graph still shows `recording`"
            );
            RetentionShared::orphaned(&self.shared);
        }
    }
}

impl sealed::Sealed for NotRecording {}
impl sealed::Sealed for PendingRecording {}
impl sealed::Sealed for Failed {}
impl sealed::Sealed for Recording {
    fn revoke(&mut self) {
        if self.armed {
            self.armed = false;
            self.shared.revoke();
        }
    }
}

impl State for NotRecording {
    const STATE: CallState = CallState::NotRecording;
}
impl State for PendingRecording {
    const STATE: CallState = CallState::PendingRecording;
}
impl State for Recording {
    const STATE: CallState = CallState::Recording;
}
impl State for Failed {
    const STATE: CallState = CallState::Failed;
}
