//! Errors. Every enum is `#[non_exhaustive]`; messages are lowercase; each variant's docs say
//! what the caller should do next.

use std::error::Error as StdError;
use std::fmt;

use thiserror::Error;

use crate::response::{GraphError, Operation, Permanent};
use crate::types::CallId;
// The id rules' errors live with the ids; named here too, with every other error.
pub use crate::types::{InvalidCallId, InvalidClientContext};

/// A base URL that cannot serve as a Graph [`Endpoint`](crate::Endpoint).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum InvalidEndpoint {
    /// Not an absolute URL with a host; pass e.g. `https://graph.microsoft.com/v1.0`.
    #[error("endpoint is not an absolute url with a host")]
    Malformed,
    /// The scheme is neither `https` nor `http`.
    #[error("endpoint scheme must be https")]
    Scheme,
    /// Plain `http` to a host that is not loopback would send the bearer token in clear text;
    /// use `https`.
    #[error("plain http is allowed only for loopback hosts")]
    PlainHttp,
    /// The URL carries `user:password@`; remove it.
    #[error("endpoint must not carry user info")]
    UserInfo,
    /// The URL carries a query or a fragment; remove it.
    #[error("endpoint must not carry a query or fragment")]
    QueryOrFragment,
}

/// The access token holds characters that cannot appear in an HTTP header (such as a newline).
/// Fetch a fresh token; the token itself is never printed.
#[derive(Clone, PartialEq, Eq, Error)]
#[error("access token cannot be sent in an authorization header")]
#[non_exhaustive]
pub struct InvalidToken(pub(crate) ());

impl fmt::Debug for InvalidToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("InvalidToken")
    }
}

/// Writing an audit event failed. The step it was recording did not happen.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum AuditError {
    /// The sink's storage failed; check the disk, then retry the step.
    #[error("audit sink i/o failed")]
    Io(#[from] std::io::Error),
    /// The event could not be serialized (should not happen with the shipped events).
    #[error("audit event could not be serialized")]
    Serialize(#[source] serde_json::Error),
    /// A line of a trail being read is not an audit event, and it is not torn bytes at the end
    /// of the trail or accounted for by a later `trail_resumed` line: the file was damaged or
    /// edited there. [`check_chain`](crate::audit::check_chain) says more.
    #[error("audit trail line {line} (byte {offset}) is not an audit event")]
    Malformed {
        /// The line, counted from 1.
        line: usize,
        /// The byte offset where the line starts.
        offset: u64,
    },
    /// Another sink (in this process or another) has the trail open. Close it first: two
    /// writers would break the trail's sequence and chain.
    #[error("audit trail is open in another sink")]
    InUse,
    /// A checkpoint witness refused a checkpoint, or it could not be made (see
    /// [`Witness`](crate::audit::Witness)). The events it covers are recorded: check the
    /// witness, then force a checkpoint
    /// ([`JsonLinesSink::checkpoint`](crate::audit::JsonLinesSink::checkpoint)).
    #[error("checkpoint witness failed")]
    Witness(#[source] Box<dyn std::error::Error + Send + Sync + 'static>),
}

/// Why a status update did not succeed, or why a call is [`Failed`](crate::Failed).
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum Error {
    /// The request could not be built; nothing was sent. Fetch a fresh token and retry.
    #[error(transparent)]
    InvalidToken(#[from] InvalidToken),
    /// The audit sink refused the event; nothing was sent. Fix the sink, then retry.
    #[error("audit trail could not be written")]
    Audit(#[from] AuditError),
    /// A string is not a Graph call id (see [`CallId`]); nothing was sent.
    #[error(transparent)]
    InvalidCallId(#[from] InvalidCallId),
    /// A string is not a valid `clientContext` (see [`ClientContext`](crate::ClientContext));
    /// nothing was sent.
    #[error(transparent)]
    InvalidClientContext(#[from] InvalidClientContext),
    /// The transport returned no response. Whether Graph applied the update is unknown: treat
    /// the update as not acknowledged.
    #[error("transport failed, outcome unknown")]
    Transport(#[source] Box<dyn StdError + Send + Sync + 'static>),
    /// The token source failed. Nothing was sent if this happened before the first attempt;
    /// fix the token source and retry.
    #[error("token source failed")]
    Token(#[source] crate::token::TokenError),
    /// The transition's deadline passed while a request was in flight. Whether Graph applied
    /// the update is unknown: treat it as not acknowledged.
    #[error("deadline passed while the request was in flight, outcome unknown")]
    Timeout,
    /// Graph answered with a non-2xx status. [`GraphError::permanent`] says whether retrying
    /// can help.
    #[error("{0}")]
    Graph(Box<GraphError>),
    /// Graph accepted the request but the operation ended `failed`; see its `resultInfo`.
    #[error("operation failed{}", result_suffix(.0))]
    OperationFailed(Box<Operation>),
    /// Graph answered 2xx with a body that is not an operation. The outcome is unknown.
    #[error("response body is not an operation ({} bytes), outcome unknown", .0.len())]
    Unparseable(Vec<u8>),
    /// Graph completed an operation whose `clientContext` is not the one sent, so it does not
    /// acknowledge this request. Treat as unknown; report `failed`.
    #[error("completed operation carries another client context")]
    ContextMismatch,
    /// The operation did not reach a final status before its deadline. The outcome is unknown:
    /// the bot must not retain media, and a late `completed` must be reconciled.
    #[error("operation still pending at its deadline, outcome unknown")]
    Abandoned,
    /// Retention capabilities were still alive when the drain deadline passed; no status was
    /// reported. End the media tasks (see
    /// [`RetentionHandle::stopping`](crate::RetentionHandle::stopping)) and stop again.
    #[error("{outstanding} retention capabilities still alive at the drain deadline")]
    DrainTimeout {
        /// How many capabilities were still alive.
        outstanding: usize,
    },
    /// The call has ended; no further request is sent for it.
    #[error("call has ended")]
    CallEnded,
    /// The bot reported that recording broke.
    #[error("recording failed: {0}")]
    Reported(String),
    /// A value for this call is already alive (under this or another spelling of its id): one
    /// Graph call has one [`Call`](crate::Call) value at a time. Use that value, or drop it
    /// and open the call again.
    #[error("call {call_id} is already open: one Graph call has one live value")]
    AlreadyOpen {
        /// The call.
        call_id: CallId,
    },
    /// A report of an earlier recording episode was not sent, because a later episode of the
    /// same call has begun (the bot began recording again): the later episode's own outcome
    /// now decides what Graph shows. Nothing to do; the trail records it as
    /// `report_superseded`.
    #[error(
        "nothing sent for call {call_id}: its recording episode (registry episode {episode}) was superseded by a later one (registry episode {current})"
    )]
    Superseded {
        /// The call.
        call_id: CallId,
        /// The episode the report belonged to, as the registry numbers episodes: one sequence
        /// for every call of a [`Calls`](crate::Calls), not the call's own 1, 2, …
        episode: u64,
        /// The episode that has begun since, numbered the same way.
        current: u64,
    },
    /// The instance is stopping ([`Driver::shutdown`](crate::driver::Driver::shutdown)):
    /// nothing was sent. A begin is refused; a call the shutdown has stopped (its retention
    /// revoked, `notRecording` reported by the shutdown) is not stopped again: end or drop the
    /// value.
    #[error("the instance is shutting down")]
    ShuttingDown,
}

impl Error {
    /// The permanent reason behind a Graph error, if there is one.
    pub fn permanent(&self) -> Option<Permanent> {
        match self {
            Self::Graph(e) => e.permanent(),
            _ => None,
        }
    }

    /// `true` when Graph refused the request outright (`400`, `403`, `404`, or a permanent
    /// cloud-communications code such as `8506`): nothing was accepted, so there is nothing to
    /// report `failed` for, and Graph would refuse that report too.
    pub fn is_refused_outright(&self) -> bool {
        match self {
            Self::Graph(e) => {
                matches!(e.status.as_u16(), 400 | 403 | 404) || e.permanent().is_some()
            }
            _ => false,
        }
    }

    /// `true` when Graph may or may not have applied the update (transport failure,
    /// unparseable body, 5xx, pending past the deadline).
    pub fn is_unknown_outcome(&self) -> bool {
        match self {
            Self::Transport(_) | Self::Unparseable(_) | Self::Abandoned | Self::Timeout => true,
            Self::Graph(e) => e.status.is_server_error(),
            _ => false,
        }
    }
}

fn result_suffix(op: &Operation) -> String {
    match &op.result_info {
        Some(info) => format!(
            " with code {} subcode {}",
            info.code.map_or_else(|| "-".to_owned(), |c| c.to_string()),
            info.subcode
                .map_or_else(|| "-".to_owned(), |c| c.to_string())
        ),
        None => String::new(),
    }
}
