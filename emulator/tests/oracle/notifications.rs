//! Pending operations, and the `commsNotifications` that settle them, as a bot's webhook on
//! 127.0.0.1 receives them.

use std::time::Duration;

use graph_emulator::{Behavior, Emulator, NotifyStyle, RecordingStatus};
use http::StatusCode;
use serde_json::json;

use crate::support::*;

fn running(delay_ms: u64, notify: NotifyStyle) -> Behavior {
    Behavior::Running {
        delay: Duration::from_millis(delay_ms),
        notify,
    }
}

#[tokio::test]
async fn running_then_the_documented_notification() -> TestResult {
    let emulator = Emulator::start().await?;
    let mut hook = Webhook::start().await;
    emulator.set_callback_url(&hook.url);
    emulator.script(CALL, [running(50, NotifyStyle::default())]);
    let answer = update(&emulator, CALL).await;
    assert_eq!(answer.status, 200);
    let op = answer.json()["id"].as_str().unwrap().to_owned();
    assert_eq!(
        answer.json(),
        json!({
            "@odata.type": "#microsoft.graph.updateRecordingStatusOperation",
            "clientContext": "ctx-1",
            "id": op,
            "resultInfo": null,
            "status": "running",
        })
    );
    assert!(
        answer
            .header("location")
            .unwrap()
            .ends_with(&format!("/operations/{op}"))
    );
    assert_eq!(
        emulator.status_of(CALL),
        None,
        "not before the operation completes"
    );

    let (headers, v) = hook.next().await;
    assert_eq!(headers["content-type"], "application/json");
    assert!(
        headers.get("authorization").is_none(),
        "unsigned unless asked"
    );
    assert!(uuid::Uuid::parse_str(headers["client-request-id"].to_str()?).is_ok());
    // The "Notification - operation completed" example of call-playprompt.md, for this
    // operation: `deleted` on the operation's URL, `resultInfo` 200/0.
    let path = format!("/communications/calls/{CALL}/operations/{op}");
    assert_eq!(
        v,
        json!({
            "@odata.type": "#microsoft.graph.commsNotifications",
            "value": [{
                "@odata.type": "#microsoft.graph.commsNotification",
                "changeType": "deleted",
                "resourceUrl": path,
                "resourceData": {
                    "@odata.type": "#microsoft.graph.updateRecordingStatusOperation",
                    "@odata.id": path,
                    "resultInfo": {
                        "@odata.type": "#microsoft.graph.resultInfo",
                        "code": 200,
                        "subcode": 0,
                        "message": "Action completed successfully.",
                    },
                    "clientContext": "ctx-1",
                    "status": "completed",
                },
            }],
        })
    );
    hook.nothing_more().await;
    wait_for_sent(&emulator, 1).await;
    assert_eq!(emulator.notifications_refused(), 0);
    assert_eq!(emulator.status_of(CALL), Some(RecordingStatus::Recording));
    Ok(())
}

#[tokio::test]
async fn messy_notifications_duplicate_out_of_order_upper_pascal_legacy() -> TestResult {
    let emulator = Emulator::start().await?;
    let mut hook = Webhook::start().await;
    emulator.set_callback_url(hook.url.clone());
    emulator.script_default([running(
        20,
        NotifyStyle::messy().with_bearer("Bearer forged"),
    )]);
    let answer = update(&emulator, CALL).await;
    let op = answer.json()["id"].as_str().unwrap().to_owned();
    let op_upper = op.replace('-', "").to_uppercase();

    let (headers, first) = hook.next().await;
    assert_eq!(headers["authorization"], "Bearer forged");
    let (_, second) = hook.next().await;
    let (_, stale) = hook.next().await;
    hook.nothing_more().await;
    assert_eq!(first, second, "duplicate");
    let entry = &first["value"][0];
    assert_eq!(entry["changeType"], "deleted");
    assert_eq!(
        entry["resourceUrl"],
        format!("/communications/calls/{CALL_UPPER}/operations/{op_upper}")
    );
    assert_eq!(
        entry["resource"],
        format!("/app/calls/{CALL_UPPER}/operations/{op_upper}")
    );
    assert_eq!(entry["resourceData"]["@odata.id"], entry["resourceUrl"]);
    assert_eq!(entry["resourceData"]["status"], "Completed");
    let stale = &stale["value"][0];
    assert_eq!(stale["changeType"], "updated");
    assert_eq!(stale["resourceData"]["status"], "Running");
    assert!(stale["resourceData"]["resultInfo"].is_null());
    assert_eq!(stale["resourceUrl"], entry["resourceUrl"]);
    wait_for_sent(&emulator, 3).await;
    Ok(())
}

#[tokio::test]
async fn each_style_on_its_own() -> TestResult {
    let emulator = Emulator::start().await?;
    let mut hook = Webhook::start().await;
    emulator.set_callback_url(&hook.url);
    emulator.script(
        CALL,
        [
            running(10, NotifyStyle::default().with_upper_dashless_ids()),
            running(10, NotifyStyle::default().with_pascal_case()),
            running(10, NotifyStyle::default().with_legacy_resource()),
            running(10, NotifyStyle::default().with_duplicate()),
            running(10, NotifyStyle::default().with_out_of_order()),
        ],
    );
    let entry = |v: &serde_json::Value| v["value"][0].clone();

    let op = update(&emulator, CALL).await.json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, v) = hook.next().await;
    let op_upper = op.replace('-', "").to_uppercase();
    assert_eq!(
        entry(&v)["resourceUrl"],
        format!("/communications/calls/{CALL_UPPER}/operations/{op_upper}")
    );
    assert_eq!(entry(&v)["resourceData"]["status"], "completed");
    assert!(entry(&v).get("resource").is_none());

    update(&emulator, CALL).await;
    let (_, v) = hook.next().await;
    assert_eq!(entry(&v)["resourceData"]["status"], "Completed");
    assert!(entry(&v)["resourceUrl"].as_str().unwrap().contains(CALL));

    update(&emulator, CALL).await;
    let (_, v) = hook.next().await;
    assert_eq!(
        entry(&v)["resource"].as_str().unwrap(),
        entry(&v)["resourceUrl"]
            .as_str()
            .unwrap()
            .replace("/communications/", "/app/")
    );

    update(&emulator, CALL).await;
    let (_, a) = hook.next().await;
    let (_, b) = hook.next().await;
    assert_eq!(a, b);

    update(&emulator, CALL).await;
    let (_, last) = hook.next().await;
    let (_, stale) = hook.next().await;
    assert_eq!(entry(&last)["resourceData"]["status"], "completed");
    assert_eq!(entry(&stale)["resourceData"]["status"], "running");
    hook.nothing_more().await;
    Ok(())
}

#[tokio::test]
async fn running_then_fail_notifies_failed() -> TestResult {
    let emulator = Emulator::start().await?;
    let mut hook = Webhook::start().await;
    emulator.set_callback_url(&hook.url);
    emulator.script(
        CALL,
        [Behavior::RunningThenFail {
            delay: Duration::from_millis(20),
            code: 500,
            subcode: 8510,
        }],
    );
    assert_eq!(update(&emulator, CALL).await.json()["status"], "running");
    let (_, v) = hook.next().await;
    let entry = &v["value"][0];
    assert_eq!(entry["changeType"], "deleted");
    let data = &entry["resourceData"];
    assert_eq!(data["status"], "failed");
    assert_eq!(
        data["resultInfo"]["@odata.type"],
        "#microsoft.graph.resultInfo"
    );
    assert_eq!(data["resultInfo"]["code"], 500);
    assert_eq!(data["resultInfo"]["subcode"], 8510);
    assert!(data["resultInfo"]["message"].is_string());
    assert_eq!(data["clientContext"], "ctx-1");
    hook.nothing_more().await;
    assert_eq!(
        emulator.status_of(CALL),
        None,
        "a failed operation changes nothing"
    );
    Ok(())
}

#[tokio::test]
async fn a_request_without_client_context_is_notified_with_null() -> TestResult {
    let emulator = Emulator::start().await?;
    let mut hook = Webhook::start().await;
    emulator.set_callback_url(&hook.url);
    emulator.script(CALL, [running(20, NotifyStyle::default())]);
    let url = update_url(&emulator.base_url(), CALL);
    let answer = send(
        "POST",
        &url,
        GOOD_HEADERS,
        br#"{"status":"notRecording"}"#.to_vec(),
    )
    .await?;
    assert_eq!(answer.json()["status"], "running");
    assert!(answer.json()["clientContext"].is_null());
    let (_, v) = hook.next().await;
    let data = &v["value"][0]["resourceData"];
    assert_eq!(data["status"], "completed");
    assert!(data.as_object().unwrap().contains_key("clientContext"));
    assert!(data["clientContext"].is_null(), "{v}");
    assert_eq!(
        emulator.status_of(CALL),
        Some(RecordingStatus::NotRecording)
    );
    Ok(())
}

#[tokio::test]
async fn without_callback_url_notifications_are_dropped() -> TestResult {
    let emulator = Emulator::start().await?;
    emulator.script_default([running(10, NotifyStyle::default())]);
    assert_eq!(update(&emulator, CALL).await.status, 200);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(emulator.notifications_sent(), 0);
    // The operation still completed on Graph's side.
    assert_eq!(emulator.status_of(CALL), Some(RecordingStatus::Recording));
    Ok(())
}

#[tokio::test]
async fn refusals_by_the_webhook_are_counted() -> TestResult {
    let emulator = Emulator::start().await?;
    let mut forbidden = Webhook::answering(StatusCode::FORBIDDEN).await;
    emulator.set_callback_url(&forbidden.url);
    emulator.script_default([running(10, NotifyStyle::default())]);
    update(&emulator, CALL).await;
    forbidden.next().await;
    wait_for_sent(&emulator, 1).await;
    assert_eq!(emulator.notifications_refused(), 1);

    // Another error is sent, not refused; an unreachable webhook is neither.
    let mut broken = Webhook::answering(StatusCode::INTERNAL_SERVER_ERROR).await;
    emulator.set_callback_url(&broken.url);
    update(&emulator, OTHER).await;
    broken.next().await;
    wait_for_sent(&emulator, 2).await;
    assert_eq!(emulator.notifications_refused(), 1);

    let closed = std::net::TcpListener::bind("127.0.0.1:0")?;
    let url = format!("http://{}/api/calling", closed.local_addr()?);
    drop(closed);
    emulator.set_callback_url(url);
    update(&emulator, "third-call").await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(emulator.notifications_sent(), 2);
    assert_eq!(
        emulator.status_of("third-call"),
        Some(RecordingStatus::Recording)
    );
    Ok(())
}

/// Graph hangs up a call (a script step, or `Emulator::hang_up`): a `terminated` notification
/// in the documented shape, signed when signing is on, and every later request for the call is
/// answered `8522` "Call not found", as Graph answers for a call that is gone.
#[tokio::test]
async fn graph_hangs_up_a_call() -> TestResult {
    let emulator = Emulator::start().await?;
    let mut hook = Webhook::start().await;
    emulator.set_callback_url(&hook.url);
    emulator.sign_notifications_for("bot-app-id");
    emulator.script(
        CALL,
        [Behavior::CompleteThenHangUp {
            after: Duration::from_millis(20),
        }],
    );
    let answer = update(&emulator, CALL).await;
    assert_eq!(answer.status, 200);
    assert_eq!(emulator.status_of(CALL), Some(RecordingStatus::Recording));

    let (headers, v) = hook.next().await;
    assert!(
        headers["authorization"].to_str()?.starts_with("Bearer ey"),
        "signed"
    );
    let path = format!("/communications/calls/{CALL}");
    assert_eq!(
        v,
        json!({
            "@odata.type": "#microsoft.graph.commsNotifications",
            "value": [{
                "@odata.type": "#microsoft.graph.commsNotification",
                "changeType": "deleted",
                "resourceUrl": path,
                "resourceData": {
                    "@odata.type": "#microsoft.graph.call",
                    "@odata.id": path,
                    "state": "terminated",
                    "resultInfo": {
                        "@odata.type": "#microsoft.graph.resultInfo",
                        "code": 200,
                        "subcode": 5001,
                        "message": "The conversation has ended.",
                    },
                },
            }],
        })
    );

    let gone = update(&emulator, CALL).await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND.as_u16());
    assert_eq!(gone.error_code(), "8522");

    // `hang_up` does the same at will, for any call.
    emulator.hang_up(OTHER).await;
    let (_, v) = hook.next().await;
    assert_eq!(v["value"][0]["resourceData"]["state"], "terminated");
    assert_eq!(update(&emulator, OTHER).await.error_code(), "8522");
    Ok(())
}
