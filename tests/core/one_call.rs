//! One Graph call, one truth (G7), through the core API without the driver: one live value per
//! call whatever the spelling of its id, updates that must agree with the request, `completed`
//! with an error is no acknowledgement, and a refused audit event stops the step for real.
//! Each test's comment says which way of breaking the rule it closes.

use std::sync::Arc;

use recording_status::audit::{AuditEvent, AuditKind, MemorySink, verify};
use recording_status::testing::{ScriptedTransport, Step};
use recording_status::{
    Begin, CallState, Calls, Error, Graph, PendingRecording, RecordingStatus, StopError,
};

use crate::support::bodies::operation;
use crate::support::graph::{graph, proof};
use crate::support::ids::{OP_UPPER, call_id, this_call, this_call_key, this_call_upper};
use crate::support::sinks::Refusing;

// -- One value per call -------------------------------------------------------------------------

/// A second value for a live call is refused, under any spelling of its id: two values could
/// each report a status, and one could report `notRecording` while the other's media is still
/// being persisted.
#[test]
fn a_second_live_value_is_refused_under_either_spelling() {
    let calls = Calls::new(Arc::new(MemorySink::default()));
    let first = calls.open(call_id()).unwrap();
    for spelling in [
        this_call(),
        this_call_upper(),
        this_call().to_ascii_uppercase(),
    ] {
        let Err(Error::AlreadyOpen { call_id }) = calls.open(spelling.parse().unwrap()) else {
            panic!("{spelling}: a second live value must be refused");
        };
        assert_eq!(
            call_id.as_str(),
            spelling,
            "the error names the call as asked"
        );
        assert!(
            Error::AlreadyOpen { call_id }
                .to_string()
                .contains(&spelling)
        );
    }
    assert!(calls.is_open(&this_call_upper().parse().unwrap()));
    drop(first);
    assert!(!calls.is_open(&call_id()));
    let again = calls.open(this_call_upper().parse().unwrap()).unwrap();
    assert_eq!(again.id().as_str(), this_call_upper());
}

/// A value stays "the" value through every transition, and ending it frees the call.
#[tokio::test]
async fn the_seat_follows_the_value_through_transitions() {
    let calls = Calls::new(Arc::new(MemorySink::default()));
    let g = graph(vec![Step::completed(), Step::completed()]);
    let call = calls.open(call_id()).unwrap();
    let Begin::Recording(call) = call.begin_recording(&g).await.unwrap() else {
        panic!("recording")
    };
    assert!(calls.open(this_call_upper().parse().unwrap()).is_err());
    let call = call
        .stop_recording(&g, std::future::pending())
        .await
        .unwrap();
    assert!(calls.open(this_call_upper().parse().unwrap()).is_err());
    drop(call.end());
    assert!(calls.open(this_call_upper().parse().unwrap()).is_ok());
}

/// The verifier keys calls by their normalised id, so `notRecording` under one spelling while
/// retention is alive under the other is a violation, not two unrelated calls.
#[test]
fn verify_rejects_a_stop_under_another_spelling_while_retention_is_alive() {
    let at = |id: &str, kind| AuditEvent::now(id, kind);
    let trail = vec![
        at(
            &this_call(),
            AuditKind::RequestSent {
                status: RecordingStatus::Recording,
                client_context: "c1".into(),
                client_request_id: "r1".into(),
            },
        ),
        at(
            &this_call(),
            AuditKind::ResponseReceived {
                client_request_id: "r1".into(),
                http_status: 200,
                outcome: recording_status::audit::ResponseKind::Completed,
                operation_id: None,
                request_id: None,
                echoed_client_request_id: None,
                date: None,
            },
        ),
        at(
            &this_call(),
            AuditKind::Transition {
                from: CallState::PendingRecording,
                to: CallState::Recording,
                reason: "acknowledged".into(),
            },
        ),
        at(
            &this_call(),
            AuditKind::RetentionStarted {
                capability: 1,
                owned: true,
            },
        ),
        at(
            &this_call_upper(),
            AuditKind::RequestSent {
                status: RecordingStatus::NotRecording,
                client_context: "c2".into(),
                client_request_id: "r2".into(),
            },
        ),
    ];
    let violation = verify(&trail).unwrap_err();
    assert_eq!(violation.index, 4);
    assert!(
        violation.to_string().contains("retention is alive"),
        "{violation}"
    );
}

/// The trail writes one spelling per call, whatever spelling the bot opened it with.
#[tokio::test]
async fn the_trail_uses_one_spelling_per_call() {
    let audit = Arc::new(MemorySink::default());
    let calls = Calls::new(audit.clone());
    let g = graph(vec![Step::completed(), Step::completed()]);
    let call = calls.open(this_call_upper().parse().unwrap()).unwrap();
    let Begin::Recording(call) = call.begin_recording(&g).await.unwrap() else {
        panic!("recording")
    };
    drop(call.retention().unwrap());
    drop(call.end());
    let spellings: std::collections::BTreeSet<String> =
        audit.events().into_iter().map(|e| e.call_id).collect();
    assert_eq!(spellings.into_iter().collect::<Vec<_>>(), [this_call_key()]);
    // The request itself used the spelling the bot gave.
    assert!(
        g.transport().requests()[0]
            .uri()
            .to_string()
            .contains(&this_call_upper())
    );
}

// -- An update must agree with the request ------------------------------------------------------

async fn pending(
    calls: &Calls,
    g: &Graph<ScriptedTransport>,
) -> recording_status::Call<PendingRecording> {
    let call = calls.open(call_id()).unwrap();
    let Begin::Pending(call) = call.begin_recording(g).await.unwrap() else {
        panic!("running must stay pending")
    };
    call
}

/// An update carrying our operation id with another request's `clientContext` does not settle
/// the request: when both are given, both must match, and the contradiction is audited.
#[tokio::test]
async fn our_operation_id_with_another_context_does_not_settle() {
    let audit = Arc::new(MemorySink::default());
    let calls = Calls::new(audit.clone());
    let g = graph(vec![Step::running()]);
    let call = pending(&calls, &g).await;
    let forged = operation(&format!(
        r#"{{"id":"{OP_UPPER}","clientContext":"another-request","status":"completed"}}"#
    ));
    assert!(!call.is_for_this_request(&forged));
    let Begin::Pending(call) = call.handle_operation(&g, &proof(), &forged).await else {
        panic!("a contradicting update must be ignored")
    };
    let reason = audit.events().into_iter().find_map(|e| match e.kind {
        AuditKind::OperationUpdate {
            matched: false,
            reason,
            ..
        } => reason,
        _ => None,
    });
    assert_eq!(
        reason.as_deref(),
        Some("operation id and clientContext contradict each other")
    );
    // Both agreeing: settles.
    let genuine = operation(&format!(
        r#"{{"id":"{OP_UPPER}","clientContext":"{}","status":"completed"}}"#,
        call.client_context()
    ));
    assert!(matches!(
        call.handle_operation(&g, &proof(), &genuine).await,
        Begin::Recording(_)
    ));
    verify(&audit.events()).unwrap();
}

/// `@odata.type` is read: an operation of another type (a prompt, DTMF tones, an invitation)
/// never settles a pending recording, even with a colliding id and our `clientContext`.
#[tokio::test]
async fn a_foreign_operation_type_never_settles() {
    let calls = Calls::new(Arc::new(MemorySink::default()));
    let g = graph(vec![Step::running()]);
    let call = pending(&calls, &g).await;
    for odata_type in [
        "#microsoft.graph.playPromptOperation",
        "#microsoft.graph.sendDtmfTonesOperation",
        "#microsoft.graph.inviteParticipantsOperation",
    ] {
        let foreign = operation(&format!(
            r#"{{"@odata.type":"{odata_type}","id":"{OP_UPPER}","clientContext":"{}","status":"completed"}}"#,
            call.client_context()
        ));
        assert!(!call.is_for_this_request(&foreign), "{odata_type}");
    }
    for odata_type in [
        "#microsoft.graph.updateRecordingStatusOperation",
        "#microsoft.graph.commsOperation",
    ] {
        let ours = operation(&format!(
            r#"{{"@odata.type":"{odata_type}","id":"{OP_UPPER}","status":"completed"}}"#
        ));
        assert!(call.is_for_this_request(&ours), "{odata_type}");
    }
}

// -- `completed` with an error ------------------------------------------------------------------

/// A `completed` notification with an error `resultInfo` or a `completionReason` other than
/// success is no acknowledgement: the call fails and reports `failed`.
#[tokio::test]
async fn a_completed_notification_with_an_error_fails_the_call() {
    for body in [
        r#""resultInfo":{"code":400,"subcode":8522,"message":"bad"}"#,
        r#""resultInfo":{"code":"500"}"#,
        r#""completionReason":"mediaOperationCanceled""#,
        r#""completionReason":"unknown""#,
    ] {
        let audit = Arc::new(MemorySink::default());
        let calls = Calls::new(audit.clone());
        let g = graph(vec![Step::running(), Step::completed()]);
        let call = pending(&calls, &g).await;
        let update = operation(&format!(
            r#"{{"id":"{OP_UPPER}","status":"completed",{body}}}"#
        ));
        let Begin::Failed(call) = call.handle_operation(&g, &proof(), &update).await else {
            panic!("{body}: completed with an error is not an acknowledgement")
        };
        assert!(matches!(call.reason(), Error::OperationFailed(_)), "{body}");
        assert_eq!(g.transport().statuses(), ["recording", "failed"], "{body}");
        verify(&audit.events()).unwrap();
    }
}

/// The same for a 2xx answer: `completed` with a failing `resultInfo` fails the call.
#[tokio::test]
async fn a_completed_answer_with_an_error_fails_the_call() {
    let audit = Arc::new(MemorySink::default());
    let calls = Calls::new(audit.clone());
    let g = graph(vec![
        Step::completed_with(Some(403), None),
        Step::completed(),
    ]);
    let call = calls.open(call_id()).unwrap();
    let Begin::Failed(call) = call.begin_recording(&g).await.unwrap() else {
        panic!("completed with resultInfo 403 is not an acknowledgement")
    };
    let Error::OperationFailed(op) = call.reason() else {
        panic!("{:?}", call.reason())
    };
    assert_eq!(op.result_info.as_ref().and_then(|r| r.code), Some(403));
    verify(&audit.events()).unwrap();
}

// -- A refused audit event stops the step -------------------------------------------------------

/// A capability whose end the sink refused is not released: the drain does not complete and
/// nothing is sent until the end is in the trail, so the crate's own trail always verifies.
#[tokio::test]
async fn an_end_the_sink_refused_is_recorded_before_the_stop_or_nothing_is_sent() {
    // Refuses `RetentionEnded` (and only that) while refusing is on.
    let sink = Refusing::idle(|kind| matches!(kind, AuditKind::RetentionEnded { .. }));
    let calls = Calls::new(sink.clone());
    let g = graph(vec![Step::completed(), Step::completed()]);
    let call = calls.open(call_id()).unwrap();
    let Begin::Recording(call) = call.begin_recording(&g).await.unwrap() else {
        panic!("recording")
    };
    let handle = call.retention_handle().unwrap();
    sink.set_refusing(true);
    drop(handle); // its end is refused
    let Err(StopError::StillRecording { call, error }) =
        call.stop_recording(&g, std::future::ready(())).await
    else {
        panic!("nothing may be reported while an end is missing from the trail")
    };
    assert!(matches!(error, Error::Audit(_)), "{error}");
    assert_eq!(g.transport().statuses(), ["recording"]);
    // The sink recovers: the end is recorded first, then the report goes out.
    sink.set_refusing(false);
    let call = call
        .stop_recording(&g, std::future::ready(()))
        .await
        .unwrap();
    assert_eq!(g.transport().statuses(), ["recording", "notRecording"]);
    let trail = sink.events();
    verify(&trail).unwrap();
    let ended = trail
        .iter()
        .position(|e| matches!(e.kind, AuditKind::RetentionEnded { .. }))
        .unwrap();
    let reported = trail
        .iter()
        .position(|e| {
            matches!(
                e.kind,
                AuditKind::RequestSent {
                    status: RecordingStatus::NotRecording,
                    ..
                }
            )
        })
        .unwrap();
    assert!(ended < reported);
    drop(call);
}

/// One live value per Graph call in the whole process, however many registries it builds: a
/// second registry cannot open a call another registry's value holds, under either spelling,
/// and sees it open; once that value is gone, it can.
#[test]
fn a_second_registry_cannot_open_a_call_another_registry_holds() {
    let first_registry = Calls::new(Arc::new(MemorySink::default()));
    let second_registry = Calls::new(Arc::new(MemorySink::default()));
    let held = first_registry.open(call_id()).unwrap();
    for spelling in [this_call(), this_call_upper()] {
        let id: recording_status::CallId = spelling.parse().unwrap();
        assert!(second_registry.is_open(&id), "{spelling}");
        let refused = second_registry.open(id);
        assert!(
            matches!(refused, Err(Error::AlreadyOpen { .. })),
            "{spelling}: {refused:?}"
        );
    }
    drop(held);
    let now_here = second_registry
        .open(this_call_upper().parse().unwrap())
        .unwrap();
    assert!(matches!(
        first_registry.open(call_id()),
        Err(Error::AlreadyOpen { .. })
    ));
    drop(now_here);
}
