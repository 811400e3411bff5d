//! What recording calls hold and allocate, counted by a global allocator that wraps `System`
//! (`benches/count-alloc`): bytes live, their peak, allocation calls, bytes allocated.
//!
//! - Held per call: N calls in `Recording` through `driver::Driver`, each with one
//!   `RetentionHandle` alive, for N = 100, 1,000 and 10,000: (live after the N begins − live
//!   before) / N. Then every call is stopped (its handle dropped first) and ended through the
//!   driver: what is left above the baseline with the driver alive, and after the driver is
//!   dropped.
//! - Allocated per call: `begin_recording` + `stop_recording` + `end` on the driver path, step
//!   by step and attributed to the call's audit events; and one `NotRecording → Recording →
//!   NotRecording` round trip on the three paths of `benches/core.rs`
//!   (`support/round_trip.rs`), step by step for the typed and sans-IO ones.
//!
//! - Held updates: 100,000 `completed` notifications for calls nobody waits for, each held by
//!   the hub as an early update: the bytes the hub counts against its budget
//!   (`Hub::remembered_bytes`) against the live bytes the counting allocator sees and the
//!   process's resident memory growth (`/proc/self/statm`), per update.
//!
//! Everything runs on one thread (a current-thread tokio runtime for the driver), so the
//! counts are this work's alone. The transport answers `completed` in process, and the audit
//! sink is `support::Discard` (keeps nothing): the counts include building every audit event,
//! not storing it. `cargo bench --bench memory`; see BENCHMARKS.md.

#[path = "support/round_trip.rs"]
mod round_trip;
mod support;

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use count_alloc::{Delta, Snapshot, snapshot};
use recording_status::audit::{AuditEvent, AuditKind, AuditSink};
use recording_status::driver::{Driver, DriverConfig, DriverEvents, Started};
use recording_status::error::AuditError;
use recording_status::request::UpdateRequest;
use recording_status::response::{Outcome, interpret_response};
use recording_status::transport::HttpRequest;
use recording_status::{
    AccessToken, Begin, CallId, CallState, Calls, Endpoint, Graph, Recording, RecordingStatus,
    RetentionHandle, Transport,
};
use round_trip::{COMPLETED, Plain, SansIo, Typed, completed};
use support::Discard;

#[global_allocator]
static ALLOC: count_alloc::Counting = count_alloc::Counting;

/// Calls (or round trips) counted per path in the per-call tables, after a warm-up.
const PER_CALL_RUNS: u64 = 2_000;

fn call_id(n: usize) -> CallId {
    format!("57dab8b1-894c-409a-b240-{n:012x}").parse().unwrap()
}

/// A driver whose Graph answers every request `completed`, in process, auditing to `audit`.
fn driver_with(audit: Arc<dyn AuditSink>) -> (Driver<impl Transport + 'static>, DriverEvents) {
    let transport = |_: HttpRequest| async {
        http::Response::builder()
            .status(200)
            .body(COMPLETED.to_vec())
    };
    Driver::new(
        Graph::new(transport, AccessToken::new("token")),
        audit,
        DriverConfig::default(),
    )
}

fn driver() -> (Driver<impl Transport + 'static>, DriverEvents) {
    driver_with(Arc::new(Discard))
}

/// Sums, step by step, what a sequence of steps allocates.
struct Steps {
    names: Vec<&'static str>,
    sums: Vec<Delta>,
    last: Snapshot,
    at: usize,
}

impl Steps {
    fn new(names: &[&'static str]) -> Self {
        Self {
            names: names.to_vec(),
            sums: vec![Delta::default(); names.len()],
            last: snapshot(),
            at: 0,
        }
    }

    /// Forgets the warm-up.
    fn reset(&mut self) {
        self.sums.fill(Delta::default());
    }

    /// Starts a run of the steps.
    fn start(&mut self) {
        self.at = 0;
        self.last = snapshot();
    }

    /// The next step has just ended.
    fn mark(&mut self) {
        let d = snapshot().since(&self.last);
        let s = &mut self.sums[self.at];
        s.allocs += d.allocs;
        s.reallocs += d.reallocs;
        s.frees += d.frees;
        s.allocated += d.allocated;
        s.live += d.live;
        self.at += 1;
        self.last = snapshot();
    }

    fn print(&self, path: &str, runs: u64) {
        let per = |x: u64| x as f64 / runs as f64;
        let (mut allocs, mut reallocs, mut bytes, mut live) = (0, 0, 0, 0);
        for (name, s) in self.names.iter().zip(&self.sums) {
            println!(
                "| {path} | {name} | {:.2} | {:.2} | {:.1} | {:+.1} |",
                per(s.allocs),
                per(s.reallocs),
                per(s.allocated),
                s.live as f64 / runs as f64
            );
            allocs += s.allocs;
            reallocs += s.reallocs;
            bytes += s.allocated;
            live += s.live;
        }
        println!(
            "| {path} | **total** | **{:.2}** | {:.2} | **{:.1}** | {:+.1} |",
            per(allocs),
            per(reallocs),
            per(bytes),
            live as f64 / runs as f64
        );
    }
}

/// Runs `f` `runs` times after `runs / 10` unmeasured ones; the allocations of the `runs`.
fn per_run(runs: u64, mut f: impl FnMut() -> bool) -> Delta {
    for _ in 0..runs / 10 {
        assert!(f());
    }
    let before = snapshot();
    for _ in 0..runs {
        assert!(f());
    }
    snapshot().since(&before)
}

fn print_run(path: &str, d: &Delta, runs: u64) {
    let per = |x: u64| x as f64 / runs as f64;
    println!(
        "| {path} | {:.2} | {:.2} | {:.1} | {:+.1} |",
        per(d.allocs),
        per(d.reallocs),
        per(d.allocated),
        d.live as f64 / runs as f64
    );
}

/// The process's resident set, in bytes (Linux; `None` elsewhere).
fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

/// What the hub counts for held updates against what they take: 100,000 `completed`
/// notifications for calls nobody waits for.
fn held_updates(rt: &tokio::runtime::Runtime) {
    const UPDATES: usize = 100_000;
    let proof = recording_status::auth::Authenticated::danger_authenticated_elsewhere("bench");
    let body = |n: usize| {
        let call = format!("57DAB8B1894C409AB240{n:012X}");
        let operation = format!("0fe0623f-d628-42ed-b4bd-{n:012x}");
        format!(
            r##"{{"@odata.type":"#microsoft.graph.commsNotifications","value":[{{"@odata.type":"#microsoft.graph.commsNotification","changeType":"deleted","resourceUrl":"/communications/calls/{call}/operations/{operation}","resourceData":{{"@odata.type":"#microsoft.graph.updateRecordingStatusOperation","@odata.id":"/communications/calls/{call}/operations/{operation}","@odata.etag":"W/\"54451\"","id":"{operation}","clientContext":"d45324c1-fcb5-430a-902c-{n:012x}","status":"completed","resultInfo":{{"@odata.type":"#microsoft.graph.resultInfo","code":200,"subcode":0,"message":"Action completed successfully."}}}}}}]}}"##
        )
        .into_bytes()
    };
    rt.block_on(async {
        let transport = |_: HttpRequest| async {
            http::Response::builder()
                .status(200)
                .body(COMPLETED.to_vec())
        };
        let (driver, _events) = Driver::new(
            Graph::new(transport, AccessToken::new("token")),
            Arc::new(Discard),
            DriverConfig::default()
                .with_memory(Duration::from_secs(3600))
                .with_memory_bytes(4 << 30),
        );
        let hub = driver.hub().clone();
        let bodies: Vec<Vec<u8>> = (0..UPDATES).map(body).collect();
        let (live_before, resident_before) = (snapshot(), resident_bytes());
        for b in &bodies {
            black_box(hub.deliver(&proof, b).unwrap());
        }
        let live = snapshot().since(&live_before).live as f64 / UPDATES as f64;
        let resident = resident_bytes()
            .zip(resident_before)
            .map(|(after, before)| (after.saturating_sub(before)) as f64 / UPDATES as f64);
        let counted = hub.remembered_bytes() as f64 / UPDATES as f64;
        println!("\nHeld updates: {UPDATES} `completed` notifications for calls nobody waits for");
        println!("| counted by the hub (B/update) | live, allocator (B/update) | resident growth (B/update) | counted / resident |");
        println!("|---:|---:|---:|---:|");
        match resident {
            Some(resident) => println!(
                "| {counted:.0} | {live:.0} | {resident:.0} | {:.2} |",
                counted / resident
            ),
            None => println!("| {counted:.0} | {live:.0} | n/a | n/a |"),
        }
        drop(bodies);
        drop(driver);
    });
}

/// N calls held in `Recording`, each with a `RetentionHandle`; then stopped and ended.
fn held_per_call(rt: &tokio::runtime::Runtime) {
    println!(
        "\nHeld per call (driver, N calls in Recording, one RetentionHandle each); the \
         (Call<Recording>, RetentionHandle) pair itself is {} bytes inline, in a Vec \
         allocated before the baseline and not counted",
        std::mem::size_of::<(recording_status::Call<Recording>, RetentionHandle)>()
    );
    println!(
        "| N | live before | held per call (B) | peak above before, per call (B) | left after \
         stop + end, driver alive (B, per call) | hub remembered_bytes | left after dropping \
         the driver (B) |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    let mut next = 0usize;
    for n in [100usize, 1_000, 10_000] {
        let mut held = Vec::with_capacity(n);
        let ids: Vec<CallId> = (0..n + 16).map(|i| call_id(next + i)).collect();
        next += n + 16;
        let outside = snapshot();
        let (driver, events) = driver();
        let (before, during, after, remembered) = rt.block_on(async {
            // Warm-up: 16 calls through every step, so lazily built state exists.
            for id in &ids[n..] {
                let Started::Recording(call) = driver
                    .begin_recording(driver.call(id.clone()).unwrap())
                    .await
                    .unwrap()
                else {
                    unreachable!("answered completed")
                };
                let call = driver.stop_recording(call).await.unwrap();
                drop(driver.end(call));
            }
            let before = snapshot();
            count_alloc::reset_peak();
            for id in &ids[..n] {
                let Started::Recording(call) = driver
                    .begin_recording(driver.call(id.clone()).unwrap())
                    .await
                    .unwrap()
                else {
                    unreachable!("answered completed")
                };
                let handle = call.retention_handle().unwrap();
                held.push((call, handle));
            }
            let during = snapshot();
            for (call, handle) in held.drain(..) {
                drop(handle);
                let call = driver.stop_recording(call).await.unwrap();
                drop(driver.end(call));
            }
            let after = snapshot();
            (before, during, after, driver.hub().remembered_bytes())
        });
        drop((driver, events));
        let dropped = snapshot();
        let per = |x: i64| x as f64 / n as f64;
        println!(
            "| {n} | {} | {:.1} | {:.1} | {:+} ({:+.1}) | {remembered} | {:+} |",
            before.live,
            per(during.since(&before).live),
            per(during.since(&before).peak_above),
            after.since(&before).live,
            per(after.since(&before).live),
            dropped.since(&outside).live,
        );
        drop(held);
    }
}

/// Slots of [`Attribute`]: audit events per call, plus what follows the last one.
const SLOTS: usize = 16;

/// An audit sink that keeps nothing, like `Discard`, but attributes allocations to the audit
/// events of a call: slot `k` sums what was allocated since event `k - 1` (or since
/// [`Attribute::start`]) up to and including the building of event `k`. Allocation-free
/// itself (a `Mutex` and fixed arrays).
#[derive(Debug)]
struct Attribute {
    state: std::sync::Mutex<Attributed>,
}

#[derive(Debug)]
struct Attributed {
    last: Snapshot,
    at: usize,
    names: [&'static str; SLOTS],
    sums: [(u64, u64); SLOTS],
}

impl Attribute {
    fn new() -> Self {
        Self {
            state: std::sync::Mutex::new(Attributed {
                last: snapshot(),
                at: 0,
                names: [""; SLOTS],
                sums: [(0, 0); SLOTS],
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Attributed> {
        self.state.lock().unwrap()
    }

    fn start(&self) {
        let mut s = self.lock();
        s.at = 0;
        s.last = snapshot();
    }

    /// Closes a call: what followed its last event goes to the next slot.
    fn finish(&self) {
        self.slot("(after the last event)");
    }

    fn slot(&self, name: &'static str) {
        let now = snapshot();
        let mut s = self.lock();
        let d = now.since(&s.last);
        let at = s.at.min(SLOTS - 1);
        s.names[at] = name;
        s.sums[at].0 += d.allocs;
        s.sums[at].1 += d.allocated;
        s.at += 1;
        s.last = snapshot();
    }

    fn reset(&self) {
        self.lock().sums = [(0, 0); SLOTS];
    }

    fn print(&self, runs: u64) {
        let s = self.lock();
        for k in 0..s.at.min(SLOTS) {
            println!(
                "| {} | {} | {:.2} | {:.1} |",
                k + 1,
                s.names[k],
                s.sums[k].0 as f64 / runs as f64,
                s.sums[k].1 as f64 / runs as f64
            );
        }
    }
}

fn kind_name(kind: &AuditKind) -> &'static str {
    match kind {
        AuditKind::RequestSent { .. } => "request_sent",
        AuditKind::ResponseReceived { .. } => "response_received",
        AuditKind::OperationUpdate { .. } => "operation_update",
        AuditKind::Transition { to, .. } => match to {
            CallState::PendingRecording => "transition to pending_recording",
            CallState::Recording => "transition to recording",
            CallState::NotRecording => "transition to not_recording",
            CallState::Failed => "transition to failed",
            CallState::Ended => "transition to ended",
            _ => "transition",
        },
        AuditKind::RetentionStarted { .. } => "retention_started",
        AuditKind::RetentionEnded { .. } => "retention_ended",
        AuditKind::DrainStarted { .. } => "drain_started",
        AuditKind::RetentionRevoked { .. } => "retention_revoked",
        _ => "other",
    }
}

impl AuditSink for Attribute {
    fn record(&self, event: &AuditEvent) -> Result<(), AuditError> {
        self.slot(kind_name(&event.kind));
        Ok(())
    }
}

/// Allocations per call on the driver path, attributed to the call's audit events.
fn driver_by_event(rt: &tokio::runtime::Runtime) {
    let sink = Arc::new(Attribute::new());
    let (driver, _events) = driver_with(sink.clone());
    let runs = PER_CALL_RUNS;
    let ids: Vec<CallId> = (0..(runs + runs / 10) as usize)
        .map(|i| call_id(2_000_000 + i))
        .collect();
    rt.block_on(async {
        for (i, id) in ids.iter().enumerate() {
            if i == (runs / 10) as usize {
                sink.reset();
            }
            sink.start();
            let Started::Recording(call) = driver
                .begin_recording(driver.call(id.clone()).unwrap())
                .await
                .unwrap()
            else {
                unreachable!("answered completed")
            };
            drop(call.retention_handle().unwrap());
            let call = driver.stop_recording(call).await.unwrap();
            drop(driver.end(call));
            sink.finish();
        }
    });
    println!(
        "\nDriver path (open, begin, retention_handle, stop, end), allocations attributed to \
         the audit events, {runs} calls: slot k is what was allocated after event k-1 up to \
         and including building event k"
    );
    println!("| # | up to event | allocs | bytes allocated |");
    println!("|---:|---|---:|---:|");
    sink.print(runs);
}

/// Allocations per begin + stop + end on the driver path, step by step.
fn driver_per_call(rt: &tokio::runtime::Runtime) {
    let (driver, _events) = driver();
    let runs = PER_CALL_RUNS;
    let ids: Vec<CallId> = (0..(runs + runs / 10) as usize)
        .map(|i| call_id(1_000_000 + i))
        .collect();
    let mut steps = Steps::new(&[
        "driver.call (open)",
        "begin_recording (answered completed)",
        "retention_handle",
        "drop handle",
        "stop_recording",
        "driver.end + drop Ended",
    ]);
    rt.block_on(async {
        for (i, id) in ids.iter().enumerate() {
            if i == (runs / 10) as usize {
                steps.reset();
            }
            steps.start();
            let call = driver.call(id.clone()).unwrap();
            steps.mark();
            let started = driver.begin_recording(call).await.unwrap();
            steps.mark();
            let Started::Recording(call) = started else {
                unreachable!("answered completed")
            };
            let handle = call.retention_handle().unwrap();
            steps.mark();
            drop(handle);
            steps.mark();
            let call = driver.stop_recording(call).await.unwrap();
            steps.mark();
            drop(driver.end(call));
            steps.mark();
        }
    });
    steps.print("driver", runs);
}

/// The typed round trip of `support/round_trip.rs`, step by step.
fn typed_steps() {
    let graph = Graph::new(completed, AccessToken::new("token"));
    let calls = Calls::new(Arc::new(Discard));
    let id: CallId = round_trip::CALL.parse().unwrap();
    let runs = PER_CALL_RUNS;
    let mut steps = Steps::new(&[
        "Calls::open",
        "begin_recording_blocking",
        "retention + drop",
        "stop_recording_blocking",
        "drop Call<NotRecording>",
    ]);
    for i in 0..runs + runs / 10 {
        if i == runs / 10 {
            steps.reset();
        }
        steps.start();
        let call = calls.open(id.clone()).unwrap();
        steps.mark();
        let Ok(Begin::Recording(call)) = call.begin_recording_blocking(&graph) else {
            unreachable!("answered completed")
        };
        steps.mark();
        drop(black_box(call.retention().unwrap()));
        steps.mark();
        let call = call
            .stop_recording_blocking(&graph, Duration::ZERO)
            .unwrap();
        steps.mark();
        drop(call);
        steps.mark();
    }
    steps.print("typed", runs);
}

/// The sans-IO round trip of `support/round_trip.rs`, step by step (both requests summed).
fn sans_io_steps() {
    let endpoint = Endpoint::default();
    let token = AccessToken::new("token");
    let id: CallId = round_trip::CALL.parse().unwrap();
    let runs = PER_CALL_RUNS;
    let mut steps = Steps::new(&[
        "UpdateRequest::new",
        "to_http",
        "transport (answer)",
        "interpret_response",
        "drop request, response, outcome",
    ]);
    for i in 0..runs + runs / 10 {
        if i == runs / 10 {
            steps.reset();
        }
        for status in [RecordingStatus::Recording, RecordingStatus::NotRecording] {
            steps.start();
            let update = UpdateRequest::new(status);
            steps.mark();
            let request = update.to_http(&endpoint, &id, &token).unwrap();
            steps.mark();
            let response = completed(black_box(request)).unwrap();
            steps.mark();
            let outcome = interpret_response(&response);
            steps.mark();
            assert!(matches!(outcome, Outcome::Completed { .. }));
            drop((update, response, outcome));
            steps.mark();
        }
    }
    steps.print("sans-IO", runs);
}

fn main() {
    // `cargo bench` passes `--bench`; this target takes no other arguments.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    // The runtime's lazily built state first, outside every measurement.
    rt.block_on(async { tokio::time::sleep(Duration::from_millis(1)).await });

    held_per_call(&rt);
    held_updates(&rt);

    println!("\nAllocated per round trip (two requests), whole paths, {PER_CALL_RUNS} runs each");
    println!("| path | allocs | reallocs | bytes allocated | live change (B) |");
    println!("|---|---:|---:|---:|---:|");
    let typed = Typed::new(Arc::new(Discard));
    let d = per_run(PER_CALL_RUNS, || typed.round_trip());
    print_run("typed", &d, PER_CALL_RUNS);
    let sans_io = SansIo::new();
    let d = per_run(PER_CALL_RUNS, || sans_io.round_trip());
    print_run("sans-IO", &d, PER_CALL_RUNS);
    let plain = Plain::new();
    let d = per_run(PER_CALL_RUNS, || plain.round_trip());
    print_run("plain serde_json + http", &d, PER_CALL_RUNS);

    println!("\nAllocated per call, step by step, {PER_CALL_RUNS} runs each");
    println!("| path | step | allocs | reallocs | bytes allocated | live change (B) |");
    println!("|---|---|---:|---:|---:|---:|");
    driver_per_call(&rt);
    typed_steps();
    sans_io_steps();
    driver_by_event(&rt);
}
