//! What the command-line auditor (`recording-audit`) prints: a per-call [`summary`] of a trail,
//! and a [`timeline`] picture of one call's life as SVG.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{AuditEvent, AuditKind, ResponseKind};
use crate::protocol::CallState;
use crate::status::RecordingStatus;
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

const BANDS: [CallState; 4] = [
    CallState::NotRecording,
    CallState::PendingRecording,
    CallState::Recording,
    CallState::Failed,
];
const LEFT: f64 = 150.0;
const WIDTH: f64 = 900.0;
const BAND: f64 = 28.0;
const TOP: f64 = 40.0;

fn colour(state: CallState) -> &'static str {
    match state {
        CallState::NotRecording => "#d9d9d9",
        CallState::PendingRecording => "#ffd966",
        CallState::Recording => "#e06666",
        CallState::Failed => "#8e7cc3",
        _ => "#999999",
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Draws one call's life as an SVG picture for a person to look at: the four states as bands
/// along time (the call's state drawn in the band it is in), each retention capability as a
/// bar from its start to its end (or revocation), each request and Graph's answer as a marked
/// tick, and the rule's checkpoints highlighted: the completed acknowledgement that let the
/// call into `Recording`, and the end-of-recording report, which must come after every
/// capability's end. `None` if the trail has no event for `call` (any spelling).
pub fn timeline(events: &[AuditEvent], call: &str) -> Option<String> {
    let key = normalize_id(call);
    let mine: Vec<&AuditEvent> = events
        .iter()
        .filter(|e| normalize_id(&e.call_id) == key)
        .collect();
    let (first, last) = (mine.first()?.at, mine.last()?.at);
    let span = (last - first).num_microseconds().unwrap_or(1).max(1) as f64;
    let x = |at: DateTime<Utc>| {
        LEFT + WIDTH * (at - first).num_microseconds().unwrap_or(0) as f64 / span
    };

    // State intervals.
    let mut states: Vec<(CallState, f64, f64)> = Vec::new();
    let mut state = CallState::NotRecording;
    let mut since = x(first);
    // Capability bars: number → (start, end).
    let mut capabilities: BTreeMap<u64, (f64, Option<f64>)> = BTreeMap::new();
    let mut ticks: Vec<(f64, String, &'static str)> = Vec::new();
    let mut checkpoints: Vec<(f64, String)> = Vec::new();
    for e in &mine {
        let at = x(e.at);
        match &e.kind {
            AuditKind::Transition { to, .. } => {
                states.push((state, since, at));
                if *to == CallState::Recording {
                    checkpoints.push((at, "acknowledged: recording may begin".to_owned()));
                }
                state = *to;
                since = at;
            }
            AuditKind::RetentionStarted { capability, .. } => {
                capabilities.insert(*capability, (at, None));
            }
            AuditKind::RetentionEnded { capability } => {
                if let Some(bar) = capabilities.get_mut(capability)
                    && bar.1.is_none()
                {
                    bar.1 = Some(at);
                }
            }
            AuditKind::CallRecovered { last_event_at, .. } => {
                // The crashed run's capabilities died with it, at the latest when it was last
                // heard of; the call is closed where the later run recovers it.
                let died = x(*last_event_at).min(at);
                for bar in capabilities.values_mut() {
                    if bar.1.is_none() {
                        bar.1 = Some(died);
                    }
                }
                states.push((state, since, at));
                state = CallState::Ended;
                since = at;
                checkpoints.push((at, "recovered after a crash".to_owned()));
            }
            AuditKind::RetentionRevoked { .. } | AuditKind::CallTerminated { .. } => {
                for bar in capabilities.values_mut() {
                    if bar.1.is_none() {
                        bar.1 = Some(at);
                    }
                }
                if matches!(e.kind, AuditKind::CallTerminated { .. }) {
                    // Graph hung up: the call's state ends here, whatever its value was in.
                    states.push((state, since, at));
                    state = CallState::Ended;
                    since = at;
                    checkpoints.push((at, "ended by Graph".to_owned()));
                } else {
                    checkpoints.push((at, "revoked".to_owned()));
                }
            }
            AuditKind::RequestSent { status, .. } => {
                ticks.push((at, format!("→ {status}"), "#1f4e79"));
                if *status != RecordingStatus::Recording {
                    checkpoints.push((at, format!("reported {status}")));
                }
            }
            AuditKind::ResponseReceived {
                http_status,
                outcome,
                ..
            } => {
                let colour = if *outcome == ResponseKind::Completed {
                    "#38761d"
                } else {
                    "#990000"
                };
                ticks.push((at, format!("← {http_status} {outcome:?}"), colour));
            }
            AuditKind::OperationUpdate { status, .. } => {
                ticks.push((
                    at,
                    format!("⇠ notified {}", status.as_deref().unwrap_or("null")),
                    "#38761d",
                ));
            }
            AuditKind::TransportFailed { .. } => {
                ticks.push((at, "✕ no response".to_owned(), "#990000"));
            }
            _ => {}
        }
    }
    states.push((state, since, x(last).max(since + 2.0)));

    let caps_top = TOP + BAND * BANDS.len() as f64 + 20.0;
    let ticks_top = caps_top + 14.0 * capabilities.len() as f64 + 30.0;
    let height = ticks_top + 18.0 * ticks.len() as f64 + 30.0;
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{}" height="{height:.0}" font-family="sans-serif" font-size="12">"#,
        LEFT + WIDTH + 220.0
    );
    let _ = writeln!(
        svg,
        r#"<text x="10" y="20" font-size="14" font-weight="bold">call {} ({} events, {} ms)</text>"#,
        escape(&key),
        mine.len(),
        (last - first).num_milliseconds()
    );
    for (i, band) in BANDS.iter().enumerate() {
        let y = TOP + BAND * i as f64;
        let _ = writeln!(
            svg,
            r##"<rect x="{LEFT}" y="{y}" width="{WIDTH}" height="{BAND}" fill="#f7f7f7" stroke="#cccccc"/><text x="10" y="{:.1}">{band}</text>"##,
            y + BAND * 0.65
        );
    }
    for (s, from, to) in &states {
        if let Some(i) = BANDS.iter().position(|b| b == s) {
            let y = TOP + BAND * i as f64 + 4.0;
            let _ = writeln!(
                svg,
                r#"<rect x="{from:.1}" y="{y:.1}" width="{:.1}" height="{:.1}" fill="{}"/>"#,
                (to - from).max(1.0),
                BAND - 8.0,
                colour(*s)
            );
        }
    }
    let _ = writeln!(
        svg,
        r#"<text x="10" y="{:.1}">capabilities</text>"#,
        caps_top + 10.0
    );
    for (i, (n, (start, end))) in capabilities.iter().enumerate() {
        let y = caps_top + 14.0 * i as f64;
        let end = end.unwrap_or(LEFT + WIDTH);
        let _ = writeln!(
            svg,
            r##"<rect x="{start:.1}" y="{y:.1}" width="{:.1}" height="10" fill="#6fa8dc"/><text x="{:.1}" y="{:.1}" font-size="10">#{n}</text>"##,
            (end - start).max(1.0),
            end + 4.0,
            y + 9.0
        );
    }
    for (at, label) in &checkpoints {
        let _ = writeln!(
            svg,
            r##"<line x1="{at:.1}" y1="{TOP}" x2="{at:.1}" y2="{ticks_top:.1}" stroke="#cc0000" stroke-width="2" stroke-dasharray="4 3"><title>{}</title></line>"##,
            escape(label)
        );
    }
    for (i, (at, label, colour)) in ticks.iter().enumerate() {
        let y = ticks_top + 18.0 * i as f64;
        let _ = writeln!(
            svg,
            r#"<line x1="{at:.1}" y1="{TOP}" x2="{at:.1}" y2="{:.1}" stroke="{colour}" stroke-width="1"/><circle cx="{at:.1}" cy="{:.1}" r="3" fill="{colour}"/><text x="{:.1}" y="{:.1}" fill="{colour}">{}</text>"#,
            y + 4.0,
            y + 4.0,
            at + 6.0,
            y + 8.0,
            escape(label)
        );
    }
    svg.push_str("</svg>\n");
    Some(svg)
}
