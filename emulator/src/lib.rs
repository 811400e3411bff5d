//! A Microsoft Graph emulator for `call: updateRecordingStatus`, served over real HTTP/1.1 on
//! `127.0.0.1`, for the tests of Teams compliance-recording bots and of the clients they use.
//!
//! # An independent oracle
//!
//! This crate shares no code with any Graph client, `recording-status` included. Every byte it
//! reads or writes comes from its own types, written from Microsoft's documentation (the
//! `microsoftgraph/microsoft-graph-docs-contrib` pages each type cites): the request body
//! `{"clientContext", "status"}`, the `updateRecordingStatusOperation` and its `resultInfo`,
//! the error envelope, and the `commsNotifications` posted to the bot. A client whose tests
//! run against an emulator built from the client's own wire code cannot fail them: a
//! misspelled field or a wrong casing is written by one side and read back by the other. Here
//! the two sides are written independently, so a wire bug in the client is a failing test.
//!
//! # What it does
//!
//! [`Emulator`] answers `POST /{v1.0|beta}/communications/calls/{id}/updateRecordingStatus`
//! the way Graph does (the `updateRecordingStatusOperation` body, `Location`, `request-id`,
//! `client-request-id`, Graph's error envelope) and, for operations it reports as `running`,
//! later `POST`s Graph's `commsNotifications` body to the callback URL set with
//! [`Emulator::set_callback_url`], like Graph posts to a call's `callbackUri`.
//!
//! What it answers is scripted per call with [`Behavior`]s: synchronous completion, pending
//! operations settled by (duplicated, out-of-order, upper-case dash-less, PascalCase, legacy
//! `resource`) notifications, failed operations, throttling with either `Retry-After` form,
//! server errors, slow answers, malformed bodies, the `8506` rejection of non-compliance
//! calls, dropped connections, truncated bodies, and a `Location` pointing to a foreign host.
//!
//! It validates what it receives as Graph documents it: a request without
//! `Authorization: Bearer …` gets `401 InvalidAuthenticationToken`; a `Content-Type` other than
//! `application/json`, a body that is not a JSON object, a `status` other than `notRecording`,
//! `recording` or `failed` (Graph's `unknown` and `unknownFutureValue` included), a
//! `clientContext` that is present but not a string of at most 256 characters, or a call id
//! that is not exactly one path segment get `400 BadRequest`. A request without
//! `clientContext`, or with `null`, is valid (Graph's metadata does not require it) and is
//! answered with `"clientContext": null`. Bodies over [`MAX_BODY_BYTES`] get `413`; other paths
//! `404`, other methods `405`. Such requests are recorded but consume no [`Behavior`].
//!
//! With [`Emulator::sign_notifications_for`], it signs notifications like Bot Framework (RS256
//! with a [`TestKey`], the bot's app id as audience, a tenant id, and alternately each of the
//! two issuers Microsoft's reference validator accepts, [`TestKey::ISSUERS`]), publishes the
//! keys at [`Emulator::openid_configuration_url`], and rotates them on
//! [`Emulator::rotate_signing_key`]. The test keys' private halves are in this crate's source:
//! **never trust them outside tests.**
//!
//! Every request is recorded ([`Emulator::requests`]) without its bearer token. Everything is
//! bounded: request bodies, recorded requests ([`MAX_RECORDED_REQUESTS`]), recorded strings,
//! the calls whose state is remembered.
//!
//! The emulator needs a tokio runtime with I/O and time enabled; dropping it (or
//! [`Emulator::shutdown`]) stops the server and any notification not yet sent.
//!
//! # Example
//!
//! A `recording` update answered `running`, then completed by a notification to the bot's
//! webhook (here nobody listens, so only the status changes):
//!
//! ```
//! use std::time::Duration;
//!
//! use axum::body::Body;
//! use graph_emulator::{Behavior, Emulator, NotifyStyle, RecordingStatus};
//! use hyper_util::client::legacy::Client;
//! use hyper_util::rt::TokioExecutor;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! const CALL: &str = "57dab8b1-894c-409a-b240-bd8beae78896";
//! let emulator = Emulator::start().await?;
//! emulator.set_callback_url("http://127.0.0.1:9/api/calling");
//! // The first update of this call is pending; its `completed` arrives as a notification.
//! emulator.script(
//!     CALL,
//!     [
//!         Behavior::Running { delay: Duration::from_millis(10), notify: NotifyStyle::default() },
//!         Behavior::Complete,
//!     ],
//! );
//!
//! let request = http::Request::post(format!(
//!     "{}/communications/calls/{CALL}/updateRecordingStatus",
//!     emulator.base_url()
//! ))
//! .header("authorization", "Bearer eyJ0eXAi.test-token")
//! .header("content-type", "application/json")
//! .body(Body::from(r#"{"clientContext":"c-1","status":"recording"}"#))?;
//! let client = Client::builder(TokioExecutor::new()).build_http();
//! let response = client.request(request).await?;
//! assert_eq!(response.status(), 200);
//! let body = axum::body::to_bytes(Body::new(response.into_body()), 4096).await?;
//! let operation: serde_json::Value = serde_json::from_slice(&body)?;
//! assert_eq!(operation["status"], "running");
//! assert_eq!(emulator.status_of(CALL), None, "not before the operation completes");
//!
//! tokio::time::sleep(Duration::from_millis(100)).await;
//! assert_eq!(emulator.status_of(CALL), Some(RecordingStatus::Recording));
//! let requests = emulator.requests();
//! assert!(requests[0].authorized && !format!("{requests:?}").contains("eyJ0eXAi"));
//! emulator.shutdown().await;
//! # Ok(())
//! # }
//! ```

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::routing::any;
use chrono::{DateTime, Utc};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::net::TcpListener;
use tokio::sync::watch;

mod connection;
mod handler;
mod notify;
mod script;
mod signing;
mod wire;

pub use script::{Behavior, MalformedBody, NotifyStyle, RetryAfter};
pub use signing::TestKey;
pub use wire::RecordingStatus;

use connection::{ConnTag, ControlledListener};
use script::Script;
use signing::{JWKS_PATH, OPENID_PATH, Signing};
use wire::normalize_id;

/// The largest request body the emulator reads, in bytes (64 KiB); larger bodies get `413`.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// How many requests [`Emulator::requests`] keeps: the most recent ones.
pub const MAX_RECORDED_REQUESTS: usize = 100_000;

/// The most calls whose script position and status are remembered.
const MAX_TRACKED_CALLS: usize = 100_000;

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
    /// The `request-id` the emulator answered with (a fresh GUID per request, as Graph sends):
    /// what Microsoft's side would find the request under.
    pub request_id: String,
    /// Whether an `Authorization: Bearer …` header with a token was present. The token itself
    /// is never stored.
    pub authorized: bool,
    /// The HTTP status the emulator answered; `0` for [`Behavior::DropConnection`].
    pub http_status: u16,
    /// When the request was received.
    pub at: DateTime<Utc>,
}

/// A Graph emulator on `127.0.0.1`. See the [crate documentation](crate).
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
                ended: std::collections::HashSet::new(),
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
                any(handler::update_recording_status),
            )
            .route(
                OPENID_PATH,
                axum::routing::get(signing::openid_configuration),
            )
            .route(JWKS_PATH, axum::routing::get(signing::jwks))
            .fallback(handler::not_found)
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

    /// The v1.0 base URL, `http://127.0.0.1:PORT/v1.0`: what a client puts where Graph's
    /// `https://graph.microsoft.com/v1.0` would be.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1.0", self.shared.addr)
    }

    /// The beta base URL: `http://127.0.0.1:PORT/beta`.
    pub fn beta_url(&self) -> String {
        format!("http://{}/beta", self.shared.addr)
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
    /// [`TestKey::TENANT_ID`], and issuer [`TestKey::BOT_FRAMEWORK_ISSUER`] and
    /// [`TestKey::GRAPH_ISSUER`] in turn (both are Graph's), signed with
    /// [`signing_key`](Self::signing_key), whose public half is served at
    /// [`openid_configuration_url`](Self::openid_configuration_url)'s `jwks_uri`.
    /// A [`NotifyStyle::bearer`] set on a behaviour still wins (to send a forged token).
    ///
    /// # Example
    /// ```
    /// use graph_emulator::{Emulator, TestKey};
    /// use jsonwebtoken::jwk::JwkSet;
    /// use jsonwebtoken::{Algorithm, DecodingKey, Validation};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let emulator = Emulator::start().await?;
    /// emulator.sign_notifications_for("my-app-id");
    /// // A bot's validator fetches `jwks_uri` from the OpenID configuration; in a unit test the
    /// // same JWKS comes from `TestKey::jwks`.
    /// let keys: JwkSet = serde_json::from_str(&TestKey::jwks(&[emulator.signing_key()]))?;
    /// let key = DecodingKey::from_jwk(&keys.keys[0])?;
    /// let mut validation = Validation::new(Algorithm::RS256);
    /// validation.set_audience(&["my-app-id"]);
    /// validation.set_issuer(&TestKey::ISSUERS);
    /// let token = emulator.signing_key().mint("my-app-id");
    /// assert!(jsonwebtoken::decode::<serde_json::Value>(&token[7..], &key, &validation).is_ok());
    /// # Ok(())
    /// # }
    /// ```
    pub fn sign_notifications_for(&self, app_id: impl Into<String>) {
        self.shared.lock().signing.sign_for(app_id.into());
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

    /// Graph hangs up `call_id` now: every later request for the call is answered `404` with
    /// code `8522` ("Call not found"), and a `terminated` notification (signed, if
    /// [`sign_notifications_for`](Self::sign_notifications_for) was called) is `POST`ed to the
    /// callback URL; returns once it was answered (or failed, or timed out).
    pub async fn hang_up(&self, call_id: &str) {
        notify::hang_up(&self.shared, call_id).await;
    }

    /// Rotates the signing key as Bot Framework does: the next key is published next to the
    /// current one, and notifications are signed with it from now on. A bot whose key cache
    /// lacks it sees an unknown `kid` and must refresh. Returns the new key.
    pub fn rotate_signing_key(&self) -> TestKey {
        let next = self.shared.lock().signing.rotate();
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

// ---------------------------------------------------------------------------------------------
// Shared state

/// What the server's handlers and the [`Emulator`] share.
struct Shared {
    addr: SocketAddr,
    state: Mutex<EmulatorState>,
    notifications_sent: AtomicUsize,
    notifications_refused: AtomicUsize,
    /// `true` once the emulator stops: pending answers and notifications give up.
    stopped: watch::Receiver<bool>,
    /// Posts notifications.
    client: Client<HttpConnector, Body>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, EmulatorState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn record(&self, request: RecordedRequest) {
        self.lock().record(request);
    }

    fn set_status(&self, call_id: &str, status: RecordingStatus) {
        self.lock().set_status(call_id, status);
    }

    /// Whether Graph hung up on `call_id`.
    fn has_ended(&self, call_id: &str) -> bool {
        self.lock().ended.contains(&normalize_id(call_id))
    }

    /// Graph hangs up on `call_id` (forgetting every ended call beyond [`MAX_TRACKED_CALLS`]).
    fn end_call(&self, call_id: &str) {
        let mut state = self.lock();
        if state.ended.len() >= MAX_TRACKED_CALLS {
            state.ended.clear();
        }
        state.ended.insert(normalize_id(call_id));
    }

    /// The behaviour for the next valid request of `call_id`.
    fn next_behavior(&self, call_id: &str) -> Behavior {
        self.lock().next_behavior(&normalize_id(call_id))
    }
}

struct EmulatorState {
    callback_url: Option<String>,
    /// Per-call scripts, by normalised id.
    scripts: HashMap<String, Script>,
    default: Script,
    /// Where each unscripted call is in the default script, by normalised id.
    default_positions: HashMap<String, usize>,
    requests: VecDeque<RecordedRequest>,
    /// The last status accepted per call, by normalised id.
    statuses: HashMap<String, RecordingStatus>,
    /// Calls Graph hung up on, by normalised id: requests for them get `8522`.
    ended: std::collections::HashSet<String>,
    signing: Signing,
}

impl EmulatorState {
    /// Keeps `request`, dropping the oldest beyond [`MAX_RECORDED_REQUESTS`].
    fn record(&mut self, request: RecordedRequest) {
        while self.requests.len() >= MAX_RECORDED_REQUESTS {
            self.requests.pop_front();
        }
        self.requests.push_back(request);
    }

    /// Remembers the call's status (forgetting every call's beyond [`MAX_TRACKED_CALLS`]).
    fn set_status(&mut self, call_id: &str, status: RecordingStatus) {
        if self.statuses.len() >= MAX_TRACKED_CALLS {
            self.statuses.clear();
        }
        self.statuses.insert(normalize_id(call_id), status);
    }

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

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> EmulatorState {
        EmulatorState {
            callback_url: None,
            scripts: HashMap::new(),
            default: Script::new(vec![Behavior::Forbidden8506, Behavior::Complete]),
            default_positions: HashMap::new(),
            requests: VecDeque::new(),
            statuses: HashMap::new(),
            ended: std::collections::HashSet::new(),
            signing: Signing::new(),
        }
    }

    #[test]
    fn each_unscripted_call_walks_the_default_on_its_own() {
        let mut state = state();
        assert!(matches!(state.next_behavior("a"), Behavior::Forbidden8506));
        assert!(matches!(state.next_behavior("b"), Behavior::Forbidden8506));
        assert!(matches!(state.next_behavior("a"), Behavior::Complete));
        assert!(matches!(state.next_behavior("a"), Behavior::Complete));
        state
            .scripts
            .insert("a".to_owned(), Script::new(vec![Behavior::DropConnection]));
        assert!(matches!(state.next_behavior("a"), Behavior::DropConnection));
        assert!(matches!(state.next_behavior("b"), Behavior::Complete));
    }

    #[test]
    fn what_is_remembered_stays_bounded() {
        let mut state = state();
        for i in 0..=MAX_TRACKED_CALLS {
            let call = i.to_string();
            let _ = state.next_behavior(&call);
            state.set_status(&call, RecordingStatus::Recording);
        }
        assert!(state.default_positions.len() <= MAX_TRACKED_CALLS);
        assert!(state.statuses.len() <= MAX_TRACKED_CALLS);

        let request = RecordedRequest {
            call_id: String::new(),
            version: String::new(),
            method: "POST".to_owned(),
            path: "/".to_owned(),
            status: None,
            client_context: None,
            client_request_id: None,
            request_id: String::new(),
            authorized: false,
            http_status: 0,
            at: Utc::now(),
        };
        for status in 0..=MAX_RECORDED_REQUESTS {
            state.record(RecordedRequest {
                http_status: u16::try_from(status % 600).unwrap_or_default(),
                ..request.clone()
            });
        }
        assert_eq!(state.requests.len(), MAX_RECORDED_REQUESTS);
        // The oldest went first.
        assert_eq!(state.requests.front().map(|r| r.http_status), Some(1));
    }

    #[test]
    fn statuses_are_kept_by_normalised_id() {
        let mut state = state();
        state.set_status("57DAB8B1894C409AB240BD8BEAE78896", RecordingStatus::Failed);
        state.set_status(
            "57dab8b1-894c-409a-b240-bd8beae78896",
            RecordingStatus::NotRecording,
        );
        assert_eq!(state.statuses.len(), 1);
        assert_eq!(
            state.statuses.get("57dab8b1894c409ab240bd8beae78896"),
            Some(&RecordingStatus::NotRecording)
        );
    }
}
