//! The async loop over a synced trail whose syncs the test holds, fails or lets through: a
//! request leaves only once its `request_sent` is on the disk, a result is handed back only
//! once its lines are, the wait holds no thread, and a failed sync withholds what it lost.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use crate::audit::flaky::Flaky;
use crate::audit::{AuditEvent, AuditKind, AuditSink, Durability, JsonLinesSink, verify};
use crate::error::{AuditError, Error};
use crate::registry::Calls;
use crate::testing::{ScriptedTransport, Step};
use crate::transport::{HttpRequest, HttpResponse, Transport};
use crate::types::AccessToken;
use crate::{Begin, Graph};

/// A call id of this test's own: the call table is the process's.
fn call_id(test: u8) -> crate::types::CallId {
    format!("57dab8b1-894c-409a-b240-bd8beae788{test:02x}")
        .parse()
        .unwrap()
}

/// A scripted Graph that notes, for each request, whether its `request_sent` line (found by
/// its `client-request-id`) was on the disk when the request arrived; and can make the syncs
/// after it fail.
#[derive(Clone)]
struct Checked {
    file: Flaky,
    script: ScriptedTransport,
    /// For each request: whether its line was synced when it arrived.
    synced: Arc<Mutex<Vec<bool>>>,
    /// Every sync after a request arrives fails.
    fail_syncs_after: bool,
    /// Syncs fail from the arrival of this request on (counted from 1; 0 for never).
    fail_syncs_from: usize,
}

impl Checked {
    fn new(file: &Flaky, steps: usize) -> Self {
        Self {
            file: file.clone(),
            script: ScriptedTransport::new(),
            synced: Arc::default(),
            fail_syncs_after: false,
            fail_syncs_from: 0,
        }
        .with_steps(steps)
    }

    fn with_steps(self, steps: usize) -> Self {
        for _ in 0..steps {
            self.script.push(Step::completed());
        }
        self
    }

    fn synced(&self) -> Vec<bool> {
        self.synced.lock().unwrap().clone()
    }
}

impl Transport for Checked {
    type Error = <ScriptedTransport as Transport>::Error;

    async fn send(&self, request: HttpRequest) -> Result<HttpResponse, Self::Error> {
        let id = request
            .headers()
            .get("client-request-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let synced = String::from_utf8_lossy(&self.file.synced()).contains(&id);
        let arrived = {
            let mut seen = self.synced.lock().unwrap();
            seen.push(synced);
            seen.len()
        };
        if self.fail_syncs_after || arrived == self.fail_syncs_from {
            self.file.fail_sync.store(true, Ordering::SeqCst);
        }
        self.script.send(request).await
    }
}

/// A synced trail over `file`, a registry writing to it, and a graph sending through
/// `transport`.
fn over(file: &Flaky, transport: &Checked) -> (Arc<JsonLinesSink>, Calls, Graph<Checked>) {
    let sink = Arc::new(file.sink(Durability::Synced));
    let graph = Graph::new(transport.clone(), AccessToken::new("token"));
    (sink.clone(), Calls::new(sink), graph)
}

fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap()
}

/// The trail in `bytes`, read as a file is.
fn events(bytes: &[u8]) -> Vec<AuditEvent> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    std::fs::write(&path, bytes).unwrap();
    JsonLinesSink::read(&path).unwrap().events
}

#[test]
fn a_request_waits_for_its_sync_without_holding_the_thread() {
    let file = Flaky::default();
    let (release, held) = mpsc::channel();
    *file.sync_gate.lock().unwrap() = Some(held);
    // Lets the sync through after a while if nothing else does (the code before this change
    // waited for the sync on the only thread, so the other task could never run).
    let watchdog = {
        let release = release.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_secs(5));
            let _ = release.send(());
        })
    };
    let transport = Checked::new(&file, 1);
    let (_sink, calls, graph) = over(&file, &transport);
    let released_by_task = Arc::new(Mutex::new(false));
    current_thread().block_on(async {
        let call = calls.open(call_id(1)).unwrap();
        let other = async {
            // Runs while the begin waits for its sync: the thread is free.
            while file.syncs.load(Ordering::SeqCst) == 0 && transport.synced().is_empty() {
                if file.sync_gate.lock().unwrap().is_none() {
                    // The sync thread took the gate: it is waiting on it now.
                    assert!(transport.synced().is_empty(), "sent before its sync");
                    *released_by_task.lock().unwrap() = true;
                    release.send(()).unwrap();
                    break;
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        };
        let (begun, ()) = tokio::join!(call.begin_recording(&graph), other);
        assert!(matches!(begun, Ok(Begin::Recording(_))), "{begun:?}");
    });
    assert!(
        *released_by_task.lock().unwrap(),
        "the other task never ran while the begin waited for its sync"
    );
    assert_eq!(
        transport.synced(),
        [true],
        "the request left before its line was synced"
    );
    drop(watchdog);
}

#[test]
fn a_result_is_handed_back_only_once_its_lines_are_synced() {
    let file = Flaky::default();
    let transport = Checked::new(&file, 2);
    let (_sink, calls, graph) = over(&file, &transport);
    current_thread().block_on(async {
        let call = calls.open(call_id(2)).unwrap();
        let Ok(Begin::Recording(call)) = call.begin_recording(&graph).await else {
            panic!("completed")
        };
        // Everything the begin wrote is on the disk when it hands the call back.
        assert_eq!(file.synced(), file.bytes());
        let stopped = call.stop_recording(&graph, std::future::pending()).await;
        assert!(stopped.is_ok(), "{stopped:?}");
        assert_eq!(file.synced(), file.bytes());
    });
    assert_eq!(transport.synced(), [true, true]);
    let trail = events(&file.bytes());
    assert!(verify(&trail).unwrap().open.is_empty());
}

#[test]
fn a_request_whose_line_fails_to_sync_is_not_sent_and_the_trail_stops() {
    let file = Flaky::default();
    file.fail_sync.store(true, Ordering::SeqCst);
    let transport = Checked::new(&file, 1);
    let (sink, calls, graph) = over(&file, &transport);
    current_thread().block_on(async {
        let call = calls.open(call_id(3)).unwrap();
        let not_sent = call.begin_recording(&graph).await.unwrap_err();
        assert!(
            matches!(not_sent.error, Error::Audit(AuditError::Io(_))),
            "{not_sent:?}"
        );
    });
    assert!(transport.synced().is_empty(), "a request was sent");
    // Cut back to the last synced line: nothing of the begin stays.
    assert!(file.bytes().is_empty());
    let refused = sink.record(&AuditEvent::now(
        "c1",
        AuditKind::RetentionEnded { capability: 1 },
    ));
    assert!(refused.is_err(), "the trail stopped");
}

#[test]
fn an_answer_whose_lines_fail_to_sync_comes_back_as_the_transition_the_trail_refused() {
    let file = Flaky::default();
    let mut transport = Checked::new(&file, 2);
    transport.fail_syncs_after = true;
    let (_sink, calls, graph) = over(&file, &transport);
    current_thread().block_on(async {
        let call = calls.open(call_id(4)).unwrap();
        // Graph acknowledged, but the acknowledgement and the transition to `Recording` were
        // lost with the failed sync: the call does not enter `Recording`.
        let Ok(Begin::Failed(call)) = call.begin_recording(&graph).await else {
            panic!("the lost acknowledgement must not hand back a recording call")
        };
        assert!(
            matches!(call.reason(), Error::Audit(_)),
            "{:?}",
            call.reason()
        );
    });
    assert_eq!(
        transport.synced(),
        [true],
        "one request, sent once its line was synced"
    );
    // The trail ends with the request: the answer and the transition are not in it.
    let trail = events(&file.bytes());
    assert!(matches!(
        trail.last().map(|e| &e.kind),
        Some(AuditKind::RequestSent { .. })
    ));
    let verified = verify(&trail).unwrap();
    assert_eq!(verified.open.len(), 1, "the cut trail leaves the call open");
}

#[test]
fn a_begin_dropped_while_its_request_waits_for_the_sync_sends_nothing() {
    let file = Flaky::default();
    let (release, held) = mpsc::channel();
    *file.sync_gate.lock().unwrap() = Some(held);
    let transport = Checked::new(&file, 1);
    let (_sink, calls, graph) = over(&file, &transport);
    current_thread().block_on(async {
        let call = calls.open(call_id(9)).unwrap();
        let begin = tokio::time::timeout(Duration::from_millis(50), call.begin_recording(&graph));
        assert!(
            begin.await.is_err(),
            "the sync is held: the begin cannot end"
        );
    });
    release.send(()).unwrap();
    // The sync goes on without the dropped future; the request never left.
    while file.syncs.load(Ordering::SeqCst) == 0 {
        std::thread::sleep(Duration::from_millis(1));
    }
    assert!(
        transport.synced().is_empty(),
        "a dropped begin sent its request"
    );
    let trail = events(&file.synced());
    assert!(matches!(
        trail.last().map(|e| &e.kind),
        Some(AuditKind::RequestSent { .. })
    ));
    // The trail shows a request with no answer: the call is left open, as after a drop in
    // flight.
    assert_eq!(verify(&trail).unwrap().open.len(), 1);
}

/// Many calls in flight on two threads, and a sync that fails part-way: whatever the
/// interleaving, no request leaves and no call is handed back `Recording` before its lines are
/// on the disk, the file is cut back to what was synced, and the cut trail verifies.
#[test]
fn a_failed_sync_at_64_calls_in_flight_lets_nothing_happen_on_a_lost_line() {
    const IN_FLIGHT: u8 = 64;
    // Rounds where some call was handed back recording (whose lines were then checked): which
    // ones depends on how the syncs fall.
    let mut rounds_checked = 0;
    for (round, fail_from) in [1usize, 7, 20, 33, 50, 64, 3, 40, 12, 57]
        .into_iter()
        .enumerate()
    {
        let file = Flaky::default();
        let mut transport = Checked::new(&file, usize::from(IN_FLIGHT) * 2);
        transport.fail_syncs_from = fail_from;
        let (sink, calls, graph) = over(&file, &transport);
        let graph = Arc::new(graph);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let outcomes: Vec<(bool, bool)> = runtime.block_on(async {
            let tasks: Vec<_> = (0..IN_FLIGHT)
                .map(|n| {
                    let (calls, graph, file) = (calls.clone(), graph.clone(), file.clone());
                    tokio::spawn(async move {
                        let id = format!(
                            "{:02x}{n:02x}dab8-894c-409a-b240-bd8beae78896",
                            0x80 + round
                        );
                        let call = calls.open(id.parse().unwrap()).unwrap();
                        let normalized = call.id().normalized().to_owned();
                        match call.begin_recording(&*graph).await {
                            Ok(Begin::Recording(call)) => {
                                let on_disk = events(&file.synced()).iter().any(|e| {
                                    e.call_id == normalized
                                        && matches!(
                                            e.kind,
                                            AuditKind::Transition {
                                                to: crate::CallState::Recording,
                                                ..
                                            }
                                        )
                                });
                                drop(call.stop_recording(&*graph, std::future::pending()).await);
                                (true, on_disk)
                            }
                            _ => (false, true),
                        }
                    })
                })
                .collect();
            let mut outcomes = Vec::new();
            for task in tasks {
                outcomes.push(task.await.unwrap());
            }
            outcomes
        });
        let sent = transport.synced();
        assert!(
            sent.iter().all(|synced| *synced),
            "round {round}: a request left before its line was synced"
        );
        assert!(
            outcomes.iter().all(|(_, on_disk)| *on_disk),
            "round {round}: a call was handed back recording before its transition was synced"
        );
        assert!(
            outcomes.iter().any(|(recording, _)| !recording),
            "round {round}: the failed sync refused nothing"
        );
        if outcomes.iter().any(|(recording, _)| *recording) {
            rounds_checked += 1;
        }
        drop(calls);
        drop(sink);
        // Cut back to the last synced line, readable, and true to the rule.
        assert_eq!(file.bytes(), file.synced(), "round {round}");
        verify(&events(&file.bytes())).unwrap();
    }
    assert!(
        rounds_checked >= 3,
        "only {rounds_checked} rounds handed a call back recording: too little was checked"
    );
}
