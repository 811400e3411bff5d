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
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ResultInfo {
    /// The HTTP-like result code.
    #[serde(default, deserialize_with = "lenient_i64")]
    pub code: Option<i64>,
    /// The refining subcode.
    #[serde(default, deserialize_with = "lenient_i64")]
    pub subcode: Option<i64>,
    /// Human-readable text; informational only.
    #[serde(default, deserialize_with = "lenient_string")]
    pub message: Option<String>,
}

/// An `updateRecordingStatusOperation` (or base `commsOperation`) as Graph returns it in the
/// response body or in a notification's `resourceData`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Operation {
    /// The operation id (`id`), if present.
    pub id: Option<String>,
    /// The `clientContext` Graph echoes back, if present.
    pub client_context: Option<String>,
    /// The status; `None` when missing or `null` (which means "wait for a notification").
    pub status: Option<OperationStatus>,
    /// The `resultInfo`, if present and not `null`.
    pub result_info: Option<ResultInfo>,
    /// The `@odata.type`, if present.
    pub odata_type: Option<String>,
}

impl Operation {
    /// Reads an operation out of a JSON value, leniently: wrong-typed fields count as missing.
    /// Returns `None` only when `value` is not a JSON object.
    pub fn from_json(value: &Value) -> Option<Self> {
        let obj = value.as_object()?;
        let text = |k: &str| obj.get(k).and_then(Value::as_str).map(str::to_owned);
        Some(Self {
            id: text("id"),
            client_context: text("clientContext"),
            status: obj
                .get("status")
                .and_then(Value::as_str)
                .map(OperationStatus::parse),
            result_info: obj
                .get("resultInfo")
                .filter(|v| v.is_object())
                .and_then(|v| serde_json::from_value(v.clone()).ok()),
            odata_type: text("@odata.type"),
        })
    }
}

/// Graph's error envelope, `{"error": {"code", "message", "innerError": {…}}}`, plus the
/// correlation headers of the response.
///
/// Tolerant by construction: a missing or non-JSON body leaves the fields `None` and keeps the
/// raw bytes; `innerError`/`innererror`, `request-id`/`requestId` are both understood; numeric
/// codes (`8506`, `7504`, `7505`) are kept as strings.
#[derive(Clone, PartialEq, Eq, Serialize)]
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
    /// The body exactly as received.
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
    /// Code `8506`: the call is not a policy (compliance) recording call. Recording is not
    /// possible on this call; keep persistence disabled.
    NotComplianceCall,
    /// Code `7504`: the tenant has not granted the app the permissions it needs.
    InsufficientTenantPermissions,
    /// Code `7505`: the token's tenant does not match the call's.
    TenantMismatch,
    /// HTTP 403 without a more specific code.
    Forbidden,
    /// HTTP 404: the call is gone.
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
    /// 2xx and the operation's status is `completed`: the update took effect.
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
    /// 2xx and the operation's status is `failed`.
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
    let operation = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| Operation::from_json(&v));
    let Some(operation) = operation else {
        return Outcome::Unparseable {
            status,
            body: body.clone(),
        };
    };
    match operation.status {
        Some(OperationStatus::Completed) => Outcome::Completed {
            operation,
            location,
        },
        Some(OperationStatus::Failed) => Outcome::Failed { operation },
        _ => Outcome::Pending {
            operation: Some(operation),
            location,
        },
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

fn lenient_i64<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    let v = Value::deserialize(d)?;
    Ok(match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    })
}

fn lenient_string<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let v = Value::deserialize(d)?;
    Ok(match v {
        Value::String(s) => Some(s),
        _ => None,
    })
}

mod status_code {
    use http::StatusCode;

    pub(super) fn serialize<S: serde::Serializer>(
        s: &StatusCode,
        ser: S,
    ) -> Result<S::Ok, S::Error> {
        ser.serialize_u16(s.as_u16())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(status: u16, headers: &[(&str, &str)], body: &[u8]) -> HttpResponse {
        let mut b = http::Response::builder().status(status);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(body.to_vec()).unwrap()
    }

    // graph-reference.md §1.4, the v1.0 docs example.
    const DOCS_COMPLETED: &str = r##"{ "@odata.type": "#microsoft.graph.updateRecordingStatusOperation",
    "clientContext": "clientContext-value",
    "id": "0fe0623f-d628-42ed-b4bd-8ac290072cc5",
    "resultInfo": null,
    "status": "completed" }"##;

    #[test]
    fn docs_example_completes() {
        let r = response(
            200,
            &[(
                "Location",
                "https://graph.microsoft.com/v1.0/communications/calls/57dab8b1-894c-409a-b240-bd8beae78896/operations/0fe0623f-d628-42ed-b4bd-8ac290072cc5",
            )],
            DOCS_COMPLETED.as_bytes(),
        );
        let Outcome::Completed {
            operation,
            location,
        } = interpret_response(&r)
        else {
            panic!("not completed")
        };
        assert_eq!(
            operation.id.as_deref(),
            Some("0fe0623f-d628-42ed-b4bd-8ac290072cc5")
        );
        assert_eq!(
            operation.client_context.as_deref(),
            Some("clientContext-value")
        );
        assert_eq!(operation.result_info, None);
        assert!(
            location
                .unwrap()
                .ends_with("/operations/0fe0623f-d628-42ed-b4bd-8ac290072cc5")
        );
    }

    #[test]
    fn pascal_case_completes() {
        let r = response(200, &[], br#"{"id":"x","status":"Completed"}"#);
        assert!(matches!(interpret_response(&r), Outcome::Completed { .. }));
    }

    #[test]
    fn running_not_started_null_missing_and_empty_are_pending() {
        for body in [
            &br#"{"id":"x","status":"running"}"#[..],
            br#"{"id":"x","status":"notStarted"}"#,
            br#"{"id":"x","status":null}"#,
            br#"{"id":"x"}"#,
            br#"{"id":"x","status":"somethingNew"}"#,
            br#"{"id":"x","status":42}"#,
            b"",
            b" \n",
        ] {
            let r = response(200, &[], body);
            assert!(
                matches!(interpret_response(&r), Outcome::Pending { .. }),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        let r = response(202, &[], br#"{"status":"running"}"#);
        assert!(matches!(interpret_response(&r), Outcome::Pending { .. }));
    }

    #[test]
    fn failed_operation_keeps_result_info() {
        let r = response(
            200,
            &[],
            br#"{"id":"x","status":"failed","resultInfo":{"code":500,"subcode":8510,"message":"boom"}}"#,
        );
        let Outcome::Failed { operation } = interpret_response(&r) else {
            panic!()
        };
        let info = operation.result_info.unwrap();
        assert_eq!((info.code, info.subcode), (Some(500), Some(8510)));
        assert_eq!(info.message.as_deref(), Some("boom"));
    }

    #[test]
    fn result_info_tolerates_nulls_and_strings() {
        let op = Operation::from_json(
            &serde_json::json!({"resultInfo": {"code": "403", "subcode": null, "message": 5}}),
        )
        .unwrap();
        assert_eq!(
            op.result_info.unwrap(),
            ResultInfo {
                code: Some(403),
                subcode: None,
                message: None
            }
        );
    }

    #[test]
    fn non_json_2xx_is_unparseable_and_kept() {
        for body in [
            &b"<html>oops</html>"[..],
            b"[1,2]",
            b"\"completed\"",
            b"\xff\xfe",
        ] {
            let r = response(200, &[], body);
            assert_eq!(
                interpret_response(&r),
                Outcome::Unparseable {
                    status: StatusCode::OK,
                    body: body.to_vec()
                }
            );
        }
    }

    // graph-reference.md §3.1: the SDK design doc's example.
    #[test]
    fn error_envelope_design_doc_example() {
        let body = br#"{"error":{"code":"BadRequest","message":"Resource not found for the segment 'mef'.",
 "innerError":{"date":"2021-07-02T01:40:19","request-id":"1a0ffbc0-aaaa","client-request-id":"225aed2b-bbbb"}}}"#;
        let Outcome::GraphError(e) = interpret_response(&response(400, &[], body)) else {
            panic!()
        };
        assert_eq!(e.code.as_deref(), Some("BadRequest"));
        assert_eq!(e.request_id.as_deref(), Some("1a0ffbc0-aaaa"));
        assert_eq!(e.client_request_id.as_deref(), Some("225aed2b-bbbb"));
        assert_eq!(e.date.as_deref(), Some("2021-07-02T01:40:19"));
        assert_eq!(e.permanent(), None);
    }

    // graph-reference.md §3.1: the tenant-mismatch example, with `requestId` casing variant.
    #[test]
    fn numeric_comms_codes_are_permanent() {
        let body = br#"{"error":{"code":"7505","message":"Request authorization tenant mismatch.","innerError":{"request-id":"3d972a68-cccc","date":"2020-02-13T17:30:24"}}}"#;
        let e = GraphError::from_response(&response(403, &[], body));
        assert_eq!(e.permanent(), Some(Permanent::TenantMismatch));
        assert_eq!(e.request_id.as_deref(), Some("3d972a68-cccc"));

        let body = br#"{"error":{"code":"8506","message":"API call not allowed for non-Compliance Recording call"}}"#;
        let e = GraphError::from_response(&response(403, &[], body));
        assert_eq!(e.permanent(), Some(Permanent::NotComplianceCall));
        assert!(e.to_string().contains("8506"));

        let body = br#"{"error":{"code":7504,"innererror":{"requestId":"r-1"}}}"#;
        let e = GraphError::from_response(&response(403, &[], body));
        assert_eq!(
            e.permanent(),
            Some(Permanent::InsufficientTenantPermissions)
        );
        assert_eq!(e.request_id.as_deref(), Some("r-1"));

        let e = GraphError::from_response(&response(404, &[], b""));
        assert_eq!(e.permanent(), Some(Permanent::CallNotFound));
    }

    #[test]
    fn nested_throttling_codes_and_headers() {
        let body = br#"{"error":{"code":"activityLimitReached","message":"x",
            "innerError":{"code":"throttledRequest","innerError":{"code":"deeper"}}}}"#;
        let r = response(
            429,
            &[
                ("request-id", "hdr-req"),
                ("client-request-id", "hdr-client"),
                ("Date", "Fri, 27 Nov 2026 06:00:00 GMT"),
            ],
            body,
        );
        let e = GraphError::from_response(&r);
        assert_eq!(e.inner_codes, ["throttledRequest", "deeper"]);
        assert_eq!(e.request_id.as_deref(), Some("hdr-req"));
        assert_eq!(e.client_request_id.as_deref(), Some("hdr-client"));
        assert_eq!(e.date.as_deref(), Some("Fri, 27 Nov 2026 06:00:00 GMT"));
    }

    #[test]
    fn error_without_json_keeps_raw_bytes() {
        let r = response(502, &[], b"<html>Bad Gateway</html>");
        let Outcome::GraphError(e) = interpret_response(&r) else {
            panic!()
        };
        assert_eq!(e.code, None);
        assert_eq!(e.body, b"<html>Bad Gateway</html>");
        assert!(!format!("{e:?}").contains("html"));
    }

    #[test]
    fn deeply_nested_inner_errors_do_not_overflow() {
        let mut s = String::from(r#"{"error":{"code":"a""#);
        let depth = 100;
        for _ in 0..depth {
            s.push_str(r#","innerError":{"code":"b""#);
        }
        for _ in 0..depth {
            s.push('}');
        }
        s.push_str("}}");
        let e = GraphError::from_response(&response(500, &[], s.as_bytes()));
        assert_eq!(e.inner_codes.len(), 32);
    }
}
