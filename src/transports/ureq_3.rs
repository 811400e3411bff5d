//! A [`BlockingTransport`] on [ureq] 3 (feature `ureq-3`): [`UreqTransport`].
//!
//! Redirects are off, `4xx`/`5xx` come back as responses, timeouts and a response body cap are
//! on; see the [module docs of `transports`](super).

use std::io::Read;
use std::time::Duration;

use ureq::Timeout;

use super::defaults;
use crate::transport::{BlockingTransport, HttpRequest, HttpResponse, NotDelivered};

/// A [`BlockingTransport`] on a [`ureq::Agent`] that never follows redirects, returns every
/// status as a response, and has a connect timeout, an overall timeout and a response body cap.
///
/// Cloning is cheap: clones share the agent's connection pool.
///
/// # Example
/// ```no_run
/// use std::time::Duration;
/// use recording_status::{AccessToken, Begin, Call, Graph};
/// use recording_status::audit::MemorySink;
/// use recording_status::transports::ureq_3::UreqTransport;
///
/// let transport = UreqTransport::builder().timeout(Duration::from_secs(10)).build();
/// let graph = Graph::new(transport, AccessToken::new("eyJ0eXAi…"));
/// let call = recording_status::Calls::new(std::sync::Arc::new(MemorySink::default())).open("57dab8b1-894c-409a-b240-bd8beae78896".parse()?)?;
/// let Begin::Recording(call) = call.begin_recording_blocking(&graph)? else {
///     return Err("not acknowledged: nothing may be persisted".into());
/// };
/// # drop(call);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct UreqTransport {
    agent: ureq::Agent,
    max_body_bytes: usize,
}

impl UreqTransport {
    /// A transport with the defaults: connect timeout 5 s, overall timeout 30 s, body cap
    /// 1 MiB, redirects off.
    pub fn new() -> Self {
        Self::builder().build()
    }

    /// A builder, starting from the defaults of [`new`](Self::new).
    ///
    /// # Example
    /// ```
    /// use std::time::Duration;
    /// use recording_status::transports::ureq_3::UreqTransport;
    ///
    /// let transport = UreqTransport::builder()
    ///     .timeout(Duration::from_secs(10))
    ///     .connect_timeout(Duration::from_secs(2))
    ///     .max_body_bytes(64 * 1024)
    ///     .build();
    /// assert_eq!(transport.max_body_bytes(), 64 * 1024);
    /// ```
    pub fn builder() -> UreqTransportBuilder {
        UreqTransportBuilder::default()
    }

    /// Wraps an agent you configured yourself, with the default body cap.
    ///
    /// **You must disable redirects yourself** (`max_redirects(0)`): ureq follows up to 10 by
    /// default, and a bearer token must never follow a redirect. Also set
    /// `http_status_as_error(false)`, or every `4xx`/`5xx` becomes an error with an unknown
    /// outcome instead of a Graph error the crate can read, and set timeouts.
    ///
    /// # Example
    /// ```
    /// use std::time::Duration;
    /// use recording_status::transports::ureq_3::UreqTransport;
    ///
    /// let agent = ureq::Agent::config_builder()
    ///     .max_redirects(0)
    ///     .http_status_as_error(false)
    ///     .timeout_global(Some(Duration::from_secs(30)))
    ///     .build()
    ///     .new_agent();
    /// let transport = UreqTransport::from_agent(agent);
    /// # drop(transport);
    /// ```
    pub fn from_agent(agent: ureq::Agent) -> Self {
        Self {
            agent,
            max_body_bytes: defaults::MAX_BODY_BYTES,
        }
    }

    /// Sets the response body cap (see [`UreqTransportBuilder::max_body_bytes`]).
    #[must_use]
    pub fn with_max_body_bytes(mut self, max: usize) -> Self {
        self.max_body_bytes = max;
        self
    }

    /// The agent.
    pub fn agent(&self) -> &ureq::Agent {
        &self.agent
    }

    /// The response body cap, in bytes.
    pub fn max_body_bytes(&self) -> usize {
        self.max_body_bytes
    }
}

impl Default for UreqTransport {
    /// [`UreqTransport::new`].
    fn default() -> Self {
        Self::new()
    }
}

impl BlockingTransport for UreqTransport {
    type Error = UreqError;

    fn send_blocking(&self, request: HttpRequest) -> Result<HttpResponse, Self::Error> {
        let response = self.agent.run(request).map_err(classify)?;
        let (parts, body) = response.into_parts();
        let limit = self.max_body_bytes;
        let declared = body.content_length();
        if declared.is_some_and(|len| len > limit as u64) {
            return Err(UreqError::BodyTooLarge { limit });
        }
        let capacity = declared.map_or(0, |len| len as usize).min(limit);
        let mut bytes = Vec::with_capacity(capacity);
        // One byte past the cap tells an oversized body from one exactly at it.
        body.into_reader()
            .take(limit as u64 + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| classify(ureq::Error::from(e)))?;
        if bytes.len() > limit {
            return Err(UreqError::BodyTooLarge { limit });
        }
        Ok(http::Response::from_parts(parts, bytes))
    }
}

/// Builds a [`UreqTransport`]; see [`UreqTransport::builder`].
#[derive(Debug, Clone)]
#[must_use]
pub struct UreqTransportBuilder {
    timeout: Duration,
    connect_timeout: Duration,
    max_body_bytes: usize,
}

impl Default for UreqTransportBuilder {
    fn default() -> Self {
        Self {
            timeout: defaults::TIMEOUT,
            connect_timeout: defaults::CONNECT_TIMEOUT,
            max_body_bytes: defaults::MAX_BODY_BYTES,
        }
    }
}

impl UreqTransportBuilder {
    /// The overall timeout for one exchange, from resolving the host to the last byte of the
    /// body (default 30 s). Running out is an ambiguous failure ([`UreqError::Timeout`]).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The timeout for making the connection, TLS included (default 5 s). Running out is a
    /// failure before sending ([`UreqError::NotDelivered`]).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// The largest response body accepted, in bytes (default 1 MiB). A larger body is
    /// [`UreqError::BodyTooLarge`], detected from `Content-Length` or while reading, so it is
    /// never buffered whole.
    pub fn max_body_bytes(mut self, max: usize) -> Self {
        self.max_body_bytes = max;
        self
    }

    /// Builds the agent: no redirects, statuses as responses, the timeouts above.
    pub fn build(self) -> UreqTransport {
        let agent = ureq::Agent::config_builder()
            .max_redirects(0)
            .http_status_as_error(false)
            .timeout_connect(Some(self.connect_timeout))
            .timeout_global(Some(self.timeout))
            .build()
            .new_agent();
        UreqTransport {
            agent,
            max_body_bytes: self.max_body_bytes,
        }
    }
}

/// Why a [`UreqTransport`] got no (acceptable) response.
///
/// Only [`NotDelivered`](Self::NotDelivered) means the request never left;
/// [`was_not_delivered`](crate::transport::was_not_delivered) is `true` for it alone. Every
/// other variant leaves the outcome unknown. The `Authorization` header never appears in the
/// message, the `Debug` output or the source chain.
///
/// # Example
/// ```
/// use recording_status::transport::was_not_delivered;
/// use recording_status::transports::ureq_3::UreqError;
///
/// let e = UreqError::BodyTooLarge { limit: 1024 };
/// assert!(!was_not_delivered(&e));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UreqError {
    /// The request did not leave: it could not be built, or no connection could be made
    /// (DNS, refused, connect timeout, proxy). Safe to retry. The source is a
    /// [`crate::transport::NotDelivered`] around the [`ureq::Error`].
    #[error("request not sent")]
    NotDelivered(#[source] NotDelivered),
    /// A timeout passed before the whole response arrived; the request may have been sent.
    /// The outcome is unknown.
    #[error("timed out waiting for the response, outcome unknown")]
    Timeout(#[source] ureq::Error),
    /// The response body is larger than the cap. The outcome is unknown.
    #[error("response body larger than {limit} bytes, outcome unknown")]
    BodyTooLarge {
        /// The cap, in bytes.
        limit: usize,
    },
    /// The exchange failed after the connection was made (reset, truncated body, protocol
    /// error, TLS failure). The outcome is unknown.
    #[error("request failed after connecting, outcome unknown")]
    Failed(#[source] ureq::Error),
}

impl UreqError {
    /// Whether the request never left (see [`NotDelivered`](Self::NotDelivered)).
    pub fn is_not_delivered(&self) -> bool {
        matches!(self, Self::NotDelivered(_))
    }

    /// Whether a timeout after connecting caused this.
    pub fn is_timeout(&self) -> bool {
        matches!(self, Self::Timeout(_))
    }
}

fn classify(error: ureq::Error) -> UreqError {
    use std::io::ErrorKind;
    use ureq::Error as E;
    let not_delivered = match &error {
        E::Http(_)
        | E::BadUri(_)
        | E::HostNotFound
        | E::ConnectionFailed
        | E::InvalidProxyUrl
        | E::ConnectProxyFailed(_)
        | E::RequireHttpsOnly(_)
        | E::TlsRequired
        | E::Tls(_)
        | E::Timeout(Timeout::Resolve | Timeout::Connect) => true,
        // Kinds that only a connect can produce; `Io` is otherwise ambiguous.
        E::Io(io) => matches!(
            io.kind(),
            ErrorKind::ConnectionRefused | ErrorKind::AddrNotAvailable
        ),
        _ => false,
    };
    if not_delivered {
        UreqError::NotDelivered(NotDelivered::new(error))
    } else if matches!(error, E::Timeout(_)) {
        UreqError::Timeout(error)
    } else {
        UreqError::Failed(error)
    }
}
