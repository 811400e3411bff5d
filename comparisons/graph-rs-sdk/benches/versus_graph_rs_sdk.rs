//! The crate against graph-rs-sdk 3.x on loopback: the root crate's `versus_reqwest`
//! comparison (`benches/audit.rs`) with graph-rs-sdk in the place of plain reqwest.
//!
//! - `crate`: the crate's driver, `ReqwestTransport` and an audit sink that keeps nothing (the
//!   root crate's own `benches/support`, `Discard`): `begin_recording` (answered `completed`),
//!   then `stop_recording`.
//! - `graph_rs_sdk`: `client.communications().call(id).update_recording_status(&body).send()`
//!   twice, with `{"clientContext": <uuid>, "status": "recording"}` and then `notRecording`;
//!   each answer checked for success and its body read.
//!
//! Both talk to the same in-process emulator (`recording_status::emulator::Emulator`) on one
//! tokio runtime with 2 worker threads, one call at a time (`sequential`) or 64 calls in
//! flight (`in_flight_64`). Blocks of calls (16 sequentially, 256 with 64 in flight) alternate
//! between the two sides, and which side goes first alternates too; each side's time is summed
//! on its own. After each mode the bench prints both sides' time per call over every block it
//! ran (the first second's blocks, a warm-up, left out) and the crate's throughput relative to
//! graph-rs-sdk's.
//!
//! ```sh
//! cargo bench -- [sequential|in_flight_64] [--seconds S]   # S seconds a mode, 12 unless set
//! ```

#[path = "../../../benches/support/mod.rs"]
mod support;

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use graph_rs_sdk::http::Url;
use graph_rs_sdk::{GraphClient, GraphClientConfiguration};
use recording_status::driver::{Driver, DriverConfig, Started};
use recording_status::emulator::Emulator;
use recording_status::transports::reqwest_0_13::ReqwestTransport;
use recording_status::{AccessToken, Graph};
use tokio::runtime::Runtime;

const TOKEN: &str = "bench";
const TIMEOUT: Duration = Duration::from_secs(10);
const WARM_UP: Duration = Duration::from_secs(1);

/// The emulator, both clients, and the runtime that drives them.
struct Loopback {
    rt: Runtime,
    emulator: Emulator,
    driver: Driver<ReqwestTransport>,
    sdk: Arc<GraphClient>,
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
            .timeout(TIMEOUT)
            .build()
            .unwrap();
        let graph =
            Graph::new(transport, AccessToken::new(TOKEN)).with_endpoint(emulator.endpoint());
        let driver = Driver::new(graph, Arc::new(support::Discard), DriverConfig::default()).0;

        // graph-rs-sdk refuses plain `http` and hosts outside Graph's national clouds unless
        // its `test-util` feature is on; these two calls are what that feature adds.
        let mut sdk = GraphClient::from(
            GraphClientConfiguration::new()
                .access_token(TOKEN)
                .timeout(TIMEOUT)
                .https_only(false),
        );
        sdk.use_test_endpoint(&Url::parse(&emulator.base_url()).unwrap());

        Self {
            rt,
            emulator,
            driver,
            sdk: Arc::new(sdk),
        }
    }

    /// Runs `n` calls on `side`, `in_flight` at a time; returns how long they took.
    fn block(&self, side: Side, n: u64, in_flight: u64) -> Duration {
        match side {
            Side::GraphRsSdk => {
                let sdk = self.sdk.clone();
                self.run_calls(n, in_flight, move || sdk_call(sdk.clone()))
            }
            Side::Crate => {
                let driver = self.driver.clone();
                self.run_calls(n, in_flight, move || crate_call(driver.clone()))
            }
        }
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

    /// One call on each side, then what the emulator received from each: both must send
    /// `recording` then `notRecording` to the same path, with a bearer token, and be answered
    /// 200. Prints what differs between the two sides' requests.
    fn check(&self) {
        for side in [Side::GraphRsSdk, Side::Crate] {
            self.block(side, 1, 1);
            let requests = self.emulator.requests();
            let [first, second] = &requests[requests.len() - 2..] else {
                unreachable!()
            };
            assert_eq!(first.call_id, second.call_id);
            assert_eq!(first.path, second.path);
            assert!(
                first.path.ends_with(&format!(
                    "/v1.0/communications/calls/{}/updateRecordingStatus",
                    first.call_id
                )),
                "{}",
                first.path
            );
            for (r, status) in [(first, "recording"), (second, "notRecording")] {
                assert_eq!(r.method, "POST");
                assert_eq!(r.status.as_deref(), Some(status));
                assert!(r.client_context.is_some());
                assert!(r.authorized);
                assert_eq!(r.http_status, 200, "{side:?}: {r:?}");
            }
            println!(
                "check {}: POST {} recording then notRecording, clientContext set, bearer token, \
                 client-request-id {}, answered 200",
                side.name(),
                first.path,
                if first.client_request_id.is_some() {
                    "sent"
                } else {
                    "not sent"
                },
            );
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    GraphRsSdk,
    Crate,
}

impl Side {
    fn name(self) -> &'static str {
        match self {
            Self::GraphRsSdk => "graph_rs_sdk",
            Self::Crate => "crate",
        }
    }
}

/// One call through the crate: `begin` (answered `completed`), then `stop`.
async fn crate_call(driver: Driver<ReqwestTransport>) {
    let id = uuid::Uuid::new_v4().to_string().parse().unwrap();
    let call = driver.call(id).unwrap();
    let Ok(Started::Recording(call)) = driver.begin_recording(call).await else {
        panic!("the emulator completes every request")
    };
    drop(black_box(driver.stop_recording(call).await.unwrap()));
}

/// The same two POSTs through graph-rs-sdk: `recording`, then `notRecording`; each answer
/// checked for success and its body read.
async fn sdk_call(sdk: Arc<GraphClient>) {
    let call = uuid::Uuid::new_v4().to_string();
    for status in ["recording", "notRecording"] {
        let body = serde_json::json!({
            "clientContext": uuid::Uuid::new_v4().to_string(),
            "status": status,
        });
        let answer = sdk
            .communications()
            .call(&call)
            .update_recording_status(&body)
            .send()
            .await
            .unwrap();
        assert!(answer.status().is_success());
        black_box(answer.bytes().await.unwrap());
    }
}

/// Alternates blocks of `block` calls between the two sides (and which goes first) for
/// `seconds`; prints both sides' time per call over the blocks after the warm-up.
fn compare(loopback: &Loopback, mode: &str, in_flight: u64, block: u64, seconds: Duration) {
    let start = Instant::now();
    let mut totals = [Duration::ZERO; 2];
    let (mut calls, mut blocks) = (0, 0u64);
    while start.elapsed() < WARM_UP + seconds {
        let warm = start.elapsed() >= WARM_UP;
        let order = if blocks.is_multiple_of(2) {
            [Side::GraphRsSdk, Side::Crate]
        } else {
            [Side::Crate, Side::GraphRsSdk]
        };
        for side in order {
            let time = loopback.block(side, block, in_flight);
            if warm {
                totals[usize::from(side == Side::Crate)] += time;
            }
        }
        if warm {
            calls += block;
        }
        blocks += 1;
    }
    let [sdk, ours] = totals.map(|t| t.as_secs_f64() * 1e6 / calls as f64);
    println!(
        "graph_rs_sdk/{mode}: graph_rs_sdk {sdk:.2} µs/call, crate {ours:.2} µs/call: crate \
         throughput {:.3} of graph_rs_sdk's (over {calls} calls each)",
        sdk / ours
    );
}

fn main() {
    let mut seconds = Duration::from_secs(12);
    let mut only = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--seconds" => {
                let s = args.next().and_then(|s| s.parse().ok());
                seconds = Duration::from_secs_f64(s.expect("--seconds takes a number"));
            }
            "--bench" => {}
            mode if !mode.starts_with('-') => only = Some(mode.to_owned()),
            _ => {}
        }
    }
    let loopback = Loopback::new();
    loopback.check();
    // (mode, calls in flight, calls per block): as `versus_reqwest` in `benches/audit.rs`.
    for (mode, in_flight, block) in [("sequential", 1, 16), ("in_flight_64", 64, 256)] {
        if only.as_deref().is_none_or(|o| mode.contains(o)) {
            compare(&loopback, mode, in_flight, block, seconds);
        }
    }
    let Loopback {
        rt,
        emulator,
        driver,
        sdk,
    } = loopback;
    drop((driver, sdk));
    rt.block_on(emulator.shutdown());
}
