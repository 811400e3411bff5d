//! The transitions as steps with no I/O (`recording_status::exchange`), driven by hand as a bot
//! with its own HTTP stack would: every retry and `Retry-After` decision comes from the steps,
//! so the async loop, the blocking loop and a hand-written loop make the same ones, with no
//! runtime at all; each request is in the trail before it is handed over, and its answer with
//! the state it leads to.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use recording_status::audit::{MemorySink, verify};

use recording_status::exchange::{StatusUpdate, Step};
use recording_status::testing::{ScriptedTransport, Step as Answer};
use recording_status::{
    AccessToken, Begin, BlockingTransport, Call, CallState, Calls, Endpoint, Graph, NotRecording,
    RecordingStatus, RetryPolicy, Timer,
};

use crate::support::ids::this_call;

fn throttled(retry_after: &str) -> Answer {
    Answer::Respond {
        status: 429,
        headers: vec![("Retry-After".to_owned(), retry_after.to_owned())],
        body: br#"{"error":{"code":"TooManyRequests","message":"slow down"}}"#.to_vec(),
    }
}

fn open(audit: &Arc<MemorySink>) -> Call<NotRecording> {
    Calls::new(audit.clone())
        .open(this_call().parse().unwrap())
        .unwrap()
}

/// Drives `update` by hand through `transport`, never sleeping: returns its result and the
/// pauses the steps asked for.
fn by_hand<O>(mut update: StatusUpdate<O>, transport: &ScriptedTransport) -> (O, Vec<Duration>) {
    let (endpoint, token) = (Endpoint::default(), AccessToken::new("secret-token"));
    let mut pauses = Vec::new();
    loop {
        let step = match update.prepare(&endpoint, token.clone(), Instant::now()) {
            Ok((sent, request)) => match transport.send_blocking(request) {
                Ok(response) => sent.answer(&response, Instant::now()),
                Err(error) => sent.no_answer(error.into(), Instant::now()),
            },
            Err(step) => step,
        };
        match step {
            Step::Next {
                update: next,
                after,
            } => {
                pauses.push(after);
                update = next;
            }
            Step::Done(out) => return (out, pauses),
        }
    }
}

fn kinds(audit: &MemorySink) -> Vec<String> {
    audit
        .events()
        .iter()
        .map(|e| {
            let kind = serde_json::to_value(&e.kind).unwrap();
            kind["event"].as_str().unwrap_or_default().to_owned()
        })
        .collect()
}

#[test]
fn a_bot_drives_a_begin_by_hand_and_the_steps_decide_the_retries() {
    let audit = Arc::new(MemorySink::default());
    let transport = ScriptedTransport::new()
        .then(throttled("7"))
        .then(throttled("120"))
        .then(Answer::completed());
    let policy = RetryPolicy::default()
        .with_deadline(Duration::from_secs(300))
        .with_max_retry_after(Duration::from_secs(60));
    let update = open(&audit).start_recording().unwrap().with_retry(policy);
    let (begun, pauses) = by_hand(update, &transport);
    assert!(matches!(begun, Ok(Begin::Recording(_))), "{begun:?}");
    // `Retry-After` honoured, and capped by the policy: the steps' decisions, not a runtime's.
    assert_eq!(pauses, [Duration::from_secs(7), Duration::from_secs(60)]);
    assert_eq!(transport.requests().len(), 3);
    verify(&audit.events()).unwrap();
}

#[test]
fn without_a_policy_each_request_is_sent_once() {
    let audit = Arc::new(MemorySink::default());
    let transport = ScriptedTransport::new()
        .then(throttled("1"))
        .then(Answer::completed());
    let (begun, pauses) = by_hand(open(&audit).start_recording().unwrap(), &transport);
    // Throttled, with no retry: the outcome is known (Graph did not take it); `failed` is
    // reported best effort as the transition's next request.
    assert!(matches!(begun, Ok(Begin::Failed(_))), "{begun:?}");
    assert_eq!(
        pauses,
        [Duration::ZERO],
        "the `failed` report follows at once"
    );
    assert_eq!(transport.statuses(), ["recording", "failed"]);
}

#[test]
fn each_request_is_in_the_trail_before_it_is_handed_over() {
    let audit = Arc::new(MemorySink::default());
    let update = open(&audit).start_recording().unwrap();
    assert_eq!(kinds(&audit), ["transition"], "the episode begins first");
    let (endpoint, token) = (Endpoint::default(), AccessToken::new("secret-token"));
    let (sent, request) = update
        .prepare(&endpoint, token.clone(), Instant::now())
        .unwrap_or_else(|_| panic!("prepared"));
    assert_eq!(kinds(&audit), ["transition", "request_sent"]);
    assert_eq!(sent.status(), RecordingStatus::Recording);
    let body: serde_json::Value = serde_json::from_slice(request.body()).unwrap();
    assert_eq!(body["clientContext"], sent.client_context());
    // The answer and the transition it leads to arrive together.
    let transport = ScriptedTransport::new().then(Answer::completed());
    let response = transport.send_blocking(request).unwrap();
    let Step::Done(Ok(Begin::Recording(call))) = sent.answer(&response, Instant::now()) else {
        panic!("acknowledged");
    };
    assert_eq!(
        kinds(&audit),
        [
            "transition",
            "request_sent",
            "response_received",
            "transition"
        ]
    );
    assert_eq!(call.state(), CallState::Recording);
}

#[test]
fn a_failed_begin_reports_failed_as_its_next_step() {
    let audit = Arc::new(MemorySink::default());
    let update = open(&audit).start_recording().unwrap();
    let transport = ScriptedTransport::new()
        .then(Answer::operation(Some("failed")))
        .then(Answer::completed());
    let (endpoint, token) = (Endpoint::default(), AccessToken::new("secret-token"));
    let (sent, request) = update
        .prepare(&endpoint, token.clone(), Instant::now())
        .unwrap_or_else(|_| panic!("prepared"));
    let response = transport.send_blocking(request).unwrap();
    let Step::Next { update, after } = sent.answer(&response, Instant::now()) else {
        panic!("a `failed` report is owed");
    };
    assert_eq!(after, Duration::ZERO);
    assert_eq!(update.status(), RecordingStatus::Failed);
    let (begun, _) = by_hand(update, &transport);
    let Ok(Begin::Failed(call)) = begun else {
        panic!("{begun:?}");
    };
    assert!(
        call.reason().to_string().contains("failed"),
        "{}",
        call.reason()
    );
    assert_eq!(transport.statuses(), ["recording", "failed"]);
    verify(&audit.events()).unwrap();
}

#[test]
fn a_stop_by_steps_ends_retention_before_its_request_exists() {
    let audit = Arc::new(MemorySink::default());
    let transport = ScriptedTransport::new()
        .then(Answer::completed())
        .then(Answer::completed());
    let (begun, _) = by_hand(open(&audit).start_recording().unwrap(), &transport);
    let Ok(Begin::Recording(call)) = begun else {
        panic!("{begun:?}");
    };
    let handle = call.retention_handle().unwrap();
    let draining = call.start_stop().unwrap();
    assert!(
        handle.is_stopping(),
        "the signal is raised before the drain"
    );
    assert_eq!(draining.outstanding(), 1);
    let ended = std::thread::spawn(move || drop(handle));
    let update = draining.drained_blocking(Duration::from_secs(5)).unwrap();
    ended.join().unwrap();
    let (stopped, _) = by_hand(update, &transport);
    assert!(stopped.is_ok(), "{stopped:?}");
    let trail = kinds(&audit);
    let ended_at = trail.iter().position(|k| k == "retention_ended").unwrap();
    let reported_at = trail.iter().rposition(|k| k == "request_sent").unwrap();
    assert!(ended_at < reported_at, "{trail:?}");
    verify(&audit.events()).unwrap();
}

#[test]
fn with_nothing_to_drain_the_stop_signal_is_written_with_the_request() {
    let audit = Arc::new(MemorySink::default());
    let transport = ScriptedTransport::new()
        .then(Answer::completed())
        .then(Answer::completed());
    let (begun, _) = by_hand(open(&audit).start_recording().unwrap(), &transport);
    let Ok(Begin::Recording(call)) = begun else {
        panic!("{begun:?}");
    };
    let before = audit.events().len();
    let update = call
        .start_stop()
        .unwrap()
        .drained_blocking(Duration::ZERO)
        .unwrap();
    assert_eq!(
        audit.events().len(),
        before,
        "nothing written before the request"
    );
    let (stopped, _) = by_hand(update, &transport);
    assert!(stopped.is_ok(), "{stopped:?}");
    assert_eq!(
        kinds(&audit)[before..before + 2],
        ["drain_started", "request_sent"]
    );
}

#[test]
fn an_update_dropped_before_it_is_sent_sends_nothing_and_frees_the_call() {
    let audit = Arc::new(MemorySink::default());
    let calls = Calls::new(audit.clone());
    let update = calls
        .open(this_call().parse().unwrap())
        .unwrap()
        .start_recording()
        .unwrap();
    drop(update);
    assert!(!kinds(&audit).contains(&"request_sent".to_owned()));
    assert!(
        calls.open(this_call().parse().unwrap()).is_ok(),
        "the value is gone"
    );
}

/// A [`Timer`] whose pauses end at once, remembered, and whose attempt time limits (the
/// policy's 30-second deadline) never do: the scripted transport answers first.
#[derive(Debug, Default)]
struct Recorded(Mutex<Vec<Duration>>);

impl Timer for Recorded {
    fn now(&self) -> Instant {
        Instant::now()
    }

    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        if duration > Duration::from_secs(20) {
            return Box::pin(std::future::pending());
        }
        self.0.lock().unwrap().push(duration);
        Box::pin(std::future::ready(()))
    }
}

/// The async loop, the blocking loop and a hand-written loop make the same requests and the
/// same decisions from the same answers: the steps make them.
#[test]
fn the_async_and_blocking_loops_make_the_same_decisions() {
    let script = || {
        ScriptedTransport::new()
            .then(throttled("3"))
            .then(Answer::graph_error(401, "InvalidAuthenticationToken"))
            .then(throttled("0"))
            .then(Answer::completed())
    };
    let policy = RetryPolicy::default();

    let by_hand_transport = script();
    let audit = Arc::new(MemorySink::default());
    let update = open(&audit)
        .start_recording()
        .unwrap()
        .with_retry(policy.clone());
    let (begun, pauses) = by_hand(update, &by_hand_transport);
    assert!(matches!(begun, Ok(Begin::Recording(_))), "{begun:?}");
    assert_eq!(
        pauses,
        [Duration::from_secs(3), Duration::ZERO, Duration::ZERO]
    );
    // One value per call in the process: each loop's call goes before the next opens it.
    drop(begun);

    let timer = Arc::new(Recorded::default());
    let async_graph = Graph::new(script(), AccessToken::new("secret-token"))
        .with_retry(policy.clone())
        .with_timer(timer.clone());
    let audit = Arc::new(MemorySink::default());
    let begun = block_on(open(&audit).begin_recording(&async_graph));
    assert!(matches!(begun, Ok(Begin::Recording(_))), "{begun:?}");
    // Zero pauses are not slept; the rest are the same.
    assert_eq!(*timer.0.lock().unwrap(), [Duration::from_secs(3)]);
    drop(begun);

    let blocking_transport = ScriptedTransport::new()
        .then(throttled("0"))
        .then(Answer::graph_error(401, "InvalidAuthenticationToken"))
        .then(throttled("0"))
        .then(Answer::completed());
    let blocking_graph =
        Graph::new(blocking_transport, AccessToken::new("secret-token")).with_retry(policy);
    let audit = Arc::new(MemorySink::default());
    let begun = open(&audit).begin_recording_blocking(&blocking_graph);
    assert!(matches!(begun, Ok(Begin::Recording(_))), "{begun:?}");
    for transport in [
        by_hand_transport,
        async_graph.transport().clone(),
        blocking_graph.transport().clone(),
    ] {
        assert_eq!(
            transport.statuses(),
            ["recording", "recording", "recording", "recording"]
        );
    }
}

/// Runs a future on this thread: the async loop needs no runtime with a timer that needs none.
fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    loop {
        if let std::task::Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
        std::thread::yield_now();
    }
}

/// A sink that refuses the first `drain_started` it is given, and keeps everything else.
#[derive(Debug, Default)]
struct RefusesTheFirstStopSignal {
    kept: MemorySink,
    refused: std::sync::atomic::AtomicBool,
}

impl recording_status::audit::AuditSink for RefusesTheFirstStopSignal {
    fn record(
        &self,
        event: &recording_status::audit::AuditEvent,
    ) -> Result<(), recording_status::error::AuditError> {
        if matches!(
            event.kind,
            recording_status::audit::AuditKind::DrainStarted { .. }
        ) && !self.refused.swap(true, std::sync::atomic::Ordering::SeqCst)
        {
            return Err(recording_status::error::AuditError::Io(
                std::io::Error::other("disk full"),
            ));
        }
        self.kept.record(event)
    }
}

/// When the trail refuses the stop signal, the signal is not raised (the media task is not
/// told), and the error says so; following the documented advice (stop again once the sink
/// accepts events) raises it, the media task ends, and the stop completes.
#[test]
fn a_refused_stop_signal_is_not_raised_and_stopping_again_as_documented_terminates() {
    use recording_status::{Error, StopError};

    let sink = Arc::new(RefusesTheFirstStopSignal::default());
    let transport = ScriptedTransport::new()
        .then(Answer::completed())
        .then(Answer::completed());
    let graph = Graph::new(transport, AccessToken::new("secret-token"));
    let call = Calls::new(sink.clone())
        .open(this_call().parse().unwrap())
        .unwrap();
    let Ok(Begin::Recording(call)) = call.begin_recording_blocking(&graph) else {
        panic!("acknowledged");
    };
    let handle = call.retention_handle().unwrap();
    let media = std::thread::spawn(move || {
        // A media task: writes until told to stop, then ends its capability.
        while !handle.is_stopping() {
            std::thread::sleep(Duration::from_millis(1));
        }
        drop(handle);
    });

    let Err(StopError::StillRecording { call, error }) =
        call.stop_recording_blocking(&graph, Duration::from_secs(5))
    else {
        panic!("the refused signal stops the stop");
    };
    assert!(matches!(error, Error::Audit(_)), "{error:?}");
    assert!(!call.is_stopping(), "a refused signal is not raised");
    assert_eq!(call.outstanding(), 1, "the media task was not told");

    // The documented advice: stop again once the sink accepts events.
    let stopped = call.stop_recording_blocking(&graph, Duration::from_secs(5));
    assert!(stopped.is_ok(), "{stopped:?}");
    media.join().unwrap();
    verify(&sink.kept.events()).unwrap();
}

/// A bot's function returning the crate's `Error` can parse ids with `?`.
#[test]
fn invalid_ids_convert_into_the_crate_error() {
    fn open(calls: &Calls, id: &str) -> Result<Call<NotRecording>, recording_status::Error> {
        calls.open(id.parse()?)
    }
    let calls = Calls::new(Arc::new(MemorySink::default()));
    let error = open(&calls, "../calls").unwrap_err();
    assert!(
        matches!(error, recording_status::Error::InvalidCallId(_)),
        "{error:?}"
    );
    assert!(open(&calls, &this_call()).is_ok());
}
