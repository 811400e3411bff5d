//! The whole trail's picture: every call in one page, one compact row each on one time axis
//! (its states as a strip, its capabilities and episodes counted, the rule's gaps written as
//! numbers), violations marked.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::checkpoints::{
    CallEvents, Checkpoint, calls, capabilities, checkpoints, states, verify_call,
};
use super::svg::{
    ALARM, Axis, BANDS, CAPABILITY, CHECKPOINT, INK, LEFT, PAGE, PLOT, Sample, badge, clip, colour,
    duration, escape, instant, legend, page, paragraph, state_entries, wrap, wrap_words,
};
use crate::audit::{AuditEvent, Rule, Violation, summary, verify};

/// The characters of a gap line: monospace 10 px is 6 px a character.
const LINE: usize = ((PAGE - LEFT - 10.0) / 6.0) as usize;
/// A gap line's height.
const LEADING: f64 = 13.0;

/// What the legend of the whole trail says.
fn entries() -> Vec<(Sample, String)> {
    let mut entries = state_entries("");
    entries.extend(
        [
        (
            Sample::Fill(CAPABILITY),
            "thin bar under a strip: a retention capability, from its start to its end",
        ),
        (
            Sample::Mark,
            "dashed mark on a strip: checkpoint [n] of the rule, its gaps written under the strip",
        ),
        (
            Sample::Violation,
            "✗ in red, red row: a violation, with its line and the rule it breaks",
        ),
        (Sample::Grid, "grey line: a tick of the time axis"),
    ]
        .map(|(sample, words)| (sample, words.to_owned())),
    );
    entries
}

/// A call's row: what to draw and write.
#[derive(Debug)]
struct Row<'a> {
    call: CallEvents<'a>,
    marks: Vec<Checkpoint>,
    /// The call's own violation, and the whole trail's first when it is this call's and
    /// another: (index, rule, what found it).
    violations: Vec<(usize, Rule, &'static str)>,
    lines: Vec<(String, bool)>,
}

/// Draws the trail (see [`trail_timeline`](crate::audit::trail_timeline)).
pub(super) fn draw(events: &[AuditEvent]) -> String {
    let whole = verify(events).err();
    let counts: BTreeMap<String, (usize, usize)> = summary(events)
        .into_iter()
        .map(|c| (c.call_id, (c.capabilities, c.episodes)))
        .collect();
    let rows: Vec<Row<'_>> = calls(events)
        .into_iter()
        .map(|call| row(call, whole.as_ref()))
        .collect();
    let min = events.iter().map(|e| e.at).min();
    let max = events.iter().map(|e| e.at).max();

    let mut body = String::new();
    let _ = writeln!(
        body,
        r#"<text class="title" x="10" y="24" font-size="16" font-weight="bold">Audit trail: {} {}, {} {}</text>"#,
        rows.len(),
        if rows.len() == 1 { "call" } else { "calls" },
        events.len(),
        if events.len() == 1 { "event" } else { "events" },
    );
    if let (Some(min), Some(max)) = (min, max) {
        let _ = writeln!(
            body,
            r#"<text x="10" y="42">From {} to {} ({}).</text>"#,
            instant(min),
            instant(max),
            duration(max - min)
        );
    }
    let y = match &whole {
        None => paragraph(
            &mut body,
            (10.0, 60.0),
            16.0,
            130,
            r#"class="verdict""#,
            "verify, over the whole trail: the rule holds.",
        ),
        Some(v) => paragraph(
            &mut body,
            (10.0, 60.0),
            16.0,
            120,
            &format!(r#"class="verdict violation" fill="{ALARM}" font-weight="bold""#),
            &format!(
                "✗ verify, over the whole trail: first violation at line {}, call {}: {} ({}).",
                v.line(),
                clip(&v.call_id, 40),
                v.rule.words(),
                v.rule.code()
            ),
        ),
    };
    let breaking = rows.iter().filter(|r| !r.violations.is_empty()).count();
    let y = paragraph(
        &mut body,
        (10.0, y + 2.0),
        16.0,
        130,
        r#"class="per-call""#,
        &format!(
            "Each call is also verified on its own events (verify stops at a trail's first \
             violation): {breaking} of {} break the rule, marked ✗ below.",
            rows.len()
        ),
    );
    let (Some(min), Some(max)) = (min, max) else {
        let y = legend(&mut body, y, &entries());
        return page(&body, y, "empty audit trail");
    };
    if rows.is_empty() {
        let _ = writeln!(
            body,
            r#"<text x="10" y="{:.1}">The trail has no event about a call.</text>"#,
            y + 10.0
        );
        let y = legend(&mut body, y + 20.0, &entries());
        return page(&body, y, "audit trail");
    }
    let axis = Axis::new(min, max);
    let top = y + 24.0;
    axis.labels(&mut body, top - 6.0);
    let mut y = top;
    for r in &rows {
        y = draw_row(&mut body, r, &axis, y, counts.get(&r.call.key).copied());
    }
    let y = axis.draw(&mut body, top, y + 4.0, "the trail's first event");
    let y = legend(&mut body, y, &entries());
    page(&body, y, "audit trail")
}

/// The row of `call`: its checkpoints, its violations and its gap lines.
fn row<'a>(call: CallEvents<'a>, whole: Option<&Violation>) -> Row<'a> {
    let marks = checkpoints(&call);
    let mut violations = Vec::new();
    let own = verify_call(&call);
    if let Some((index, rule)) = own {
        violations.push((index, rule, "this call's events verified on their own"));
    }
    if let Some(v) = whole.filter(|v| v.call_id == call.key)
        && own != Some((v.index, v.rule))
    {
        violations.push((v.index, v.rule, "the whole trail verified"));
    }
    let mut lines: Vec<(String, bool)> = Vec::new();
    for (index, rule, how) in &violations {
        let text = format!(
            "✗ VIOLATION at line {}: {} ({}), found with {how}",
            index + 1,
            rule.words(),
            rule.code()
        );
        lines.extend(wrap_words(&text, LINE).into_iter().map(|l| (l, true)));
    }
    for (i, c) in marks.iter().enumerate() {
        // `[n] title (line L): first gap`, then the other gaps, wrapped between gaps.
        let mut parts: Vec<String> = c.gaps.iter().map(|g| g.text.clone()).collect();
        let head = format!("[{}] {} (line {})", i + 1, c.title, c.index + 1);
        match parts.first_mut() {
            Some(first) => *first = format!("{head}: {first}"),
            None => parts.push(head),
        }
        lines.extend(wrap(&parts, LINE).into_iter().map(|l| (l, c.violation())));
    }
    if marks.is_empty() {
        lines.push((
            "no checkpoint: the call never entered `Recording` nor reported its end".to_owned(),
            false,
        ));
    }
    Row {
        call,
        marks,
        violations,
        lines,
    }
}

/// Draws `r` from `y` on `axis`; `counts` are its capabilities and episodes. Returns the y
/// below it.
fn draw_row(
    body: &mut String,
    r: &Row<'_>,
    axis: &Axis,
    y: f64,
    counts: Option<(usize, usize)>,
) -> f64 {
    let height = 36.0 + LEADING * r.lines.len() as f64 + 4.0;
    let violating = !r.violations.is_empty();
    let (held, episodes) = counts.unwrap_or_default();
    let _ = writeln!(
        body,
        r##"<g class="call-row{}">"##,
        if violating { " violation" } else { "" }
    );
    if violating {
        let _ = writeln!(
            body,
            r##"<rect x="4" y="{y:.1}" width="{:.1}" height="{height:.1}" fill="#fdecec"/><rect x="4" y="{y:.1}" width="4" height="{height:.1}" fill="{ALARM}"/>"##,
            PAGE - 8.0
        );
    }
    let _ = writeln!(
        body,
        r#"<text x="12" y="{:.1}"><tspan class="call-id" font-family="monospace" font-weight="bold">{}</tspan>  ·  {} events, {held} {}, {episodes} {}</text>"#,
        y + 13.0,
        escape(&clip(&r.call.key, 64)),
        r.call.events.len(),
        if held == 1 {
            "capability"
        } else {
            "capabilities"
        },
        if episodes == 1 { "episode" } else { "episodes" },
    );
    let (verdict, fill) = if violating {
        ("✗ VIOLATION", ALARM)
    } else {
        ("✓ holds", INK)
    };
    let strip = y + 19.0;
    let _ = writeln!(
        body,
        r##"<text x="12" y="{:.1}" font-weight="bold" fill="{fill}">{verdict}</text><rect x="{LEFT}" y="{strip:.1}" width="{PLOT}" height="12" fill="#f7f7f7" stroke="#cccccc" stroke-width="0.5"/>"##,
        strip + 10.0
    );
    for (state, from, to) in states(&r.call) {
        let (from, to) = (axis.x(from), axis.x(to));
        if BANDS.contains(&state) {
            let _ = writeln!(
                body,
                r#"<rect class="state" x="{from:.1}" y="{strip:.1}" width="{:.1}" height="12" fill="{}"/>"#,
                (to - from).max(1.0),
                colour(state)
            );
        }
    }
    // The capabilities, a thin bar each under the strip (to the trail's end if never ended).
    for c in capabilities(&r.call) {
        let from = axis.x(c.at);
        let to = c.end.map_or(LEFT + PLOT, |end| axis.x(end.at));
        let _ = writeln!(
            body,
            r#"<rect class="capability" x="{from:.1}" y="{:.1}" width="{:.1}" height="3" fill="{CAPABILITY}"/>"#,
            strip + 13.5,
            (to - from).max(1.0)
        );
    }
    for c in &r.marks {
        let x = axis.x(c.at);
        let stroke = if c.violation() { ALARM } else { CHECKPOINT };
        let _ = writeln!(
            body,
            r#"<line class="checkpoint-mark" x1="{x:.1}" y1="{:.1}" x2="{x:.1}" y2="{:.1}" stroke="{stroke}" stroke-width="1.5" stroke-dasharray="3 2"/>"#,
            strip - 2.0,
            strip + 14.0
        );
    }
    for (index, _, _) in &r.violations {
        if let Some((_, e)) = r.call.events.iter().find(|(i, _)| i == index) {
            body.push_str(&badge(axis.x(e.at), strip + 6.0, "✗", true));
            body.push('\n');
        }
    }
    for (i, (line, bad)) in r.lines.iter().enumerate() {
        let fill = if *bad { ALARM } else { INK };
        let _ = writeln!(
            body,
            r#"<text class="gap" x="{LEFT}" y="{:.1}" font-family="monospace" font-size="10" fill="{fill}">{}</text>"#,
            strip + 26.0 + LEADING * i as f64,
            escape(line)
        );
    }
    let _ = writeln!(
        body,
        r##"<line x1="4" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="#bbbbbb" stroke-width="0.5"/></g>"##,
        y + height,
        PAGE - 4.0,
        y + height
    );
    y + height + 2.0
}
