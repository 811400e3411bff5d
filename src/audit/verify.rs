//! [`verify`]: replays a trail against the recording rule.
//!
//! The verifier trusts nothing a line says about itself that it can work out from the lines
//! before it: calls are keyed by their normalised id (one call, whatever its spelling), an
//! acknowledgement is re-derived from the last `recording` request's own response or from an
//! operation update whose ids agree with that request (the update's `matched` flag is never
//! taken as a reason to accept), and an acknowledgement unlocks `Recording` once.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use chrono::{DateTime, Utc};

use super::{AuditEvent, AuditKind, ResponseKind};
use crate::auth::AuthMethod;
use crate::protocol::CallState;
use crate::status::RecordingStatus;
use crate::types::normalize_id;

/// A rule of the recording policy that a trail can break. [`verify`] names the first one broken
/// in one trail; [`verify_instances`](super::verify_instances) also names
/// [`LiveInTwoInstances`](Self::LiveInTwoInstances), which only several trails read together
/// can break. The rules of the chain ([`ChainBroken`](Self::ChainBroken),
/// [`Unchained`](Self::Unchained), [`Unkeyed`](Self::Unkeyed)) are about a trail's bytes, not
/// its events: [`check_chain`](super::check_chain) finds a broken chain, and an auditor's
/// policy (the command-line auditor's by default) refuses a trail without a chain or without a
/// key; [`verify`] never returns them.
///
/// [`code`](Self::code) is a stable short form, for tools and dashboards; `Display` says it in
/// words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Rule {
    /// G1: the call entered `Recording` without an unused, completed acknowledgement of its
    /// last `recording` request (a `completed` response to that very request, or an operation
    /// update whose ids agree with it). Each acknowledgement unlocks `Recording` once.
    RecordingWithoutAcknowledgement,
    /// G1: a retention capability started while the call was not `Recording`.
    RetentionOutsideRecording,
    /// G2: a retention capability started after the end of recording (`notRecording` or
    /// `failed`) was reported.
    RetentionAfterEndReported,
    /// G2: `notRecording` or `failed` was reported while a retention capability was alive.
    EndReportedWhileRetentionAlive,
    /// G2: the call left `Recording` while a retention capability was alive and not revoked.
    LeftRecordingWhileRetentionAlive,
    /// G4: a capability number was started twice for one call.
    CapabilityStartedTwice,
    /// G4: a capability ended that was not alive (never started, or already ended).
    CapabilityEndedWithoutStart,
    /// G7: one call held by two instances of the bot at overlapping times, each in its own
    /// trail (see [`verify_instances`](super::verify_instances) for what holding means).
    /// [`verify`] never returns it: one trail cannot break it. The evidence is an
    /// [`Overlap`](super::Overlap), not a [`Violation`], because it spans two trails.
    LiveInTwoInstances,
    /// G9: an event is stamped earlier than the line before it. A sink stamps each line under
    /// its lock, never earlier than the line before (across reopenings of its file too), so
    /// time order is line order; a line stamped earlier was edited or inserted, and with it
    /// the order in time of a request, its answer and the step they lead to.
    TimeGoesBack,
    /// G9: the trail's hash chain breaks (see [`check_chain`](super::check_chain) and
    /// [`BreakKind`](super::BreakKind)): a line edited, deleted, inserted or reordered.
    ChainBroken,
    /// G9: lines without `seq` and `chain`: the whole trail, or lines before its chain. An
    /// unchained line can be added, edited or removed without a trace. Older trails (written
    /// before the chain existed) have them; an auditor may accept them, knowingly.
    Unchained,
    /// G9: the chain was checked without a key (plain SHA-256), which anyone who can write the
    /// file can recompute. An auditor may accept it, knowingly.
    Unkeyed,
    /// G9/G12: the trail ends before the `seq` of a signed checkpoint the witness holds: it
    /// was cut after the checkpoint was witnessed (see
    /// [`check_checkpoints`](super::check_checkpoints)).
    CheckpointTruncated,
    /// G9/G12: the trail's line at a signed checkpoint's `seq` has another chain value: the
    /// trail was rewritten and rechained after the checkpoint was witnessed (by whoever holds
    /// the chain's key, if any), or the checkpoint is of another trail of the same name.
    CheckpointContradicted,
    /// G9/G12: a checkpoint whose signature does not verify under the auditor's key: signed
    /// by another key, or altered. It proves nothing, and the auditor should ask why it is
    /// there (or whether the key is the right one).
    CheckpointUnverified,
    /// G9/G12: a checkpoint of another trail (another origin) among this trail's.
    CheckpointForeign,
}

impl Rule {
    /// The rule in a stable short form: the guarantee it belongs to and a slug, e.g.
    /// `G1/recording-without-ack`.
    pub fn code(self) -> &'static str {
        match self {
            Self::RecordingWithoutAcknowledgement => "G1/recording-without-ack",
            Self::RetentionOutsideRecording => "G1/retention-outside-recording",
            Self::RetentionAfterEndReported => "G2/retention-after-end-reported",
            Self::EndReportedWhileRetentionAlive => "G2/end-reported-while-retention-alive",
            Self::LeftRecordingWhileRetentionAlive => "G2/left-recording-while-retention-alive",
            Self::CapabilityStartedTwice => "G4/capability-started-twice",
            Self::CapabilityEndedWithoutStart => "G4/capability-ended-without-start",
            Self::LiveInTwoInstances => "G7/live-in-two-instances",
            Self::TimeGoesBack => "G9/time-goes-back",
            Self::ChainBroken => "G9/chain",
            Self::Unchained => "G9/unchained",
            Self::Unkeyed => "G9/unkeyed",
            Self::CheckpointTruncated => "G9/checkpoint-truncated",
            Self::CheckpointContradicted => "G9/checkpoint-contradicted",
            Self::CheckpointUnverified => "G9/checkpoint-unverified",
            Self::CheckpointForeign => "G9/checkpoint-foreign",
        }
    }

    /// The rule in words.
    pub fn words(self) -> &'static str {
        match self {
            Self::RecordingWithoutAcknowledgement => {
                "entered recording without an unused completed acknowledgement of its last \
                 recording request"
            }
            Self::RetentionOutsideRecording => "retention started outside recording",
            Self::RetentionAfterEndReported => {
                "retention started after the end of recording was reported"
            }
            Self::EndReportedWhileRetentionAlive => {
                "end of recording reported while retention is alive"
            }
            Self::LeftRecordingWhileRetentionAlive => "left recording while retention is alive",
            Self::CapabilityStartedTwice => "retention capability started twice",
            Self::CapabilityEndedWithoutStart => "retention capability ended that was not alive",
            Self::LiveInTwoInstances => "live in two instances at overlapping times",
            Self::TimeGoesBack => "stamped earlier than the line before it",
            Self::ChainBroken => "the hash chain is broken",
            Self::Unchained => "lines without the hash chain",
            Self::Unkeyed => "the hash chain is not keyed",
            Self::CheckpointTruncated => "the trail ends before a signed checkpoint of it",
            Self::CheckpointContradicted => "the trail contradicts a signed checkpoint of it",
            Self::CheckpointUnverified => "a checkpoint not signed by the auditor's key",
            Self::CheckpointForeign => "a checkpoint of another trail",
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.words(), self.code())
    }
}

/// A breach of the recording policy found in an audit trail by [`verify`]: which line, which
/// call, which rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {} (event {index}), call {call_id}: {rule}", self.line())]
#[non_exhaustive]
pub struct Violation {
    /// The position of the offending event in the trail (0-based).
    pub index: usize,
    /// The call, normalised (lower case, no dashes), whatever spelling the line used. A
    /// `String`, like [`AuditEvent::call_id`](super::AuditEvent::call_id): a trail being
    /// verified may hold ids that are not valid [`CallId`](crate::CallId)s (it may be forged),
    /// and the verifier must still name them.
    pub call_id: String,
    /// The rule broken.
    pub rule: Rule,
}

impl Violation {
    /// The 1-based line number of the offending event, for a JSON-lines trail with one event
    /// per line and no blank lines: `index + 1`.
    pub fn line(&self) -> usize {
        self.index + 1
    }
}

/// What [`verify`] found in a trail that holds.
///
/// A trail that holds may still be cut short (the bot crashed, the file was copied while the
/// bot ran): [`open`](Self::open) lists the calls it leaves waiting for Graph or recording, and
/// the capabilities still alive, so a cut trail is never mistaken for a complete one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Verified {
    /// Distinct calls with a request or a transition in the trail.
    pub calls: usize,
    /// Events checked.
    pub events: usize,
    /// Retention capabilities started.
    pub retentions: usize,
    /// Calls the trail leaves `PendingRecording` or `Recording`, or with a capability alive,
    /// sorted by call id. Empty for a complete trail.
    pub open: Vec<OpenCall>,
    /// Calls an earlier run left open (it crashed) that a later run closed
    /// (`call_recovered`), in trail order: told apart from calls left open, which are in
    /// [`open`](Self::open).
    pub recovered: Vec<RecoveredCall>,
    /// Every entry into `Recording` acknowledged by a notification whose webhook request this
    /// crate did not authenticate (the `danger_authenticated_elsewhere` escape hatch), in trail
    /// order.
    pub unauthenticated: Vec<Unauthenticated>,
}

impl Verified {
    /// Whether the trail leaves no call open: nothing pending, recording, or alive.
    pub fn is_complete(&self) -> bool {
        self.open.is_empty()
    }
}

/// A call that a trail leaves open (see [`Verified::open`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct OpenCall {
    /// The call, normalised.
    pub call_id: String,
    /// The state the trail leaves it in.
    pub state: CallState,
    /// Retention capabilities started, not ended and not revoked: media may still be persisted
    /// through them.
    pub live: Vec<u64>,
    /// When the trail's last event for the call was written.
    pub last_event_at: DateTime<Utc>,
}

/// A call left open by a crashed run and closed by a later one (see [`Verified::recovered`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RecoveredCall {
    /// The call, normalised.
    pub call_id: String,
    /// The state the crashed run left it in.
    pub state: CallState,
    /// The position of the `call_recovered` event.
    pub index: usize,
    /// Whether the recovering run then reported `notRecording` or `failed` for it (the report
    /// was sent; its answer is in the trail).
    pub reported: bool,
}

/// An entry into `Recording` acknowledged by a notification that this crate did not
/// authenticate (see [`Verified::unauthenticated`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Unauthenticated {
    /// The call, normalised.
    pub call_id: String,
    /// The position of the transition into `Recording`.
    pub index: usize,
    /// The position of the operation update that acknowledged it.
    pub update: usize,
    /// How the bot said the webhook request was authenticated (`elsewhere: …`).
    pub via: String,
}

/// The last request sent for a call.
struct Request {
    status: RecordingStatus,
    client_context: String,
    client_request_id: String,
    /// For a `recording` request: the operation id of its response, if any.
    operation_id: Option<String>,
}

/// Where an unused acknowledgement came from.
enum Ack {
    Response,
    Update { index: usize, via: String },
}

#[derive(Default)]
struct CallReplay {
    state: Option<CallState>,
    last_request: Option<Request>,
    /// A completed acknowledgement of the last `recording` request, not yet used: reset by
    /// every request and every transition, used up by entering `Recording`.
    ack: Option<Ack>,
    /// `notRecording` or `failed` was sent since the call last entered `Recording`.
    end_reported: bool,
    live: BTreeSet<u64>,
    seen: BTreeSet<u64>,
    /// Capabilities revoked while alive: they cannot write, so they no longer hold the call
    /// in `Recording`, but their own ends may still follow.
    revoked: BTreeSet<u64>,
    /// The call's last event.
    last_at: Option<DateTime<Utc>>,
    /// Its entry in [`Verified::recovered`] while a report of the recovery may follow.
    recovered: Option<usize>,
}

impl CallReplay {
    /// Whether an operation update is about the last `recording` request, re-derived as
    /// [`Call::is_for_this_request`](crate::Call::is_for_this_request) decides it: both ids
    /// present must agree (operation ids compared normalised), and at least one must match.
    fn is_for_last_recording(
        &self,
        operation_id: Option<&str>,
        client_context: Option<&str>,
    ) -> bool {
        let Some(request) = self
            .last_request
            .as_ref()
            .filter(|r| r.status == RecordingStatus::Recording)
        else {
            return false;
        };
        let id = match (&request.operation_id, operation_id) {
            (Some(mine), Some(theirs)) => Some(normalize_id(mine) == normalize_id(theirs)),
            _ => None,
        };
        let context = client_context.map(|c| c == request.client_context);
        match (id, context) {
            (Some(false), _) | (_, Some(false)) | (None, None) => false,
            (Some(true), _) | (_, Some(true)) => true,
        }
    }
}

/// Replays a trail and checks, per call (keyed by normalised id, so that every spelling of a
/// call's id is the same call):
///
/// 1. entering `Recording` uses up a completed acknowledgement of the call's last `recording`
///    request, re-derived from the trail: a `completed` response to that request's
///    `client-request-id`, or a `completed` operation update whose operation id (normalised)
///    and `clientContext` agree with that request, at least one of them present (the update's
///    `matched` flag is never a reason to accept; an update the crate marked as not matching
///    is not an acknowledgement either). Any later request or transition discards it;
/// 2. a retention capability starts only while the call is `Recording`, before the end of
///    recording was reported, and each capability number only once;
/// 3. a capability ends only while it is alive (or revoked);
/// 4. no `notRecording`/`failed` request is sent, and `Recording` is not left, while a
///    capability is alive and not revoked;
/// 5. no event is stamped earlier than the one before it (equal is fine): the sink stamps
///    under its lock, so the order the rule needs by line (a `recording` request, its answer,
///    the entry into `Recording`, the first retention) is also the order in time. The check
///    runs over the whole trail, across `trail_resumed` and the runs of a bot appended to one
///    file: a sink reopening a file stamps its lines no earlier than the file's last line, so
///    even a clock stepped back across a restart does not make time go back in the trail.
///
/// The result lists the calls the trail leaves open and the entries into `Recording` that
/// this crate did not authenticate.
///
/// # Errors
/// The first [`Violation`]: the event's index, the call and the [`Rule`].
///
/// # Example
/// ```
/// use recording_status::audit::{AuditEvent, AuditKind, Rule, verify};
/// use recording_status::CallState;
///
/// let forged = [AuditEvent::now(
///     "57dab8b1894c409ab240bd8beae78896",
///     AuditKind::Transition {
///         from: CallState::PendingRecording,
///         to: CallState::Recording,
///         reason: "no acknowledgement at all".into(),
///     },
/// )];
/// let violation = verify(&forged).unwrap_err();
/// assert_eq!((violation.line(), violation.rule), (1, Rule::RecordingWithoutAcknowledgement));
/// ```
pub fn verify(events: &[AuditEvent]) -> Result<Verified, Violation> {
    // How the trail writes `AuthMethod::BotFrameworkJwt` in `via`. Any other `via` (the
    // `elsewhere: …` of `danger_authenticated_elsewhere`, or text this version does not know)
    // was not checked by this crate.
    let checked_by_this_crate = AuthMethod::BotFrameworkJwt.to_string();
    let mut calls: BTreeMap<String, CallReplay> = BTreeMap::new();
    let mut report = Verified {
        events: events.len(),
        ..Verified::default()
    };
    let mut previous_at: Option<DateTime<Utc>> = None;
    for (index, e) in events.iter().enumerate() {
        // One call, one identity, whatever spelling a line uses (G7).
        let call_id = normalize_id(&e.call_id);
        let fail = |rule| Violation {
            index,
            call_id: call_id.clone(),
            rule,
        };
        if previous_at.is_some_and(|at| e.at < at) {
            return Err(fail(Rule::TimeGoesBack));
        }
        previous_at = Some(e.at);
        let c = calls.entry(call_id.clone()).or_default();
        c.last_at = Some(e.at);
        match &e.kind {
            AuditKind::RequestSent {
                status,
                client_context,
                client_request_id,
            } => {
                if *status != RecordingStatus::Recording {
                    if !c.live.is_empty() {
                        return Err(fail(Rule::EndReportedWhileRetentionAlive));
                    }
                    c.end_reported = true;
                    if let Some(recovered) = c.recovered.take() {
                        report.recovered[recovered].reported = true;
                    }
                } else {
                    c.recovered = None;
                }
                c.last_request = Some(Request {
                    status: *status,
                    client_context: client_context.clone(),
                    client_request_id: client_request_id.clone(),
                    operation_id: None,
                });
                c.ack = None;
            }
            AuditKind::ResponseReceived {
                client_request_id,
                outcome,
                operation_id,
                ..
            } => {
                if let Some(request) = c.last_request.as_mut().filter(|r| {
                    r.status == RecordingStatus::Recording
                        && r.client_request_id == *client_request_id
                }) {
                    request.operation_id.clone_from(operation_id);
                    if *outcome == ResponseKind::Completed {
                        c.ack = Some(Ack::Response);
                    }
                }
            }
            AuditKind::OperationUpdate {
                operation_id,
                client_context,
                status,
                matched,
                via,
                ..
            } => {
                let completed = status
                    .as_deref()
                    .is_some_and(|s| s.eq_ignore_ascii_case("completed"));
                if completed
                    && *matched
                    && c.is_for_last_recording(operation_id.as_deref(), client_context.as_deref())
                {
                    c.ack = Some(Ack::Update {
                        index,
                        via: via.clone(),
                    });
                }
            }
            AuditKind::Transition { to, .. } => {
                let ack = c.ack.take();
                let recording = c.state == Some(CallState::Recording);
                if *to == CallState::Recording && !recording {
                    match ack {
                        None => return Err(fail(Rule::RecordingWithoutAcknowledgement)),
                        Some(Ack::Update { index: update, via })
                            if via != checked_by_this_crate =>
                        {
                            report.unauthenticated.push(Unauthenticated {
                                call_id: call_id.clone(),
                                index,
                                update,
                                via,
                            });
                        }
                        Some(_) => {}
                    }
                    c.end_reported = false;
                }
                if recording && *to != CallState::Recording && !c.live.is_empty() {
                    return Err(fail(Rule::LeftRecordingWhileRetentionAlive));
                }
                c.state = Some(*to);
            }
            AuditKind::RetentionStarted { capability, .. } => {
                if c.state != Some(CallState::Recording) {
                    return Err(fail(Rule::RetentionOutsideRecording));
                }
                if c.end_reported {
                    return Err(fail(Rule::RetentionAfterEndReported));
                }
                if !c.seen.insert(*capability) {
                    return Err(fail(Rule::CapabilityStartedTwice));
                }
                c.live.insert(*capability);
                report.retentions += 1;
            }
            AuditKind::RetentionEnded { capability } => {
                if !c.live.remove(capability) && !c.revoked.remove(capability) {
                    return Err(fail(Rule::CapabilityEndedWithoutStart));
                }
            }
            AuditKind::RetentionRevoked { .. } => {
                // Revocation ends the right to write of every live capability, with no write
                // in flight (G8); the handles' own ends may follow. Only these capabilities
                // are revoked: a later episode's are alive until they end or are revoked.
                let live = std::mem::take(&mut c.live);
                c.revoked.extend(live);
                c.ack = None;
                c.state = Some(CallState::Ended);
            }
            AuditKind::CallRecovered { .. } => {
                // The crashed process's capabilities died with it: none can write. Only a call
                // the trail leaves open counts as recovered.
                let open = matches!(
                    c.state,
                    Some(CallState::PendingRecording | CallState::Recording)
                ) || !c.live.is_empty();
                if open {
                    let live = std::mem::take(&mut c.live);
                    c.revoked.extend(live);
                    report.recovered.push(RecoveredCall {
                        call_id: call_id.clone(),
                        state: c.state.unwrap_or(CallState::NotRecording),
                        index,
                        reported: false,
                    });
                    c.recovered = Some(report.recovered.len() - 1);
                    c.ack = None;
                    c.state = Some(CallState::Ended);
                }
            }
            AuditKind::TransportFailed { .. }
            | AuditKind::NotificationAccepted { .. }
            | AuditKind::NotificationRedelivered { .. }
            | AuditKind::NotificationIgnored { .. }
            | AuditKind::LateCompletion { .. }
            | AuditKind::DrainStarted { .. }
            | AuditKind::DrainTimedOut { .. }
            | AuditKind::ReportSuperseded { .. }
            | AuditKind::TrailResumed { .. }
            | AuditKind::KeysRotated { .. }
            | AuditKind::InstanceStopped { .. }
            | AuditKind::HubForgot { .. }
            | AuditKind::CallTerminated { .. } => {}
        }
    }
    // Calls the trail speaks of (notification entries for unknown calls do not count).
    report.calls = calls
        .values()
        .filter(|c| c.state.is_some() || c.last_request.is_some())
        .count();
    report.open = calls
        .into_iter()
        .filter_map(|(call_id, c)| {
            let state = c.state?;
            let open = matches!(state, CallState::PendingRecording | CallState::Recording);
            (open || !c.live.is_empty()).then(|| OpenCall {
                call_id,
                state,
                live: c.live.into_iter().collect(),
                last_event_at: c.last_at.unwrap_or_default(),
            })
        })
        .collect();
    Ok(report)
}
