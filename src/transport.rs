//! The injected HTTP transport: [`Transport`] (async) and [`BlockingTransport`], both over
//! [`http`] types and both implemented for closures.
//!
//! The crate performs no HTTP itself. Configure whatever client you plug in **not to follow
//! redirects**: a bearer token must never be replayed to another host.

use std::error::Error as StdError;
use std::future::Future;

/// The request type every transport receives.
pub type HttpRequest = http::Request<Vec<u8>>;
/// The response type every transport returns.
pub type HttpResponse = http::Response<Vec<u8>>;

/// Sends one HTTP request and returns the response, asynchronously.
///
/// Takes `&self` (HTTP clients are shared handles) and returns a `Send` future, so transitions
/// generic over it can run inside `tokio::spawn`. Any non-2xx status must come back as a
/// response, not as an error: errors are reserved for requests that got no response.
///
/// # Example: a closure as transport
/// ```
/// use recording_status::transport::{HttpRequest, HttpResponse, Transport};
///
/// let transport = |request: HttpRequest| async move {
///     assert_eq!(request.method(), http::Method::POST);
///     http::Response::builder()
///         .status(200)
///         .body(br#"{"status":"completed"}"#.to_vec())
/// };
/// fn assert_transport(_: &impl Transport) {}
/// assert_transport(&transport);
/// ```
pub trait Transport: Send + Sync {
    /// Why no response was obtained.
    type Error: StdError + Send + Sync + 'static;

    /// Sends `request` and waits for the whole response.
    fn send(
        &self,
        request: HttpRequest,
    ) -> impl Future<Output = Result<HttpResponse, Self::Error>> + Send;
}

impl<F, Fut, E> Transport for F
where
    F: Fn(HttpRequest) -> Fut + Send + Sync,
    Fut: Future<Output = Result<HttpResponse, E>> + Send,
    E: StdError + Send + Sync + 'static,
{
    type Error = E;

    fn send(
        &self,
        request: HttpRequest,
    ) -> impl Future<Output = Result<HttpResponse, Self::Error>> + Send {
        self(request)
    }
}

/// The blocking twin of [`Transport`], for bots without an async runtime.
///
/// # Example: a closure as transport
/// ```
/// use recording_status::transport::{BlockingTransport, HttpRequest};
///
/// let transport = |_request: HttpRequest| http::Response::builder().status(404).body(Vec::new());
/// fn assert_transport(_: &impl BlockingTransport) {}
/// assert_transport(&transport);
/// ```
pub trait BlockingTransport {
    /// Why no response was obtained.
    type Error: StdError + Send + Sync + 'static;

    /// Sends `request` and blocks until the whole response has arrived.
    ///
    /// # Errors
    /// Whatever prevented a response; non-2xx statuses are responses, not errors.
    fn send_blocking(&self, request: HttpRequest) -> Result<HttpResponse, Self::Error>;
}

impl<F, E> BlockingTransport for F
where
    F: Fn(HttpRequest) -> Result<HttpResponse, E>,
    E: StdError + Send + Sync + 'static,
{
    type Error = E;

    fn send_blocking(&self, request: HttpRequest) -> Result<HttpResponse, Self::Error> {
        self(request)
    }
}

/// Marks a transport failure that happened before any byte of the request left (DNS, connect,
/// TLS handshake). Such failures are safe to retry; any other transport error is treated as
/// *ambiguous*: the update may or may not have been applied.
///
/// Return it (or wrap your error in it, anywhere in the `source()` chain) from a
/// [`Transport`] when you know the request was not sent.
///
/// # Example
/// ```
/// use recording_status::transport::NotDelivered;
///
/// let e = NotDelivered::new(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
/// assert!(recording_status::transport::was_not_delivered(&e));
/// ```
#[derive(Debug, thiserror::Error)]
#[error("request not delivered")]
pub struct NotDelivered {
    #[source]
    source: Box<dyn StdError + Send + Sync + 'static>,
}

impl NotDelivered {
    /// Wraps the underlying failure.
    pub fn new(source: impl Into<Box<dyn StdError + Send + Sync + 'static>>) -> Self {
        Self {
            source: source.into(),
        }
    }
}

/// Whether `error` (or anything in its `source()` chain) is [`NotDelivered`], or an I/O error
/// that can only happen before sending (`ConnectionRefused`, `AddrNotAvailable`).
pub fn was_not_delivered(error: &(dyn StdError + 'static)) -> bool {
    let mut next = Some(error);
    let mut depth = 0;
    while let Some(e) = next {
        if e.is::<NotDelivered>() {
            return true;
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>()
            && matches!(
                io.kind(),
                std::io::ErrorKind::ConnectionRefused | std::io::ErrorKind::AddrNotAvailable
            )
        {
            return true;
        }
        depth += 1;
        if depth > 16 {
            break;
        }
        next = e.source();
    }
    false
}
