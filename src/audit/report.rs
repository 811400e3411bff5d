//! What the command-line auditor (`recording-audit`) prints: a per-call [`summary`] of a trail.
//! Its pictures are drawn by `picture`.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{AuditEvent, AuditKind};
use crate::protocol::CallState;
use crate::types::normalize_id;

/// One call's life in a trail. See [`summary`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct CallSummary {
    /// The call, normalised.
    pub call_id: String,
    /// Recording episodes begun (`recording` requested), counted for this call alone: 1, 2, …
    ///
    /// The trail, the logs and [`Error::Superseded`](crate::Error::Superseded) number episodes
    /// otherwise: by the registry's sequence, one counter for every call a bot's
    /// [`Calls`](crate::Calls) opened, which only grows (so that a report of an earlier
    /// episode is never sent once a later one began, G7). A call's first episode may be
    /// registry episode 7. The call's *k*-th episode is its *k*-th transition to
    /// `pendingRecording`, whose reason reads `recording requested (registry episode N)`;
    /// `report_superseded` events and the `episode_seq` and `current_episode_seq` fields of log
    /// lines use the same N.
    pub episodes: usize,
    /// Time spent in `Recording`, in milliseconds (up to the trail's last event for a call
    /// still recording).
    pub recording_ms: i64,
    /// Retention capabilities started.
    pub capabilities: usize,
    /// The state the trail leaves the call in, if it says: [`CallState::Ended`] once Graph
    /// hung up (whatever state the call's value was in then).
    pub final_state: Option<CallState>,
    /// Graph ended the call (a `terminated` notification, or `8522` "Call not found"): its
    /// recording time ends at that point, when its retention was revoked.
    pub ended_by_graph: bool,
    /// The run recording the call crashed, and a later run closed the call
    /// (`call_recovered`): its recording time ends at the crashed run's last event for it,
    /// the latest moment it is known to have been alive.
    pub recovered: bool,
}

/// Summarises a trail per call, in order of first appearance. Entries without a call (a
/// notification body's acceptance) are skipped.
pub fn summary(events: &[AuditEvent]) -> Vec<CallSummary> {
    let mut order: Vec<String> = Vec::new();
    let mut calls: BTreeMap<String, (CallSummary, Option<DateTime<Utc>>)> = BTreeMap::new();
    let last = events.last().map(|e| e.at);
    for e in events.iter().filter(|e| !e.call_id.is_empty()) {
        let key = normalize_id(&e.call_id);
        let (c, since) = calls.entry(key.clone()).or_insert_with(|| {
            order.push(key.clone());
            (
                CallSummary {
                    call_id: key.clone(),
                    episodes: 0,
                    recording_ms: 0,
                    capabilities: 0,
                    final_state: None,
                    ended_by_graph: false,
                    recovered: false,
                },
                None,
            )
        });
        match &e.kind {
            AuditKind::Transition { from, to, .. } => {
                if *to == CallState::PendingRecording {
                    c.episodes += 1;
                }
                if *to == CallState::Recording {
                    *since = Some(e.at);
                } else if *from == CallState::Recording
                    && let Some(start) = since.take()
                {
                    c.recording_ms += (e.at - start).num_milliseconds();
                }
                // A value's transitions after Graph hung up (its `end`) keep the call ended.
                if !c.ended_by_graph {
                    c.final_state = Some(*to);
                }
            }
            AuditKind::RetentionStarted { .. } => c.capabilities += 1,
            AuditKind::RetentionRevoked { .. } => {
                if let Some(start) = since.take() {
                    c.recording_ms += (e.at - start).num_milliseconds();
                }
            }
            AuditKind::CallTerminated { .. } => {
                if let Some(start) = since.take() {
                    c.recording_ms += (e.at - start).num_milliseconds();
                }
                c.final_state = Some(CallState::Ended);
                c.ended_by_graph = true;
            }
            AuditKind::CallRecovered { last_event_at, .. } => {
                if let Some(start) = since.take() {
                    c.recording_ms += (*last_event_at - start).num_milliseconds().max(0);
                }
                c.final_state = Some(CallState::Ended);
                c.recovered = true;
            }
            _ => {}
        }
    }
    order
        .into_iter()
        .filter_map(|k| calls.remove(&k))
        .map(|(mut c, since)| {
            if let (Some(start), Some(end)) = (since, last) {
                c.recording_ms += (end - start).num_milliseconds();
            }
            c
        })
        .collect()
}
