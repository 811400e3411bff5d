//! One `NotRecording → Recording → NotRecording` round trip (a `recording` then a
//! `notRecording` request, both answered `completed` by [`completed`], in process), three
//! ways. Shared by `benches/core.rs` (time) and `benches/memory.rs` (allocations), so that both
//! measure the same work.
//!
//! Every way does, for each of the two requests: a fresh `clientContext` and
//! `client-request-id` (UUID v4 each), the JSON body `{"clientContext":…,"status":…}`, a
//! `POST` to the call's `…/updateRecordingStatus` URL (built and parsed into a URI), the
//! headers `Authorization: Bearer …` (marked sensitive), `Content-Type: application/json` and
//! `client-request-id`; the same in-process answer (a 200 whose 147-byte
//! `updateRecordingStatusOperation` body is copied into a fresh `Vec`); that body parsed as
//! JSON and checked to be a completed operation. What differs is what surrounds that work.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use http::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use recording_status::audit::AuditSink;
use recording_status::request::UpdateRequest;
use recording_status::response::{Outcome, interpret_response};
use recording_status::transport::{HttpRequest, HttpResponse};
use recording_status::{AccessToken, Begin, CallId, Calls, Endpoint, Graph, RecordingStatus};

/// The call every round trip is about.
pub(crate) const CALL: &str = "57dab8b1-894c-409a-b240-bd8beae78896";

/// Graph's documented synchronous answer (147 bytes).
pub(crate) const COMPLETED: &[u8] = br##"{"@odata.type":"#microsoft.graph.updateRecordingStatusOperation","id":"0fe0623f-d628-42ed-b4bd-8ac290072cc5","resultInfo":null,"status":"completed"}"##;

/// The in-process transport: answers every request `200` with [`COMPLETED`].
pub(crate) fn completed(_: HttpRequest) -> Result<HttpResponse, http::Error> {
    http::Response::builder()
        .status(200)
        .body(COMPLETED.to_vec())
}

type Answer = fn(HttpRequest) -> Result<HttpResponse, http::Error>;

/// (a) The typed API: `Calls::open`, `Call::begin_recording_blocking` (answered `completed`:
/// `Call<Recording>`), one `Retention` minted and dropped, `Call::stop_recording_blocking`,
/// and the `Call<NotRecording>` dropped (its registry seat freed). Includes the registry, the
/// typestate transitions, the retention gate's bookkeeping, the per-call lock, the tracing
/// calls and the audit events (handed to `audit`, which for the benches is `Discard`). One
/// registry for every round trip, as a bot has.
pub(crate) struct Typed {
    graph: Graph<Answer>,
    calls: Calls,
    id: CallId,
}

impl Typed {
    pub(crate) fn new(audit: Arc<dyn AuditSink>) -> Self {
        Self {
            graph: Graph::new(completed as Answer, AccessToken::new("token")),
            calls: Calls::new(audit),
            id: CALL.parse().unwrap(),
        }
    }

    pub(crate) fn round_trip(&self) -> bool {
        let call = self.calls.open(self.id.clone()).unwrap();
        let Ok(Begin::Recording(call)) = call.begin_recording_blocking(&self.graph) else {
            unreachable!("scripted to complete")
        };
        drop(black_box(call.retention().unwrap()));
        black_box(
            call.stop_recording_blocking(&self.graph, Duration::ZERO)
                .is_ok(),
        )
    }
}

/// (b) The crate's sans-IO functions only: `UpdateRequest::new` (fresh context and request
/// id), `UpdateRequest::to_http`, the transport, `interpret_response` (checked to be
/// `Outcome::Completed`). No typestate, no registry, no audit, no retry loop.
pub(crate) struct SansIo {
    endpoint: Endpoint,
    token: AccessToken,
    id: CallId,
}

impl SansIo {
    pub(crate) fn new() -> Self {
        Self {
            endpoint: Endpoint::default(),
            token: AccessToken::new("token"),
            id: CALL.parse().unwrap(),
        }
    }

    pub(crate) fn round_trip(&self) -> bool {
        let mut ok = true;
        for status in [RecordingStatus::Recording, RecordingStatus::NotRecording] {
            let request = UpdateRequest::new(status)
                .to_http(&self.endpoint, &self.id, &self.token)
                .unwrap();
            let response = completed(black_box(request)).unwrap();
            ok &= matches!(
                black_box(interpret_response(&response)),
                Outcome::Completed { .. }
            );
        }
        ok
    }
}

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct Body<'a> {
    client_context: &'a str,
    status: &'a str,
}

/// (c) Bare `serde_json` and `http`, as a bot without this crate would write it: two UUIDs,
/// the body serialized from a borrowed struct, `http::Request::builder`, the answer parsed
/// into a `serde_json::Value` and read: 2xx, `status` is `completed`, `resultInfo` is absent,
/// `null` or has a `code` below 400. Not checked here, and checked by the crate:
/// `completionReason`, `@odata.type`, lenient number forms, and the parsed operation is not
/// kept (the crate copies its strings into an `Operation`).
pub(crate) struct Plain {
    token: String,
}

impl Plain {
    pub(crate) fn new() -> Self {
        Self {
            token: "token".to_owned(),
        }
    }

    fn completed(response: &HttpResponse) -> bool {
        if !response.status().is_success() {
            return false;
        }
        let Ok(op) = serde_json::from_slice::<serde_json::Value>(response.body()) else {
            return false;
        };
        let code_ok = match op.get("resultInfo") {
            None | Some(serde_json::Value::Null) => true,
            Some(info) => info
                .get("code")
                .and_then(serde_json::Value::as_i64)
                .is_none_or(|c| (0..400).contains(&c)),
        };
        op.get("status").and_then(serde_json::Value::as_str) == Some("completed") && code_ok
    }

    pub(crate) fn round_trip(&self) -> bool {
        let mut ok = true;
        for status in ["recording", "notRecording"] {
            let context = uuid::Uuid::new_v4().to_string();
            let request_id = uuid::Uuid::new_v4().to_string();
            let body = serde_json::to_vec(&Body {
                client_context: &context,
                status,
            })
            .unwrap();
            let mut auth = HeaderValue::try_from(format!("Bearer {}", self.token)).unwrap();
            auth.set_sensitive(true);
            let request = http::Request::builder()
                .method(http::Method::POST)
                .uri(format!(
                    "https://graph.microsoft.com/v1.0/communications/calls/{CALL}/updateRecordingStatus"
                ))
                .header(AUTHORIZATION, auth)
                .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
                .header("client-request-id", request_id)
                .body(body)
                .unwrap();
            let response = completed(black_box(request)).unwrap();
            ok &= black_box(Self::completed(&response));
        }
        ok
    }
}
