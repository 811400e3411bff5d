//! The four type-level states of a [`Call`](crate::Call), their value-level mirror
//! [`CallState`], and [`TRANSITIONS`], the protocol table the state diagram is drawn from.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::error::Error;
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

/// The value-level name of a call's state, for logs, audit events and maps. Not `Ord`: the
/// states have no order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub enum CallState {
    /// [`NotRecording`].
    NotRecording,
    /// [`PendingRecording`].
    PendingRecording,
    /// [`Recording`].
    Recording,
    /// [`Failed`].
    Failed,
    /// The call terminated; no further request is sent.
    Ended,
}

impl fmt::Display for CallState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NotRecording => "NotRecording",
            Self::PendingRecording => "PendingRecording",
            Self::Recording => "Recording",
            Self::Failed => "Failed",
            Self::Ended => "Ended",
        })
    }
}

/// One edge of the protocol: in state `from`, `event` (a method of
/// [`Call`](crate::Call) or an answer from Graph) leads to `to`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Transition {
    /// The state left.
    pub from: CallState,
    /// What happens.
    pub event: &'static str,
    /// The state entered.
    pub to: CallState,
}

const fn edge(from: CallState, event: &'static str, to: CallState) -> Transition {
    Transition { from, event, to }
}

/// Every edge the API offers, as in DESIGN.md's transition table.
///
/// `tests/protocol_spec.rs` holds the same protocol as a `#[typestate]` automaton whose every
/// edge calls the real API; a test checks that its edges are exactly this table's (from, to)
/// pairs, and another that the diagram it exports is the one in the crate docs.
pub const TRANSITIONS: &[Transition] = {
    use CallState::*;
    &[
        edge(NotRecording, "begin_recording: completed", Recording),
        edge(NotRecording, "begin_recording: running", PendingRecording),
        edge(NotRecording, "begin_recording: rejected or unknown", Failed),
        edge(PendingRecording, "handle_operation: completed", Recording),
        edge(
            PendingRecording,
            "handle_operation: not final",
            PendingRecording,
        ),
        edge(PendingRecording, "handle_operation: failed", Failed),
        edge(PendingRecording, "abandon: deadline passed", Failed),
        edge(
            Recording,
            "stop_recording: drained, acknowledged",
            NotRecording,
        ),
        edge(Recording, "stop_recording: drained, unacknowledged", Failed),
        edge(Recording, "drain deadline passed", Recording),
        edge(Recording, "report_failure: drained", Failed),
        edge(Failed, "begin_recording: completed", Recording),
        edge(Failed, "begin_recording: running", PendingRecording),
        edge(Failed, "begin_recording: rejected or unknown", Failed),
        edge(NotRecording, "end", Ended),
        edge(PendingRecording, "end", Ended),
        edge(Recording, "end: retention revoked", Ended),
        edge(Failed, "end", Ended),
    ]
};
