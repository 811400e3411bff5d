//! [`verify`]: replays a trail against the recording rule.

use std::collections::{BTreeSet, HashMap};

use super::{AuditEvent, AuditKind, ResponseKind};
use crate::state::CallState;
use crate::status::RecordingStatus;
use crate::types::normalize_id;

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
            | AuditKind::ReportSuperseded { .. }
            | AuditKind::TrailResumed { .. } => {}
        }
    }
    // Calls the trail speaks of (notification entries for unknown calls do not count).
    report.calls = calls
        .values()
        .filter(|c| c.state.is_some() || c.last_request.is_some())
        .count();
    Ok(report)
}
