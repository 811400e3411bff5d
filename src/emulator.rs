//! A Microsoft Graph emulator for `updateRecordingStatus`, served over real HTTP/1.1 on
//! `127.0.0.1`, for tests and the example bot (`emulator` feature).
//!
//! [`Emulator`] answers `POST /{v1.0|beta}/communications/calls/{id}/updateRecordingStatus`
//! the way Graph does (the `updateRecordingStatusOperation` body, `Location`, `request-id`,
//! `client-request-id`, Graph's error envelope) and, for operations it reports as `running`,
//! later `POST`s Graph's `commsNotifications` body to the callback URL set with
//! [`Emulator::set_callback_url`], like Graph posts to a call's `callbackUri`.
//!
//! What it answers is scripted per call with [`Behavior`]s: synchronous completion, pending
//! operations settled by (duplicated, out-of-order, upper-case dash-less, PascalCase)
//! notifications, failed operations, throttling with either `Retry-After` form, server errors,
//! slow answers, malformed bodies, the `8506` rejection of non-compliance calls, dropped
//! connections, truncated bodies, and a `Location` pointing to a foreign host.
//!
//! It validates what it receives like Graph: a request without `Authorization: Bearer …` gets
//! `401 InvalidAuthenticationToken`; a wrong `Content-Type`, a body that is not JSON, a
//! `status` other than `notRecording`/`recording`/`failed` (Graph's `unknown` and
//! `unknownFutureValue` included), a `clientContext` that is present but not a string of 1 to
//! 256 printable ASCII characters, or a call id that is not exactly one path segment get
//! `400 BadRequest` (a request without `clientContext`, or with `null`, is valid: Graph's
//! metadata does not require it, and its answers then carry `null`); bodies over [`MAX_BODY_BYTES`] get `413`; other paths `404` and other methods `405`. Such
//! requests are recorded but consume no [`Behavior`].
//!
//! With [`Emulator::sign_notifications_for`], it signs notifications like Bot Framework (RS256
//! with a [`TestKey`], the bot's app id as audience, a tenant id, and alternately each of the
//! two issuers Microsoft's reference validator accepts: `https://api.botframework.com` and
//! `https://graph.microsoft.com`),
//! publishes the keys at [`Emulator::openid_configuration_url`], and rotates them on
//! [`Emulator::rotate_signing_key`].
//!
//! Every request is recorded ([`Emulator::requests`]) without its bearer token. Everything is
//! bounded: request bodies, recorded requests ([`MAX_RECORDED_REQUESTS`]), recorded strings.
//!
//! The emulator needs a tokio runtime with I/O and time enabled; dropping it (or
//! [`Emulator::shutdown`]) stops the server and any notification not yet sent.
//!
//! # Example
//! ```no_run
//! use std::time::Duration;
//! use recording_status::emulator::{Behavior, Emulator, NotifyStyle};
//! use recording_status::{AccessToken, Graph};
//!
//! # async fn run(transport: impl recording_status::Transport) -> std::io::Result<()> {
//! let emulator = Emulator::start().await?;
//! emulator.set_callback_url("http://127.0.0.1:9442/api/calling");
//! // The first update of this call is pending; its `completed` arrives as a notification.
//! emulator.script(
//!     "57dab8b1-894c-409a-b240-bd8beae78896",
//!     [
//!         Behavior::Running { delay: Duration::from_millis(100), notify: NotifyStyle::default() },
//!         Behavior::Complete,
//!     ],
//! );
//! let graph = Graph::new(transport, AccessToken::new("t")).with_endpoint(emulator.endpoint());
//! // … drive calls through `graph`; hand notifications to `driver.hub().deliver(…)` …
//! assert!(emulator.requests().iter().all(|r| r.authorized));
//! emulator.shutdown().await;
//! # Ok(())
//! # }
//! ```

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::connect_info::Connected;
use axum::extract::rejection::PathRejection;
use axum::extract::{ConnectInfo, Path, Request, State};
use axum::response::Response;
use axum::routing::any;
use axum::serve::{IncomingStream, Listener};
use chrono::{DateTime, Utc};
use http::header::{
    AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, HeaderName, HeaderValue, LOCATION,
};
use http::{HeaderMap, Method, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::endpoint::Endpoint;
use crate::status::RecordingStatus;
use crate::types::{MAX_CLIENT_CONTEXT_LEN, normalize_id};

mod connection;
mod notify;
mod script;
mod signing;

use connection::{ConnControl, ConnTag, ControlledListener, TruncatedStream};
use notify::Settle;
use script::Script;
pub use script::{Behavior, MalformedBody, NotifyStyle, RetryAfter};
pub use signing::TestKey;
use signing::{JWKS_PATH, OPENID_PATH, Signing, jwks, openid_configuration};

/// The largest request body the emulator reads, in bytes (64 KiB); larger bodies get `413`.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// How many requests [`Emulator::requests`] keeps: the most recent ones.
pub const MAX_RECORDED_REQUESTS: usize = 100_000;

/// The longest string kept in a [`RecordedRequest`] field, in characters; longer ones are cut.
const MAX_RECORDED_CHARS: usize = 512;

/// The most calls whose script position is remembered (for [`Emulator::script_default`]).
const MAX_TRACKED_CALLS: usize = 100_000;

/// How long a notification `POST` may take.
const NOTIFY_TIMEOUT: Duration = Duration::from_secs(10);

const REQUEST_ID: HeaderName = HeaderName::from_static("request-id");
const CLIENT_REQUEST_ID: HeaderName = HeaderName::from_static("client-request-id");
const RETRY_AFTER: HeaderName = HeaderName::from_static("retry-after");

/// One request the emulator received.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RecordedRequest {
    /// The call id, percent-decoded from the path; empty when the path matched no route.
    pub call_id: String,
    /// `v1.0` or `beta`; empty when the path matched no route.
    pub version: String,
    /// The request's method.
    pub method: String,
    /// The request's path, as sent (still percent-encoded).
    pub path: String,
    /// The body's `status`, if it was a string.
    pub status: Option<String>,
    /// The body's `clientContext`, if it was a string.
    pub client_context: Option<String>,
    /// The `client-request-id` header, if any.
    pub client_request_id: Option<String>,
    /// Whether an `Authorization: Bearer …` header with a token was present. The token itself
    /// is never stored.
    pub authorized: bool,
    /// The HTTP status the emulator answered; `0` for [`Behavior::DropConnection`].
    pub http_status: u16,
    /// When the request was received.
    pub at: DateTime<Utc>,
}

/// A Graph emulator on `127.0.0.1`. See the [module documentation](self).
///
/// Dropping it shuts the server down.
pub struct Emulator {
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    server: Option<tokio::task::JoinHandle<()>>,
}

impl fmt::Debug for Emulator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.shared.lock();
        f.debug_struct("Emulator")
            .field("addr", &self.shared.addr)
            .field("callback_url", &state.callback_url)
            .field("requests", &state.requests.len())
            .field(
                "notifications_sent",
                &self.shared.notifications_sent.load(Ordering::Relaxed),
            )
            .finish_non_exhaustive()
    }
}

impl Emulator {
    /// Starts an emulator on `127.0.0.1` with a port chosen by the system.
    ///
    /// # Errors
    /// If the listener cannot be bound.
    pub async fn start() -> io::Result<Self> {
        Self::start_on(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).await
    }

    /// Starts an emulator listening on `addr`.
    ///
    /// # Errors
    /// If the listener cannot be bound.
    pub async fn start_on(addr: SocketAddr) -> io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = watch::channel(false);
        let mut client = Client::builder(TokioExecutor::new());
        client.pool_idle_timeout(Duration::from_secs(5));
        let shared = Arc::new(Shared {
            addr,
            state: Mutex::new(EmulatorState {
                callback_url: None,
                scripts: HashMap::new(),
                default: Script::new(vec![Behavior::Complete]),
                default_positions: HashMap::new(),
                requests: VecDeque::new(),
                statuses: HashMap::new(),
                signing: Signing::new(),
            }),
            notifications_sent: AtomicUsize::new(0),
            notifications_refused: AtomicUsize::new(0),
            stopped: stopped.clone(),
            client: client.build_http(),
        });
        let app = Router::new()
            .route(
                "/{version}/communications/calls/{id}/updateRecordingStatus",
                any(update_recording_status),
            )
            .route(OPENID_PATH, axum::routing::get(openid_configuration))
            .route(JWKS_PATH, axum::routing::get(jwks))
            .fallback(not_found)
            .with_state(shared.clone())
            .into_make_service_with_connect_info::<ConnTag>();
        let mut signal = stopped;
        let serve = axum::serve(ControlledListener { inner: listener }, app)
            .with_graceful_shutdown(async move {
                // Resolves on `true` and when the emulator is dropped.
                let _ = signal.wait_for(|stop| *stop).await;
            });
        let server = tokio::spawn(async move {
            if let Err(e) = serve.await {
                tracing::warn!(error = %e, "graph emulator stopped");
            }
        });
        tracing::debug!(%addr, "graph emulator listening");
        Ok(Self {
            shared,
            stop,
            server: Some(server),
        })
    }

    /// The address the emulator listens on.
    pub fn addr(&self) -> SocketAddr {
        self.shared.addr
    }

    /// The v1.0 base URL: `http://127.0.0.1:PORT/v1.0`.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1.0", self.shared.addr)
    }

    /// The beta base URL: `http://127.0.0.1:PORT/beta`.
    pub fn beta_url(&self) -> String {
        format!("http://{}/beta", self.shared.addr)
    }

    /// The v1.0 endpoint, for [`Graph::with_endpoint`](crate::Graph::with_endpoint).
    pub fn endpoint(&self) -> Endpoint {
        loopback_endpoint(&self.base_url())
    }

    /// The beta endpoint.
    pub fn beta_endpoint(&self) -> Endpoint {
        loopback_endpoint(&self.beta_url())
    }

    /// Where notifications are `POST`ed (plain `http` only). Until it is set, notifications are
    /// dropped with a warning.
    pub fn set_callback_url(&self, url: impl Into<String>) {
        self.shared.lock().callback_url = Some(url.into());
    }

    /// Scripts the call `call_id` (matched in normalised form: lower case, no dashes, so
    /// `57DAB8B1894C…` and `57dab8b1-894c-…` are the same call). Each valid request for the call
    /// consumes the next behaviour; the last one repeats. Replaces any earlier script of the
    /// call; an empty list removes it, so the call follows the default script again.
    pub fn script(&self, call_id: &str, behaviors: impl IntoIterator<Item = Behavior>) {
        let behaviors: Vec<Behavior> = behaviors.into_iter().collect();
        let key = normalize_id(call_id);
        let mut state = self.shared.lock();
        if behaviors.is_empty() {
            state.scripts.remove(&key);
        } else {
            state.scripts.insert(key, Script::new(behaviors));
        }
    }

    /// The script of calls without one of their own (initially `[Behavior::Complete]`). Each
    /// such call walks it from the start on its own; the last behaviour repeats. An empty list
    /// restores `[Behavior::Complete]`. Replacing it restarts every call at its beginning.
    pub fn script_default(&self, behaviors: impl IntoIterator<Item = Behavior>) {
        let mut behaviors: Vec<Behavior> = behaviors.into_iter().collect();
        if behaviors.is_empty() {
            behaviors.push(Behavior::Complete);
        }
        let mut state = self.shared.lock();
        state.default = Script::new(behaviors);
        state.default_positions.clear();
    }

    /// Every request received, oldest first (at most [`MAX_RECORDED_REQUESTS`], the latest).
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.lock().requests.iter().cloned().collect()
    }

    /// The last recording status Graph accepted for the call (matched in normalised form): set
    /// by an update answered `completed`, or when a [`Behavior::Running`] operation completes.
    pub fn status_of(&self, call_id: &str) -> Option<RecordingStatus> {
        self.shared
            .lock()
            .statuses
            .get(&normalize_id(call_id))
            .copied()
    }

    /// Signs every notification from now on as Bot Framework does, for the bot whose app id is
    /// `app_id`: `Authorization: Bearer <RS256 JWT>` with audience `app_id`, tenant
    /// [`TestKey::TENANT_ID`], and issuer `https://api.botframework.com` and
    /// `https://graph.microsoft.com` in turn (both are Graph's), signed with [`signing_key`](Self::signing_key), whose public half
    /// is served at [`openid_configuration_url`](Self::openid_configuration_url)'s `jwks_uri`.
    /// A [`NotifyStyle::bearer`] set on a behaviour still wins (to send a forged token).
    ///
    /// # Example
    /// ```
    /// # #[cfg(feature = "reqwest-0_13")]
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use recording_status::emulator::Emulator;
    /// use recording_status::transports::reqwest_0_13::ReqwestTransport;
    /// use recording_status::webhook::{BotFrameworkValidator, JwksKeys};
    ///
    /// let emulator = Emulator::start().await?;
    /// emulator.sign_notifications_for("my-app-id");
    /// let url = emulator.openid_configuration_url();
    /// let keys = JwksKeys::fetch(ReqwestTransport::new()?, &url).await?;
    /// let validator = BotFrameworkValidator::new("my-app-id", keys);
    /// assert!(validator.validate(&emulator.signing_key().mint("my-app-id")).is_ok());
    /// # Ok(())
    /// # }
    /// # #[cfg(not(feature = "reqwest-0_13"))]
    /// # fn main() {}
    /// ```
    pub fn sign_notifications_for(&self, app_id: impl Into<String>) {
        let mut state = self.shared.lock();
        state.signing.app_id = Some(app_id.into());
        state.signing.forget_tokens();
    }

    /// The OpenID configuration Bot Framework publishes, emulated:
    /// `http://127.0.0.1:PORT/botframework/.well-known/openidconfiguration`, whose `jwks_uri`
    /// lists the keys published now.
    pub fn openid_configuration_url(&self) -> String {
        format!("http://{}{OPENID_PATH}", self.shared.addr)
    }

    /// The key notifications are signed with now.
    pub fn signing_key(&self) -> TestKey {
        self.shared.lock().signing.key
    }

    /// Rotates the signing key as Bot Framework does: the next key is published next to the
    /// current one, and notifications are signed with it from now on. A bot whose key cache
    /// lacks it sees an unknown `kid` and must refresh. Returns the new key.
    pub fn rotate_signing_key(&self) -> TestKey {
        let mut state = self.shared.lock();
        let next = state.signing.key.next();
        state.signing.published = vec![state.signing.key, next];
        state.signing.key = next;
        state.signing.forget_tokens();
        tracing::info!(kid = next.kid(), "graph emulator: signing key rotated");
        next
    }

    /// How many notification `POST`s the callback URL refused with `401` or `403`.
    pub fn notifications_refused(&self) -> usize {
        self.shared.notifications_refused.load(Ordering::Relaxed)
    }

    /// How many notification `POST`s got an HTTP answer from the callback URL.
    pub fn notifications_sent(&self) -> usize {
        self.shared.notifications_sent.load(Ordering::Relaxed)
    }

    /// Stops accepting connections, closes idle ones, cancels pending notifications, and waits
    /// (up to 5 s) for requests in progress to finish.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(mut server) = self.server.take()
            && tokio::time::timeout(Duration::from_secs(5), &mut server)
                .await
                .is_err()
        {
            server.abort();
        }
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

fn loopback_endpoint(base: &str) -> Endpoint {
    match Endpoint::custom(base) {
        Ok(endpoint) => endpoint,
        // A loopback `http` URL with a port is always a valid custom endpoint.
        Err(e) => unreachable!("emulator base url {base} rejected: {e}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Shared state

struct Shared {
    addr: SocketAddr,
    state: Mutex<EmulatorState>,
    notifications_sent: AtomicUsize,
    notifications_refused: AtomicUsize,
    stopped: watch::Receiver<bool>,
    client: Client<HttpConnector, Body>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, EmulatorState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn record(&self, request: RecordedRequest) {
        let mut state = self.lock();
        while state.requests.len() >= MAX_RECORDED_REQUESTS {
            state.requests.pop_front();
        }
        state.requests.push_back(request);
    }

    fn set_status(&self, call_id: &str, status: RecordingStatus) {
        let mut state = self.lock();
        if state.statuses.len() >= MAX_TRACKED_CALLS {
            state.statuses.clear();
        }
        state.statuses.insert(normalize_id(call_id), status);
    }
}

struct EmulatorState {
    callback_url: Option<String>,
    scripts: HashMap<String, Script>,
    default: Script,
    default_positions: HashMap<String, usize>,
    requests: VecDeque<RecordedRequest>,
    statuses: HashMap<String, RecordingStatus>,
    signing: Signing,
}

impl EmulatorState {
    /// The behaviour for the next valid request of `call` (normalised id).
    fn next_behavior(&mut self, call: &str) -> Behavior {
        if let Some(script) = self.scripts.get_mut(call) {
            let (behavior, next) = script.at(script.next);
            script.next = next;
            return behavior;
        }
        if self.default_positions.len() >= MAX_TRACKED_CALLS {
            self.default_positions.clear();
        }
        let position = self.default_positions.entry(call.to_owned()).or_insert(0);
        let (behavior, next) = self.default.at(*position);
        *position = next;
        behavior
    }
}

// ---------------------------------------------------------------------------------------------
// Handlers

/// What the handler learned about a request, for the record and the answer.
struct Received {
    request_id: String,
    client_request_id: Option<HeaderValue>,
    record: RecordedRequest,
}

impl Received {
    fn new(method: &Method, path: &str, headers: &HeaderMap) -> Self {
        let client_request_id = headers.get(CLIENT_REQUEST_ID).cloned();
        Self {
            request_id: uuid::Uuid::new_v4().to_string(),
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

    /// Graph's error envelope.
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
        let mut inner = json!({
            "date": Utc::now().format("%Y-%m-%dT%H:%M:%S").to_string(),
            "request-id": self.request_id,
            "client-request-id": client_request_id,
        });
        if let (Some(code), Some(obj)) = (inner_code, inner.as_object_mut()) {
            obj.insert("code".to_owned(), Value::from(code));
        }
        let body = json!({ "error": { "code": code, "message": message, "innerError": inner } });
        self.response(
            status,
            Some("application/json"),
            Body::from(body.to_string()),
        )
    }
}

async fn not_found(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let received = Received::new(request.method(), request.uri().path(), request.headers());
    let response = received.error(
        StatusCode::NOT_FOUND,
        "NotFound",
        "Resource not found for the segment.",
        None,
    );
    finish(&shared, received, response)
}

fn finish(shared: &Shared, mut received: Received, response: Response) -> Response {
    received.record.http_status = response.status().as_u16();
    shared.record(received.record);
    response
}

async fn update_recording_status(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(conn): ConnectInfo<ConnTag>,
    path: Result<Path<(String, String)>, PathRejection>,
    request: Request,
) -> Response {
    let mut received = Received::new(request.method(), request.uri().path(), request.headers());
    let Ok(Path((version, call_id))) = path else {
        let response = received.error(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "The call id is not a valid path segment.",
            None,
        );
        return finish(&shared, received, response);
    };
    received.record.version = clip(&version);
    received.record.call_id = clip(&call_id);
    if version != "v1.0" && version != "beta" {
        let response = received.error(
            StatusCode::NOT_FOUND,
            "NotFound",
            "Unknown API version.",
            None,
        );
        return finish(&shared, received, response);
    }
    if !valid_call_id(&call_id) {
        let response = received.error(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "The call id must be exactly one path segment.",
            None,
        );
        return finish(&shared, received, response);
    }
    if request.method() != Method::POST {
        let response = received.error(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            "updateRecordingStatus only accepts POST.",
            None,
        );
        return finish(&shared, received, response);
    }
    if !received.record.authorized {
        let response = received.error(
            StatusCode::UNAUTHORIZED,
            "InvalidAuthenticationToken",
            "Access token is empty.",
            None,
        );
        return finish(&shared, received, response);
    }
    if !is_json(request.headers()) {
        let response = received.error(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "Content-Type must be application/json.",
            None,
        );
        return finish(&shared, received, response);
    }
    let declared = request
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let too_large = || {
        received.error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "RequestEntityTooLarge",
            "The request body is too large.",
            None,
        )
    };
    if declared.is_some_and(|len| len > MAX_BODY_BYTES as u64) {
        let response = too_large();
        return finish(&shared, received, response);
    }
    let Ok(body) = axum::body::to_bytes(request.into_body(), MAX_BODY_BYTES).await else {
        let response = too_large();
        return finish(&shared, received, response);
    };
    let Ok(Value::Object(body)) = serde_json::from_slice::<Value>(&body) else {
        let response = received.error(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "Unable to read JSON request payload. Please ensure Content-Type header is set and payload is of valid JSON format.",
            None,
        );
        return finish(&shared, received, response);
    };
    let status_text = body.get("status").and_then(Value::as_str);
    let context = body.get("clientContext").and_then(Value::as_str);
    received.record.status = status_text.map(clip);
    received.record.client_context = context.map(clip);
    let status = match status_text {
        Some("notRecording") => RecordingStatus::NotRecording,
        Some("recording") => RecordingStatus::Recording,
        Some("failed") => RecordingStatus::Failed,
        _ => {
            let response = received.error(
                StatusCode::BAD_REQUEST,
                "BadRequest",
                "Invalid value for 'status': expected notRecording, recording or failed.",
                None,
            );
            return finish(&shared, received, response);
        }
    };
    // Graph's metadata makes only `status` non-nullable: a request without `clientContext`
    // (absent or `null`, as Microsoft's SDKs send it when unset) is accepted, and its
    // operation carries `"clientContext": null`. One that is present must be valid.
    let context = match body.get("clientContext") {
        None | Some(Value::Null) => None,
        Some(Value::String(c)) if valid_client_context(c) => Some(c.clone()),
        Some(_) => {
            let response = received.error(
                StatusCode::BAD_REQUEST,
                "BadRequest",
                "Invalid value for 'clientContext': 1 to 256 printable ASCII characters required.",
                None,
            );
            return finish(&shared, received, response);
        }
    };

    // Valid: the script decides.
    let mut behavior = shared.lock().next_behavior(&normalize_id(&call_id));
    let mut delay = Duration::ZERO;
    while let Behavior::Slow { delay: d, then } = behavior {
        delay = delay.saturating_add(d);
        behavior = *then;
    }
    let accepted = Accepted {
        shared: shared.clone(),
        version,
        call_id,
        status,
        context,
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

/// The status [`Accepted::answer`] will send for `behavior` (`0`: none).
fn answer_status(behavior: &Behavior) -> u16 {
    match behavior {
        Behavior::Complete
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
struct Accepted {
    shared: Arc<Shared>,
    version: String,
    call_id: String,
    status: RecordingStatus,
    /// `None` when the request had no `clientContext`: Graph then answers with `null`.
    context: Option<String>,
    operation_id: String,
}

impl Accepted {
    fn operation(&self, status: &str, result_info: Value) -> Value {
        json!({
            "@odata.type": "#microsoft.graph.updateRecordingStatusOperation",
            "clientContext": self.context,
            "id": self.operation_id,
            "resultInfo": result_info,
            "status": status,
        })
    }

    /// `200` with the operation and a `Location` under `origin`.
    fn ok(&self, received: &Received, operation: &Value, origin: &str) -> Response {
        let mut response = received.response(
            StatusCode::OK,
            Some("application/json"),
            Body::from(operation.to_string()),
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
                self.ok(received, &self.operation("completed", Value::Null), &origin)
            }
            Behavior::ForeignLocation => {
                self.shared.set_status(&self.call_id, self.status);
                let operation = self.operation("completed", Value::Null);
                self.ok(received, &operation, "https://evil.example")
            }
            Behavior::Running { delay, notify } => {
                let response = self.ok(received, &self.operation("running", Value::Null), &origin);
                self.settle_later(delay, Settle::Completed, notify);
                response
            }
            Behavior::RunningThenFail {
                delay,
                code,
                subcode,
            } => {
                let response = self.ok(received, &self.operation("running", Value::Null), &origin);
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
                let operation = self.operation("failed", result_info(code, subcode, &message));
                self.ok(received, &operation, &origin)
            }
            Behavior::Throttle {
                status,
                retry_after,
            } => {
                let status = throttle_status(status);
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
                    RetryAfter::HttpDate(after) => Some(http_date_after(after)),
                    RetryAfter::None => None,
                };
                if let Some(value) = value.and_then(|v| HeaderValue::try_from(v).ok()) {
                    response.headers_mut().insert(RETRY_AFTER, value);
                }
                response
            }
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
                    let full = self.operation("completed", Value::Null).to_string();
                    let cut = full.get(..full.len() / 2).unwrap_or_default().to_owned();
                    received.response(StatusCode::OK, Some("application/json"), Body::from(cut))
                }
                MalformedBody::Empty => received.response(StatusCode::OK, None, Body::empty()),
            },
            Behavior::DropConnection => {
                control.kill();
                received.response(StatusCode::INTERNAL_SERVER_ERROR, None, Body::empty())
            }
            Behavior::TruncatedBody => {
                let full = self.operation("completed", Value::Null).to_string();
                let half = full.get(..full.len() / 2).unwrap_or_default().to_owned();
                let mut response = received.response(
                    StatusCode::OK,
                    Some("application/json"),
                    Body::new(TruncatedStream {
                        chunk: Some(Bytes::from(half)),
                        pause: None,
                        control: control.clone(),
                    }),
                );
                response
                    .headers_mut()
                    .insert(CONTENT_LENGTH, HeaderValue::from(full.len()));
                response
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers

fn result_info(code: i64, subcode: i64, message: &str) -> Value {
    json!({
        "@odata.type": "#microsoft.graph.resultInfo",
        "code": code,
        "subcode": subcode,
        "message": message,
    })
}

fn pascal(s: &str) -> String {
    let mut chars = s.chars();
    chars.next().map_or_else(String::new, |first| {
        first.to_ascii_uppercase().to_string() + chars.as_str()
    })
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

fn valid_call_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= crate::types::MAX_CALL_ID_LEN
        && id != "."
        && id != ".."
        && !id
            .chars()
            .any(|c| matches!(c, '/' | '\\' | '?' | '#') || c.is_whitespace() || c.is_control())
}

fn valid_client_context(context: &str) -> bool {
    !context.is_empty()
        && context.len() <= MAX_CLIENT_CONTEXT_LEN
        && context.chars().all(|c| (' '..='~').contains(&c))
}

/// `s` cut to [`MAX_RECORDED_CHARS`] characters.
fn clip(s: &str) -> String {
    match s.char_indices().nth(MAX_RECORDED_CHARS) {
        Some((end, _)) => s.get(..end).unwrap_or_default().to_owned(),
        None => s.to_owned(),
    }
}

/// One percent-encoded path segment (RFC 3986 unreserved characters kept).
fn encode_segment(s: &str) -> String {
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
    use super::*;

    #[test]
    fn scripts_repeat_their_last_behavior() {
        let script = Script::new(vec![Behavior::Forbidden8506, Behavior::Complete]);
        let (first, next) = script.at(0);
        assert!(matches!(first, Behavior::Forbidden8506));
        let (second, next) = script.at(next);
        assert!(matches!(second, Behavior::Complete));
        let (third, _) = script.at(next);
        assert!(matches!(third, Behavior::Complete));
        assert!(matches!(
            Script::new(Vec::new()).at(7).0,
            Behavior::Complete
        ));
    }

    #[test]
    fn helpers() {
        assert_eq!(pascal("completed"), "Completed");
        assert_eq!(pascal(""), "");
        assert_eq!(encode_segment("a/b c"), "a%2Fb%20c");
        assert_eq!(clip(&"é".repeat(600)).chars().count(), MAX_RECORDED_CHARS);
        assert!(valid_client_context(&"x".repeat(256)));
        assert!(!valid_client_context(&"x".repeat(257)));
        assert!(!valid_client_context("é"));
        assert!(!valid_client_context(""));
        assert!(!valid_call_id("a/b"));
        assert!(valid_call_id("57dab8b1-894c-409a-b240-bd8beae78896"));
        let date = http_date_after(Duration::from_secs(30));
        let wait = crate::retry::parse_retry_after(&date, Utc::now()).unwrap();
        assert!((Duration::from_secs(29)..=Duration::from_secs(31)).contains(&wait));
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
}
