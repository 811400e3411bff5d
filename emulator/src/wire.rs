//! Graph's JSON, written from Microsoft's documentation and nothing else: the
//! `updateRecordingStatus` request body, the `updateRecordingStatusOperation` it answers with,
//! `resultInfo`, the error envelope, and the `commsNotifications` sent to the bot.
//!
//! Sources (`microsoftgraph/microsoft-graph-docs-contrib`):
//! `api-reference/v1.0/api/call-updaterecordingstatus.md` (request, response),
//! `api-reference/v1.0/resources/updaterecordingstatusoperation.md` and `resultinfo.md`,
//! `api-reference/v1.0/resources/commsnotification.md` and the "Notification - operation
//! completed" example of `api-reference/v1.0/api/call-playprompt.md`, and `concepts/errors.md`.

use std::fmt;

use serde::Serialize;
use serde_json::Value;

/// A call's recording status, as `updateRecordingStatus` sets it
/// (`api-reference/v1.0/api/call-updaterecordingstatus.md`: "Possible values are:
/// `notRecording`, `recording`, or `failed`").
///
/// [`Emulator::status_of`](crate::Emulator::status_of) says which one Graph last accepted for a
/// call.
///
/// # Example
/// ```
/// use graph_emulator::RecordingStatus;
///
/// assert_eq!(RecordingStatus::NotRecording.as_str(), "notRecording");
/// assert_eq!(RecordingStatus::Recording.to_string(), "recording");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
// Exactly the three values Graph documents, the only ones the emulator accepts: Graph's schema
// also lists `unknown` and `unknownFutureValue`, which the documentation does not allow sending.
#[allow(clippy::exhaustive_enums)]
pub enum RecordingStatus {
    /// `notRecording`.
    NotRecording,
    /// `recording`.
    Recording,
    /// `failed`.
    Failed,
}

impl RecordingStatus {
    /// The wire spelling: `notRecording`, `recording` or `failed`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::NotRecording => "notRecording",
            Self::Recording => "recording",
            Self::Failed => "failed",
        }
    }

    /// The status spelled exactly as the documentation spells it; anything else (another case,
    /// `unknown`, `unknownFutureValue`) is `None`.
    pub(crate) fn from_wire(s: &str) -> Option<Self> {
        [Self::NotRecording, Self::Recording, Self::Failed]
            .into_iter()
            .find(|status| status.as_str() == s)
    }
}

impl fmt::Display for RecordingStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The longest `clientContext` Graph documents ("Max limit is 256 chars").
pub(crate) const MAX_CLIENT_CONTEXT_CHARS: usize = 256;

/// The body of `POST /communications/calls/{id}/updateRecordingStatus`:
/// `{"clientContext": "…", "status": "notRecording | recording | failed"}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UpdateRequest {
    /// `None` when absent or `null`: Graph's metadata makes only `status` non-nullable.
    pub(crate) client_context: Option<String>,
    pub(crate) status: RecordingStatus,
}

/// The strings a request body carried, whatever their validity (for the record).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct RawFields {
    pub(crate) status: Option<String>,
    pub(crate) client_context: Option<String>,
}

/// Why a request body is refused (each answered `400`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BodyError {
    /// Not a JSON object.
    NotJson,
    /// `status` is missing, not a string, or not one of the three documented values.
    Status,
    /// `clientContext` is present but not a string of at most 256 characters.
    ClientContext,
}

impl BodyError {
    pub(crate) fn message(self) -> &'static str {
        match self {
            Self::NotJson => {
                "Unable to read JSON request payload. Please ensure Content-Type header is set \
                 and payload is of valid JSON format."
            }
            Self::Status => {
                "Invalid value for 'status': expected notRecording, recording or failed."
            }
            Self::ClientContext => {
                "Invalid value for 'clientContext': a string of at most 256 characters required."
            }
        }
    }
}

impl UpdateRequest {
    /// Parses a request body as Graph documents it. The [`RawFields`] are returned either way.
    pub(crate) fn parse(body: &[u8]) -> (RawFields, Result<Self, BodyError>) {
        let Ok(Value::Object(object)) = serde_json::from_slice::<Value>(body) else {
            return (RawFields::default(), Err(BodyError::NotJson));
        };
        let status = object.get("status");
        let context = object.get("clientContext");
        let raw = RawFields {
            status: status.and_then(Value::as_str).map(str::to_owned),
            client_context: context.and_then(Value::as_str).map(str::to_owned),
        };
        let Some(status) = status
            .and_then(Value::as_str)
            .and_then(RecordingStatus::from_wire)
        else {
            return (raw, Err(BodyError::Status));
        };
        let client_context = match context {
            None | Some(Value::Null) => None,
            Some(Value::String(c)) if valid_client_context(c) => Some(c.clone()),
            Some(_) => return (raw, Err(BodyError::ClientContext)),
        };
        (
            raw,
            Ok(Self {
                client_context,
                status,
            }),
        )
    }
}

/// At most 256 characters, the only rule Graph documents. The unit is not documented: counted
/// in UTF-16 code units, as the .NET service counts a string's `Length`, which is the stricter
/// reading (it equals the number of characters for everything but astral-plane ones).
pub(crate) fn valid_client_context(context: &str) -> bool {
    context.encode_utf16().count() <= MAX_CLIENT_CONTEXT_CHARS
}

/// An operation's `status` (`api-reference/v1.0/resources/updaterecordingstatusoperation.md`:
/// `notStarted`, `running`, `completed`, `failed`; Graph's metadata spells them PascalCase).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OperationStatus {
    Running,
    Completed,
    Failed,
}

impl OperationStatus {
    /// camelCase, as the documentation's examples, or PascalCase, as Graph's metadata.
    pub(crate) fn spelled(self, pascal: bool) -> &'static str {
        match (self, pascal) {
            (Self::Running, false) => "running",
            (Self::Running, true) => "Running",
            (Self::Completed, false) => "completed",
            (Self::Completed, true) => "Completed",
            (Self::Failed, false) => "failed",
            (Self::Failed, true) => "Failed",
        }
    }
}

/// `resultInfo` (`api-reference/v1.0/resources/resultinfo.md`): `code`, `subcode`, `message`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct ResultInfo {
    #[serde(rename = "@odata.type")]
    odata_type: &'static str,
    code: i64,
    subcode: i64,
    message: String,
}

impl ResultInfo {
    pub(crate) fn new(code: i64, subcode: i64, message: impl Into<String>) -> Self {
        Self {
            odata_type: "#microsoft.graph.resultInfo",
            code,
            subcode,
            message: message.into(),
        }
    }
}

const OPERATION_TYPE: &str = "#microsoft.graph.updateRecordingStatusOperation";

/// The `updateRecordingStatusOperation` in a `200` answer, fields in the order of the
/// documentation's example.
#[derive(Debug, Serialize)]
pub(crate) struct Operation<'a> {
    #[serde(rename = "@odata.type")]
    odata_type: &'static str,
    #[serde(rename = "clientContext")]
    client_context: Option<&'a str>,
    id: &'a str,
    #[serde(rename = "resultInfo")]
    result_info: Option<ResultInfo>,
    status: &'static str,
}

impl<'a> Operation<'a> {
    pub(crate) fn new(
        id: &'a str,
        client_context: Option<&'a str>,
        status: OperationStatus,
        result_info: Option<ResultInfo>,
    ) -> Self {
        Self {
            odata_type: OPERATION_TYPE,
            client_context,
            id,
            result_info,
            status: status.spelled(false),
        }
    }

    pub(crate) fn to_json(&self) -> String {
        to_json(self)
    }
}

/// Graph's error envelope (`concepts/errors.md`):
/// `{"error": {"code", "message", "innerError": {"code"?, "date", "request-id", "client-request-id"}}}`.
#[derive(Debug, Serialize)]
pub(crate) struct ErrorBody<'a> {
    error: ErrorDetail<'a>,
}

#[derive(Debug, Serialize)]
struct ErrorDetail<'a> {
    code: &'a str,
    message: &'a str,
    #[serde(rename = "innerError")]
    inner_error: InnerError<'a>,
}

#[derive(Debug, Serialize)]
struct InnerError<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    code: Option<&'a str>,
    date: String,
    #[serde(rename = "request-id")]
    request_id: &'a str,
    #[serde(rename = "client-request-id")]
    client_request_id: &'a str,
}

impl<'a> ErrorBody<'a> {
    /// `date` is now, as Graph writes it (`2020-02-13T17:30:24`, UTC, no offset).
    pub(crate) fn new(
        code: &'a str,
        message: &'a str,
        inner_code: Option<&'a str>,
        request_id: &'a str,
        client_request_id: &'a str,
    ) -> Self {
        Self {
            error: ErrorDetail {
                code,
                message,
                inner_error: InnerError {
                    code: inner_code,
                    date: chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S").to_string(),
                    request_id,
                    client_request_id,
                },
            },
        }
    }

    pub(crate) fn to_json(&self) -> String {
        to_json(self)
    }
}

/// A `commsNotification`'s `changeType` (`created`, `updated`, `deleted`); an operation that
/// finished is notified as `deleted`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) enum ChangeType {
    Updated,
    Deleted,
}

/// `#microsoft.graph.commsNotifications`, holding one `commsNotification` about an operation.
#[derive(Debug, Serialize)]
pub(crate) struct Notifications<'a> {
    #[serde(rename = "@odata.type")]
    odata_type: &'static str,
    value: [Notification<'a>; 1],
}

#[derive(Debug, Serialize)]
struct Notification<'a> {
    #[serde(rename = "@odata.type")]
    odata_type: &'static str,
    #[serde(rename = "changeType")]
    change_type: ChangeType,
    /// The legacy `/app/calls/…` path real traffic carries next to `resourceUrl`; not part of
    /// the documented shape.
    #[serde(skip_serializing_if = "Option::is_none")]
    resource: Option<String>,
    #[serde(rename = "resourceUrl")]
    resource_url: &'a str,
    #[serde(rename = "resourceData")]
    resource_data: OperationData<'a>,
}

/// The operation in a notification's `resourceData`, fields in the documented example's order.
#[derive(Debug, Serialize)]
struct OperationData<'a> {
    #[serde(rename = "@odata.type")]
    odata_type: &'static str,
    #[serde(rename = "@odata.id")]
    odata_id: &'a str,
    #[serde(rename = "resultInfo")]
    result_info: Option<ResultInfo>,
    #[serde(rename = "clientContext")]
    client_context: Option<&'a str>,
    status: &'static str,
}

/// What a notification says about an operation.
#[derive(Debug, Clone)]
pub(crate) struct OperationUpdate<'a> {
    /// The call id as it appears in the paths (already in the notification's spelling).
    pub(crate) call: &'a str,
    /// The operation id, in the same spelling.
    pub(crate) operation: &'a str,
    pub(crate) client_context: Option<&'a str>,
    pub(crate) change_type: ChangeType,
    pub(crate) status: OperationStatus,
    pub(crate) pascal_case: bool,
    pub(crate) legacy_resource: bool,
}

impl OperationUpdate<'_> {
    /// The `commsNotifications` body.
    pub(crate) fn to_json(&self, result_info: Option<ResultInfo>) -> String {
        let path = format!(
            "/communications/calls/{}/operations/{}",
            self.call, self.operation
        );
        let body = Notifications {
            odata_type: "#microsoft.graph.commsNotifications",
            value: [Notification {
                odata_type: "#microsoft.graph.commsNotification",
                change_type: self.change_type,
                resource: self
                    .legacy_resource
                    .then(|| format!("/app/calls/{}/operations/{}", self.call, self.operation)),
                resource_url: &path,
                resource_data: OperationData {
                    odata_type: OPERATION_TYPE,
                    odata_id: &path,
                    result_info,
                    client_context: self.client_context,
                    status: self.status.spelled(self.pascal_case),
                },
            }],
        };
        to_json(&body)
    }
}

/// The `commsNotifications` body of Graph hanging up the call at `call` (the id as it appears
/// in paths): `deleted` on the call's URL, a `#microsoft.graph.call` whose `state` is
/// `terminated`, with the `resultInfo` of a call that ended (`call-delete.md`'s notification
/// example; `200`/`5001`, "The conversation has ended.").
pub(crate) fn terminated_notification(call: &str) -> String {
    #[derive(Serialize)]
    struct Call<'a> {
        #[serde(rename = "@odata.type")]
        odata_type: &'static str,
        #[serde(rename = "@odata.id")]
        odata_id: &'a str,
        state: &'static str,
        #[serde(rename = "resultInfo")]
        result_info: ResultInfo,
    }
    #[derive(Serialize)]
    struct Notification<'a> {
        #[serde(rename = "@odata.type")]
        odata_type: &'static str,
        #[serde(rename = "changeType")]
        change_type: ChangeType,
        #[serde(rename = "resourceUrl")]
        resource_url: &'a str,
        #[serde(rename = "resourceData")]
        resource_data: Call<'a>,
    }
    #[derive(Serialize)]
    struct Notifications<'a> {
        #[serde(rename = "@odata.type")]
        odata_type: &'static str,
        value: [Notification<'a>; 1],
    }
    let path = format!("/communications/calls/{call}");
    to_json(&Notifications {
        odata_type: "#microsoft.graph.commsNotifications",
        value: [Notification {
            odata_type: "#microsoft.graph.commsNotification",
            change_type: ChangeType::Deleted,
            resource_url: &path,
            resource_data: Call {
                odata_type: "#microsoft.graph.call",
                odata_id: &path,
                state: "terminated",
                result_info: ResultInfo::new(200, 5001, "The conversation has ended."),
            },
        }],
    })
}

fn to_json(value: &impl Serialize) -> String {
    // Serialising these structs cannot fail: every key is a string, every value plain data.
    serde_json::to_string(value).unwrap_or_default()
}

/// An id in the form Graph's notifications are matched in: lower case, dashes removed (Graph
/// answers `57dab8b1-894c-…` and notifies `57DAB8B1894C…` for the same call).
pub(crate) fn normalize_id(id: &str) -> String {
    id.chars()
        .filter(|c| *c != '-')
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// The spelling Graph's notification examples use: upper case, no dashes.
pub(crate) fn upper_dashless(id: &str) -> String {
    normalize_id(id).to_ascii_uppercase()
}

/// One percent-encoded path segment (RFC 3986 unreserved characters kept).
pub(crate) fn encode_segment(s: &str) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn recording_status_wire_spelling() {
        for status in [
            RecordingStatus::NotRecording,
            RecordingStatus::Recording,
            RecordingStatus::Failed,
        ] {
            assert_eq!(RecordingStatus::from_wire(status.as_str()), Some(status));
            assert_eq!(status.to_string(), status.as_str());
        }
        for other in [
            "Recording",
            "RECORDING",
            "unknown",
            "unknownFutureValue",
            "",
        ] {
            assert_eq!(RecordingStatus::from_wire(other), None, "{other}");
        }
    }

    #[test]
    fn request_bodies() {
        let (raw, parsed) =
            UpdateRequest::parse(br#"{"clientContext":"ctx","status":"recording","x":1}"#);
        assert_eq!(raw.status.as_deref(), Some("recording"));
        assert_eq!(
            parsed,
            Ok(UpdateRequest {
                client_context: Some("ctx".to_owned()),
                status: RecordingStatus::Recording,
            })
        );
        // Absent or null: valid, no context.
        for body in [
            &br#"{"status":"failed"}"#[..],
            br#"{"clientContext":null,"status":"failed"}"#,
        ] {
            let (_, parsed) = UpdateRequest::parse(body);
            assert_eq!(parsed.map(|r| r.client_context), Ok(None));
        }
        let cases: [(&[u8], BodyError); 8] = [
            (b"", BodyError::NotJson),
            (b"[]", BodyError::NotJson),
            (b"{status", BodyError::NotJson),
            (br#"{"clientContext":"c"}"#, BodyError::Status),
            (br#"{"status":null}"#, BodyError::Status),
            (br#"{"status":"Recording"}"#, BodyError::Status),
            (br#"{"status":"unknownFutureValue"}"#, BodyError::Status),
            (
                br#"{"clientContext":7,"status":"recording"}"#,
                BodyError::ClientContext,
            ),
        ];
        for (body, error) in cases {
            assert_eq!(
                UpdateRequest::parse(body).1,
                Err(error),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        let (raw, _) = UpdateRequest::parse(br#"{"clientContext":"c","status":"unknown"}"#);
        assert_eq!(raw.client_context.as_deref(), Some("c"));
        assert_eq!(raw.status.as_deref(), Some("unknown"));
    }

    #[test]
    fn client_context_is_at_most_256_chars() {
        assert!(valid_client_context(""));
        assert!(valid_client_context(&"x".repeat(256)));
        assert!(!valid_client_context(&"x".repeat(257)));
        assert!(valid_client_context(&"é".repeat(256)));
        assert!(valid_client_context("a\nb"));
        // An astral-plane character is two UTF-16 code units.
        assert!(valid_client_context(&"😀".repeat(128)));
        assert!(!valid_client_context(&"😀".repeat(129)));
    }

    #[test]
    fn the_operation_is_the_documented_example() {
        let operation = Operation::new(
            "0fe0623f-d628-42ed-b4bd-8ac290072cc5",
            Some("clientContext-value"),
            OperationStatus::Completed,
            None,
        );
        let json: Value = serde_json::from_str(&operation.to_json()).unwrap();
        assert_eq!(
            json,
            json!({
                "@odata.type": "#microsoft.graph.updateRecordingStatusOperation",
                "clientContext": "clientContext-value",
                "id": "0fe0623f-d628-42ed-b4bd-8ac290072cc5",
                "resultInfo": null,
                "status": "completed"
            })
        );
        let failed = Operation::new(
            "op",
            None,
            OperationStatus::Failed,
            Some(ResultInfo::new(500, 8510, "no")),
        );
        assert_eq!(
            failed.to_json(),
            r##"{"@odata.type":"#microsoft.graph.updateRecordingStatusOperation","clientContext":null,"id":"op","resultInfo":{"@odata.type":"#microsoft.graph.resultInfo","code":500,"subcode":8510,"message":"no"},"status":"failed"}"##
        );
    }

    #[test]
    fn the_error_envelope() {
        let body = ErrorBody::new("8506", "not allowed", None, "r-1", "c-1").to_json();
        let json: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(json["error"]["code"], "8506");
        assert_eq!(json["error"]["message"], "not allowed");
        let inner = &json["error"]["innerError"];
        assert_eq!(inner["request-id"], "r-1");
        assert_eq!(inner["client-request-id"], "c-1");
        assert!(inner.get("code").is_none());
        let date = inner["date"].as_str().unwrap();
        assert!(chrono::NaiveDateTime::parse_from_str(date, "%Y-%m-%dT%H:%M:%S").is_ok());
        let throttled = ErrorBody::new(
            "activityLimitReached",
            "m",
            Some("throttledRequest"),
            "r",
            "c",
        );
        let json: Value = serde_json::from_str(&throttled.to_json()).unwrap();
        assert_eq!(json["error"]["innerError"]["code"], "throttledRequest");
    }

    #[test]
    fn the_notification_is_the_documented_example() {
        // api-reference/v1.0/api/call-playprompt.md, "Notification - operation completed",
        // for an updateRecordingStatusOperation (without the example's `@odata.etag`).
        let update = OperationUpdate {
            call: "57DAB8B1894C409AB240BD8BEAE78896",
            operation: "0FE0623FD62842EDB4BD8AC290072CC5",
            client_context: Some("d45324c1-fcb5-430a-902c-f20af696537c"),
            change_type: ChangeType::Deleted,
            status: OperationStatus::Completed,
            pascal_case: false,
            legacy_resource: false,
        };
        let body = update.to_json(Some(ResultInfo::new(
            200,
            0,
            "Action completed successfully.",
        )));
        let json: Value = serde_json::from_str(&body).unwrap();
        let path = "/communications/calls/57DAB8B1894C409AB240BD8BEAE78896/operations/0FE0623FD62842EDB4BD8AC290072CC5";
        assert_eq!(
            json,
            json!({
                "@odata.type": "#microsoft.graph.commsNotifications",
                "value": [{
                    "@odata.type": "#microsoft.graph.commsNotification",
                    "changeType": "deleted",
                    "resourceUrl": path,
                    "resourceData": {
                        "@odata.type": "#microsoft.graph.updateRecordingStatusOperation",
                        "@odata.id": path,
                        "resultInfo": {
                            "@odata.type": "#microsoft.graph.resultInfo",
                            "code": 200,
                            "subcode": 0,
                            "message": "Action completed successfully."
                        },
                        "clientContext": "d45324c1-fcb5-430a-902c-f20af696537c",
                        "status": "completed"
                    }
                }]
            })
        );
        let legacy = OperationUpdate {
            legacy_resource: true,
            pascal_case: true,
            change_type: ChangeType::Updated,
            status: OperationStatus::Running,
            ..update
        };
        let json: Value = serde_json::from_str(&legacy.to_json(None)).unwrap();
        let entry = &json["value"][0];
        assert_eq!(entry["changeType"], "updated");
        assert_eq!(
            entry["resource"],
            "/app/calls/57DAB8B1894C409AB240BD8BEAE78896/operations/0FE0623FD62842EDB4BD8AC290072CC5"
        );
        assert_eq!(entry["resourceData"]["status"], "Running");
        assert!(entry["resourceData"]["resultInfo"].is_null());
    }

    #[test]
    fn ids_and_segments() {
        assert_eq!(
            normalize_id("57DAB8B1-894C-409a-b240-bd8beae78896"),
            "57dab8b1894c409ab240bd8beae78896"
        );
        assert_eq!(
            upper_dashless("57dab8b1-894c-409a-b240-bd8beae78896"),
            "57DAB8B1894C409AB240BD8BEAE78896"
        );
        assert_eq!(normalize_id("Ä-b"), "Äb");
        assert_eq!(encode_segment("a/b c"), "a%2Fb%20c");
        assert_eq!(encode_segment("a:b@c-1.2_3~"), "a%3Ab%40c-1.2_3~");
    }
}
