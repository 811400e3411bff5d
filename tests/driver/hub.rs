//! The notification hub at scale (G10): nothing that matters is dropped silently, cancelled
//! waits leave no trace in the hub, and what the hub keeps from the network is capped. The
//! numbers are past any fixed-size table a hub might keep (4,096 entries), so that a table
//! that evicts silently, or a list scanned on every delivery, is caught.

use std::sync::Arc;
use std::time::Duration;

use recording_status::audit::{AuditKind, MemorySink, verify};
use recording_status::driver::{
    Driver, DriverConfig, DriverEvent, DriverEvents, ForgottenKind, Started,
};
use recording_status::transport::HttpRequest;

use crate::support::bodies::{
    answer_with_id, notifications, operation_entry, sent, terminated_entry,
};
use crate::support::driving::driver_over;
use crate::support::graph::proof;
use crate::support::ids::{
    numbered_call as call, numbered_call_of, numbered_operation as operation, upper,
};

/// A Graph that answers every `recording` request `running`, with the call's own operation id
/// (so that notifications correlate by call and operation id, as Graph's do), and every report
/// `completed`.
fn driver(
    config: DriverConfig,
) -> (
    Driver<impl recording_status::Transport>,
    DriverEvents,
    Arc<MemorySink>,
) {
    let transport = |req: HttpRequest| {
        let n = req
            .uri()
            .path()
            .split("/calls/")
            .nth(1)
            .and_then(|r| r.split('/').next())
            .and_then(numbered_call_of)
            .unwrap_or(0);
        let status = if sent(&req)["status"] == "recording" {
            "running"
        } else {
            "completed"
        };
        let answer = answer_with_id(&req, &operation(n), status);
        async move { Ok::<_, std::io::Error>(answer) }
    };
    driver_over(transport, config)
}

/// A `commsNotifications` body with one `completed` update per call in `calls`.
fn completions(calls: impl IntoIterator<Item = usize>) -> Vec<u8> {
    notifications(calls.into_iter().map(|n| {
        operation_entry(
            &upper(call(n).as_str()),
            &upper(&operation(n)),
            None,
            "completed",
        )
    }))
}

/// 6,000 completions arriving before their calls start waiting are all held and applied: a
/// call whose completion has arrived never ends `Failed` for want of room.
#[tokio::test(start_paused = true)]
async fn six_thousand_early_completions_are_all_held_and_applied() {
    const CALLS: usize = 6_000;
    let (driver, mut events, audit) = driver(DriverConfig::default());
    for chunk in (0..CALLS).collect::<Vec<_>>().chunks(1_000) {
        let d = driver
            .hub()
            .deliver(&proof(), &completions(chunk.iter().copied()))
            .unwrap();
        assert_eq!(d.held, chunk.len());
    }
    for n in 0..CALLS {
        let started = driver
            .begin_recording(driver.call(call(n)).unwrap())
            .await
            .unwrap();
        let Started::Recording(c) = started else {
            panic!("call {n}: its completion had arrived; got {started:?}")
        };
        drop(driver.end(c));
    }
    assert!(events.try_recv().is_err(), "nothing was forgotten");
    assert!(
        !audit
            .events()
            .iter()
            .any(|e| matches!(e.kind, AuditKind::HubForgot { .. }))
    );
    verify(&audit.events()).unwrap();
}

/// A cancelled wait leaves the hub (so that deliveries do not scan what nobody waits for), and
/// its request becomes abandoned, so a late completion still surfaces.
#[tokio::test(start_paused = true)]
async fn cancelled_waits_leave_the_hub_and_their_late_completions_surface() {
    const CALLS: usize = 2_000;
    let (driver, mut events, _audit) = driver(DriverConfig::default());
    for n in 0..CALLS {
        let begin = driver.begin_recording(driver.call(call(n)).unwrap());
        assert!(
            tokio::time::timeout(Duration::from_millis(10), begin)
                .await
                .is_err(),
            "still pending, then cancelled"
        );
    }
    assert_eq!(
        driver.hub().waiting(),
        0,
        "no cancelled wait stays in the hub"
    );
    let d = driver
        .hub()
        .deliver(&proof(), &completions([7, 1_999]))
        .unwrap();
    assert_eq!(d.late, 2);
    for want in [7, 1_999] {
        let Some(DriverEvent::LateCompletion(late)) = events.recv().await else {
            panic!("late completion must be surfaced")
        };
        assert_eq!(late.call_id, call(want));
    }
}

/// Abandoned requests the hub forgets, past its byte budget or its memory's age, are reported
/// for reconciliation, oldest first: silently evicted, their late completions would never
/// surface and nobody would reconcile Graph's indicator.
#[tokio::test(start_paused = true)]
async fn abandoned_requests_the_hub_forgets_are_reported_for_reconciliation() {
    let config = DriverConfig::default()
        .with_pending_deadline(Duration::from_secs(1))
        .with_memory(Duration::from_secs(60))
        .with_memory_bytes(4 * 1024);
    let (driver, mut events, audit) = driver(config);
    for n in 0..40 {
        let started = driver
            .begin_recording(driver.call(call(n)).unwrap())
            .await
            .unwrap();
        assert!(matches!(started, Started::Failed(_)));
    }
    let mut unresolved = Vec::new();
    while let Ok(event) = events.try_recv() {
        match event {
            DriverEvent::OutcomeUnknown(late) => unresolved.push(late),
            DriverEvent::Forgotten(f) => assert_ne!(f.kind, ForgottenKind::AbandonedRequest),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(
        !unresolved.is_empty(),
        "the byte budget forgot some requests"
    );
    assert!(driver.hub().remembered_bytes() <= 4 * 1024);
    // Oldest first, each with what reconciliation needs.
    assert_eq!(unresolved[0].call_id, call(0));
    driver
        .reconcile(
            &unresolved[0],
            recording_status::driver::EndStatus::NotRecording,
        )
        .await
        .unwrap();
    // And by age: a minute later everything left is reported too.
    let before = unresolved.len();
    tokio::time::sleep(Duration::from_secs(61)).await;
    driver.hub().deliver(&proof(), br#"{"value":[]}"#).unwrap();
    let mut total = before;
    while let Ok(DriverEvent::OutcomeUnknown(_)) = events.try_recv() {
        total += 1;
    }
    assert_eq!(total, 40, "every abandoned request is accounted for");
    let forgot = audit
        .events()
        .iter()
        .filter(
            |e| matches!(&e.kind, AuditKind::HubForgot { what, .. } if what == "abandoned_request"),
        )
        .count();
    assert_eq!(forgot, 40);
}

/// A duplicate for a request settled 5,000 settlements ago is still known as a duplicate, not
/// held as if new.
#[tokio::test(start_paused = true)]
async fn a_duplicate_after_five_thousand_settlements_is_still_a_duplicate() {
    const CALLS: usize = 5_000;
    let (driver, _events, _audit) = driver(DriverConfig::default());
    for n in 0..CALLS {
        let d2 = driver.clone();
        let waiting =
            tokio::spawn(
                async move { d2.begin_recording(d2.call(call(n)).unwrap()).await.unwrap() },
            );
        tokio::task::yield_now().await;
        tokio::task::yield_now().await;
        let d = driver.hub().deliver(&proof(), &completions([n])).unwrap();
        assert_eq!(d.routed, 1, "call {n}");
        let Started::Recording(c) = waiting.await.unwrap() else {
            panic!("call {n} records")
        };
        drop(driver.end(c));
    }
    let d = driver.hub().deliver(&proof(), &completions([0])).unwrap();
    assert_eq!(
        (d.held, d.ignored),
        (0, 1),
        "the first one's duplicate is recognised"
    );
}

/// Strings from the network are capped before the hub keeps them: held updates with 100 kB
/// `clientContext`s cost the hub a small bounded amount each, not their size.
#[tokio::test(start_paused = true)]
async fn oversized_strings_from_notifications_are_not_kept() {
    let (driver, _events, _audit) = driver(DriverConfig::default());
    let huge = "x".repeat(100_000);
    for round in 0..20 {
        let body = notifications((0..9).map(|i| {
            operation_entry(
                &upper(call(round * 10 + i).as_str()),
                &upper(&operation(round * 10 + i)),
                Some(&huge),
                "completed",
            )
        }));
        assert!(body.len() < 1 << 20);
        let d = driver.hub().deliver(&proof(), &body).unwrap();
        assert_eq!(d.held, 9);
    }
    // 180 held updates, each without its 100 kB context.
    let bytes = driver.hub().remembered_bytes();
    assert!(bytes < 180 * 2_048, "{bytes} bytes kept");
}

/// The hub's memory of ended calls is bounded by age too; forgetting one is audited and
/// surfaced, never silent.
#[tokio::test(start_paused = true)]
async fn an_ended_call_the_hub_forgets_is_reported() {
    let (driver, mut events, audit) =
        driver(DriverConfig::default().with_memory(Duration::from_secs(60)));
    let value = driver.call(call(3)).unwrap();
    drop(driver.end(value));
    tokio::time::sleep(Duration::from_secs(61)).await;
    driver.hub().deliver(&proof(), br#"{"value":[]}"#).unwrap();
    let Ok(DriverEvent::Forgotten(f)) = events.try_recv() else {
        panic!("forgetting an ended call must be surfaced")
    };
    assert_eq!(
        (f.kind, f.call_id),
        (ForgottenKind::EndedCall, Some(call(3)))
    );
    assert!(
        audit
            .events()
            .iter()
            .any(|e| matches!(&e.kind, AuditKind::HubForgot { what, .. } if what == "ended_call"))
    );
}

/// Ended calls count against the byte budget (`remembered_bytes`, bounded by `memory_bytes`),
/// not only against `DriverConfig::memory`'s age: past the budget the oldest is forgotten,
/// audited and surfaced, and the newest are still known to have ended.
#[tokio::test(start_paused = true)]
async fn ended_calls_count_against_the_byte_budget() {
    let (driver, mut events, audit) = driver(DriverConfig::default().with_memory_bytes(4_096));
    for n in 0..200 {
        let value = driver.call(call(n)).unwrap();
        drop(driver.end(value));
    }
    let bytes = driver.hub().remembered_bytes();
    assert!(
        bytes > 0 && bytes <= 4_096,
        "{bytes} bytes remembered for 200 ended calls under a 4,096-byte budget"
    );
    let mut forgotten = Vec::new();
    while let Ok(event) = events.try_recv() {
        if let DriverEvent::Forgotten(f) = event {
            assert_eq!(f.kind, ForgottenKind::EndedCall);
            assert_eq!(f.reason, "over budget");
            forgotten.push(f.call_id.unwrap());
        }
    }
    // The oldest go first, and every call not forgotten is still known to have ended.
    assert!(!forgotten.is_empty() && forgotten.len() < 200);
    assert_eq!(
        forgotten,
        (0..forgotten.len()).map(call).collect::<Vec<_>>()
    );
    let audited = audit
        .events()
        .iter()
        .filter(|e| matches!(&e.kind, AuditKind::HubForgot { what, .. } if what == "ended_call"))
        .count();
    assert_eq!(audited, forgotten.len());
    let kept = driver.call(call(199)).unwrap();
    assert!(
        driver.begin_recording(kept).await.is_err(),
        "the newest ended call is still remembered"
    );
}

/// Ended calls are the last thing the hub forgets for bytes: a flood of held updates must not
/// make it forget a call Graph terminated while its `recording` request was pending, or the
/// late `completed` would be routed to it and the call would enter `Recording` with live
/// retention after its termination (G8).
#[tokio::test(start_paused = true)]
async fn a_flood_of_held_updates_does_not_make_the_hub_forget_a_terminated_call() {
    let (driver, mut events, audit) = driver(DriverConfig::default().with_memory_bytes(4_096));
    let d2 = driver.clone();
    let waiting = tokio::spawn(async move { d2.begin_recording(d2.call(call(1)).unwrap()).await });
    tokio::time::sleep(Duration::from_secs(1)).await;
    let terminated = notifications([terminated_entry(&upper(call(1).as_str()))]);
    let d = driver.hub().deliver(&proof(), &terminated).unwrap();
    assert_eq!(d.terminated, 1);
    // Early updates for calls nobody waits for, far over the budget.
    for round in 0..10 {
        driver
            .hub()
            .deliver(
                &proof(),
                &completions(1_000 + round * 20..1_020 + round * 20),
            )
            .unwrap();
    }
    assert!(driver.hub().remembered_bytes() <= 4_096);
    let d = driver.hub().deliver(&proof(), &completions([1])).unwrap();
    assert_eq!(
        (d.routed, d.ignored),
        (0, 1),
        "an ended call's update is ignored"
    );
    match waiting.await.unwrap() {
        Ok(Started::Failed(_)) | Err(_) => {}
        Ok(Started::Recording(c)) => {
            let handle = c.retention_handle().unwrap();
            let mut writer = recording_status::RetentionWriter::new(handle, Vec::new());
            assert!(
                std::io::Write::write_all(&mut writer, b"x").is_err(),
                "a terminated call's retention must be revoked"
            );
        }
        Ok(other) => panic!("{other:?}"),
    }
    let mut forgot_ended = false;
    while let Ok(event) = events.try_recv() {
        if let DriverEvent::Forgotten(f) = event {
            forgot_ended |= f.kind == ForgottenKind::EndedCall;
        }
    }
    assert!(!forgot_ended, "held updates go before ended calls");
    verify(&audit.events()).unwrap();
}
