//! Sans-IO: building `POST …/updateRecordingStatus` as an [`http::Request<Vec<u8>>`].

use http::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use serde::Serialize;

use crate::endpoint::Endpoint;
use crate::error::InvalidToken;
use crate::status::RecordingStatus;
use crate::transport::HttpRequest;
use crate::types::{AccessToken, CallId, ClientContext};

/// The name of Graph's per-request correlation header.
pub(crate) const CLIENT_REQUEST_ID: &str = "client-request-id";

/// One `updateRecordingStatus` attempt: the status to report, the `clientContext` and the
/// `client-request-id` it carries. Every attempt gets fresh values by default.
///
/// # Example
/// ```
/// use recording_status::{AccessToken, CallId, Endpoint, RecordingStatus};
/// use recording_status::request::UpdateRequest;
///
/// let call: CallId = "57dab8b1-894c-409a-b240-bd8beae78896".parse()?;
/// let attempt = UpdateRequest::new(RecordingStatus::Recording);
/// let request = attempt.to_http(&Endpoint::default(), &call, &AccessToken::new("t"))?;
/// assert_eq!(request.method(), http::Method::POST);
/// assert_eq!(
///     request.uri(),
///     "https://graph.microsoft.com/v1.0/communications/calls/57dab8b1-894c-409a-b240-bd8beae78896/updateRecordingStatus"
/// );
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateRequest {
    status: RecordingStatus,
    client_context: ClientContext,
    client_request_id: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Body<'a> {
    client_context: &'a str,
    status: RecordingStatus,
}

/// The bytes of the body besides the context and the status:
/// `{"clientContext":"` (18), `","status":"` (12) and `"}` (2).
const BODY_FRAME: usize = 32;

impl UpdateRequest {
    /// An attempt to report `status`, with a fresh `clientContext` and `client-request-id`.
    pub fn new(status: RecordingStatus) -> Self {
        Self::with_context(status, ClientContext::fresh())
    }

    /// An attempt to report `status` with a chosen `clientContext` and a fresh
    /// `client-request-id`.
    pub fn with_context(status: RecordingStatus, client_context: ClientContext) -> Self {
        Self {
            status,
            client_context,
            client_request_id: crate::types::random_uuid_string(),
        }
    }

    /// The status this attempt reports.
    pub fn status(&self) -> RecordingStatus {
        self.status
    }

    /// The attempt's `clientContext`.
    pub fn client_context(&self) -> &ClientContext {
        &self.client_context
    }

    /// The attempt's `client-request-id`, a UUID.
    pub fn client_request_id(&self) -> &str {
        &self.client_request_id
    }

    /// The JSON body: `{"clientContext": "…", "status": "…"}`.
    pub fn body(&self) -> Vec<u8> {
        let context = self.client_context.as_str();
        let body = Body {
            client_context: context,
            status: self.status,
        };
        // Exactly sized, so that a transport handing it on as `Bytes` does not copy it: a
        // printable-ASCII context escapes only `"` and `\`, as one more byte each.
        let escaped = context
            .bytes()
            .filter(|b| matches!(b, b'"' | b'\\'))
            .count();
        let len = BODY_FRAME + context.len() + escaped + self.status.as_str().len();
        let mut out = Vec::with_capacity(len);
        // Serializing two strings into a Vec cannot fail.
        if serde_json::to_writer(&mut out, &body).is_err() {
            out.clear();
        }
        out
    }

    /// Builds the HTTP request. Pure: no I/O, no clock.
    ///
    /// The `Authorization` header is marked sensitive, so `http`'s own `Debug` hides it.
    ///
    /// # Errors
    /// [`InvalidToken`] if the token holds characters that cannot appear in a header.
    pub fn to_http(
        &self,
        endpoint: &Endpoint,
        call: &CallId,
        token: &AccessToken,
    ) -> Result<HttpRequest, InvalidToken> {
        const BEARER: &str = "Bearer ";
        let secret = token.secret();
        // Exactly sized, so that the header value keeps it without copying.
        let mut bearer = String::with_capacity(BEARER.len() + secret.len());
        bearer.push_str(BEARER);
        bearer.push_str(secret);
        let mut auth = HeaderValue::try_from(bearer).map_err(|_| InvalidToken(()))?;
        auth.set_sensitive(true);
        let mut request = http::Request::new(self.body());
        *request.method_mut() = http::Method::POST;
        // The URL is built from a validated base and a percent-encoded segment, so it parses.
        *request.uri_mut() = endpoint
            .update_recording_status_uri(call)
            .map_err(|_| InvalidToken(()))?;
        let headers = request.headers_mut();
        headers.insert(AUTHORIZATION, auth);
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if let Ok(id) = HeaderValue::try_from(self.client_request_id.as_str()) {
            headers.insert(CLIENT_REQUEST_ID, id);
        }
        Ok(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_request() {
        let call = CallId::new("57DAB8B1894C409AB240BD8BEAE78896").unwrap();
        let attempt = UpdateRequest::with_context(
            RecordingStatus::NotRecording,
            ClientContext::new("clientContext-value").unwrap(),
        );
        let r = attempt
            .to_http(&Endpoint::beta(), &call, &AccessToken::new("tok"))
            .unwrap();
        assert_eq!(r.method(), http::Method::POST);
        assert_eq!(
            r.uri().to_string(),
            "https://graph.microsoft.com/beta/communications/calls/57DAB8B1894C409AB240BD8BEAE78896/updateRecordingStatus"
        );
        assert_eq!(r.headers()[AUTHORIZATION], "Bearer tok");
        assert!(r.headers()[AUTHORIZATION].is_sensitive());
        assert_eq!(r.headers()[CONTENT_TYPE], "application/json");
        assert_eq!(r.headers()[CLIENT_REQUEST_ID], attempt.client_request_id());
        assert_eq!(
            r.body(),
            br#"{"clientContext":"clientContext-value","status":"notRecording"}"#
        );
        assert!(!format!("{r:?}").contains("tok\""));
    }

    #[test]
    fn body_is_exactly_sized_and_escapes_as_serde_json() {
        for context in ["plain", r#"quo"te"#, r"back\slash", r#""\"#, "~ !"] {
            for status in [
                RecordingStatus::Recording,
                RecordingStatus::NotRecording,
                RecordingStatus::Failed,
            ] {
                let attempt =
                    UpdateRequest::with_context(status, ClientContext::new(context).unwrap());
                let body = attempt.body();
                assert_eq!(body.len(), body.capacity(), "{context} {status:?}");
                let expected = serde_json::to_vec(&serde_json::json!({
                    "clientContext": context,
                    "status": status.as_str(),
                }))
                .unwrap();
                assert_eq!(body, expected);
            }
        }
    }

    #[test]
    fn every_attempt_is_fresh() {
        let a = UpdateRequest::new(RecordingStatus::Recording);
        let b = UpdateRequest::new(RecordingStatus::Recording);
        assert_ne!(a.client_context(), b.client_context());
        assert_ne!(a.client_request_id(), b.client_request_id());
    }

    #[test]
    fn bad_token_is_an_error_without_echo() {
        let call = CallId::new("c").unwrap();
        let e = UpdateRequest::new(RecordingStatus::Failed)
            .to_http(&Endpoint::v1(), &call, &AccessToken::new("bad\ntoken"))
            .unwrap_err();
        assert!(!e.to_string().contains("bad"));
    }
}
