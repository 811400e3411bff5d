//! One call's picture: its states as bands along a labelled time axis, its capabilities as
//! bars, its requests and Graph's answers as ticks, the rule's checkpoints as numbered badges
//! with their gaps written out below, its violation marked, and a legend.

use std::fmt::Write as _;

use chrono::{DateTime, Utc};

use super::checkpoints::{CallEvents, capabilities, checkpoints, states, verify_call};
use super::svg::{
    ALARM, Axis, BAD, BANDS, CAPABILITY, CHECKPOINT, GOOD, INK, LEFT, PLOT, REQUEST, Sample, badge,
    colour, duration, escape, instant, legend, page, paragraph, state_entries,
};
use crate::audit::{AuditKind, ResponseKind};
use crate::protocol::CallState;

/// A state's band's height.
const BAND: f64 = 24.0;
/// A badge row's height: badges closer than this in x go on separate rows.
const BADGE: f64 = 20.0;

/// What the legend of a call's picture says.
fn entries() -> Vec<(Sample, String)> {
    let mut entries = state_entries(" band");
    entries.extend(
        [
            (
                Sample::Fill(CAPABILITY),
                "#n bar: retention capability n, from its start to its end or revocation",
            ),
            (
                Sample::Tick(REQUEST),
                "→ status: updateRecordingStatus request sent",
            ),
            (
                Sample::Tick(GOOD),
                "← completed answer, or ⇠ operation update notified",
            ),
            (
                Sample::Tick(BAD),
                "← any other answer, or ✕ no answer: not an acknowledgement",
            ),
            (
                Sample::Checkpoint,
                "numbered badge, dashed line: a checkpoint of the rule (gaps listed below)",
            ),
            (
                Sample::Violation,
                "✗ in red: a violation, with its line and the rule it breaks",
            ),
            (Sample::Grid, "grey line: a tick of the time axis"),
        ]
        .map(|(sample, words)| (sample, words.to_owned())),
    );
    entries
}

/// A tick: a request, an answer, a notification or a missing answer.
#[derive(Debug)]
struct Tick {
    x: f64,
    label: String,
    colour: &'static str,
}

/// Draws the call (see [`timeline`](crate::audit::timeline)); `None` if it has no event.
pub(super) fn draw(call: &CallEvents<'_>) -> Option<String> {
    let (min, max) = call.bounds()?;
    let axis = Axis::new(min, max);
    let x = |at: DateTime<Utc>| axis.x(at);

    // The call's states, as (state, from, to) in x; the last one at least 2 px wide.
    let mut states: Vec<(CallState, f64, f64)> = states(call)
        .into_iter()
        .map(|(state, from, to)| (state, x(from), x(to)))
        .collect();
    if let Some(last) = states.last_mut() {
        last.2 = last.2.max(last.1 + 2.0);
    }
    // Capability bars: (number, start, end).
    let capabilities: Vec<(u64, f64, Option<f64>)> = capabilities(call)
        .iter()
        .map(|c| (c.number, x(c.at), c.end.map(|end| x(end.at))))
        .collect();
    let mut ticks: Vec<Tick> = Vec::new();
    for &(_, e) in &call.events {
        let at = x(e.at);
        match &e.kind {
            AuditKind::CallTerminated { .. } => ticks.push(Tick {
                x: at,
                label: "⇠ ended by Graph".to_owned(),
                colour: BAD,
            }),
            AuditKind::RequestSent { status, .. } => ticks.push(Tick {
                x: at,
                label: format!("→ {status}"),
                colour: REQUEST,
            }),
            AuditKind::ResponseReceived {
                http_status,
                outcome,
                ..
            } => ticks.push(Tick {
                x: at,
                label: format!("← {http_status} {outcome:?}"),
                colour: if *outcome == ResponseKind::Completed {
                    GOOD
                } else {
                    BAD
                },
            }),
            AuditKind::OperationUpdate { status, .. } => ticks.push(Tick {
                x: at,
                label: format!("⇠ notified {}", status.as_deref().unwrap_or("null")),
                colour: GOOD,
            }),
            AuditKind::TransportFailed { .. } => ticks.push(Tick {
                x: at,
                label: "✕ no response".to_owned(),
                colour: BAD,
            }),
            _ => {}
        }
    }

    let marks = checkpoints(call);
    let finding = verify_call(call);
    let at_index = |index: usize| {
        call.events
            .iter()
            .find(|(i, _)| *i == index)
            .map_or(min, |(_, e)| e.at)
    };
    // Badges: each checkpoint's number, then the violation's ✗, on the first row where it
    // does not cover another.
    let mut badges: Vec<(f64, String, bool)> = marks
        .iter()
        .enumerate()
        .map(|(i, c)| (x(c.at), (i + 1).to_string(), c.violation()))
        .collect();
    if let Some((index, _)) = finding {
        badges.push((x(at_index(index)), "✗".to_owned(), true));
    }
    let mut rows: Vec<f64> = Vec::new();
    let mut placed: Vec<(f64, usize, &str, bool)> = Vec::new();
    for (bx, label, violation) in &badges {
        let row = match rows.iter().position(|last| bx - last >= BADGE) {
            Some(row) => {
                rows[row] = *bx;
                row
            }
            None => {
                rows.push(*bx);
                rows.len() - 1
            }
        };
        placed.push((*bx, row, label, *violation));
    }

    let mut body = String::new();
    let first_line = call.events.first().map_or(0, |(i, _)| i + 1);
    let last_line = call.events.last().map_or(0, |(i, _)| i + 1);
    let _ = writeln!(
        body,
        r#"<text class="title" x="10" y="24" font-size="16" font-weight="bold">Call <tspan font-family="monospace">{}</tspan></text>"#,
        escape(&call.key)
    );
    let _ = writeln!(
        body,
        r#"<text x="10" y="42">{} events, lines {first_line} to {last_line} of the trail, over {}; first event at {}.</text>"#,
        call.events.len(),
        duration(max - min),
        instant(min),
    );
    let below_verdict = match finding {
        None => paragraph(
            &mut body,
            (10.0, 60.0),
            16.0,
            130,
            r#"class="verdict""#,
            &format!(
                "The rule holds for this call: its {} events verified on their own.",
                call.events.len()
            ),
        ),
        Some((index, rule)) => paragraph(
            &mut body,
            (10.0, 60.0),
            16.0,
            120,
            &format!(r#"class="verdict violation" fill="{ALARM}" font-weight="bold""#),
            &format!(
                "✗ VIOLATION at line {}: {} ({}).",
                index + 1,
                rule.words(),
                rule.code()
            ),
        ),
    };

    let badges_top = below_verdict - 2.0;
    let top = badges_top + BADGE * rows.len().max(1) as f64 + 6.0;
    let caps_top = top + BAND * BANDS.len() as f64 + 12.0;
    let ticks_top = caps_top + 14.0 * capabilities.len().max(1) as f64 + 12.0;
    let plot_bottom = ticks_top + 16.0 * ticks.len() as f64 + 6.0;

    // The bands, the call's state in them.
    for (i, band) in BANDS.iter().enumerate() {
        let y = top + BAND * i as f64;
        let _ = writeln!(
            body,
            r##"<rect x="{LEFT}" y="{y:.1}" width="{PLOT}" height="{BAND}" fill="#f7f7f7" stroke="#cccccc" stroke-width="0.5"/><text x="10" y="{:.1}">{band}</text>"##,
            y + BAND * 0.65
        );
    }
    for (s, from, to) in &states {
        if let Some(i) = BANDS.iter().position(|b| b == s) {
            let y = top + BAND * i as f64 + 4.0;
            let _ = writeln!(
                body,
                r#"<rect class="state" x="{from:.1}" y="{y:.1}" width="{:.1}" height="{:.1}" fill="{}"/>"#,
                (to - from).max(1.0),
                BAND - 8.0,
                colour(*s)
            );
        }
    }
    // The capabilities.
    let _ = writeln!(
        body,
        r#"<text x="10" y="{:.1}">capabilities</text>"#,
        caps_top + 10.0
    );
    if capabilities.is_empty() {
        let _ = writeln!(
            body,
            r##"<text x="{LEFT}" y="{:.1}" font-size="10" fill="#555555">none</text>"##,
            caps_top + 10.0
        );
    }
    for (i, (n, start, end)) in capabilities.iter().enumerate() {
        let y = caps_top + 14.0 * i as f64;
        let end = end.unwrap_or(LEFT + PLOT);
        let _ = writeln!(
            body,
            r#"<rect class="capability" x="{start:.1}" y="{y:.1}" width="{:.1}" height="10" fill="{CAPABILITY}"/><text x="{:.1}" y="{:.1}" font-size="10">#{n}</text>"#,
            (end - start).max(1.0),
            end + 4.0,
            y + 9.0
        );
    }
    // The requests and answers, one row each.
    let _ = writeln!(
        body,
        r#"<text x="10" y="{:.1}">requests, answers</text>"#,
        ticks_top + 8.0
    );
    for (i, t) in ticks.iter().enumerate() {
        let y = ticks_top + 16.0 * i as f64;
        // A label near the right edge is written to the tick's left, inside the page.
        let (tx, anchor) = if t.x > LEFT + PLOT * 0.6 {
            (t.x - 6.0, "end")
        } else {
            (t.x + 6.0, "start")
        };
        let _ = writeln!(
            body,
            r#"<line x1="{:.1}" y1="{top:.1}" x2="{:.1}" y2="{:.1}" stroke="{}" stroke-width="0.75"/><circle cx="{:.1}" cy="{:.1}" r="3" fill="{}"/><text class="tick" x="{tx:.1}" y="{:.1}" text-anchor="{anchor}" fill="{}">{}</text>"#,
            t.x,
            t.x,
            y + 4.0,
            t.colour,
            t.x,
            y + 4.0,
            t.colour,
            y + 8.0,
            t.colour,
            escape(&t.label)
        );
    }
    // The checkpoints: a dashed line from each badge down to the axis, the badge above.
    for (bx, row, label, violation) in &placed {
        let y = badges_top + BADGE * *row as f64 + 10.0;
        let (stroke, dash) = if *violation {
            (ALARM, "2 2")
        } else {
            (CHECKPOINT, "4 3")
        };
        let _ = writeln!(
            body,
            r#"<line class="checkpoint-line" x1="{bx:.1}" y1="{:.1}" x2="{bx:.1}" y2="{plot_bottom:.1}" stroke="{stroke}" stroke-width="1.5" stroke-dasharray="{dash}"/>{}"#,
            y + 8.0,
            badge(*bx, y, label, *violation)
        );
    }
    let mut y = axis.draw(&mut body, top, plot_bottom, "the call's first event");

    // The checkpoints' gaps, written out.
    let _ = writeln!(
        body,
        r#"<text x="10" y="{:.1}" font-size="13" font-weight="bold">Checkpoints of the rule, with gaps computed from the events' timestamps</text>"#,
        y + 6.0
    );
    y += 16.0;
    if marks.is_empty() {
        let _ = writeln!(
            body,
            r#"<text x="36" y="{:.1}">none: the call never entered `Recording` nor reported its end</text>"#,
            y + 12.0
        );
        y += 18.0;
    }
    for (i, c) in marks.iter().enumerate() {
        let _ = writeln!(
            body,
            r#"{}<text class="checkpoint" x="36" y="{:.1}" font-weight="bold">{} (line {}, {} into the call)</text>"#,
            badge(20.0, y + 8.0, &(i + 1).to_string(), c.violation()),
            y + 12.0,
            escape(&c.title),
            c.index + 1,
            duration(c.at - min),
        );
        y += 17.0;
        for gap in &c.gaps {
            let (class, fill) = if gap.violation {
                ("gap violation", ALARM)
            } else {
                ("gap", INK)
            };
            let _ = writeln!(
                body,
                r#"<text class="{class}" x="48" y="{:.1}" fill="{fill}">{}</text>"#,
                y + 11.0,
                escape(&gap.text)
            );
            y += 15.0;
        }
        y += 4.0;
    }
    if let Some((index, rule)) = finding {
        body.push_str(&badge(20.0, y + 8.0, "✗", true));
        y = paragraph(
            &mut body,
            (36.0, y + 12.0),
            16.0,
            115,
            &format!(r#"class="violation" fill="{ALARM}" font-weight="bold""#),
            &format!(
                "VIOLATION at line {} ({} into the call): {} ({}), found by verifying this \
                 call's events on their own",
                index + 1,
                duration(at_index(index) - min),
                rule.words(),
                rule.code()
            ),
        ) + 5.0;
    }
    let y = legend(&mut body, y + 8.0, &entries());

    Some(page(&body, y, &format!("call {}", call.key)))
}
