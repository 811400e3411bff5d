//! What routing one notification costs as the number of pending calls grows (G10).
//!
//! - `hub/route_one/{100,1000,10000}`: `Hub::deliver` of one `running` update for one of N
//!   calls waiting on a `recording` request (the update is routed to that call's waiter and the
//!   call keeps waiting, so every iteration does the same work).
//! - `hub/interleaved`: the same three hubs in one run, alternating blocks of [`BLOCK`]
//!   deliveries, each size timed on its own; prints ns per delivery and the ratios to N = 100.
//! - `hub/one_mebibyte`: one 1 MiB body of duplicate completions against a hub remembering
//!   10,000 settled requests: the worst case of one delivery holding the hub's lock.
//!
//! `cargo bench --bench hub`; see BENCHMARKS.md.

mod support;

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use recording_status::auth::Authenticated;
use recording_status::driver::{Driver, DriverConfig, Hub};
use recording_status::{AccessToken, CallId, Graph};
use support::Discard;

/// Deliveries per block in the interleaved measurement.
const BLOCK: u64 = 64;

/// Call `n` of the calls of hub `family`: the hubs of one process each wait on calls of their
/// own (a process has one live value per Graph call).
fn call(family: u32, n: usize) -> CallId {
    format!("{family:08x}-894c-409a-b240-{n:012x}")
        .parse()
        .unwrap()
}

fn operation(n: usize) -> String {
    format!("0FE0623FD62842EDB4BD{n:012X}")
}

fn update(family: u32, n: usize, status: &str) -> String {
    format!(
        r##"{{"changeType":"updated","resourceUrl":"/communications/calls/{}/operations/{}","resourceData":{{"@odata.type":"#microsoft.graph.updateRecordingStatusOperation","status":"{status}"}}}}"##,
        call(family, n).normalized().to_ascii_uppercase(),
        operation(n)
    )
}

fn body(entries: &[String]) -> Vec<u8> {
    format!(r#"{{"value":[{}]}}"#, entries.join(",")).into_bytes()
}

/// A driver whose Graph answers `recording` with `running` (the call's own operation id) and
/// anything else with `completed`.
fn driver() -> Driver<impl recording_status::Transport> {
    let transport = |req: http::Request<Vec<u8>>| {
        let body: serde_json::Value = serde_json::from_slice(req.body()).unwrap();
        let n = req
            .uri()
            .path()
            .split("/calls/")
            .nth(1)
            .and_then(|r| r.split('/').next())
            .and_then(|id| usize::from_str_radix(&id[24..], 16).ok())
            .unwrap_or(0);
        let status = if body["status"] == "recording" {
            "running"
        } else {
            "completed"
        };
        let answer = format!(
            r##"{{"@odata.type":"#microsoft.graph.updateRecordingStatusOperation","id":"{}","status":"{status}","clientContext":{}}}"##,
            operation(n),
            body["clientContext"]
        );
        async move {
            Ok::<_, std::io::Error>(
                http::Response::builder()
                    .status(200)
                    .body(answer.into_bytes())
                    .unwrap(),
            )
        }
    };
    let config = DriverConfig::default()
        .with_pending_deadline(Duration::from_secs(3_600))
        .with_memory(Duration::from_secs(3_600));
    Driver::new(
        Graph::new(transport, AccessToken::new("t")),
        Arc::new(Discard),
        config,
    )
    .0
}

/// A hub with `n` calls of `family` waiting for their `recording` operation, on `runtime`.
fn waiting_hub(runtime: &tokio::runtime::Runtime, family: u32, n: usize) -> Hub {
    let driver = driver();
    runtime.block_on(async {
        for i in 0..n {
            let d = driver.clone();
            tokio::spawn(async move {
                let _ = d.begin_recording(d.call(call(family, i)).unwrap()).await;
            });
        }
        while driver.hub().waiting() < n {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    });
    driver.hub().clone()
}

fn proof() -> Authenticated {
    Authenticated::danger_authenticated_elsewhere("bench")
}

fn route_one(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let sizes = [100usize, 1_000, 10_000];
    let hubs: Vec<(usize, Hub, Vec<Vec<u8>>)> = (0u32..)
        .zip(sizes)
        .map(|(family, n)| {
            let hub = waiting_hub(&runtime, family, n);
            // 64 different calls spread over the N waiting.
            let bodies = (0..64)
                .map(|k| body(&[update(family, k * n / 64, "running")]))
                .collect();
            (n, hub, bodies)
        })
        .collect();
    let proof = proof();
    let mut g = c.benchmark_group("hub/route_one");
    for (n, hub, bodies) in &hubs {
        g.bench_with_input(BenchmarkId::from_parameter(n), n, |b, _| {
            let mut k = 0;
            b.iter(|| {
                k = (k + 1) % bodies.len();
                let d = hub.deliver(&proof, &bodies[k]).unwrap();
                debug_assert_eq!(d.routed, 1);
                black_box(d)
            });
        });
    }
    g.finish();

    // Side by side: blocks of BLOCK deliveries, rotating which size goes first.
    let mut totals = vec![Duration::ZERO; hubs.len()];
    let mut count = 0u64;
    let mut g = c.benchmark_group("hub/interleaved");
    g.bench_function("all_sizes", |b| {
        b.iter_custom(|iters| {
            let blocks = iters.div_ceil(BLOCK);
            let mut mine = Duration::ZERO;
            for block in 0..blocks {
                for turn in 0..hubs.len() {
                    let i = (turn + block as usize) % hubs.len();
                    let (_, hub, bodies) = &hubs[i];
                    let start = Instant::now();
                    for k in 0..BLOCK as usize {
                        black_box(hub.deliver(&proof, &bodies[k % bodies.len()]).unwrap());
                    }
                    let spent = start.elapsed();
                    totals[i] += spent;
                    if i == 0 {
                        mine += spent;
                    }
                }
                count += BLOCK;
            }
            mine
        });
    });
    g.finish();
    let per = |i: usize| totals[i].as_nanos() as f64 / count as f64;
    for (i, (n, _, _)) in hubs.iter().enumerate() {
        println!(
            "hub/interleaved: {n:>6} waiting: {:8.0} ns per delivery, {:.2}x the cost at 100",
            per(i),
            per(i) / per(0)
        );
    }
}

fn one_mebibyte(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    // 10,000 requests that settled through notifications.
    let hub = waiting_hub(&runtime, 7, 10_000);
    let proof = proof();
    for chunk in (0..10_000).collect::<Vec<_>>().chunks(1_000) {
        let entries: Vec<String> = chunk.iter().map(|&n| update(7, n, "completed")).collect();
        hub.deliver(&proof, &body(&entries)).unwrap();
    }
    runtime.block_on(async {
        while hub.waiting() > 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    });
    // As many duplicates as fit in 1 MiB.
    let mut entries = Vec::new();
    let mut len = 20;
    let mut n = 0;
    loop {
        let e = update(7, n % 10_000, "completed");
        if len + e.len() + 1 > 1 << 20 {
            break;
        }
        len += e.len() + 1;
        entries.push(e);
        n += 1;
    }
    let big = body(&entries);
    println!(
        "hub/one_mebibyte: {} bytes, {} duplicate updates",
        big.len(),
        entries.len()
    );
    let mut g = c.benchmark_group("hub/one_mebibyte");
    g.sample_size(10);
    g.bench_function("duplicates_against_10000_settled", |b| {
        b.iter(|| black_box(hub.deliver(&proof, &big).unwrap()));
    });
    g.finish();
}

criterion_group!(benches, route_one, one_mebibyte);
criterion_main!(benches);
