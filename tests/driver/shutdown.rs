//! `Driver::shutdown` on tokio's paused clock: a pending begin gives up at the shutdown's
//! deadline (not its own), a sink that refuses the stop signal gets the call revoked at once,
//! and a trail that cannot be synced makes the shutdown unclean.

use std::sync::Arc;
use std::time::Duration;

use recording_status::audit::{AuditEvent, AuditKind, AuditSink, MemorySink, verify};
use recording_status::driver::{Driver, DriverConfig, Started};
use recording_status::error::AuditError;
use recording_status::testing::Step;
use recording_status::{Error, RetentionWriter};

use crate::support::driving::{driver_on, recording, scripted_driver};
use crate::support::graph::{TOKEN, scripted};
use crate::support::sinks::{Refusing, labels};

#[tokio::test(start_paused = true)]
async fn a_pending_begin_gives_up_at_the_shutdown_deadline_and_is_reported_failed() {
    let config = DriverConfig::default().with_pending_deadline(Duration::from_secs(600));
    let (driver, _events, audit, transport) = scripted_driver(
        vec![Step::running(), Step::completed(), Step::completed()],
        config,
    );
    let begin = {
        let driver = driver.clone();
        tokio::spawn(async move {
            let call = driver.call(crate::support::ids::call_id()).unwrap();
            driver.begin_recording(call).await.unwrap()
        })
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    let started_at = tokio::time::Instant::now();
    let report = driver.shutdown(Duration::from_secs(5)).await;
    // Given up at the shutdown's deadline, 5 s, not at the call's own 600 s.
    assert!(
        started_at.elapsed() < Duration::from_secs(7),
        "{:?}",
        started_at.elapsed()
    );
    let Started::Failed(call) = begin.await.unwrap() else {
        panic!("the pending begin must fail")
    };
    assert!(
        matches!(call.reason(), Error::Abandoned),
        "{:?}",
        call.reason()
    );
    assert!(report.is_clean(), "{report:?}");
    // The give-up's own best-effort `failed`, then the shutdown's `failed` for the request
    // whose outcome is unknown.
    let statuses: Vec<String> = transport
        .requests()
        .iter()
        .map(|r| {
            crate::support::bodies::sent(r)["status"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(statuses, ["recording", "failed", "failed"]);
    assert_eq!(report.failed, 1);
    let verified = verify(&audit.events()).unwrap();
    assert!(verified.is_complete(), "{:?}", verified.open);
}

#[tokio::test(start_paused = true)]
async fn a_refused_stop_signal_revokes_at_once_and_the_call_is_still_reported() {
    let sink = Refusing::idle(|k| matches!(k, AuditKind::DrainStarted { .. }));
    let transport = scripted(vec![Step::completed(), Step::completed()]);
    let driver = driver_on(
        &transport,
        Arc::new(recording_status::AccessToken::new(TOKEN)),
        sink.clone(),
    );
    let call = recording(&driver).await;
    let mut writer = RetentionWriter::new(call.retention_handle().unwrap(), Vec::new());
    std::io::Write::write_all(&mut writer, b"media").unwrap();
    sink.set_refusing(true);
    let started_at = tokio::time::Instant::now();
    let report = driver.shutdown(Duration::from_secs(30)).await;
    // No signal could be raised: the capability was revoked without waiting for the deadline.
    assert!(started_at.elapsed() < Duration::from_secs(1));
    assert_eq!(report.stopped, 1, "{report:?}");
    assert!(std::io::Write::write_all(&mut writer, b"more").is_err());
    let labels = labels(&sink.events());
    assert!(!labels.contains(&"drain_started".to_owned()), "{labels:?}");
    let revoked = labels
        .iter()
        .position(|l| l == "retention_revoked")
        .unwrap();
    let reported = labels.iter().rposition(|l| l == "request_sent").unwrap();
    assert!(revoked < reported, "{labels:?}");
    drop((writer, call));
    verify(&sink.events()).unwrap();
}

/// A sink whose records succeed but whose sync fails.
#[derive(Debug, Default)]
struct Unsyncable(MemorySink);

impl AuditSink for Unsyncable {
    fn record(&self, event: &AuditEvent) -> Result<(), AuditError> {
        self.0.record(event)
    }

    fn sync(&self) -> Result<(), AuditError> {
        Err(AuditError::Io(std::io::Error::other("disk gone")))
    }
}

#[tokio::test(start_paused = true)]
async fn a_trail_that_cannot_be_synced_makes_the_shutdown_unclean() {
    let sink = Arc::new(Unsyncable::default());
    let transport = scripted(vec![]);
    let graph = crate::support::graph::graph_over(transport);
    let (driver, _events) = Driver::new(graph, sink.clone(), DriverConfig::default());
    let report = driver.shutdown(Duration::from_secs(1)).await;
    assert!(report.trail.is_some());
    assert!(!report.is_clean());
    // The stop itself was recorded before the sync was tried.
    let events = sink.0.events();
    assert!(matches!(
        events.last().unwrap().kind,
        AuditKind::InstanceStopped { stopped: 0, .. }
    ));
}
