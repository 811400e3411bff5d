//! Adjacent audit events written as one batch (G9): the stop signal and the `notRecording`
//! request when no capability is left to drain, a `recording` or `notRecording` answer and the transition it
//! leads to, a notification's `completed` and the transition to `Recording`. A refused batch
//! leaves none of its events in the trail, and its step is not taken.

use std::sync::Arc;
use std::time::Duration;

use recording_status::audit::{
    AuditEvent, AuditKind, AuditSink, JsonLinesSink, check_chain, verify,
};
use recording_status::driver::{Driver, Started};
use recording_status::response::Operation;
use recording_status::testing::{ScriptedTransport, Step};
use recording_status::{AccessToken, CallState, StopError, TokenError, TokenFuture, TokenSource};

use crate::support::bodies::{OPERATION_TYPE, operation};
use crate::support::driving::{driver_on, recording};
use crate::support::graph::{TOKEN, graph, open, proof, scripted};
use crate::support::ids::{OP, call_id};
use crate::support::sinks::{Refusing, labels};

/// A driver over a Graph that answers with `steps`, writing to `sink`.
fn driver(steps: Vec<Step>, sink: Arc<dyn AuditSink>) -> Driver<ScriptedTransport> {
    driver_on(&scripted(steps), Arc::new(token()), sink)
}

fn token() -> AccessToken {
    AccessToken::new(TOKEN)
}

fn to(state: CallState) -> impl Fn(&AuditEvent) -> bool {
    move |e| matches!(&e.kind, AuditKind::Transition { to, .. } if *to == state)
}

#[tokio::test(start_paused = true)]
async fn each_answer_is_written_with_the_transition_it_leads_to() {
    let sink = Refusing::accepting();
    let driver = driver(vec![Step::completed(), Step::completed()], sink.clone());
    let call = recording(&driver).await;
    let call = driver.stop_recording(call).await.unwrap();
    let before_end = sink.events().len();
    drop(driver.end(call));
    let writes = sink.writes();
    let writes: Vec<Vec<&str>> = writes
        .iter()
        .map(|w| w.iter().map(String::as_str).collect())
        .collect();
    assert_eq!(
        writes,
        [
            vec!["transition:PendingRecording"],
            vec!["request_sent"],
            vec!["response_received", "transition:Recording"],
            vec!["drain_started", "request_sent"],
            vec!["response_received", "transition:NotRecording"],
            vec!["transition:Ended"],
        ],
    );
    // The figure BENCHMARKS.md quotes for one call (begin answered completed, then stop).
    assert_eq!(before_end, 8);
    verify(&sink.events()).unwrap();
}

/// The other count BENCHMARKS.md gives: a round trip that mints and drops one retention
/// capability adds its start and end.
#[tokio::test(start_paused = true)]
async fn a_call_that_retains_once_makes_ten_events() {
    let sink = Refusing::accepting();
    let driver = driver(vec![Step::completed(), Step::completed()], sink.clone());
    let call = recording(&driver).await;
    drop(call.retention().unwrap());
    let call = driver.stop_recording(call).await.unwrap();
    assert_eq!(sink.events().len(), 10);
    drop(driver.end(call));
    assert_eq!(sink.events().len(), 11);
    assert_eq!(sink.writes().len(), 8);
}

/// With a capability alive when the stop begins, the drain is a step of its own: the stop
/// signal is in the trail before the drain waits, and the capability's end before the
/// `notRecording` request.
#[tokio::test(start_paused = true)]
async fn a_capability_alive_at_the_stop_is_drained_between_the_signal_and_the_request() {
    let sink = Refusing::accepting();
    let driver = driver(vec![Step::completed(), Step::completed()], sink.clone());
    let call = recording(&driver).await;
    let handle = call.retention_handle().unwrap();
    let media = tokio::spawn(async move {
        handle.stopping().await;
        drop(handle);
    });
    let call = driver.stop_recording(call).await.unwrap();
    media.await.unwrap();
    let writes = sink.writes();
    let writes: Vec<Vec<&str>> = writes
        .iter()
        .map(|w| w.iter().map(String::as_str).collect())
        .collect();
    assert_eq!(
        writes[3..],
        [
            vec!["retention_started"],
            vec!["drain_started"],
            vec!["retention_ended"],
            vec!["request_sent"],
            vec!["response_received", "transition:NotRecording"],
        ],
    );
    drop(driver.end(call));
    verify(&sink.events()).unwrap();
}

/// A token source that cannot give a token.
#[derive(Debug)]
struct NoToken;

impl TokenSource for NoToken {
    fn token(&self, _refresh: bool) -> TokenFuture<'_> {
        Box::pin(async { Err(TokenError::from("identity platform unreachable")) })
    }
}

/// A begin that cannot get a token sends nothing: the trail shows the episode it began and the
/// way back, and the call is as it was. (The transition is written before the call's turn is
/// awaited, so that a waiting begin supersedes an earlier episode's report; see
/// `a_begin_supersedes_a_throttled_orphan_report_instead_of_waiting_out_its_retries`.)
#[tokio::test(start_paused = true)]
async fn a_begin_without_a_token_writes_its_episode_and_the_way_back() {
    let sink = Refusing::accepting();
    let transport = scripted([]);
    let driver = driver_on(&transport, Arc::new(NoToken), sink.clone());
    let Err(not_sent) = driver
        .begin_recording(driver.call(call_id()).unwrap())
        .await
    else {
        panic!("nothing can be sent without a token")
    };
    assert!(
        matches!(not_sent.error, recording_status::Error::Token(_)),
        "{:?}",
        not_sent.error
    );
    assert_eq!(not_sent.call.state(), CallState::NotRecording);
    assert_eq!(
        labels(&sink.events()),
        ["transition:PendingRecording", "transition:NotRecording"]
    );
    assert!(transport.requests().is_empty());
    verify(&sink.events()).unwrap();
}

/// A request the trail refuses is not sent, and the way back is written.
#[tokio::test(start_paused = true)]
async fn a_refused_request_is_not_sent_and_the_way_back_is_written() {
    let sink = Refusing::new(|kind| matches!(kind, AuditKind::RequestSent { .. }));
    let transport = scripted([Step::completed()]);
    let driver = driver_on(&transport, Arc::new(token()), sink.clone());
    let Err(not_sent) = driver
        .begin_recording(driver.call(call_id()).unwrap())
        .await
    else {
        panic!("a request the trail refused must not be sent")
    };
    assert!(matches!(not_sent.error, recording_status::Error::Audit(_)));
    assert_eq!(
        labels(&sink.events()),
        ["transition:PendingRecording", "transition:NotRecording"]
    );
    assert!(transport.requests().is_empty());
}

/// A stop that cannot get a token sends nothing and keeps the call recording; the stop
/// signal it raised is in the trail.
#[tokio::test(start_paused = true)]
async fn a_stop_without_a_token_still_writes_its_signal() {
    let sink = Refusing::accepting();
    let transport = scripted([Step::completed()]);
    let tokens = Arc::new(FirstOnly(std::sync::atomic::AtomicBool::new(false)));
    let driver = driver_on(&transport, tokens, sink.clone());
    let call = recording(&driver).await;
    let Err(StopError::StillRecording { call, error }) = driver.stop_recording(call).await else {
        panic!("nothing can be sent without a token")
    };
    assert!(
        matches!(error, recording_status::Error::Token(_)),
        "{error:?}"
    );
    assert_eq!(call.state(), CallState::Recording);
    let writes = sink.writes();
    assert_eq!(writes.last().unwrap(), &["drain_started"]);
    assert_eq!(transport.requests().len(), 1);
    verify(&sink.events()).unwrap();
    drop(call);
}

/// The stop signal is raised only once its event is in the trail: with `drain_started`
/// refused, the call's capabilities are not told to stop (G9: a step whose event was refused
/// does not happen). Both with nothing to drain (the signal batched with the request) and with
/// a capability alive.
#[tokio::test(start_paused = true)]
async fn a_refused_stop_signal_is_not_raised() {
    let sink = Refusing::new(|kind| matches!(kind, AuditKind::DrainStarted { .. }));
    let driver = driver(vec![Step::completed()], sink.clone());
    let call = recording(&driver).await;
    // Nothing to drain: the signal would go with the request.
    let Err(StopError::StillRecording { call, .. }) = driver.stop_recording(call).await else {
        panic!("a refused signal stops nothing")
    };
    let handle = call.retention_handle().unwrap();
    assert!(
        !handle.is_stopping(),
        "raised although its event was refused"
    );
    // A capability alive: the signal alone, before the drain.
    let Err(StopError::StillRecording { call, .. }) = driver.stop_recording(*call).await else {
        panic!("a refused signal stops nothing")
    };
    assert!(
        !handle.is_stopping(),
        "raised although its event was refused"
    );
    let trail = labels(&sink.events());
    assert!(!trail.iter().any(|l| l == "drain_started"), "{trail:?}");
    // Nothing was sent for either stop: only the begin's request is in the trail.
    assert_eq!(
        trail.iter().filter(|l| *l == "request_sent").count(),
        1,
        "{trail:?}"
    );
    drop(handle);
    drop(call);
}

/// Gives one token, then none.
#[derive(Debug)]
struct FirstOnly(std::sync::atomic::AtomicBool);

impl TokenSource for FirstOnly {
    fn token(&self, _refresh: bool) -> TokenFuture<'_> {
        let given = self.0.swap(true, std::sync::atomic::Ordering::SeqCst);
        Box::pin(async move {
            if given {
                Err(TokenError::from("identity platform unreachable"))
            } else {
                Ok(token())
            }
        })
    }
}

#[tokio::test(start_paused = true)]
async fn a_refused_answer_and_transition_to_recording_leave_neither_and_do_not_record() {
    let sink = Refusing::new(|kind| {
        matches!(
            kind,
            AuditKind::Transition {
                to: CallState::Recording,
                ..
            }
        )
    });
    let driver = driver(vec![Step::completed(), Step::completed()], sink.clone());
    let call = driver.call(call_id()).unwrap();
    let started = driver.begin_recording(call).await.unwrap();
    assert!(matches!(started, Started::Failed(_)), "{started:?}");
    let events = sink.events();
    assert!(!events.iter().any(to(CallState::Recording)));
    // The `recording` request's answer was refused with the transition: it is not in the
    // trail, while the best-effort `failed` report's answer is.
    let trail = labels(&events);
    assert_eq!(
        trail,
        [
            "transition:PendingRecording",
            "request_sent",
            "request_sent",
            "response_received",
            "transition:Failed",
        ],
    );
    verify(&events).unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_refused_answer_and_transition_to_not_recording_leave_neither_and_do_not_stop() {
    let sink = Refusing::new(|kind| {
        matches!(
            kind,
            AuditKind::Transition {
                to: CallState::NotRecording,
                ..
            }
        )
    });
    let driver = driver(
        vec![Step::completed(), Step::completed(), Step::completed()],
        sink.clone(),
    );
    let call = recording(&driver).await;
    let stopped = driver.stop_recording(call).await;
    let Err(StopError::Unacknowledged { call }) = stopped else {
        panic!("expected Unacknowledged, got {stopped:?}")
    };
    assert!(matches!(call.reason(), recording_status::Error::Audit(_)));
    let events = sink.events();
    assert!(!events.iter().any(to(CallState::NotRecording)));
    let trail = labels(&events);
    assert_eq!(
        trail[4..],
        [
            "drain_started",
            "request_sent",
            // The `notRecording` answer is missing: refused with its transition.
            "request_sent",
            "response_received",
            "transition:Failed",
        ],
    );
    verify(&events).unwrap();
}

/// Graph's `completed` update of the request, naming it by operation id.
fn completed_update() -> Operation {
    operation(&format!(
        r#"{{"@odata.type":"{OPERATION_TYPE}","id":"{OP}","status":"completed"}}"#
    ))
}

#[tokio::test(start_paused = true)]
async fn a_notification_completed_is_written_with_the_transition_to_recording() {
    let sink = Refusing::accepting();
    let graph = graph([Step::operation(Some("running"))]);
    let call = open(sink.clone());
    let recording_status::Begin::Pending(pending) = call.begin_recording(&graph).await.unwrap()
    else {
        panic!("running")
    };
    let begun = pending
        .handle_operation(&graph, &proof(), &completed_update())
        .await;
    let recording_status::Begin::Recording(call) = begun else {
        panic!("expected Recording, got {begun:?}")
    };
    let last = sink.writes().pop().unwrap();
    assert_eq!(last, ["operation_update", "transition:Recording"]);
    drop(call.end());
    verify(&sink.events()).unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_refused_notification_and_transition_leave_neither_and_do_not_record() {
    let sink = Refusing::new(|kind| {
        matches!(
            kind,
            AuditKind::Transition {
                to: CallState::Recording,
                ..
            }
        )
    });
    let graph = graph([Step::operation(Some("running")), Step::completed()]);
    let call = open(sink.clone());
    let recording_status::Begin::Pending(pending) = call.begin_recording(&graph).await.unwrap()
    else {
        panic!("running")
    };
    let begun = pending
        .handle_operation(&graph, &proof(), &completed_update())
        .await;
    assert!(
        matches!(begun, recording_status::Begin::Failed(_)),
        "{begun:?}"
    );
    let trail = labels(&sink.events());
    assert!(!trail.iter().any(|l| l == "operation_update"), "{trail:?}");
    assert!(
        !trail.iter().any(|l| l == "transition:Recording"),
        "{trail:?}"
    );
    verify(&sink.events()).unwrap();
}

/// A whole driver call into a JSON-lines trail: it reads back, chains, and verifies.
#[tokio::test(start_paused = true)]
async fn a_json_lines_trail_of_batched_events_checks_and_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let sink = Arc::new(JsonLinesSink::open(&path).unwrap());
    let driver = driver(vec![Step::completed(), Step::completed()], sink.clone());
    let call = recording(&driver).await;
    let call = driver.stop_recording(call).await.unwrap();
    drop(driver.end(call));
    drop(driver);
    tokio::time::sleep(Duration::from_millis(1)).await;
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(check_chain(&bytes, None).unwrap().lines, 9);
    let trail = JsonLinesSink::read(&path).unwrap();
    verify(&trail).unwrap();
}
