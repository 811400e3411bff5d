//! Starting, stopping and dropping the emulator.

use std::time::Duration;

use graph_emulator::{Behavior, Emulator, NotifyStyle, RecordingStatus};

use crate::support::*;

#[tokio::test]
async fn shutdown_and_drop_stop_the_server() -> TestResult {
    let emulator = Emulator::start().await?;
    let url = update_url(&emulator.base_url(), CALL);
    assert!(format!("{emulator:?}").contains("Emulator"));
    emulator.shutdown().await;
    assert!(
        send("POST", &url, GOOD_HEADERS, body("recording", "c"))
            .await
            .is_err()
    );

    let emulator = Emulator::start().await?;
    let url = update_url(&emulator.base_url(), CALL);
    drop(emulator);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        send("POST", &url, GOOD_HEADERS, body("recording", "c"))
            .await
            .is_err()
    );
    Ok(())
}

#[tokio::test]
async fn shutdown_cancels_pending_notifications() -> TestResult {
    let emulator = Emulator::start().await?;
    let mut hook = Webhook::start().await;
    emulator.set_callback_url(&hook.url);
    emulator.script_default([Behavior::Running {
        delay: Duration::from_millis(200),
        notify: NotifyStyle::default(),
    }]);
    assert_eq!(update(&emulator, CALL).await.json()["status"], "running");
    emulator.shutdown().await;
    hook.nothing_more().await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    hook.nothing_more().await;
    Ok(())
}

#[tokio::test]
async fn shutdown_ends_a_slow_answer_early() -> TestResult {
    let emulator = Emulator::start().await?;
    emulator.script_default([Behavior::Slow {
        delay: Duration::from_secs(60),
        then: Box::new(Behavior::Complete),
    }]);
    let url = update_url(&emulator.base_url(), CALL);
    let pending = tokio::spawn(async move {
        send("POST", &url, GOOD_HEADERS, body("recording", "c"))
            .await
            .map(|a| a.status)
            .map_err(|e| e.to_string())
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = std::time::Instant::now();
    emulator.shutdown().await;
    assert!(started.elapsed() < Duration::from_secs(5));
    // The request in progress was answered (the wait was cut short), or its connection closed.
    let answered = tokio::time::timeout(Duration::from_secs(5), pending).await??;
    assert!(matches!(answered, Ok(200) | Err(_)), "{answered:?}");
    Ok(())
}

#[tokio::test]
async fn start_on_a_chosen_address() -> TestResult {
    let probe = std::net::TcpListener::bind("127.0.0.1:0")?;
    let addr = probe.local_addr()?;
    drop(probe);
    let emulator = Emulator::start_on(addr).await?;
    assert_eq!(emulator.addr(), addr);
    assert_eq!(update(&emulator, CALL).await.status, 200);
    // The address is taken now.
    assert!(Emulator::start_on(addr).await.is_err());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_calls_keep_their_own_scripts() -> TestResult {
    let emulator = std::sync::Arc::new(Emulator::start().await?);
    emulator.script_default([Behavior::Forbidden8506, Behavior::Complete]);
    let mut tasks = Vec::new();
    for i in 0..20 {
        let emulator = emulator.clone();
        tasks.push(tokio::spawn(async move {
            let call = format!("call-{i}");
            let first = update(&emulator, &call).await.status;
            let second = update(&emulator, &call).await.status;
            (first, second)
        }));
    }
    for task in tasks {
        assert_eq!(task.await?, (403, 200));
    }
    assert_eq!(emulator.requests().len(), 40);
    assert_eq!(
        emulator.status_of("call-7"),
        Some(RecordingStatus::Recording)
    );
    Ok(())
}
