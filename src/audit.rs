//! The audit trail: every attempt, response, transition and retention start/end as an
//! [`AuditEvent`], delivered to an injected [`AuditSink`] *before* the step it records goes on.
//!
//! Two sinks ship: [`MemorySink`] (tests, short-lived tools) and [`JsonLinesSink`] (one JSON
//! object per line, written and flushed per event). [`verify`] replays a trail and proves the
//! policy's ordering: a completed `recording` acknowledgement before the first retention, and
//! every retention ended before the end of recording is reported.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::AuditError;
use crate::state::CallState;
use crate::status::RecordingStatus;
use crate::types::normalize_id;

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
        /// Graph's `request-id`, if any.
        request_id: Option<String>,
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
        /// The transport's error message.
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

/// Where audit events go. Implementations must persist (or at least accept) the event before
/// returning `Ok`: the crate proceeds with the step only afterwards.
pub trait AuditSink: Send + Sync + fmt::Debug {
    /// Records one event.
    ///
    /// # Errors
    /// Any failure to record; the step the event describes is then not taken, where it can be.
    fn record(&self, event: &AuditEvent) -> Result<(), AuditError>;
}

impl<T: AuditSink + ?Sized> AuditSink for Arc<T> {
    fn record(&self, event: &AuditEvent) -> Result<(), AuditError> {
        (**self).record(event)
    }
}

/// Keeps events in memory.
///
/// # Example
/// ```
/// use recording_status::audit::{AuditEvent, AuditKind, AuditSink, MemorySink};
///
/// let sink = MemorySink::default();
/// sink.record(&AuditEvent::now("c1", AuditKind::RetentionEnded { capability: 1 }))?;
/// assert_eq!(sink.events().len(), 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Default)]
pub struct MemorySink {
    events: Mutex<Vec<AuditEvent>>,
}

impl MemorySink {
    /// A copy of the events so far, in order.
    pub fn events(&self) -> Vec<AuditEvent> {
        self.events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl AuditSink for MemorySink {
    fn record(&self, event: &AuditEvent) -> Result<(), AuditError> {
        self.events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(event.clone());
        Ok(())
    }
}

/// Appends events to a file, one JSON object per line. Each event is written and flushed to
/// the operating system before [`AuditSink::record`] returns, so a crash of the bot loses no
/// event whose step went ahead; [`JsonLinesSink::with_fsync`] also syncs to disk, for power
/// loss.
#[derive(Debug)]
pub struct JsonLinesSink {
    file: Mutex<BufWriter<File>>,
    fsync: bool,
}

impl JsonLinesSink {
    /// Opens `path` for appending, creating it if needed.
    ///
    /// # Errors
    /// The file cannot be opened.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, AuditError> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(Self {
            file: Mutex::new(BufWriter::new(file)),
            fsync: false,
        })
    }

    /// Also `fsync` after each event (slower; survives power loss).
    #[must_use]
    pub fn with_fsync(mut self, fsync: bool) -> Self {
        self.fsync = fsync;
        self
    }

    /// Reads a JSON-lines trail back.
    ///
    /// # Errors
    /// The file cannot be read, or a line is not an [`AuditEvent`].
    pub fn read(path: impl AsRef<Path>) -> Result<Vec<AuditEvent>, AuditError> {
        let text = std::fs::read_to_string(path)?;
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).map_err(AuditError::from))
            .collect()
    }
}

impl AuditSink for JsonLinesSink {
    fn record(&self, event: &AuditEvent) -> Result<(), AuditError> {
        let mut line = serde_json::to_vec(event)?;
        line.push(b'\n');
        let mut file = self.file.lock().unwrap_or_else(PoisonError::into_inner);
        file.write_all(&line)?;
        file.flush()?;
        if self.fsync {
            file.get_ref().sync_data()?;
        }
        Ok(())
    }
}

/// A breach of the recording policy found in an audit trail by [`verify`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("event {index} of call {call_id}: {rule}")]
#[non_exhaustive]
pub struct Violation {
    /// The position of the offending event in the trail.
    pub index: usize,
    /// The call.
    pub call_id: String,
    /// The rule broken, in words.
    pub rule: String,
}

/// What [`verify`] counted in a trail that holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Verified {
    /// Distinct calls with a request or a transition in the trail.
    pub calls: usize,
    /// Events checked.
    pub events: usize,
    /// Retention capabilities started.
    pub retentions: usize,
}

#[derive(Default)]
struct CallReplay {
    state: Option<CallState>,
    last_request: Option<(RecordingStatus, String)>,
    completed_ack: bool,
    live: BTreeSet<u64>,
    seen: BTreeSet<u64>,
    /// Capabilities revoked while alive: they cannot write, so they no longer hold the call
    /// in `Recording`, but their own ends may still follow.
    revoked: BTreeSet<u64>,
}

/// Replays a trail and checks, per call:
///
/// 1. entering `Recording` follows a `recording` request whose response (or notification) was
///    `completed`;
/// 2. a retention capability starts only while the call is `Recording`, and only once;
/// 3. a capability ends only after it started;
/// 4. no `notRecording`/`failed` request is sent, and `Recording` is not left, while a
///    capability is alive.
///
/// # Errors
/// The first [`Violation`] found.
pub fn verify(events: &[AuditEvent]) -> Result<Verified, Violation> {
    let mut calls: HashMap<String, CallReplay> = HashMap::new();
    let mut report = Verified {
        events: events.len(),
        ..Verified::default()
    };
    for (index, e) in events.iter().enumerate() {
        let fail = |rule: &str| Violation {
            index,
            call_id: e.call_id.clone(),
            rule: rule.to_owned(),
        };
        // One call, one identity, whatever spelling a line uses (G7).
        let c = calls.entry(normalize_id(&e.call_id)).or_default();
        match &e.kind {
            AuditKind::RequestSent {
                status,
                client_request_id,
                ..
            } => {
                if *status != RecordingStatus::Recording && !c.live.is_empty() {
                    return Err(fail("end of recording reported while retention is alive"));
                }
                c.last_request = Some((*status, client_request_id.clone()));
                c.completed_ack = false;
            }
            AuditKind::ResponseReceived {
                client_request_id,
                outcome,
                ..
            } => {
                if *outcome == ResponseKind::Completed
                    && c.last_request.as_ref().is_some_and(|(s, id)| {
                        *s == RecordingStatus::Recording && id == client_request_id
                    })
                {
                    c.completed_ack = true;
                }
            }
            AuditKind::OperationUpdate {
                status, matched, ..
            } => {
                if *matched
                    && status
                        .as_deref()
                        .is_some_and(|s| s.eq_ignore_ascii_case("completed"))
                    && c.last_request
                        .as_ref()
                        .is_some_and(|(s, _)| *s == RecordingStatus::Recording)
                {
                    c.completed_ack = true;
                }
            }
            AuditKind::Transition { from, to, .. } => {
                if *to == CallState::Recording && !c.completed_ack {
                    return Err(fail(
                        "entered recording without a completed recording acknowledgement",
                    ));
                }
                if *from == CallState::Recording
                    && *to != CallState::Recording
                    && !c.live.is_empty()
                {
                    return Err(fail("left recording while retention is alive"));
                }
                c.state = Some(*to);
            }
            AuditKind::RetentionStarted { capability, .. } => {
                if c.state != Some(CallState::Recording) {
                    return Err(fail("retention started outside recording"));
                }
                if !c.seen.insert(*capability) {
                    return Err(fail("retention capability started twice"));
                }
                c.live.insert(*capability);
                report.retentions += 1;
            }
            AuditKind::RetentionEnded { capability } => {
                if !c.live.remove(capability) && !c.revoked.remove(capability) {
                    return Err(fail("retention ended that was not alive"));
                }
            }
            AuditKind::RetentionRevoked { .. } => {
                // Revocation ends the right to write of every live capability, with no write
                // in flight (G8); the handles' own ends may follow.
                let live = std::mem::take(&mut c.live);
                c.revoked.extend(live);
                c.state = Some(CallState::Ended);
            }
            AuditKind::TransportFailed { .. }
            | AuditKind::NotificationAccepted { .. }
            | AuditKind::NotificationIgnored { .. }
            | AuditKind::LateCompletion { .. }
            | AuditKind::DrainStarted { .. }
            | AuditKind::DrainTimedOut { .. }
            | AuditKind::ReportSuperseded { .. } => {}
        }
    }
    // Calls the trail speaks of (notification entries for unknown calls do not count).
    report.calls = calls
        .values()
        .filter(|c| c.state.is_some() || c.last_request.is_some())
        .count();
    Ok(report)
}
