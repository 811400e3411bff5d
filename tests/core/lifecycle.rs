//! Lifecycle stories through the public API, with the scripted transport: every transition of
//! the table, the drain (G2), the audit trail (G4) and honest outcomes (G5).

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use recording_status::audit::{
    AuditEvent, AuditKind, AuditSink, JsonLinesSink, MemorySink, ResponseKind, verify,
};
use recording_status::error::AuditError;
use recording_status::testing::{ScriptedTransport, Step};
use recording_status::{
    AccessToken, Begin, Call, CallState, Endpoint, Error, Graph, NotRecording, Recording,
    RetentionWriter, StopError,
};

use crate::support::bodies::{answer, operation, update_for};
use crate::support::graph::{BEARER, graph, graph_over, open, proof, scripted};
use crate::support::ids::{OP, OP_UPPER, this_call};
use crate::support::sinks::{Refusing, as_json};
use crate::support::{self, assert_no_token};

/// A Graph that answers with `steps`, and a trail.
fn setup(steps: Vec<Step>) -> (Graph<ScriptedTransport>, Arc<MemorySink>) {
    (graph(steps), Arc::new(MemorySink::default()))
}

fn new_call(audit: &Arc<MemorySink>) -> Call<NotRecording> {
    open(audit.clone())
}

async fn recording(graph: &Graph<ScriptedTransport>, audit: &Arc<MemorySink>) -> Call<Recording> {
    support::graph::recording(graph, audit.clone()).await
}

#[tokio::test]
async fn record_then_stop() {
    let (graph, audit) = setup(vec![Step::completed(), Step::completed()]);
    let call = recording(&graph, &audit).await;
    {
        let mut w = RetentionWriter::new(call.retention().unwrap(), Vec::new());
        w.write_all(b"frame-1").unwrap();
        let (bytes, _cap) = w.finish().unwrap();
        assert_eq!(bytes, b"frame-1");
    }
    let call = call
        .stop_recording(&graph, std::future::pending())
        .await
        .unwrap();
    assert_eq!(call.state(), CallState::NotRecording);
    assert_eq!(graph.transport().statuses(), ["recording", "notRecording"]);

    // The wire: one POST per status, exact URL, headers and a fresh context each time.
    let requests = graph.transport().requests();
    assert_eq!(
        requests[0].uri().to_string(),
        format!(
            "https://graph.microsoft.com/v1.0/communications/calls/{}/updateRecordingStatus",
            this_call()
        )
    );
    assert_eq!(requests[0].headers()["authorization"], BEARER);
    assert_ne!(
        requests[0].headers()["client-request-id"],
        requests[1].headers()["client-request-id"]
    );
    let bodies = graph.transport().bodies();
    assert_ne!(bodies[0]["clientContext"], bodies[1]["clientContext"]);

    let report = verify(&audit.events()).unwrap();
    assert_eq!(report.retentions, 1);
    assert_no_token(&as_json(&audit));
}

#[tokio::test]
async fn running_stays_pending_until_completed_notification() {
    let (graph, audit) = setup(vec![Step::running()]);
    let Begin::Pending(call) = new_call(&audit).begin_recording(&graph).await.unwrap() else {
        panic!("running must stay pending");
    };
    assert_eq!(call.operation_id(), Some(OP));

    // Unrelated and non-final updates change nothing.
    let other = operation(r#"{"id":"ffff","clientContext":"other","status":"completed"}"#);
    let Begin::Pending(call) = call.handle_operation(&graph, &proof(), &other).await else {
        panic!("an update for another request must be ignored");
    };
    let running = operation(&format!(r#"{{"id":"{OP_UPPER}","status":"Running"}}"#));
    let Begin::Pending(call) = call.handle_operation(&graph, &proof(), &running).await else {
        panic!("running is not final");
    };
    // The notification uses the upper-case dash-less id and PascalCase status.
    let done = operation(&format!(r#"{{"id":"{OP_UPPER}","status":"Completed"}}"#));
    let Begin::Recording(call) = call.handle_operation(&graph, &proof(), &done).await else {
        panic!("completed must unlock recording");
    };
    assert!(call.retention().is_ok());
    drop(call.end());
    verify(&audit.events()).unwrap();
}

#[tokio::test]
async fn never_recording_without_completed() {
    type Check = fn(&Error) -> bool;
    let cases: Vec<(Step, Check)> = vec![
        (Step::operation(Some("failed")), |e| {
            matches!(e, Error::OperationFailed(_))
        }),
        (Step::graph_error(403, "8506"), |e| e.permanent().is_some()),
        (Step::graph_error(404, "NotFound"), |e| {
            e.permanent().is_some()
        }),
        (
            Step::graph_error(500, "InternalServerError"),
            Error::is_unknown_outcome,
        ),
        (
            Step::graph_error(504, "GatewayTimeout"),
            Error::is_unknown_outcome,
        ),
        (Step::fail("connection reset"), Error::is_unknown_outcome),
        (Step::json(200, "<html>"), Error::is_unknown_outcome),
        (Step::json(301, ""), |e| matches!(e, Error::Graph(_))),
        (
            Step::json(200, r#"{"clientContext":"not-mine","status":"completed"}"#),
            |e| matches!(e, Error::ContextMismatch),
        ),
    ];
    for (step, check) in cases {
        let (graph, audit) = setup(vec![step.clone(), Step::completed()]);
        let outcome = new_call(&audit).begin_recording(&graph).await.unwrap();
        let Begin::Failed(call) = outcome else {
            panic!("{step:?} must not lead to Recording or Pending: {outcome:?}");
        };
        assert!(check(call.reason()), "{step:?}: {:?}", call.reason());
        // `failed` is reported best effort after the rejected `recording`, unless Graph
        // refused the request outright (then nothing was accepted and it would refuse the
        // report too).
        let expected: &[&str] = if call.reason().is_refused_outright() {
            &["recording"]
        } else {
            &["recording", "failed"]
        };
        assert_eq!(graph.transport().statuses(), expected, "{step:?}");
        verify(&audit.events()).unwrap();
        assert_no_token(&as_json(&audit));
    }
}

#[tokio::test]
async fn failed_can_begin_again_and_needs_fresh_ack() {
    let (graph, audit) = setup(vec![
        Step::graph_error(503, "ServiceUnavailable"),
        Step::completed(),
        Step::running(),
    ]);
    let Begin::Failed(call) = new_call(&audit).begin_recording(&graph).await.unwrap() else {
        panic!()
    };
    let Begin::Pending(call) = call.begin_recording(&graph).await.unwrap() else {
        panic!("a retry needs its own completed acknowledgement")
    };
    let failed = call.abandon(&graph).await;
    assert!(matches!(failed.reason(), Error::Abandoned));
    assert_eq!(
        graph.transport().statuses(),
        ["recording", "failed", "recording", "failed"]
    );
    verify(&audit.events()).unwrap();
}

#[tokio::test]
async fn stop_waits_for_every_owned_handle() {
    let (graph, audit) = setup(vec![Step::completed(), Step::completed()]);
    let call = recording(&graph, &audit).await;
    let dir = tempfile::tempdir().unwrap();
    let mut tasks = Vec::new();
    for i in 0..4 {
        let handle = call.retention_handle().unwrap();
        let path = dir.path().join(format!("stream-{i}.raw"));
        tasks.push(tokio::spawn(async move {
            let file = std::fs::File::create(path).unwrap();
            let mut writer = RetentionWriter::new(handle, std::io::BufWriter::new(file));
            let mut frames = 0u32;
            loop {
                tokio::select! {
                    () = writer.capability().stopping() => break,
                    () = tokio::time::sleep(Duration::from_millis(1)) => {
                        writer.write_all(&frames.to_le_bytes()).unwrap();
                        frames += 1;
                    }
                }
            }
            drop(writer.finish().unwrap());
            frames
        }));
    }
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(call.outstanding(), 4);
    let call = call
        .stop_recording(&graph, tokio::time::sleep(Duration::from_secs(5)))
        .await
        .unwrap();
    let mut total = 0;
    for t in tasks {
        total += t.await.unwrap();
    }
    assert!(total > 0);
    // Bytes on disk: 4 bytes per frame, written only through the capabilities.
    let on_disk: u64 = (0..4)
        .map(|i| {
            std::fs::metadata(dir.path().join(format!("stream-{i}.raw")))
                .unwrap()
                .len()
        })
        .sum();
    assert_eq!(on_disk, u64::from(total) * 4);
    assert_eq!(call.state(), CallState::NotRecording);

    // In the trail, every retention end precedes the notRecording request.
    let events = audit.events();
    verify(&events).unwrap();
    let stop_at = events
        .iter()
        .position(|e| {
            matches!(&e.kind, AuditKind::RequestSent { status, .. }
                if *status == recording_status::RecordingStatus::NotRecording)
        })
        .unwrap();
    let last_end = events
        .iter()
        .rposition(|e| matches!(e.kind, AuditKind::RetentionEnded { .. }))
        .unwrap();
    assert!(last_end < stop_at);
}

#[tokio::test(start_paused = true)]
async fn drain_deadline_hands_the_call_back_and_sends_nothing() {
    let (graph, audit) = setup(vec![Step::completed(), Step::completed()]);
    let call = recording(&graph, &audit).await;
    let stuck = call.retention_handle().unwrap();
    let err = call
        .stop_recording(&graph, tokio::time::sleep(Duration::from_secs(5)))
        .await
        .unwrap_err();
    let StopError::StillRecording { call, error } = err else {
        panic!("the call must come back still recording")
    };
    assert!(matches!(error, Error::DrainTimeout { outstanding: 1 }));
    assert!(stuck.is_stopping());
    assert_eq!(
        graph.transport().statuses(),
        ["recording"],
        "nothing may be sent"
    );
    drop(stuck);
    let call = call
        .stop_recording(&graph, tokio::time::sleep(Duration::from_secs(5)))
        .await
        .unwrap();
    assert_eq!(call.state(), CallState::NotRecording);
    verify(&audit.events()).unwrap();
}

#[tokio::test]
async fn unacknowledged_stop_goes_to_failed_after_retention_ended() {
    let (graph, audit) = setup(vec![
        Step::completed(),
        Step::fail("reset after send"),
        Step::completed(),
    ]);
    let call = recording(&graph, &audit).await;
    let StopError::Unacknowledged { call } = call
        .stop_recording(&graph, std::future::pending())
        .await
        .unwrap_err()
    else {
        panic!()
    };
    assert!(call.reason().is_unknown_outcome());
    assert_eq!(
        graph.transport().statuses(),
        ["recording", "notRecording", "failed"]
    );
    verify(&audit.events()).unwrap();
}

#[tokio::test]
async fn report_failure_drains_then_reports_failed() {
    let (graph, audit) = setup(vec![Step::completed(), Step::completed()]);
    let call = recording(&graph, &audit).await;
    let handle = call.retention_handle().unwrap();
    let task = tokio::spawn(async move {
        handle.stopping().await;
        drop(handle);
    });
    let failed = call
        .report_failure(&graph, "disk full", std::future::pending())
        .await
        .unwrap();
    task.await.unwrap();
    assert_eq!(failed.reason().to_string(), "recording failed: disk full");
    assert_eq!(graph.transport().statuses(), ["recording", "failed"]);
    verify(&audit.events()).unwrap();
}

#[tokio::test]
async fn ending_a_recording_call_revokes_handles_and_sends_nothing() {
    let (graph, audit) = setup(vec![Step::completed()]);
    let call = recording(&graph, &audit).await;
    let handle = call.retention_handle().unwrap();
    let mut writer = RetentionWriter::new(handle, Vec::new());
    writer.write_all(b"ok").unwrap();
    let ended = call.end();
    assert_eq!(ended.last_state, CallState::Recording);
    let err = writer.write_all(b"late").unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::PermissionDenied);
    assert!(writer.capability().is_revoked());
    assert_eq!(graph.transport().statuses(), ["recording"]);
    drop(writer);
    verify(&audit.events()).unwrap();
}

#[tokio::test]
async fn dropping_a_recording_call_revokes_handles() {
    let (graph, audit) = setup(vec![Step::completed()]);
    let call = recording(&graph, &audit).await;
    let handle = call.retention_handle().unwrap();
    drop(call);
    assert!(handle.is_revoked());
    let mut writer = RetentionWriter::new(handle, Vec::new());
    assert!(writer.write(b"x").is_err());
    assert!(
        audit
            .events()
            .iter()
            .any(|e| matches!(e.kind, AuditKind::RetentionRevoked { outstanding: 1 }))
    );
}

#[test]
fn blocking_twins_follow_the_same_table() {
    let (graph, audit) = setup(vec![Step::running(), Step::completed()]);
    let Begin::Pending(call) = new_call(&audit).begin_recording_blocking(&graph).unwrap() else {
        panic!()
    };
    let done = update_for(call.client_context(), "completed");
    let Begin::Recording(call) = call.handle_operation_blocking(&graph, &proof(), &done) else {
        panic!()
    };
    let handle = call.retention_handle().unwrap();
    let worker = std::thread::spawn(move || {
        let mut w = RetentionWriter::new(handle, Vec::new());
        w.write_all(b"frame").unwrap();
        std::thread::sleep(Duration::from_millis(30));
        w.finish().unwrap().0
    });
    let call = call
        .stop_recording_blocking(&graph, Duration::from_secs(5))
        .unwrap();
    assert_eq!(worker.join().unwrap(), b"frame");
    assert_eq!(call.state(), CallState::NotRecording);
    verify(&audit.events()).unwrap();
}

#[test]
fn blocking_drain_deadline() {
    let (graph, audit) = setup(vec![Step::completed()]);
    let Begin::Recording(call) = new_call(&audit).begin_recording_blocking(&graph).unwrap() else {
        panic!()
    };
    let _stuck = call.retention_handle().unwrap();
    let err = call
        .report_failure_blocking(&graph, "x", Duration::from_millis(20))
        .unwrap_err();
    assert!(matches!(err, StopError::StillRecording { .. }));
    assert_eq!(graph.transport().statuses(), ["recording"]);
}

#[tokio::test]
async fn closures_are_transports() {
    let graph = graph_over(|req: http::Request<Vec<u8>>| async move {
        assert_eq!(req.method(), http::Method::POST);
        Ok::<_, std::io::Error>(answer(&req, "completed"))
    })
    .with_endpoint(Endpoint::custom("http://127.0.0.1:9/v1.0").unwrap());
    let audit = Arc::new(MemorySink::default());
    let outcome = new_call(&audit).begin_recording(&graph).await.unwrap();
    assert!(matches!(outcome, Begin::Recording(_)));
}

#[tokio::test]
async fn transitions_are_send() {
    fn assert_send<T: Send>(_: &T) {}
    let (graph, audit) = setup(vec![Step::completed()]);
    {
        let fut = new_call(&audit).begin_recording(&graph);
        assert_send(&fut);
    }
    let graph = Arc::new(graph);
    let g = graph.clone();
    let joined = tokio::spawn(async move { new_call(&audit).begin_recording(&g).await.is_ok() });
    assert!(joined.await.unwrap());
}

#[tokio::test]
async fn nothing_is_sent_without_an_audit_record() {
    let graph = graph([Step::completed()]);
    let call = open(Refusing::broken());
    let err = call.begin_recording(&graph).await.unwrap_err();
    assert!(matches!(err.error, Error::Audit(_)));
    assert_eq!(err.call.state(), CallState::NotRecording);
    assert!(graph.transport().requests().is_empty());
}

#[tokio::test]
async fn bad_token_sends_nothing_and_hands_call_back() {
    let graph = Graph::new(scripted([]), AccessToken::new("bad\r\ntoken"));
    let audit = Arc::new(MemorySink::default());
    let err = new_call(&audit).begin_recording(&graph).await.unwrap_err();
    assert!(matches!(err.error, Error::InvalidToken(_)));
    assert!(!err.to_string().contains("bad"));
    assert!(graph.transport().requests().is_empty());
}

#[tokio::test]
async fn json_lines_sink_is_flushed_per_event_and_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let sink = Arc::new(JsonLinesSink::open(&path).unwrap());
    let graph = graph([Step::completed(), Step::completed()]);
    let call = open(sink.clone());
    let Begin::Recording(call) = call.begin_recording(&graph).await.unwrap() else {
        panic!()
    };
    // Before anything else happens, the acknowledgement is already on disk.
    let so_far = JsonLinesSink::read(&path).unwrap();
    assert!(so_far.iter().any(|e| matches!(
        e.kind,
        AuditKind::ResponseReceived {
            outcome: ResponseKind::Completed,
            ..
        }
    )));
    let r = call.retention().unwrap();
    drop(r);
    let _ = call
        .stop_recording(&graph, std::future::pending())
        .await
        .unwrap();
    let events = JsonLinesSink::read(&path).unwrap();
    verify(&events).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert_no_token(&text);
    assert_eq!(text.lines().count(), events.len());
}

#[test]
fn verifier_catches_retention_before_ack() {
    let e = |kind| AuditEvent::now(this_call(), kind);
    let trail = vec![e(AuditKind::Transition {
        from: CallState::NotRecording,
        to: CallState::Recording,
        reason: "forged".into(),
    })];
    assert!(verify(&trail).is_err());
    let trail = vec![e(AuditKind::RetentionStarted {
        capability: 1,
        owned: false,
    })];
    assert!(verify(&trail).is_err());
}

#[cfg(feature = "tokio")]
#[tokio::test]
async fn async_writer_goes_through_the_capability() {
    use tokio::io::AsyncWriteExt;

    let (graph, audit) = setup(vec![Step::completed()]);
    let call = recording(&graph, &audit).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("async.raw");
    let file = tokio::fs::File::create(&path).await.unwrap();
    let mut writer = RetentionWriter::new(call.retention_handle().unwrap(), file);
    writer.write_all(b"frame").await.unwrap();
    writer.flush().await.unwrap();
    drop(call.end());
    let err = writer.write_all(b"late").await.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::PermissionDenied);
    // Even the final flush goes through the (revoked) capability (G8).
    let err = writer.finish_async().await.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::PermissionDenied);
    assert_eq!(std::fs::read(&path).unwrap(), b"frame");
    verify(&audit.events()).unwrap();
}

/// Handles dropped on other threads while the drain completes: every `RetentionEnded` must be
/// in the trail before the `notRecording` request, whichever thread drops the last handle and
/// however that races with the drain's wake-up (50 rounds, to meet the interleavings).
#[test]
fn retention_ends_are_audited_before_the_stop_request_under_races() {
    for _ in 0..50 {
        let (graph, audit) = setup(vec![Step::completed(), Step::completed()]);
        let Begin::Recording(call) = new_call(&audit).begin_recording_blocking(&graph).unwrap()
        else {
            panic!()
        };
        let workers: Vec<_> = (0..4)
            .map(|_| {
                let handle = call.retention_handle().unwrap();
                std::thread::spawn(move || {
                    while !handle.is_stopping() {
                        std::thread::yield_now();
                    }
                    drop(handle);
                })
            })
            .collect();
        let call = call
            .stop_recording_blocking(&graph, Duration::from_secs(5))
            .unwrap();
        for w in workers {
            w.join().unwrap();
        }
        assert_eq!(call.state(), CallState::NotRecording);
        verify(&audit.events()).unwrap();
    }
}

/// A writer dropped without `finish` (e.g. an early `?` in a media task) flushes its buffer
/// while its capability is still alive, never after the drain let the stop request go.
#[test]
fn writer_storage_is_flushed_before_its_capability_ends() {
    use std::sync::Mutex;

    #[derive(Debug, Default)]
    struct Order(Mutex<Vec<&'static str>>);

    #[derive(Debug)]
    struct Sink(Arc<Order>);
    impl AuditSink for Sink {
        fn record(&self, event: &AuditEvent) -> Result<(), AuditError> {
            if matches!(event.kind, AuditKind::RetentionEnded { .. }) {
                self.0.0.lock().unwrap().push("retention ended");
            }
            Ok(())
        }
    }

    struct Storage(Arc<Order>);
    impl Write for Storage {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.0.lock().unwrap().push("bytes stored");
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    let order = Arc::new(Order::default());
    let graph = graph([Step::completed()]);
    let call = open(Arc::new(Sink(order.clone())));
    let Begin::Recording(call) = call.begin_recording_blocking(&graph).unwrap() else {
        panic!()
    };
    let mut writer = RetentionWriter::new(
        call.retention_handle().unwrap(),
        std::io::BufWriter::new(Storage(order.clone())),
    );
    writer.write_all(b"buffered, not yet stored").unwrap();
    drop(writer);
    assert_eq!(
        *order.0.lock().unwrap(),
        ["bytes stored", "retention ended"]
    );
    drop(call.end());
}

/// Graph's correlation headers reach the trail only as short visible ASCII: an oversized or
/// non-ASCII `request-id` or `client-request-id` from a hostile answer is left out (the answer
/// still counts), and the `Date` beside them is kept.
#[tokio::test]
async fn hostile_correlation_headers_are_left_out_of_the_trail() {
    let Step::Respond { status, body, .. } = Step::completed() else {
        unreachable!()
    };
    let hostile = Step::Respond {
        status,
        headers: vec![
            ("content-type".into(), "application/json".into()),
            ("request-id".into(), "r".repeat(10_000)),
            ("client-request-id".into(), "échoé".into()),
            ("date".into(), "Mon, 07 Dec 2026 20:00:00 GMT".into()),
        ],
        body,
    };
    let (graph, audit) = setup(vec![hostile]);
    let call = recording(&graph, &audit).await;
    let answer = audit
        .events()
        .into_iter()
        .find_map(|e| match e.kind {
            AuditKind::ResponseReceived {
                request_id,
                echoed_client_request_id,
                date,
                ..
            } => Some((request_id, echoed_client_request_id, date)),
            _ => None,
        })
        .unwrap();
    assert_eq!(
        answer,
        (None, None, Some("Mon, 07 Dec 2026 20:00:00 GMT".to_owned()))
    );
    drop(call);
}

/// An error answer's oversized `request-id` header is left out too, although Graph's error
/// envelope carries one of its own: the bound holds for every answer.
#[tokio::test]
async fn an_oversized_request_id_on_an_error_answer_is_left_out() {
    let refused = Step::Respond {
        status: 403,
        headers: vec![
            ("content-type".into(), "application/json".into()),
            ("request-id".into(), "r".repeat(10_000)),
        ],
        body: br#"{"error":{"code":"Forbidden","message":"no"}}"#.to_vec(),
    };
    let (graph, audit) = setup(vec![refused, Step::completed()]);
    let call = new_call(&audit);
    let _ = call.begin_recording(&graph).await;
    let ids: Vec<_> = audit
        .events()
        .into_iter()
        .filter_map(|e| match e.kind {
            AuditKind::ResponseReceived { request_id, .. } => Some(request_id),
            _ => None,
        })
        .collect();
    assert!(!ids.is_empty());
    assert!(
        ids.iter().all(Option::is_none),
        "{:?}",
        ids.iter()
            .map(|i| i.as_ref().map(String::len))
            .collect::<Vec<_>>()
    );
}
