//! Property tests.
//!
//! 1. [`interpret_response`] and [`GraphError::from_response`] are total (never panic) on any
//!    status, header set and body, and honest: only a 2xx whose body is a successful
//!    completion (`status` `completed`, ASCII case-insensitively, with no error `resultInfo.code`
//!    or `completionReason`) is [`Outcome::Completed`]; a 2xx `completed` with an error is
//!    [`Outcome::Failed`].
//! 2. G1 under arbitrary transport behaviour: one call driven through the real async API by a
//!    random sequence of bot actions and scripted Graph answers, checked after every action
//!    against a hand-written reference model, the wire, and [`verify`].

use std::future::{pending, ready};
use std::sync::Arc;

use proptest::collection::vec;
use proptest::prelude::*;
use recording_status::audit::{AuditKind, MemorySink, verify};
use recording_status::http::{self, HeaderName, HeaderValue, StatusCode};
use recording_status::response::{GraphError, Operation, Outcome, interpret_response};
use recording_status::testing::{ScriptedTransport, Step};
use recording_status::{AnyCall, CallState, Error, Graph, RetentionHandle, StopError};
use serde_json::Value;

use crate::support::graph::{graph, open, proof};
use crate::support::ids::{OP_UPPER, normalized};
use crate::support::{block_on, proptest_config};

/// The id `Step::operation` gives, as a notification may spell it (upper case, no dashes).
const OWN_OPERATION_ID: &str = OP_UPPER;
const FOREIGN_OPERATION_ID: &str = "ffffffff-0000-4000-8000-000000000000";

fn says_completed(v: &Value) -> bool {
    v.get("status")
        .and_then(Value::as_str)
        .is_some_and(|s| s.eq_ignore_ascii_case("completed"))
}

// ---------------------------------------------------------------------------------------------
// 1. Response interpretation
// ---------------------------------------------------------------------------------------------

const KEYS: &[&str] = &[
    "status",
    "error",
    "code",
    "message",
    "innerError",
    "innererror",
    "clientContext",
    "id",
    "resultInfo",
    "subcode",
    "request-id",
    "requestId",
    "client-request-id",
    "clientRequestId",
    "date",
    "@odata.type",
];

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(KEYS).prop_map(str::to_owned),
        1 => "[a-zA-Z@.-]{0,8}",
    ]
}

/// A JSON text fragment: mostly valid values of every type, some not JSON at all.
fn fragment() -> BoxedStrategy<String> {
    prop_oneof![
        4 => prop::sample::select(&[
            r#""completed""#, r#""Completed""#, r#""COMPLETED""#, r#""cOmPlEtEd""#,
            r#""\u0063ompleted""#, r#""completed ""#, r#""complete""#, r#""running""#,
            r#""notStarted""#, r#""failed""#, r#""Failed""#, r#""unknownFutureValue""#, r#""""#,
            r#""8506""#, r#""7504""#, r#""7505""#, "8506", "null", "true", "false", "0", "-1",
            "1e400", "[]", "{}", r#"["completed"]"#, r#"{"status":"completed"}"#, "NaN", "'x'",
        ][..])
        .prop_map(str::to_owned),
        1 => any::<i64>().prop_map(|n| n.to_string()),
        1 => any::<f64>().prop_map(|f| f.to_string()),
        2 => any::<String>().prop_map(|s| serde_json::to_string(&s).unwrap_or_default()),
        1 => "[ -~]{0,12}",
    ]
    .boxed()
}

/// `{"status": …}` with optional other operation fields, in any order, maybe twice.
fn operation_body() -> impl Strategy<Value = String> {
    (
        vec((prop::sample::select(KEYS), fragment()), 0..5),
        fragment(),
        any::<bool>(),
    )
        .prop_map(|(mut fields, status, status_last)| {
            let at = if status_last { fields.len() } else { 0 };
            fields.insert(at, ("status", status));
            let fields: Vec<String> = fields
                .iter()
                .map(|(k, v)| format!(r#""{k}":{v}"#))
                .collect();
            format!("{{{}}}", fields.join(","))
        })
}

/// Graph's error envelope with `innerError` nested up to 40 deep, some fields of wrong types,
/// or an `error` that is not an object at all.
fn error_body() -> impl Strategy<Value = String> {
    let level = (
        prop::sample::select(&["innerError", "innererror", "InnerError"][..]),
        prop::option::of(fragment()),
        vec(
            (
                prop::sample::select(
                    &[
                        "request-id",
                        "requestId",
                        "client-request-id",
                        "clientRequestId",
                        "date",
                    ][..],
                ),
                fragment(),
            ),
            0..3,
        ),
    );
    (
        prop::option::of(fragment()),
        prop::option::of(fragment()),
        vec(level, 0..=40),
        prop::option::of(fragment()),
    )
        .prop_map(|(code, message, levels, not_an_object)| {
            if let Some(v) = not_an_object {
                return format!(r#"{{"error":{v}}}"#);
            }
            let field = |k: &str, v: &Option<String>| {
                v.as_ref()
                    .map(|v| format!(r#""{k}":{v},"#))
                    .unwrap_or_default()
            };
            let mut s = format!(
                r#"{{"error":{{{}{}"x":0"#,
                field("code", &code),
                field("message", &message)
            );
            for (name, code, extras) in &levels {
                s.push_str(&format!(r#","{name}":{{{}"y":1"#, field("code", code)));
                for (k, v) in extras {
                    s.push_str(&format!(r#","{k}":{v}"#));
                }
            }
            s.push_str(&"}".repeat(levels.len()));
            s.push_str("}}");
            s
        })
}

fn json_tree() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        prop::sample::select(&["completed", "Completed", "running", "failed", "8506", ""][..])
            .prop_map(Value::from),
        any::<String>().prop_map(Value::from),
    ];
    leaf.prop_recursive(6, 48, 6, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..6).prop_map(Value::Array),
            vec((key(), inner), 0..6).prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

fn json_shaped() -> impl Strategy<Value = String> {
    prop_oneof![
        operation_body(),
        error_body(),
        json_tree().prop_map(|v| v.to_string()),
    ]
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        1 => vec(any::<u8>(), 0..96),
        1 => any::<String>().prop_map(String::into_bytes),
        1 => "[ \t\r\n\x0c]{0,4}".prop_map(String::into_bytes),
        5 => json_shaped().prop_map(String::into_bytes),
        // Cut short, possibly inside a UTF-8 sequence.
        1 => (json_shaped(), any::<prop::sample::Index>()).prop_map(|(s, i)| {
            let mut b = s.into_bytes();
            b.truncate(i.index(b.len() + 1));
            b
        }),
    ]
}

fn header() -> impl Strategy<Value = (String, Vec<u8>)> {
    let name = prop_oneof![
        3 => prop::sample::select(
            &["request-id", "client-request-id", "date", "Date", "location", "Location", "content-type"][..],
        )
        .prop_map(str::to_owned),
        1 => "[a-zA-Z0-9!#$%&'*+.^_`|~-]{1,16}",
        1 => "[ -~]{0,8}", // often not a valid name: skipped
    ];
    let value = prop_oneof![
        4 => "[!-~]{0,40}".prop_map(String::into_bytes),
        1 => "[ -~]{0,40}".prop_map(String::into_bytes),
        1 => vec(any::<u8>(), 0..24), // obs-text, controls: some rejected by `http`
    ];
    (name, value)
}

proptest! {
    #![proptest_config(proptest_config())]

    #[test]
    fn responses_are_total_and_honest(
        code in 100u16..=999,
        headers in vec(header(), 0..6),
        // With feature `proptest`, also the exported operation bodies: `completed` with
        // `resultInfo` codes on both sides of 400 and every kind of `completionReason`.
        body in {
            #[cfg(feature = "proptest")]
            let bodies = prop_oneof![
                3 => body(),
                1 => recording_status::testing::strategies::operation_body()
                    .prop_map(String::into_bytes),
            ]
            .boxed();
            #[cfg(not(feature = "proptest"))]
            let bodies = body().boxed();
            bodies
        },
    ) {
        let mut response = http::Response::new(body.clone());
        *response.status_mut() = StatusCode::from_u16(code).expect("100..=999 is a status");
        for (name, value) in &headers {
            // Only what `http` accepts can reach the crate.
            if let (Ok(n), Ok(v)) =
                (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_bytes(value))
            {
                response.headers_mut().append(n, v);
            }
        }

        let outcome = interpret_response(&response);
        let error = GraphError::from_response(&response);
        // Formatting and classification must not panic either.
        let _ = (format!("{outcome:?}"), format!("{error:?}"), error.to_string(), error.permanent());

        prop_assert_eq!(error.status.as_u16(), code);
        prop_assert_eq!(&error.body, &body);
        let header = |n: &str| response.headers().get(n).and_then(|v| v.to_str().ok());
        if let Some(id) = header("request-id") {
            prop_assert_eq!(error.request_id.as_deref(), Some(id));
        }

        let success = (200..300).contains(&code);
        if !success {
            prop_assert!(matches!(outcome, Outcome::GraphError(_)), "{:?}", outcome);
        } else {
            prop_assert!(!matches!(outcome, Outcome::GraphError(_)), "{:?}", outcome);
        }
        // The rule, restated on the raw JSON: Completed iff 2xx and the operation is a
        // successful completion. `status` says `completed`; `resultInfo` is missing, `null`, or
        // an object whose `code` is missing, `null` or an integer (JSON integer, integral number
        // or integer string) from 0 to 399; `completionReason` is missing, `null` or
        // `completedSuccessfully` (ASCII case-insensitively). Anything else fails closed.
        let code_ok = |code: Option<&Value>| match code {
            None | Some(Value::Null) => true,
            Some(Value::Number(n)) => n.as_i64().map_or_else(
                || n.as_f64().is_some_and(|f| f.fract() == 0.0 && (0.0..400.0).contains(&f)),
                |i| (0..400).contains(&i),
            ),
            Some(Value::String(s)) => s.trim().parse::<i64>().is_ok_and(|i| (0..400).contains(&i)),
            Some(_) => false,
        };
        let result_ok = |v: &Value| match v.get("resultInfo") {
            None | Some(Value::Null) => true,
            Some(Value::Object(info)) => code_ok(info.get("code")),
            Some(_) => false,
        };
        let reason_ok = |v: &Value| match v.get("completionReason") {
            None | Some(Value::Null) => true,
            Some(Value::String(r)) => r.eq_ignore_ascii_case("completedSuccessfully"),
            Some(_) => false,
        };
        // Only a recording operation (or Graph's base type, or an untyped body) answers the
        // request; any other `@odata.type` is not an answer (unknown outcome).
        let recording_type = |v: &Value| match v.get("@odata.type") {
            None | Some(Value::Null) => true,
            Some(Value::String(t)) => {
                let t = t.trim_start_matches('#');
                let t = t
                    .get(..16)
                    .filter(|p| p.eq_ignore_ascii_case("microsoft.graph."))
                    .map_or(t, |_| &t[16..]);
                t.eq_ignore_ascii_case("updateRecordingStatusOperation")
                    || t.eq_ignore_ascii_case("commsOperation")
            }
            Some(_) => false,
        };
        let json = serde_json::from_slice::<Value>(&body)
            .ok()
            .filter(Value::is_object)
            .filter(recording_type);
        let completed_body = json.as_ref().is_some_and(says_completed);
        let acknowledged = json
            .as_ref()
            .is_some_and(|v| says_completed(v) && result_ok(v) && reason_ok(v));
        prop_assert_eq!(
            matches!(outcome, Outcome::Completed { .. }),
            success && acknowledged,
            "{:?}", outcome
        );
        // Fail closed: a 2xx `completed` that carries an error is a failure, never pending.
        if success && completed_body && !acknowledged {
            prop_assert!(matches!(outcome, Outcome::Failed { .. }), "{:?}", outcome);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// 2. G1 under arbitrary transport behaviour
// ---------------------------------------------------------------------------------------------

/// A scripted Graph answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Script {
    Completed,
    Running,
    OpNull,
    OpNotStarted,
    OpFailed,
    OpCompletedPascal,
    GraphError(u16, &'static str),
    Html,
    Empty200,
    Empty204,
    Redirect,
    ForeignCompleted,
    Reset,
}

/// What the reference model expects a `recording` request to lead to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Next {
    Recording,
    Pending { knows_operation_id: bool },
    Failed,
}

impl Script {
    fn step(self) -> Step {
        match self {
            Self::Completed => Step::completed(),
            Self::Running => Step::running(),
            Self::OpNull => Step::operation(None),
            Self::OpNotStarted => Step::operation(Some("notStarted")),
            Self::OpFailed => Step::operation(Some("failed")),
            Self::OpCompletedPascal => Step::operation(Some("Completed")),
            Self::GraphError(s, code) => Step::graph_error(s, code),
            Self::Html => Step::json(200, "<html>"),
            Self::Empty200 => Step::json(200, ""),
            Self::Empty204 => Step::json(204, ""),
            Self::Redirect => Step::json(301, ""),
            Self::ForeignCompleted => Step::json(
                200,
                r#"{"clientContext":"someone-else","status":"completed"}"#,
            ),
            Self::Reset => Step::fail("reset"),
        }
    }

    /// Hand-written reading of this answer to a `recording` request (Graph docs: only a 2xx
    /// `completed` for our own `clientContext` acknowledges; null/running/notStarted/empty wait
    /// for a notification; anything else is not an acknowledgement).
    fn after_recording(self) -> Next {
        match self {
            Self::Completed | Self::OpCompletedPascal => Next::Recording,
            Self::Running | Self::OpNull | Self::OpNotStarted => Next::Pending {
                knows_operation_id: true,
            },
            Self::Empty200 | Self::Empty204 => Next::Pending {
                knows_operation_id: false,
            },
            Self::OpFailed
            | Self::GraphError(..)
            | Self::Html
            | Self::Redirect
            | Self::ForeignCompleted
            | Self::Reset => Next::Failed,
        }
    }

    /// Whether Graph refused a `recording` request outright with this answer (400, 403, 404,
    /// or the permanent codes 8506, 7504, 7505): nothing was accepted, so no `failed` follows.
    fn refused_outright(self) -> bool {
        matches!(self, Self::GraphError(400 | 403 | 404, _))
            || matches!(self, Self::GraphError(_, "8506" | "7504" | "7505"))
    }

    /// Whether this answer acknowledges a `notRecording`/`failed` report (the crate's documented
    /// rule: a 2xx that is `completed` or not final yet).
    fn acknowledges_report(self) -> bool {
        !matches!(
            self,
            Self::OpFailed | Self::GraphError(..) | Self::Html | Self::Redirect | Self::Reset
        )
    }
}

fn script() -> impl Strategy<Value = Script> {
    let error = (
        prop::sample::select(&[400u16, 401, 403, 404, 429, 500, 503, 504][..]),
        prop::sample::select(
            &[
                "8506",
                "7504",
                "7505",
                "Forbidden",
                "NotFound",
                "TooManyRequests",
                "InternalServerError",
            ][..],
        ),
    )
        .prop_map(|(s, c)| Script::GraphError(s, c));
    prop_oneof![
        5 => Just(Script::Completed),
        3 => Just(Script::Running),
        1 => Just(Script::OpNull),
        1 => Just(Script::OpNotStarted),
        1 => Just(Script::OpFailed),
        1 => Just(Script::OpCompletedPascal),
        2 => error,
        1 => Just(Script::Html),
        1 => Just(Script::Empty200),
        1 => Just(Script::Empty204),
        1 => Just(Script::Redirect),
        1 => Just(Script::ForeignCompleted),
        1 => Just(Script::Reset),
    ]
}

/// Whom a notification is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    OwnContext,
    /// The `clientContext` of an earlier `recording` request of this call.
    StaleContext,
    ForeignContext,
    ForeignId,
    /// The operation id from `Step::operation`, spelled differently.
    OwnOperationId,
}

#[derive(Debug, Clone)]
enum Action {
    Begin(Script, Option<Script>),
    Notify(Target, &'static str, Option<Script>),
    Abandon(Option<Script>),
    TryRetain { borrowed: bool, owned: bool },
    SpawnHandle,
    DropHandles { all: bool },
    Stop(Script, Option<Script>),
    ReportFailure(Script),
    End,
}

fn action() -> impl Strategy<Value = Action> {
    let follow_up = || prop::option::of(script());
    let target = prop::sample::select(
        &[
            Target::OwnContext,
            Target::OwnContext,
            Target::StaleContext,
            Target::ForeignContext,
            Target::ForeignId,
            Target::OwnOperationId,
        ][..],
    );
    let status = prop::sample::select(&["completed", "Completed", "failed", "running"][..]);
    prop_oneof![
        4 => (script(), follow_up()).prop_map(|(a, f)| Action::Begin(a, f)),
        4 => (target, status, follow_up()).prop_map(|(t, s, f)| Action::Notify(t, s, f)),
        1 => follow_up().prop_map(Action::Abandon),
        2 => (any::<bool>(), any::<bool>())
            .prop_map(|(borrowed, owned)| Action::TryRetain { borrowed, owned }),
        2 => Just(Action::SpawnHandle),
        2 => any::<bool>().prop_map(|all| Action::DropHandles { all }),
        3 => (script(), follow_up()).prop_map(|(a, f)| Action::Stop(a, f)),
        1 => script().prop_map(Action::ReportFailure),
        1 => Just(Action::End),
    ]
}

/// The reference model of the call's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Model {
    NotRecording,
    Pending { knows_operation_id: bool },
    Recording,
    Failed,
}

impl Model {
    fn state(self) -> CallState {
        match self {
            Self::NotRecording => CallState::NotRecording,
            Self::Pending { .. } => CallState::PendingRecording,
            Self::Recording => CallState::Recording,
            Self::Failed => CallState::Failed,
        }
    }
}

impl From<Next> for Model {
    fn from(n: Next) -> Self {
        match n {
            Next::Recording => Self::Recording,
            Next::Pending { knows_operation_id } => Self::Pending { knows_operation_id },
            Next::Failed => Self::Failed,
        }
    }
}

/// A notification handed to the pending call, as sent.
struct Note {
    /// How many requests were on the wire when it was handed over.
    wire_len: usize,
    id: Option<String>,
    context: Option<String>,
    status: &'static str,
}

struct Harness {
    graph: Graph<ScriptedTransport>,
    sink: Arc<MemorySink>,
    /// The scripted answer to each request on the wire (`None`: script exhausted).
    answers: Vec<Option<Step>>,
    notes: Vec<Note>,
    handles: Vec<RetentionHandle>,
    minted: usize,
    model: Model,
    /// The `status` of each request the current action is expected to send.
    expected: Vec<&'static str>,
}

impl Harness {
    fn new() -> Self {
        Self {
            graph: graph([]),
            sink: Arc::new(MemorySink::default()),
            answers: Vec::new(),
            notes: Vec::new(),
            handles: Vec::new(),
            minted: 0,
            model: Model::NotRecording,
            expected: Vec::new(),
        }
    }

    fn transport(&self) -> &ScriptedTransport {
        self.graph.transport()
    }

    /// Expects one more request with `status`, answered by `answer` (or by script exhaustion).
    fn expect(&mut self, status: &'static str, answer: Option<Script>) {
        let step = answer.map(Script::step);
        if let Some(s) = &step {
            self.transport().push(s.clone());
        }
        self.answers.push(step);
        self.expected.push(status);
    }

    /// `clientContext`s of the `recording` requests on the wire, with their positions.
    fn recording_requests(&self) -> Vec<(usize, String)> {
        self.transport()
            .bodies()
            .iter()
            .enumerate()
            .filter(|(_, b)| b["status"] == "recording")
            .map(|(i, b)| {
                (
                    i,
                    b["clientContext"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect()
    }

    /// Invariant (a), from the wire alone: the last `recording` request was answered 2xx
    /// `completed` with our (or no) `clientContext`, or a matching completed notification was
    /// handed over after it.
    fn wire_acknowledged(&self) -> bool {
        let Some((i, context)) = self.recording_requests().pop() else {
            return false;
        };
        let answer: Option<Value> = match &self.answers[i] {
            Some(Step::Respond { status, body, .. }) if (200..300).contains(status) => {
                serde_json::from_str(&String::from_utf8_lossy(body).replace("$CONTEXT", &context))
                    .ok()
            }
            _ => None,
        };
        let by_response = answer.as_ref().is_some_and(|v| {
            v.is_object()
                && says_completed(v)
                && v.get("clientContext")
                    .and_then(Value::as_str)
                    .is_none_or(|c| c == context)
        });
        let operation_id = answer
            .as_ref()
            .and_then(|v| v.get("id"))
            .and_then(Value::as_str)
            .map(normalized);
        let by_note = self.notes.iter().filter(|n| n.wire_len > i).any(|n| {
            n.status.eq_ignore_ascii_case("completed")
                && (n.context.as_deref() == Some(context.as_str())
                    || (operation_id.is_some() && n.id.as_deref().map(normalized) == operation_id))
        });
        by_response || by_note
    }

    /// Invariant (b): a capability is minted only while the model (and the wire) say Recording.
    fn minting(&mut self) {
        assert_eq!(self.model, Model::Recording, "minting outside Recording");
        assert!(
            self.wire_acknowledged(),
            "minting without a completed acknowledgement"
        );
        self.minted += 1;
    }

    /// The `id` and `clientContext` of a notification about `target`.
    fn notification(&self, target: Target) -> (Option<String>, Option<String>) {
        let contexts = self.recording_requests();
        match target {
            Target::OwnContext => (None, contexts.last().map(|(_, c)| c.clone())),
            Target::StaleContext => (
                None,
                Some(
                    contexts
                        .iter()
                        .rev()
                        .nth(1)
                        .map_or("stale", |(_, c)| c)
                        .to_owned(),
                ),
            ),
            Target::ForeignContext => (None, Some("someone-else".to_owned())),
            Target::ForeignId => (Some(FOREIGN_OPERATION_ID.to_owned()), None),
            Target::OwnOperationId => (Some(OWN_OPERATION_ID.to_owned()), None),
        }
    }

    /// Runs one action against the real API; `None` once the call has ended.
    async fn act(&mut self, call: AnyCall, action: &Action) -> Option<AnyCall> {
        Some(match (call, action) {
            (AnyCall::NotRecording(c), Action::Begin(a, f)) => {
                self.begin(*a, *f);
                match c.begin_recording(&self.graph).await {
                    Ok(b) => b.into(),
                    Err(e) => panic!("nothing sent: {}", e.error),
                }
            }
            (AnyCall::Failed(c), Action::Begin(a, f)) => {
                self.begin(*a, *f);
                match c.begin_recording(&self.graph).await {
                    Ok(b) => b.into(),
                    Err(e) => panic!("nothing sent: {}", e.error),
                }
            }
            (AnyCall::PendingRecording(c), Action::Notify(target, status, f)) => {
                let Model::Pending { knows_operation_id } = self.model else {
                    panic!("model {:?} but the call is pending", self.model)
                };
                let (id, context) = self.notification(*target);
                if *target == Target::OwnContext {
                    assert_eq!(context.as_deref(), Some(c.client_context()));
                }
                let matched = *target == Target::OwnContext
                    || (*target == Target::OwnOperationId && knows_operation_id);
                if matched && status.eq_ignore_ascii_case("completed") {
                    self.model = Model::Recording;
                } else if matched && *status == "failed" {
                    self.model = Model::Failed;
                    self.expect("failed", *f);
                }
                let json =
                    serde_json::json!({ "id": id, "clientContext": context, "status": status });
                let operation = Operation::from_json(&json).expect("an object");
                self.notes.push(Note {
                    wire_len: self.transport().requests().len(),
                    id,
                    context,
                    status,
                });
                c.handle_operation(&self.graph, &proof(), &operation)
                    .await
                    .into()
            }
            (AnyCall::PendingRecording(c), Action::Abandon(f)) => {
                self.model = Model::Failed;
                self.expect("failed", *f);
                let failed = c.abandon(&self.graph).await;
                assert!(matches!(failed.reason(), Error::Abandoned));
                AnyCall::Failed(failed)
            }
            (AnyCall::Recording(c), Action::TryRetain { borrowed, owned }) => {
                if *borrowed {
                    self.minting();
                    drop(c.retention().expect("memory sink accepts"));
                }
                if *owned {
                    self.minting();
                    drop(c.retention_handle().expect("memory sink accepts"));
                }
                AnyCall::Recording(c)
            }
            (AnyCall::Recording(c), Action::SpawnHandle) => {
                self.minting();
                self.handles
                    .push(c.retention_handle().expect("memory sink accepts"));
                AnyCall::Recording(c)
            }
            (call, Action::DropHandles { all }) => {
                if *all {
                    self.handles.clear();
                } else {
                    self.handles.pop();
                }
                call
            }
            (AnyCall::Recording(c), Action::Stop(a, f)) => {
                if self.handles.is_empty() {
                    self.expect("notRecording", Some(*a));
                    if a.acknowledges_report() {
                        self.model = Model::NotRecording;
                    } else {
                        self.model = Model::Failed;
                        self.expect("failed", *f);
                    }
                    match c.stop_recording(&self.graph, pending::<()>()).await {
                        Ok(c) => AnyCall::NotRecording(c),
                        Err(StopError::Unacknowledged { call }) => AnyCall::Failed(call),
                        Err(e) => panic!("no handle is alive, yet: {e}"),
                    }
                } else {
                    self.still_recording(c.stop_recording(&self.graph, ready(())).await.map(|_| ()))
                }
            }
            (AnyCall::Recording(c), Action::ReportFailure(a)) => {
                if self.handles.is_empty() {
                    self.expect("failed", Some(*a));
                    self.model = Model::Failed;
                    match c
                        .report_failure(&self.graph, "broke", pending::<()>())
                        .await
                    {
                        Ok(c) => {
                            assert!(a.acknowledges_report(), "{a:?} acknowledged");
                            AnyCall::Failed(c)
                        }
                        Err(StopError::Unacknowledged { call }) => {
                            assert!(!a.acknowledges_report(), "{a:?} not acknowledged");
                            AnyCall::Failed(call)
                        }
                        Err(e) => panic!("no handle is alive, yet: {e}"),
                    }
                } else {
                    self.still_recording(
                        c.report_failure(&self.graph, "broke", ready(()))
                            .await
                            .map(|_| ()),
                    )
                }
            }
            (call, Action::End) => {
                let state = call.state();
                let ended = match call {
                    AnyCall::NotRecording(c) => c.end(),
                    AnyCall::PendingRecording(c) => c.end(),
                    AnyCall::Recording(c) => c.end(),
                    AnyCall::Failed(c) => c.end(),
                    _ => unreachable!("four states"),
                };
                assert_eq!(ended.last_state, state);
                return None;
            }
            // Not legal in this state: skipped.
            (call, _) => call,
        })
    }

    fn begin(&mut self, answer: Script, follow_up: Option<Script>) {
        self.expect("recording", Some(answer));
        let next = answer.after_recording();
        if next == Next::Failed && !answer.refused_outright() {
            self.expect("failed", follow_up);
        }
        self.model = next.into();
    }

    /// Leaving `Recording` with owned handles alive: the drain times out and nothing is sent.
    fn still_recording(&self, left: Result<(), StopError>) -> AnyCall {
        match left {
            Err(StopError::StillRecording { call, error }) => {
                assert!(
                    matches!(error, Error::DrainTimeout { outstanding } if outstanding == self.handles.len()),
                    "{error}"
                );
                AnyCall::Recording(*call)
            }
            Ok(()) => panic!("left Recording with {} handles alive", self.handles.len()),
            Err(e) => panic!("left Recording with handles alive: {e}"),
        }
    }

    /// Invariants after each action.
    fn check(
        &self,
        call: Option<&AnyCall>,
        wire_before: usize,
        handles_before: usize,
        action: &Action,
    ) {
        let statuses = self.transport().statuses();
        assert_eq!(
            self.transport().remaining(),
            0,
            "{action:?}: a scripted answer was not used"
        );
        assert_eq!(
            &statuses[wire_before..],
            &self.expected[..],
            "{action:?}: requests sent"
        );
        assert_eq!(self.answers.len(), statuses.len());
        if let Some(call) = call {
            assert_eq!(call.state(), self.model.state(), "{action:?}: state");
            // (a)
            if call.state() == CallState::Recording {
                assert!(
                    self.wire_acknowledged(),
                    "{action:?}: Recording without acknowledgement"
                );
            }
        }
        // (c)
        if handles_before > 0 {
            assert!(
                statuses[wire_before..].iter().all(|s| s == "recording"),
                "{action:?}: end of recording reported while {handles_before} handles are alive"
            );
        }
        // (d)
        if let Err(v) = verify(&self.sink.events()) {
            panic!("{action:?}: audit trail breaks the rule: {v}");
        }
    }
}

fn run(actions: &[Action]) {
    block_on(async {
        let mut h = Harness::new();
        let mut call = Some(AnyCall::NotRecording(open(h.sink.clone())));
        for action in actions {
            let Some(current) = call.take() else { break };
            let wire_before = h.transport().requests().len();
            let handles_before = h.handles.len();
            h.expected.clear();
            call = h.act(current, action).await;
            h.check(call.as_ref(), wire_before, handles_before, action);
        }
        // Whatever state the case ends in: drop the call, then the handles.
        drop(call);
        h.handles.clear();
        let events = h.sink.events();
        if let Err(v) = verify(&events) {
            panic!("audit trail breaks the rule at the end: {v}");
        }
        let started = events
            .iter()
            .filter(|e| matches!(e.kind, AuditKind::RetentionStarted { .. }))
            .count();
        assert_eq!(
            started, h.minted,
            "capabilities minted behind the model's back"
        );
    });
}

proptest! {
    #![proptest_config(proptest_config())]

    #[test]
    fn g1_holds_under_arbitrary_transport_behaviour(actions in vec(action(), 1..40)) {
        run(&actions);
    }
}

/// A call that records, stops and records again numbers its capabilities uniquely within the
/// call, as [`AuditKind::RetentionStarted`] documents: a counter starting again at 1 for each
/// `Recording` would make `verify` reject this legal lifecycle ("retention capability started
/// twice"). The smallest case of the property above, as a plain test.
#[test]
fn capability_numbers_stay_unique_across_recording_episodes() {
    block_on(async {
        let graph = graph([Step::completed(), Step::completed(), Step::completed()]);
        let sink = Arc::new(MemorySink::default());
        let call = open(sink.clone());
        let Ok(recording_status::Begin::Recording(call)) = call.begin_recording(&graph).await
        else {
            panic!("completed must lead to Recording")
        };
        drop(call.retention().expect("memory sink accepts"));
        let call = call
            .stop_recording(&graph, pending::<()>())
            .await
            .expect("stopped");
        let Ok(recording_status::Begin::Recording(call)) = call.begin_recording(&graph).await
        else {
            panic!("completed must lead to Recording")
        };
        drop(call.retention().expect("memory sink accepts"));
        let numbers: Vec<u64> = sink
            .events()
            .iter()
            .filter_map(|e| match e.kind {
                AuditKind::RetentionStarted { capability, .. } => Some(capability),
                _ => None,
            })
            .collect();
        assert_ne!(
            numbers[0], numbers[1],
            "capability numbers reused within one call"
        );
        verify(&sink.events()).expect("a legal lifecycle verifies");
        drop(call.end());
    });
}

/// The exported strategies (feature `proptest`), used the way a bot author would.
#[cfg(feature = "proptest")]
mod exported_strategies {
    use super::*;
    use recording_status::Begin;
    use recording_status::testing::strategies::{acknowledges_recording, step};

    proptest! {
        #![proptest_config(proptest_config())]

        #[test]
        fn only_an_acknowledgement_unlocks_retention(answer in step()) {
            let graph = graph([answer.clone()]);
            let audit = Arc::new(MemorySink::default());
            let call = open(audit.clone());
            let begin = call.begin_recording_blocking(&graph).unwrap();
            prop_assert_eq!(matches!(begin, Begin::Recording(_)), acknowledges_recording(&answer));
            drop(begin);
            prop_assert!(verify(&audit.events()).is_ok());
        }
    }
}
