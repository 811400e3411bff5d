//! Sans-IO: turning Graph's answer to `updateRecordingStatus` into an [`Outcome`].
//!
//! [`interpret_response`] is a pure function over [`http::Response<Vec<u8>>`]. It never panics,
//! whatever the status, headers or bytes; anything it cannot understand becomes
//! [`Outcome::Unparseable`] with the raw body kept for support tickets.

use std::fmt;

use http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::status::OperationStatus;
use crate::transport::HttpResponse;

/// Graph's `resultInfo`: the outcome of a `commsOperation`. Every field may be missing or null.
///
/// `code` follows HTTP conventions (2xx success, 4xx client error, 5xx server error); `subcode`
/// refines it. Branch on the numbers, never on `message`.
///
/// Read leniently, as Graph sends it: numbers or strings holding one (`"code": "200"`), and the
/// subcode spelled `subcode` or `subCode` (`subcode` first when both are there and not `null`).
/// Written with the schema's spelling, `subcode`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ResultInfo {
    /// The HTTP-like result code.
    pub code: Option<i64>,
    /// The refining subcode.
    pub subcode: Option<i64>,
    /// Human-readable text; informational only.
    pub message: Option<String>,
}

impl<'de> Deserialize<'de> for ResultInfo {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let Value::Object(info) = Value::deserialize(d)? else {
            return Err(serde::de::Error::custom("resultInfo is not an object"));
        };
        let integer = |names: &[&str]| {
            names
                .iter()
                .find_map(|n| info.get(*n).filter(|v| !v.is_null()))
                .and_then(read_integer)
        };
        Ok(Self {
            code: integer(&["code"]),
            subcode: integer(&["subcode", "subCode"]),
            message: info
                .get("message")
                .and_then(Value::as_str)
                .map(str::to_owned),
        })
    }
}

/// An `updateRecordingStatusOperation` (or base `commsOperation`) as Graph returns it in the
/// response body or in a notification's `resourceData`.
///
/// Two questions about an operation are answered here and nowhere else, so that the response
/// interpreter and the notification path cannot disagree:
///
/// - **Did it succeed?** [`is_successful_completion`](Self::is_successful_completion): status
///   `completed` *and* no error in `resultInfo` or `completionReason` (Graph documents
///   operations that end `completed` with an error completion reason). Fail closed: anything
///   that is not clearly a success is not one. [`is_failure`](Self::is_failure) says when the
///   operation has ended without success.
/// - **May it settle a `recording` request?** [`may_settle_recording`](Self::may_settle_recording):
///   only an `updateRecordingStatusOperation`, a base `commsOperation` or an untyped body may;
///   a `playPromptOperation` (or any other type) never does, whatever its id or context.
///
/// It serialises and deserialises symmetrically, for a bot that stores operations: a
/// round trip keeps what [`reports_error`](Self::reports_error) decides. That serde form is
/// the crate's own (snake_case fields); read Graph's JSON with [`from_json`](Self::from_json).
/// Deserialising refuses unknown fields, so Graph's camelCase body (with its `resultInfo`,
/// `completionReason` or `@odata.type`) is an error rather than an operation read without
/// them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Operation {
    /// The operation id (`id`), if present.
    pub id: Option<String>,
    /// The `clientContext` Graph echoes back, if present.
    pub client_context: Option<String>,
    /// The status; `None` when missing or `null` (which means "wait for a notification").
    pub status: Option<OperationStatus>,
    /// The `resultInfo`, if present and an object. A `code` that is not an integer reads as
    /// `None` here, but the operation still counts as reporting an error (see
    /// [`reports_error`](Self::reports_error)); so does a `resultInfo` that is present, not
    /// `null` and not an object.
    pub result_info: Option<ResultInfo>,
    /// The `completionReason` (e.g. `sendDtmfTonesOperation`'s `completedSuccessfully`,
    /// `mediaOperationCanceled`, `unknown`), if present and not `null`. A value that is not a
    /// string is kept as its JSON text, so it never reads as a success.
    pub completion_reason: Option<String>,
    /// The `@odata.type`, if present and not `null` (e.g.
    /// `#microsoft.graph.updateRecordingStatusOperation`). A value that is not a string is kept
    /// as its JSON text, so it never names an accepted type.
    pub odata_type: Option<String>,
    /// `resultInfo` was present but unreadable: not an object, or its `code` present and not an
    /// integer. Fails closed in [`reports_error`](Self::reports_error). Serialised only when
    /// set, so that a stored operation that failed closed still does when read back.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    result_info_unreadable: bool,
}

/// The `completionReason` values that mean success, compared ignoring ASCII case. Every other
/// present value is an error: `unknown` ("Completion reason with unknown error"),
/// `mediaOperationCanceled`, `unknownFutureValue`, and values this crate has never seen
/// (`sendDtmfCompletionReason`, api-reference/v1.0/resources/senddtmftonesoperation.md).
const SUCCESSFUL_COMPLETION_REASONS: &[&str] = &["completedSuccessfully"];

/// The `@odata.type` names (after an optional `#` and `microsoft.graph.` prefix, ignoring ASCII
/// case) whose operations may settle a `recording` request.
const RECORDING_OPERATION_TYPES: &[&str] = &["updateRecordingStatusOperation", "commsOperation"];

/// The members of an operation's JSON object that [`Operation`] reads, each as received
/// (`None` when missing; a repeated member keeps its last value, as a JSON map does).
#[derive(Default)]
struct Members {
    id: Option<Value>,
    client_context: Option<Value>,
    status: Option<Value>,
    result_info: Option<Value>,
    completion_reason: Option<Value>,
    odata_type: Option<Value>,
}

/// Which [`Members`] field a key names; compared on the key's text, so no key is allocated.
enum Member {
    Id,
    ClientContext,
    Status,
    ResultInfo,
    CompletionReason,
    OdataType,
    Other,
}

impl<'de> Deserialize<'de> for Member {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Name;
        impl serde::de::Visitor<'_> for Name {
            type Value = Member;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a member name")
            }
            fn visit_str<E: serde::de::Error>(self, name: &str) -> Result<Member, E> {
                Ok(match name {
                    "id" => Member::Id,
                    "clientContext" => Member::ClientContext,
                    "status" => Member::Status,
                    "resultInfo" => Member::ResultInfo,
                    "completionReason" => Member::CompletionReason,
                    "@odata.type" => Member::OdataType,
                    _ => Member::Other,
                })
            }
        }
        d.deserialize_identifier(Name)
    }
}

impl<'de> Deserialize<'de> for Members {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Object;
        impl<'de> serde::de::Visitor<'de> for Object {
            type Value = Members;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Members, A::Error> {
                let mut members = Members::default();
                while let Some(member) = map.next_key::<Member>()? {
                    // Every value is parsed as a JSON value, kept or not, so that what parses
                    // (nesting limits included) is what `serde_json::Value` accepts.
                    let value: Value = map.next_value()?;
                    let slot = match member {
                        Member::Id => &mut members.id,
                        Member::ClientContext => &mut members.client_context,
                        Member::Status => &mut members.status,
                        Member::ResultInfo => &mut members.result_info,
                        Member::CompletionReason => &mut members.completion_reason,
                        Member::OdataType => &mut members.odata_type,
                        Member::Other => continue,
                    };
                    *slot = Some(value);
                }
                Ok(members)
            }
        }
        d.deserialize_map(Object)
    }
}

impl Operation {
    /// Reads an operation out of a JSON value, leniently: wrong-typed `id`, `clientContext` and
    /// `status` count as missing; wrong-typed `resultInfo`, `completionReason` and
    /// `@odata.type` fail closed (see the field documentation). Returns `None` only when
    /// `value` is not a JSON object.
    pub fn from_json(value: &Value) -> Option<Self> {
        let obj = value.as_object()?;
        let member = |k: &str| obj.get(k).cloned();
        // One reading for both sources: the members are taken as `from_slice` takes them.
        Some(Self::from_members(Members {
            id: member("id"),
            client_context: member("clientContext"),
            status: member("status"),
            result_info: member("resultInfo"),
            completion_reason: member("completionReason"),
            odata_type: member("@odata.type"),
        }))
    }

    /// [`from_json`](Self::from_json) straight from the body's bytes, without building a JSON
    /// map: only the members the reading looks at are kept (each parsed as a JSON value, then
    /// moved into the operation), and the others are parsed and dropped. Same reading, field
    /// for field, for every body that parses as a JSON value; anything else is `None`.
    pub(crate) fn from_slice(body: &[u8]) -> Option<Self> {
        serde_json::from_slice::<Members>(body)
            .ok()
            .map(Self::from_members)
    }

    fn from_members(members: Members) -> Self {
        let text = |v: Option<Value>| match v {
            Some(Value::String(s)) => Some(s),
            _ => None,
        };
        let raw_text = |v: Option<Value>| match v {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s),
            Some(other) => Some(other.to_string()),
        };
        let (result_info, result_info_unreadable) = match members.result_info {
            None | Some(Value::Null) => (None, false),
            Some(Value::Object(info)) => {
                let code = info.get("code").unwrap_or(&Value::Null);
                let unreadable = !code.is_null() && read_integer(code).is_none();
                (serde_json::from_value(Value::Object(info)).ok(), unreadable)
            }
            Some(_) => (None, true),
        };
        Self {
            id: text(members.id),
            client_context: text(members.client_context),
            status: members
                .status
                .as_ref()
                .and_then(Value::as_str)
                .map(OperationStatus::parse),
            result_info,
            completion_reason: raw_text(members.completion_reason),
            odata_type: raw_text(members.odata_type),
            result_info_unreadable,
        }
    }

    /// `true` when the operation is a **successful completion**: its status is `completed`
    /// (any ASCII case) and it [reports no error](Self::reports_error).
    ///
    /// This is the one rule for "Graph acknowledged the update", used by
    /// [`interpret_response`] for the 2xx body and meant for the notification path too. For a
    /// `recording` update it is the success reply that allows media to be persisted; check
    /// [`may_settle_recording`](Self::may_settle_recording) and the `clientContext` as well
    /// before treating it as *this* request's acknowledgement.
    ///
    /// # Example: `completed` is not enough
    /// ```
    /// use recording_status::response::Operation;
    ///
    /// let op = |v| Operation::from_json(&v).ok_or("an operation is a JSON object");
    /// let done = op(serde_json::json!({"status": "completed", "resultInfo": null}))?;
    /// assert!(done.is_successful_completion());
    /// let broke = op(serde_json::json!({"status": "completed", "resultInfo": {"code": 500}}))?;
    /// assert!(!broke.is_successful_completion() && broke.is_failure());
    /// let canceled = op(serde_json::json!({"status": "completed",
    ///     "completionReason": "mediaOperationCanceled"}))?;
    /// assert!(!canceled.is_successful_completion() && canceled.is_failure());
    /// # Ok::<(), &str>(())
    /// ```
    pub fn is_successful_completion(&self) -> bool {
        self.status == Some(OperationStatus::Completed) && !self.reports_error()
    }

    /// `true` when the operation has ended without success: status `failed`, or `completed`
    /// while [reporting an error](Self::reports_error). No further notification follows either.
    ///
    /// An operation that is neither a [successful completion](Self::is_successful_completion)
    /// nor a failure is still pending (`running`, `notStarted`, `null`, missing or unknown
    /// status), whatever its `resultInfo`.
    pub fn is_failure(&self) -> bool {
        match self.status {
            Some(OperationStatus::Failed) => true,
            Some(OperationStatus::Completed) => self.reports_error(),
            _ => false,
        }
    }

    /// `true` when `resultInfo` or `completionReason` report an error, whatever the status.
    /// Fails closed:
    ///
    /// - `resultInfo.code` is an error unless it is an integer (a JSON integer, an integral
    ///   number such as `200.0`, or a string such as `"200"`) from 0 to 399. A missing or
    ///   `null` code, or a missing or `null` `resultInfo`, is no error; a `resultInfo` that is
    ///   not an object is one.
    /// - `completionReason` is an error unless it is missing, `null`, or `completedSuccessfully`
    ///   (ignoring ASCII case). `unknown`, `mediaOperationCanceled`, `unknownFutureValue` and
    ///   any value this crate does not know are errors.
    pub fn reports_error(&self) -> bool {
        let bad_code = self
            .result_info
            .as_ref()
            .and_then(|info| info.code)
            .is_some_and(|code| !(0..400).contains(&code));
        let bad_reason = self.completion_reason.as_deref().is_some_and(|reason| {
            !SUCCESSFUL_COMPLETION_REASONS
                .iter()
                .any(|ok| reason.eq_ignore_ascii_case(ok))
        });
        self.result_info_unreadable || bad_code || bad_reason
    }

    /// `true` when this operation's type allows it to settle a pending `recording` request:
    /// it has no `@odata.type`, or its `@odata.type` names `updateRecordingStatusOperation` or
    /// `commsOperation`, ignoring ASCII case, with or without a leading `#` and the
    /// `microsoft.graph.` namespace. Any other type (`playPromptOperation`,
    /// `sendDtmfTonesOperation`, `inviteParticipantsOperation`, an empty string, a non-string
    /// value, another namespace) is `false`: an id or `clientContext` that happens to match is
    /// not an acknowledgement.
    ///
    /// # Example
    /// ```
    /// use recording_status::response::Operation;
    ///
    /// let settles = |t: &str| {
    ///     Operation::from_json(&serde_json::json!({"@odata.type": t, "status": "completed"}))
    ///         .is_some_and(|op| op.may_settle_recording())
    /// };
    /// assert!(settles("#microsoft.graph.updateRecordingStatusOperation"));
    /// assert!(settles("commsOperation"));
    /// assert!(!settles("#microsoft.graph.playPromptOperation"));
    /// ```
    pub fn may_settle_recording(&self) -> bool {
        let Some(odata_type) = self.odata_type.as_deref() else {
            return true;
        };
        let name = odata_type.strip_prefix('#').unwrap_or(odata_type);
        let name = strip_prefix_ignore_ascii_case(name, "microsoft.graph.").unwrap_or(name);
        RECORDING_OPERATION_TYPES
            .iter()
            .any(|t| name.eq_ignore_ascii_case(t))
    }
}

fn strip_prefix_ignore_ascii_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    s.get(..prefix.len())
        .filter(|head| head.eq_ignore_ascii_case(prefix))
        .and_then(|_| s.get(prefix.len()..))
}

/// An integer from a JSON number (integral floats included; beyond `i64` saturates) or a
/// string holding one; `None` for anything else.
fn read_integer(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_u64().map(|_| i64::MAX))
            .or_else(|| {
                n.as_f64()
                    .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e18)
                    // Integral and well inside `i64`: the conversion is exact.
                    .map(|f| f as i64)
            }),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Graph's error envelope, `{"error": {"code", "message", "innerError": {…}}}`, plus the
/// correlation headers of the response.
///
/// Tolerant by construction: a missing or non-JSON body leaves the fields `None` and keeps the
/// raw bytes; `innerError`/`innererror`, `request-id`/`requestId` are both understood; numeric
/// codes (`8506`, `7504`, `7505`) are kept as strings.
///
/// It serialises and deserialises symmetrically except for [`body`](Self::body), which is
/// never serialised (it may be large, and it is the bytes as received): it reads back empty.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct GraphError {
    /// The HTTP status.
    #[serde(with = "status_code")]
    pub status: StatusCode,
    /// `error.code`, e.g. `"Forbidden"` or `"8506"`.
    pub code: Option<String>,
    /// `error.message`; informational only.
    pub message: Option<String>,
    /// Every nested `innerError.code`, outermost first (e.g. `throttledRequest`).
    pub inner_codes: Vec<String>,
    /// `request-id`, from the response header or the `innerError`.
    pub request_id: Option<String>,
    /// `client-request-id`, from the response header or the `innerError`.
    pub client_request_id: Option<String>,
    /// `date`, from the `innerError` or the `Date` header, as sent.
    pub date: Option<String>,
    /// The body exactly as received. Not serialised.
    #[serde(skip)]
    pub body: Vec<u8>,
}

impl GraphError {
    /// Reads the error envelope and correlation headers of a non-2xx response.
    pub fn from_response(response: &HttpResponse) -> Self {
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let mut err = Self {
            status: response.status(),
            code: None,
            message: None,
            inner_codes: Vec::new(),
            request_id: header("request-id"),
            client_request_id: header("client-request-id"),
            date: None,
            body: response.body().clone(),
        };
        let parsed: Option<Value> = serde_json::from_slice(response.body()).ok();
        if let Some(error) = parsed.as_ref().and_then(|v| v.get("error")) {
            err.code = json_code(error.get("code"));
            err.message = error
                .get("message")
                .and_then(Value::as_str)
                .map(str::to_owned);
            let mut inner = inner_error(error);
            let mut depth = 0;
            while let Some(i) = inner {
                depth += 1;
                if depth > 32 {
                    break;
                }
                if let Some(code) = json_code(i.get("code")) {
                    err.inner_codes.push(code);
                }
                let field = |names: &[&str]| {
                    names
                        .iter()
                        .find_map(|n| i.get(*n).and_then(Value::as_str))
                        .map(str::to_owned)
                };
                if err.request_id.is_none() {
                    err.request_id = field(&["request-id", "requestId"]);
                }
                if err.client_request_id.is_none() {
                    err.client_request_id = field(&["client-request-id", "clientRequestId"]);
                }
                if err.date.is_none() {
                    err.date = field(&["date"]);
                }
                inner = inner_error(i);
            }
        }
        if err.date.is_none() {
            err.date = header("date");
        }
        err
    }

    /// The well-known reason this error will not go away by retrying, if there is one.
    ///
    /// 403, 404 and the cloud-communications codes `8506` (not a compliance-recording call),
    /// `7504` (insufficient tenant permissions) and `7505` (tenant mismatch) are permanent.
    pub fn permanent(&self) -> Option<Permanent> {
        let code = self.code.as_deref();
        let any_code = |c: &str| code == Some(c) || self.inner_codes.iter().any(|i| i == c);
        if any_code("8506") {
            Some(Permanent::NotComplianceCall)
        } else if any_code("7504") {
            Some(Permanent::InsufficientTenantPermissions)
        } else if any_code("7505") {
            Some(Permanent::TenantMismatch)
        } else if any_code("8522") {
            Some(Permanent::CallNotFound)
        } else if self.status == StatusCode::FORBIDDEN {
            Some(Permanent::Forbidden)
        } else if self.status == StatusCode::NOT_FOUND {
            Some(Permanent::CallNotFound)
        } else {
            None
        }
    }
}

impl fmt::Debug for GraphError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GraphError")
            .field("status", &self.status)
            .field("code", &self.code)
            .field("message", &self.message)
            .field("inner_codes", &self.inner_codes)
            .field("request_id", &self.request_id)
            .field("client_request_id", &self.client_request_id)
            .field("date", &self.date)
            .field("body_len", &self.body.len())
            .finish()
    }
}

impl fmt::Display for GraphError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "graph answered {}", self.status.as_u16())?;
        if let Some(code) = &self.code {
            write!(f, " with code {code}")?;
        }
        if let Some(permanent) = self.permanent() {
            write!(f, " ({permanent})")?;
        }
        if let Some(id) = &self.request_id {
            write!(f, ", request-id {id}")?;
        }
        Ok(())
    }
}

/// Why a Graph error is permanent: retrying the same request will not help.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Permanent {
    /// Code `8506` ("API call not allowed for non-Compliance Recording call"): the call is not
    /// a policy (compliance) recording call. Recording is not possible on this call, and
    /// retrying cannot change that; keep persistence disabled.
    ///
    /// In practice bots hit it when they joined the call on their own (a join URL, or
    /// `POST /communications/calls`) instead of being invited by Teams because a user in the
    /// call has a compliance recording policy that names the bot's application instance.
    /// Microsoft: "the recording bot will not be allowed to record unless a user with a
    /// recording policy joined the call or meeting". A policy granted to the bot's own
    /// application instance does not count. To test, assign a `CsTeamsComplianceRecordingPolicy`
    /// to a test user and let that user place or join the call.
    NotComplianceCall,
    /// Code `7504`: the tenant has not granted the app the permissions it needs.
    InsufficientTenantPermissions,
    /// Code `7505`: the token's tenant does not match the call's.
    TenantMismatch,
    /// HTTP 403 without a more specific code.
    Forbidden,
    /// Code `8522` ("Call not found"), whatever the HTTP status, or HTTP 404: the call is gone
    /// (it ended, perhaps before its `terminated` notification arrived). The driver ends it as
    /// it ends a call Graph notified terminated.
    CallNotFound,
}

impl fmt::Display for Permanent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NotComplianceCall => "not a compliance-recording call (8506)",
            Self::InsufficientTenantPermissions => "insufficient tenant permissions (7504)",
            Self::TenantMismatch => "tenant mismatch (7505)",
            Self::Forbidden => "forbidden",
            Self::CallNotFound => "call not found",
        })
    }
}

/// What a response to `updateRecordingStatus` means.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// 2xx and the operation is a
    /// [successful completion](Operation::is_successful_completion): status `completed` with no
    /// error in `resultInfo` or `completionReason`. The update took effect.
    Completed {
        /// The operation in the body.
        operation: Operation,
        /// The `Location` header (the operation's URL), if any. Never followed by this crate.
        location: Option<String>,
    },
    /// 2xx and the operation is `running`, `notStarted`, `null`, missing, unknown, or the body is
    /// empty: the outcome will arrive as a notification.
    Pending {
        /// The operation in the body, if there was a body.
        operation: Option<Operation>,
        /// The `Location` header, if any.
        location: Option<String>,
    },
    /// 2xx and the operation [ended without success](Operation::is_failure): status `failed`,
    /// or `completed` with a `resultInfo.code` of 400 or more (or unreadable) or an error
    /// `completionReason`.
    Failed {
        /// The operation, with its `resultInfo`.
        operation: Operation,
    },
    /// Not 2xx: Graph's error envelope.
    GraphError(GraphError),
    /// 2xx with a body that is not a JSON object.
    Unparseable {
        /// The HTTP status.
        status: StatusCode,
        /// The body exactly as received.
        body: Vec<u8>,
    },
}

/// Interprets Graph's response to `updateRecordingStatus`. Pure and total: never panics.
///
/// Only a 2xx whose body is a [successful completion](Operation::is_successful_completion) is
/// [`Outcome::Completed`]; a `completed` that carries an error is [`Outcome::Failed`]. The
/// body's `@odata.type` is not checked here (see [`Operation::may_settle_recording`]).
///
/// # Example: the documented synchronous completion
/// ```
/// use recording_status::response::{interpret_response, Outcome};
///
/// let body = br##"{ "@odata.type": "#microsoft.graph.updateRecordingStatusOperation",
///   "clientContext": "clientContext-value", "id": "0fe0623f-d628-42ed-b4bd-8ac290072cc5",
///   "resultInfo": null, "status": "completed" }"##;
/// let response = http::Response::builder().status(200).body(body.to_vec())?;
/// assert!(matches!(interpret_response(&response), Outcome::Completed { .. }));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn interpret_response(response: &HttpResponse) -> Outcome {
    let status = response.status();
    if !status.is_success() {
        return Outcome::GraphError(GraphError::from_response(response));
    }
    let location = response
        .headers()
        .get(http::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = response.body();
    if body.iter().all(u8::is_ascii_whitespace) {
        return Outcome::Pending {
            operation: None,
            location,
        };
    }
    // An operation of another type (a `playPromptOperation`, say) is not an answer to this
    // request: its outcome is unknown, never an acknowledgement (fail closed).
    let operation = Operation::from_slice(body).filter(Operation::may_settle_recording);
    let Some(operation) = operation else {
        return Outcome::Unparseable {
            status,
            body: body.clone(),
        };
    };
    if operation.is_successful_completion() {
        Outcome::Completed {
            operation,
            location,
        }
    } else if operation.is_failure() {
        Outcome::Failed { operation }
    } else {
        Outcome::Pending {
            operation: Some(operation),
            location,
        }
    }
}

fn inner_error(v: &Value) -> Option<&Value> {
    v.get("innerError")
        .or_else(|| v.get("innererror"))
        .filter(|i| i.is_object())
}

fn json_code(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

mod status_code {
    use http::StatusCode;

    pub(super) fn serialize<S: serde::Serializer>(
        s: &StatusCode,
        ser: S,
    ) -> Result<S::Ok, S::Error> {
        ser.serialize_u16(s.as_u16())
    }

    pub(super) fn deserialize<'de, D: serde::Deserializer<'de>>(
        d: D,
    ) -> Result<StatusCode, D::Error> {
        let code = <u16 as serde::Deserialize>::deserialize(d)?;
        StatusCode::from_u16(code).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests;
