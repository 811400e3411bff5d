//! What the audit trail costs: [`MemorySink`] against [`JsonLinesSink`] at both
//! [`Durability`] levels.
//!
//! - `trail/{sequential,in_flight_64}/{memory,flushed,synced,synced_off_workers,synced_deferred}`: whole calls (`begin` then
//!   `stop`: eight audit events in five writes, the stop signal written with the request it
//!   leads to and each answer with the transition it leads to) through the async [`Driver`] and the reqwest transport against the Graph
//!   emulator on loopback, one call after another or 64 calls in flight.
//!   `synced_off_workers` is the synced file with every step of the driver waiting for its sync
//!   off tokio's worker threads (`block_in_place`), as at 01645f7, paired with
//!   `synced_deferred` (the same as `synced`: a request's `request_sent` awaited, no thread
//!   parked), not with memory.
//! - `record/{1_thread,8_threads}/{memory,flushed,synced}`: `record` alone, from one thread or
//!   from eight at once (where group commit shares writes and syncs).
//! - `versus_reqwest/{sequential,in_flight_64}/{plain_reqwest,crate}`: the whole crate (driver,
//!   `ReqwestTransport`, an audit sink that keeps nothing) doing `begin` + `stop` against plain
//!   reqwest sending the same two POSTs (same body shape and headers, body read) to the same
//!   emulator through the same connection pool: what the crate costs on top of the HTTP.
//! - `with_media/{sequential,in_flight_64}/{driver,typed}/…`: what every recording call does
//!   (`begin`, one [`RetentionHandle`](recording_status::RetentionHandle) minted and dropped,
//!   `stop`), through the driver or through the typed layer without it (`Calls`, `Call`'s
//!   async transitions on the same `Graph`): `…/versus_reqwest` against plain reqwest with no
//!   trail (a sink that keeps nothing), `…/trail` the memory sink against the flushed file.
//!
//! Each JSON-lines durability is measured in a pair with the memory sink: one measurement
//! runs both, in blocks that alternate between them (and alternate which goes first), each
//! side timed on its own, so that what the machine does meanwhile falls on both alike.
//! `memory` and `flushed` report their own sides of the same runs; `synced` reports its side
//! of runs paired with memory sinks of their own (the slow syncs would otherwise leave the
//! machine idle before the memory blocks, and make them look slow). Every run opens fresh
//! sinks, a fresh file for each trail; the calls share one connection pool.
//!
//! After each pair the bench prints, over every block it ran (warm-up included), both sides'
//! time per call (or per event) and the JSON-lines side's throughput relative to memory.
//!
//! Files go under `target/tmp` (the disk the project is on), not a RAM-backed `/tmp`, so that
//! `synced` pays a real `fdatasync`.

mod support;

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{BenchmarkGroup, Criterion, criterion_group, criterion_main};
use graph_emulator::Emulator;
use recording_status::Endpoint;
use recording_status::audit::{
    AuditEvent, AuditKind, AuditSink, Durability, JsonLinesSink, MemorySink,
};
use recording_status::driver::{Driver, DriverConfig, Started};
use recording_status::transports::reqwest_0_13::ReqwestTransport;
use recording_status::{AccessToken, Begin, Calls, Graph, RecordingStatus};
use tokio::runtime::Runtime;

type Group<'a> = BenchmarkGroup<'a, criterion::measurement::WallTime>;

fn name(durability: Durability) -> &'static str {
    match durability {
        Durability::Flushed => "flushed",
        _ => "synced",
    }
}

/// A fresh memory sink and a fresh JSON-lines sink (and its file) for one measurement run.
fn sinks(durability: Durability, dir: &Path, run: u64) -> ([Arc<dyn AuditSink>; 2], PathBuf) {
    let path = dir.join(format!("{}-{run}.jsonl", name(durability)));
    let file = JsonLinesSink::options()
        .durability(durability)
        .open(&path)
        .unwrap();
    (
        [
            Arc::new(MemorySink::default()),
            Arc::new(Counted::new(file)),
        ],
        path,
    )
}

/// A JSON-lines sink whose writes, events and syncs [`Pair`] adds up when it is dropped;
/// `deferred: false` hides that it [`defers`](AuditSink::defers), so that the driver waits for
/// every step's sync off the worker threads, as at 01645f7 (and its counts are left out).
#[derive(Debug)]
struct Counted {
    sink: JsonLinesSink,
    deferred: bool,
}

impl Counted {
    fn new(sink: JsonLinesSink) -> Self {
        Self {
            sink,
            deferred: true,
        }
    }
}

static WRITES: AtomicU64 = AtomicU64::new(0);
static EVENTS: AtomicU64 = AtomicU64::new(0);
static SYNCS: AtomicU64 = AtomicU64::new(0);
static LINES: AtomicU64 = AtomicU64::new(0);

impl Drop for Counted {
    fn drop(&mut self) {
        if self.deferred {
            let (writes, events) = self.sink.counts();
            WRITES.fetch_add(writes, Ordering::Relaxed);
            EVENTS.fetch_add(events, Ordering::Relaxed);
            if let Some((syncs, lines)) = self.sink.syncs() {
                SYNCS.fetch_add(syncs, Ordering::Relaxed);
                LINES.fetch_add(lines, Ordering::Relaxed);
            }
        }
    }
}

impl AuditSink for Counted {
    fn record(&self, event: &AuditEvent) -> Result<(), recording_status::error::AuditError> {
        self.sink.record(event)
    }

    fn record_batch(
        &self,
        events: &[AuditEvent],
    ) -> Result<(), recording_status::error::AuditError> {
        self.sink.record_batch(events)
    }

    fn blocks(&self) -> bool {
        self.sink.blocks()
    }

    fn defers(&self) -> bool {
        self.deferred && self.sink.defers()
    }
}

/// The memory sink (side 0) and a JSON-lines sink (side 1), measured in alternating blocks,
/// each side's time summed on its own.
struct Pair {
    durability: Durability,
    /// The two sides' names: `memory` and the durability's, unless set otherwise.
    names: [&'static str; 2],
    /// Work units per block and side.
    block: u64,
    totals: [Duration; 2],
    units: u64,
    blocks: u64,
    runs: u64,
}

impl Pair {
    fn new(durability: Durability, block: u64) -> Self {
        Self {
            durability,
            names: ["memory", name(durability)],
            block,
            totals: [Duration::ZERO; 2],
            units: 0,
            blocks: 0,
            runs: 0,
        }
    }

    /// Runs at least `iters` units on each side in blocks, `work(side, n)` timing `n` units of
    /// one side; returns each side's time scaled to `iters` units.
    fn run(&mut self, iters: u64, mut work: impl FnMut(usize, u64) -> Duration) -> [Duration; 2] {
        let blocks = iters.div_ceil(self.block);
        let mut times = [Duration::ZERO; 2];
        for _ in 0..blocks {
            let first = usize::from(!self.blocks.is_multiple_of(2));
            for side in [first, 1 - first] {
                times[side] += work(side, self.block);
            }
            self.blocks += 1;
        }
        let done = blocks * self.block;
        for (total, time) in self.totals.iter_mut().zip(times) {
            *total += time;
        }
        self.units += done;
        self.runs += 1;
        times.map(|t| t.mul_f64(iters as f64 / done as f64))
    }

    /// Benchmarks the JSON-lines side (and the memory side too if `memory`) under their own
    /// ids, with `iter_custom` on the shared runs; then prints both sides over every run.
    fn bench(
        mut self,
        g: &mut Group<'_>,
        group: &str,
        memory: bool,
        unit: &str,
        mut work: impl FnMut(&mut Self, u64) -> [Duration; 2],
    ) {
        let [base, file] = self.names;
        // Counted afresh for this pair.
        WRITES.store(0, Ordering::Relaxed);
        EVENTS.store(0, Ordering::Relaxed);
        SYNCS.store(0, Ordering::Relaxed);
        LINES.store(0, Ordering::Relaxed);
        for (side, id) in [(0, base), (1, file)] {
            if side == 1 || memory {
                g.bench_function(id, |b| b.iter_custom(|iters| work(&mut self, iters)[side]));
            }
        }
        if self.units == 0 {
            return; // filtered out
        }
        let [m, f] = self
            .totals
            .map(|t| t.as_secs_f64() * 1e6 / self.units as f64);
        println!(
            "{}: {base} {m:.2} µs/{unit}, {file} {f:.2} µs/{unit}: {file} throughput {:.3} of \
             {base}'s (over {} {unit}s each)",
            group,
            m / f,
            self.units
        );
        let (writes, events) = (
            WRITES.load(Ordering::Relaxed),
            EVENTS.load(Ordering::Relaxed),
        );
        if writes > 0 {
            println!(
                "{group}: {file}: {events} events in {writes} writes, {:.2} events a write",
                events as f64 / writes as f64
            );
        }
        let (syncs, lines) = (SYNCS.load(Ordering::Relaxed), LINES.load(Ordering::Relaxed));
        if syncs > 0 {
            println!(
                "{group}: {file}: {lines} lines in {syncs} syncs, {:.2} lines a sync",
                lines as f64 / syncs as f64
            );
        }
    }
}

/// The emulator, a shared connection pool, and a runtime to drive them.
struct Loopback {
    rt: Runtime,
    emulator: Emulator,
    transport: ReqwestTransport,
    dir: tempfile::TempDir,
}

impl Loopback {
    fn new() -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let emulator = rt.block_on(Emulator::start()).unwrap();
        let transport = ReqwestTransport::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap();
        let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
        Self {
            rt,
            emulator,
            transport,
            dir,
        }
    }

    fn driver(&self, sink: Arc<dyn AuditSink>) -> Driver<ReqwestTransport> {
        Driver::new(self.graph(), sink, DriverConfig::default()).0
    }

    fn graph(&self) -> Graph<ReqwestTransport> {
        Graph::new(self.transport.clone(), AccessToken::new("bench"))
            .with_endpoint(Endpoint::custom(&self.emulator.base_url()).unwrap())
    }

    /// Runs `n` recording calls with media through `layer`, auditing to `sink`, `in_flight`
    /// at a time; returns how long they took.
    fn media_block(
        &self,
        layer: Layer,
        sink: Arc<dyn AuditSink>,
        n: u64,
        in_flight: u64,
    ) -> Duration {
        match layer {
            Layer::Driver => {
                let driver = self.driver(sink);
                self.run_calls(n, in_flight, move || {
                    let driver = driver.clone();
                    async move { media_call(&driver).await }
                })
            }
            Layer::Typed => {
                let (calls, graph) = (Calls::new(sink), Arc::new(self.graph()));
                self.run_calls(n, in_flight, move || {
                    let (calls, graph) = (calls.clone(), graph.clone());
                    async move { typed_media_call(&calls, &graph).await }
                })
            }
        }
    }

    /// Runs `iters` calls on each side of `pair` (in blocks), `in_flight` at a time.
    fn calls(&self, pair: &mut Pair, iters: u64, in_flight: u64) -> [Duration; 2] {
        let (made, path) = sinks(pair.durability, self.dir.path(), pair.runs);
        let drivers = made.map(|sink| self.driver(sink));
        let times = pair.run(iters, |side, n| self.block(&drivers[side], n, in_flight));
        drop(drivers);
        std::fs::remove_file(path).unwrap();
        times
    }

    /// Runs `n` calls through `driver`, `in_flight` at a time; returns how long they took.
    fn block(&self, driver: &Driver<ReqwestTransport>, n: u64, in_flight: u64) -> Duration {
        let driver = driver.clone();
        self.run_calls(n, in_flight, move || {
            let driver = driver.clone();
            async move { call(&driver).await }
        })
    }

    /// Runs `n` of `one()`, `in_flight` at a time; returns how long they took.
    fn run_calls<F, Fut>(&self, n: u64, in_flight: u64, one: F) -> Duration
    where
        F: Fn() -> Fut + Clone + Send + 'static,
        Fut: Future<Output = ()> + Send,
    {
        self.rt.block_on(async move {
            let start = Instant::now();
            if in_flight == 1 {
                for _ in 0..n {
                    one().await;
                }
            } else {
                let next = Arc::new(AtomicU64::new(0));
                let tasks: Vec<_> = (0..in_flight)
                    .map(|_| {
                        let (one, next) = (one.clone(), next.clone());
                        tokio::spawn(async move {
                            while next.fetch_add(1, Ordering::Relaxed) < n {
                                one().await;
                            }
                        })
                    })
                    .collect();
                for t in tasks {
                    t.await.unwrap();
                }
            }
            start.elapsed()
        })
    }

    /// The same two POSTs as one call of the crate, with plain reqwest: `recording`, then
    /// `notRecording`, each with a bearer token, JSON body and `client-request-id`; the answer's
    /// body read.
    async fn plain_call(client: reqwest::Client, base: String) {
        let call = uuid::Uuid::new_v4();
        let url = format!("{base}/communications/calls/{call}/updateRecordingStatus");
        for status in ["recording", "notRecording"] {
            let body = serde_json::json!({
                "clientContext": uuid::Uuid::new_v4().to_string(),
                "status": status,
            });
            let answer = client
                .post(&url)
                .bearer_auth("bench")
                .header("content-type", "application/json")
                .header("client-request-id", uuid::Uuid::new_v4().to_string())
                .body(serde_json::to_vec(&body).unwrap())
                .send()
                .await
                .unwrap();
            assert!(answer.status().is_success());
            black_box(answer.bytes().await.unwrap());
        }
    }
}

/// One call: `begin` (answered `completed`), then `stop`.
async fn call(driver: &Driver<ReqwestTransport>) {
    let id = uuid::Uuid::new_v4().to_string().parse().unwrap();
    let call = driver.call(id).unwrap();
    let Ok(Started::Recording(call)) = driver.begin_recording(call).await else {
        panic!("the emulator completes every request")
    };
    drop(black_box(driver.stop_recording(call).await.unwrap()));
}

/// The layer a recording call goes through.
#[derive(Debug, Clone, Copy)]
enum Layer {
    /// `driver::Driver`: retries, deadlines, the hub, the call's turn, audit batching.
    Driver,
    /// `Calls` and `Call`'s async transitions on a `Graph`, without the driver.
    Typed,
}

/// What every recording call does, through the driver: `begin` (answered `completed`), one
/// retention capability minted and dropped, `stop`.
async fn media_call(driver: &Driver<ReqwestTransport>) {
    let id = uuid::Uuid::new_v4().to_string().parse().unwrap();
    let call = driver.call(id).unwrap();
    let Ok(Started::Recording(call)) = driver.begin_recording(call).await else {
        panic!("the emulator completes every request")
    };
    drop(black_box(call.retention_handle().unwrap()));
    drop(black_box(driver.stop_recording(call).await.unwrap()));
}

/// [`media_call`] through the typed layer, without the driver.
async fn typed_media_call(calls: &Calls, graph: &Graph<ReqwestTransport>) {
    let id = uuid::Uuid::new_v4().to_string().parse().unwrap();
    let call = calls.open(id).unwrap();
    let Ok(Begin::Recording(call)) = call.begin_recording(graph).await else {
        panic!("the emulator completes every request")
    };
    drop(black_box(call.retention_handle().unwrap()));
    // Nothing is alive to drain: the deadline is never reached.
    let stopped = call.stop_recording(graph, std::future::pending()).await;
    drop(black_box(stopped.unwrap()));
}

fn with_media(c: &mut Criterion) {
    // (group, calls in flight, calls per block)
    for (group, in_flight, block) in [("sequential", 1, 16), ("in_flight_64", 64, 256)] {
        for (layer, layer_name) in [(Layer::Driver, "driver"), (Layer::Typed, "typed")] {
            // A fresh emulator for each group: its per-call maps and request log fill up as it
            // answers, and a slower server would hide more of the crate's own cost.
            let loopback = Loopback::new();
            let client = loopback.transport.client().clone();
            let base = loopback.emulator.base_url();
            let label = format!("with_media/{group}/{layer_name}");
            let mut g = c.benchmark_group(&label);
            g.sample_size(10)
                .warm_up_time(Duration::from_secs(1))
                .measurement_time(Duration::from_secs(5));
            // Against plain reqwest, with no trail.
            let mut pair = Pair::new(Durability::Flushed, block);
            pair.names = ["plain_reqwest", "no_trail"];
            pair.bench(
                &mut g,
                &format!("{label}/versus_reqwest"),
                true,
                "call",
                |pair, iters| {
                    pair.run(iters, |side, n| {
                        if side == 0 {
                            let (client, base) = (client.clone(), base.clone());
                            loopback.run_calls(n, in_flight, move || {
                                Loopback::plain_call(client.clone(), base.clone())
                            })
                        } else {
                            loopback.media_block(layer, Arc::new(support::Discard), n, in_flight)
                        }
                    })
                },
            );
            // The memory sink against the flushed file.
            Pair::new(Durability::Flushed, block).bench(
                &mut g,
                &format!("{label}/trail"),
                true,
                "call",
                |pair, iters| {
                    let (made, path) = sinks(Durability::Flushed, loopback.dir.path(), pair.runs);
                    let times = pair.run(iters, |side, n| {
                        loopback.media_block(layer, made[side].clone(), n, in_flight)
                    });
                    drop(made);
                    std::fs::remove_file(path).unwrap();
                    times
                },
            );
            g.finish();
            loopback.rt.block_on(loopback.emulator.shutdown());
        }
    }
}

fn trail(c: &mut Criterion) {
    let loopback = Loopback::new();
    // (group, calls in flight, calls per block: flushed pair, synced pair)
    // Calls per block of the synced pairs at 64 in flight: 256 (the default) measures steady
    // throughput; 64, as at 01645f7, ends every block with a barrier where the slowest calls
    // finish alone (set `AUDIT_SYNCED_BLOCK=64` to compare with figures measured that way).
    let synced_block = std::env::var("AUDIT_SYNCED_BLOCK")
        .ok()
        .and_then(|b| b.parse().ok())
        .unwrap_or(256);
    for (group, in_flight, blocks) in [
        ("sequential", 1, (8, 2)),
        ("in_flight_64", 64, (256, synced_block)),
    ] {
        let label = format!("trail/{group}");
        let mut g = c.benchmark_group(&label);
        g.sample_size(10)
            .warm_up_time(Duration::from_secs(1))
            .measurement_time(Duration::from_secs(5));
        for (durability, block, memory) in [
            (Durability::Flushed, blocks.0, true),
            (Durability::Synced, blocks.1, false),
        ] {
            Pair::new(durability, block).bench(&mut g, &label, memory, "call", |pair, iters| {
                loopback.calls(pair, iters, in_flight)
            });
        }
        // The synced file with every step of the driver waiting for its sync off the workers
        // (as at 01645f7), against a request's `request_sent` awaited (no thread parked).
        let mut pair = Pair::new(Durability::Synced, blocks.1);
        pair.names = ["synced_off_workers", "synced_deferred"];
        pair.bench(&mut g, &label, true, "call", |pair, iters| {
            let paths = [0, 1].map(|side| {
                loopback
                    .dir
                    .path()
                    .join(format!("off-workers-{}-{side}.jsonl", pair.runs))
            });
            let open = |path: &PathBuf| {
                JsonLinesSink::options()
                    .durability(Durability::Synced)
                    .open(path)
                    .unwrap()
            };
            let drivers = [
                loopback.driver(Arc::new(Counted {
                    sink: open(&paths[0]),
                    deferred: false,
                })),
                loopback.driver(Arc::new(Counted::new(open(&paths[1])))),
            ];
            let times = pair.run(iters, |side, n| {
                loopback.block(&drivers[side], n, in_flight)
            });
            drop(drivers);
            for path in paths {
                std::fs::remove_file(path).unwrap();
            }
            times
        });
        g.finish();
    }
    loopback.rt.block_on(loopback.emulator.shutdown());
}

fn versus_reqwest(c: &mut Criterion) {
    let loopback = Loopback::new();
    let crate_driver = loopback.driver(Arc::new(support::Discard));
    let client = loopback.transport.client().clone();
    let base = loopback.emulator.base_url();
    // (group, calls in flight, calls per block)
    for (group, in_flight, block) in [("sequential", 1, 16), ("in_flight_64", 64, 256)] {
        let label = format!("versus_reqwest/{group}");
        let mut g = c.benchmark_group(&label);
        g.sample_size(10)
            .warm_up_time(Duration::from_secs(1))
            .measurement_time(Duration::from_secs(5));
        let mut pair = Pair::new(Durability::Flushed, block);
        pair.names = ["plain_reqwest", "crate"];
        pair.bench(&mut g, &label, true, "call", |pair, iters| {
            pair.run(iters, |side, n| {
                if side == 0 {
                    let (client, base) = (client.clone(), base.clone());
                    loopback.run_calls(n, in_flight, move || {
                        Loopback::plain_call(client.clone(), base.clone())
                    })
                } else {
                    loopback.block(&crate_driver, n, in_flight)
                }
            })
        });
        g.finish();
    }
    drop(crate_driver);
    loopback.rt.block_on(loopback.emulator.shutdown());
}

fn event() -> AuditEvent {
    AuditEvent::now(
        "57dab8b1894c409ab240bd8beae78896",
        AuditKind::RequestSent {
            status: RecordingStatus::Recording,
            client_context: "d7f6c0f3-1c4e-4c52-9c36-0b3f2a3e9a11".to_owned(),
            client_request_id: "0b9a1f8e-6d7c-4f3b-8a2e-5c1d9e7f6a40".to_owned(),
        },
    )
}

/// Records `n` events into `sink` from `threads` threads; returns how long it took.
fn records(sink: &dyn AuditSink, event: &AuditEvent, n: u64, threads: u64) -> Duration {
    let start = Instant::now();
    if threads == 1 {
        for _ in 0..n {
            sink.record(black_box(event)).unwrap();
        }
    } else {
        std::thread::scope(|s| {
            for t in 0..threads {
                let share = n / threads + u64::from(t < n % threads);
                s.spawn(move || {
                    for _ in 0..share {
                        sink.record(black_box(event)).unwrap();
                    }
                });
            }
        });
    }
    start.elapsed()
}

fn record(c: &mut Criterion) {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let event = event();
    // (group, threads, events per block: flushed pair, synced pair)
    for (group, threads, blocks) in [("1_thread", 1, (1024, 64)), ("8_threads", 8, (4096, 512))] {
        let label = format!("record/{group}");
        let mut g = c.benchmark_group(&label);
        g.sample_size(10)
            .warm_up_time(Duration::from_secs(1))
            .measurement_time(Duration::from_secs(3));
        for (durability, block, memory) in [
            (Durability::Flushed, blocks.0, true),
            (Durability::Synced, blocks.1, false),
        ] {
            Pair::new(durability, block).bench(&mut g, &label, memory, "event", |pair, iters| {
                let (made, path) = sinks(durability, dir.path(), pair.runs);
                let times = pair.run(iters, |side, n| records(&*made[side], &event, n, threads));
                drop(made);
                std::fs::remove_file(path).unwrap();
                times
            });
        }
        g.finish();
    }
}

criterion_group!(benches, trail, record, versus_reqwest, with_media);
criterion_main!(benches);
