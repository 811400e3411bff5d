//! The Graph emulator over real HTTP: validation, every scripted behaviour, notifications to
//! a local webhook, and the driver end to end through a hyper-util closure transport.

use std::error::Error;
use std::fmt;
use std::io::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::routing::post;
use chrono::Utc;
use http::{HeaderMap, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;
use tokio::sync::mpsc;

use graph_emulator::{
    Behavior, Emulator, MalformedBody, NotifyStyle, RecordedRequest, RecordingStatus as Accepted,
    RetryAfter,
};
use recording_status::audit::{AuditKind, MemorySink, verify};
use recording_status::driver::{Driver, DriverConfig, Started};
use recording_status::notification::{ChangeType, parse_notifications};
use recording_status::response::{Outcome, interpret_response};
use recording_status::retry::parse_retry_after;
use recording_status::transport::{HttpRequest, NotDelivered, Transport};
use recording_status::{Begin, Endpoint, Graph, OperationStatus, RetentionWriter};

use crate::support::assert_no_token;
use crate::support::graph::{BEARER, graph_over};
use crate::support::ids::{other_call, this_call, this_call_upper, upper};
use crate::support::loopback::{free_port, hub_webhook, serve};

type TestResult = Result<(), Box<dyn Error>>;

// ---------------------------------------------------------------------------------------------
// A hyper-util client, raw and as the crate's `Transport`

fn client() -> Client<HttpConnector, Body> {
    Client::builder(TokioExecutor::new()).build_http()
}

#[derive(Debug)]
struct TransportError(Box<dyn Error + Send + Sync>);

impl fmt::Display for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "transport: {}", self.0)
    }
}

impl Error for TransportError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        Some(&*self.0)
    }
}

/// The crate's `Transport` as a closure over hyper-util's client (no redirects: it has none).
fn transport() -> impl Transport + 'static {
    let client = client();
    move |request: HttpRequest| {
        let client = client.clone();
        async move {
            let (parts, body) = request.into_parts();
            let request = http::Request::from_parts(parts, Body::from(body));
            let response = client.request(request).await.map_err(|e| {
                if e.is_connect() {
                    TransportError(Box::new(NotDelivered::new(e)))
                } else {
                    TransportError(Box::new(e))
                }
            })?;
            let (parts, body) = response.into_parts();
            let body = axum::body::to_bytes(Body::new(body), 1 << 20)
                .await
                .map_err(|e| TransportError(Box::new(e)))?;
            Ok::<_, TransportError>(http::Response::from_parts(parts, body.to_vec()))
        }
    }
}

#[derive(Debug)]
struct Answer {
    status: u16,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    fn as_http(&self) -> http::Response<Vec<u8>> {
        let mut response = http::Response::new(self.body.clone());
        *response.status_mut() = StatusCode::from_u16(self.status).unwrap();
        *response.headers_mut() = self.headers.clone();
        response
    }

    /// Asserts Graph's error envelope and returns `error.code`.
    fn error_code(&self) -> String {
        let v = self.json();
        let inner = &v["error"]["innerError"];
        assert!(v["error"]["message"].is_string(), "{v}");
        assert!(inner["date"].is_string(), "{v}");
        assert_eq!(
            inner["request-id"].as_str(),
            self.header("request-id"),
            "{v}"
        );
        assert_eq!(
            inner["client-request-id"].as_str(),
            self.header("client-request-id"),
            "{v}"
        );
        v["error"]["code"].as_str().unwrap_or_default().to_owned()
    }
}

/// One request on a fresh connection (so that no pooled connection is retried).
async fn send(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: impl Into<Vec<u8>>,
) -> Result<Answer, Box<dyn Error>> {
    let mut request = http::Request::builder().method(method).uri(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request.body(Body::from(body.into()))?;
    let response = client().request(request).await?;
    let (parts, body) = response.into_parts();
    let body = axum::body::to_bytes(Body::new(body), 1 << 20).await?;
    Ok(Answer {
        status: parts.status.as_u16(),
        headers: parts.headers,
        body: body.to_vec(),
    })
}

const GOOD_HEADERS: &[(&str, &str)] = &[
    ("authorization", BEARER),
    ("content-type", "application/json"),
    ("client-request-id", "9f6b1d3e-0000-4000-8000-000000000001"),
];

fn update_url(base: &str, call: &str) -> String {
    format!("{base}/communications/calls/{call}/updateRecordingStatus")
}

fn body(status: &str, context: &str) -> Vec<u8> {
    serde_json::json!({ "clientContext": context, "status": status })
        .to_string()
        .into_bytes()
}

/// A valid `recording` update.
async fn update(emulator: &Emulator, call: &str) -> Answer {
    send(
        "POST",
        &update_url(&emulator.base_url(), call),
        GOOD_HEADERS,
        body("recording", "ctx-1"),
    )
    .await
    .expect("an answer")
}

fn graph(emulator: &Emulator) -> Graph<impl Transport + 'static> {
    graph_over(transport()).with_endpoint(Endpoint::custom(&emulator.base_url()).unwrap())
}

/// The emulator's log of `requests` never shows the bearer token.
fn assert_no_token_in(requests: &[RecordedRequest]) {
    assert_no_token(&format!("{requests:?}"));
}

// ---------------------------------------------------------------------------------------------
// A local notification webhook

struct Webhook {
    url: String,
    received: mpsc::UnboundedReceiver<(HeaderMap, Vec<u8>)>,
}

impl Webhook {
    async fn start() -> Self {
        let (tx, received) = mpsc::unbounded_channel();
        async fn hook(
            State(tx): State<mpsc::UnboundedSender<(HeaderMap, Vec<u8>)>>,
            headers: HeaderMap,
            body: Bytes,
        ) -> StatusCode {
            let _ = tx.send((headers, body.to_vec()));
            StatusCode::ACCEPTED
        }
        let app = Router::new()
            .route("/api/calling", post(hook))
            .with_state(tx);
        let url = format!("{}/api/calling", serve(app).await);
        Self { url, received }
    }

    async fn next(&mut self) -> (HeaderMap, Value) {
        let (headers, body) = tokio::time::timeout(Duration::from_secs(5), self.received.recv())
            .await
            .expect("a notification within 5 s")
            .expect("webhook alive");
        (headers, serde_json::from_slice(&body).expect("json"))
    }

    async fn nothing_more(&mut self) {
        let more = tokio::time::timeout(Duration::from_millis(300), self.received.recv()).await;
        assert!(more.is_err(), "unexpected notification: {more:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// Synchronous completion

#[tokio::test]
async fn complete_has_graphs_exact_shape() -> TestResult {
    let emulator = Emulator::start().await?;
    assert!(emulator.addr().ip().is_loopback());
    assert_eq!(
        emulator.base_url(),
        format!("http://{}/v1.0", emulator.addr())
    );
    let answer = update(&emulator, &this_call()).await;
    assert_eq!(answer.status, 200);
    let v = answer.json();
    let id = v["id"].as_str().unwrap().to_owned();
    assert_eq!(
        v,
        serde_json::json!({
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
                "{}/communications/calls/{}/operations/{id}",
                emulator.base_url(),
                this_call()
            )
            .as_str()
        )
    );
    assert!(uuid::Uuid::parse_str(answer.header("request-id").unwrap()).is_ok());
    assert_eq!(
        answer.header("client-request-id"),
        Some("9f6b1d3e-0000-4000-8000-000000000001")
    );
    assert_eq!(answer.header("content-type"), Some("application/json"));
    assert_eq!(emulator.status_of(&this_call()), Some(Accepted::Recording));
    // Ids are matched in normalised form.
    assert_eq!(
        emulator.status_of(&this_call_upper()),
        Some(Accepted::Recording)
    );
    assert_eq!(emulator.status_of(&other_call()), None);
    Ok(())
}

#[tokio::test]
async fn the_crate_records_against_the_emulator() -> TestResult {
    let emulator = Emulator::start().await?;
    let graph = graph(&emulator);
    let audit = Arc::new(MemorySink::default());
    let call = recording_status::Calls::new(audit.clone()).open(this_call().parse()?)?;
    let Begin::Recording(call) = call.begin_recording(&graph).await? else {
        panic!("expected a synchronous completion");
    };
    assert_eq!(emulator.status_of(&this_call()), Some(Accepted::Recording));
    let mut writer = RetentionWriter::new(call.retention()?, Vec::new());
    writer.write_all(b"frame")?;
    let (_, capability) = writer.finish()?;
    drop(capability);
    let call = call.stop_recording(&graph, std::future::pending()).await?;
    assert_eq!(
        emulator.status_of(&this_call()),
        Some(Accepted::NotRecording)
    );
    verify(&audit.events())?;
    drop(call);

    let requests = emulator.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(
        requests
            .iter()
            .map(|r| r.status.as_deref().unwrap())
            .collect::<Vec<_>>(),
        ["recording", "notRecording"]
    );
    for r in &requests {
        assert!(r.authorized);
        assert_eq!(r.version, "v1.0");
        assert_eq!(r.call_id, this_call());
        assert_eq!(r.method, "POST");
        assert_eq!(r.http_status, 200);
        assert!(r.client_request_id.is_some());
        assert_eq!(r.client_context.as_ref().map(String::len), Some(36));
        assert!(r.at <= Utc::now());
    }
    assert_no_token_in(&requests);
    Ok(())
}

/// Every answer, 2xx included, is in the trail with Graph's `request-id`, its echo of the
/// request's `client-request-id` and its `Date`: an acknowledgement Microsoft's side can find
/// (here, the emulator's own record of the requests it answered).
#[tokio::test]
async fn every_answer_is_recorded_with_graphs_request_id_and_date() -> TestResult {
    let emulator = Emulator::start().await?;
    let graph = graph(&emulator);
    let audit = Arc::new(MemorySink::default());
    let call = recording_status::Calls::new(audit.clone()).open(this_call().parse()?)?;
    let Begin::Recording(call) = call.begin_recording(&graph).await? else {
        panic!("expected a synchronous completion");
    };
    drop(call.stop_recording(&graph, std::future::pending()).await?);
    let requests = emulator.requests();
    let answers: Vec<_> = audit
        .events()
        .into_iter()
        .filter_map(|e| match e.kind {
            AuditKind::ResponseReceived {
                client_request_id,
                http_status,
                request_id,
                echoed_client_request_id,
                date,
                ..
            } => Some((
                client_request_id,
                http_status,
                request_id,
                echoed_client_request_id,
                date,
            )),
            _ => None,
        })
        .collect();
    assert_eq!(answers.len(), 2);
    for ((ours, status, request_id, echoed, date), answered) in answers.iter().zip(&requests) {
        assert_eq!(*status, 200);
        assert_eq!(request_id.as_deref(), Some(answered.request_id.as_str()));
        assert_eq!(echoed.as_ref(), Some(ours));
        assert_eq!(answered.client_request_id.as_ref(), Some(ours));
        let date = date.as_deref().expect("the answer's Date");
        chrono::DateTime::parse_from_rfc2822(date).expect("an HTTP date");
    }
    Ok(())
}

#[tokio::test]
async fn beta_endpoint() -> TestResult {
    let emulator = Emulator::start().await?;
    assert_eq!(
        Endpoint::custom(&emulator.beta_url()).unwrap().base(),
        format!("http://{}/beta", emulator.addr())
    );
    let graph =
        graph_over(transport()).with_endpoint(Endpoint::custom(&emulator.beta_url()).unwrap());
    let call =
        recording_status::Calls::new(Arc::new(MemorySink::default())).open(this_call().parse()?)?;
    assert!(matches!(
        call.begin_recording(&graph).await?,
        Begin::Recording(_)
    ));
    assert_eq!(emulator.requests()[0].version, "beta");
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Validation

/// A name, headers, a body, the expected status and error code.
type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], Vec<u8>, u16, &'a str);

#[tokio::test]
async fn validation_failures_are_graph_envelopes_and_consume_nothing() -> TestResult {
    let emulator = Emulator::start().await?;
    emulator.script(&this_call(), [Behavior::Forbidden8506, Behavior::Complete]);
    let url = update_url(&emulator.base_url(), &this_call());
    let no_auth = &GOOD_HEADERS[1..];
    let wrong_type = &[GOOD_HEADERS[0], ("content-type", "text/plain")];
    let basic = &[("authorization", "Basic dXNlcjpwYXNz"), GOOD_HEADERS[1]];
    let empty_bearer = &[("authorization", "Bearer "), GOOD_HEADERS[1]];
    let ok = body("recording", "ctx");
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
            b"{status: recording".to_vec(),
            400,
            "BadRequest",
        ),
        (
            "json array",
            GOOD_HEADERS,
            b"[]".to_vec(),
            400,
            "BadRequest",
        ),
        (
            "unknownFutureValue",
            GOOD_HEADERS,
            body("unknownFutureValue", "ctx"),
            400,
            "BadRequest",
        ),
        (
            "unknown",
            GOOD_HEADERS,
            body("unknown", "ctx"),
            400,
            "BadRequest",
        ),
        (
            "PascalCase status",
            GOOD_HEADERS,
            body("Recording", "ctx"),
            400,
            "BadRequest",
        ),
        (
            "no status",
            GOOD_HEADERS,
            br#"{"clientContext":"ctx"}"#.to_vec(),
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
            br#"{"clientContext":7,"status":"recording"}"#.to_vec(),
            400,
            "BadRequest",
        ),
        (
            "too large",
            GOOD_HEADERS,
            vec![b' '; 70 * 1024],
            413,
            "RequestEntityTooLarge",
        ),
    ];
    for (name, headers, payload, status, code) in cases {
        let answer = send("POST", &url, headers, payload).await?;
        assert_eq!(answer.status, status, "{name}: {answer:?}");
        assert_eq!(answer.error_code(), code, "{name}");
    }
    // No client-request-id sent: Graph repeats its request-id.
    let answer = send(
        "POST",
        &url,
        &[("content-type", "application/json")],
        ok.clone(),
    )
    .await?;
    assert_eq!(
        answer.header("client-request-id"),
        answer.header("request-id")
    );
    assert!(answer.header("request-id").is_some());

    // Nothing was consumed: the script starts now.
    assert_eq!(update(&emulator, &this_call()).await.status, 403);
    assert_eq!(update(&emulator, &this_call()).await.status, 200);
    // Exactly 256 printable characters is fine.
    let answer = send(
        "POST",
        &url,
        GOOD_HEADERS,
        body("recording", &"~".repeat(256)),
    )
    .await?;
    assert_eq!(answer.status, 200);

    let requests = emulator.requests();
    assert_eq!(requests.len(), 18);
    assert!(requests[14].client_request_id.is_none());
    assert!(!requests[0].authorized);
    assert!(requests[3].authorized);
    assert_eq!(requests[7].status.as_deref(), Some("unknownFutureValue"));
    assert_eq!(
        requests[11].client_context.as_deref().map(str::len),
        Some(257)
    );
    assert_eq!(requests[13].http_status, 413);
    assert_eq!(emulator.status_of(&this_call()), Some(Accepted::Recording));
    assert_no_token_in(&requests);
    Ok(())
}

#[tokio::test]
async fn paths_methods_and_versions() -> TestResult {
    let emulator = Emulator::start().await?;
    let origin = format!("http://{}", emulator.addr());
    let ok = body("recording", "ctx");
    // An encoded slash decodes to two segments: rejected, never routed to another resource.
    let answer = send(
        "POST",
        &format!("{origin}/v1.0/communications/calls/abc%2F..%2Fdef/updateRecordingStatus"),
        GOOD_HEADERS,
        ok.clone(),
    )
    .await?;
    assert_eq!(answer.status, 400);
    assert_eq!(answer.error_code(), "BadRequest");
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
    let answer = send(
        "GET",
        &update_url(&emulator.base_url(), &this_call()),
        GOOD_HEADERS,
        Vec::new(),
    )
    .await?;
    assert_eq!(answer.status, 405);
    // Percent-encoded ids are decoded.
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
    assert_eq!(requests.len(), 8);
    assert_eq!(requests[0].call_id, "abc/../def");
    assert!(requests[0].path.contains("%2F"));
    assert_eq!(requests[1].call_id, "");
    assert_eq!(requests[6].method, "GET");
    assert_eq!(requests[7].call_id, "a:b@c");
    assert_eq!(emulator.status_of("a:b@c"), Some(Accepted::Recording));
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Pending operations and notifications

/// Graph's metadata makes only `status` non-nullable, and Microsoft's SDKs omit `clientContext`
/// when it is unset: the emulator accepts such a request, like Graph, and answers (and notifies)
/// with `"clientContext": null`.
#[tokio::test]
async fn a_request_without_client_context_is_accepted_like_graph() -> TestResult {
    let emulator = Emulator::start().await?;
    let mut hook = Webhook::start().await;
    emulator.set_callback_url(&hook.url);
    emulator.script(
        &this_call(),
        [
            Behavior::Complete,
            Behavior::Running {
                delay: Duration::from_millis(20),
                notify: NotifyStyle::default(),
            },
        ],
    );
    let url = update_url(&emulator.base_url(), &this_call());
    let absent = send(
        "POST",
        &url,
        GOOD_HEADERS,
        br#"{"status":"recording"}"#.to_vec(),
    )
    .await?;
    assert_eq!(absent.status, 200, "{absent:?}");
    let v = absent.json();
    assert_eq!(v["status"], "completed");
    assert!(v["clientContext"].is_null(), "{v}");
    assert_eq!(emulator.status_of(&this_call()), Some(Accepted::Recording));

    let null = br#"{"clientContext":null,"status":"notRecording"}"#.to_vec();
    let null = send("POST", &url, GOOD_HEADERS, null).await?;
    assert_eq!(null.status, 200, "{null:?}");
    assert_eq!(null.json()["status"], "running");
    assert!(null.json()["clientContext"].is_null());
    let (_, notification) = hook.next().await;
    let data = &notification["value"][0]["resourceData"];
    assert_eq!(data["status"], "completed");
    assert!(data["clientContext"].is_null(), "{notification}");
    assert_eq!(
        emulator.status_of(&this_call()),
        Some(Accepted::NotRecording)
    );

    // Both consumed a behaviour and were recorded without a context.
    let requests = emulator.requests();
    assert_eq!(requests.len(), 2);
    assert!(requests.iter().all(|r| r.client_context.is_none()));
    assert!(requests.iter().all(|r| r.http_status == 200));
    Ok(())
}

#[tokio::test]
async fn running_notifies_the_callback_in_graphs_shape() -> TestResult {
    let emulator = Emulator::start().await?;
    let mut hook = Webhook::start().await;
    emulator.set_callback_url(&hook.url);
    emulator.script(
        &this_call(),
        [Behavior::Running {
            delay: Duration::from_millis(50),
            notify: NotifyStyle::default().with_bearer("Bearer callback-jwt"),
        }],
    );
    let answer = update(&emulator, &this_call()).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.json()["status"], "running");
    let op = answer.json()["id"].as_str().unwrap().to_owned();
    assert!(
        answer
            .header("location")
            .unwrap()
            .ends_with(&format!("/operations/{op}"))
    );
    assert_eq!(
        emulator.status_of(&this_call()),
        None,
        "not before the operation completes"
    );

    let (headers, v) = hook.next().await;
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(headers["authorization"], "Bearer callback-jwt");
    let path = format!("/communications/calls/{}/operations/{op}", this_call());
    assert_eq!(
        v,
        serde_json::json!({
            "@odata.type": "#microsoft.graph.commsNotifications",
            "value": [{
                "@odata.type": "#microsoft.graph.commsNotification",
                "changeType": "deleted",
                "resourceUrl": path,
                "resourceData": {
                    "@odata.type": "#microsoft.graph.updateRecordingStatusOperation",
                    "@odata.id": path,
                    "clientContext": "ctx-1",
                    "resultInfo": {
                        "@odata.type": "#microsoft.graph.resultInfo",
                        "code": 200,
                        "subcode": 0,
                        "message": "Action completed successfully.",
                    },
                    "status": "completed",
                },
            }],
        })
    );
    // The crate's parser reads it as the completion of the answered operation.
    let parsed = parse_notifications(v.to_string().as_bytes())?;
    let update = &parsed.updates[0];
    assert_eq!(update.change_type, ChangeType::Deleted);
    assert_eq!(update.operation.status, Some(OperationStatus::Completed));
    assert_eq!(update.operation_id.as_deref(), Some(op.as_str()));
    assert_eq!(update.call_id.as_deref(), Some(this_call().as_str()));
    hook.nothing_more().await;
    assert_eq!(emulator.notifications_sent(), 1);
    assert_eq!(emulator.status_of(&this_call()), Some(Accepted::Recording));
    Ok(())
}

#[tokio::test]
async fn messy_notifications_duplicate_out_of_order_upper_pascal() -> TestResult {
    let emulator = Emulator::start().await?;
    let mut hook = Webhook::start().await;
    emulator.set_callback_url(hook.url.clone());
    emulator.script_default([Behavior::Running {
        delay: Duration::from_millis(20),
        notify: NotifyStyle::default()
            .with_duplicate()
            .with_out_of_order()
            .with_upper_dashless_ids()
            .with_pascal_case()
            .with_legacy_resource(),
    }]);
    let answer = update(&emulator, &this_call()).await;
    let op = answer.json()["id"].as_str().unwrap().to_owned();
    let call_upper = upper(&this_call());
    let op_upper = upper(&op);

    let (headers, first) = hook.next().await;
    assert!(headers.get("authorization").is_none());
    let (_, second) = hook.next().await;
    let (_, stale) = hook.next().await;
    hook.nothing_more().await;
    assert_eq!(first, second, "duplicate");
    let entry = &first["value"][0];
    assert_eq!(
        entry["resourceUrl"],
        format!("/communications/calls/{call_upper}/operations/{op_upper}")
    );
    assert_eq!(
        entry["resource"],
        format!("/app/calls/{call_upper}/operations/{op_upper}")
    );
    assert_eq!(entry["resourceData"]["@odata.id"], entry["resourceUrl"]);
    assert_eq!(entry["resourceData"]["status"], "Completed");
    let stale = &stale["value"][0];
    assert_eq!(stale["changeType"], "updated");
    assert_eq!(stale["resourceData"]["status"], "Running");
    assert_eq!(stale["resourceUrl"], entry["resourceUrl"]);
    let parsed = parse_notifications(first.to_string().as_bytes())?;
    assert_eq!(
        parsed.updates[0].normalized_operation_id(),
        Some(op.replace('-', ""))
    );
    assert_eq!(emulator.notifications_sent(), 3);
    Ok(())
}

#[tokio::test]
async fn running_then_fail_notifies_failed() -> TestResult {
    let emulator = Emulator::start().await?;
    let mut hook = Webhook::start().await;
    emulator.set_callback_url(&hook.url);
    emulator.script(
        &this_call(),
        [Behavior::RunningThenFail {
            delay: Duration::from_millis(20),
            code: 500,
            subcode: 8510,
        }],
    );
    assert_eq!(
        update(&emulator, &this_call()).await.json()["status"],
        "running"
    );
    let (_, v) = hook.next().await;
    let data = &v["value"][0]["resourceData"];
    assert_eq!(v["value"][0]["changeType"], "deleted");
    assert_eq!(data["status"], "failed");
    assert_eq!(data["resultInfo"]["code"], 500);
    assert_eq!(data["resultInfo"]["subcode"], 8510);
    assert_eq!(emulator.status_of(&this_call()), None);
    Ok(())
}

#[tokio::test]
async fn without_callback_url_notifications_are_dropped() -> TestResult {
    let emulator = Emulator::start().await?;
    emulator.script_default([Behavior::Running {
        delay: Duration::from_millis(10),
        notify: NotifyStyle::default(),
    }]);
    assert_eq!(update(&emulator, &this_call()).await.status, 200);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(emulator.notifications_sent(), 0);
    // The operation still completed on Graph's side.
    assert_eq!(emulator.status_of(&this_call()), Some(Accepted::Recording));
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Failures

#[tokio::test]
async fn failed_operation() -> TestResult {
    let emulator = Emulator::start().await?;
    emulator.script_default([Behavior::Failed {
        code: 500,
        subcode: 8510,
        message: "media processor unavailable".to_owned(),
    }]);
    let answer = update(&emulator, &this_call()).await;
    assert_eq!(answer.status, 200);
    let v = answer.json();
    assert_eq!(v["status"], "failed");
    assert_eq!(v["resultInfo"]["code"], 500);
    assert_eq!(v["resultInfo"]["subcode"], 8510);
    assert_eq!(v["resultInfo"]["message"], "media processor unavailable");
    let Outcome::Failed { operation } = interpret_response(&answer.as_http()) else {
        panic!("expected a failed operation");
    };
    assert_eq!(operation.result_info.unwrap().subcode, Some(8510));
    assert_eq!(emulator.status_of(&this_call()), None);
    Ok(())
}

#[tokio::test]
async fn throttling_with_both_retry_after_forms() -> TestResult {
    let emulator = Emulator::start().await?;
    emulator.script(
        &this_call(),
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
        ],
    );
    let first = update(&emulator, &this_call()).await;
    assert_eq!(first.status, 429);
    assert_eq!(first.header("retry-after"), Some("7"));
    assert_eq!(first.error_code(), "activityLimitReached");
    let Outcome::GraphError(e) = interpret_response(&first.as_http()) else {
        panic!("expected an error");
    };
    assert_eq!(e.inner_codes, ["throttledRequest"]);
    assert_eq!(
        e.client_request_id.as_deref(),
        Some("9f6b1d3e-0000-4000-8000-000000000001")
    );
    assert!(e.request_id.is_some());

    let second = update(&emulator, &this_call()).await;
    assert_eq!(second.status, 503);
    let date = second.header("retry-after").unwrap();
    assert!(date.ends_with(" GMT"), "{date}");
    let wait = parse_retry_after(date, Utc::now()).unwrap();
    assert!(
        (Duration::from_secs(28)..=Duration::from_secs(31)).contains(&wait),
        "{wait:?}"
    );
    assert_eq!(second.error_code(), "serviceNotAvailable");

    let third = update(&emulator, &this_call()).await;
    assert_eq!(third.status, 429);
    assert!(third.header("retry-after").is_none());
    Ok(())
}

#[tokio::test]
async fn server_errors() -> TestResult {
    let emulator = Emulator::start().await?;
    emulator.script(
        &this_call(),
        [500, 502, 504].map(|status| Behavior::ServerError { status }),
    );
    for (status, code) in [
        (500, "InternalServerError"),
        (502, "BadGateway"),
        (504, "GatewayTimeout"),
    ] {
        let answer = update(&emulator, &this_call()).await;
        assert_eq!(answer.status, status);
        assert_eq!(answer.error_code(), code);
    }
    Ok(())
}

#[tokio::test]
async fn malformed_bodies() -> TestResult {
    let emulator = Emulator::start().await?;
    emulator.script(
        &this_call(),
        [
            Behavior::Malformed(MalformedBody::Html),
            Behavior::Malformed(MalformedBody::TruncatedJson),
            Behavior::Malformed(MalformedBody::Empty),
        ],
    );
    let html = update(&emulator, &this_call()).await;
    assert_eq!(html.status, 200);
    assert!(
        html.header("content-type")
            .unwrap()
            .starts_with("text/html")
    );
    assert!(matches!(
        interpret_response(&html.as_http()),
        Outcome::Unparseable { .. }
    ));
    let truncated = update(&emulator, &this_call()).await;
    assert!(serde_json::from_slice::<Value>(&truncated.body).is_err());
    assert!(truncated.body.starts_with(b"{\"@odata.type\""));
    assert!(matches!(
        interpret_response(&truncated.as_http()),
        Outcome::Unparseable { .. }
    ));
    let empty = update(&emulator, &this_call()).await;
    assert_eq!(empty.status, 200);
    assert!(empty.body.is_empty());
    assert!(matches!(
        interpret_response(&empty.as_http()),
        Outcome::Pending {
            operation: None,
            ..
        }
    ));
    assert_eq!(emulator.status_of(&this_call()), None);
    Ok(())
}

#[tokio::test]
async fn forbidden_8506() -> TestResult {
    let emulator = Emulator::start().await?;
    emulator.script_default([Behavior::Forbidden8506]);
    let answer = update(&emulator, &this_call()).await;
    assert_eq!(answer.status, 403);
    assert_eq!(answer.error_code(), "8506");
    assert_eq!(
        answer.json()["error"]["message"],
        "API call not allowed for non-Compliance Recording call"
    );
    // Through the crate: a permanent rejection, nothing to retain.
    let graph = graph(&emulator);
    let call = recording_status::Calls::new(Arc::new(MemorySink::default()))
        .open(other_call().parse()?)?;
    assert!(matches!(
        call.begin_recording(&graph).await?,
        Begin::Failed(_)
    ));
    Ok(())
}

#[tokio::test]
async fn dropped_connection_gets_no_answer() -> TestResult {
    let emulator = Emulator::start().await?;
    emulator.script(&this_call(), [Behavior::DropConnection, Behavior::Complete]);
    let url = update_url(&emulator.base_url(), &this_call());
    let dropped = send("POST", &url, GOOD_HEADERS, body("recording", "c")).await;
    let error = dropped.expect_err("no answer");
    // hyper: "connection closed before message completed" (or reset), not a connect error.
    assert!(!format!("{error:?}").contains("Connect"), "{error:?}");
    assert!(
        error
            .downcast_ref::<hyper_util::client::legacy::Error>()
            .is_some(),
        "{error:?}"
    );
    // The server lives on.
    assert_eq!(update(&emulator, &this_call()).await.status, 200);
    let requests = emulator.requests();
    assert_eq!(requests[0].http_status, 0);
    assert_eq!(requests[1].http_status, 200);
    Ok(())
}

#[tokio::test]
async fn truncated_body_is_an_incomplete_message() -> TestResult {
    let emulator = Emulator::start().await?;
    emulator.script(&this_call(), [Behavior::TruncatedBody, Behavior::Complete]);
    let url = update_url(&emulator.base_url(), &this_call());
    let request = http::Request::post(&url)
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
    // Through the crate's transport it is an error, not an answer.
    let answer = update(&emulator, &this_call()).await;
    assert_eq!(answer.status, 200);
    Ok(())
}

#[tokio::test]
async fn foreign_location_is_never_followed() -> TestResult {
    let emulator = Emulator::start().await?;
    emulator.script_default([Behavior::ForeignLocation]);
    let answer = update(&emulator, &other_call()).await;
    assert!(
        answer
            .header("location")
            .unwrap()
            .starts_with("https://evil.example/v1.0/")
    );
    let graph = graph(&emulator);
    let call =
        recording_status::Calls::new(Arc::new(MemorySink::default())).open(this_call().parse()?)?;
    assert!(matches!(
        call.begin_recording(&graph).await?,
        Begin::Recording(_)
    ));
    assert_eq!(
        emulator.requests().len(),
        2,
        "one request per update, nothing else"
    );
    Ok(())
}

#[tokio::test]
async fn slow_answers_wait() -> TestResult {
    let emulator = Emulator::start().await?;
    emulator.script(
        &this_call(),
        [Behavior::Slow {
            delay: Duration::from_millis(300),
            then: Box::new(Behavior::Forbidden8506),
        }],
    );
    let started = Instant::now();
    let answer = update(&emulator, &this_call()).await;
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(answer.status, 403);
    assert_eq!(emulator.requests()[0].http_status, 403);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Scripts

#[tokio::test]
async fn per_call_scripts_and_the_default() -> TestResult {
    let emulator = Emulator::start().await?;
    emulator.script_default([Behavior::Forbidden8506]);
    // Scripted under Graph's notification form of the id; requested in the response form.
    emulator.script(
        &this_call_upper(),
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
    assert_eq!(statuses(update(&emulator, &this_call()).await).0, 500);
    assert_eq!(
        statuses(update(&emulator, &this_call()).await),
        (200, "completed".into())
    );
    assert_eq!(
        statuses(update(&emulator, &this_call()).await),
        (200, "failed".into())
    );
    assert_eq!(
        statuses(update(&emulator, &this_call()).await),
        (200, "failed".into()),
        "last repeats"
    );
    assert_eq!(update(&emulator, &other_call()).await.status, 403);
    assert_eq!(update(&emulator, &other_call()).await.status, 403);

    // Each unscripted call walks the default script on its own.
    emulator.script_default([Behavior::ServerError { status: 502 }, Behavior::Complete]);
    assert_eq!(update(&emulator, &other_call()).await.status, 502);
    assert_eq!(update(&emulator, "third-call").await.status, 502);
    assert_eq!(update(&emulator, &other_call()).await.status, 200);
    assert_eq!(update(&emulator, "third-call").await.status, 200);

    // An empty script hands the call back to the default; an empty default is `Complete`.
    emulator.script(&this_call(), []);
    emulator.script_default([]);
    assert_eq!(
        update(&emulator, &this_call()).await.json()["status"],
        "completed"
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Lifecycle

#[tokio::test]
async fn shutdown_and_drop_stop_the_server() -> TestResult {
    let emulator = Emulator::start().await?;
    let url = update_url(&emulator.base_url(), &this_call());
    assert!(format!("{emulator:?}").contains("Emulator"));
    emulator.shutdown().await;
    assert!(
        send("POST", &url, GOOD_HEADERS, body("recording", "c"))
            .await
            .is_err()
    );

    let emulator = Emulator::start().await?;
    let url = update_url(&emulator.base_url(), &this_call());
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
async fn start_on_a_chosen_address() -> TestResult {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], free_port()));
    let emulator = Emulator::start_on(addr).await?;
    assert_eq!(emulator.addr(), addr);
    assert_eq!(update(&emulator, &this_call()).await.status, 200);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// End to end: driver → emulator → webhook → hub

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn driver_end_to_end_with_notifications() -> TestResult {
    let emulator = Emulator::start().await?;
    let audit = Arc::new(MemorySink::default());
    let config = DriverConfig::default().with_pending_deadline(Duration::from_secs(5));
    let (driver, _events) = Driver::new(graph(&emulator), audit.clone(), config);
    let (url, mut deliveries) = hub_webhook(driver.hub().clone()).await;
    emulator.set_callback_url(url);
    let messy = NotifyStyle::messy().with_bearer("Bearer bot-framework-jwt");
    emulator.script(
        &this_call(),
        [
            Behavior::Running {
                delay: Duration::from_millis(100),
                notify: messy,
            },
            Behavior::Complete,
        ],
    );
    emulator.script(
        &other_call(),
        [Behavior::RunningThenFail {
            delay: Duration::from_millis(50),
            code: 500,
            subcode: 8510,
        }],
    );

    // A pending `recording` settled by the notification.
    let Started::Recording(call) = driver
        .begin_recording(driver.call(this_call().parse()?)?)
        .await?
    else {
        panic!("expected the notification to complete the operation");
    };
    let mut writer = RetentionWriter::new(call.retention()?, Vec::new());
    writer.write_all(b"media")?;
    let (stored, capability) = writer.finish()?;
    drop(capability);
    assert_eq!(stored, b"media");
    let call = driver.stop_recording(call).await?;
    assert_eq!(
        emulator.status_of(&this_call()),
        Some(Accepted::NotRecording)
    );
    drop(driver.end(call));

    // A pending `recording` that fails: nothing may be retained.
    let Started::Failed(other) = driver
        .begin_recording(driver.call(other_call().parse()?)?)
        .await?
    else {
        panic!("expected the failed notification to fail the call");
    };
    drop(driver.end(other));

    // Three notifications for the first call, one for the second.
    let mut routed = 0;
    let mut not_routed = 0;
    for _ in 0..4 {
        let (r, n) = tokio::time::timeout(Duration::from_secs(5), deliveries.recv())
            .await?
            .unwrap();
        routed += r;
        not_routed += n;
    }
    // Usually (2, 2); a duplicate may reach the waiter before it hangs up.
    assert_eq!(routed + not_routed, 4);
    assert!(routed >= 1);
    // The emulator counts a notification once its answer is read, which may be just after the
    // webhook handed the body over: wait for the count, boundedly.
    for _ in 0..100 {
        if emulator.notifications_sent() == 4 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(emulator.notifications_sent(), 4);

    verify(&audit.events())?;
    let requests = emulator.requests();
    let for_call = |id: &str| {
        requests
            .iter()
            .filter(|r| r.call_id == id)
            .map(|r| r.status.clone().unwrap())
            .collect::<Vec<_>>()
    };
    assert_eq!(for_call(&this_call()), ["recording", "notRecording"]);
    assert_eq!(for_call(&other_call())[0], "recording");
    assert!(requests.iter().all(|r| r.authorized));
    assert_no_token_in(&requests);
    emulator.shutdown().await;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Bot Framework signing

/// The emulator signs notifications like Bot Framework, serves the keys at its OpenID
/// configuration's `jwks_uri`, and rotates them: a bot validating through `JwksKeys` accepts
/// every notification across the rotation, and refuses a token minted for another bot.
#[tokio::test]
async fn notifications_are_signed_and_keys_rotate() -> TestResult {
    use graph_emulator::TestKey;
    use recording_status::webhook::{AuthError, BotFrameworkValidator, JwksKeys};

    const APP: &str = "2f0a7c1e-0000-4000-8000-00000000b07";
    let emulator = Emulator::start().await?;
    let mut hook = Webhook::start().await;
    emulator.set_callback_url(&hook.url);
    emulator.sign_notifications_for(APP);
    emulator.script_default([Behavior::Running {
        delay: Duration::from_millis(10),
        notify: NotifyStyle::default(),
    }]);

    let keys = JwksKeys::fetch(transport(), &emulator.openid_configuration_url()).await?;
    assert_eq!(
        keys.current().kids().collect::<Vec<_>>(),
        [TestKey::FIRST.kid()]
    );
    let validator = BotFrameworkValidator::new(APP, keys.clone());

    assert_eq!(update(&emulator, &this_call()).await.status, 200);
    let (headers, _) = hook.next().await;
    let first = headers["authorization"].to_str()?.to_owned();
    assert!(validator.validate_refreshing(&first).await.is_ok());

    assert_eq!(emulator.rotate_signing_key(), TestKey::SECOND);
    assert_eq!(update(&emulator, &other_call()).await.status, 200);
    let (headers, _) = hook.next().await;
    let second = headers["authorization"].to_str()?.to_owned();
    assert_ne!(first, second);
    assert_eq!(validator.validate(&second), Err(AuthError::UnknownKey));
    // The first fetch was just now, and counts against no limit: the new key is fetched at
    // once, and the cache publishes both keys, as Bot Framework does during a rotation.
    assert!(validator.validate_refreshing(&second).await.is_ok());
    assert_eq!(
        keys.current().kids().collect::<Vec<_>>(),
        [TestKey::FIRST.kid(), TestKey::SECOND.kid()]
    );
    assert!(validator.validate(&first).is_ok());

    // Graph signs as Bot Framework and as Graph: the emulator alternates, each token carries
    // the emulator's tenant, and the validator hands it to the bot.
    let now = chrono::Utc::now().timestamp();
    let (first_proof, first_claims) = validator.validate_claims_at(&first, now)?;
    let (_, second_claims) = validator.validate_claims_at(&second, now)?;
    let mut issuers = [first_claims.iss.as_str(), second_claims.iss.as_str()];
    issuers.sort_unstable();
    assert_eq!(
        issuers,
        [
            "https://api.botframework.com",
            "https://graph.microsoft.com"
        ]
    );
    assert_eq!(first_proof.tenant(), Some(TestKey::TENANT_ID));
    assert_eq!(first_claims.tid, TestKey::TENANT_ID);

    let other_bot = BotFrameworkValidator::new("another-bot", keys);
    assert_eq!(other_bot.validate(&second), Err(AuthError::WrongAudience));
    assert_eq!(emulator.notifications_refused(), 0);
    Ok(())
}
