//! Stopping an instance (`Driver::shutdown`) over real HTTP against the Graph emulator, with
//! calls in every state: afterwards Graph shows no call `recording`, the trail verifies and is
//! complete, begins are refused, and a second or cancelled shutdown changes nothing.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use graph_emulator::{Behavior, Emulator, NotifyStyle, RecordingStatus as Accepted};
use recording_status::audit::{AuditKind, MemorySink, verify};
use recording_status::driver::{Driver, DriverConfig, RetryPolicy, ShutdownReport, Started};
use recording_status::transports::reqwest_0_13::ReqwestTransport;
use recording_status::{Call, Error, Recording, RetentionHandle, StopError};
use tokio::task::JoinSet;

use crate::support::graph::graph_over;
use crate::support::ids::unique_call;
use crate::support::loopback::hub_webhook;

type Bot = Driver<ReqwestTransport>;

/// A driver against `emulator`, its webhook wired to the hub, auditing to the returned sink.
async fn instance(emulator: &Emulator) -> (Bot, Arc<MemorySink>) {
    let audit = Arc::new(MemorySink::default());
    let graph = graph_over(ReqwestTransport::new().unwrap())
        .with_endpoint(recording_status::Endpoint::custom(&emulator.base_url()).unwrap());
    let (driver, _events) = Driver::new(
        graph,
        audit.clone(),
        DriverConfig::default()
            .with_pending_deadline(Duration::from_secs(60))
            .with_drain_deadline(Duration::from_secs(5))
            .with_retry(RetryPolicy::default().with_deadline(Duration::from_secs(10))),
    );
    let (webhook, _deliveries) = hub_webhook(driver.hub().clone()).await;
    emulator.set_callback_url(webhook);
    (driver, audit)
}

/// Begins recording on a fresh call that `emulator` answers with `behavior`.
async fn begin(driver: &Bot, emulator: &Emulator, behavior: Behavior) -> (String, Started) {
    let id = unique_call();
    emulator.script(&id, [behavior, Behavior::Complete]);
    let call = driver.call(id.parse().unwrap()).unwrap();
    let started = driver.begin_recording(call).await.unwrap();
    (id, started)
}

fn recording(started: Started) -> Call<Recording> {
    match started {
        Started::Recording(call) => call,
        other => panic!("expected Recording, got {other:?}"),
    }
}

/// A media task that persists until told to stop, then ends its capability.
fn obedient(handle: RetentionHandle) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        handle.stopping().await;
        drop(handle);
    })
}

/// Counts of each kind of call in the 1,000.
const IDLE: usize = 150;
const OBEDIENT: usize = 200;
const STUCK: usize = 100;
const BARE: usize = 150;
const PENDING_LONG: usize = 150;
const PENDING_SHORT: usize = 100;
const FAILED: usize = 100;
const STOPPED_BY_BOT: usize = 50;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shutdown_with_a_thousand_calls_in_every_state_leaves_nothing_recording() {
    let emulator = Emulator::start().await.unwrap();
    let (driver, audit) = instance(&emulator).await;
    let mut ids = Vec::new();

    // Opened and never begun.
    let mut idle = Vec::new();
    for _ in 0..IDLE {
        let id = unique_call();
        idle.push(driver.call(id.parse().unwrap()).unwrap());
        ids.push(id);
    }
    // Recording, each with a media task that ends when told to stop.
    let mut obedient_calls = Vec::new();
    let mut media = Vec::new();
    for _ in 0..OBEDIENT {
        let (id, started) = begin(&driver, &emulator, Behavior::Complete).await;
        let call = recording(started);
        media.push(obedient(call.retention_handle().unwrap()));
        obedient_calls.push(call);
        ids.push(id);
    }
    // Recording, each with a capability its media task never gives up: revoked at the deadline.
    let mut stuck = Vec::new();
    let mut stuck_calls = Vec::new();
    for _ in 0..STUCK {
        let (id, started) = begin(&driver, &emulator, Behavior::Complete).await;
        let call = recording(started);
        stuck.push(call.retention_handle().unwrap());
        stuck_calls.push(call);
        ids.push(id);
    }
    // Recording, no capability minted yet.
    let mut bare = Vec::new();
    for _ in 0..BARE {
        let (id, started) = begin(&driver, &emulator, Behavior::Complete).await;
        bare.push(recording(started));
        ids.push(id);
    }
    // Failed: Graph refused the operation.
    let mut failed = Vec::new();
    for _ in 0..FAILED {
        let (id, started) = begin(
            &driver,
            &emulator,
            Behavior::Failed {
                code: 500,
                subcode: 8510,
                message: "media unavailable".into(),
            },
        )
        .await;
        assert!(matches!(started, Started::Failed(_)), "{started:?}");
        failed.push(started);
        ids.push(id);
    }
    // Recording, stopped by the bot itself while the instance stops (the media ends later).
    let mut by_bot = Vec::new();
    for _ in 0..STOPPED_BY_BOT {
        let (id, started) = begin(&driver, &emulator, Behavior::Complete).await;
        by_bot.push(recording(started));
        ids.push(id);
    }
    // Pending: Graph answers `running`; some complete during the shutdown (they begin
    // recording then, and must be stopped too), the rest long after its deadline.
    let mut pending = JoinSet::new();
    for (count, delay) in [
        (PENDING_SHORT, Duration::from_millis(300)),
        (PENDING_LONG, Duration::from_secs(120)),
    ] {
        for _ in 0..count {
            let id = unique_call();
            emulator.script(
                &id,
                [
                    Behavior::Running {
                        delay,
                        notify: NotifyStyle::default(),
                    },
                    Behavior::Complete,
                ],
            );
            let call = driver.call(id.parse().unwrap()).unwrap();
            ids.push(id);
            let driver = driver.clone();
            pending.spawn(async move {
                let started = driver.begin_recording(call).await.unwrap();
                // A media task starts as soon as the call records.
                if let Started::Recording(call) = &started {
                    obedient(call.retention_handle().unwrap());
                }
                started
            });
        }
    }
    assert_eq!(ids.len(), 1000);
    // Every pending request reaches Graph before the shutdown starts (once it has, the begin
    // is no longer refused).
    let sent = OBEDIENT + STUCK + BARE + FAILED + STOPPED_BY_BOT + PENDING_SHORT + PENDING_LONG;
    while emulator.requests().len() < sent {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // The bot's own stops are under way (their stop signal raised) when the shutdown starts;
    // their media ends 200 ms later.
    let mut bot_stops = JoinSet::new();
    let signalled = Arc::new(AtomicUsize::new(0));
    for call in by_bot {
        let handle = call.retention_handle().unwrap();
        let signalled = signalled.clone();
        tokio::spawn(async move {
            handle.stopping().await;
            signalled.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(200)).await;
            drop(handle);
        });
        let driver = driver.clone();
        bot_stops.spawn(async move { driver.stop_recording(call).await });
    }
    while signalled.load(Ordering::SeqCst) < STOPPED_BY_BOT {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let report = driver.shutdown(Duration::from_secs(2)).await;

    // Every recording call was stopped by the shutdown, except those the bot stopped itself,
    // and every pending one that Graph had not completed was reported `failed`.
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(report.stopped, OBEDIENT + STUCK + BARE + PENDING_SHORT);
    assert_eq!(report.failed, PENDING_LONG);
    while let Some(stopped) = bot_stops.join_next().await {
        drop(stopped.unwrap().expect("the bot's own stop completes"));
    }
    let mut still_pending_at_the_end = 0;
    while let Some(started) = pending.join_next().await {
        match started.unwrap() {
            Started::Recording(call) => {
                let refused = driver.stop_recording(call).await.unwrap_err();
                assert!(
                    matches!(
                        refused,
                        StopError::StillRecording {
                            error: Error::ShuttingDown,
                            ..
                        }
                    ),
                    "{refused:?}"
                );
            }
            Started::Failed(call) => {
                assert!(call.reason().is_unknown_outcome(), "{:?}", call.reason());
                still_pending_at_the_end += 1;
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(still_pending_at_the_end, PENDING_LONG);
    for task in media {
        task.await.unwrap();
    }

    // Graph shows no call `recording`.
    for id in &ids {
        assert_ne!(emulator.status_of(id), Some(Accepted::Recording), "{id}");
    }
    // The capabilities nobody gave up can no longer write.
    assert!(stuck.iter().all(RetentionHandle::is_revoked));
    // The trail holds and leaves nothing open; the instance's stop is audited once, and no
    // request follows it (the values dropped since only revoke what is already revoked).
    let events = audit.events();
    let verified = verify(&events).unwrap();
    assert!(verified.is_complete(), "{:?}", verified.open);
    let stop = events
        .iter()
        .position(|e| matches!(e.kind, AuditKind::InstanceStopped { .. }))
        .unwrap();
    assert!(matches!(
        events[stop].kind,
        AuditKind::InstanceStopped {
            unreported: 0,
            unsettled: 0,
            ..
        }
    ));
    assert!(
        !events[stop..]
            .iter()
            .any(|e| matches!(e.kind, AuditKind::RequestSent { .. })),
        "a request was sent after the instance stopped"
    );

    // New begins are refused, sending nothing; a second shutdown reports the same.
    let requests = emulator.requests().len();
    let refused = driver
        .begin_recording(driver.call(unique_call().parse().unwrap()).unwrap())
        .await
        .unwrap_err();
    assert!(matches!(refused.error, Error::ShuttingDown), "{refused:?}");
    drop(refused.call);
    assert_eq!(emulator.requests().len(), requests);
    let again = driver.shutdown(Duration::from_secs(2)).await;
    assert_same(&report, &again);

    drop((idle, obedient_calls, stuck_calls, bare, failed, stuck));
    emulator.shutdown().await;
}

fn assert_same(a: &ShutdownReport, b: &ShutdownReport) {
    assert_eq!(
        (a.stopped, a.failed, a.unreported.len(), a.unsettled),
        (b.stopped, b.failed, b.unreported.len(), b.unsettled)
    );
}

/// Dropping the future of a shutdown does not stop it: the calls are still stopped, and the
/// next call of `shutdown` returns the same report.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_shutdown_goes_on_and_the_next_call_returns_its_report() {
    for round in 0..20 {
        let emulator = Emulator::start().await.unwrap();
        let (driver, audit) = instance(&emulator).await;
        let mut calls = Vec::new();
        let mut media = Vec::new();
        for _ in 0..20 {
            let (id, started) = begin(&driver, &emulator, Behavior::Complete).await;
            let call = recording(started);
            media.push(obedient(call.retention_handle().unwrap()));
            calls.push((id, call));
        }
        // Dropped at a different point of the shutdown each round.
        let cut = Duration::from_micros(50 * round);
        let _ = tokio::time::timeout(cut, driver.shutdown(Duration::from_secs(2))).await;
        let report = driver.shutdown(Duration::from_secs(2)).await;
        assert!(report.is_clean(), "round {round}: {report:?}");
        assert_eq!(report.stopped, 20, "round {round}");
        for (id, _) in &calls {
            assert_eq!(emulator.status_of(id), Some(Accepted::NotRecording), "{id}");
        }
        for task in media {
            task.await.unwrap();
        }
        let events = audit.events();
        assert!(verify(&events).unwrap().is_complete());
        let stops = events
            .iter()
            .filter(|e| matches!(e.kind, AuditKind::InstanceStopped { .. }))
            .count();
        assert_eq!(stops, 1, "round {round}: one shutdown, audited once");
        drop(calls);
        emulator.shutdown().await;
    }
}

/// A bot's stop and the shutdown racing for one call: exactly one of them stops it, and
/// Graph gets one `notRecording`, over many rounds and interleavings.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_is_stopped_once_when_the_bot_and_the_shutdown_race() {
    for round in 0..40 {
        let emulator = Emulator::start().await.unwrap();
        let (driver, audit) = instance(&emulator).await;
        let (id, started) = begin(&driver, &emulator, Behavior::Complete).await;
        let call = recording(started);
        // The media task takes a moment to end, so that the shutdown often finds the bot's
        // stop draining.
        let handle = call.retention_handle().unwrap();
        let media = tokio::spawn(async move {
            handle.stopping().await;
            tokio::time::sleep(Duration::from_millis(2)).await;
            drop(handle);
        });
        // Who starts first alternates; the other follows after a number of yields that grows
        // with the round.
        let yields = (round / 2) * 10;
        let stop =
            |driver: Bot, call| tokio::spawn(async move { driver.stop_recording(call).await });
        let shut = |driver: Bot| {
            tokio::spawn(async move { driver.shutdown(Duration::from_secs(2)).await })
        };
        let (bot, shutdown) = if round % 2 == 0 {
            let bot = stop(driver.clone(), call);
            for _ in 0..yields {
                tokio::task::yield_now().await;
            }
            (bot, shut(driver.clone()))
        } else {
            let shutdown = shut(driver.clone());
            for _ in 0..yields {
                tokio::task::yield_now().await;
            }
            (stop(driver.clone(), call), shutdown)
        };
        let report = shutdown.await.unwrap();
        let by_bot = match bot.await.unwrap() {
            Ok(stopped) => {
                drop(stopped);
                true
            }
            Err(StopError::StillRecording {
                error: Error::ShuttingDown,
                call,
            }) => {
                drop(call);
                false
            }
            Err(other) => panic!("round {round}: {other:?}"),
        };
        media.await.unwrap();
        assert_eq!(report.stopped, usize::from(!by_bot), "round {round}");
        assert!(report.is_clean(), "round {round}: {report:?}");
        let reports = emulator
            .requests()
            .iter()
            .filter(|r| r.status.as_deref() == Some("notRecording"))
            .count();
        assert_eq!(reports, 1, "round {round}: one `notRecording` for the call");
        assert_eq!(emulator.status_of(&id), Some(Accepted::NotRecording));
        assert!(verify(&audit.events()).unwrap().is_complete());
        emulator.shutdown().await;
    }
}

/// A recording call dropped just before the shutdown starts has its best-effort
/// `notRecording` queued on another task: the shutdown counts it from before that task runs,
/// so the report is never sent after the instance's stop is audited. Many rounds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_orphan_report_queued_as_the_shutdown_starts_comes_before_the_stop() {
    let emulator = Emulator::start().await.unwrap();
    for round in 0..30 {
        let (driver, audit) = instance(&emulator).await;
        let (_, started) = begin(&driver, &emulator, Behavior::Complete).await;
        drop(recording(started));
        let report = driver.shutdown(Duration::from_secs(2)).await;
        assert_eq!(report.unsettled, 0, "round {round}: {report:?}");
        let events = audit.events();
        let stop = events
            .iter()
            .position(|e| matches!(e.kind, AuditKind::InstanceStopped { .. }))
            .unwrap();
        assert!(
            events[..stop]
                .iter()
                .any(|e| matches!(e.kind, AuditKind::RequestSent { .. })),
            "round {round}"
        );
        let after: Vec<_> = events[stop..]
            .iter()
            .filter(|e| matches!(e.kind, AuditKind::RequestSent { .. }))
            .collect();
        assert!(after.is_empty(), "round {round}: {after:?}");
        assert!(verify(&events).unwrap().is_complete());
    }
    emulator.shutdown().await;
}
