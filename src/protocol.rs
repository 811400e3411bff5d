//! The recording protocol as values: [`CallState`], the value-level name of each state of a
//! [`Call`](crate::Call), and [`TRANSITIONS`], the table of every edge the API offers, which the
//! state diagram in the crate docs is drawn from.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The value-level name of a call's state, for logs, audit events and maps. Not `Ord`: the
/// states have no order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub enum CallState {
    /// [`NotRecording`](crate::NotRecording).
    NotRecording,
    /// [`PendingRecording`](crate::PendingRecording).
    PendingRecording,
    /// [`Recording`](crate::Recording).
    Recording,
    /// [`Failed`](crate::Failed).
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
/// `tests/core/protocol_spec.rs` holds the same protocol as a `#[typestate]` automaton whose every
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
