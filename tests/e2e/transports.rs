//! The shipped transports against loopback servers: wiremock for well-formed HTTP, a raw
//! `TcpListener` for broken connections. Every scenario runs for both transports
//! (`<scenario>::reqwest` and `<scenario>::ureq`).

use std::error::Error as StdError;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use recording_status::audit::{MemorySink, verify};
use recording_status::request::UpdateRequest;
use recording_status::response::Permanent;
use recording_status::transport::{
    BlockingTransport, HttpRequest, HttpResponse, Transport, was_not_delivered,
};
use recording_status::transports::reqwest_0_13::{ReqwestError, ReqwestTransport};
use recording_status::transports::ureq_3::{UreqError, UreqTransport};
use recording_status::{
    AccessToken, Begin, Call, Endpoint, Error, Graph, NotRecording, RecordingStatus,
};
use serde_json::Value;
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use crate::support::bodies::operation_body;
use crate::support::graph::{BEARER, TOKEN, graph_over, open};
use crate::support::ids::{OP, call_id, this_call};
use crate::support::loopback::free_port;

/// The path the crate posts [`CALL`]'s status to, under `/v1.0`.
fn update_path() -> String {
    format!(
        "/v1.0/communications/calls/{}/updateRecordingStatus",
        this_call()
    )
}

#[derive(Debug, Clone, Copy)]
enum Which {
    Reqwest,
    Ureq,
}

/// Generates `mod $name { reqwest, ureq }`, each running `$name(Which::…)`.
macro_rules! both {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn reqwest() {
                super::$name(super::Which::Reqwest).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn ureq() {
                super::$name(super::Which::Ureq).await;
            }
        }
    )*};
}

both!(
    lifecycle,
    not_compliance_call,
    throttling_is_a_response,
    redirect_not_followed,
    location_on_success_never_contacted,
    body_over_cap,
    connection_refused,
    reset_mid_body,
    truncated_body,
    slow_server_times_out,
);

// ---------------------------------------------------------------------------------------------
// Helpers.

#[derive(Debug, Clone, Copy)]
struct Cfg {
    timeout: Duration,
    max_body: usize,
}

impl Default for Cfg {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(10),
            max_body: 1024 * 1024,
        }
    }
}

fn reqwest_transport(cfg: Cfg) -> ReqwestTransport {
    ReqwestTransport::builder()
        .timeout(cfg.timeout)
        .connect_timeout(Duration::from_secs(2))
        .max_body_bytes(cfg.max_body)
        .build()
        .unwrap()
}

fn ureq_transport(cfg: Cfg) -> UreqTransport {
    UreqTransport::builder()
        .timeout(cfg.timeout)
        .connect_timeout(Duration::from_secs(2))
        .max_body_bytes(cfg.max_body)
        .build()
}

fn graph<T>(transport: T, base: &str) -> Graph<T> {
    graph_over(transport).with_endpoint(Endpoint::custom(&format!("{base}/v1.0")).unwrap())
}

fn new_call(audit: &Arc<MemorySink>) -> Call<NotRecording> {
    open(audit.clone())
}

/// A transport error of either kind.
#[derive(Debug)]
enum AnyError {
    Reqwest(ReqwestError),
    Ureq(UreqError),
}

impl AnyError {
    fn as_dyn(&self) -> &(dyn StdError + 'static) {
        match self {
            Self::Reqwest(e) => e,
            Self::Ureq(e) => e,
        }
    }

    fn is_timeout(&self) -> bool {
        match self {
            Self::Reqwest(e) => e.is_timeout(),
            Self::Ureq(e) => e.is_timeout(),
        }
    }

    fn is_body_too_large(&self) -> bool {
        matches!(
            self,
            Self::Reqwest(ReqwestError::BodyTooLarge { .. })
                | Self::Ureq(UreqError::BodyTooLarge { .. })
        )
    }
}

/// A real status request, as the crate builds it (with the bearer token).
fn update_request(base: &str) -> HttpRequest {
    let endpoint = Endpoint::custom(&format!("{base}/v1.0")).unwrap();
    UpdateRequest::new(RecordingStatus::Recording)
        .to_http(&endpoint, &call_id(), &AccessToken::new(TOKEN))
        .unwrap()
}

/// Sends one request straight through the transport.
async fn send(which: Which, cfg: Cfg, request: HttpRequest) -> Result<HttpResponse, AnyError> {
    match which {
        Which::Reqwest => reqwest_transport(cfg)
            .send(request)
            .await
            .map_err(AnyError::Reqwest),
        Which::Ureq => {
            let transport = ureq_transport(cfg);
            tokio::task::spawn_blocking(move || transport.send_blocking(request))
                .await
                .unwrap()
                .map_err(AnyError::Ureq)
        }
    }
}

/// Begins recording once through the crate's API.
async fn begin(which: Which, cfg: Cfg, base: &str, audit: &Arc<MemorySink>) -> Begin {
    let call = new_call(audit);
    match which {
        Which::Reqwest => {
            let graph = graph(reqwest_transport(cfg), base);
            call.begin_recording(&graph).await.unwrap()
        }
        Which::Ureq => {
            let graph = graph(ureq_transport(cfg), base);
            tokio::task::spawn_blocking(move || call.begin_recording_blocking(&graph).unwrap())
                .await
                .unwrap()
        }
    }
}

/// What the assertions need from a `Failed` call's reason (`Error` is not `Clone`).
#[derive(Debug)]
struct Reason {
    permanent: Option<Permanent>,
    unknown_outcome: bool,
    not_delivered: bool,
    graph_status: Option<u16>,
    transport: bool,
}

fn failed_reason(begin: Begin) -> Reason {
    match begin {
        Begin::Failed(call) => {
            let reason = call.reason();
            assert_no_token(reason);
            Reason {
                permanent: reason.permanent(),
                unknown_outcome: reason.is_unknown_outcome(),
                not_delivered: was_not_delivered(reason),
                graph_status: match reason {
                    Error::Graph(e) => Some(e.status.as_u16()),
                    _ => None,
                },
                transport: matches!(reason, Error::Transport(_)),
            }
        }
        other => panic!("expected Failed, got {other:?}"),
    }
}

/// Display and Debug of an error and its whole source chain.
fn chain(error: &(dyn StdError + 'static)) -> String {
    let mut out = String::new();
    let mut next = Some(error);
    while let Some(e) = next {
        out.push_str(&format!("{e} / {e:?}\n"));
        next = e.source();
    }
    out
}

fn assert_no_token(error: &(dyn StdError + 'static)) {
    crate::support::assert_no_token(&chain(error));
}

/// `200` with a completed operation echoing the request's `clientContext`.
fn completed(request: &Request) -> ResponseTemplate {
    let sent: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
    ResponseTemplate::new(200).set_body_json(operation_body(
        OP,
        "completed",
        &sent["clientContext"],
    ))
}

#[derive(Debug, Clone, Copy)]
enum Misbehave {
    /// Headers promise 500 bytes, a few are sent, then the socket is reset (RST).
    ResetMidBody,
    /// Headers promise 500 bytes, a few are sent, then the socket is closed (FIN).
    Truncate,
    /// No `Content-Length`: 2 MiB, then close.
    Endless,
}

/// A raw HTTP/1.1 server on 127.0.0.1 that answers every connection the same broken way.
/// The thread is detached; it dies with the test process.
fn raw_server(mode: Misbehave) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            std::thread::spawn(move || serve_broken(stream, mode));
        }
    });
    base
}

fn serve_broken(mut stream: TcpStream, mode: Misbehave) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    // Read the head byte by byte, so the request body stays unread in the kernel buffer.
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => return,
        }
    }
    let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    match mode {
        Misbehave::ResetMidBody => {
            // Let the body arrive and leave it unread: closing then sends RST, not FIN.
            std::thread::sleep(Duration::from_millis(50));
            let _ = stream.write_all(
                b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 500\r\n\r\n{\"status\":",
            );
            let _ = stream.flush();
            std::thread::sleep(Duration::from_millis(100));
            drop(stream);
        }
        Misbehave::Truncate => {
            let mut body = vec![0u8; length];
            let _ = stream.read_exact(&mut body);
            let _ = stream.write_all(
                b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 500\r\n\r\n{\"status\":\"comp",
            );
            let _ = stream.flush();
            std::thread::sleep(Duration::from_millis(100));
            let _ = stream.shutdown(std::net::Shutdown::Both);
        }
        Misbehave::Endless => {
            let mut body = vec![0u8; length];
            let _ = stream.read_exact(&mut body);
            let _ = stream.write_all(
                b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nconnection: close\r\n\r\n",
            );
            let chunk = vec![b' '; 64 * 1024];
            for _ in 0..32 {
                if stream.write_all(&chunk).is_err() {
                    return;
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Scenarios.

/// `recording` then `notRecording`, with the wire format checked on the server.
async fn lifecycle(which: Which) {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(update_path()))
        .and(header("authorization", BEARER))
        .and(header("content-type", "application/json"))
        .respond_with(completed)
        .expect(2)
        .mount(&server)
        .await;
    let audit = Arc::new(MemorySink::default());
    let base = server.uri();
    let call = new_call(&audit);
    let stopped = match which {
        Which::Reqwest => {
            let graph = graph(reqwest_transport(Cfg::default()), &base);
            let Begin::Recording(call) = call.begin_recording(&graph).await.unwrap() else {
                panic!("not recording")
            };
            call.stop_recording(&graph, std::future::pending())
                .await
                .unwrap()
        }
        Which::Ureq => {
            let graph = graph(ureq_transport(Cfg::default()), &base);
            tokio::task::spawn_blocking(move || {
                let Begin::Recording(call) = call.begin_recording_blocking(&graph).unwrap() else {
                    panic!("not recording")
                };
                call.stop_recording_blocking(&graph, Duration::from_secs(1))
                    .unwrap()
            })
            .await
            .unwrap()
        }
    };
    drop(stopped);
    verify(&audit.events()).unwrap();

    let received = server.received_requests().await.unwrap();
    assert_eq!(received.len(), 2);
    let mut request_ids = Vec::new();
    for (request, status) in received.iter().zip(["recording", "notRecording"]) {
        assert_eq!(request.method.as_str(), "POST");
        assert_eq!(request.url.path(), update_path());
        assert_eq!(request.url.query(), None);
        assert_eq!(request.headers["authorization"].to_str().unwrap(), BEARER);
        assert_eq!(request.headers["content-type"], "application/json");
        let id = request.headers["client-request-id"].to_str().unwrap();
        assert_eq!(id.len(), 36, "client-request-id is a uuid: {id}");
        request_ids.push(id.to_owned());
        let body: Value = serde_json::from_slice(&request.body).unwrap();
        let object = body.as_object().unwrap();
        assert_eq!(object.len(), 2, "exactly clientContext and status: {body}");
        assert!(!object["clientContext"].as_str().unwrap().is_empty());
        assert_eq!(object["status"], status);
    }
    assert_ne!(request_ids[0], request_ids[1]);
}

/// `403` with code `8506`: a permanent refusal, the call goes to `Failed`.
async fn not_compliance_call(which: Which) {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(update_path()))
        .respond_with(ResponseTemplate::new(403).set_body_json(serde_json::json!({
            "error": {"code": "8506", "message": "Call is not a policy recording call."}
        })))
        .mount(&server)
        .await;
    let audit = Arc::new(MemorySink::default());
    let reason = failed_reason(begin(which, Cfg::default(), &server.uri(), &audit).await);
    assert_eq!(reason.permanent, Some(Permanent::NotComplianceCall));
    assert_eq!(reason.graph_status, Some(403));
    assert!(!reason.unknown_outcome);
}

/// `429` and `503` are responses, with every header kept.
async fn throttling_is_a_response(which: Which) {
    for status in [429, 503] {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(
                ResponseTemplate::new(status)
                    .insert_header("retry-after", "7")
                    .insert_header("request-id", "req-1")
                    .append_header("x-multi", "a")
                    .append_header("x-multi", "b")
                    .set_body_json(serde_json::json!({"error": {"code": "throttled"}})),
            )
            .mount(&server)
            .await;
        let response = send(which, Cfg::default(), update_request(&server.uri()))
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), status);
        assert_eq!(response.headers()["retry-after"], "7");
        assert_eq!(response.headers()["request-id"], "req-1");
        let multi: Vec<_> = response.headers().get_all("x-multi").iter().collect();
        assert_eq!(multi, ["a", "b"]);
        let body: Value = serde_json::from_slice(response.body()).unwrap();
        assert_eq!(body["error"]["code"], "throttled");
    }
}

/// A `302` to another server is a Graph error; the other server never hears from us.
async fn redirect_not_followed(which: Which) {
    let elsewhere = MockServer::start().await;
    Mock::given(wiremock::matchers::any())
        .respond_with(completed)
        .expect(0)
        .mount(&elsewhere)
        .await;
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(302)
                .insert_header("location", format!("{}{}", elsewhere.uri(), update_path())),
        )
        .mount(&server)
        .await;

    // The transport hands the 302 back as it is.
    let response = send(which, Cfg::default(), update_request(&server.uri()))
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 302);
    assert!(response.headers().contains_key("location"));

    // Through the crate: `Failed` with a Graph error 302 (and the best-effort `failed` report
    // is not redirected either).
    let audit = Arc::new(MemorySink::default());
    let reason = failed_reason(begin(which, Cfg::default(), &server.uri(), &audit).await);
    assert_eq!(reason.graph_status, Some(302));
    assert!(server.received_requests().await.unwrap().len() >= 3);
    assert!(elsewhere.received_requests().await.unwrap().is_empty());
}

/// A `Location` on a completed `200` is recorded, never contacted.
async fn location_on_success_never_contacted(which: Which) {
    let foreign = MockServer::start().await;
    Mock::given(wiremock::matchers::any())
        .respond_with(completed)
        .expect(0)
        .mount(&foreign)
        .await;
    let server = MockServer::start().await;
    let location = format!(
        "{}/v1.0/communications/calls/{}/operations/op",
        foreign.uri(),
        this_call()
    );
    let evil = "https://evil.example/v1.0/communications/calls/x/operations/op";
    Mock::given(method("POST"))
        .and(path(update_path()))
        .and(wiremock::matchers::body_partial_json(
            serde_json::json!({"status": "recording"}),
        ))
        .respond_with({
            let location = location.clone();
            move |r: &Request| completed(r).insert_header("location", location.as_str())
        })
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(update_path()))
        .and(wiremock::matchers::body_partial_json(
            serde_json::json!({"status": "notRecording"}),
        ))
        .respond_with(move |r: &Request| completed(r).insert_header("location", evil))
        .expect(1)
        .mount(&server)
        .await;

    let endpoint = Endpoint::custom(&format!("{}/v1.0", server.uri())).unwrap();
    assert!(!endpoint.owns(&location));
    assert!(!endpoint.owns(evil));

    let audit = Arc::new(MemorySink::default());
    let base = server.uri();
    let call = new_call(&audit);
    match which {
        Which::Reqwest => {
            let graph = graph(reqwest_transport(Cfg::default()), &base);
            let Begin::Recording(call) = call.begin_recording(&graph).await.unwrap() else {
                panic!("not recording")
            };
            let stopped = call
                .stop_recording(&graph, std::future::pending())
                .await
                .unwrap();
            drop(stopped);
        }
        Which::Ureq => {
            let graph = graph(ureq_transport(Cfg::default()), &base);
            tokio::task::spawn_blocking(move || {
                let Begin::Recording(call) = call.begin_recording_blocking(&graph).unwrap() else {
                    panic!("not recording")
                };
                let stopped = call
                    .stop_recording_blocking(&graph, Duration::from_secs(1))
                    .unwrap();
                drop(stopped);
            })
            .await
            .unwrap();
        }
    }
    verify(&audit.events()).unwrap();
    assert!(foreign.received_requests().await.unwrap().is_empty());
    assert_eq!(server.received_requests().await.unwrap().len(), 2);
}

/// Bodies over the cap are errors, whether announced by `Content-Length` or streamed.
async fn body_over_cap(which: Which) {
    let small = Cfg {
        max_body: 1024,
        ..Cfg::default()
    };
    let server = MockServer::start().await;
    Mock::given(path("/v1.0/exact"))
        .respond_with(ResponseTemplate::new(200).set_body_bytes(vec![b'x'; 1024]))
        .mount(&server)
        .await;
    Mock::given(path(update_path()))
        .respond_with(ResponseTemplate::new(200).set_body_bytes(vec![b'x'; 64 * 1024]))
        .mount(&server)
        .await;

    // Exactly at the cap is fine.
    let mut at_cap = update_request(&server.uri());
    *at_cap.uri_mut() = format!("{}/v1.0/exact", server.uri()).parse().unwrap();
    let response = send(which, small, at_cap).await.unwrap();
    assert_eq!(response.body().len(), 1024);

    // Announced by Content-Length.
    let error = send(which, small, update_request(&server.uri()))
        .await
        .unwrap_err();
    assert!(error.is_body_too_large(), "{error:?}");
    assert!(!was_not_delivered(error.as_dyn()));
    assert_no_token(error.as_dyn());

    // Streamed without Content-Length, past the default cap of 1 MiB.
    let endless = raw_server(Misbehave::Endless);
    let error = send(which, Cfg::default(), update_request(&endless))
        .await
        .unwrap_err();
    assert!(error.is_body_too_large(), "{error:?}");
    assert!(!was_not_delivered(error.as_dyn()));

    // Through the crate: unknown outcome.
    let audit = Arc::new(MemorySink::default());
    let reason = failed_reason(begin(which, small, &server.uri(), &audit).await);
    assert!(reason.transport && reason.unknown_outcome && !reason.not_delivered);
}

/// Nothing listens: the request was not delivered.
async fn connection_refused(which: Which) {
    let base = format!("http://127.0.0.1:{}", free_port());
    let error = send(which, Cfg::default(), update_request(&base))
        .await
        .unwrap_err();
    assert!(was_not_delivered(error.as_dyn()), "{error:?}");
    assert!(!error.is_timeout());
    assert_no_token(error.as_dyn());

    let audit = Arc::new(MemorySink::default());
    let reason = failed_reason(begin(which, Cfg::default(), &base, &audit).await);
    assert!(
        reason.transport && reason.unknown_outcome && reason.not_delivered,
        "{reason:?}"
    );
}

async fn broken(which: Which, mode: Misbehave) {
    let base = raw_server(mode);
    let error = send(which, Cfg::default(), update_request(&base))
        .await
        .unwrap_err();
    assert!(!was_not_delivered(error.as_dyn()), "{error:?}");
    assert!(!error.is_timeout(), "{error:?}");
    assert!(!error.is_body_too_large(), "{error:?}");
    assert_no_token(error.as_dyn());

    let audit = Arc::new(MemorySink::default());
    let reason = failed_reason(begin(which, Cfg::default(), &base, &audit).await);
    assert!(
        reason.transport && reason.unknown_outcome && !reason.not_delivered,
        "{reason:?}"
    );
}

/// The peer resets the connection in the middle of the body.
async fn reset_mid_body(which: Which) {
    broken(which, Misbehave::ResetMidBody).await;
}

/// The peer closes before the promised `Content-Length`.
async fn truncated_body(which: Which) {
    broken(which, Misbehave::Truncate).await;
}

/// The server answers after the timeout: a timeout, outcome unknown.
async fn slow_server_times_out(which: Which) {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(completed_after(Duration::from_secs(3)))
        .mount(&server)
        .await;
    let cfg = Cfg {
        timeout: Duration::from_millis(300),
        ..Cfg::default()
    };
    let started = std::time::Instant::now();
    let error = send(which, cfg, update_request(&server.uri()))
        .await
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(error.is_timeout(), "{error:?}");
    assert!(!was_not_delivered(error.as_dyn()));
    assert_no_token(error.as_dyn());
}

fn completed_after(delay: Duration) -> impl Fn(&Request) -> ResponseTemplate + Send + Sync {
    move |r: &Request| completed(r).set_delay(delay)
}
