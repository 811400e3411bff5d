//! The answers to valid requests, behaviour by behaviour, in the documented shapes.

use std::time::{Duration, Instant};

use axum::body::Body;
use graph_emulator::{Behavior, Emulator, MalformedBody, RecordingStatus, RetryAfter};
use serde_json::{Value, json};

use crate::support::*;

#[tokio::test]
async fn complete_is_the_documented_example() -> TestResult {
    let emulator = Emulator::start().await?;
    assert!(emulator.addr().ip().is_loopback());
    assert_eq!(
        emulator.base_url(),
        format!("http://{}/v1.0", emulator.addr())
    );
    let answer = update(&emulator, CALL).await;
    assert_eq!(answer.status, 200);
    let v = answer.json();
    let id = v["id"].as_str().unwrap().to_owned();
    assert!(uuid::Uuid::parse_str(&id).is_ok(), "{id}");
    // api-reference/v1.0/api/call-updaterecordingstatus.md, "Response".
    assert_eq!(
        v,
        json!({
            "@odata.type": "#microsoft.graph.updateRecordingStatusOperation",
            "clientContext": "ctx-1",
            "id": id,
            "resultInfo": null,
            "status": "completed",
        })
    );
    assert_eq!(
        answer.header("location"),
        Some(
            format!(
                "{}/communications/calls/{CALL}/operations/{id}",
                emulator.base_url()
            )
            .as_str()
        )
    );
    assert!(uuid::Uuid::parse_str(answer.header("request-id").unwrap()).is_ok());
    assert_eq!(answer.header("client-request-id"), Some(CLIENT_REQUEST_ID));
    assert_eq!(answer.header("content-type"), Some("application/json"));
    assert_eq!(emulator.status_of(CALL), Some(RecordingStatus::Recording));
    // Ids are matched in normalised form.
    assert_eq!(
        emulator.status_of(CALL_UPPER),
        Some(RecordingStatus::Recording)
    );
    assert_eq!(emulator.status_of(OTHER), None);

    // Each status Graph documents is accepted and becomes the call's status.
    let url = update_url(&emulator.base_url(), CALL);
    for (status, expected) in [
        ("notRecording", RecordingStatus::NotRecording),
        ("failed", RecordingStatus::Failed),
        ("recording", RecordingStatus::Recording),
    ] {
        let answer = send("POST", &url, GOOD_HEADERS, body(status, "c")).await?;
        assert_eq!(answer.json()["status"], "completed", "{status}");
        assert_eq!(emulator.status_of(CALL), Some(expected));
        assert_eq!(expected.as_str(), status);
    }

    let requests = emulator.requests();
    assert_eq!(requests.len(), 4);
    let first = &requests[0];
    assert_eq!(first.call_id, CALL);
    assert_eq!(first.version, "v1.0");
    assert_eq!(first.method, "POST");
    assert_eq!(
        first.path,
        format!("/v1.0/communications/calls/{CALL}/updateRecordingStatus")
    );
    assert_eq!(first.status.as_deref(), Some("recording"));
    assert_eq!(first.client_context.as_deref(), Some("ctx-1"));
    assert_eq!(first.client_request_id.as_deref(), Some(CLIENT_REQUEST_ID));
    assert!(first.authorized);
    assert_eq!(first.http_status, 200);
    assert!(first.at <= chrono::Utc::now());
    assert_no_token(&requests);
    Ok(())
}

#[tokio::test]
async fn beta_is_served_too() -> TestResult {
    let emulator = Emulator::start().await?;
    assert_eq!(
        emulator.beta_url(),
        format!("http://{}/beta", emulator.addr())
    );
    let answer = send(
        "POST",
        &update_url(&emulator.beta_url(), CALL),
        GOOD_HEADERS,
        body("recording", "c"),
    )
    .await?;
    assert_eq!(answer.status, 200);
    let id = answer.json()["id"].as_str().unwrap().to_owned();
    assert_eq!(
        answer.header("location"),
        Some(
            format!(
                "{}/communications/calls/{CALL}/operations/{id}",
                emulator.beta_url()
            )
            .as_str()
        )
    );
    assert_eq!(emulator.requests()[0].version, "beta");
    Ok(())
}

#[tokio::test]
async fn failed_operation() -> TestResult {
    let emulator = Emulator::start().await?;
    emulator.script_default([Behavior::Failed {
        code: 500,
        subcode: 8510,
        message: "media processor unavailable".to_owned(),
    }]);
    let answer = update(&emulator, CALL).await;
    assert_eq!(answer.status, 200);
    let v = answer.json();
    assert_eq!(v["status"], "failed");
    assert_eq!(
        v["resultInfo"],
        json!({
            "@odata.type": "#microsoft.graph.resultInfo",
            "code": 500,
            "subcode": 8510,
            "message": "media processor unavailable",
        })
    );
    assert!(answer.header("location").is_some());
    assert_eq!(
        emulator.status_of(CALL),
        None,
        "a failed update changes nothing"
    );
    Ok(())
}

#[tokio::test]
async fn throttling_with_both_retry_after_forms() -> TestResult {
    let emulator = Emulator::start().await?;
    emulator.script(
        CALL,
        [
            Behavior::Throttle {
                status: 429,
                retry_after: RetryAfter::Seconds(7),
            },
            Behavior::Throttle {
                status: 503,
                retry_after: RetryAfter::HttpDate(Duration::from_secs(30)),
            },
            Behavior::Throttle {
                status: 429,
                retry_after: RetryAfter::None,
            },
            Behavior::Throttle {
                status: 200,
                retry_after: RetryAfter::Seconds(1),
            },
        ],
    );
    let first = update(&emulator, CALL).await;
    assert_eq!(first.status, 429);
    assert_eq!(first.header("retry-after"), Some("7"));
    // concepts/errors.md: `activityLimitReached`, with the detailed `throttledRequest`.
    assert_eq!(first.error_code(), "activityLimitReached");
    assert_eq!(
        first.json()["error"]["innerError"]["code"],
        "throttledRequest"
    );
    assert_eq!(first.header("client-request-id"), Some(CLIENT_REQUEST_ID));

    let before = chrono::Utc::now();
    let second = update(&emulator, CALL).await;
    assert_eq!(second.status, 503);
    assert_eq!(second.error_code(), "serviceNotAvailable");
    let date = second.header("retry-after").unwrap();
    assert!(date.ends_with(" GMT"), "{date}");
    // An IMF-fixdate (RFC 9110), 30 s from now rounded up to a whole second.
    let at = chrono::DateTime::parse_from_rfc2822(&date.replace(" GMT", " +0000"))?;
    let wait = at.signed_duration_since(before).num_seconds();
    assert!((29..=31).contains(&wait), "{wait}");

    let third = update(&emulator, CALL).await;
    assert_eq!(third.status, 429);
    assert!(third.header("retry-after").is_none());
    // Not an error status: sent as 429.
    let fourth = update(&emulator, CALL).await;
    assert_eq!(fourth.status, 429);
    assert_eq!(fourth.header("retry-after"), Some("1"));
    assert_eq!(emulator.status_of(CALL), None);
    Ok(())
}

#[tokio::test]
async fn server_errors() -> TestResult {
    let emulator = Emulator::start().await?;
    emulator.script(
        CALL,
        [500, 502, 503, 504, 507, 404].map(|status| Behavior::ServerError { status }),
    );
    for (status, code) in [
        (500, "InternalServerError"),
        (502, "BadGateway"),
        (503, "serviceNotAvailable"),
        (504, "GatewayTimeout"),
        (507, "UnknownError"),
        // Not a 5xx: sent as 500.
        (500, "InternalServerError"),
    ] {
        let answer = update(&emulator, CALL).await;
        assert_eq!(answer.status, status);
        assert_eq!(answer.error_code(), code);
        assert!(answer.header("retry-after").is_none());
    }
    assert_eq!(emulator.status_of(CALL), None);
    let statuses: Vec<u16> = emulator.requests().iter().map(|r| r.http_status).collect();
    assert_eq!(statuses, [500, 502, 503, 504, 507, 500]);
    Ok(())
}

#[tokio::test]
async fn forbidden_8506() -> TestResult {
    let emulator = Emulator::start().await?;
    emulator.script_default([Behavior::Forbidden8506]);
    let answer = update(&emulator, CALL).await;
    assert_eq!(answer.status, 403);
    // Cloud communications' codes are numeric strings.
    assert_eq!(answer.error_code(), "8506");
    assert_eq!(
        answer.json()["error"]["message"],
        "API call not allowed for non-Compliance Recording call"
    );
    assert_eq!(emulator.status_of(CALL), None);
    Ok(())
}

#[tokio::test]
async fn malformed_bodies() -> TestResult {
    let emulator = Emulator::start().await?;
    emulator.script(
        CALL,
        [
            Behavior::Malformed(MalformedBody::Html),
            Behavior::Malformed(MalformedBody::TruncatedJson),
            Behavior::Malformed(MalformedBody::Empty),
        ],
    );
    let html = update(&emulator, CALL).await;
    assert_eq!(html.status, 200);
    assert!(
        html.header("content-type")
            .unwrap()
            .starts_with("text/html")
    );
    assert!(serde_json::from_slice::<Value>(&html.body).is_err());
    let truncated = update(&emulator, CALL).await;
    assert_eq!(truncated.header("content-type"), Some("application/json"));
    assert!(serde_json::from_slice::<Value>(&truncated.body).is_err());
    assert!(truncated.body.starts_with(b"{\"@odata.type\""));
    let empty = update(&emulator, CALL).await;
    assert_eq!(empty.status, 200);
    assert!(empty.body.is_empty());
    assert!(empty.header("content-type").is_none());
    assert_eq!(emulator.status_of(CALL), None);
    Ok(())
}

#[tokio::test]
async fn dropped_connection_gets_no_answer() -> TestResult {
    let emulator = Emulator::start().await?;
    emulator.script(CALL, [Behavior::DropConnection, Behavior::Complete]);
    let url = update_url(&emulator.base_url(), CALL);
    let error = send("POST", &url, GOOD_HEADERS, body("recording", "c"))
        .await
        .expect_err("no answer");
    // hyper: "connection closed before message completed" (or reset), not a connect error.
    let error = error
        .downcast_ref::<hyper_util::client::legacy::Error>()
        .expect("a client error");
    assert!(!error.is_connect(), "{error:?}");
    // The server lives on.
    assert_eq!(update(&emulator, CALL).await.status, 200);
    let requests = emulator.requests();
    assert_eq!(requests[0].http_status, 0);
    assert_eq!(requests[1].http_status, 200);
    Ok(())
}

#[tokio::test]
async fn truncated_body_is_an_incomplete_message() -> TestResult {
    let emulator = Emulator::start().await?;
    emulator.script(CALL, [Behavior::TruncatedBody, Behavior::Complete]);
    let request = http::Request::post(update_url(&emulator.base_url(), CALL))
        .header("authorization", "Bearer t")
        .header("content-type", "application/json")
        .body(Body::from(body("recording", "c")))?;
    let response = client().request(request).await?;
    assert_eq!(response.status(), 200);
    let promised: usize = response.headers()["content-length"].to_str()?.parse()?;
    let read = axum::body::to_bytes(Body::new(response.into_body()), 1 << 20).await;
    assert!(
        read.is_err(),
        "body of {promised} bytes arrived whole: {read:?}"
    );
    assert_eq!(update(&emulator, CALL).await.status, 200);
    Ok(())
}

#[tokio::test]
async fn foreign_location() -> TestResult {
    let emulator = Emulator::start().await?;
    emulator.script_default([Behavior::ForeignLocation]);
    let answer = update(&emulator, OTHER).await;
    assert_eq!(answer.json()["status"], "completed");
    let id = answer.json()["id"].as_str().unwrap().to_owned();
    assert_eq!(
        answer.header("location"),
        Some(
            format!("https://evil.example/v1.0/communications/calls/{OTHER}/operations/{id}")
                .as_str()
        )
    );
    assert_eq!(emulator.status_of(OTHER), Some(RecordingStatus::Recording));
    Ok(())
}

#[tokio::test]
async fn slow_answers_wait() -> TestResult {
    let emulator = Emulator::start().await?;
    emulator.script(
        CALL,
        [Behavior::Slow {
            delay: Duration::from_millis(150),
            then: Box::new(Behavior::Slow {
                delay: Duration::from_millis(150),
                then: Box::new(Behavior::Forbidden8506),
            }),
        }],
    );
    let started = Instant::now();
    let answer = update(&emulator, CALL).await;
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(answer.status, 403);
    assert_eq!(emulator.requests()[0].http_status, 403);
    Ok(())
}

#[tokio::test]
async fn per_call_scripts_and_the_default() -> TestResult {
    let emulator = Emulator::start().await?;
    emulator.script_default([Behavior::Forbidden8506]);
    // Scripted under Graph's notification form of the id; requested in the response form.
    emulator.script(
        CALL_UPPER,
        [
            Behavior::ServerError { status: 500 },
            Behavior::Complete,
            Behavior::Failed {
                code: 400,
                subcode: 1,
                message: "no".to_owned(),
            },
        ],
    );
    let statuses = |answer: Answer| (answer.status, answer.json()["status"].clone());
    assert_eq!(statuses(update(&emulator, CALL).await).0, 500);
    assert_eq!(
        statuses(update(&emulator, CALL).await),
        (200, "completed".into())
    );
    assert_eq!(
        statuses(update(&emulator, CALL).await),
        (200, "failed".into())
    );
    assert_eq!(
        statuses(update(&emulator, CALL).await),
        (200, "failed".into()),
        "the last behaviour repeats"
    );
    assert_eq!(update(&emulator, OTHER).await.status, 403);
    assert_eq!(update(&emulator, OTHER).await.status, 403);

    // Each unscripted call walks the default script on its own.
    emulator.script_default([Behavior::ServerError { status: 502 }, Behavior::Complete]);
    assert_eq!(update(&emulator, OTHER).await.status, 502);
    assert_eq!(update(&emulator, "third-call").await.status, 502);
    assert_eq!(update(&emulator, OTHER).await.status, 200);
    assert_eq!(update(&emulator, "third-call").await.status, 200);

    // An empty script hands the call back to the default; an empty default is `Complete`.
    emulator.script(CALL, []);
    emulator.script_default([]);
    assert_eq!(update(&emulator, CALL).await.json()["status"], "completed");
    Ok(())
}
