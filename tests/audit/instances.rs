//! Several instances of a bot, one audit (G7 across trails): each trail holds on its own, and a
//! call held by two instances at once is flagged, naming both and when each held it.
//!
//! Trails come from `tests/fixtures/instances/` (hand-made, each call spelled its own way, see
//! that folder's `README.md`) and from real instances driven here through the crate, each a
//! registry of its own writing to a trail of its own, as separate processes would.

use recording_status::audit::{
    AuditEvent, AuditKind, InstanceTrail, JsonLinesSink, Rule, verify_instances,
};
use recording_status::testing::Step;
use recording_status::{Begin, CallState};

use crate::support::ids::{
    FIXTURE_CALL, FIXTURE_CALL_KEY, FIXTURE_CALL_UPPER, call_id, other_call, this_call,
    this_call_key, this_call_upper, unique_call,
};
use crate::support::instances::{Instance, respelled};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");

/// A trail under `tests/fixtures/`, read as the auditor reads it.
fn fixture(path: &str) -> Vec<AuditEvent> {
    let path = format!("{FIXTURES}/{path}");
    JsonLinesSink::read(&path)
        .unwrap_or_else(|e| panic!("{path}: {e}"))
        .events
}

#[test]
fn instances_recording_different_calls_at_once_hold_together() {
    let (a, c) = (
        fixture("instances/a_records.jsonl"),
        fixture("instances/c_records_another_call.jsonl"),
    );
    let report = verify_instances(&[InstanceTrail::new("a", &a), InstanceTrail::new("c", &c)]);
    assert!(report.holds(), "{report:?}");
    assert_eq!(report.trails.len(), 2);
}

#[test]
fn one_call_held_by_two_instances_at_once_is_flagged_under_either_spelling() {
    let a = fixture("instances/a_records.jsonl");
    let b = fixture("instances/b_records_meanwhile.jsonl");
    // The two trails spell the call differently: a GUID, and Graph's upper case.
    assert_eq!(a[0].call_id, FIXTURE_CALL);
    assert_eq!(b[0].call_id, FIXTURE_CALL_UPPER);
    let report = verify_instances(&[InstanceTrail::new("a", &a), InstanceTrail::new("b", &b)]);
    assert!(report.trails.iter().all(Result::is_ok), "each holds alone");
    assert!(!report.holds());
    assert_eq!(report.overlaps.len(), 1, "{:?}", report.overlaps);
    let overlap = &report.overlaps[0];
    assert_eq!(overlap.rule(), Rule::LiveInTwoInstances);
    assert_eq!(overlap.rule().code(), "G7/live-in-two-instances");
    assert_eq!(overlap.call_id, FIXTURE_CALL_KEY);
    let at = |s: &str| s.parse().unwrap();
    let (first, second) = (&overlap.first, &overlap.second);
    assert_eq!(
        (first.name.as_str(), first.instance, first.from, first.until),
        (
            "a",
            0,
            at("2025-06-02T09:00:00Z"),
            at("2025-06-02T09:00:23Z")
        )
    );
    assert_eq!(
        (
            second.name.as_str(),
            second.instance,
            second.from,
            second.until
        ),
        (
            "b",
            1,
            at("2025-06-02T09:00:10Z"),
            at("2025-06-02T09:00:33Z")
        )
    );
    assert_eq!(
        (first.from_index, first.until_index, first.open),
        (0, 8, false)
    );

    // The same, whichever trail is given first.
    let report = verify_instances(&[InstanceTrail::new("b", &b), InstanceTrail::new("a", &a)]);
    assert_eq!(report.overlaps.len(), 1);
    assert_eq!(report.overlaps[0].first.name, "a");
}

#[test]
fn a_call_recorded_by_one_instance_after_the_other_stopped_holds() {
    let a = fixture("instances/a_records.jsonl");
    let b = fixture("instances/b_records_after_a_stopped.jsonl");
    let report = verify_instances(&[InstanceTrail::new("a", &a), InstanceTrail::new("b", &b)]);
    assert!(report.holds(), "{:?}", report.overlaps);
}

#[test]
fn a_trails_own_violation_is_reported_for_that_trail_and_does_not_hide_an_overlap() {
    let a = fixture("instances/a_records.jsonl");
    // Retention starts at 09:00:04 and is never seen to end: the trail breaks G2 at line 6.
    let forged = fixture("trails/c_stop_under_another_spelling.jsonl");
    let report = verify_instances(&[
        InstanceTrail::new("a", &a),
        InstanceTrail::new("forged", &forged),
    ]);
    assert!(report.trails[0].is_ok());
    let violation = report.trails[1].as_ref().unwrap_err();
    assert_eq!(
        (violation.rule, violation.line()),
        (Rule::EndReportedWhileRetentionAlive, 6)
    );
    assert_eq!(report.overlaps.len(), 1);
    assert_eq!(report.overlaps[0].second.name, "forged");
    assert!(report.overlaps[0].second.open, "its capability never ends");
}

/// Real instances, each with its own registry: the second is allowed to open the call, which
/// only the audit across trails can catch. The trails are respelled as in the fixtures.
#[test]
fn real_instances_recording_one_call_at_once_are_flagged() {
    let (a, b) = (Instance::new(), Instance::new());
    let in_a = a.record(call_id());
    // B is another process; in this one the call has one value, so B records a stand-in
    // whose trail is then written as the same call.
    let in_b = b.record(stand_in());
    drop(a.retain_and_stop(in_a));
    drop(b.retain_and_stop(in_b));
    let (a, b) = (
        respelled(a.events(), &this_call()),
        respelled(b.events(), &this_call_upper()),
    );
    let report = verify_instances(&[InstanceTrail::new("a", &a), InstanceTrail::new("b", &b)]);
    assert!(report.trails.iter().all(Result::is_ok), "{report:?}");
    assert_eq!(report.overlaps.len(), 1, "{report:?}");
    assert_eq!(report.overlaps[0].call_id, this_call_key());
}

/// A `recording` request out in one instance while another records is already two holders:
/// Graph may apply the other's `notRecording` after this one's `recording`.
#[test]
fn a_recording_request_out_while_another_instance_records_is_flagged() {
    let a = Instance::new();
    let b = Instance::answering([Step::running()]);
    let in_a = a.record(call_id());
    let pending = b.calls.open(stand_in()).unwrap();
    let Ok(Begin::Pending(pending)) = pending.begin_recording_blocking(&b.graph) else {
        panic!("running must stay pending")
    };
    drop(a.retain_and_stop(in_a));
    drop(pending.end());
    let (a, b) = (a.events(), respelled(b.events(), &this_call()));
    let report = verify_instances(&[InstanceTrail::new("a", &a), InstanceTrail::new("b", &b)]);
    assert_eq!(report.overlaps.len(), 1, "{report:?}");
    assert!(matches!(
        &b[report.overlaps[0].second.from_index].kind,
        AuditKind::Transition {
            to: CallState::PendingRecording,
            ..
        }
    ));
}

#[test]
fn real_instances_handing_a_call_over_hold() {
    let (a, b) = (Instance::new(), Instance::new());
    drop(a.retain_and_stop(a.record(call_id())));
    drop(b.retain_and_stop(b.record(call_id())));
    // Each also records a call of its own meanwhile the other is idle.
    drop(a.retain_and_stop(a.record(other_call().parse().unwrap())));
    let (a, b) = (a.events(), b.events());
    let report = verify_instances(&[InstanceTrail::new("a", &a), InstanceTrail::new("b", &b)]);
    assert!(report.holds(), "{report:?}");
}

/// An instance that crashed while recording leaves a trail that ends with the call open; one
/// that takes the call over after that trail's last event is not flagged, and the open call is
/// still reported with the first trail.
#[test]
fn a_takeover_after_a_cut_trail_ends_holds_and_the_cut_trail_says_what_it_left_open() {
    let (a, b) = (Instance::new(), Instance::new());
    let in_a = a.record(call_id());
    let alive = in_a.retention_handle().unwrap();
    let cut = a.events();
    drop(b.retain_and_stop(b.record(stand_in())));
    let report = verify_instances(&[
        InstanceTrail::new("a", &cut),
        InstanceTrail::new("b", &respelled(b.events(), &this_call())),
    ]);
    assert!(report.overlaps.is_empty(), "{report:?}");
    let open = &report.trails[0].as_ref().unwrap().open;
    assert_eq!(
        (open[0].call_id.as_str(), open[0].state),
        (this_call_key().as_str(), CallState::Recording)
    );
    drop((alive, in_a));
}

/// A call for instance B to record in place of [`CALL`] while A holds it in this process (where
/// a second value is refused), its trail then respelled as [`CALL`]: what a second process
/// recording the call would write.
fn stand_in() -> recording_status::CallId {
    unique_call().parse().unwrap()
}
