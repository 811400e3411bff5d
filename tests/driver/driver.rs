//! The async driver against Graph's real behaviour, on tokio's paused clock: pending
//! operations and notifications, retries and deadlines, late completions, one request in
//! flight per call, ended and dropped calls.

use std::sync::Arc;
use std::time::Duration;

use recording_status::audit::{AuditKind, MemorySink, verify};
use recording_status::driver::RetryPolicy;
use recording_status::driver::{DriverConfig, DriverEvent, EndStatus, Started};
use recording_status::testing::Step;
use recording_status::{AccessToken, CallState, Error, RetentionWriter};
use recording_status::{TokenFuture, TokenSource};

use crate::support::assert_no_token;
use crate::support::bodies::{answer, graph_notification, notifications, operation_entry, sent};
use crate::support::driving::{
    driver_on, driver_over, failed, graph_terminates_the_call, recording, scripted_driver,
};
use crate::support::graph::{BEARER, proof, scripted};
use crate::support::ids::{
    OP_UPPER, call_id, other_call, this_call, this_call_key, this_call_upper,
};
use crate::support::sinks::{as_json, begun_episodes};

#[tokio::test(start_paused = true)]
async fn running_then_notification_completed_records() {
    let (driver, _events, audit, transport) =
        scripted_driver(vec![Step::running()], DriverConfig::default());
    let hub = driver.hub().clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let d = hub
            .deliver(
                &proof(),
                &graph_notification(&this_call_upper(), OP_UPPER, "Completed"),
            )
            .unwrap();
        assert_eq!(d.routed, 1);
    });
    let started = driver
        .begin_recording(driver.call(call_id()).unwrap())
        .await
        .unwrap();
    let Started::Recording(call) = started else {
        panic!("a completed notification must unlock recording: {started:?}")
    };
    assert_eq!(transport.statuses(), ["recording"]);
    drop(driver.end(call));
    verify(&audit.events()).unwrap();
}

#[tokio::test(start_paused = true)]
async fn notification_before_registration_is_held_and_applied() {
    let (driver, _events, audit, _t) =
        scripted_driver(vec![Step::running()], DriverConfig::default());
    // The notification races ahead of the 200 `running` answer.
    let d = driver
        .hub()
        .deliver(
            &proof(),
            &graph_notification(&this_call_upper(), OP_UPPER, "completed"),
        )
        .unwrap();
    assert_eq!(d.held, 1);
    let Started::Recording(call) = driver
        .begin_recording(driver.call(call_id()).unwrap())
        .await
        .unwrap()
    else {
        panic!("a held completed notification must be applied")
    };
    drop(driver.end(call));
    verify(&audit.events()).unwrap();
}

#[tokio::test(start_paused = true)]
async fn deadline_fails_and_late_completion_is_surfaced_not_promoted() {
    let config = DriverConfig::default().with_pending_deadline(Duration::from_secs(30));
    let (driver, mut events, audit, transport) = scripted_driver(
        vec![Step::running(), Step::completed(), Step::completed()],
        config,
    );
    let start = tokio::time::Instant::now();
    let call = failed(&driver, "no notification within the deadline must fail").await;
    assert_eq!(start.elapsed(), Duration::from_secs(30));
    assert!(matches!(call.reason(), Error::Abandoned));
    assert!(call.reason().is_unknown_outcome());
    assert_eq!(transport.statuses(), ["recording", "failed"]);

    // Graph completes the abandoned request later: surfaced, never applied.
    let d = driver
        .hub()
        .deliver(
            &proof(),
            &graph_notification(&this_call_upper(), OP_UPPER, "completed"),
        )
        .unwrap();
    assert_eq!((d.late, d.routed), (1, 0));
    let Some(DriverEvent::LateCompletion(late)) = events.recv().await else {
        panic!("late completion must be surfaced")
    };
    assert_eq!(late.call_id, call_id());
    assert_eq!(late.operation_id.as_deref(), Some(OP_UPPER));
    driver
        .reconcile(&late, EndStatus::NotRecording)
        .await
        .unwrap();
    assert_eq!(
        transport.statuses(),
        ["recording", "failed", "notRecording"]
    );
    // A duplicate of the late completion is not surfaced twice.
    let d = driver
        .hub()
        .deliver(
            &proof(),
            &graph_notification(&this_call_upper(), OP_UPPER, "completed"),
        )
        .unwrap();
    assert_eq!(d.late, 0);
    let events_log = audit.events();
    assert!(
        events_log
            .iter()
            .any(|e| matches!(e.kind, AuditKind::LateCompletion { .. }))
    );
    verify(&events_log).unwrap();
    drop(call);
}

#[tokio::test(start_paused = true)]
async fn throttled_with_http_date_retry_after_waits_then_records() {
    let at = (chrono::Utc::now() + chrono::Duration::seconds(7))
        .to_rfc2822()
        .replace("+0000", "GMT");
    let throttled = Step::Respond {
        status: 429,
        headers: vec![("Retry-After".into(), at)],
        body: br#"{"error":{"code":"TooManyRequests","message":"slow down"}}"#.to_vec(),
    };
    let (driver, _e, audit, transport) =
        scripted_driver(vec![throttled, Step::completed()], DriverConfig::default());
    let start = tokio::time::Instant::now();
    let Started::Recording(call) = driver
        .begin_recording(driver.call(call_id()).unwrap())
        .await
        .unwrap()
    else {
        panic!("a retried 429 must record once completed")
    };
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_secs(5) && waited <= Duration::from_secs(8),
        "{waited:?}"
    );
    // Two attempts, each with a fresh clientContext and client-request-id.
    let requests = transport.requests();
    assert_eq!(requests.len(), 2);
    assert_ne!(
        requests[0].headers()["client-request-id"],
        requests[1].headers()["client-request-id"]
    );
    let bodies = transport.bodies();
    assert_ne!(bodies[0]["clientContext"], bodies[1]["clientContext"]);
    drop(driver.end(call));
    verify(&audit.events()).unwrap();
}

#[tokio::test(start_paused = true)]
async fn service_unavailable_storm_gives_up_at_the_deadline() {
    let storm = || Step::Respond {
        status: 503,
        headers: vec![("Retry-After".into(), "4".into())],
        body: Vec::new(),
    };
    let policy = RetryPolicy::default()
        .with_deadline(Duration::from_secs(30))
        .with_max_attempts(100);
    let (driver, _e, audit, transport) = scripted_driver(
        (0..50).map(|_| storm()),
        DriverConfig::default().with_retry(policy),
    );
    let start = tokio::time::Instant::now();
    let call = failed(&driver, "a 503 storm must fail").await;
    assert!(
        start.elapsed() < Duration::from_secs(31),
        "{:?}",
        start.elapsed()
    );
    let sent = transport.statuses();
    let recording_attempts = sent.iter().filter(|s| *s == "recording").count();
    // 4 s apart within 30 s: attempts at 0, 4, …, 28.
    assert_eq!(recording_attempts, 8, "{sent:?}");
    assert!(matches!(call.reason(), Error::Graph(e) if e.status == 503));
    verify(&audit.events()).unwrap();
}

#[tokio::test(start_paused = true)]
async fn server_error_is_unknown_and_never_retried() {
    for status in [500u16, 504] {
        let (driver, _e, _a, transport) = scripted_driver(
            vec![
                Step::graph_error(status, "InternalServerError"),
                Step::completed(),
            ],
            DriverConfig::default(),
        );
        let Started::Failed(call) = driver
            .begin_recording(driver.call(call_id()).unwrap())
            .await
            .unwrap()
        else {
            panic!("{status} must fail")
        };
        assert!(call.reason().is_unknown_outcome(), "{status}");
        assert_eq!(
            transport.statuses(),
            ["recording", "failed"],
            "no blind retry after {status}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn reset_after_send_is_unknown_but_refused_connection_is_retried() {
    let (driver, _e, audit, transport) = scripted_driver(
        vec![Step::fail("connection reset by peer"), Step::completed()],
        DriverConfig::default(),
    );
    let call = failed(&driver, "the script must fail the start").await;
    assert!(call.reason().is_unknown_outcome());
    assert_eq!(transport.statuses(), ["recording", "failed"]);
    // The trail says why the outcome is unknown, in the transport's own words.
    let failure = audit.events().into_iter().find_map(|e| match e.kind {
        AuditKind::TransportFailed { kind, error, .. } => Some((kind, error)),
        _ => None,
    });
    assert_eq!(
        failure,
        Some((
            recording_status::audit::TransportFailure::OutcomeUnknown,
            "scripted transport failure: connection reset by peer".to_owned()
        ))
    );

    drop(call);
    // A transport that knows the request never left says so; that is retried.
    let attempts = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = attempts.clone();
    let transport = move |req: http::Request<Vec<u8>>| {
        let n = counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let completed = answer(&req, "completed");
        async move {
            if n == 0 {
                return Err(recording_status::transport::NotDelivered::new(
                    std::io::Error::from(std::io::ErrorKind::ConnectionRefused),
                ));
            }
            Ok(completed)
        }
    };
    let (driver, _events, _audit) = driver_over(transport, DriverConfig::default());
    let started = driver
        .begin_recording(driver.call(call_id()).unwrap())
        .await
        .unwrap();
    assert!(matches!(started, Started::Recording(_)));
    assert_eq!(attempts.load(std::sync::atomic::Ordering::SeqCst), 2);
}

#[derive(Debug, Default)]
struct RotatingTokens {
    refreshes: std::sync::atomic::AtomicUsize,
}

impl TokenSource for RotatingTokens {
    fn token(&self, refresh: bool) -> TokenFuture<'_> {
        if refresh {
            self.refreshes
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
        Box::pin(async move { Ok(AccessToken::new(if refresh { "fresh" } else { "stale" })) })
    }
}

#[tokio::test(start_paused = true)]
async fn unauthorized_refreshes_the_token_once() {
    let transport = scripted([
        Step::graph_error(401, "InvalidAuthenticationToken"),
        Step::completed(),
        Step::graph_error(401, "InvalidAuthenticationToken"),
        Step::graph_error(401, "InvalidAuthenticationToken"),
        Step::completed(),
    ]);
    let tokens = Arc::new(RotatingTokens::default());
    let audit = Arc::new(MemorySink::default());
    let driver = driver_on(&transport, tokens.clone(), audit.clone());
    let Started::Recording(call) = driver
        .begin_recording(driver.call(call_id()).unwrap())
        .await
        .unwrap()
    else {
        panic!("401 then refresh then completed must record")
    };
    let auth: Vec<_> = transport
        .requests()
        .iter()
        .map(|r| r.headers()["authorization"].to_str().unwrap().to_owned())
        .collect();
    assert_eq!(auth, ["Bearer stale", "Bearer fresh"]);
    // Stopping: 401, refresh, 401 again: not refreshed twice; the call fails, retention ended.
    let err = driver.stop_recording(call).await.unwrap_err();
    assert!(
        matches!(err, recording_status::StopError::Unacknowledged { .. }),
        "{err:?}"
    );
    assert_eq!(
        tokens.refreshes.load(std::sync::atomic::Ordering::SeqCst),
        2
    );
    assert!(
        !serde_json::to_string(&audit.events())
            .unwrap()
            .contains("fresh\"")
    );
    verify(&audit.events()).unwrap();
}

#[tokio::test(start_paused = true)]
async fn permanent_errors_say_which() {
    use recording_status::response::Permanent;
    for (step, want) in [
        (Step::graph_error(403, "8506"), Permanent::NotComplianceCall),
        (
            Step::graph_error(403, "7504"),
            Permanent::InsufficientTenantPermissions,
        ),
        (Step::graph_error(401, "7505"), Permanent::TenantMismatch),
        (Step::graph_error(403, "Forbidden"), Permanent::Forbidden),
        (Step::graph_error(404, "NotFound"), Permanent::CallNotFound),
    ] {
        let (driver, _e, audit, transport) =
            scripted_driver(vec![step, Step::completed()], DriverConfig::default());
        let Started::Failed(call) = driver
            .begin_recording(driver.call(call_id()).unwrap())
            .await
            .unwrap()
        else {
            panic!()
        };
        assert_eq!(call.reason().permanent(), Some(want));
        // Refused outright: nothing was accepted, so no `failed` report follows (Graph
        // would refuse it too); the trail keeps the reason.
        assert_eq!(transport.statuses(), ["recording"], "{want:?}: one request");
        let why = audit
            .events()
            .into_iter()
            .find_map(|e| match e.kind {
                AuditKind::Transition {
                    to: CallState::Failed,
                    reason,
                    ..
                } => Some(reason),
                _ => None,
            })
            .unwrap();
        assert!(why.contains("refused outright"), "{why}");
    }
}

#[tokio::test(start_paused = true)]
async fn duplicate_and_out_of_order_notifications_are_ignored_and_audited() {
    let (driver, _e, audit, _t) = scripted_driver(vec![Step::running()], DriverConfig::default());
    let hub = driver.hub().clone();
    let task = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(1)).await;
        // Out of order: `running` after nothing, then completed, then duplicates and a late
        // `running`.
        let r = hub
            .deliver(
                &proof(),
                &graph_notification(&this_call_upper(), OP_UPPER, "running"),
            )
            .unwrap();
        assert_eq!(r.routed, 1);
        let r = hub
            .deliver(
                &proof(),
                &graph_notification(&this_call_upper(), OP_UPPER, "Completed"),
            )
            .unwrap();
        assert_eq!(r.routed, 1);
        tokio::time::sleep(Duration::from_secs(1)).await;
        hub
    });
    let call = recording(&driver).await;
    let hub = task.await.unwrap();
    for status in ["completed", "running", "failed"] {
        let r = hub
            .deliver(
                &proof(),
                &graph_notification(&this_call_upper(), OP_UPPER, status),
            )
            .unwrap();
        assert_eq!((r.routed, r.ignored), (0, 1), "{status}");
    }
    // Garbage never panics and never routes.
    assert!(hub.deliver(&proof(), b"<html>").is_err());
    assert!(
        hub.deliver(&proof(), br#"{"value":[1,{"resourceData":[]}]}"#)
            .is_ok()
    );
    // Still recording; retention works.
    let mut w = RetentionWriter::new(call.retention().unwrap(), Vec::new());
    std::io::Write::write_all(&mut w, b"x").unwrap();
    drop(w);
    let events = audit.events();
    assert_eq!(
        events
            .iter()
            .filter(|e| matches!(e.kind, AuditKind::NotificationIgnored { .. }))
            .count(),
        3
    );
    drop(driver.end(call));
    verify(&audit.events()).unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_notification_for_another_request_cannot_unlock_recording() {
    let (driver, _e, _a, _t) = scripted_driver(
        vec![Step::running()],
        DriverConfig::default().with_pending_deadline(Duration::from_secs(5)),
    );
    let hub = driver.hub().clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(1)).await;
        // Same call, other operation and other context: a forged or stale completion.
        let forged = notifications([operation_entry(
            &this_call_upper(),
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            Some("guess"),
            "completed",
        )]);
        let d = hub.deliver(&proof(), &forged).unwrap();
        assert_eq!(d.routed, 0);
    });
    let started = driver
        .begin_recording(driver.call(call_id()).unwrap())
        .await
        .unwrap();
    assert!(matches!(started, Started::Failed(_)), "{started:?}");
}

#[tokio::test(start_paused = true)]
async fn two_updates_on_one_call_are_sent_in_order() {
    // A slow transport: each request takes 1 s; record arrival order and overlap.
    let log = Arc::new(std::sync::Mutex::new(Vec::<(String, &'static str)>::new()));
    let in_flight = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (l, f) = (log.clone(), in_flight.clone());
    let transport = move |req: http::Request<Vec<u8>>| {
        let (l, f) = (l.clone(), f.clone());
        let status = sent(&req)["status"].as_str().unwrap().to_owned();
        let completed = answer(&req, "completed");
        async move {
            assert_eq!(
                f.fetch_add(1, std::sync::atomic::Ordering::SeqCst),
                0,
                "overlap"
            );
            l.lock().unwrap().push((status.clone(), "start"));
            tokio::time::sleep(Duration::from_secs(1)).await;
            l.lock().unwrap().push((status, "end"));
            f.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
            Ok::<_, std::io::Error>(completed)
        }
    };
    let (driver, _events, _audit) = driver_over(transport, DriverConfig::default());
    // One value per Graph call (G7): a second, under Graph's other spelling, is refused.
    let a = driver.call(call_id()).unwrap();
    let refused = driver.call(this_call_upper().parse().unwrap()).unwrap_err();
    assert!(
        matches!(refused, Error::AlreadyOpen { ref call_id } if call_id.as_str() == this_call_upper())
    );
    let Started::Recording(a) = driver.begin_recording(a).await.unwrap() else {
        panic!("recording")
    };
    // Dropped while recording: its `notRecording` (episode 1) goes out; a new value for the
    // call begins episode 2 while that report is in flight, and waits its turn.
    drop(a);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let b = driver.call(this_call_upper().parse().unwrap()).unwrap();
    let rb = driver.begin_recording(b).await.unwrap();
    assert!(matches!(rb, Started::Recording(_)));
    let log = log.lock().unwrap().clone();
    assert_eq!(
        log,
        [
            ("recording".to_owned(), "start"),
            ("recording".to_owned(), "end"),
            ("notRecording".to_owned(), "start"),
            ("notRecording".to_owned(), "end"),
            ("recording".to_owned(), "start"),
            ("recording".to_owned(), "end"),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn ended_call_revokes_and_sends_nothing_more() {
    let (driver, mut events, audit, transport) = scripted_driver(
        vec![Step::completed(), Step::completed()],
        DriverConfig::default(),
    );
    let call = recording(&driver).await;
    let handle = call.retention_handle().unwrap();
    let ended = driver.end(call);
    assert!(handle.is_revoked());
    drop(handle);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(transport.statuses(), ["recording"], "nothing after the end");
    // A new Call value for the ended call cannot send either.
    let err = driver
        .begin_recording(driver.call(call_id()).unwrap())
        .await
        .unwrap_err();
    assert!(matches!(err.error, Error::CallEnded));
    assert!(events.try_recv().is_err());
    assert_eq!(ended.call_id, call_id());
    verify(&audit.events()).unwrap();
}

#[tokio::test(start_paused = true)]
async fn dropped_recording_call_revokes_then_reports_not_recording() {
    let (driver, mut events, audit, transport) = scripted_driver(
        vec![Step::completed(), Step::completed()],
        DriverConfig::default(),
    );
    let call = recording(&driver).await;
    let handle = call.retention_handle().unwrap();
    drop(call);
    assert!(
        handle.is_revoked(),
        "revoked at once, before anything is sent"
    );
    // Revocation is final (G8): the handle still exists but cannot write, so the report need
    // not wait for it.
    let mut writer = RetentionWriter::new(handle, Vec::new());
    assert!(std::io::Write::write_all(&mut writer, b"frame").is_err());
    let Some(DriverEvent::OrphanReported {
        call_id: id,
        acknowledged,
    }) = events.recv().await
    else {
        panic!("the orphan report must be surfaced")
    };
    assert_eq!(id, call_id());
    assert!(acknowledged);
    assert_eq!(transport.statuses(), ["recording", "notRecording"]);
    drop(writer);
    verify(&audit.events()).unwrap();
}

#[tokio::test(start_paused = true)]
async fn dropped_recording_call_with_stuck_media_reports_after_revoking() {
    let (driver, mut events, audit, transport) = scripted_driver(
        vec![Step::completed(), Step::completed()],
        DriverConfig::default().with_drain_deadline(Duration::from_secs(2)),
    );
    let call = recording(&driver).await;
    let stuck = call.retention_handle().unwrap();
    // The usual way to get here: `?` on a stop whose drain timed out drops the call.
    let Err(recording_status::StopError::StillRecording { call, .. }) =
        driver.stop_recording(call).await
    else {
        panic!("the drain must time out")
    };
    assert_eq!(
        transport.statuses(),
        ["recording"],
        "nothing while media is alive"
    );
    drop(call);
    let Some(DriverEvent::OrphanReported { acknowledged, .. }) = events.recv().await else {
        panic!("the orphan must be reported once revoked")
    };
    assert!(acknowledged);
    assert!(stuck.is_revoked());
    let mut writer = RetentionWriter::new(stuck, Vec::new());
    assert!(
        std::io::Write::write_all(&mut writer, b"frame").is_err(),
        "a revoked capability never writes again"
    );
    assert_eq!(transport.statuses(), ["recording", "notRecording"]);
    drop(writer);
    verify(&audit.events()).unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_cancelled_wait_still_surfaces_a_late_completion() {
    let (driver, mut events, _audit, _t) = scripted_driver(
        vec![Step::running(), Step::completed()],
        DriverConfig::default(),
    );
    let waiting = driver.begin_recording(driver.call(call_id()).unwrap());
    assert!(
        tokio::time::timeout(Duration::from_secs(1), waiting)
            .await
            .is_err(),
        "still pending"
    );
    let d = driver
        .hub()
        .deliver(
            &proof(),
            &graph_notification(&this_call_upper(), OP_UPPER, "completed"),
        )
        .unwrap();
    assert_eq!(d.late, 1);
    assert!(matches!(
        events.recv().await,
        Some(DriverEvent::LateCompletion(_))
    ));
}

#[tokio::test(start_paused = true)]
async fn a_completion_after_an_ambiguous_failure_is_surfaced() {
    let (driver, mut events, _audit, transport) = scripted_driver(
        vec![Step::graph_error(504, "GatewayTimeout"), Step::completed()],
        DriverConfig::default(),
    );
    let call = failed(&driver, "the script must fail the start").await;
    assert!(call.reason().is_unknown_outcome());
    // Graph applied the `recording` after all and tells the webhook.
    let context = transport.bodies()[0]["clientContext"]
        .as_str()
        .unwrap()
        .to_owned();
    let body = notifications([operation_entry(
        &this_call_upper(),
        OP_UPPER,
        Some(&context),
        "completed",
    )]);
    let d = driver.hub().deliver(&proof(), &body).unwrap();
    assert_eq!(d.late, 1);
    let Some(DriverEvent::LateCompletion(late)) = events.recv().await else {
        panic!()
    };
    assert_eq!(late.client_context, context);
}

#[tokio::test(start_paused = true)]
async fn a_completion_routed_at_the_deadline_is_not_lost() {
    for _ in 0..20 {
        let config = DriverConfig::default().with_pending_deadline(Duration::from_secs(5));
        let (driver, mut events, _a, _t) =
            scripted_driver(vec![Step::running(), Step::completed()], config);
        let hub = driver.hub().clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(5)).await;
            hub.deliver(
                &proof(),
                &graph_notification(&this_call_upper(), OP_UPPER, "completed"),
            )
            .unwrap();
        });
        match driver
            .begin_recording(driver.call(call_id()).unwrap())
            .await
            .unwrap()
        {
            Started::Recording(call) => drop(driver.end(call)),
            Started::Failed(_) => assert!(
                matches!(events.recv().await, Some(DriverEvent::LateCompletion(_))),
                "a completion at the deadline must either record or be surfaced"
            ),
            other => panic!("{other:?}"),
        }
    }
}

#[tokio::test(start_paused = true)]
async fn stop_waits_for_media_tasks_under_the_drain_deadline() {
    let (driver, _e, audit, transport) = scripted_driver(
        vec![Step::completed(), Step::completed()],
        DriverConfig::default().with_drain_deadline(Duration::from_secs(3)),
    );
    let call = recording(&driver).await;
    let handle = call.retention_handle().unwrap();
    let media = tokio::spawn(async move {
        handle.stopping().await;
        tokio::time::sleep(Duration::from_secs(1)).await; // flush
        drop(handle);
    });
    let call = driver.stop_recording(call).await.unwrap();
    media.await.unwrap();
    assert_eq!(transport.statuses(), ["recording", "notRecording"]);
    drop(call);
    verify(&audit.events()).unwrap();
}

// -- One Graph call, one truth (G7) and updates that agree with their request ------------------

/// The orphan `notRecording` of a dropped recording call is not sent once a new value of the
/// same call has begun recording: Graph would show not-recording while the new episode's media
/// is persisted (G7). The report is cancelled, audited and surfaced instead.
#[tokio::test(start_paused = true)]
async fn an_orphan_report_is_never_sent_once_a_new_episode_began() {
    let (driver, mut events, audit, transport) = scripted_driver(
        vec![Step::completed(), Step::completed(), Step::completed()],
        DriverConfig::default(),
    );
    let old = recording(&driver).await;
    let old_episode = old.episode();
    let old_handle = old.retention_handle().unwrap();
    drop(old); // revoked; its report is queued but has not run yet
    let new = recording(&driver).await; // a new value begins a later episode first
    let new_episode = new.episode();
    assert!(new_episode > old_episode);
    let new_handle = new.retention_handle().unwrap();
    drop(old_handle);
    let Some(DriverEvent::OrphanNotReported { reason, .. }) = events.recv().await else {
        panic!("the cancelled orphan report must be surfaced")
    };
    assert!(reason.contains("superseded"), "{reason}");
    assert_eq!(transport.statuses(), ["recording", "recording"]);
    assert!(audit.events().iter().any(|e| matches!(
        e.kind,
        AuditKind::ReportSuperseded {
            episode,
            current_episode,
            ..
        } if (episode, current_episode) == (old_episode, new_episode)
    )));
    // The new episode is untouched: it still writes, and stops normally.
    assert!(!new_handle.is_revoked());
    drop(new_handle);
    drop(driver.stop_recording(new).await.unwrap());
    assert_eq!(
        transport.statuses(),
        ["recording", "recording", "notRecording"]
    );
    verify(&audit.events()).unwrap();
}

/// Logs and the trail number episodes by one sequence, shared by every call of the process,
/// and say so; the auditor's summary counts each call's own. Here another call takes an
/// episode first, so the call's episodes 1 and 2 are later numbers of the sequence: the
/// superseded report's log line names them `episode_seq` and `current_episode_seq`, never a
/// bare `episode` that would read as the call's own number.
#[tokio::test(start_paused = true)]
async fn logs_name_the_registry_episode_sequence_and_the_summary_counts_per_call() {
    use crate::support::logs::Logs;
    use recording_status::audit::summary;

    let (logs, _guard) = Logs::capture();
    let (driver, mut events, audit, _transport) =
        scripted_driver(vec![Step::completed(); 4], DriverConfig::default());
    let other = driver.call(other_call().parse().unwrap()).unwrap();
    let Started::Recording(other) = driver.begin_recording(other).await.unwrap() else {
        panic!("recording")
    };
    let old = recording(&driver).await;
    let (first, old_episode) = (other.episode(), old.episode());
    drop(old); // its report of the old episode is queued
    let new = recording(&driver).await; // a later episode begins first
    let new_episode = new.episode();
    assert!(first < old_episode && old_episode < new_episode);
    let Some(DriverEvent::OrphanNotReported { .. }) = events.recv().await else {
        panic!("the superseded report is surfaced")
    };

    let lines = logs.saying("superseded");
    assert_eq!(lines.len(), 1, "{lines:?}");
    let line = &lines[0];
    let (old_seq, new_seq) = (old_episode.to_string(), new_episode.to_string());
    assert_eq!(
        line.field("episode_seq"),
        Some(old_seq.as_str()),
        "{line:?}"
    );
    assert_eq!(
        line.field("current_episode_seq"),
        Some(new_seq.as_str()),
        "{line:?}"
    );
    assert_eq!(line.field("episode"), None, "{line:?}");

    let trail = audit.events();
    let requested: Vec<_> = trail
        .iter()
        .filter(|e| e.call_id == this_call_key())
        .filter_map(|e| match &e.kind {
            AuditKind::Transition { reason, .. } if reason.starts_with("recording requested") => {
                Some(reason.as_str())
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        requested,
        [
            format!("recording requested (registry episode {old_episode})"),
            format!("recording requested (registry episode {new_episode})")
        ]
    );
    let calls = summary(&trail);
    let this = calls.iter().find(|c| c.call_id == this_call_key()).unwrap();
    assert_eq!(this.episodes, 2, "counted per call");
    drop((driver.end(new), driver.end(other)));
}

/// An orphan report throttled with `Retry-After` keeps the call's turn through its retries. A
/// begin marks its episode before it waits for the turn, so that the report's next attempt is
/// superseded instead of sent, and the begin does not wait out the report's retries (with
/// repeated 429s, that would be many seconds). Here, a retried report would take the scripted
/// `completed` meant for the begin, and the statuses would show a second `notRecording`.
#[tokio::test(start_paused = true)]
async fn a_begin_supersedes_a_throttled_orphan_report_instead_of_waiting_out_its_retries() {
    let throttled = Step::Respond {
        status: 429,
        headers: vec![("Retry-After".into(), "5".into())],
        body: br#"{"error":{"code":"TooManyRequests","message":"scripted"}}"#.to_vec(),
    };
    // The first episode's `recording`; its orphan `notRecording`, throttled; then whatever
    // comes next is completed.
    let steps = vec![
        Step::completed(),
        throttled,
        Step::completed(),
        Step::completed(),
    ];
    let (driver, mut events, audit, transport) = scripted_driver(steps, DriverConfig::default());
    drop(recording(&driver).await); // revoked; its report goes out and is throttled
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(transport.statuses(), ["recording", "notRecording"]);
    let start = tokio::time::Instant::now();
    let new = recording(&driver).await;
    assert!(
        start.elapsed() <= Duration::from_secs(5),
        "the begin waited {:?} for the earlier episode's report",
        start.elapsed()
    );
    // The report's retry was not sent: the new episode's request was.
    assert_eq!(
        transport.statuses(),
        ["recording", "notRecording", "recording"]
    );
    let Some(DriverEvent::OrphanNotReported { reason, .. }) = events.recv().await else {
        panic!("the superseded orphan report must be surfaced")
    };
    assert!(reason.contains("superseded"), "{reason}");
    drop(driver.stop_recording(new).await.unwrap());
    verify(&audit.events()).unwrap();
}

/// A bot that retried after an unknown outcome and is recording again may still call
/// `reconcile` for the first attempt's late completion: nothing is sent, since a `notRecording`
/// would go out while two capabilities of the new episode are alive (G2, G7).
#[tokio::test(start_paused = true)]
async fn reconcile_sends_nothing_once_a_later_episode_began() {
    let (driver, mut events, audit, transport) = scripted_driver(
        vec![
            Step::running(),
            Step::completed(),
            Step::completed(),
            Step::completed(),
        ],
        DriverConfig::default(),
    );
    let call = failed(&driver, "no notification within the deadline must fail").await;
    assert!(call.reason().is_unknown_outcome());
    let first_episode = begun_episodes(&audit.events(), &this_call_key())[0];
    // The bot retries, as the docs allow, and records again.
    let Started::Recording(call) = driver.begin_recording(call).await.unwrap() else {
        panic!("the retry is acknowledged")
    };
    let (h1, h2) = (
        call.retention_handle().unwrap(),
        call.retention_handle().unwrap(),
    );
    // The first attempt's completion arrives late.
    let d = driver
        .hub()
        .deliver(
            &proof(),
            &graph_notification(&this_call_upper(), OP_UPPER, "completed"),
        )
        .unwrap();
    assert_eq!(d.late, 1);
    let Some(DriverEvent::LateCompletion(late)) = events.recv().await else {
        panic!("late completion must be surfaced")
    };
    assert_eq!(late.episode, first_episode);
    let err = driver
        .reconcile(&late, EndStatus::NotRecording)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Superseded {
                episode,
                current,
                ..
            } if episode == first_episode && current > first_episode
        ),
        "{err}"
    );
    assert!(err.to_string().contains("superseded"), "{err}");
    assert_eq!(transport.statuses(), ["recording", "failed", "recording"]);
    assert!(!h1.is_revoked() && !h2.is_revoked());
    drop((h1, h2));
    drop(driver.stop_recording(call).await.unwrap());
    verify(&audit.events()).unwrap();
}

/// A reconciliation of the current episode still goes out.
#[tokio::test(start_paused = true)]
async fn reconcile_of_the_current_episode_is_sent() {
    let (driver, mut events, audit, transport) = scripted_driver(
        vec![Step::running(), Step::completed(), Step::completed()],
        DriverConfig::default(),
    );
    let call = failed(&driver, "deadline").await;
    driver
        .hub()
        .deliver(
            &proof(),
            &graph_notification(&this_call_upper(), OP_UPPER, "completed"),
        )
        .unwrap();
    let Some(DriverEvent::LateCompletion(late)) = events.recv().await else {
        panic!("late completion must be surfaced")
    };
    driver.reconcile(&late, EndStatus::Failed).await.unwrap();
    assert_eq!(transport.statuses(), ["recording", "failed", "failed"]);
    drop(call);
    verify(&audit.events()).unwrap();
}

/// A `completed` update of operation [`OP_UPPER`] whose entry names no call: no `resource`,
/// no `resourceUrl`, the operation's `id` in its data.
fn update_without_call_id(context: Option<&str>) -> Vec<u8> {
    let mut entry = operation_entry(&this_call_upper(), OP_UPPER, context, "completed");
    let entry = entry.as_object_mut().unwrap();
    entry.remove("resourceUrl");
    entry["resourceData"]["id"] = OP_UPPER.into();
    notifications([serde_json::Value::Object(entry.clone())])
}

/// An update whose entry names no call settles a pending recording only by its
/// `clientContext`, never by operation id alone: an operation id is unique within a call, and
/// without the call there is nothing to check it against.
#[tokio::test(start_paused = true)]
async fn an_update_without_a_call_id_settles_only_by_client_context() {
    let (driver, _events, audit, transport) =
        scripted_driver(vec![Step::running()], DriverConfig::default());
    let d2 = driver.clone();
    let waiting = tokio::spawn(async move { recording(&d2).await });
    tokio::time::sleep(Duration::from_secs(1)).await;
    let d = driver
        .hub()
        .deliver(&proof(), &update_without_call_id(None))
        .unwrap();
    assert_eq!(
        d.routed, 0,
        "an operation id alone cannot settle without a call id"
    );
    let context = transport.bodies()[0]["clientContext"]
        .as_str()
        .unwrap()
        .to_owned();
    let d = driver
        .hub()
        .deliver(&proof(), &update_without_call_id(Some(&context)))
        .unwrap();
    assert_eq!(d.routed, 1);
    let call = waiting.await.unwrap();
    drop(driver.end(call));
    verify(&audit.events()).unwrap();
}

/// The hub does not route an update carrying the request's operation id with another request's
/// `clientContext`: it audits the contradiction and ignores the update.
#[tokio::test(start_paused = true)]
async fn a_contradicting_update_is_audited_and_ignored_by_the_hub() {
    let (driver, _events, audit, _transport) =
        scripted_driver(vec![Step::running()], DriverConfig::default());
    let d2 = driver.clone();
    let waiting =
        tokio::spawn(async move { d2.begin_recording(d2.call(call_id()).unwrap()).await });
    tokio::time::sleep(Duration::from_secs(1)).await;
    let forged = notifications([operation_entry(
        &this_call_upper(),
        OP_UPPER,
        Some("another-request"),
        "completed",
    )]);
    let d = driver.hub().deliver(&proof(), &forged).unwrap();
    assert_eq!((d.routed, d.held, d.ignored), (0, 0, 1));
    assert!(audit.events().iter().any(|e| matches!(
        &e.kind,
        AuditKind::NotificationIgnored { reason, .. } if reason.contains("contradict")
    )));
    // Nothing else comes: the deadline fails the call, it never records.
    let Started::Failed(call) = waiting.await.unwrap().unwrap() else {
        panic!("a contradicting update must not unlock recording")
    };
    assert!(matches!(call.reason(), Error::Abandoned));
    verify(&audit.events()).unwrap();
}

/// A transport error that echoes the bearer token keeps its message in the trail, without it.
#[tokio::test(start_paused = true)]
async fn a_transport_error_echoing_the_token_is_redacted_in_the_trail() {
    let transport = |_req: http::Request<Vec<u8>>| async {
        Err::<http::Response<Vec<u8>>, _>(std::io::Error::other(format!(
            "proxy refused `Authorization: {BEARER}`"
        )))
    };
    let (driver, _events, audit) = driver_over(transport, DriverConfig::default());
    let started = driver
        .begin_recording(driver.call(call_id()).unwrap())
        .await
        .unwrap();
    assert!(matches!(started, Started::Failed(_)));
    let json = as_json(&audit);
    assert_no_token(&json);
    assert!(
        json.contains("proxy refused `Authorization: Bearer [redacted]`"),
        "{json}"
    );
}

/// The hub reads call-state entries too: when Graph says a call terminated, its capabilities
/// are revoked at once (no media is persisted for a call that has ended), further reports are
/// blocked, and the bot is told, without parsing the body a second time.
#[tokio::test(start_paused = true)]
async fn a_call_graph_terminated_is_revoked_blocked_and_surfaced() {
    let (driver, mut events, audit, transport) = scripted_driver(
        vec![Step::completed(), Step::completed()],
        DriverConfig::default(),
    );
    let call = recording(&driver).await;
    let handle = call.retention_handle().unwrap();
    // api-reference/v1.0/api/call-delete.md "Notification - terminated", with Graph's
    // upper-case dash-less spelling of the id.
    let body = format!(
        r##"{{"@odata.type":"#microsoft.graph.commsNotifications","value":[{{
            "@odata.type":"#microsoft.graph.commsNotification","changeType":"deleted",
            "resourceUrl":"/communications/calls/{id}",
            "resourceData":{{"@odata.type":"#microsoft.graph.call","state":"terminated",
            "resultInfo":{{"@odata.type":"#microsoft.graph.resultInfo","code":"200",
            "subcode":"5001","message":"The conversation has ended."}}}}}}]}}"##,
        id = this_call_upper()
    );
    let d = driver.hub().deliver(&proof(), body.as_bytes()).unwrap();
    assert_eq!(d.terminated, 1);
    // Revoked at once: nothing more reaches storage.
    assert!(handle.is_revoked());
    let mut writer = RetentionWriter::new(handle, Vec::new());
    assert!(std::io::Write::write_all(&mut writer, b"frame").is_err());
    let Some(DriverEvent::CallTerminated {
        call_id: id,
        result_info,
    }) = events.recv().await
    else {
        panic!("the termination must be surfaced")
    };
    assert_eq!(id, call_id());
    let info = result_info.unwrap();
    assert_eq!((info.code, info.subcode), (Some(200), Some(5001)));
    // Blocked: stopping sends nothing, and the value is handed back to be ended.
    let Err(recording_status::StopError::StillRecording { call, error }) =
        driver.stop_recording(call).await
    else {
        panic!("an ended call is not stopped")
    };
    assert!(matches!(error, Error::CallEnded));
    drop(writer);
    drop(driver.end(*call));
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(transport.statuses(), ["recording"]);
    assert!(audit.events().iter().any(|e| matches!(
        e.kind,
        AuditKind::CallTerminated {
            code: Some(200),
            ..
        }
    )));
    verify(&audit.events()).unwrap();
}

/// A capability minted from a call Graph has terminated, borrowed or owned, is inert: it cannot
/// write and leaves nothing in the trail. Audited as a start after the revocation, it would
/// make the trail of a bot that never wrote fail `verify` (`RetentionOutsideRecording`).
#[tokio::test(start_paused = true)]
async fn capabilities_minted_after_graph_terminated_the_call_cannot_write_and_are_not_audited() {
    let (driver, _events, audit, _transport) = scripted_driver(
        vec![Step::completed(), Step::completed()],
        DriverConfig::default(),
    );
    let call = recording(&driver).await;
    graph_terminates_the_call(&driver);
    let before = audit.events().len();
    {
        let borrowed = call.retention().unwrap();
        let mut writer = RetentionWriter::new(borrowed, Vec::new());
        assert!(std::io::Write::write_all(&mut writer, b"frame").is_err());
        let handle = call.retention_handle().unwrap();
        assert!(handle.is_revoked());
        let mut writer = RetentionWriter::new(handle, Vec::new());
        assert!(std::io::Write::write_all(&mut writer, b"frame").is_err());
    }
    assert_eq!(
        audit.events().len(),
        before,
        "{:?}",
        &audit.events()[before..]
    );
    drop(driver.end(call));
    verify(&audit.events()).unwrap();
}

/// Against a silent Graph, a transition, its best-effort `failed` report included, ends within
/// its deadline plus `report_grace` (1 s), not after a second deadline of the report's own.
#[tokio::test(start_paused = true)]
async fn a_silent_graph_costs_the_deadline_plus_the_report_grace() {
    let silent = |_req: http::Request<Vec<u8>>| {
        std::future::pending::<Result<http::Response<Vec<u8>>, std::io::Error>>()
    };
    let config = DriverConfig::default()
        .with_retry(RetryPolicy::default().with_deadline(Duration::from_secs(3)))
        .with_pending_deadline(Duration::from_secs(3));
    let (driver, _events, _audit) = driver_over(silent, config);
    let start = tokio::time::Instant::now();
    let started = driver
        .begin_recording(driver.call(call_id()).unwrap())
        .await
        .unwrap();
    let Started::Failed(call) = started else {
        panic!("nothing was acknowledged")
    };
    assert!(matches!(call.reason(), Error::Timeout));
    assert_eq!(
        start.elapsed(),
        Duration::from_secs(4),
        "3 s deadline + 1 s grace"
    );
}

/// The same bound when Graph answers `running` and then never notifies nor answers the report.
#[tokio::test(start_paused = true)]
async fn a_pending_deadline_plus_the_report_grace() {
    let first = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let transport = move |req: http::Request<Vec<u8>>| {
        let first = first.swap(false, std::sync::atomic::Ordering::SeqCst);
        let running = answer(&req, "running");
        async move {
            if !first {
                std::future::pending::<()>().await;
            }
            Ok::<_, std::io::Error>(running)
        }
    };
    let (driver, _events, _audit) = driver_over(
        transport,
        DriverConfig::default().with_pending_deadline(Duration::from_secs(3)),
    );
    let start = tokio::time::Instant::now();
    let started = driver
        .begin_recording(driver.call(call_id()).unwrap())
        .await
        .unwrap();
    assert!(matches!(started, Started::Failed(_)));
    assert_eq!(
        start.elapsed(),
        Duration::from_secs(4),
        "3 s pending + 1 s grace"
    );
}

// -- What a dropped future leaves behind ------------------------------------------------------

/// `Driver::begin_recording` dropped while its request is in flight: the hub knows the request
/// from before it was sent, so Graph's later `completed` is surfaced as a `LateCompletion`
/// (G5), not parked and then forgotten.
#[tokio::test(start_paused = true)]
async fn a_begin_dropped_in_flight_still_surfaces_its_late_completion() {
    let contexts = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let seen = contexts.clone();
    let slow = move |req: http::Request<Vec<u8>>| {
        seen.lock()
            .unwrap()
            .push(sent(&req)["clientContext"].as_str().unwrap().to_owned());
        async {
            tokio::time::sleep(Duration::from_secs(3_600)).await;
            Err::<http::Response<Vec<u8>>, _>(std::io::Error::other("never"))
        }
    };
    let (driver, mut events, audit) = driver_over(slow, DriverConfig::default());
    let begin = driver.begin_recording(driver.call(call_id()).unwrap());
    assert!(
        tokio::time::timeout(Duration::from_secs(1), begin)
            .await
            .is_err()
    );
    assert!(
        !driver.calls().is_open(&call_id()),
        "the value went with the future"
    );
    // Graph applied it after all, and says so (with the request's clientContext, as its
    // operation notifications carry it).
    let context = contexts.lock().unwrap()[0].clone();
    let body = notifications([operation_entry(
        &this_call_upper(),
        OP_UPPER,
        Some(&context),
        "completed",
    )]);
    let d = driver.hub().deliver(&proof(), &body).unwrap();
    assert_eq!(d.late, 1);
    let Some(DriverEvent::LateCompletion(late)) = events.recv().await else {
        panic!("the late completion must be surfaced")
    };
    // The episode the dropped begin started (episodes are numbered across the process).
    let begun = begun_episodes(&audit.events(), &this_call_key());
    assert_eq!((late.call_id, late.episode), (call_id(), begun[0]));
    assert_eq!(late.client_context, context);
}

/// `Driver::stop_recording` dropped while draining: the call is revoked at once and its
/// `notRecording` is reported by the driver, once.
#[tokio::test(start_paused = true)]
async fn a_stop_dropped_while_draining_revokes_and_reports() {
    let (driver, mut events, audit, transport) = scripted_driver(
        vec![Step::completed(), Step::completed()],
        DriverConfig::default(),
    );
    let call = recording(&driver).await;
    let handle = call.retention_handle().unwrap();
    let stop = driver.stop_recording(call);
    assert!(
        tokio::time::timeout(Duration::from_secs(1), stop)
            .await
            .is_err(),
        "the drain waits for the handle"
    );
    assert!(handle.is_revoked());
    let Some(DriverEvent::OrphanReported { acknowledged, .. }) = events.recv().await else {
        panic!("the dropped call is reported")
    };
    assert!(acknowledged);
    assert_eq!(transport.statuses(), ["recording", "notRecording"]);
    drop(handle);
    verify(&audit.events()).unwrap();
}

/// `Driver::reconcile` dropped in flight changes nothing else: it can be called again.
#[tokio::test(start_paused = true)]
async fn a_reconcile_dropped_in_flight_can_be_repeated() {
    let answered = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = answered.clone();
    let transport = move |req: http::Request<Vec<u8>>| {
        let n = count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let answered = answer(&req, if n == 0 { "running" } else { "completed" });
        async move {
            // Requests: `recording` (running), the `failed` report at the deadline, then the
            // first reconciliation, which hangs; the others answer.
            if n == 2 {
                std::future::pending::<()>().await;
            }
            Ok::<_, std::io::Error>(answered)
        }
    };
    let (driver, mut events, _audit) = driver_over(
        transport,
        DriverConfig::default()
            .with_pending_deadline(Duration::from_secs(1))
            .with_retry(RetryPolicy::default().with_report_grace(Duration::from_secs(1))),
    );
    let Started::Failed(call) = driver
        .begin_recording(driver.call(call_id()).unwrap())
        .await
        .unwrap()
    else {
        panic!("deadline")
    };
    driver
        .hub()
        .deliver(
            &proof(),
            &graph_notification(&this_call_upper(), OP_UPPER, "completed"),
        )
        .unwrap();
    let Some(DriverEvent::LateCompletion(late)) = events.recv().await else {
        panic!("late")
    };
    let first = driver.reconcile(&late, EndStatus::NotRecording);
    assert!(
        tokio::time::timeout(Duration::from_secs(1), first)
            .await
            .is_err()
    );
    driver
        .reconcile(&late, EndStatus::NotRecording)
        .await
        .unwrap();
    drop(call);
}

/// Graph terminates the call while its `recording` request is pending, then a matching
/// `completed` arrives: the update for an ended call is ignored, and should the call be
/// acknowledged anyway, its retention is revoked at once, so it never records with a live
/// capability (G8). (A case the hub fuzz target reaches.)
#[tokio::test(start_paused = true)]
async fn a_call_terminated_while_pending_never_records_with_live_retention() {
    let (driver, _events, audit, _transport) = scripted_driver(
        vec![Step::running(), Step::completed()],
        DriverConfig::default(),
    );
    let d2 = driver.clone();
    let waiting =
        tokio::spawn(async move { d2.begin_recording(d2.call(call_id()).unwrap()).await });
    tokio::time::sleep(Duration::from_secs(1)).await;
    graph_terminates_the_call(&driver);
    let d = driver
        .hub()
        .deliver(
            &proof(),
            &graph_notification(&this_call_upper(), OP_UPPER, "completed"),
        )
        .unwrap();
    assert_eq!(
        (d.routed, d.ignored),
        (0, 1),
        "an ended call's update is ignored"
    );
    match waiting.await.unwrap().unwrap() {
        Started::Failed(_) => {}
        Started::Recording(c) => {
            let handle = c.retention_handle().unwrap();
            let mut w = RetentionWriter::new(handle, Vec::new());
            assert!(std::io::Write::write_all(&mut w, b"x").is_err(), "revoked");
        }
        other => panic!("{other:?}"),
    }
    verify(&audit.events()).unwrap();
}

/// A driver dropped after its calls ended holds nothing: its registry, hub and audit sink are
/// freed with it (a long-running bot that builds a driver per tenant or per restart of a worker
/// must not leak one per build).
#[tokio::test(start_paused = true)]
async fn dropping_the_driver_frees_its_registry_hub_and_sink() {
    let (driver, events, audit, _transport) = scripted_driver(
        vec![Step::completed(), Step::completed()],
        DriverConfig::default(),
    );
    let call = recording(&driver).await;
    drop(call.retention_handle().unwrap());
    let stopped = driver.stop_recording(call).await.unwrap();
    driver.end(stopped);
    drop(driver);
    drop(events);
    assert_eq!(
        Arc::strong_count(&audit),
        1,
        "the driver's parts still hold its audit sink after the driver was dropped"
    );
}

/// Two drivers in one process (one per worker, say) against the same Graph: a call the first
/// records cannot be opened through the second under either spelling, so the second can never
/// report `notRecording` while the first's media is written (G7). Once the first is done with
/// the call, the second records it.
#[tokio::test(start_paused = true)]
async fn a_second_driver_cannot_open_a_call_the_first_records() {
    let (first, _e1, audit_1, _t1) = scripted_driver(
        vec![Step::completed(), Step::completed()],
        DriverConfig::default(),
    );
    let (second, _e2, audit_2, transport_2) = scripted_driver(
        vec![Step::completed(), Step::completed()],
        DriverConfig::default(),
    );
    let call = recording(&first).await;
    let handle = call.retention_handle().unwrap();
    for spelling in [this_call(), this_call_upper()] {
        let refused = second.call(spelling.parse().unwrap());
        assert!(
            matches!(refused, Err(Error::AlreadyOpen { .. })),
            "{spelling}: {refused:?}"
        );
    }
    assert!(
        transport_2.statuses().is_empty(),
        "nothing sent by the second"
    );
    assert!(!handle.is_revoked());
    drop(handle);
    drop(first.stop_recording(call).await.unwrap());

    let again = second.call(this_call_upper().parse().unwrap()).unwrap();
    let Started::Recording(again) = second.begin_recording(again).await.unwrap() else {
        panic!("the second driver records once the first is done")
    };
    drop(second.stop_recording(again).await.unwrap());
    verify(&audit_1.events()).unwrap();
    verify(&audit_2.events()).unwrap();
}

/// The orphan report of a recording call dropped through one driver is superseded when
/// another driver of the process begins a new episode of the call first: episodes are one
/// sequence per call across the process, so the stale `notRecording` is never sent over the
/// new recording (G7).
#[tokio::test(start_paused = true)]
async fn an_orphan_report_is_superseded_by_another_drivers_new_episode() {
    let (first, mut events_1, audit_1, transport_1) =
        scripted_driver(vec![Step::completed(); 2], DriverConfig::default());
    let (second, _e2, audit_2, transport_2) =
        scripted_driver(vec![Step::completed(); 2], DriverConfig::default());
    let old = recording(&first).await;
    let old_handle = old.retention_handle().unwrap();
    drop(old); // revoked; its report waits for the handle's end
    let new = recording(&second).await;
    drop(old_handle);
    let Some(DriverEvent::OrphanNotReported { reason, .. }) = events_1.recv().await else {
        panic!("the first driver's stale report must be cancelled and surfaced")
    };
    assert!(reason.contains("superseded"), "{reason}");
    assert_eq!(transport_1.statuses(), ["recording"]);
    assert!(audit_1.events().iter().any(|e| matches!(
        e.kind,
        AuditKind::ReportSuperseded { current_episode, .. } if current_episode == new.episode()
    )));
    drop(second.stop_recording(new).await.unwrap());
    assert_eq!(transport_2.statuses(), ["recording", "notRecording"]);
    verify(&audit_2.events()).unwrap();
}
