//! The pictures, read back: the axis, the legend, the gaps, the violations, the escaping.

use chrono::{DateTime, TimeDelta, Utc};

use super::svg::{Axis, PLOT, duration};
use super::{timeline, trail_timeline};
use crate::audit::{AuditEvent, AuditKind, ResponseKind};
use crate::protocol::CallState;
use crate::status::RecordingStatus;

const CALL: &str = "57dab8b1894c409ab240bd8beae78896";

fn base() -> DateTime<Utc> {
    "2026-11-27T09:00:00Z".parse().unwrap()
}

/// An event `us` microseconds after [`base`].
fn at(us: i64, call: &str, kind: AuditKind) -> AuditEvent {
    AuditEvent {
        at: base() + TimeDelta::microseconds(us),
        call_id: call.to_owned(),
        kind,
    }
}

fn sent(status: RecordingStatus, id: &str) -> AuditKind {
    AuditKind::RequestSent {
        status,
        client_context: format!("ctx-{id}"),
        client_request_id: id.to_owned(),
    }
}

fn completed(id: &str) -> AuditKind {
    AuditKind::ResponseReceived {
        client_request_id: id.to_owned(),
        http_status: 200,
        outcome: ResponseKind::Completed,
        operation_id: None,
        request_id: None,
        echoed_client_request_id: None,
        date: None,
    }
}

fn transition(from: CallState, to: CallState) -> AuditKind {
    AuditKind::Transition {
        from,
        to,
        reason: "test".to_owned(),
    }
}

fn started(capability: u64) -> AuditKind {
    AuditKind::RetentionStarted {
        capability,
        owned: true,
    }
}

fn ended(capability: u64) -> AuditKind {
    AuditKind::RetentionEnded { capability }
}

/// One episode of `call` from `t0` µs: `recording` sent, acknowledged 420 µs later, entered
/// 10 µs after that, capability 1 started 50 µs after the acknowledgement; then capability 1
/// ends at `end` µs and `notRecording` is sent at `report` µs (either order, by line).
fn episode(call: &str, t0: i64, end: i64, report: i64) -> Vec<AuditEvent> {
    use CallState::{NotRecording, PendingRecording, Recording};
    let mut events = vec![
        at(t0, call, transition(NotRecording, PendingRecording)),
        at(t0, call, sent(RecordingStatus::Recording, "req-1")),
        at(t0 + 420, call, completed("req-1")),
        at(t0 + 430, call, transition(PendingRecording, Recording)),
        at(t0 + 470, call, started(1)),
    ];
    let end = at(end, call, ended(1));
    let report = at(report, call, sent(RecordingStatus::NotRecording, "req-2"));
    if end.at <= report.at {
        events.extend([end, report]);
    } else {
        events.extend([report, end]);
    }
    events
}

/// The (x, label) of every element of `class` in `svg`, in order.
fn labelled(svg: &str, class: &str) -> Vec<(f64, String)> {
    let marker = format!(r#"class="{class}" x=""#);
    svg.match_indices(&marker)
        .map(|(i, _)| {
            let rest = &svg[i + marker.len()..];
            let x = rest[..rest.find('"').unwrap()].parse().unwrap();
            let text = &rest[rest.find('>').unwrap() + 1..];
            (x, text[..text.find('<').unwrap()].to_owned())
        })
        .collect()
}

#[test]
fn durations_are_written_in_the_unit_that_fits() {
    let cases = [
        (TimeDelta::nanoseconds(420), "420 ns"),
        (TimeDelta::microseconds(110), "110 µs"),
        (TimeDelta::microseconds(-50), "50.0 µs"),
        (TimeDelta::microseconds(1_500), "1.50 ms"),
        (TimeDelta::milliseconds(312), "312 ms"),
        (TimeDelta::milliseconds(1_020), "1.02 s"),
        (TimeDelta::zero(), "0 ns"),
    ];
    for (d, words) in cases {
        assert_eq!(duration(d), words, "{d:?}");
    }
}

#[test]
fn the_axis_has_round_labelled_ticks_evenly_spaced() {
    // 5.601 s: a tick a second, 0 s to 5 s.
    let events = episode(CALL, 0, 5_400_000, 5_601_000);
    let svg = timeline(&events, CALL).unwrap();
    let ticks = labelled(&svg, "axis-tick");
    let labels: Vec<&str> = ticks.iter().map(|(_, l)| l.as_str()).collect();
    assert_eq!(labels, ["0 s", "1 s", "2 s", "3 s", "4 s", "5 s"]);
    let step = PLOT * 1e6 / 5_601_000.0;
    for pair in ticks.windows(2) {
        assert!((pair[1].0 - pair[0].0 - step).abs() < 0.11, "{pair:?}");
    }
    assert!(svg.contains("time since 2026-11-27 09:00:00.000000 UTC (the call's first event)"));
    // The issue's 312 ms axis: a tick every 50 ms.
    let axis = Axis::new(base(), base() + TimeDelta::milliseconds(312));
    let labels: Vec<String> = axis.ticks().into_iter().map(|(_, l)| l).collect();
    assert_eq!(
        labels,
        [
            "0 ms", "50 ms", "100 ms", "150 ms", "200 ms", "250 ms", "300 ms"
        ]
    );
    // A step below the unit gets one decimal: 0.5 ms apart over 3 ms.
    let axis = Axis::new(base(), base() + TimeDelta::microseconds(3_000));
    let labels: Vec<String> = axis.ticks().into_iter().map(|(_, l)| l).collect();
    assert_eq!(labels[..3], ["0.0 ms", "0.5 ms", "1.0 ms"]);
}

#[test]
fn the_legend_explains_every_mark_and_line_style() {
    let events = episode(CALL, 0, 10_000, 10_110);
    let one = timeline(&events, CALL).unwrap();
    let legend: Vec<String> = labelled(&one, "legend")
        .into_iter()
        .map(|(_, l)| l)
        .collect();
    for expected in [
        "NotRecording band",
        "PendingRecording band",
        "Recording band",
        "Failed band",
        "Ended band",
        "#n bar: retention capability",
        "→ status: updateRecordingStatus request sent",
        "← completed answer",
        "✕ no answer",
        "numbered badge, dashed line: a checkpoint of the rule",
        "✗ in red: a violation",
        "a tick of the time axis",
    ] {
        assert!(
            legend.iter().any(|l| l.contains(expected)),
            "{expected} in {legend:?}"
        );
    }
    let all = trail_timeline(&events);
    let legend: Vec<String> = labelled(&all, "legend")
        .into_iter()
        .map(|(_, l)| l)
        .collect();
    for expected in [
        "NotRecording",
        "Recording:",
        "checkpoint [n]",
        "red row",
        "time axis",
    ] {
        assert!(
            legend.iter().any(|l| l.contains(expected)),
            "{expected} in {legend:?}"
        );
    }
}

#[test]
fn the_gaps_are_numbers_from_the_timestamps() {
    // Capability 1 ends at 10 ms, `notRecording` is sent 110 µs later.
    let events = episode(CALL, 0, 10_000, 10_110);
    let svg = timeline(&events, CALL).unwrap();
    let gaps: Vec<String> = labelled(&svg, "gap").into_iter().map(|(_, l)| l).collect();
    assert_eq!(
        gaps,
        [
            "acknowledged (completed answer) 420 µs after `recording` was sent",
            "entered `Recording` 10.0 µs after the acknowledgement",
            "first capability (#1) started 50.0 µs after the acknowledgement",
            "last capability (#1) ended 110 µs before `notRecording` was sent",
        ]
    );
    assert!(svg.contains("The rule holds for this call"), "{svg}");
    assert!(!svg.contains("VIOLATION"));
    // The same numbers in the whole trail's row.
    let all = trail_timeline(&events);
    assert!(
        all.contains("ended 110 µs before `notRecording` was sent"),
        "{all}"
    );
    assert!(
        all.contains("acknowledged (completed answer) 420 µs after"),
        "{all}"
    );
}

#[test]
fn a_capability_ending_after_the_report_is_a_marked_violation() {
    // By line: the report, then the capability's end 300 µs later.
    let events = episode(CALL, 0, 10_410, 10_110);
    let svg = timeline(&events, CALL).unwrap();
    let bad: Vec<String> = labelled(&svg, "gap violation")
        .into_iter()
        .map(|(_, l)| l)
        .collect();
    assert_eq!(
        bad,
        ["✗ capability #1 ended on a later line, 300 µs after `notRecording` was sent"]
    );
    assert!(svg.contains("✗ VIOLATION at line 6"), "{svg}");
    assert!(svg.contains("G2/end-reported-while-retention-alive"));
    assert!(svg.contains(r#"class="violation-badge""#));

    // By the clock: the end's line comes first, but it is stamped 200 µs after the report.
    let mut events = episode(CALL, 0, 10_000, 10_110);
    events[5].at = base() + TimeDelta::microseconds(10_310);
    let svg = timeline(&events, CALL).unwrap();
    let bad: Vec<String> = labelled(&svg, "gap violation")
        .into_iter()
        .map(|(_, l)| l)
        .collect();
    assert_eq!(
        bad,
        [
            "✗ last capability (#1) ended 200 µs after `notRecording` was sent by the clock, \
             though on an earlier line"
        ]
    );
    assert!(svg.contains("G9/time-goes-back"), "{svg}");
}

#[test]
fn a_capability_started_before_the_acknowledgement_is_a_marked_violation() {
    use CallState::{NotRecording, PendingRecording};
    let events = [
        at(0, CALL, transition(NotRecording, PendingRecording)),
        at(10, CALL, sent(RecordingStatus::Recording, "req-1")),
        at(20, CALL, started(1)),
    ];
    let svg = timeline(&events, CALL).unwrap();
    assert!(
        svg.contains("✗ started while the call was PendingRecording: no acknowledgement allows it"),
        "{svg}"
    );
    assert!(svg.contains("G1/retention-outside-recording"));
}

#[test]
fn the_whole_trail_lists_every_call_and_marks_each_violating_one() {
    let (good, bad, worse) = (
        "0b5e6f1c2d3a4e4f8a9bc0d1e2f30415",
        "11111111222233334444555566667777",
        "99999999888877776666555544443333",
    );
    let mut events = episode(good, 0, 10_000, 10_110);
    events.extend(episode(bad, 20_000, 30_410, 30_110));
    events.extend(episode(worse, 40_000, 50_410, 50_110));
    let svg = trail_timeline(&events);
    for call in [good, bad, worse] {
        assert!(
            svg.contains(&format!(
                r#"class="call-id" font-family="monospace" font-weight="bold">{call}<"#
            )),
            "{call}"
        );
    }
    assert_eq!(svg.matches(r#"<g class="call-row">"#).count(), 1);
    assert_eq!(svg.matches(r#"<g class="call-row violation">"#).count(), 2);
    // `verify` stops at the first: line 13, the second call's; the third is found on its own.
    assert!(
        svg.contains(&format!("first violation at line 13, call {bad}: ")),
        "{svg}"
    );
    assert!(svg.contains("2 of 3 break the rule"), "{svg}");
    // A thin bar per capability, under its call's strip.
    assert_eq!(svg.matches(r#"<rect class="capability""#).count(), 3);
    assert!(
        svg.contains("✗ VIOLATION at line 20: end of recording reported while retention is alive"),
        "{svg}"
    );
    assert_eq!(
        svg.matches(r#"class="violation-badge""#).count(),
        2 + 1,
        "two rows and the legend"
    );
    // Events about no call have no row.
    events.push(at(
        60_000,
        "",
        AuditKind::NotificationAccepted {
            via: "x".into(),
            routed: 0,
            ignored: 0,
        },
    ));
    assert_eq!(
        trail_timeline(&events)
            .matches("<g class=\"call-row")
            .count(),
        3
    );
    // One trail, one picture.
    assert_eq!(trail_timeline(&events), trail_timeline(&events));
}

#[test]
fn hostile_text_from_the_trail_is_escaped() {
    let hostile = "</text><script>alert(\"x\")</script>&\u{1}";
    let events = episode(hostile, 0, 10_000, 10_110);
    let one = timeline(&events, hostile).unwrap();
    let all = trail_timeline(&events);
    for svg in [&one, &all] {
        assert!(!svg.contains("<script"), "{svg}");
        assert!(!svg.contains('\u{1}'));
        assert!(
            svg.contains(
                "&lt;/text&gt;&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;\u{fffd}"
            ),
            "{svg}"
        );
        // Every `<` opens a tag of the page's own vocabulary.
        for tag in svg.split('<').skip(1) {
            let name: String = tag
                .trim_start_matches('/')
                .chars()
                .take_while(char::is_ascii_alphabetic)
                .collect();
            assert!(
                [
                    "svg", "title", "rect", "text", "tspan", "line", "circle", "g"
                ]
                .contains(&name.as_str()),
                "<{name} in {svg}"
            );
        }
    }
}
