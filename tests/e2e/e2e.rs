//! End to end over real HTTP on loopback: both shipped transports (reqwest, async through the
//! driver; ureq, blocking) against the Graph emulator, for every emulator script.

use std::sync::Arc;
use std::time::Duration;

use graph_emulator::{
    Behavior, Emulator, MalformedBody, NotifyStyle, RecordingStatus as Accepted, RetryAfter,
};
use recording_status::audit::{MemorySink, verify};
use recording_status::driver::{Driver, DriverConfig, RetryPolicy, Started};
use recording_status::transports::reqwest_0_13::ReqwestTransport;
use recording_status::transports::ureq_3::UreqTransport;
use recording_status::{Begin, CallId, Error, response::Permanent};

use crate::support::assert_no_token;
use crate::support::graph::graph_over;
use crate::support::ids::unique_call;
use crate::support::loopback::hub_webhook;
use crate::support::sinks::as_json;

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
    let graph = graph_over(transport)
        .with_endpoint(recording_status::Endpoint::custom(&emulator.base_url()).unwrap());
    let (driver, _events) = Driver::new(
        graph,
        audit.clone(),
        DriverConfig::default()
            .with_pending_deadline(Duration::from_secs(3))
            .with_retry(policy()),
    );
    for (name, behavior, expect) in scripts() {
        let id = unique_call();
        emulator.script(&id, [behavior, Behavior::Complete]);
        let call = driver.call(id.parse().unwrap()).unwrap();
        match driver.begin_recording(call).await.unwrap() {
            Started::Recording(call) => {
                check(name, expect, true, None);
                let call = driver.stop_recording(call).await.unwrap();
                assert_eq!(
                    emulator.status_of(&id),
                    Some(Accepted::NotRecording),
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
    assert_no_token(&as_json(&audit));
    emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ureq_blocking_against_every_script() {
    let emulator = Emulator::start().await.unwrap();
    let endpoint = recording_status::Endpoint::custom(&emulator.base_url()).unwrap();
    let mut plans = Vec::new();
    for (name, behavior, expect) in scripts() {
        // The blocking twins honour the graph's retry policy too (sleeping the thread).
        let id = unique_call();
        emulator.script(&id, [behavior, Behavior::Complete]);
        plans.push((name, id, expect));
    }
    let audit = Arc::new(MemorySink::default());
    let sink = audit.clone();
    tokio::task::spawn_blocking(move || {
        let transport = UreqTransport::builder()
            .timeout(Duration::from_secs(5))
            .build();
        let graph = graph_over(transport)
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn running_operations_settle_through_the_webhook() {
    let emulator = Emulator::start().await.unwrap();
    let audit = Arc::new(MemorySink::default());
    let graph = graph_over(ReqwestTransport::new().unwrap())
        .with_endpoint(recording_status::Endpoint::custom(&emulator.base_url()).unwrap());
    let (driver, _events) = Driver::new(
        graph,
        audit.clone(),
        DriverConfig::default().with_pending_deadline(Duration::from_secs(5)),
    );
    let (webhook, _deliveries) = hub_webhook(driver.hub().clone()).await;
    emulator.set_callback_url(webhook);

    for (style, expect_recording) in [
        (NotifyStyle::default(), true),
        (NotifyStyle::messy(), true),
        (NotifyStyle::default().with_upper_dashless_ids(), true),
    ] {
        let id = unique_call();
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
    let id = unique_call();
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
    emulator.shutdown().await;
}
