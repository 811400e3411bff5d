//! The verifier proves the rule on any trail, forged or real (G9).
//!
//! Forged trails live in `tests/fixtures/trails/*.jsonl`, one `AuditEvent` per line in its
//! serde form, each described in that folder's `README.md`. Every forged trail must be
//! rejected with the exact rule and line; the `ok_*` ones must pass. Real trails are produced
//! here through the crate (`Calls` and `ScriptedTransport`): they must pass, and a real trail
//! cut short must say which calls it leaves open.
//!
//! The `a_*`, `b_*` and `e_*` trails are the ones a weaker verifier accepts: one that keeps an
//! acknowledgement after using it, has no notion of "end reported", or trusts the `matched`
//! flag of operation updates instead of re-deriving it.

use std::sync::Arc;
use std::time::Duration;

use recording_status::audit::{AuditEvent, AuditKind, MemorySink, Rule, Verified, verify};
use recording_status::auth::Authenticated;
use recording_status::testing::Step;
use recording_status::{Begin, CallState, Calls};

use crate::support::block_on;
use crate::support::bodies::update_for;
use crate::support::graph::graph;
use crate::support::ids::{FIXTURE_CALL_KEY as NORMALIZED, call_id, this_call_key};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/trails");

fn load(name: &str) -> Vec<AuditEvent> {
    let path = format!("{FIXTURES}/{name}");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    text.lines()
        .enumerate()
        .map(|(i, line)| {
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{path}:{}: {e}", i + 1))
        })
        .collect()
}

/// The forged trails, with the rule each breaks and the 1-based line where it is caught.
const FORGED: &[(&str, Rule, usize)] = &[
    (
        "a_ack_reused_after_failed.jsonl",
        Rule::RecordingWithoutAcknowledgement,
        8,
    ),
    (
        "a_ack_reused_after_ended.jsonl",
        Rule::RecordingWithoutAcknowledgement,
        9,
    ),
    (
        "b_retention_after_end_reported.jsonl",
        Rule::RetentionAfterEndReported,
        9,
    ),
    (
        "c_stop_under_another_spelling.jsonl",
        Rule::EndReportedWhileRetentionAlive,
        6,
    ),
    (
        "d_second_episode_after_revocation.jsonl",
        Rule::LeftRecordingWhileRetentionAlive,
        15,
    ),
    (
        "e_update_with_another_requests_context.jsonl",
        Rule::RecordingWithoutAcknowledgement,
        6,
    ),
    (
        "e_our_operation_id_with_another_context.jsonl",
        Rule::RecordingWithoutAcknowledgement,
        6,
    ),
    (
        "e_another_operation_id.jsonl",
        Rule::RecordingWithoutAcknowledgement,
        5,
    ),
    (
        "f_ack_for_an_earlier_request.jsonl",
        Rule::RecordingWithoutAcknowledgement,
        6,
    ),
];

/// The hand-made trails that hold.
const HOLDING: &[&str] = &["ok_cut_while_recording_unauthenticated.jsonl"];

fn rejects(name: &str) {
    let &(_, rule, line) = FORGED
        .iter()
        .find(|(n, ..)| *n == name)
        .unwrap_or_else(|| panic!("{name} is not in FORGED"));
    let violation = match verify(&load(name)) {
        Ok(verified) => panic!("{name} breaks {rule} but was accepted: {verified:?}"),
        Err(v) => v,
    };
    assert_eq!(
        (violation.rule, violation.line(), violation.call_id.as_str()),
        (rule, line, NORMALIZED),
        "{name}: {violation}"
    );
    assert_eq!(violation.index + 1, line);
}

/// (a) One `completed` acknowledgement reused: the call left `Recording` for `Failed` and
/// came back with no new request.
#[test]
fn an_acknowledgement_reused_after_failed_is_rejected() {
    rejects("a_ack_reused_after_failed.jsonl");
}

/// (a) The same, after the call ended (revoked) and a new value entered `Recording`.
#[test]
fn an_acknowledgement_reused_after_ended_is_rejected() {
    rejects("a_ack_reused_after_ended.jsonl");
}

/// (b) A capability started after `notRecording` was sent.
#[test]
fn retention_after_the_end_was_reported_is_rejected() {
    rejects("b_retention_after_end_reported.jsonl");
}

/// (c) `notRecording` under the upper-case dash-less spelling while retention is alive under
/// the GUID.
#[test]
fn a_stop_under_another_spelling_is_rejected() {
    rejects("c_stop_under_another_spelling.jsonl");
}

/// (d) The first episode's capability was revoked; the second episode leaves `Recording`
/// with its own capability alive.
#[test]
fn a_second_episode_after_a_revocation_is_rejected() {
    rejects("d_second_episode_after_revocation.jsonl");
}

/// (e) An update marked `matched` carrying another request's `clientContext`.
#[test]
fn an_update_with_another_requests_context_is_rejected() {
    rejects("e_update_with_another_requests_context.jsonl");
}

/// (e) Our operation id (in Graph's upper-case dash-less spelling) with another request's
/// `clientContext`: the ids contradict each other.
#[test]
fn our_operation_id_with_another_context_is_rejected() {
    rejects("e_our_operation_id_with_another_context.jsonl");
}

/// (e) Another operation's id, no `clientContext`, marked `matched`.
#[test]
fn another_operation_id_is_rejected() {
    rejects("e_another_operation_id.jsonl");
}

/// A `completed` response to an earlier attempt, not the last `recording` request.
#[test]
fn an_acknowledgement_of_an_earlier_request_is_rejected() {
    rejects("f_ack_for_an_earlier_request.jsonl");
}

/// A hand-made trail that holds but is cut while recording, entered through an update that
/// the crate did not authenticate (and whose operation id is in another spelling).
#[test]
fn a_cut_trail_says_what_it_leaves_open_and_what_was_not_authenticated() {
    let verified = verify(&load("ok_cut_while_recording_unauthenticated.jsonl")).unwrap();
    assert!(!verified.is_complete());
    assert_eq!(verified.open.len(), 1);
    let open = &verified.open[0];
    assert_eq!(
        (open.call_id.as_str(), open.state, open.live.as_slice()),
        (NORMALIZED, CallState::Recording, &[1][..])
    );
    assert_eq!(verified.unauthenticated.len(), 1);
    let entry = &verified.unauthenticated[0];
    assert_eq!(
        (entry.call_id.as_str(), entry.index, entry.update),
        (NORMALIZED, 5, 4)
    );
    assert_eq!(
        entry.via,
        "elsewhere: api gateway validated the bot framework jwt"
    );
}

/// Every fixture is exercised here and described in the folder's README.
#[test]
fn every_fixture_is_tested_and_described() {
    let readme = std::fs::read_to_string(format!("{FIXTURES}/README.md")).unwrap();
    let mut names: Vec<String> = std::fs::read_dir(FIXTURES)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".jsonl"))
        .collect();
    names.sort();
    let mut known: Vec<&str> = FORGED
        .iter()
        .map(|(n, ..)| *n)
        .chain(HOLDING.iter().copied())
        .collect();
    known.sort_unstable();
    assert_eq!(names, known);
    for (name, rule, line) in FORGED {
        let row = readme
            .lines()
            .find(|l| l.contains(&format!("`{name}`")))
            .unwrap_or_else(|| panic!("README.md does not list {name}"));
        assert!(
            row.contains(rule.code()) && row.contains(&format!("| {line} |")),
            "README.md row for {name} must name {} at line {line}: {row}",
            rule.code()
        );
    }
    for name in HOLDING {
        assert!(
            readme.contains(&format!("`{name}`")),
            "README.md does not list {name}"
        );
    }
}

#[test]
fn a_violation_names_the_line_the_call_and_the_rule() {
    let violation = verify(&load("b_retention_after_end_reported.jsonl")).unwrap_err();
    assert_eq!(
        violation.to_string(),
        format!(
            "line 9 (event 8), call {NORMALIZED}: retention started after the end of recording \
             was reported (G2/retention-after-end-reported)"
        )
    );
}

/// Each event survives the JSON-lines form the fixtures use.
fn round_trip(events: &[AuditEvent]) -> Vec<AuditEvent> {
    events
        .iter()
        .map(|e| serde_json::from_str(&serde_json::to_string(e).unwrap()).unwrap())
        .collect()
}

/// A real trail, through the crate: record, two capabilities, stop; then a second episode.
/// Every prefix holds, and says what it leaves open.
#[test]
fn a_real_trail_holds_and_every_cut_says_what_is_open() {
    let audit = Arc::new(MemorySink::default());
    let calls = Calls::new(audit.clone());
    let graph = graph([Step::completed(), Step::completed(), Step::running()]);
    block_on(async {
        let call = calls.open(call_id()).unwrap();
        let Ok(Begin::Recording(call)) = call.begin_recording(&graph).await else {
            panic!("completed must record")
        };
        let handle = call.retention_handle().unwrap();
        drop(call.retention().unwrap());
        drop(handle);
        let call = call
            .stop_recording(&graph, std::future::pending())
            .await
            .unwrap();
        let Ok(Begin::Pending(call)) = call.begin_recording(&graph).await else {
            panic!("running must stay pending")
        };
        drop(call.end());
    });
    let events = round_trip(&audit.events());
    let complete = verify(&events).unwrap();
    assert!(complete.is_complete(), "{complete:?}");
    assert!(complete.unauthenticated.is_empty());
    assert_eq!(complete.retentions, 2);

    let position =
        |pred: &dyn Fn(&AuditKind) -> bool| events.iter().position(|e| pred(&e.kind)).unwrap();
    let first_start = position(&|k| matches!(k, AuditKind::RetentionStarted { .. }));
    let first_capability = match events[first_start].kind {
        AuditKind::RetentionStarted { capability, .. } => capability,
        _ => unreachable!(),
    };
    for cut in 0..=events.len() {
        let verified = verify(&events[..cut])
            .unwrap_or_else(|v| panic!("the first {cut} events of a real trail: {v}"));
        let state = |s| {
            events[..cut]
                .iter()
                .rev()
                .find_map(|e| match &e.kind {
                    AuditKind::Transition { to, .. } => Some(*to),
                    _ => None,
                })
                .unwrap_or(s)
        };
        let last = state(CallState::NotRecording);
        let open = matches!(last, CallState::PendingRecording | CallState::Recording);
        assert_eq!(verified.is_complete(), !open, "cut at {cut}: {verified:?}");
        if open {
            assert_eq!(verified.open[0].state, last);
            assert_eq!(verified.open[0].call_id, this_call_key());
        }
    }
    // Cut right after the first capability started: it is listed as alive.
    let verified = verify(&events[..=first_start]).unwrap();
    assert_eq!(verified.open[0].state, CallState::Recording);
    assert_eq!(verified.open[0].live, [first_capability]);
}

/// A real second episode after the first was revoked with a handle still alive holds; the
/// revoked handle's late end is not mistaken for the new episode's.
#[test]
fn a_real_second_episode_after_a_revocation_holds() {
    let audit = Arc::new(MemorySink::default());
    let calls = Calls::new(audit.clone());
    let graph = graph([Step::completed(), Step::completed(), Step::completed()]);
    let stuck = block_on(async {
        let call = calls.open(call_id()).unwrap();
        let Ok(Begin::Recording(call)) = call.begin_recording(&graph).await else {
            panic!()
        };
        let stuck = call.retention_handle().unwrap();
        drop(call.end());
        let call = calls.open(call_id()).unwrap();
        let Ok(Begin::Recording(call)) = call.begin_recording(&graph).await else {
            panic!()
        };
        let handle = call.retention_handle().unwrap();
        drop(handle);
        let call = call
            .stop_recording(&graph, tokio::time::sleep(Duration::from_secs(1)))
            .await
            .unwrap();
        drop(call);
        stuck
    });
    drop(stuck);
    let verified = verify(&round_trip(&audit.events())).unwrap();
    assert!(verified.is_complete(), "{verified:?}");
}

/// A recording entered through an update authenticated by the escape hatch is listed, with
/// the words the bot gave.
#[test]
fn recording_through_the_escape_hatch_is_listed() {
    let audit = Arc::new(MemorySink::default());
    let calls = Calls::new(audit.clone());
    let graph = graph([Step::running()]);
    let proof = Authenticated::danger_authenticated_elsewhere("gateway checked the JWT");
    block_on(async {
        let call = calls.open(call_id()).unwrap();
        let Ok(Begin::Pending(call)) = call.begin_recording(&graph).await else {
            panic!("running must stay pending")
        };
        let update = update_for(call.client_context(), "completed");
        let Begin::Recording(call) = call.handle_operation(&graph, &proof, &update).await else {
            panic!("a completed update for the request must record")
        };
        drop(call.end());
    });
    let events = round_trip(&audit.events());
    let verified: Verified = verify(&events).unwrap();
    assert!(verified.is_complete());
    assert_eq!(verified.unauthenticated.len(), 1, "{verified:?}");
    let entry = &verified.unauthenticated[0];
    assert_eq!(entry.call_id, this_call_key());
    assert_eq!(entry.via, "elsewhere: gateway checked the JWT");
    assert!(matches!(
        events[entry.index].kind,
        AuditKind::Transition {
            to: CallState::Recording,
            ..
        }
    ));
    assert!(matches!(
        events[entry.update].kind,
        AuditKind::OperationUpdate { .. }
    ));
}

/// A trail cut while recording (a crash), then closed by a later run (`call_recovered`): the
/// call is no longer open but recovered, reported once the later run's report follows, and
/// the capabilities the crashed run left alive can no longer count as writing.
#[test]
fn a_call_recovered_after_a_crash_is_told_apart_from_one_left_open() {
    let cut = load("ok_cut_while_recording_unauthenticated.jsonl");
    let left = verify(&cut).unwrap().open;
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].state, CallState::Recording);
    assert_eq!(left[0].last_event_at, cut.last().unwrap().at);

    let recovered = AuditEvent::now(
        NORMALIZED,
        AuditKind::CallRecovered {
            state: left[0].state,
            capabilities: left[0].live.clone(),
            last_event_at: left[0].last_event_at,
        },
    );
    let mut closed = cut.clone();
    closed.push(recovered.clone());
    let verified = verify(&closed).unwrap();
    assert!(verified.is_complete(), "{:?}", verified.open);
    assert_eq!(verified.recovered.len(), 1);
    assert_eq!(verified.recovered[0].index, cut.len());
    assert!(!verified.recovered[0].reported, "no report yet");

    let mut reported = closed.clone();
    reported.push(AuditEvent::now(
        NORMALIZED,
        AuditKind::RequestSent {
            status: recording_status::RecordingStatus::NotRecording,
            client_context: "recovery".into(),
            client_request_id: "req-recovery".into(),
        },
    ));
    let verified = verify(&reported).unwrap();
    assert!(verified.recovered[0].reported);

    // Nothing may be retained for the recovered call without a new acknowledgement.
    let mut retained = closed.clone();
    retained.push(AuditEvent::now(
        NORMALIZED,
        AuditKind::RetentionStarted {
            capability: 99,
            owned: true,
        },
    ));
    assert_eq!(
        verify(&retained).unwrap_err().rule,
        Rule::RetentionOutsideRecording
    );

    // Recovering a call that was not left open changes nothing.
    let holding = load("ok_cut_while_recording_unauthenticated.jsonl");
    let mut ended = holding[..1].to_vec();
    ended.push(AuditEvent::now(
        NORMALIZED,
        AuditKind::Transition {
            from: CallState::PendingRecording,
            to: CallState::Failed,
            reason: "test".into(),
        },
    ));
    // Written after the transition, so stamped no earlier than it.
    let mut recovered = recovered;
    recovered.at = ended[1].at;
    ended.push(recovered);
    let verified = verify(&ended).unwrap();
    assert!(verified.recovered.is_empty());
}

/// A real trail, through the crate: record, one capability, stop.
fn one_episode() -> Vec<AuditEvent> {
    let audit = Arc::new(MemorySink::default());
    let calls = Calls::new(audit.clone());
    let graph = graph([Step::completed(), Step::completed()]);
    block_on(async {
        let call = calls.open(call_id()).unwrap();
        let Ok(Begin::Recording(call)) = call.begin_recording(&graph).await else {
            panic!("completed must record")
        };
        drop(call.retention().unwrap());
        drop(
            call.stop_recording(&graph, std::future::pending())
                .await
                .unwrap(),
        );
    });
    round_trip(&audit.events())
}

/// A retention stamped before its `recording` request was sent, with the lines left in the
/// order the rule needs (and, in a file, the chain recomputed): time goes back at that line.
#[test]
fn a_retention_stamped_before_its_recording_request_is_rejected() {
    let mut events = one_episode();
    verify(&events).unwrap();
    let request = events
        .iter()
        .position(|e| matches!(e.kind, AuditKind::RequestSent { .. }))
        .unwrap();
    let start = events
        .iter()
        .position(|e| matches!(e.kind, AuditKind::RetentionStarted { .. }))
        .unwrap();
    events[start].at = events[request].at - chrono::Duration::milliseconds(1);
    let v = verify(&events).unwrap_err();
    assert_eq!((v.index, v.rule), (start, Rule::TimeGoesBack));
    assert_eq!(v.call_id, this_call_key());
}

/// Lines stamped at the same instant are in time order: equal is not going back.
#[test]
fn lines_stamped_at_the_same_instant_hold() {
    let mut events = one_episode();
    let at = events[0].at;
    for e in &mut events {
        e.at = at;
    }
    assert!(verify(&events).unwrap().is_complete());
}
