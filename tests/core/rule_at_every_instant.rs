//! The recording rule at every instant, as a property (G1, G2, G7, G8).
//!
//! A bot drives one Graph call through arbitrary sequences of: opening a value for the call
//! under either spelling of its id (the GUID, or Graph's upper-case dash-less form), beginning
//! recording, spawning media writers (std threads writing frames of up to 16 KiB through an
//! inner writer that takes 64 bytes per `write`), stopping, ending, and dropping values while
//! recording (so that the driver's orphan report races the next value's begin). A stand-in for
//! Graph answers every request `completed` and remembers, per call, the last status it
//! acknowledged. Storage checks, at every inner write:
//!
//! 1. Graph's last acknowledged status for the call is `recording` (the rule itself);
//! 2. the write does not start after `end()` or the drop of the value whose capability it
//!    uses has returned (G8).
//!
//! The model also says when opening must be refused (a value for the call is alive, G7), and the
//! trail must pass `audit::verify`. CI runs 256 cases; a longer run:
//! `PROPTEST_CASES=2000 cargo test --all-features --test core rule_at_every_instant`.

use std::collections::HashMap;
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use proptest::prelude::*;
use recording_status::audit::verify;
use recording_status::driver::{Driver, DriverConfig, Started};
use recording_status::{AnyCall, Error, RetentionHandle, RetentionWriter, StopError};

use crate::support::bodies::{answer, sent};
use crate::support::driving::driver_over;
use crate::support::ids::{normalized, this_call, this_call_key, this_call_upper};
use crate::support::proptest_config;

/// Graph's side: the last status it acknowledged for each call.
#[derive(Debug, Default)]
struct GraphStandIn {
    status: Mutex<HashMap<String, String>>,
}

impl GraphStandIn {
    fn answer(&self, request: &http::Request<Vec<u8>>) -> http::Response<Vec<u8>> {
        let path = request.uri().path();
        let id = path
            .split("/calls/")
            .nth(1)
            .and_then(|rest| rest.split('/').next())
            .unwrap_or_default();
        let status = sent(request)["status"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        self.status.lock().unwrap().insert(normalized(id), status);
        answer(request, "completed")
    }

    fn acknowledged(&self, key: &str) -> Option<String> {
        self.status.lock().unwrap().get(key).cloned()
    }
}

/// Storage: checks the rule at every inner write.
#[derive(Debug)]
struct Storage {
    graph: Arc<GraphStandIn>,
    /// The call, as keyed: read on the media threads, which have no call of their own.
    call_key: String,
    violations: Mutex<Vec<String>>,
    writes: AtomicUsize,
}

impl Storage {
    fn persist(&self, revocation_returned: &AtomicBool) {
        self.writes.fetch_add(1, Ordering::SeqCst);
        let status = self.graph.acknowledged(&self.call_key);
        if status.as_deref() != Some("recording") {
            self.violations
                .lock()
                .unwrap()
                .push(format!("media persisted while Graph shows {status:?}"));
        }
        if revocation_returned.load(Ordering::SeqCst) {
            self.violations
                .lock()
                .unwrap()
                .push("an inner write started after end() or the drop returned".to_owned());
        }
    }
}

/// The storage behind a writer: takes at most 64 bytes per `write`.
struct Chunked {
    storage: Arc<Storage>,
    revocation_returned: Arc<AtomicBool>,
}

impl Write for Chunked {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.storage.persist(&self.revocation_returned);
        Ok(buf.len().min(64))
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// What the bot does next. `usize` fields pick one of the values alive (modulo their number).
#[derive(Debug, Clone)]
enum Action {
    /// Open a value for the call under this spelling (GUID if `true`).
    Open(bool),
    Begin(usize),
    /// A media task writing this many frames of this size through a capability of a value.
    Writer {
        value: usize,
        frames: usize,
        size: usize,
    },
    Stop(usize),
    End(usize),
    Drop(usize),
    /// Let the writers run for this many microseconds.
    Pause(u64),
}

fn action() -> impl Strategy<Value = Action> {
    let value = 0usize..4;
    let size = prop_oneof![1 => Just(16usize), 1 => Just(1024), 3 => Just(16 * 1024)];
    prop_oneof![
        3 => any::<bool>().prop_map(Action::Open),
        3 => value.clone().prop_map(Action::Begin),
        5 => (value.clone(), 1usize..40, size)
            .prop_map(|(value, frames, size)| Action::Writer { value, frames, size }),
        2 => value.clone().prop_map(Action::Stop),
        2 => value.clone().prop_map(Action::End),
        2 => value.prop_map(Action::Drop),
        3 => (0u64..2000).prop_map(Action::Pause),
    ]
}

/// A live value, with the flag its writers' storage checks.
struct Live {
    call: AnyCall,
    revocation_returned: Arc<AtomicBool>,
}

fn spawn_writer(
    handle: RetentionHandle,
    storage: Arc<Storage>,
    revocation_returned: Arc<AtomicBool>,
    frames: usize,
    size: usize,
) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let frame = vec![7u8; size];
        let mut writer = RetentionWriter::new(
            handle,
            Chunked {
                storage,
                revocation_returned,
            },
        );
        for _ in 0..frames {
            if writer.capability().is_stopping() || writer.write_all(&frame).is_err() {
                break;
            }
            std::thread::yield_now();
        }
    })
}

fn run(actions: Vec<Action>) -> Result<(), TestCaseError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    // Dropping a recording call queues its orphan report on the current runtime.
    let _entered = runtime.enter();
    let graph_side = Arc::new(GraphStandIn::default());
    let storage = Arc::new(Storage {
        graph: graph_side.clone(),
        call_key: this_call_key(),
        violations: Mutex::new(Vec::new()),
        writes: AtomicUsize::new(0),
    });
    let g = graph_side.clone();
    let transport = move |request: http::Request<Vec<u8>>| {
        let response = g.answer(&request);
        async move { Ok::<_, std::io::Error>(response) }
    };
    let config = DriverConfig::default().with_drain_deadline(Duration::from_secs(5));
    let (driver, _events, audit) = driver_over(transport, config);
    let mut live: Vec<Live> = Vec::new();
    let mut writers = Vec::new();
    // Takes the value an action names out of `live`, if any is alive.
    let pick =
        |live: &mut Vec<Live>, i: usize| (!live.is_empty()).then(|| live.remove(i % live.len()));
    for action in actions {
        match action {
            Action::Open(guid) => {
                match driver.call(
                    (if guid { this_call() } else { this_call_upper() })
                        .parse()
                        .unwrap(),
                ) {
                    Err(Error::AlreadyOpen { .. }) if !live.is_empty() => {}
                    Ok(call) => {
                        if !live.is_empty() {
                            // The model says no; go on with both, so that the rule checks
                            // below show what a second value does.
                            storage
                                .violations
                                .lock()
                                .unwrap()
                                .push("a second live value was opened".to_owned());
                        }
                        live.push(Live {
                            call: AnyCall::NotRecording(call),
                            revocation_returned: Arc::default(),
                        });
                    }
                    Err(e) => return Err(TestCaseError::fail(format!("open: {e}"))),
                }
            }
            Action::Begin(i) => {
                let Some(Live {
                    call,
                    revocation_returned,
                }) = pick(&mut live, i)
                else {
                    continue;
                };
                let call = match call {
                    AnyCall::NotRecording(c) => match runtime.block_on(driver.begin_recording(c)) {
                        Ok(started) => started_to_any(started)?,
                        Err(not_sent) => AnyCall::NotRecording(not_sent.call),
                    },
                    AnyCall::Failed(c) => match runtime.block_on(driver.begin_recording(c)) {
                        Ok(started) => started_to_any(started)?,
                        Err(not_sent) => AnyCall::Failed(not_sent.call),
                    },
                    other => other,
                };
                live.push(Live {
                    call,
                    revocation_returned,
                });
            }
            Action::Writer {
                value,
                frames,
                size,
            } => {
                if live.is_empty() {
                    continue;
                }
                let l = &live[value % live.len()];
                if let AnyCall::Recording(c) = &l.call {
                    let handle = c.retention_handle().unwrap();
                    writers.push(spawn_writer(
                        handle,
                        storage.clone(),
                        l.revocation_returned.clone(),
                        frames,
                        size,
                    ));
                }
            }
            Action::Stop(i) => {
                let Some(Live {
                    call,
                    revocation_returned,
                }) = pick(&mut live, i)
                else {
                    continue;
                };
                let call = match call {
                    AnyCall::Recording(c) => match runtime.block_on(driver.stop_recording(c)) {
                        Ok(c) => AnyCall::NotRecording(c),
                        Err(StopError::StillRecording { call, .. }) => AnyCall::Recording(*call),
                        Err(StopError::Unacknowledged { call }) => AnyCall::Failed(call),
                        Err(e) => return Err(TestCaseError::fail(format!("stop: {e}"))),
                    },
                    other => other,
                };
                live.push(Live {
                    call,
                    revocation_returned,
                });
            }
            Action::End(i) => {
                if let Some(l) = pick(&mut live, i) {
                    drop(end(&driver, l.call));
                    l.revocation_returned.store(true, Ordering::SeqCst);
                }
            }
            Action::Drop(i) => {
                if let Some(l) = pick(&mut live, i) {
                    drop(l.call);
                    l.revocation_returned.store(true, Ordering::SeqCst);
                }
            }
            Action::Pause(micros) => std::thread::sleep(Duration::from_micros(micros)),
        }
    }
    for l in live.drain(..) {
        drop(l.call);
        l.revocation_returned.store(true, Ordering::SeqCst);
    }
    for w in writers {
        w.join().unwrap();
    }
    // Let queued orphan reports finish before reading the trail.
    runtime.block_on(tokio::time::sleep(Duration::from_millis(20)));
    let violations = storage.violations.lock().unwrap().clone();
    prop_assert!(
        violations.is_empty(),
        "{} violations, the first: {:?}",
        violations.len(),
        &violations[..violations.len().min(3)]
    );
    if let Err(v) = verify(&audit.events()) {
        return Err(TestCaseError::fail(format!("trail: {v}")));
    }
    Ok(())
}

fn started_to_any(started: Started) -> Result<AnyCall, TestCaseError> {
    match started {
        Started::Recording(c) => Ok(AnyCall::Recording(c)),
        Started::Failed(c) => Ok(AnyCall::Failed(c)),
        other => Err(TestCaseError::fail(format!("unexpected {other:?}"))),
    }
}

fn end<T: recording_status::Transport + 'static>(
    driver: &Driver<T>,
    call: AnyCall,
) -> recording_status::Ended {
    match call {
        AnyCall::NotRecording(c) => driver.end(c),
        AnyCall::PendingRecording(c) => driver.end(c),
        AnyCall::Recording(c) => driver.end(c),
        AnyCall::Failed(c) => driver.end(c),
        other => unreachable!("four states: {other:?}"),
    }
}

proptest! {
    #![proptest_config(proptest_config())]

    #[test]
    fn the_rule_holds_at_every_instant(actions in prop::collection::vec(action(), 1..40)) {
        run(actions)?;
    }
}
