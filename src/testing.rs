//! Test doubles for bots: [`ScriptedTransport`], an in-memory transport that answers from a
//! script and records every request; with the `proptest` feature, [`strategies`] generating
//! Graph's answers.
//!
#![cfg_attr(feature = "proptest", doc = "[`strategies`]: self::strategies")]
#![cfg_attr(
    not(feature = "proptest"),
    doc = "The `proptest` feature is off in this build: `strategies` links back to this page.",
    doc = "",
    doc = "[`strategies`]: self"
)]

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};

use crate::transport::{BlockingTransport, HttpRequest, HttpResponse, Transport};

/// One scripted answer.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Step {
    /// Answer with this status and body (and optional headers).
    Respond {
        /// HTTP status.
        status: u16,
        /// Headers.
        headers: Vec<(String, String)>,
        /// Body bytes.
        body: Vec<u8>,
    },
    /// Fail without a response (as a reset or timeout would).
    Fail(String),
}

impl Step {
    /// A response with `status` and a JSON `body`.
    pub fn json(status: u16, body: &str) -> Self {
        Self::Respond {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.as_bytes().to_vec(),
        }
    }

    /// `200` with an `updateRecordingStatusOperation` whose status is `status` and whose
    /// `clientContext` is copied from the request (pass `None` for `null`).
    pub fn operation(status: Option<&str>) -> Self {
        let status = status.map_or_else(|| "null".to_owned(), |s| format!("\"{s}\""));
        Self::json(
            200,
            &format!(
                r##"{{"@odata.type":"#microsoft.graph.updateRecordingStatusOperation","clientContext":"$CONTEXT","id":"0fe0623f-d628-42ed-b4bd-8ac290072cc5","resultInfo":null,"status":{status}}}"##
            ),
        )
    }

    /// `200` with a `completed` operation.
    pub fn completed() -> Self {
        Self::operation(Some("completed"))
    }

    /// `200` with an `updateRecordingStatusOperation` whose status is `completed` but which may
    /// carry an error: a `resultInfo` with `result_code` (`None` for `"resultInfo": null`) and,
    /// when `completion_reason` is `Some`, a `completionReason`. With a code of 400 or more, or
    /// any reason but `completedSuccessfully`, it is no acknowledgement (see
    /// [`Operation::is_successful_completion`](crate::response::Operation::is_successful_completion)).
    ///
    /// # Example
    /// ```
    /// use recording_status::testing::Step;
    ///
    /// let refused = Step::completed_with(Some(500), None);
    /// let canceled = Step::completed_with(None, Some("mediaOperationCanceled"));
    /// # let _ = (refused, canceled);
    /// ```
    pub fn completed_with(result_code: Option<i64>, completion_reason: Option<&str>) -> Self {
        let mut body = serde_json::json!({
            "@odata.type": "#microsoft.graph.updateRecordingStatusOperation",
            "clientContext": "$CONTEXT",
            "id": "0fe0623f-d628-42ed-b4bd-8ac290072cc5",
            "resultInfo": result_code.map(|code| serde_json::json!({
                "@odata.type": "#microsoft.graph.resultInfo",
                "code": code,
                "subcode": 0,
                "message": "scripted",
            })),
            "status": "completed",
        });
        if let (Some(reason), Some(obj)) = (completion_reason, body.as_object_mut()) {
            obj.insert("completionReason".into(), reason.into());
        }
        Self::json(200, &body.to_string())
    }

    /// `200` with a `running` operation.
    pub fn running() -> Self {
        Self::operation(Some("running"))
    }

    /// A Graph error envelope with `status` and `code`.
    pub fn graph_error(status: u16, code: &str) -> Self {
        Self::json(
            status,
            &format!(r#"{{"error":{{"code":"{code}","message":"scripted"}}}}"#),
        )
    }

    /// No response: the transport fails with `message`.
    pub fn fail(message: &str) -> Self {
        Self::Fail(message.to_owned())
    }
}

/// The error a [`ScriptedTransport`] returns for [`Step::Fail`], or when the script is used up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("scripted transport failure: {0}")]
pub struct ScriptedError(String);

impl ScriptedError {
    /// The scripted message.
    pub fn message(&self) -> &str {
        &self.0
    }
}

/// An in-memory [`Transport`] and [`BlockingTransport`] that answers each request with the next
/// scripted [`Step`] and records the requests it saw.
///
/// In a body, `$CONTEXT` is replaced by the request's `clientContext`, so a scripted operation
/// echoes it like Graph does.
///
/// # Example
/// ```
/// use recording_status::testing::{ScriptedTransport, Step};
///
/// let transport = ScriptedTransport::new().then(Step::running()).then(Step::completed());
/// assert_eq!(transport.remaining(), 2);
/// ```
///
/// Clones share the script and the record, so a test can keep one and hand another to a
/// [`Graph`](crate::Graph).
#[derive(Default, Clone)]
pub struct ScriptedTransport {
    shared: Arc<Shared>,
}

#[derive(Default)]
struct Shared {
    script: Mutex<VecDeque<Step>>,
    seen: Mutex<Vec<HttpRequest>>,
}

impl ScriptedTransport {
    /// An empty script: every request fails.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a step.
    #[must_use]
    pub fn then(self, step: Step) -> Self {
        self.push(step);
        self
    }

    /// Appends a step to a shared transport.
    pub fn push(&self, step: Step) {
        self.shared
            .script
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push_back(step);
    }

    /// Steps not used yet.
    pub fn remaining(&self) -> usize {
        self.shared
            .script
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// The requests received so far, in order.
    pub fn requests(&self) -> Vec<HttpRequest> {
        self.shared
            .seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The JSON bodies of the requests received so far.
    pub fn bodies(&self) -> Vec<serde_json::Value> {
        self.requests()
            .iter()
            .map(|r| serde_json::from_slice(r.body()).unwrap_or(serde_json::Value::Null))
            .collect()
    }

    /// The `status` field of each request received so far.
    pub fn statuses(&self) -> Vec<String> {
        self.bodies()
            .iter()
            .map(|b| b["status"].as_str().unwrap_or_default().to_owned())
            .collect()
    }

    fn answer(&self, request: HttpRequest) -> Result<HttpResponse, ScriptedError> {
        let context = serde_json::from_slice::<serde_json::Value>(request.body())
            .ok()
            .and_then(|b| b["clientContext"].as_str().map(str::to_owned))
            .unwrap_or_default();
        self.shared
            .seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(request);
        let step = self
            .shared
            .script
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop_front();
        match step {
            None => Err(ScriptedError("script exhausted".into())),
            Some(Step::Fail(m)) => Err(ScriptedError(m)),
            Some(Step::Respond {
                status,
                headers,
                body,
            }) => {
                let body = String::from_utf8_lossy(&body)
                    .replace("$CONTEXT", &context)
                    .into_bytes();
                let mut builder = http::Response::builder().status(status);
                for (k, v) in headers {
                    builder = builder.header(k, v);
                }
                builder
                    .body(body)
                    .map_err(|e| ScriptedError(format!("bad scripted response: {e}")))
            }
        }
    }
}

impl fmt::Debug for ScriptedTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScriptedTransport")
            .field("remaining", &self.remaining())
            .field(
                "seen",
                &self
                    .shared
                    .seen
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .len(),
            )
            .finish()
    }
}

impl Transport for ScriptedTransport {
    type Error = ScriptedError;

    fn send(
        &self,
        request: HttpRequest,
    ) -> impl Future<Output = Result<HttpResponse, Self::Error>> + Send {
        std::future::ready(self.answer(request))
    }
}

impl BlockingTransport for ScriptedTransport {
    type Error = ScriptedError;

    fn send_blocking(&self, request: HttpRequest) -> Result<HttpResponse, Self::Error> {
        self.answer(request)
    }
}

/// proptest strategies for Graph's answers to `updateRecordingStatus`, to property-test a bot
/// against arbitrary Graph behaviour with [`ScriptedTransport`].
///
/// # Example
/// ```
/// use proptest::prelude::*;
/// use recording_status::testing::{ScriptedTransport, strategies};
///
/// proptest!(|(steps in proptest::collection::vec(strategies::step(), 1..8))| {
///     let transport = ScriptedTransport::new();
///     for step in steps {
///         transport.push(step);
///     }
///     // … drive the bot with `Graph::new(transport, token)` and check its invariants.
/// });
/// ```
#[cfg(feature = "proptest")]
pub mod strategies {
    use proptest::prelude::*;

    use super::Step;

    /// The JSON text of an `updateRecordingStatusOperation` (or `commsOperation`, or untyped)
    /// as a 2xx body could carry it: `status` in any casing (`completed`, `running`,
    /// `notStarted`, `failed`, unknown, `null` or missing), `resultInfo` missing, `null`, with
    /// codes on both sides of 400 (as numbers or strings, or unreadable) or not an object, and
    /// `completionReason` missing, `null`, `completedSuccessfully`, the documented error values
    /// (`unknown`, `mediaOperationCanceled`, `unknownFutureValue`), unknown strings or
    /// non-strings. `clientContext` is `$CONTEXT` (the request's own, see
    /// [`ScriptedTransport`](super::ScriptedTransport)) or missing.
    ///
    /// Only the bodies that are
    /// [successful completions](crate::response::Operation::is_successful_completion)
    /// acknowledge a request.
    pub fn operation_body() -> impl Strategy<Value = String> {
        use serde_json::{Map, Value, json};

        let odata_type = prop::option::of(prop::sample::select(
            &[
                "#microsoft.graph.updateRecordingStatusOperation",
                "#microsoft.graph.commsOperation",
                "updateRecordingStatusOperation",
            ][..],
        ));
        let status = prop::option::of(prop_oneof![
            4 => prop::sample::select(&["completed", "Completed", "COMPLETED"][..])
                .prop_map(Value::from),
            1 => prop::sample::select(&["running", "notStarted", "failed", "Failed", "paused"][..])
                .prop_map(Value::from),
            1 => Just(Value::Null),
        ]);
        let code = prop_oneof![
            4 => prop::sample::select(&[0i64, 200, 202, 204, 399, 400, 403, 404, 408, 500, 503][..])
                .prop_map(Value::from),
            2 => (-100i64..1000).prop_map(Value::from),
            1 => (-100i64..1000).prop_map(|c| Value::from(c.to_string())),
            1 => prop::sample::select(&[200.0f64, 400.0, 200.5, 1e19][..]).prop_map(Value::from),
            1 => prop_oneof![
                Just(Value::Null),
                Just(Value::Bool(true)),
                Just(Value::from("Forbidden")),
                Just(json!({"value": 200})),
            ],
        ];
        let result_info = prop_oneof![
            2 => Just(None),
            2 => Just(Some(Value::Null)),
            6 => (code, prop::option::of(0i64..10_000)).prop_map(|(code, subcode)| {
                Some(json!({
                    "@odata.type": "#microsoft.graph.resultInfo",
                    "code": code,
                    "subcode": subcode,
                    "message": "generated",
                }))
            }),
            1 => prop::sample::select(&["", "500"][..]).prop_map(|s| Some(Value::from(s))),
        ];
        let completion_reason = prop_oneof![
            4 => Just(None),
            1 => Just(Some(Value::Null)),
            3 => prop::sample::select(
                &["completedSuccessfully", "CompletedSuccessfully", "unknown", "mediaOperationCanceled",
                  "unknownFutureValue", ""][..],
            )
            .prop_map(|s| Some(Value::from(s))),
            1 => "[a-zA-Z]{0,12}".prop_map(|s| Some(Value::from(s))),
            1 => Just(Some(Value::from(0))),
        ];
        (
            odata_type,
            status,
            result_info,
            completion_reason,
            any::<bool>(),
        )
            .prop_map(|(odata_type, status, result_info, reason, echo)| {
                let mut obj = Map::new();
                if let Some(t) = odata_type {
                    obj.insert("@odata.type".into(), t.into());
                }
                if echo {
                    obj.insert("clientContext".into(), "$CONTEXT".into());
                }
                obj.insert("id".into(), "0fe0623f-d628-42ed-b4bd-8ac290072cc5".into());
                for (key, value) in [
                    ("resultInfo", result_info),
                    ("completionReason", reason),
                    ("status", status),
                ] {
                    if let Some(value) = value {
                        obj.insert(key.into(), value);
                    }
                }
                Value::Object(obj).to_string()
            })
    }

    /// Any answer Graph (or the network) can give: `completed` in either casing, `running`,
    /// `notStarted`, `null`, `failed` with `resultInfo`, `completed` with an error `resultInfo`
    /// or `completionReason` (and the other [`operation_body`]s), the Graph error envelope for
    /// 400, 401, 403 (incl. `8506`, `7504`, `7505`), 404, 429 and 503 (with or without
    /// `Retry-After`), 500, 502 and 504, redirects, empty and HTML bodies, a completion for
    /// someone else's `clientContext`, and transport failures.
    pub fn step() -> impl Strategy<Value = Step> {
        let error = (
            prop::sample::select(&[400u16, 401, 403, 404, 429, 500, 502, 503, 504][..]),
            prop::sample::select(
                &[
                    "8506",
                    "7504",
                    "7505",
                    "Forbidden",
                    "NotFound",
                    "activityLimitReached",
                    "InternalServerError",
                ][..],
            ),
        )
            .prop_map(|(status, code)| Step::graph_error(status, code));
        let throttled =
            (prop::sample::select(&[429u16, 503][..]), 0u64..5).prop_map(|(status, secs)| {
                Step::Respond {
                    status,
                    headers: vec![("Retry-After".into(), secs.to_string())],
                    body: br#"{"error":{"code":"TooManyRequests","message":"throttled"}}"#.to_vec(),
                }
            });
        prop_oneof![
            4 => Just(Step::completed()),
            1 => Just(Step::operation(Some("Completed"))),
            3 => Just(Step::running()),
            1 => Just(Step::operation(Some("notStarted"))),
            1 => Just(Step::operation(None)),
            1 => Just(Step::json(
                200,
                r#"{"status":"failed","clientContext":"$CONTEXT","resultInfo":{"code":500,"subcode":8510,"message":"x"}}"#,
            )),
            3 => error,
            2 => throttled,
            1 => Just(Step::json(301, "")),
            1 => Just(Step::json(200, "")),
            1 => Just(Step::json(200, "<html><body>gateway</body></html>")),
            1 => Just(Step::json(200, r#"{"clientContext":"someone-else","status":"completed"}"#)),
            1 => Just(Step::completed_with(Some(500), None)),
            1 => Just(Step::completed_with(None, Some("mediaOperationCanceled"))),
            3 => operation_body().prop_map(|body| Step::json(200, &body)),
            1 => Just(Step::fail("connection reset by peer")),
        ]
    }

    /// Whether `step`, as the answer to a `recording` request, is an acknowledgement that
    /// allows media to be persisted: a 2xx whose body is a
    /// [successful completion](crate::response::Operation::is_successful_completion) (status
    /// `completed`, no error in `resultInfo` or `completionReason`) that echoes the request's
    /// own `clientContext` (`$CONTEXT`) or none.
    pub fn acknowledges_recording(step: &Step) -> bool {
        match step {
            Step::Respond { status, body, .. } => {
                (200..300).contains(status)
                    && serde_json::from_slice::<serde_json::Value>(body)
                        .ok()
                        .and_then(|v| crate::response::Operation::from_json(&v))
                        .is_some_and(|op| {
                            op.is_successful_completion()
                                && op.client_context.as_deref().is_none_or(|c| c == "$CONTEXT")
                        })
            }
            Step::Fail(_) => false,
        }
    }
}
