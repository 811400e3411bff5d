//! Group commit across calls (issue 20, items 1 and 2): at a sink whose writes wait for their
//! storage ([`AuditSink::blocks`]), the driver's steps wait off tokio's worker threads, so the
//! events of many calls go out together in one write; and a write that fails fails exactly
//! the steps whose events it carried: none of them proceeds, and the trail stays true.
//!
//! These run on a real multi-threaded runtime with two workers (as on the machines the bot
//! runs on), not on the paused clock: the storage's waits are real.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use recording_status::audit::{
    AuditEvent, AuditKind, AuditSink, Durability, GroupCommit, GroupWrite, JsonLinesSink, verify,
};
use recording_status::driver::{Driver, DriverConfig, Started};
use recording_status::error::AuditError;
use recording_status::testing::{ScriptedTransport, Step};
use recording_status::{AccessToken, CallState, Graph};

use crate::support::bodies::graph_notification;
use crate::support::graph::{TOKEN, proof, scripted};
use crate::support::ids::{OP_UPPER, call_id, this_call_upper, unique_call};

/// A stand-in for slow durable storage (a sync to disk, a database's commit): each write
/// takes `pause`, and every `fail_every`-th write (if set) is refused, keeping nothing of it.
#[derive(Debug)]
struct Storage {
    pause: Duration,
    fail_every: Option<u64>,
    writes: u64,
    failed: Arc<AtomicU64>,
    kept: Arc<Mutex<Vec<AuditEvent>>>,
}

impl Storage {
    fn new(pause: Duration, fail_every: Option<u64>) -> Self {
        Self {
            pause,
            fail_every,
            writes: 0,
            failed: Arc::default(),
            kept: Arc::default(),
        }
    }
}

impl GroupWrite for Storage {
    fn write(&mut self, events: &[AuditEvent]) -> Result<(), AuditError> {
        std::thread::sleep(self.pause);
        self.writes += 1;
        if self
            .fail_every
            .is_some_and(|k| self.writes.is_multiple_of(k))
        {
            self.failed.fetch_add(1, Ordering::SeqCst);
            return Err(std::io::Error::other("injected: storage refused the write").into());
        }
        self.kept.lock().unwrap().extend_from_slice(events);
        Ok(())
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn driver(transport: &ScriptedTransport, sink: Arc<dyn AuditSink>) -> Driver<ScriptedTransport> {
    let graph = Graph::new(transport.clone(), AccessToken::new(TOKEN));
    Driver::new(graph, sink, DriverConfig::default()).0
}

/// Every answer `completed`, enough for `calls` calls and their reports.
fn completing(calls: usize) -> ScriptedTransport {
    scripted((0..calls * 4).map(|_| Step::completed()))
}

const IN_FLIGHT: usize = 64;

/// Records and stops [`IN_FLIGHT`] calls at once through `driver` (each completed), and ends
/// each if `end`.
async fn record_and_stop(driver: &Driver<ScriptedTransport>, end: bool) {
    let calls: Vec<_> = (0..IN_FLIGHT)
        .map(|_| {
            let driver = driver.clone();
            tokio::spawn(async move {
                let call = driver.call(unique_call().parse().unwrap()).unwrap();
                let Ok(Started::Recording(call)) = driver.begin_recording(call).await else {
                    panic!("every request is completed")
                };
                let call = driver.stop_recording(call).await.unwrap();
                if end {
                    drop(driver.end(call));
                }
            })
        })
        .collect();
    for call in calls {
        call.await.unwrap();
    }
}

/// A synced JSON-lines trail in a directory of its own (kept while the first value lives).
fn synced_trail() -> (tempfile::TempDir, std::path::PathBuf, Arc<JsonLinesSink>) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let sink = JsonLinesSink::options()
        .durability(Durability::Synced)
        .open(&path)
        .unwrap();
    (dir, path, Arc::new(sink))
}

#[test]
fn steps_waiting_on_a_slow_sink_share_its_writes_at_64_calls_in_flight() {
    let storage = Storage::new(Duration::from_millis(2), None);
    let kept = storage.kept.clone();
    let sink = Arc::new(GroupCommit::new(storage));
    let transport = completing(IN_FLIGHT);
    let driver = driver(&transport, sink.clone());
    runtime().block_on(record_and_stop(&driver, true));
    let (writes, events) = sink.counts();
    assert_eq!(
        events,
        9 * IN_FLIGHT as u64,
        "nine events a call, in six writes"
    );
    // Two worker threads blocked in the sink would let at most two callers share a write
    // (four events): waiting off the workers, dozens do.
    let per_write = events as f64 / writes as f64;
    assert!(
        per_write >= 8.0,
        "{events} events in {writes} writes: {per_write:.1} a write"
    );
    let kept = kept.lock().unwrap();
    let verified = verify(&kept).unwrap();
    assert!(verified.open.is_empty());
}

#[tokio::test]
async fn a_synced_trail_on_a_current_thread_runtime_is_written_in_place() {
    // `block_in_place` would panic here: the driver writes in place instead.
    let (_dir, path, sink) = synced_trail();
    assert!(sink.blocks());
    let transport = completing(1);
    let driver = driver(&transport, sink.clone());
    let call = driver.call(unique_call().parse().unwrap()).unwrap();
    let Ok(Started::Recording(call)) = driver.begin_recording(call).await else {
        panic!("completed")
    };
    drop(driver.end(driver.stop_recording(call).await.unwrap()));
    assert_eq!(sink.counts(), (6, 9));
    verify(&JsonLinesSink::read(&path).unwrap()).unwrap();
}

/// A synced trail's sync thread makes every line written before a sync durable with it, and
/// the driver awaits a request's and an answer's lines without holding a thread: even on a
/// runtime with one thread, the calls in flight share syncs. (Before, each step waited for its
/// own sync on that thread: one write's lines a sync.)
#[tokio::test]
async fn a_synced_trail_shares_its_syncs_across_calls_on_a_single_thread() {
    let (_dir, path, sink) = synced_trail();
    assert!(sink.defers());
    let transport = completing(IN_FLIGHT);
    let driver = driver(&transport, sink.clone());
    // Not `end`: its line is written in place, as the bot's own writes are.
    record_and_stop(&driver, false).await;
    let (syncs, lines) = sink.syncs().unwrap();
    assert_eq!(
        lines,
        8 * IN_FLIGHT as u64,
        "eight lines a call, all synced"
    );
    // Alone, a call's eight lines take four syncs (its begin's transition is synced with its
    // request): 2 lines a sync. Waiting in place, they took five (1.6 a sync).
    assert!(
        2 * lines > 5 * syncs,
        "{lines} lines in {syncs} syncs: the calls did not share them"
    );
    let trail = JsonLinesSink::read(&path).unwrap();
    assert!(verify(&trail).unwrap().open.is_empty());
}

/// A begin answered `running` and completed by its notification, on a synced trail: the
/// transition to `Recording` the notification leads to is awaited like an answer's, and the
/// call comes back recording with every line on the disk.
#[tokio::test]
async fn a_begin_completed_by_its_notification_on_a_synced_trail() {
    let (_dir, path, sink) = synced_trail();
    let transport = scripted([Step::running(), Step::completed()]);
    let driver = driver(&transport, sink.clone());
    let hub = driver.hub().clone();
    let notify = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let delivered = hub
            .deliver(
                &proof(),
                &graph_notification(&this_call_upper(), OP_UPPER, "completed"),
            )
            .unwrap();
        assert_eq!(delivered.routed, 1);
    });
    let started = driver
        .begin_recording(driver.call(call_id()).unwrap())
        .await;
    let Ok(Started::Recording(call)) = started else {
        panic!("the notification completes the begin: {started:?}")
    };
    notify.await.unwrap();
    // Everything written so far is on the disk: the wait covered the notification's lines.
    let (_, synced) = sink.syncs().unwrap();
    assert_eq!(synced, JsonLinesSink::read(&path).unwrap().len() as u64);
    drop(driver.stop_recording(call).await.unwrap());
    let trail = JsonLinesSink::read(&path).unwrap();
    assert!(verify(&trail).unwrap().open.is_empty());
    assert!(trail.iter().any(|e| matches!(
        e.kind,
        AuditKind::Transition {
            to: CallState::Recording,
            ..
        }
    )));
}

/// What one call of the fault-injection run saw.
#[derive(Debug, Default)]
struct Seen {
    /// The call was handed back in `Recording`.
    recording: bool,
    /// Capabilities the bot got.
    capabilities: Vec<u64>,
    /// The stop was acknowledged (`Call<NotRecording>` handed back).
    stopped: bool,
}

#[test]
fn a_refused_group_write_fails_exactly_the_steps_it_carried() {
    // Many rounds: which events share a write, and so which steps a failure hits, changes
    // with every interleaving.
    for k in [2, 3, 5, 2, 3, 5, 2, 3, 5, 7] {
        let storage = Storage::new(Duration::from_micros(500), Some(k));
        let (kept, failed) = (storage.kept.clone(), storage.failed.clone());
        let sink = Arc::new(GroupCommit::new(storage));
        let transport = completing(IN_FLIGHT * 2);
        let driver = driver(&transport, sink.clone());
        let seen: Vec<(String, Seen)> = runtime().block_on(async {
            let calls: Vec<_> = (0..IN_FLIGHT)
                .map(|_| {
                    let driver = driver.clone();
                    tokio::spawn(async move {
                        let id = unique_call();
                        let mut seen = Seen::default();
                        let Ok(call) = driver.call(id.parse().unwrap()) else {
                            return (id, seen);
                        };
                        let Ok(Started::Recording(call)) = driver.begin_recording(call).await
                        else {
                            return (id, seen);
                        };
                        seen.recording = true;
                        if let Ok(handle) = call.retention_handle() {
                            seen.capabilities.push(handle.number());
                        }
                        if let Ok(call) = driver.stop_recording(call).await {
                            seen.stopped = true;
                            drop(driver.end(call));
                        }
                        (id, seen)
                    })
                })
                .collect();
            let mut seen = Vec::new();
            for call in calls {
                seen.push(call.await.unwrap());
            }
            // Calls dropped while recording get their best-effort reports: wait for them.
            driver.shutdown(Duration::from_secs(10)).await;
            seen
        });
        assert!(failed.load(Ordering::SeqCst) > 0, "k={k}: no write failed");
        let kept = kept.lock().unwrap();
        // The trail holds what was durable, and the rule holds on it.
        if let Err(v) = verify(&kept) {
            panic!("k={k}: {v:?}");
        }
        // No request left without its `request_sent` in the trail.
        let sent: HashSet<String> = kept
            .iter()
            .filter_map(|e| match &e.kind {
                AuditKind::RequestSent {
                    client_request_id, ..
                } => Some(client_request_id.clone()),
                _ => None,
            })
            .collect();
        for request in transport.requests() {
            let id = request.headers()["client-request-id"].to_str().unwrap();
            assert!(sent.contains(id), "k={k}: request {id} sent unrecorded");
        }
        // No step the bot was handed proceeded on a lost event.
        let mut refused_steps = 0;
        for (id, seen) in &seen {
            // The trail spells every call by its normalised id.
            let key = id.replace('-', "");
            let mine = |e: &&AuditEvent| e.call_id == key;
            let entered = |state: CallState| {
                kept.iter()
                    .filter(mine)
                    .any(|e| matches!(&e.kind, AuditKind::Transition { to, .. } if *to == state))
            };
            assert_eq!(
                seen.recording,
                entered(CallState::Recording),
                "k={k}, {id}: recording handed out unrecorded, or recorded and not handed out"
            );
            for n in &seen.capabilities {
                assert!(
                    kept.iter().filter(mine).any(|e| matches!(&e.kind,
                        AuditKind::RetentionStarted { capability, .. } if capability == n)),
                    "k={k}, {id}: capability {n} handed out unrecorded"
                );
            }
            if seen.stopped {
                assert!(
                    entered(CallState::NotRecording),
                    "k={k}, {id}: stop unrecorded"
                );
            }
            refused_steps += usize::from(!seen.stopped);
        }
        assert!(refused_steps > 0, "k={k}: every call went through");
    }
}
