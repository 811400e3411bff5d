//! What every test needs: a plain HTTP client (hyper-util's, no Graph client), Graph's
//! documented request, and a local webhook that records the notifications it receives.

use std::error::Error;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::routing::post;
use graph_emulator::{Emulator, RecordedRequest};
use http::{HeaderMap, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;
use tokio::sync::mpsc;

pub(crate) type TestResult = Result<(), Box<dyn Error>>;

/// The call id of the documentation's example.
pub(crate) const CALL: &str = "57dab8b1-894c-409a-b240-bd8beae78896";
/// The same call, spelled as Graph's notifications spell ids.
pub(crate) const CALL_UPPER: &str = "57DAB8B1894C409AB240BD8BEAE78896";
pub(crate) const OTHER: &str = "401f5d00-6a7e-4d35-8d6b-1f2f3e4d5c6b";
pub(crate) const TOKEN: &str = "super-secret-token-4711";
pub(crate) const CLIENT_REQUEST_ID: &str = "9f6b1d3e-0000-4000-8000-000000000001";

/// The documented request headers (`Authorization: Bearer {token}`, `Content-type:
/// application/json`) and a `client-request-id`.
pub(crate) const GOOD_HEADERS: &[(&str, &str)] = &[
    ("authorization", "Bearer super-secret-token-4711"),
    ("content-type", "application/json"),
    ("client-request-id", CLIENT_REQUEST_ID),
];

pub(crate) fn client() -> Client<HttpConnector, Body> {
    Client::builder(TokioExecutor::new()).build_http()
}

/// An HTTP answer, read whole.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Vec<u8>,
}

impl Answer {
    pub(crate) fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts Graph's error envelope (`concepts/errors.md`) and returns `error.code`.
    pub(crate) fn error_code(&self) -> String {
        let v = self.json();
        assert_eq!(self.header("content-type"), Some("application/json"));
        let error = v["error"].as_object().expect("an `error` object");
        assert!(v.as_object().is_some_and(|o| o.len() == 1), "{v}");
        assert!(error["message"].is_string(), "{v}");
        let inner = &v["error"]["innerError"];
        let date = inner["date"].as_str().expect("innerError.date");
        assert!(
            chrono::NaiveDateTime::parse_from_str(date, "%Y-%m-%dT%H:%M:%S").is_ok(),
            "{date}"
        );
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
        error["code"].as_str().unwrap_or_default().to_owned()
    }
}

/// One request on a fresh connection (so that no pooled connection is retried).
pub(crate) async fn send(
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

pub(crate) fn update_url(base: &str, call: &str) -> String {
    format!("{base}/communications/calls/{call}/updateRecordingStatus")
}

/// The documented request body.
pub(crate) fn body(status: &str, context: &str) -> Vec<u8> {
    serde_json::json!({ "clientContext": context, "status": status })
        .to_string()
        .into_bytes()
}

/// A valid `recording` update with `clientContext` `ctx-1`.
pub(crate) async fn update(emulator: &Emulator, call: &str) -> Answer {
    send(
        "POST",
        &update_url(&emulator.base_url(), call),
        GOOD_HEADERS,
        body("recording", "ctx-1"),
    )
    .await
    .expect("an answer")
}

pub(crate) fn assert_no_token(requests: &[RecordedRequest]) {
    assert!(!format!("{requests:?}").contains(TOKEN));
}

/// `GET url`, as JSON.
pub(crate) async fn get_json(url: &str) -> Result<Value, Box<dyn Error>> {
    let answer = send("GET", url, &[], Vec::new()).await?;
    assert_eq!(answer.status, 200, "{url}: {answer:?}");
    Ok(serde_json::from_slice(&answer.body)?)
}

// ---------------------------------------------------------------------------------------------
// A local notification webhook

/// A bot's webhook on 127.0.0.1: records what it receives and answers a fixed status.
pub(crate) struct Webhook {
    pub(crate) url: String,
    received: mpsc::UnboundedReceiver<(HeaderMap, Vec<u8>)>,
}

type Hooked = (mpsc::UnboundedSender<(HeaderMap, Vec<u8>)>, StatusCode);

impl Webhook {
    /// Answers `202 Accepted`, as Microsoft's SDK does.
    pub(crate) async fn start() -> Self {
        Self::answering(StatusCode::ACCEPTED).await
    }

    pub(crate) async fn answering(status: StatusCode) -> Self {
        let (tx, received) = mpsc::unbounded_channel();
        async fn hook(
            State((tx, status)): State<Hooked>,
            headers: HeaderMap,
            body: Bytes,
        ) -> StatusCode {
            let _ = tx.send((headers, body.to_vec()));
            status
        }
        let app = Router::new()
            .route("/api/calling", post(hook))
            .with_state((tx, status));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a loopback port");
        let addr = listener.local_addr().expect("an address");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            url: format!("http://{addr}/api/calling"),
            received,
        }
    }

    /// The next notification (within 5 s): its headers and JSON body.
    pub(crate) async fn next(&mut self) -> (HeaderMap, Value) {
        let (headers, body) = tokio::time::timeout(Duration::from_secs(5), self.received.recv())
            .await
            .expect("a notification within 5 s")
            .expect("webhook alive");
        (headers, serde_json::from_slice(&body).expect("json"))
    }

    pub(crate) async fn nothing_more(&mut self) {
        let more = tokio::time::timeout(Duration::from_millis(300), self.received.recv()).await;
        assert!(more.is_err(), "unexpected notification: {more:?}");
    }
}

/// Waits (boundedly) until `emulator` counts `n` notifications sent: it counts one once the
/// webhook's answer is read, which may be just after the webhook handed the body over.
pub(crate) async fn wait_for_sent(emulator: &Emulator, n: usize) {
    for _ in 0..200 {
        if emulator.notifications_sent() >= n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(emulator.notifications_sent(), n);
}
