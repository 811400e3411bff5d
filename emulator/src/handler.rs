//! The `updateRecordingStatus` handler: a request is validated as Graph documents it, then the
//! call's script decides the answer.

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::rejection::PathRejection;
use axum::extract::{ConnectInfo, Path, Request, State};
use axum::response::Response;
use chrono::{DateTime, Utc};
use http::header::{AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, HeaderName, LOCATION};
use http::{HeaderMap, HeaderValue, Method, StatusCode};

use crate::connection::{ConnControl, ConnTag, TruncatedStream};
use crate::notify::Settle;
use crate::wire::{
    ErrorBody, Operation, OperationStatus, RecordingStatus, ResultInfo, UpdateRequest,
    encode_segment,
};
use crate::{
    Behavior, MAX_BODY_BYTES, MalformedBody, NotifyStyle, RecordedRequest, RetryAfter, Shared,
};

/// The longest call id accepted, in bytes. Graph documents no limit (its ids are GUIDs, 36
/// characters); the emulator's own bound keeps the per-call state it holds small.
const MAX_CALL_ID_LEN: usize = 256;

/// The longest string kept in a [`RecordedRequest`] field, in characters; longer ones are cut.
const MAX_RECORDED_CHARS: usize = 512;

pub(crate) const REQUEST_ID: HeaderName = HeaderName::from_static("request-id");
pub(crate) const CLIENT_REQUEST_ID: HeaderName = HeaderName::from_static("client-request-id");
const RETRY_AFTER: HeaderName = HeaderName::from_static("retry-after");

/// What the handler learned about a request, for the record and the answer.
struct Received {
    request_id: String,
    client_request_id: Option<HeaderValue>,
    record: RecordedRequest,
}

impl Received {
    fn new(method: &Method, path: &str, headers: &HeaderMap) -> Self {
        let client_request_id = headers.get(CLIENT_REQUEST_ID).cloned();
        let request_id = uuid::Uuid::new_v4().to_string();
        Self {
            request_id: request_id.clone(),
            record: RecordedRequest {
                call_id: String::new(),
                version: String::new(),
                method: clip(method.as_str()),
                path: clip(path),
                status: None,
                client_context: None,
                client_request_id: client_request_id
                    .as_ref()
                    .map(|v| clip(&String::from_utf8_lossy(v.as_bytes()))),
                request_id,
                authorized: has_bearer(headers),
                http_status: 0,
                at: Utc::now(),
            },
            client_request_id,
        }
    }

    /// A response with `request-id` and `client-request-id`.
    fn response(
        &self,
        status: StatusCode,
        content_type: Option<&'static str>,
        body: Body,
    ) -> Response {
        let mut response = Response::new(body);
        *response.status_mut() = status;
        let headers = response.headers_mut();
        if let Some(content_type) = content_type {
            headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
        }
        if let Ok(id) = HeaderValue::try_from(self.request_id.as_str()) {
            headers.insert(REQUEST_ID, id.clone());
            // Graph echoes the client's id, or repeats its own when there is none.
            headers.insert(
                CLIENT_REQUEST_ID,
                self.client_request_id.clone().unwrap_or(id),
            );
        }
        response
    }

    /// Graph's error envelope with `status`.
    fn error(
        &self,
        status: StatusCode,
        code: &str,
        message: &str,
        inner_code: Option<&str>,
    ) -> Response {
        let client_request_id = self.client_request_id.as_ref().map_or_else(
            || self.request_id.clone(),
            |v| String::from_utf8_lossy(v.as_bytes()).into_owned(),
        );
        let body = ErrorBody::new(
            code,
            message,
            inner_code,
            &self.request_id,
            &client_request_id,
        );
        self.response(status, Some("application/json"), Body::from(body.to_json()))
    }

    /// Records the request with the status of `response`, and returns `response`.
    fn finish(mut self, shared: &Shared, response: Response) -> Response {
        self.record.http_status = response.status().as_u16();
        shared.record(self.record);
        response
    }

    /// Answers and records an error.
    fn refuse(self, shared: &Shared, status: StatusCode, code: &str, message: &str) -> Response {
        let response = self.error(status, code, message, None);
        self.finish(shared, response)
    }
}

/// Any path the emulator does not serve: `404` in Graph's envelope.
pub(crate) async fn not_found(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    Received::new(request.method(), request.uri().path(), request.headers()).refuse(
        &shared,
        StatusCode::NOT_FOUND,
        "NotFound",
        "Resource not found for the segment.",
    )
}

/// `POST /{v1.0|beta}/communications/calls/{id}/updateRecordingStatus`.
pub(crate) async fn update_recording_status(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(conn): ConnectInfo<ConnTag>,
    path: Result<Path<(String, String)>, PathRejection>,
    request: Request,
) -> Response {
    let mut received = Received::new(request.method(), request.uri().path(), request.headers());
    let Ok(Path((version, call_id))) = path else {
        return received.refuse(
            &shared,
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "The call id is not a valid path segment.",
        );
    };
    received.record.version = clip(&version);
    received.record.call_id = clip(&call_id);
    if version != "v1.0" && version != "beta" {
        return received.refuse(
            &shared,
            StatusCode::NOT_FOUND,
            "NotFound",
            "Unknown API version.",
        );
    }
    if !valid_call_id(&call_id) {
        return received.refuse(
            &shared,
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "The call id must be exactly one path segment.",
        );
    }
    if request.method() != Method::POST {
        return received.refuse(
            &shared,
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            "updateRecordingStatus only accepts POST.",
        );
    }
    // "Authorization: Bearer {token}. Required." and "Content-type: application/json. Required."
    if !received.record.authorized {
        return received.refuse(
            &shared,
            StatusCode::UNAUTHORIZED,
            "InvalidAuthenticationToken",
            "Access token is empty.",
        );
    }
    if !is_json(request.headers()) {
        return received.refuse(
            &shared,
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "Content-Type must be application/json.",
        );
    }
    let Some(body) = read_body(request).await else {
        return received.refuse(
            &shared,
            StatusCode::PAYLOAD_TOO_LARGE,
            "RequestEntityTooLarge",
            "The request body is too large.",
        );
    };
    let (raw, parsed) = UpdateRequest::parse(&body);
    received.record.status = raw.status.as_deref().map(clip);
    received.record.client_context = raw.client_context.as_deref().map(clip);
    let update = match parsed {
        Ok(update) => update,
        Err(e) => {
            return received.refuse(&shared, StatusCode::BAD_REQUEST, "BadRequest", e.message());
        }
    };

    // A call Graph hung up on is gone: `8522`, as Graph answers (comms-samples#173).
    if shared.has_ended(&call_id) {
        let response = received.error(StatusCode::NOT_FOUND, "8522", "Call not found.", None);
        return received.finish(&shared, response);
    }
    // Valid: the script decides.
    let mut behavior = shared.next_behavior(&call_id);
    let mut delay = Duration::ZERO;
    while let Behavior::Slow { delay: d, then } = behavior {
        delay = delay.saturating_add(d);
        behavior = *then;
    }
    let accepted = Accepted {
        shared: shared.clone(),
        version,
        call_id,
        status: update.status,
        context: update.client_context,
        operation_id: uuid::Uuid::new_v4().to_string(),
    };
    received.record.http_status = answer_status(&behavior);
    shared.record(received.record.clone());
    if !delay.is_zero() {
        let mut stopped = shared.stopped.clone();
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            _ = stopped.wait_for(|stop| *stop) => {}
        }
    }
    accepted.answer(&received, &conn.control, behavior)
}

/// The body, or `None` when it is larger than [`MAX_BODY_BYTES`] (declared or sent).
async fn read_body(request: Request) -> Option<Bytes> {
    let declared = request
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > MAX_BODY_BYTES as u64) {
        return None;
    }
    axum::body::to_bytes(request.into_body(), MAX_BODY_BYTES)
        .await
        .ok()
}

/// The status [`Accepted::answer`] will send for `behavior` (`0`: none).
fn answer_status(behavior: &Behavior) -> u16 {
    match behavior {
        Behavior::Complete
        | Behavior::CompleteThenHangUp { .. }
        | Behavior::Running { .. }
        | Behavior::RunningThenFail { .. }
        | Behavior::Failed { .. }
        | Behavior::Malformed(_)
        | Behavior::TruncatedBody
        | Behavior::ForeignLocation
        | Behavior::Slow { .. } => 200,
        Behavior::Throttle { status, .. } => throttle_status(*status).as_u16(),
        Behavior::ServerError { status } => server_error_status(*status).as_u16(),
        Behavior::Forbidden8506 => 403,
        Behavior::DropConnection => 0,
    }
}

fn throttle_status(status: u16) -> StatusCode {
    StatusCode::from_u16(status)
        .ok()
        .filter(|s| s.is_client_error() || s.is_server_error())
        .unwrap_or(StatusCode::TOO_MANY_REQUESTS)
}

fn server_error_status(status: u16) -> StatusCode {
    StatusCode::from_u16(status)
        .ok()
        .filter(StatusCode::is_server_error)
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// A valid update, about to be answered.
pub(crate) struct Accepted {
    pub(crate) shared: Arc<Shared>,
    version: String,
    /// As requested (percent-decoded).
    pub(crate) call_id: String,
    pub(crate) status: RecordingStatus,
    /// `None` when the request had no `clientContext`: Graph then answers with `null`.
    pub(crate) context: Option<String>,
    pub(crate) operation_id: String,
}

impl Accepted {
    fn operation(&self, status: OperationStatus, result_info: Option<ResultInfo>) -> String {
        Operation::new(
            &self.operation_id,
            self.context.as_deref(),
            status,
            result_info,
        )
        .to_json()
    }

    /// `200` with the operation and a `Location` under `origin`.
    fn ok(&self, received: &Received, operation: String, origin: &str) -> Response {
        let mut response = received.response(
            StatusCode::OK,
            Some("application/json"),
            Body::from(operation),
        );
        let location = format!(
            "{origin}/{}/communications/calls/{}/operations/{}",
            self.version,
            encode_segment(&self.call_id),
            self.operation_id
        );
        if let Ok(location) = HeaderValue::try_from(location) {
            response.headers_mut().insert(LOCATION, location);
        }
        response
    }

    fn answer(
        self,
        received: &Received,
        control: &Arc<ConnControl>,
        behavior: Behavior,
    ) -> Response {
        let origin = format!("http://{}", self.shared.addr);
        match behavior {
            Behavior::Complete | Behavior::Slow { .. } => {
                self.shared.set_status(&self.call_id, self.status);
                self.ok(
                    received,
                    self.operation(OperationStatus::Completed, None),
                    &origin,
                )
            }
            Behavior::CompleteThenHangUp { after } => {
                self.shared.set_status(&self.call_id, self.status);
                let response = self.ok(
                    received,
                    self.operation(OperationStatus::Completed, None),
                    &origin,
                );
                crate::notify::hang_up_later(self.shared.clone(), self.call_id.clone(), after);
                response
            }
            Behavior::ForeignLocation => {
                self.shared.set_status(&self.call_id, self.status);
                let operation = self.operation(OperationStatus::Completed, None);
                self.ok(received, operation, "https://evil.example")
            }
            Behavior::Running { delay, notify } => {
                let operation = self.operation(OperationStatus::Running, None);
                let response = self.ok(received, operation, &origin);
                self.settle_later(delay, Settle::Completed, notify);
                response
            }
            Behavior::RunningThenFail {
                delay,
                code,
                subcode,
            } => {
                let operation = self.operation(OperationStatus::Running, None);
                let response = self.ok(received, operation, &origin);
                self.settle_later(
                    delay,
                    Settle::Failed { code, subcode },
                    NotifyStyle::default(),
                );
                response
            }
            Behavior::Failed {
                code,
                subcode,
                message,
            } => {
                let result = ResultInfo::new(code, subcode, message);
                let operation = self.operation(OperationStatus::Failed, Some(result));
                self.ok(received, operation, &origin)
            }
            Behavior::Throttle {
                status,
                retry_after,
            } => throttled(received, throttle_status(status), &retry_after),
            Behavior::ServerError { status } => {
                let status = server_error_status(status);
                let code = match status {
                    StatusCode::BAD_GATEWAY => "BadGateway",
                    StatusCode::SERVICE_UNAVAILABLE => "serviceNotAvailable",
                    StatusCode::GATEWAY_TIMEOUT => "GatewayTimeout",
                    StatusCode::INTERNAL_SERVER_ERROR => "InternalServerError",
                    _ => "UnknownError",
                };
                received.error(status, code, "An internal server error occurred.", None)
            }
            Behavior::Forbidden8506 => received.error(
                StatusCode::FORBIDDEN,
                "8506",
                "API call not allowed for non-Compliance Recording call",
                None,
            ),
            Behavior::Malformed(kind) => match kind {
                MalformedBody::Html => received.response(
                    StatusCode::OK,
                    Some("text/html; charset=utf-8"),
                    Body::from(
                        "<!DOCTYPE html><html><head><title>Service Unavailable</title></head>\
                         <body><h1>Service Unavailable</h1><p>The gateway could not reach the \
                         service.</p></body></html>",
                    ),
                ),
                MalformedBody::TruncatedJson => {
                    let full = self.operation(OperationStatus::Completed, None);
                    received.response(
                        StatusCode::OK,
                        Some("application/json"),
                        Body::from(first_half(&full)),
                    )
                }
                MalformedBody::Empty => received.response(StatusCode::OK, None, Body::empty()),
            },
            Behavior::DropConnection => {
                control.kill();
                received.response(StatusCode::INTERNAL_SERVER_ERROR, None, Body::empty())
            }
            Behavior::TruncatedBody => {
                let full = self.operation(OperationStatus::Completed, None);
                let mut response = received.response(
                    StatusCode::OK,
                    Some("application/json"),
                    Body::new(TruncatedStream::new(
                        Bytes::from(first_half(&full)),
                        control.clone(),
                    )),
                );
                response
                    .headers_mut()
                    .insert(CONTENT_LENGTH, HeaderValue::from(full.len()));
                response
            }
        }
    }
}

/// Graph's throttling answers (`concepts/errors.md`): `429 activityLimitReached` with the inner
/// code `throttledRequest`, or `serviceNotAvailable` for `503` (and any other status asked for),
/// with `Retry-After` as asked.
fn throttled(received: &Received, status: StatusCode, retry_after: &RetryAfter) -> Response {
    let mut response = if status == StatusCode::TOO_MANY_REQUESTS {
        received.error(
            status,
            "activityLimitReached",
            "The request has been throttled.",
            Some("throttledRequest"),
        )
    } else {
        received.error(
            status,
            "serviceNotAvailable",
            "The service is temporarily unavailable.",
            None,
        )
    };
    let value = match retry_after {
        RetryAfter::Seconds(s) => Some(s.to_string()),
        RetryAfter::HttpDate(after) => Some(http_date_after(*after)),
        RetryAfter::None => None,
    };
    if let Some(value) = value.and_then(|v| HeaderValue::try_from(v).ok()) {
        response.headers_mut().insert(RETRY_AFTER, value);
    }
    response
}

// ---------------------------------------------------------------------------------------------
// Helpers

fn first_half(s: &str) -> String {
    s.get(..s.len() / 2).unwrap_or_default().to_owned()
}

/// An IMF-fixdate `after` from now, rounded up to the next whole second.
fn http_date_after(after: Duration) -> String {
    const YEAR: Duration = Duration::from_secs(366 * 24 * 3600);
    let after = chrono::Duration::from_std(after.min(YEAR)).unwrap_or_default();
    let now = Utc::now();
    let mut at = now.checked_add_signed(after).unwrap_or(now);
    if at.timestamp_subsec_nanos() > 0 {
        at = DateTime::from_timestamp(at.timestamp().saturating_add(1), 0).unwrap_or(at);
    }
    at.format("%a, %d %b %Y %H:%M:%S GMT").to_string()
}

fn has_bearer(headers: &HeaderMap) -> bool {
    headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, token) = v.trim().split_once(' ')?;
            Some(scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty())
        })
        .unwrap_or(false)
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"))
}

/// Exactly one non-empty path segment once decoded, and not a dot segment.
fn valid_call_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_CALL_ID_LEN
        && id != "."
        && id != ".."
        && !id
            .chars()
            .any(|c| matches!(c, '/' | '\\' | '?' | '#') || c.is_whitespace() || c.is_control())
}

/// `s` cut to [`MAX_RECORDED_CHARS`] characters.
fn clip(s: &str) -> String {
    match s.char_indices().nth(MAX_RECORDED_CHARS) {
        Some((end, _)) => s.get(..end).unwrap_or_default().to_owned(),
        None => s.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helpers() {
        assert_eq!(clip(&"é".repeat(600)).chars().count(), MAX_RECORDED_CHARS);
        assert_eq!(clip("short"), "short");
        assert!(!valid_call_id("a/b"));
        assert!(!valid_call_id(""));
        assert!(!valid_call_id(".."));
        assert!(!valid_call_id("a b"));
        assert!(!valid_call_id(&"a".repeat(257)));
        assert!(valid_call_id(&"a".repeat(256)));
        assert!(valid_call_id("57dab8b1-894c-409a-b240-bd8beae78896"));
        assert!(valid_call_id("a:b@c%"));
        assert_eq!(first_half("abcd"), "ab");
        assert_eq!(throttle_status(200), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(throttle_status(503), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(server_error_status(404), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(server_error_status(502), StatusCode::BAD_GATEWAY);
    }

    #[test]
    fn retry_after_dates_are_imf_fixdates_rounded_up() {
        let before = Utc::now();
        let date = http_date_after(Duration::from_secs(30));
        assert!(date.ends_with(" GMT"), "{date}");
        let at = DateTime::parse_from_rfc2822(&date.replace("GMT", "+0000")).unwrap();
        let wait = at.signed_duration_since(before).num_seconds();
        assert!((30..=31).contains(&wait), "{wait}");
        // Capped at a year, and still a date.
        assert_eq!(http_date_after(Duration::MAX).len(), date.len());
    }

    #[test]
    fn bearer_detection() {
        let mut headers = HeaderMap::new();
        assert!(!has_bearer(&headers));
        headers.insert(AUTHORIZATION, HeaderValue::from_static("Bearer "));
        assert!(!has_bearer(&headers));
        headers.insert(AUTHORIZATION, HeaderValue::from_static("Basic abc"));
        assert!(!has_bearer(&headers));
        headers.insert(AUTHORIZATION, HeaderValue::from_static("bearer abc"));
        assert!(has_bearer(&headers));
    }

    #[test]
    fn json_content_types() {
        let mut headers = HeaderMap::new();
        assert!(!is_json(&headers));
        for (value, json) in [
            ("application/json", true),
            ("Application/JSON; charset=utf-8", true),
            ("text/plain", false),
            ("application/jsonx", false),
        ] {
            headers.insert(CONTENT_TYPE, HeaderValue::from_static(value));
            assert_eq!(is_json(&headers), json, "{value}");
        }
    }
}
