//! The rule's checkpoints in one call's events, each with its gaps as numbers computed from
//! the events' timestamps, and the call's own verification.
//!
//! The two checkpoints of the rule:
//!
//! - **G1**, at each entry into `Recording`: how long after the `recording` request its
//!   completed acknowledgement came, how long after that the call entered `Recording`, and how
//!   long after the acknowledgement its first capability started; and, at a capability started
//!   outside `Recording`, that nothing allowed it.
//! - **G2**, at each `notRecording` or `failed` report: how long before it the last
//!   capability of the episode ended (or was revoked), or which capability was still alive.
//!
//! A gap is a violation when its two events are in the wrong order: in the trail's lines, or
//! by their clocks (a negative gap). The words say which way round they are rather than
//! printing a minus sign.

use chrono::{DateTime, Utc};

use super::svg::duration;
use crate::audit::{AuditEvent, AuditKind, ResponseKind, Rule, verify};
use crate::protocol::CallState;
use crate::status::RecordingStatus;
use crate::types::normalize_id;

/// One call's events, with their positions in the trail.
#[derive(Debug)]
pub(super) struct CallEvents<'a> {
    /// The call, normalised.
    pub(super) key: String,
    /// Its events, in trail order, each with its index in the trail.
    pub(super) events: Vec<(usize, &'a AuditEvent)>,
}

impl CallEvents<'_> {
    /// The earliest and the latest instant of the call's events (not the first and last
    /// lines: a trail whose time goes back is drawn all the same).
    pub(super) fn bounds(&self) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
        let min = self.events.iter().map(|(_, e)| e.at).min()?;
        let max = self.events.iter().map(|(_, e)| e.at).max()?;
        Some((min, max))
    }
}

/// The events of `call` (any spelling of its id).
pub(super) fn of_call<'a>(events: &'a [AuditEvent], call: &str) -> CallEvents<'a> {
    let key = normalize_id(call);
    let events = events
        .iter()
        .enumerate()
        .filter(|(_, e)| normalize_id(&e.call_id) == key)
        .collect();
    CallEvents { key, events }
}

/// Every call of the trail, in order of first appearance; events without a call (a
/// notification body's acceptance, an instance's stop) belong to none.
pub(super) fn calls(events: &[AuditEvent]) -> Vec<CallEvents<'_>> {
    let mut order: Vec<CallEvents<'_>> = Vec::new();
    let mut position = std::collections::BTreeMap::new();
    for (index, e) in events.iter().enumerate() {
        if e.call_id.is_empty() {
            continue;
        }
        let key = normalize_id(&e.call_id);
        let at = *position.entry(key.clone()).or_insert_with(|| {
            order.push(CallEvents {
                key,
                events: Vec::new(),
            });
            order.len() - 1
        });
        order[at].events.push((index, e));
    }
    order
}

/// One written gap of a checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Gap {
    /// The gap in words, with its number.
    pub(super) text: String,
    /// Whether it breaks the rule.
    pub(super) violation: bool,
}

impl Gap {
    fn holds(text: String) -> Self {
        Self {
            text,
            violation: false,
        }
    }

    fn breaks(text: String) -> Self {
        Self {
            text,
            violation: true,
        }
    }

    /// `later` must not come before `earlier`: `"{what} {d} after {since}"`, or, when the
    /// clocks say otherwise, `"{what} {d} before {since} by the clock"`, a violation.
    fn after(what: &str, later: DateTime<Utc>, earlier: DateTime<Utc>, since: &str) -> Self {
        let d = later - earlier;
        if d < chrono::TimeDelta::zero() {
            Self::breaks(format!(
                "✗ {what} {} before {since} by the clock, though on a later line",
                duration(d)
            ))
        } else {
            Self::holds(format!("{what} {} after {since}", duration(d)))
        }
    }
}

/// A checkpoint of the rule in one call's life.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Checkpoint {
    /// The index in the trail of the event it is drawn at.
    pub(super) index: usize,
    /// When that event happened.
    pub(super) at: DateTime<Utc>,
    /// What happened there, e.g. "G2: `notRecording` sent".
    pub(super) title: String,
    /// Its gaps.
    pub(super) gaps: Vec<Gap>,
}

impl Checkpoint {
    /// Whether a gap of it breaks the rule.
    pub(super) fn violation(&self) -> bool {
        self.gaps.iter().any(|g| g.violation)
    }
}

/// How a capability's right to write ended.
#[derive(Debug, Clone, Copy)]
pub(super) struct End {
    index: usize,
    /// When.
    pub(super) at: DateTime<Utc>,
    how: &'static str,
}

/// A retention capability of the call, from its start to its end.
#[derive(Debug)]
pub(super) struct Capability {
    /// Its number.
    pub(super) number: u64,
    index: usize,
    /// When it started.
    pub(super) at: DateTime<Utc>,
    /// When its right to write ended, if the trail says.
    pub(super) end: Option<End>,
}

/// The capabilities of a call, each with the end of its right to write: its own end, or a
/// revocation (Graph ended the call, retention revoked, the run that held it crashed).
pub(super) fn capabilities(call: &CallEvents<'_>) -> Vec<Capability> {
    let mut caps: Vec<Capability> = Vec::new();
    let end_all = |caps: &mut Vec<Capability>, end: End| {
        for c in caps.iter_mut().filter(|c| c.end.is_none()) {
            c.end = Some(end);
        }
    };
    for &(index, e) in &call.events {
        match &e.kind {
            AuditKind::RetentionStarted { capability, .. } => caps.push(Capability {
                number: *capability,
                index,
                at: e.at,
                end: None,
            }),
            AuditKind::RetentionEnded { capability } => {
                if let Some(c) = caps
                    .iter_mut()
                    .rev()
                    .find(|c| c.number == *capability && c.end.is_none())
                {
                    c.end = Some(End {
                        index,
                        at: e.at,
                        how: "ended",
                    });
                }
            }
            AuditKind::RetentionRevoked { .. } => end_all(
                &mut caps,
                End {
                    index,
                    at: e.at,
                    how: "was revoked",
                },
            ),
            AuditKind::CallTerminated { .. } => end_all(
                &mut caps,
                End {
                    index,
                    at: e.at,
                    how: "was revoked (Graph ended the call)",
                },
            ),
            AuditKind::CallRecovered { last_event_at, .. } => end_all(
                &mut caps,
                End {
                    index,
                    at: (*last_event_at).min(e.at),
                    how: "died with the crashed run",
                },
            ),
            _ => {}
        }
    }
    caps
}

/// The last `recording` request, and its completed acknowledgement once it came.
#[derive(Debug)]
struct Asked<'a> {
    at: DateTime<Utc>,
    client_request_id: &'a str,
    ack: Option<(DateTime<Utc>, &'static str)>,
}

/// The checkpoints of one call, in trail order (see the module's docs).
pub(super) fn checkpoints(call: &CallEvents<'_>) -> Vec<Checkpoint> {
    let caps = capabilities(call);
    let mut out = Vec::new();
    let mut asked: Option<Asked<'_>> = None;
    let mut state = CallState::NotRecording;
    // The previous report's index: capabilities that ended before it were accounted there.
    let mut reported: Option<usize> = None;
    for (position, &(index, e)) in call.events.iter().enumerate() {
        match &e.kind {
            AuditKind::RequestSent {
                status: RecordingStatus::Recording,
                client_request_id,
                ..
            } => {
                asked = Some(Asked {
                    at: e.at,
                    client_request_id,
                    ack: None,
                });
            }
            AuditKind::RequestSent { status, .. } => {
                out.push(Checkpoint {
                    index,
                    at: e.at,
                    title: format!("G2: `{status}` sent"),
                    gaps: end_gaps(&caps, index, e.at, *status, reported),
                });
                reported = Some(index);
                // Any later request discards an acknowledgement not used yet.
                if let Some(a) = asked.as_mut() {
                    a.ack = None;
                }
            }
            AuditKind::ResponseReceived {
                client_request_id,
                outcome: ResponseKind::Completed,
                ..
            } => {
                if let Some(a) = asked
                    .as_mut()
                    .filter(|a| a.client_request_id == client_request_id)
                {
                    a.ack = Some((e.at, "completed answer"));
                }
            }
            AuditKind::OperationUpdate {
                status: Some(status),
                matched: true,
                ..
            } if status.eq_ignore_ascii_case("completed") => {
                if let Some(a) = asked.as_mut() {
                    a.ack = Some((e.at, "completed notification"));
                }
            }
            AuditKind::Transition { to, .. } => {
                if *to == CallState::Recording && state != CallState::Recording {
                    let rest = &call.events[position + 1..];
                    out.push(Checkpoint {
                        index,
                        at: e.at,
                        title: "G1: entered `Recording`".to_owned(),
                        gaps: start_gaps(&caps, asked.as_ref(), index, e.at, rest),
                    });
                }
                // An acknowledgement unlocks `Recording` once, and only the next transition.
                if let Some(a) = asked.as_mut() {
                    a.ack = None;
                }
                state = *to;
            }
            AuditKind::RetentionStarted { capability, .. } if state != CallState::Recording => {
                out.push(Checkpoint {
                    index,
                    at: e.at,
                    title: format!("G1: capability #{capability} started"),
                    gaps: vec![Gap::breaks(format!(
                        "✗ started while the call was {state}: no acknowledgement allows it"
                    ))],
                });
            }
            AuditKind::RetentionRevoked { .. }
            | AuditKind::CallTerminated { .. }
            | AuditKind::CallRecovered { .. } => state = CallState::Ended,
            _ => {}
        }
    }
    out
}

/// The gaps of G1 at an entry into `Recording` at `index`; `rest` is the call's events after
/// it.
fn start_gaps(
    caps: &[Capability],
    asked: Option<&Asked<'_>>,
    index: usize,
    at: DateTime<Utc>,
    rest: &[(usize, &AuditEvent)],
) -> Vec<Gap> {
    let mut gaps = Vec::new();
    let ack = match asked {
        None => {
            gaps.push(Gap::breaks(
                "✗ no `recording` request was sent before it".to_owned(),
            ));
            None
        }
        Some(Asked {
            ack: None,
            at: sent,
            ..
        }) => {
            gaps.push(Gap::breaks(format!(
                "✗ no completed acknowledgement of the `recording` request sent {} before",
                duration(at - *sent)
            )));
            None
        }
        Some(Asked {
            ack: Some((acked, how)),
            at: sent,
            ..
        }) => {
            gaps.push(Gap::after(
                &format!("acknowledged ({how})"),
                *acked,
                *sent,
                "`recording` was sent",
            ));
            gaps.push(Gap::after(
                "entered `Recording`",
                at,
                *acked,
                "the acknowledgement",
            ));
            Some(*acked)
        }
    };
    // The episode's recording ends at the next event that takes the call out of `Recording`.
    let exit = rest
        .iter()
        .find(|(_, e)| match &e.kind {
            AuditKind::Transition { to, .. } => *to != CallState::Recording,
            AuditKind::RetentionRevoked { .. }
            | AuditKind::CallTerminated { .. }
            | AuditKind::CallRecovered { .. } => true,
            _ => false,
        })
        .map_or(usize::MAX, |(i, _)| *i);
    match caps.iter().find(|c| c.index > index && c.index < exit) {
        Some(first) => {
            let what = format!("first capability (#{}) started", first.number);
            gaps.push(match ack {
                Some(acked) => Gap::after(&what, first.at, acked, "the acknowledgement"),
                None => Gap::after(&what, first.at, at, "entering `Recording`"),
            });
        }
        None => gaps.push(Gap::holds(
            "no capability started while recording".to_owned(),
        )),
    }
    gaps
}

/// The gaps of G2 at a report of `status` at `index`: every capability started before it
/// (and not accounted at the `previous` report) must have ended before it.
fn end_gaps(
    caps: &[Capability],
    index: usize,
    at: DateTime<Utc>,
    status: RecordingStatus,
    previous: Option<usize>,
) -> Vec<Gap> {
    let sent = format!("`{status}` was sent");
    let mine: Vec<&Capability> = caps
        .iter()
        .filter(|c| c.index < index)
        .filter(|c| match (previous, c.end) {
            (Some(p), Some(end)) => end.index > p,
            _ => true,
        })
        .collect();
    if mine.is_empty() {
        let since = if previous.is_some() {
            "since the previous report"
        } else {
            "before it"
        };
        return vec![Gap::holds(format!("no capability was started {since}"))];
    }
    let mut gaps = Vec::new();
    for c in &mine {
        match c.end {
            None => gaps.push(Gap::breaks(format!(
                "✗ capability #{} never ended: it was alive when {sent}",
                c.number
            ))),
            Some(end) if end.index > index => gaps.push(Gap::breaks(format!(
                "✗ capability #{} {} on a later line, {} {} {sent}",
                c.number,
                end.how,
                duration(end.at - at),
                if end.at < at {
                    "before (by the clock)"
                } else {
                    "after"
                },
            ))),
            Some(_) => {}
        }
    }
    if gaps.is_empty()
        && let Some((c, end)) = mine
            .iter()
            .filter_map(|c| Some((c, c.end?)))
            .max_by_key(|(_, end)| end.index)
    {
        let what = format!("last capability (#{}) {}", c.number, end.how);
        gaps.push(if end.at > at {
            Gap::breaks(format!(
                "✗ {what} {} after {sent} by the clock, though on an earlier line",
                duration(end.at - at)
            ))
        } else {
            Gap::holds(format!("{what} {} before {sent}", duration(at - end.at)))
        });
    }
    gaps
}

/// The call's states as (state, from, to), from its first event to its last.
pub(super) fn states(call: &CallEvents<'_>) -> Vec<(CallState, DateTime<Utc>, DateTime<Utc>)> {
    let mut out = Vec::new();
    let Some((_, first)) = call.events.first() else {
        return out;
    };
    let mut state = CallState::NotRecording;
    let mut since = first.at;
    for (_, e) in &call.events {
        let to = match &e.kind {
            AuditKind::Transition { to, .. } => *to,
            AuditKind::CallTerminated { .. } | AuditKind::CallRecovered { .. } => CallState::Ended,
            _ => continue,
        };
        out.push((state, since, e.at));
        state = to;
        since = e.at;
    }
    let last = call.events.iter().map(|(_, e)| e.at).max().unwrap_or(since);
    out.push((state, since, last.max(since)));
    out
}

/// What the verifier finds in one call's events verified on their own, mapped back to the
/// trail: the index of the offending event and the rule, or `None` when the call holds.
pub(super) fn verify_call(call: &CallEvents<'_>) -> Option<(usize, Rule)> {
    let events: Vec<AuditEvent> = call.events.iter().map(|(_, e)| (*e).clone()).collect();
    let v = verify(&events).err()?;
    Some((call.events[v.index].0, v.rule))
}
