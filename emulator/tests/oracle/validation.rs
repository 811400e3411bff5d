//! Requests Graph refuses, refused as Graph documents it; and the ones it accepts, accepted.
//! Refused requests are recorded but consume no behaviour.

use graph_emulator::{Behavior, Emulator, MAX_BODY_BYTES, RecordingStatus};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::*;

/// A name, headers, a body, the expected status and error code.
type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], Vec<u8>, u16, &'a str);

#[tokio::test]
async fn refused_requests_are_graph_envelopes_and_consume_nothing() -> TestResult {
    let emulator = Emulator::start().await?;
    emulator.script(CALL, [Behavior::Forbidden8506, Behavior::Complete]);
    let url = update_url(&emulator.base_url(), CALL);
    let no_auth = &GOOD_HEADERS[1..];
    let wrong_type = &[GOOD_HEADERS[0], ("content-type", "text/plain")];
    let basic = &[("authorization", "Basic dXNlcjpwYXNz"), GOOD_HEADERS[1]];
    let empty_bearer = &[("authorization", "Bearer "), GOOD_HEADERS[1]];
    let ok = body("recording", "ctx");
    let raw = |s: &str| s.as_bytes().to_vec();
    let cases: Vec<Case<'_>> = vec![
        (
            "no auth",
            no_auth,
            ok.clone(),
            401,
            "InvalidAuthenticationToken",
        ),
        (
            "basic auth",
            basic,
            ok.clone(),
            401,
            "InvalidAuthenticationToken",
        ),
        (
            "empty bearer",
            empty_bearer,
            ok.clone(),
            401,
            "InvalidAuthenticationToken",
        ),
        (
            "wrong content type",
            wrong_type,
            ok.clone(),
            400,
            "BadRequest",
        ),
        (
            "no content type",
            &GOOD_HEADERS[..1],
            ok.clone(),
            400,
            "BadRequest",
        ),
        (
            "not json",
            GOOD_HEADERS,
            raw("{status: recording"),
            400,
            "BadRequest",
        ),
        ("empty body", GOOD_HEADERS, Vec::new(), 400, "BadRequest"),
        ("json array", GOOD_HEADERS, raw("[]"), 400, "BadRequest"),
        (
            "json string",
            GOOD_HEADERS,
            raw(r#""recording""#),
            400,
            "BadRequest",
        ),
        (
            "unknownFutureValue",
            GOOD_HEADERS,
            body("unknownFutureValue", "c"),
            400,
            "BadRequest",
        ),
        (
            "unknown",
            GOOD_HEADERS,
            body("unknown", "c"),
            400,
            "BadRequest",
        ),
        (
            "PascalCase status",
            GOOD_HEADERS,
            body("Recording", "c"),
            400,
            "BadRequest",
        ),
        (
            "no status",
            GOOD_HEADERS,
            raw(r#"{"clientContext":"c"}"#),
            400,
            "BadRequest",
        ),
        (
            "null status",
            GOOD_HEADERS,
            raw(r#"{"status":null}"#),
            400,
            "BadRequest",
        ),
        (
            "numeric status",
            GOOD_HEADERS,
            raw(r#"{"status":2}"#),
            400,
            "BadRequest",
        ),
        (
            "257 chars",
            GOOD_HEADERS,
            body("recording", &"x".repeat(257)),
            400,
            "BadRequest",
        ),
        (
            "numeric clientContext",
            GOOD_HEADERS,
            raw(r#"{"clientContext":7,"status":"recording"}"#),
            400,
            "BadRequest",
        ),
        (
            "object clientContext",
            GOOD_HEADERS,
            raw(r#"{"clientContext":{},"status":"recording"}"#),
            400,
            "BadRequest",
        ),
        (
            "too large",
            GOOD_HEADERS,
            vec![b' '; MAX_BODY_BYTES + 1],
            413,
            "RequestEntityTooLarge",
        ),
    ];
    let count = cases.len();
    for (name, headers, payload, status, code) in cases {
        let answer = send("POST", &url, headers, payload).await?;
        assert_eq!(answer.status, status, "{name}: {answer:?}");
        assert_eq!(answer.error_code(), code, "{name}");
    }
    // Without a client-request-id, Graph repeats its request-id.
    let answer = send(
        "POST",
        &url,
        &[("content-type", "application/json")],
        ok.clone(),
    )
    .await?;
    assert!(answer.header("request-id").is_some());
    assert_eq!(
        answer.header("client-request-id"),
        answer.header("request-id")
    );

    // Nothing was consumed: the script starts now.
    assert_eq!(update(&emulator, CALL).await.status, 403);
    assert_eq!(update(&emulator, CALL).await.status, 200);

    let requests = emulator.requests();
    assert_eq!(requests.len(), count + 3);
    assert!(!requests[0].authorized);
    assert!(requests[3].authorized);
    assert_eq!(requests[9].status.as_deref(), Some("unknownFutureValue"));
    assert_eq!(
        requests[15].client_context.as_deref().map(str::len),
        Some(257)
    );
    assert!(requests[16].client_context.is_none(), "not a string");
    assert_eq!(requests[count - 1].http_status, 413);
    assert!(requests[count].client_request_id.is_none());
    assert!(
        requests
            .iter()
            .all(|r| r.call_id == CALL && r.version == "v1.0")
    );
    assert_eq!(emulator.status_of(CALL), Some(RecordingStatus::Recording));
    assert_no_token(&requests);
    Ok(())
}

/// `clientContext` is documented as "Unique client context string. Max limit is 256 chars.",
/// and Graph's metadata does not require it: any string up to 256 characters is accepted, and
/// an absent or `null` one is answered with `null`.
#[tokio::test]
async fn every_documented_client_context_is_accepted() -> TestResult {
    let emulator = Emulator::start().await?;
    let url = update_url(&emulator.base_url(), CALL);
    for context in [
        String::new(),
        "~".repeat(256),
        "é".repeat(256),
        "café".to_owned(),
        "a\nb".to_owned(),
    ] {
        let answer = send("POST", &url, GOOD_HEADERS, body("recording", &context)).await?;
        assert_eq!(answer.status, 200, "{context:?}: {answer:?}");
        assert_eq!(answer.json()["clientContext"], context.as_str());
    }
    for payload in [
        r#"{"status":"recording"}"#,
        r#"{"clientContext":null,"status":"recording"}"#,
    ] {
        let answer = send("POST", &url, GOOD_HEADERS, payload.as_bytes().to_vec()).await?;
        assert_eq!(answer.status, 200, "{payload}");
        let v = answer.json();
        assert!(v["clientContext"].is_null(), "{v}");
        assert!(v.as_object().unwrap().contains_key("clientContext"), "{v}");
    }
    // Unknown members are ignored, as by Microsoft's SDKs.
    let extra = r#"{"clientContext":"c","status":"failed","note":1}"#;
    assert_eq!(
        send("POST", &url, GOOD_HEADERS, extra.as_bytes().to_vec())
            .await?
            .status,
        200
    );
    assert_eq!(emulator.status_of(CALL), Some(RecordingStatus::Failed));
    let requests = emulator.requests();
    assert_eq!(requests.len(), 8);
    assert!(requests[5].client_context.is_none());
    assert!(requests.iter().all(|r| r.http_status == 200));
    Ok(())
}

#[tokio::test]
async fn paths_methods_and_versions() -> TestResult {
    let emulator = Emulator::start().await?;
    let origin = format!("http://{}", emulator.addr());
    let ok = body("recording", "ctx");
    // An encoded slash decodes to two segments: refused, never routed to another resource.
    let answer = send(
        "POST",
        &format!("{origin}/v1.0/communications/calls/abc%2F..%2Fdef/updateRecordingStatus"),
        GOOD_HEADERS,
        ok.clone(),
    )
    .await?;
    assert_eq!(answer.status, 400);
    assert_eq!(answer.error_code(), "BadRequest");
    for id in ["%2E%2E", "a%20b", "a%3Fb", "a%23b", &"a".repeat(257)] {
        let answer = send(
            "POST",
            &update_url(&emulator.base_url(), id),
            GOOD_HEADERS,
            ok.clone(),
        )
        .await?;
        assert_eq!(answer.status, 400, "{id}");
    }
    // A literal slash is another path altogether.
    let answer = send(
        "POST",
        &format!("{origin}/v1.0/communications/calls/abc/def/updateRecordingStatus"),
        GOOD_HEADERS,
        ok.clone(),
    )
    .await?;
    assert_eq!(answer.status, 404);
    assert_eq!(answer.error_code(), "NotFound");
    for path in [
        "/v2.0/communications/calls/x/updateRecordingStatus",
        "/v1.0/app/calls/x/updateRecordingStatus",
        "/v1.0/communications/calls/x/operations/y",
        "/",
    ] {
        let answer = send("POST", &format!("{origin}{path}"), GOOD_HEADERS, ok.clone()).await?;
        assert_eq!(answer.status, 404, "{path}");
        assert_eq!(answer.error_code(), "NotFound", "{path}");
    }
    for method in ["GET", "PUT", "PATCH", "DELETE"] {
        let answer = send(
            method,
            &update_url(&emulator.base_url(), CALL),
            GOOD_HEADERS,
            Vec::new(),
        )
        .await?;
        assert_eq!(answer.status, 405, "{method}");
        assert_eq!(answer.error_code(), "MethodNotAllowed");
    }
    // Percent-encoded ids are decoded, and encoded again in `Location`.
    let answer = send(
        "POST",
        &update_url(&emulator.base_url(), "a%3Ab%40c"),
        GOOD_HEADERS,
        ok.clone(),
    )
    .await?;
    assert_eq!(answer.status, 200);
    assert!(
        answer
            .header("location")
            .unwrap()
            .contains("/communications/calls/a%3Ab%40c/operations/")
    );

    let requests = emulator.requests();
    assert_eq!(requests.len(), 16);
    assert_eq!(requests[0].call_id, "abc/../def");
    assert!(requests[0].path.contains("%2F"));
    assert_eq!(requests[6].call_id, "", "no route matched");
    assert_eq!(requests[11].method, "GET");
    assert_eq!(requests[15].call_id, "a:b@c");
    assert_eq!(
        emulator.status_of("a:b@c"),
        Some(RecordingStatus::Recording)
    );
    assert_eq!(emulator.status_of(CALL), None, "nothing consumed for it");
    Ok(())
}

/// A body over the bound is refused whether its length is declared or not (chunked).
#[tokio::test]
async fn chunked_bodies_over_the_bound_are_refused() -> TestResult {
    let emulator = Emulator::start().await?;
    let mut stream = tokio::net::TcpStream::connect(emulator.addr()).await?;
    let head = format!(
        "POST /v1.0/communications/calls/{CALL}/updateRecordingStatus HTTP/1.1\r\n\
         Host: {}\r\nAuthorization: Bearer t\r\nContent-Type: application/json\r\n\
         Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
        emulator.addr()
    );
    stream.write_all(head.as_bytes()).await?;
    let chunk = vec![b' '; 16 * 1024];
    let mut sent = 0;
    // The server may answer and close before everything is written: stop at the first error.
    while sent <= MAX_BODY_BYTES {
        let frame = [format!("{:x}\r\n", chunk.len()).as_bytes(), &chunk, b"\r\n"].concat();
        if stream.write_all(&frame).await.is_err() {
            break;
        }
        sent += chunk.len();
    }
    let _ = stream.write_all(b"0\r\n\r\n").await;
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("RequestEntityTooLarge"), "{answer}");
    assert_eq!(emulator.requests()[0].http_status, 413);
    Ok(())
}
