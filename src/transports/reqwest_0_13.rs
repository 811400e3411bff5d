//! An async [`Transport`] on [reqwest] 0.13 (feature `reqwest-0_13`): [`ReqwestTransport`].
//!
//! Redirects are off, timeouts and a response body cap are on; see the
//! [module docs of `transports`](super).

use std::time::Duration;

use super::defaults;
use crate::transport::{HttpRequest, HttpResponse, NotDelivered, Transport};

/// An async [`Transport`] on a [`reqwest::Client`] that never follows redirects, with a connect
/// timeout, an overall timeout and a response body cap.
///
/// Cloning is cheap: clones share the client's connection pool.
///
/// # Example
/// ```no_run
/// use std::time::Duration;
/// use recording_status::{AccessToken, Graph};
/// use recording_status::transports::reqwest_0_13::ReqwestTransport;
///
/// let transport = ReqwestTransport::builder()
///     .timeout(Duration::from_secs(10))
///     .connect_timeout(Duration::from_secs(3))
///     .build()?;
/// let graph = Graph::new(transport, AccessToken::new("eyJ0eXAi…"));
/// # drop(graph);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct ReqwestTransport {
    client: reqwest::Client,
    max_body_bytes: usize,
}

impl ReqwestTransport {
    /// A transport with the defaults: connect timeout 5 s, overall timeout 30 s, body cap
    /// 1 MiB, redirects off.
    ///
    /// # Errors
    /// As [`ReqwestTransportBuilder::build`].
    pub fn new() -> Result<Self, reqwest::Error> {
        Self::builder().build()
    }

    /// A builder, starting from the defaults of [`new`](Self::new).
    ///
    /// # Example
    /// ```
    /// use std::time::Duration;
    /// use recording_status::transports::reqwest_0_13::ReqwestTransport;
    ///
    /// let transport = ReqwestTransport::builder()
    ///     .timeout(Duration::from_secs(10))
    ///     .connect_timeout(Duration::from_secs(2))
    ///     .max_body_bytes(64 * 1024)
    ///     .build()?;
    /// assert_eq!(transport.max_body_bytes(), 64 * 1024);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn builder() -> ReqwestTransportBuilder {
        ReqwestTransportBuilder::default()
    }

    /// Wraps a client you configured yourself, with the default body cap.
    ///
    /// **You must disable redirects yourself** (`redirect(reqwest::redirect::Policy::none())`):
    /// reqwest follows up to 10 by default, and a bearer token must never follow a redirect.
    /// Set timeouts too; reqwest has none by default.
    ///
    /// # Example
    /// ```
    /// use std::time::Duration;
    /// use recording_status::transports::reqwest_0_13::ReqwestTransport;
    ///
    /// let client = reqwest::Client::builder()
    ///     .redirect(reqwest::redirect::Policy::none())
    ///     .timeout(Duration::from_secs(30))
    ///     .build()?;
    /// let transport = ReqwestTransport::from_client(client);
    /// # drop(transport);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn from_client(client: reqwest::Client) -> Self {
        Self {
            client,
            max_body_bytes: defaults::MAX_BODY_BYTES,
        }
    }

    /// Sets the response body cap (see [`ReqwestTransportBuilder::max_body_bytes`]).
    #[must_use]
    pub fn with_max_body_bytes(mut self, max: usize) -> Self {
        self.max_body_bytes = max;
        self
    }

    /// The client.
    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// The response body cap, in bytes.
    pub fn max_body_bytes(&self) -> usize {
        self.max_body_bytes
    }

    async fn exchange(&self, request: HttpRequest) -> Result<HttpResponse, ReqwestError> {
        // Nothing has been sent if the request cannot even be converted.
        let request = to_reqwest(request).map_err(classify)?;
        let mut response = self.client.execute(request).await.map_err(classify)?;
        let limit = self.max_body_bytes;
        let declared = response.content_length();
        if declared.is_some_and(|len| len > limit as u64) {
            return Err(ReqwestError::BodyTooLarge { limit });
        }
        let status = response.status();
        let version = response.version();
        let headers = std::mem::take(response.headers_mut());
        let capacity = declared.map_or(0, |len| len as usize).min(limit);
        let mut body = Vec::with_capacity(capacity);
        while let Some(chunk) = response.chunk().await.map_err(classify)? {
            if chunk.len() > limit - body.len() {
                return Err(ReqwestError::BodyTooLarge { limit });
            }
            body.extend_from_slice(&chunk);
        }
        let mut out = http::Response::new(body);
        *out.status_mut() = status;
        *out.version_mut() = version;
        *out.headers_mut() = headers;
        Ok(out)
    }
}

impl Transport for ReqwestTransport {
    type Error = ReqwestError;

    fn send(
        &self,
        request: HttpRequest,
    ) -> impl Future<Output = Result<HttpResponse, Self::Error>> + Send {
        self.exchange(request)
    }
}

/// Builds a [`ReqwestTransport`]; see [`ReqwestTransport::builder`].
#[derive(Debug, Clone)]
#[must_use]
pub struct ReqwestTransportBuilder {
    timeout: Duration,
    connect_timeout: Duration,
    max_body_bytes: usize,
}

impl Default for ReqwestTransportBuilder {
    fn default() -> Self {
        Self {
            timeout: defaults::TIMEOUT,
            connect_timeout: defaults::CONNECT_TIMEOUT,
            max_body_bytes: defaults::MAX_BODY_BYTES,
        }
    }
}

impl ReqwestTransportBuilder {
    /// The overall timeout for one exchange, from connecting to the last byte of the body
    /// (default 30 s). Running out is an ambiguous failure ([`ReqwestError::Timeout`]).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The timeout for making the connection, TLS included (default 5 s). Running out is a
    /// failure before sending ([`ReqwestError::NotDelivered`]).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// The largest response body accepted, in bytes (default 1 MiB). A larger body is
    /// [`ReqwestError::BodyTooLarge`], detected from `Content-Length` or while reading, so it
    /// is never buffered whole.
    pub fn max_body_bytes(mut self, max: usize) -> Self {
        self.max_body_bytes = max;
        self
    }

    /// Builds the client, with redirects off.
    ///
    /// # Errors
    /// Whatever [`reqwest::ClientBuilder::build`] reports (such as a TLS backend that cannot
    /// be initialised).
    pub fn build(self) -> Result<ReqwestTransport, reqwest::Error> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(self.connect_timeout)
            .timeout(self.timeout)
            .build()?;
        Ok(ReqwestTransport {
            client,
            max_body_bytes: self.max_body_bytes,
        })
    }
}

/// Why a [`ReqwestTransport`] got no (acceptable) response.
///
/// Only [`NotDelivered`](Self::NotDelivered) means the request never left;
/// [`was_not_delivered`](crate::transport::was_not_delivered) is `true` for it alone. Every
/// other variant leaves the outcome unknown. The `Authorization` header never appears in the
/// message, the `Debug` output or the source chain.
///
/// # Example
/// ```
/// use recording_status::transport::was_not_delivered;
/// use recording_status::transports::reqwest_0_13::ReqwestError;
///
/// let e = ReqwestError::BodyTooLarge { limit: 1024 };
/// assert!(!was_not_delivered(&e));
/// assert_eq!(e.to_string(), "response body larger than 1024 bytes, outcome unknown");
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReqwestError {
    /// The request did not leave: it could not be built, or no connection could be made
    /// (DNS, refused, TLS handshake, connect timeout). Safe to retry. The source is a
    /// [`crate::transport::NotDelivered`] around the [`reqwest::Error`].
    #[error("request not sent")]
    NotDelivered(#[source] NotDelivered),
    /// The overall timeout passed before the whole response arrived; the request may have
    /// been sent. The outcome is unknown.
    #[error("timed out waiting for the response, outcome unknown")]
    Timeout(#[source] reqwest::Error),
    /// The response body is larger than the cap. The outcome is unknown.
    #[error("response body larger than {limit} bytes, outcome unknown")]
    BodyTooLarge {
        /// The cap, in bytes.
        limit: usize,
    },
    /// The exchange failed after the connection was made (reset, truncated body, protocol
    /// error). The outcome is unknown.
    #[error("request failed after connecting, outcome unknown")]
    Failed(#[source] reqwest::Error),
}

impl ReqwestError {
    /// Whether the request never left (see [`NotDelivered`](Self::NotDelivered)).
    pub fn is_not_delivered(&self) -> bool {
        matches!(self, Self::NotDelivered(_))
    }

    /// Whether a timeout after connecting caused this.
    pub fn is_timeout(&self) -> bool {
        matches!(self, Self::Timeout(_))
    }
}

/// `reqwest::Request::try_from`, without its detour through `Display` and without parsing the
/// scheme and host again for every request: the URL of the last origin this thread sent to is
/// kept, parsed, and only the path and query are set on it (the host parse, with its IDNA
/// pass, was about a third of the URL parsing per request). A request carrying extensions goes
/// through `try_from`, which alone keeps them (reqwest offers no other way to).
fn to_reqwest(request: HttpRequest) -> Result<reqwest::Request, reqwest::Error> {
    if !request.extensions().is_empty() {
        return reqwest::Request::try_from(request);
    }
    let (parts, body) = request.into_parts();
    let Some(url) = parsed_url(&parts.uri) else {
        // Relative, or a host that does not parse: let reqwest say why it will not do.
        return reqwest::Request::try_from(http::Request::from_parts(parts, body));
    };
    let mut out = reqwest::Request::new(parts.method, url);
    *out.headers_mut() = parts.headers;
    *out.version_mut() = parts.version;
    *out.body_mut() = Some(body.into());
    Ok(out)
}

thread_local! {
    /// The last `scheme://authority` a request was converted for on this thread, and its URL.
    static ORIGIN: std::cell::RefCell<Option<(String, reqwest::Url)>> =
        const { std::cell::RefCell::new(None) };
}

/// `uri` as a URL, as `Url::parse` reads its text; `None` if it has no scheme or authority, or
/// they do not parse.
fn parsed_url(uri: &http::Uri) -> Option<reqwest::Url> {
    const SEPARATOR: &str = "://";
    let (scheme, authority) = (uri.scheme_str()?, uri.authority()?.as_str());
    let same = |origin: &str| {
        origin.len() == scheme.len() + SEPARATOR.len() + authority.len()
            && origin.starts_with(scheme)
            && origin[scheme.len()..].starts_with(SEPARATOR)
            && origin.ends_with(authority)
    };
    ORIGIN.with_borrow_mut(|cached| {
        if !cached.as_ref().is_some_and(|(origin, _)| same(origin)) {
            let mut origin =
                String::with_capacity(scheme.len() + SEPARATOR.len() + authority.len());
            origin.push_str(scheme);
            origin.push_str(SEPARATOR);
            origin.push_str(authority);
            let url = reqwest::Url::parse(&origin).ok()?;
            *cached = Some((origin, url));
        }
        let (_, url) = cached.as_mut()?;
        url.set_path(uri.path());
        url.set_query(uri.query());
        Some(url.clone())
    })
}

fn classify(error: reqwest::Error) -> ReqwestError {
    if error.is_builder() || error.is_connect() {
        ReqwestError::NotDelivered(NotDelivered::new(error))
    } else if error.is_timeout() {
        ReqwestError::Timeout(error)
    } else {
        ReqwestError::Failed(error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(uri: &str) -> HttpRequest {
        http::Request::builder()
            .method(http::Method::POST)
            .uri(uri)
            .version(http::Version::HTTP_11)
            .header("authorization", "Bearer t")
            .header("client-request-id", "id")
            .body(br#"{"a":1}"#.to_vec())
            .unwrap()
    }

    #[test]
    fn converts_as_try_from_does() {
        // Twice over, in an order that reuses and replaces the cached origin.
        for uri in [
            "https://graph.microsoft.com/v1.0/communications/calls/a%3Ab/updateRecordingStatus",
            "https://graph.microsoft.com/v1.0/x?q=1",
            "https://graph.microsoft.com/v1.0/y",
            "https://GRAPH.microsoft.com/v1.0/y",
            "https://graph.microsoft.com:443/a/./b/../c",
            "https://user:pw@graph.microsoft.com/a",
            "http://127.0.0.1:8080/%2e%2E/x/%2E",
            "http://127.0.0.1:8080/ü/\\x?é",
            "http://127.0.0.1:8080",
            "http://127.0.0.1:8081/",
            "http://[::1]:3000/Beta/%C3%BC",
            "http://xn--nxasmq6b.example/a",
            "http://0x7f.1/a",
            "ftp://example.com/a",
        ]
        .into_iter()
        .cycle()
        .take(28)
        .chain([
            "https://graph.microsoft.com/v1.0/communications/calls/a%3Ab/updateRecordingStatus",
            "http://127.0.0.1:8080/v1.0/x?y=1&z",
            "http://[::1]:3000/Beta/%C3%BC",
            "HTTP://LocalHost:80/a/../b",
            "https://graph.microsoft.com",
        ]) {
            let ours = to_reqwest(request(uri)).unwrap();
            let theirs = reqwest::Request::try_from(request(uri)).unwrap();
            assert_eq!(ours.url(), theirs.url(), "{uri}");
            assert_eq!(ours.method(), theirs.method());
            assert_eq!(ours.headers(), theirs.headers());
            assert_eq!(ours.version(), theirs.version());
            assert_eq!(
                ours.body().and_then(reqwest::Body::as_bytes),
                theirs.body().and_then(reqwest::Body::as_bytes)
            );
        }
    }

    #[test]
    fn relative_is_a_builder_error_as_with_try_from() {
        let error = to_reqwest(request("/v1.0/x")).unwrap_err();
        assert!(error.is_builder());
        assert!(classify(error).is_not_delivered());
    }

    #[test]
    fn a_host_that_does_not_parse_is_a_builder_error_as_with_try_from() {
        for uri in ["http://exa%mple.com/a", "http://[::1/a", "http://a b/c"] {
            let Ok(uri) = uri.parse::<http::Uri>() else {
                continue;
            };
            let theirs = reqwest::Request::try_from(request(&uri.to_string()));
            let ours = to_reqwest(request(&uri.to_string()));
            assert_eq!(ours.is_err(), theirs.is_err(), "{uri}");
            if let (Err(ours), Err(_)) = (ours, theirs) {
                assert!(ours.is_builder());
            }
        }
    }

    #[test]
    fn extensions_take_the_try_from_path() {
        let mut with = request("http://127.0.0.1:1/x");
        with.extensions_mut().insert(7u8);
        let ours = to_reqwest(with).unwrap();
        assert_eq!(ours.url().as_str(), "http://127.0.0.1:1/x");
    }
}
