//! The notification hub with calls waiting: arbitrary webhook bodies are delivered to a
//! [`Driver`]'s hub while three `recording` requests wait for their notifications. Asserts:
//!
//! - a call reaches `Recording` only if the input carried a successful completion that
//!   genuinely matches its request (same call, or no call and the same `clientContext`; an
//!   operation id or `clientContext` that matches and none that contradicts), and reaches
//!   `Failed` before its deadline only for a matching failure;
//! - a late completion is surfaced only for an update that matches the abandoned request;
//! - [`Hub::remembered_bytes`](recording_status::driver::Hub::remembered_bytes) stays within
//!   [`DriverConfig::memory_bytes`] after every delivery and every step of the runtime.
//!
//! The oracle re-reads the input with `parse_notifications` and compares normalised ids, so it
//! does not share the hub's routing code.
//!
//! # Input
//!
//! One or more notification bodies, separated by `\n--\n` (deliver, then let the calls run)
//! or `\n~~\n` (deliver, let the calls run, then advance the paused clock past the pending
//! deadline, so that the waiting requests are abandoned and later updates are late). Neither
//! separator can occur inside a JSON document. `$C0`, `$C1` and `$C2` are replaced by the
//! `clientContext` the driver generated for call 0, 1 and 2 (random per run, so the fuzzer
//! could not guess them).
//!
//! The calls (the first two ids from Microsoft's examples) and how the closure transport
//! answers their `recording` request:
//!
//! 0. `57dab8b1-894c-409a-b240-bd8beae78896`: `200`, `updateRecordingStatusOperation` `running`,
//!    id `0fe0623f-d628-42ed-b4bd-8ac290072cc5`, `clientContext` echoed, `Location` set.
//! 1. `481f3600-983e-4276-9b59-c1b30ec8d125`: `200`, untyped `notStarted`, id
//!    `D36FE6519F50484DBD4B1E6415EAE448` (upper case, no dashes), no `clientContext`.
//! 2. `2a5f3e9b-0c1d-4e7f-8a9b-1c2d3e4f5a6b`: `202` with no body: no operation id, so only the
//!    `clientContext` can match.
//!
//! Every other request (`failed` reports) is answered `completed`.
//!
//! # Cost
//!
//! The driver runs on a current-thread runtime with a paused clock. It is kept from one input
//! to the next while inputs change nothing, and rebuilt after any input that did, so that every
//! input meets the same fresh hub and a crash reproduces on its own.
#![no_main]

use std::cell::RefCell;
use std::future::Ready;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use recording_status::audit::{AuditEvent, AuditSink};
use recording_status::auth::Authenticated;
use recording_status::driver::{
    Driver, DriverConfig, DriverEvent, DriverEvents, LateCompletion, MAX_OPERATION_ID_LEN, Started,
};
use recording_status::error::AuditError;
use recording_status::notification::{OperationUpdate, parse_notifications};
use recording_status::transport::{HttpRequest, HttpResponse, Transport};
use recording_status::ClientContext;
use recording_status::{AccessToken, CallId, Graph, NotRecording, NotSent, OperationStatus};
use tokio::task::JoinHandle;

/// The hub's byte budget: small, so that trimming runs on ordinary inputs.
const BUDGET: usize = 4096;
/// How far the clock moves at `\n~~\n`: past the pending deadline (30 s).
const ADVANCE: Duration = Duration::from_secs(31);
/// How many times the runtime is yielded to after a delivery or a deadline. Every future the
/// calls await then is ready at once (the transport answers synchronously), so two suffice;
/// `FUZZ_HUB_TRACE` runs show the outcomes.
const SETTLE_YIELDS: usize = 4;
/// How many segments of one input are delivered.
const MAX_SEGMENTS: usize = 8;

struct Spec {
    id: &'static str,
    /// The operation id of the transport's answer, if any.
    operation: Option<&'static str>,
}

const CALLS: [Spec; 3] = [
    Spec {
        id: "57dab8b1-894c-409a-b240-bd8beae78896",
        operation: Some("0fe0623f-d628-42ed-b4bd-8ac290072cc5"),
    },
    Spec {
        id: "481f3600-983e-4276-9b59-c1b30ec8d125",
        operation: Some("D36FE6519F50484DBD4B1E6415EAE448"),
    },
    Spec {
        id: "2a5f3e9b-0c1d-4e7f-8a9b-1c2d3e4f5a6b",
        operation: None,
    },
];

/// Accepts every event and keeps none: the trail is not what this target checks.
#[derive(Debug)]
struct Discard;

impl AuditSink for Discard {
    fn record(&self, _: &AuditEvent) -> Result<(), AuditError> {
        Ok(())
    }
}

type Contexts = Arc<Mutex<[Option<String>; 3]>>;

/// Graph, as far as these calls need it; remembers each `recording` request's `clientContext`.
fn answer(contexts: &Contexts, request: &HttpRequest) -> Result<HttpResponse, http::Error> {
    let segment = request.uri().path().split('/').nth(4).unwrap_or_default();
    let index = CALLS.iter().position(|c| c.id == segment);
    let body: serde_json::Value = serde_json::from_slice(request.body()).unwrap_or_default();
    let context = body["clientContext"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let (Some(index), Some("recording")) = (index, body["status"].as_str()) else {
        let done = serde_json::json!({"status": "completed", "clientContext": context});
        return http::Response::builder()
            .status(200)
            .body(done.to_string().into_bytes());
    };
    contexts.lock().unwrap()[index] = Some(context.clone());
    match index {
        0 => {
            let op = CALLS[0].operation.unwrap();
            let body = serde_json::json!({
                "@odata.type": "#microsoft.graph.updateRecordingStatusOperation",
                "clientContext": context,
                "id": op,
                "resultInfo": null,
                "status": "running",
            });
            http::Response::builder()
                .status(200)
                .header(
                    "location",
                    format!(
                        "https://graph.microsoft.com/v1.0/communications/calls/{}/operations/{op}",
                        CALLS[0].id
                    ),
                )
                .body(body.to_string().into_bytes())
        }
        1 => {
            let body = serde_json::json!({"id": CALLS[1].operation, "status": "notStarted"});
            http::Response::builder()
                .status(200)
                .body(body.to_string().into_bytes())
        }
        _ => http::Response::builder().status(202).body(Vec::new()),
    }
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap()
    })
}

/// Lets every task that can make progress make it.
async fn settle() {
    for _ in 0..SETTLE_YIELDS {
        tokio::task::yield_now().await;
    }
}

/// The input's bodies, each with whether the clock advances after it.
fn segments(data: &[u8]) -> Vec<(&[u8], bool)> {
    let mut out = Vec::new();
    let mut rest = data;
    while out.len() + 1 < MAX_SEGMENTS {
        let next = rest
            .windows(4)
            .position(|w| w == b"\n--\n" || w == b"\n~~\n");
        let Some(at) = next else { break };
        out.push((&rest[..at], rest[at + 1] == b'~'));
        rest = &rest[at + 4..];
    }
    out.push((rest, false));
    out
}

fn substitute(body: &[u8], contexts: &[String; 3]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len());
    let mut i = 0;
    while i < body.len() {
        if body[i] == b'$'
            && body.get(i + 1) == Some(&b'C')
            && let Some(n @ b'0'..=b'2') = body.get(i + 2)
        {
            out.extend_from_slice(contexts[usize::from(n - b'0')].as_bytes());
            i += 3;
        } else {
            out.push(body[i]);
            i += 1;
        }
    }
    out
}

fn normalize(id: &str) -> String {
    id.chars()
        .filter(|c| *c != '-')
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// A request as the oracle knows it: normalised ids, and the exact `clientContext`.
struct Key {
    call: String,
    operation: Option<String>,
    context: String,
}

/// An update's ids as the hub keeps them: strings over their bounds are dropped.
struct Ids {
    call: Option<String>,
    /// From the path first (`…/operations/{id}`), else the element's `id`: what the hub routes by.
    routed: Option<String>,
    /// The element's `id` first, else the path's: what the waiting call compares.
    seen: Option<String>,
    context: Option<String>,
}

fn ids(u: &OperationUpdate) -> Ids {
    let short = |s: &Option<String>, max: usize| s.clone().filter(|s| s.len() <= max);
    let path = short(&u.operation_id, MAX_OPERATION_ID_LEN);
    let own = short(&u.operation.id, MAX_OPERATION_ID_LEN);
    Ids {
        call: short(&u.call_id, CallId::MAX_LEN).map(|c| normalize(&c)),
        routed: path.as_deref().map(normalize),
        seen: own.or(path).as_deref().map(normalize),
        context: short(&u.operation.client_context, ClientContext::MAX_LEN),
    }
}

/// The call's own rule: the update names this call (or no call, and then its context must be
/// this request's), agrees on every id both know, and matches at least one.
fn settles(key: &Key, u: &OperationUpdate) -> bool {
    if !u.operation.may_settle_recording() {
        return false;
    }
    let ids = ids(u);
    match &ids.call {
        Some(call) if *call != key.call => return false,
        None if ids.context.as_deref() != Some(key.context.as_str()) => return false,
        _ => {}
    }
    let id = match (&key.operation, &ids.seen) {
        (Some(mine), Some(theirs)) => Some(mine == theirs),
        _ => None,
    };
    let context = ids.context.as_ref().map(|c| *c == key.context);
    id != Some(false) && context != Some(false) && (id == Some(true) || context == Some(true))
}

/// The hub's rule for an abandoned request: a `completed` recording operation for this call
/// (or no call) whose routed id matches (only with a call id) or whose context matches, and
/// neither contradicts.
fn completes_late(key: &Key, u: &OperationUpdate) -> bool {
    if !u.operation.may_settle_recording() || u.operation.status != Some(OperationStatus::Completed)
    {
        return false;
    }
    let ids = ids(u);
    if ids.call.as_ref().is_some_and(|c| *c != key.call) {
        return false;
    }
    let id = match (&key.operation, &ids.routed) {
        (Some(mine), Some(theirs)) if ids.call.is_some() => Some(mine == theirs),
        _ => None,
    };
    let context = ids.context.as_ref().map(|c| *c == key.context);
    id != Some(false) && context != Some(false) && (id == Some(true) || context == Some(true))
}

/// `FUZZ_HUB_TRACE=1` prints what each input did to each call (to check the seeds).
fn trace() -> bool {
    static TRACE: OnceLock<bool> = OnceLock::new();
    *TRACE.get_or_init(|| std::env::var_os("FUZZ_HUB_TRACE").is_some())
}

/// Asserts that a terminated call never holds live retention (on by default since the hub
/// refuses to settle a call Graph ended; `FUZZ_HUB_TERMINATION=0` turns it off).
fn strict_termination() -> bool {
    static STRICT: OnceLock<bool> = OnceLock::new();
    *STRICT.get_or_init(|| std::env::var_os("FUZZ_HUB_TERMINATION").is_none_or(|v| v != "0"))
}

fn check_budget<T: Transport + 'static>(driver: &Driver<T>, when: &str) {
    let bytes = driver.hub().remembered_bytes();
    assert!(
        bytes <= driver.config().memory_bytes,
        "{when}: the hub remembers {bytes} bytes, over its budget of {}",
        driver.config().memory_bytes
    );
}

/// The closure transport, boxed so that the driver's type can be named.
type Link = Box<dyn Fn(HttpRequest) -> Ready<Result<HttpResponse, http::Error>> + Send + Sync>;
type Begun = JoinHandle<Result<Started, NotSent<NotRecording>>>;

/// A driver with the three calls waiting. Kept from one input to the next while inputs leave
/// it exactly as it was (nothing routed, held, surfaced, terminated or timed out), and built
/// afresh after any input that changed it, so every input meets the same hub.
struct World {
    driver: Driver<Link>,
    events: DriverEvents,
    tasks: Vec<Begun>,
    contexts: [String; 3],
    keys: Vec<Key>,
}

thread_local! {
    static WORLD: RefCell<Option<World>> = const { RefCell::new(None) };
}

async fn build() -> World {
    let contexts: Contexts = Arc::default();
    let link: Link = {
        let contexts = contexts.clone();
        Box::new(move |request: HttpRequest| std::future::ready(answer(&contexts, &request)))
    };
    let config = DriverConfig::default()
        .with_memory_bytes(BUDGET)
        .with_memory(Duration::from_secs(60));
    let (driver, events) = Driver::new(
        Graph::new(link, AccessToken::new("fuzz")),
        Arc::new(Discard),
        config,
    );
    let mut tasks = Vec::new();
    for spec in &CALLS {
        let call = driver.call(CallId::new(spec.id).unwrap()).unwrap();
        let driver = driver.clone();
        tasks.push(tokio::spawn(
            async move { driver.begin_recording(call).await },
        ));
    }
    for _ in 0..64 {
        if driver.hub().waiting() == CALLS.len() {
            break;
        }
        tokio::task::yield_now().await;
    }
    assert_eq!(
        driver.hub().waiting(),
        CALLS.len(),
        "the calls did not wait"
    );
    let contexts: [String; 3] = contexts
        .lock()
        .unwrap()
        .clone()
        .map(|c| c.expect("each call sent its `recording` request"));
    let keys = CALLS
        .iter()
        .zip(&contexts)
        .map(|(spec, context)| Key {
            call: normalize(spec.id),
            operation: spec.operation.map(normalize),
            context: context.clone(),
        })
        .collect();
    World {
        driver,
        events,
        tasks,
        contexts,
        keys,
    }
}

fuzz_target!(|data: &[u8]| {
    runtime().block_on(async {
        let world = match WORLD.with_borrow_mut(Option::take) {
            Some(world) => world,
            None => build().await,
        };
        if let Some(world) = run(world, data).await {
            WORLD.with_borrow_mut(|w| *w = Some(world));
        }
    });
});

/// Delivers the input and checks the outcome; returns the world if the input left it as it was.
async fn run(world: World, data: &[u8]) -> Option<World> {
    let World {
        driver,
        mut events,
        tasks,
        contexts,
        keys,
    } = world;
    let proof = Authenticated::danger_authenticated_elsewhere("fuzz target");
    let mut bodies = Vec::new();
    let mut advanced = false;
    let mut changed = false;
    for (segment, advance) in segments(data) {
        let body = substitute(segment, &contexts);
        let delivery = driver.hub().deliver(&proof, &body);
        if trace() {
            eprintln!(
                "delivery: {delivery:?}, {} bytes remembered",
                driver.hub().remembered_bytes()
            );
        }
        changed |= delivery.is_ok_and(|d| d.routed + d.late + d.held + d.terminated > 0);
        check_budget(&driver, "after a delivery");
        settle().await;
        check_budget(&driver, "after the calls ran");
        if advance {
            tokio::time::advance(ADVANCE).await;
            advanced = true;
            changed = true;
            settle().await;
            check_budget(&driver, "after the deadline");
        }
        bodies.push(body);
    }
    if !changed
        && driver.hub().remembered_bytes() == 0
        && driver.hub().waiting() == CALLS.len()
        && tasks.iter().all(|t| !t.is_finished())
        && events.is_empty()
    {
        return Some(World {
            driver,
            events,
            tasks,
            contexts,
            keys,
        });
    }

    // The oracle reads the bodies on its own (only now: most inputs change nothing).
    let updates: Vec<OperationUpdate> = bodies
        .iter()
        .filter_map(|b| parse_notifications(b).ok())
        .flat_map(|parsed| parsed.updates)
        .collect();
    let mut recording = Vec::new();
    for (i, task) in tasks.into_iter().enumerate() {
        if !task.is_finished() {
            task.abort();
            let _ = task.await;
            continue;
        }
        let key = &keys[i];
        let started = task.await.expect("the task did not panic");
        if trace() {
            eprintln!("call {i}: {started:?}");
        }
        match started {
            Ok(Started::Recording(call)) => {
                assert!(
                    updates
                        .iter()
                        .any(|u| u.operation.is_successful_completion() && settles(key, u)),
                    "call {i} is Recording without a matching successful completion in the input"
                );
                recording.push((i, call));
            }
            Ok(Started::Failed(call)) => {
                assert!(
                    advanced
                        || updates
                            .iter()
                            .any(|u| u.operation.is_failure() && settles(key, u)),
                    "call {i} failed before its deadline without a matching failure: {}",
                    call.reason()
                );
            }
            Ok(_) => {}
            Err(not_sent) => panic!("call {i}: nothing sent: {}", not_sent.error),
        }
    }

    let mut terminated = [false; 3];
    while let Ok(event) = events.try_recv() {
        if trace() {
            eprintln!("event: {event:?}");
        }
        if let DriverEvent::CallTerminated { call_id, .. } = &event
            && let Some(i) = CALLS
                .iter()
                .position(|c| normalize(c.id) == call_id.normalized())
        {
            terminated[i] = true;
        }
        if let DriverEvent::LateCompletion(LateCompletion { call_id, .. }) = &event {
            let i = CALLS
                .iter()
                .position(|c| normalize(c.id) == call_id.normalized())
                .expect("a late completion for one of the calls");
            assert!(advanced, "a late completion before any deadline: {event:?}");
            assert!(
                updates.iter().any(|u| completes_late(&keys[i], u)),
                "a late completion without a matching `completed`: {event:?}"
            );
        }
    }
    // A call whose termination was surfaced must not hold a live retention capability.
    for (i, call) in recording {
        if terminated[i] && strict_termination() {
            let handle = call
                .retention_handle()
                .expect("the sink accepts everything");
            assert!(
                handle.is_revoked(),
                "call {i} was terminated by Graph, yet is Recording with a live retention"
            );
        }
        driver.end(call);
    }
    check_budget(&driver, "at the end");
    None
}
