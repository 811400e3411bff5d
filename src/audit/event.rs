//! [`AuditEvent`]: one audited step, and [`AuditKind`], what it records.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::protocol::CallState;
use crate::status::RecordingStatus;

/// One audited step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AuditEvent {
    /// When the step happened (UTC).
    pub at: DateTime<Utc>,
    /// The call, in its normalised form (lower case, no dashes; see
    /// [`CallId::normalized`](crate::CallId::normalized)), so that one call has one spelling.
    pub call_id: String,
    /// What happened.
    #[serde(flatten)]
    pub kind: AuditKind,
}

impl AuditEvent {
    /// A copy stamped no earlier than `last`, the time of the event before it in a trail: the
    /// sinks keep their trails in time order this way (two tasks each stamped an event, and
    /// the later stamp reached the sink first).
    pub(super) fn no_earlier_than(&self, last: Option<DateTime<Utc>>) -> Self {
        let mut event = self.clone();
        if let Some(last) = last {
            event.at = event.at.max(last);
        }
        event
    }

    /// An event stamped now.
    pub fn now(call_id: impl Into<String>, kind: AuditKind) -> Self {
        Self {
            at: Utc::now(),
            call_id: call_id.into(),
            kind,
        }
    }
}

/// What an [`AuditEvent`] records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
#[non_exhaustive]
pub enum AuditKind {
    /// An `updateRecordingStatus` request is about to be handed to the transport.
    RequestSent {
        /// The status reported.
        status: RecordingStatus,
        /// The request's `clientContext`.
        client_context: String,
        /// The request's `client-request-id`.
        client_request_id: String,
    },
    /// The transport returned a response.
    ResponseReceived {
        /// The `client-request-id` of the request answered.
        client_request_id: String,
        /// The HTTP status.
        http_status: u16,
        /// How the crate read it.
        outcome: ResponseKind,
        /// The operation id, if any.
        operation_id: Option<String>,
        /// Graph's `request-id` for this answer (its header; for an error without one, the
        /// envelope's `innerError`), on every answer that has one, 2xx included: with
        /// [`date`](Self::ResponseReceived::date) it is what Microsoft's side can match the
        /// acknowledgement against.
        request_id: Option<String>,
        /// The `client-request-id` the answer carried: Graph echoes the request's.
        #[serde(default)]
        echoed_client_request_id: Option<String>,
        /// The answer's `Date` header, as sent.
        #[serde(default)]
        date: Option<String>,
    },
    /// An operation update (from a notification) was handed to a pending call.
    OperationUpdate {
        /// The operation id in the update, if any.
        operation_id: Option<String>,
        /// The `clientContext` in the update, if any.
        client_context: Option<String>,
        /// The operation status, as received (`null` if missing).
        status: Option<String>,
        /// Whether the update was for the call's outstanding request.
        matched: bool,
        /// How the notification's webhook request was authenticated.
        via: String,
        /// Why it was not taken as about the request, when it was not (another request, ids
        /// that contradict each other, not a recording operation).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// An authenticated notification body was handed to the hub.
    NotificationAccepted {
        /// How the webhook request was authenticated.
        via: String,
        /// Operation updates routed to a waiting call.
        routed: usize,
        /// Entries not routed (not operations, unknown, duplicates).
        ignored: usize,
    },
    /// An operation update that no waiting call took.
    NotificationIgnored {
        /// The operation id in the update, if any.
        operation_id: Option<String>,
        /// The `clientContext` in the update, if any.
        client_context: Option<String>,
        /// The operation status, as received.
        status: Option<String>,
        /// Why it was not routed.
        reason: String,
    },
    /// A notification message already applied was delivered again (Graph resends with
    /// `X-Microsoft-Skype-Original-Message-ID`): acknowledged, not applied again. Not about a
    /// call.
    NotificationRedelivered {
        /// The resend's `X-Microsoft-Skype-Message-ID`, if any.
        message_id: Option<String>,
        /// Its `X-Microsoft-Skype-Original-Message-ID`, if any.
        original_message_id: Option<String>,
        /// How the webhook request was authenticated.
        via: String,
    },
    /// A `completed` arrived for a `recording` request whose call had given up waiting. The
    /// call is not promoted; the bot is told so it can report `notRecording` or `failed`.
    LateCompletion {
        /// The operation id, if known.
        operation_id: Option<String>,
        /// The `clientContext` of the abandoned request.
        client_context: String,
    },
    /// The transport returned no response.
    TransportFailed {
        /// The `client-request-id` of the request.
        client_request_id: String,
        /// Whether the request may have reached Graph.
        #[serde(default)]
        kind: TransportFailure,
        /// The transport's error and its sources, joined with `": "` (bearer tokens are
        /// removed).
        error: String,
    },
    /// The call changed state.
    Transition {
        /// The state left.
        from: CallState,
        /// The state entered.
        to: CallState,
        /// Why, in a few words.
        reason: String,
    },
    /// A retention capability was minted: media may be persisted through it from now on.
    RetentionStarted {
        /// The capability's number, unique within the call.
        capability: u64,
        /// `true` for an owned [`RetentionHandle`](crate::RetentionHandle), `false` for a
        /// borrowed [`Retention`](crate::Retention).
        owned: bool,
    },
    /// A retention capability ended (dropped); nothing more is persisted through it.
    RetentionEnded {
        /// The capability's number.
        capability: u64,
    },
    /// Leaving `Recording` began: the stop signal was raised and the drain started.
    DrainStarted {
        /// How many capabilities were alive.
        outstanding: usize,
    },
    /// The drain deadline passed with capabilities still alive; nothing was reported.
    DrainTimedOut {
        /// How many capabilities were still alive.
        outstanding: usize,
    },
    /// Retention was revoked without a drain (the call ended, or was dropped while
    /// recording). Every capability of the call is refused from here on, and no write was in
    /// flight when this was recorded (G8); the capabilities' own ends may follow.
    RetentionRevoked {
        /// How many capabilities were alive.
        outstanding: usize,
    },
    /// The sink reopened a trail whose last line was torn (power loss, full disk): the torn
    /// bytes are left where they were, and the trail resumes on a new line after them.
    TrailResumed {
        /// How many bytes the torn line had.
        torn_bytes: u64,
        /// The byte offset at which the torn line starts.
        offset: u64,
    },
    /// Graph notified that the call ended (`state: terminated`, or the call was deleted): its
    /// retention was revoked at once and no request is sent for it any more.
    CallTerminated {
        /// The `resultInfo` code, if any.
        code: Option<i64>,
        /// The `resultInfo` subcode, if any.
        subcode: Option<i64>,
        /// The `resultInfo` message, if any.
        message: Option<String>,
    },
    /// The driver's notification hub forgot something it remembered (its memory of early
    /// updates, abandoned or settled requests is bounded by bytes and time). An abandoned
    /// request it forgets is also surfaced to the bot for reconciliation.
    HubForgot {
        /// What: `early_update`, `abandoned_request` or `settled_request`.
        what: String,
        /// Why: expired, over budget, and what follows.
        reason: String,
    },
    /// The webhook's signing keys changed on a refresh (`webhook::JwksKeys`, feature `jwt`):
    /// from now on tokens signed with the added keys are accepted and those signed with the
    /// removed ones are refused. Not about a call.
    KeysRotated {
        /// Key ids newly published.
        added: Vec<String>,
        /// Key ids no longer published.
        removed: Vec<String>,
    },
    /// The driver's instance stopped (`Driver::shutdown`, feature `driver`): from the start of
    /// the shutdown every begin was refused, and every recording call it reached was stopped
    /// and reported. Not about a call (`call_id` empty). The trail is synced right after it,
    /// so a trail whose last instance event is this one was left by a clean stop.
    InstanceStopped {
        /// Recording calls the shutdown stopped whose `notRecording` Graph acknowledged.
        stopped: u64,
        /// `recording` requests the shutdown could not settle (pending at its deadline, or
        /// with their outcome unknown) whose `failed` Graph acknowledged.
        failed: u64,
        /// Reports that were not sent or not acknowledged.
        unreported: u64,
        /// Operations of the bot (begins, stops, reports) still running when the shutdown
        /// returned: 0 for a shutdown that settled everything in time.
        unsettled: u64,
    },
    /// A call an earlier run of the bot left `PendingRecording` or `Recording` (it crashed:
    /// the trail stops there) is closed by a later run, which reports it to Graph next
    /// (`Driver::recover`, feature `driver`). The capabilities the trail shows alive died with
    /// the crashed process: none of them can write any more.
    CallRecovered {
        /// The state the earlier run left the call in.
        state: CallState,
        /// The capabilities the trail shows alive when the earlier run stopped.
        capabilities: Vec<u64>,
        /// When the earlier run last wrote an event for the call: the latest moment it is
        /// known to have been alive for it.
        last_event_at: DateTime<Utc>,
    },
    /// A report of an earlier recording episode (an orphan's `notRecording`, a
    /// reconciliation) was not sent because a later episode of the call had begun (G7).
    ReportSuperseded {
        /// The status the report would have sent.
        status: RecordingStatus,
        /// The episode the report belonged to.
        episode: u64,
        /// The episode that had begun since.
        current_episode: u64,
    },
}

/// Why the transport returned no response, for the audit trail.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum TransportFailure {
    /// The request never left (connection refused, nothing written): retried with backoff.
    NotDelivered,
    /// The request may have reached Graph (reset, timeout after sending): outcome unknown.
    #[default]
    OutcomeUnknown,
    /// The transition's deadline passed while the request was in flight: outcome unknown.
    Timeout,
}

/// How a response was read, for the audit trail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ResponseKind {
    /// 2xx, operation `completed`.
    Completed,
    /// 2xx, operation not final yet.
    Pending,
    /// 2xx, operation `failed`.
    Failed,
    /// Non-2xx.
    GraphError,
    /// 2xx, body not understood.
    Unparseable,
}
