//! End to end over real HTTP on loopback: both shipped transports (reqwest, async through the
//! driver; ureq, blocking) against the Graph emulator, for every emulator script.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use recording_status::audit::{MemorySink, verify};
use recording_status::auth::Authenticated;
use recording_status::driver::{Driver, DriverConfig, Hub, RetryPolicy, Started};
use recording_status::emulator::{Behavior, Emulator, MalformedBody, NotifyStyle, RetryAfter};
use recording_status::transports::reqwest_0_13::ReqwestTransport;
use recording_status::transports::ureq_3::UreqTransport;
use recording_status::{
    AccessToken, Begin, CallId, Error, Graph, RecordingStatus, response::Permanent,
};

/// What a script must come to.
#[derive(Debug, Clone, Copy)]
enum Expect {
    Recording,
    Failed(fn(&Error) -> bool),
}

fn scripts() -> Vec<(&'static str, Behavior, Expect)> {
    let unknown: fn(&Error) -> bool = Error::is_unknown_outcome;
    vec![
        ("complete", Behavior::Complete, Expect::Recording),
        (
            "failed operation",
            Behavior::Failed {
                code: 500,
                subcode: 8510,
                message: "x".into(),
            },
            Expect::Failed(|e| matches!(e, Error::OperationFailed(_))),
        ),
        (
            "429 seconds",
            Behavior::Throttle {
                status: 429,
                retry_after: RetryAfter::Seconds(1),
            },
            Expect::Recording,
        ),
        (
            "503 http-date",
            Behavior::Throttle {
                status: 503,
                retry_after: RetryAfter::HttpDate(Duration::from_secs(1)),
            },
            Expect::Recording,
        ),
        (
            "500",
            Behavior::ServerError { status: 500 },
            Expect::Failed(unknown),
        ),
        (
            "504",
            Behavior::ServerError { status: 504 },
            Expect::Failed(unknown),
        ),
        (
            "slow",
            Behavior::Slow {
                delay: Duration::from_millis(300),
                then: Box::new(Behavior::Complete),
            },
            Expect::Recording,
        ),
        (
            "html",
            Behavior::Malformed(MalformedBody::Html),
            Expect::Failed(unknown),
        ),
        (
            "truncated json",
            Behavior::Malformed(MalformedBody::TruncatedJson),
            Expect::Failed(unknown),
        ),
        (
            "8506",
            Behavior::Forbidden8506,
            Expect::Failed(|e| e.permanent() == Some(Permanent::NotComplianceCall)),
        ),
        (
            "dropped connection",
            Behavior::DropConnection,
            Expect::Failed(unknown),
        ),
        (
            "truncated body",
            Behavior::TruncatedBody,
            Expect::Failed(unknown),
        ),
        (
            "foreign location",
            Behavior::ForeignLocation,
            Expect::Recording,
        ),
    ]
}

fn check(name: &str, expect: Expect, recorded: bool, reason: Option<&Error>) {
    match expect {
        Expect::Recording => assert!(recorded, "{name}: expected Recording, got {reason:?}"),
        Expect::Failed(ok) => {
            assert!(!recorded, "{name}: must not record");
            let reason = reason.unwrap();
            assert!(ok(reason), "{name}: unexpected reason {reason:?}");
        }
    }
}

fn policy() -> RetryPolicy {
    RetryPolicy::default()
        .with_deadline(Duration::from_secs(10))
        .with_max_retry_after(Duration::from_secs(2))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reqwest_through_the_driver_against_every_script() {
    let emulator = Emulator::start().await.unwrap();
    let audit = Arc::new(MemorySink::default());
    let transport = ReqwestTransport::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let graph =
        Graph::new(transport, AccessToken::new("e2e-secret")).with_endpoint(emulator.endpoint());
    let (driver, _events) = Driver::new(
        graph,
        audit.clone(),
        DriverConfig::default()
            .with_pending_deadline(Duration::from_secs(3))
            .with_retry(policy()),
    );
    for (name, behavior, expect) in scripts() {
        let id = uuid::Uuid::new_v4().to_string();
        emulator.script(&id, [behavior, Behavior::Complete]);
        let call = driver.call(id.parse().unwrap()).unwrap();
        match driver.begin_recording(call).await.unwrap() {
            Started::Recording(call) => {
                check(name, expect, true, None);
                let call = driver.stop_recording(call).await.unwrap();
                assert_eq!(
                    emulator.status_of(&id),
                    Some(RecordingStatus::NotRecording),
                    "{name}"
                );
                drop(call);
            }
            Started::Failed(call) => check(name, expect, false, Some(call.reason())),
            other => panic!("{other:?}"),
        }
    }
    // The foreign Location was never followed: every request hit the emulator's own path.
    for r in emulator.requests() {
        assert!(r.authorized);
        assert!(r.path.ends_with("/updateRecordingStatus"), "{}", r.path);
    }
    verify(&audit.events()).unwrap();
    assert!(
        !serde_json::to_string(&audit.events())
            .unwrap()
            .contains("e2e-secret")
    );
    emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ureq_blocking_against_every_script() {
    let emulator = Emulator::start().await.unwrap();
    let endpoint = emulator.endpoint();
    let mut plans = Vec::new();
    for (name, behavior, expect) in scripts() {
        // The blocking twins honour the graph's retry policy too (sleeping the thread).
        let id = uuid::Uuid::new_v4().to_string();
        emulator.script(&id, [behavior, Behavior::Complete]);
        plans.push((name, id, expect));
    }
    let audit = Arc::new(MemorySink::default());
    let sink = audit.clone();
    tokio::task::spawn_blocking(move || {
        let transport = UreqTransport::builder()
            .timeout(Duration::from_secs(5))
            .build();
        let graph = Graph::new(transport, AccessToken::new("t"))
            .with_endpoint(endpoint)
            .with_retry(policy());
        for (name, id, expect) in plans {
            let id: CallId = id.parse().unwrap();
            let call = recording_status::Calls::new(sink.clone()).open(id).unwrap();
            match call.begin_recording_blocking(&graph).unwrap() {
                Begin::Recording(call) => {
                    check(name, expect, true, None);
                    let handle = call.retention_handle().unwrap();
                    drop(handle);
                    let stopped = call
                        .stop_recording_blocking(&graph, Duration::from_secs(1))
                        .unwrap();
                    drop(stopped);
                }
                Begin::Failed(call) => check(name, expect, false, Some(call.reason())),
                other => panic!("{name}: {other:?}"),
            }
        }
    })
    .await
    .unwrap();
    verify(&audit.events()).unwrap();
    emulator.shutdown().await;
}

async fn webhook(State(hub): State<Hub>, body: Bytes) -> StatusCode {
    match hub.deliver(
        &Authenticated::danger_authenticated_elsewhere("loopback e2e"),
        &body,
    ) {
        Ok(_) => StatusCode::ACCEPTED,
        Err(_) => StatusCode::BAD_REQUEST,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn running_operations_settle_through_the_webhook() {
    let emulator = Emulator::start().await.unwrap();
    let audit = Arc::new(MemorySink::default());
    let graph = Graph::new(ReqwestTransport::new().unwrap(), AccessToken::new("t"))
        .with_endpoint(emulator.endpoint());
    let (driver, _events) = Driver::new(
        graph,
        audit.clone(),
        DriverConfig::default().with_pending_deadline(Duration::from_secs(5)),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Router::new()
        .route("/callback", post(webhook))
        .with_state(driver.hub().clone());
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    emulator.set_callback_url(format!("http://{addr}/callback"));

    for (style, expect_recording) in [
        (NotifyStyle::default(), true),
        (NotifyStyle::messy(), true),
        (NotifyStyle::default().with_upper_dashless_ids(), true),
    ] {
        let id = uuid::Uuid::new_v4().to_string();
        emulator.script(
            &id,
            [
                Behavior::Running {
                    delay: Duration::from_millis(200),
                    notify: style,
                },
                Behavior::Complete,
            ],
        );
        let started = driver
            .begin_recording(driver.call(id.parse().unwrap()).unwrap())
            .await
            .unwrap();
        assert_eq!(
            matches!(started, Started::Recording(_)),
            expect_recording,
            "{started:?}"
        );
        if let Started::Recording(call) = started {
            drop(driver.stop_recording(call).await.unwrap());
        }
    }
    let id = uuid::Uuid::new_v4().to_string();
    emulator.script(
        &id,
        [Behavior::RunningThenFail {
            delay: Duration::from_millis(100),
            code: 500,
            subcode: 1,
        }],
    );
    let started = driver
        .begin_recording(driver.call(id.parse().unwrap()).unwrap())
        .await
        .unwrap();
    assert!(matches!(started, Started::Failed(_)), "{started:?}");
    verify(&audit.events()).unwrap();
    server.abort();
    emulator.shutdown().await;
}
