//! Microsoft Graph `updateRecordingStatus` for Teams compliance-recording bots, with the
//! recording rule enforced by types.
//!
//! Microsoft's terms forbid persisting call media until `POST
//! /communications/calls/{id}/updateRecordingStatus` with `status: recording` has received a
//! success reply, and require recording to end *before* `notRecording` (or `failed`) is
//! reported. This crate turns that rule into types:
//!
//! - a [`Call<S>`](Call) is in one of four states, [`NotRecording`], [`PendingRecording`],
//!   [`Recording`] and [`Failed`], and every transition consumes it; calls are opened through
//!   [`Calls`] (or the driver), which keeps one value per Graph call (G7);
//! - only `Call<Recording>` mints retention capabilities ([`Retention`], [`RetentionHandle`]),
//!   the values storage code ([`RetentionWriter`]) needs to write media;
//! - the only way into `Recording` is a `recording` update whose operation Graph reports as
//!   `completed` (in the response, or in a later notification for the same request);
//! - leaving `Recording` ends every capability first: statically for borrowed ones, by an
//!   awaited drain with a deadline for owned ones; the status request is built afterwards;
//! - revocation ([`Call::end`], or dropping a recording call) is final: once it returns no
//!   write through the call's capabilities is in flight, and none starts (G8);
//! - every request, response, transition and capability start/end is an
//!   [`AuditEvent`](audit::AuditEvent), and [`audit::verify`] replays a trail against the rule.
//!
//! # Example
//!
//! A bot runs its calls through the [`driver`] (default feature `driver`, on tokio): it retries
//! inside each transition's deadline, settles pending operations from the notifications the
//! bot's webhook hands to its [`Hub`](driver::Hub) (the `webhook` module's docs show that
//! handler), and reports what it could not settle as [`DriverEvent`](driver::DriverEvent)s.
//!
//! ```
//! # #[cfg(feature = "driver")]
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # tokio::runtime::Builder::new_current_thread().enable_time().build()?.block_on(async {
//! use std::io::Write;
//! use std::sync::Arc;
//! use recording_status::audit::{MemorySink, verify};
//! use recording_status::driver::{Driver, DriverConfig, Started};
//! use recording_status::testing::{ScriptedTransport, Step};
//! use recording_status::{AccessToken, Graph, RetentionWriter};
//!
//! // Any `Transport` works: reqwest, hyper, a closure. This one answers from a script.
//! let transport = ScriptedTransport::new().then(Step::completed()).then(Step::completed());
//! let graph = Graph::new(transport, AccessToken::new("eyJ0eXAi…"));
//! let audit = Arc::new(MemorySink::default());
//! let (driver, _events) = Driver::new(graph, audit.clone(), DriverConfig::default());
//!
//! // One value per Graph call: a second value for the same call is refused.
//! let call = driver.call("57dab8b1-894c-409a-b240-bd8beae78896".parse()?)?;
//! let Started::Recording(call) = driver.begin_recording(call).await? else {
//!     return Err("not acknowledged: nothing may be persisted".into());
//! };
//!
//! // Media reaches storage only through a capability minted by `Call<Recording>`.
//! let mut writer = RetentionWriter::new(call.retention_handle()?, Vec::new());
//! writer.write_all(b"frame")?;
//! let (stored, capability) = writer.finish()?;
//! drop(capability); // a media task would end here
//!
//! // Waits for every capability to end, then reports `notRecording`.
//! let call = driver.stop_recording(call).await?;
//! driver.end(call);
//! assert_eq!(stored, b"frame");
//! verify(&audit.events())?; // the trail keeps the rule
//! # Ok(())
//! # })
//! # }
//! # #[cfg(not(feature = "driver"))]
//! # fn main() {}
//! ```
//!
//! # Without the driver
//!
//! The driver sits on a lower layer, with no runtime of its own: [`Calls`] opens [`Call`]
//! values, and each transition runs over a [`Graph`] (async, or blocking with the `_blocking`
//! twins) and returns the next state: retries as the graph's [`RetryPolicy`] says (the same
//! decisions either way), no notification routing. Underneath, every transition is a sequence
//! of steps with no I/O ([`exchange`]) that a bot with its own HTTP stack can drive itself. Borrowed capabilities
//! ([`Retention`]) are checked statically there: stopping while one is alive does not
//! compile.
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let runtime = tokio::runtime::Builder::new_current_thread().build()?;
//! # runtime.block_on(async {
//! use std::io::Write;
//! use std::sync::Arc;
//! use recording_status::{AccessToken, Begin, Calls, Graph, RetentionWriter};
//! use recording_status::audit::{MemorySink, verify};
//! use recording_status::testing::{ScriptedTransport, Step};
//!
//! // Any `Transport` works: reqwest, hyper, a closure. This one answers from a script.
//! let transport = ScriptedTransport::new().then(Step::completed()).then(Step::completed());
//! let graph = Graph::new(transport, AccessToken::new("eyJ0eXAi…"));
//! let audit = Arc::new(MemorySink::default());
//!
//! // One value per Graph call: calls are opened through the registry that knows them.
//! let calls = Calls::new(audit.clone());
//! let call = calls.open("57dab8b1-894c-409a-b240-bd8beae78896".parse()?)?;
//! let Begin::Recording(call) = call.begin_recording(&graph).await? else {
//!     return Err("not acknowledged: nothing may be persisted".into());
//! };
//!
//! // Media reaches storage only through a capability minted by `Call<Recording>`.
//! let mut writer = RetentionWriter::new(call.retention()?, Vec::new());
//! writer.write_all(b"frame")?;
//! let (stored, capability) = writer.finish()?;
//! drop(capability); // `stop_recording` would not compile while it is alive
//!
//! let call = call.stop_recording(&graph, std::future::pending()).await?;
//! assert_eq!(stored, b"frame");
//! verify(&audit.events())?;
//! # drop(call);
//! # Ok(())
//! # })
//! # }
//! ```
//!
//! # The protocol
//!
//! Exported by the `#[typestate]` protocol spec in `tests/core/protocol_spec.rs`, whose every edge
//! calls this crate's API; a test fails if this copy drifts from the export or from
//! [`protocol::TRANSITIONS`]. Choice nodes (`<<choice>>`) are the outcomes Graph decides.
//!
//! ```text
#![doc = include_str!("../docs/states.mmd")]
//! ```
//!
//! # Driving calls
//!
//! With the `driver` feature (default), [`driver::Driver`] runs each transition against Graph's
//! real behaviour on tokio: retries under a deadline ([`driver::RetryPolicy`]: `Retry-After` on
//! `429`/`503`, backoff for failures before sending, one token refresh after `401`, no blind
//! retry of ambiguous failures), pending operations settled by notifications through
//! [`driver::Hub`] or failed at a deadline, late completions surfaced as
//! [`driver::DriverEvent`]s, one request in flight per call, and a best-effort `notRecording`
//! for calls dropped while recording.
//!
//! # Layers
//!
//! Modules import downwards only, in this order (bottom first); a lower layer that needs a
//! higher one defines a trait the higher one implements (`retention` → `registry`: the owner of
//! a recording's capabilities; `registry` → `driver`: the hook told of a dropped recording
//! call):
//!
//! 1. **Values and codecs**: ids and contexts (`types`), statuses, the protocol's states and
//!    transition table, the authentication proof ([`auth`]), the [`transport`] trait and
//!    tokens, the pure request and response codecs ([`request`], [`response`],
//!    [`notification`]), retry decisions, [`error`]s.
//! 2. **[`audit`]**: events, sinks, the chain and the verifier.
//! 3. **[`retention`] and the states**: capabilities, the gate they write through, and the
//!    four typestates.
//! 4. **The registry** of live calls ([`Calls`]): one value per Graph call, recording episodes.
//! 5. **The steps** of one status update ([`exchange`]: audited attempts, retry decisions)
//!    and **the calls** ([`Call`]): every transition as steps with no I/O.
//! 6. **The client** ([`Graph`]): endpoint, tokens, transport, timer, and the two thin loops
//!    (async and blocking) that run the steps.
//! 7. **The [`driver`]** and its hub, on tokio: a client of the layers below through their
//!    public API and one crate-private seam.
//!
//! The webhook authenticator, the transports and the test kit ([`testing`]) sit beside these,
//! on the values and the audit trail. The Graph emulator the tests and the example bot run
//! against is a crate of its own in the workspace (`graph-emulator`), independent of this one.
//!
//! # What this crate does not do
//!
//! It performs no HTTP: requests are built and responses read by pure functions
//! ([`request`], [`response`], [`notification`]), and an injected [`Transport`] moves the
//! bytes. It does not receive webhooks: the bot's web server hands notification bodies to the
//! hub, together with proof that the request was authenticated ([`auth::Authenticated`]: from
//! the Bot Framework JWT validator of the `jwt` feature, or an explicit, audited escape hatch).
//!
//! # Crate features
//!
//! - `driver` (default): the async [`driver`] and retries, on tokio.
//! - `tokio`: `tokio::io::AsyncWrite` for [`RetentionWriter`].
//! - `jwt`: `webhook`, validation of the Bot Framework bearer JWT on notification webhooks.
//! - `reqwest-0_13`, `ureq-3`: ready-made [`transports`] (redirects always off); `tls` adds
//!   rustls to them.
//! - `proptest`: `testing::strategies`, Graph's answers as proptest strategies.

#![forbid(unsafe_code)]
// On docs.rs: each feature-gated item says which feature it needs.
#![cfg_attr(docsrs, feature(doc_cfg))]
#![deny(missing_docs)]

pub mod audit;
pub mod auth;
mod call;
pub mod compliance;
#[cfg(feature = "driver")]
pub mod driver;
mod endpoint;
pub mod error;
pub mod exchange;
mod graph;
pub mod notification;
mod protocol;
mod registry;
pub mod request;
pub mod response;
pub mod retention;
// Hidden: its free functions are internals that the fuzz targets reach; `RetryPolicy` is
// re-exported below.
#[doc(hidden)]
pub mod retry;
mod seam;
mod state;
mod status;
pub mod testing;
mod token;
#[cfg(feature = "tokio")]
mod tokio_io;
pub mod transport;
pub mod transports;
mod types;
#[cfg(feature = "jwt")]
pub mod webhook;

pub use call::{
    AnyCall, Begin, Beginning, Call, CanBegin, Draining, Ended, NotSent, ReportingFailure,
    StopError, Stopping,
};
pub use endpoint::Endpoint;
pub use error::Error;
pub use graph::{Graph, ThreadTimer, Timer};
pub use http;
pub use protocol::CallState;
pub use registry::Calls;
pub use retention::{Retention, RetentionHandle, RetentionWriter};
pub use retry::RetryPolicy;
// The transition table, for the protocol spec test (`tests/core/protocol_spec.rs`), not for bots.
#[doc(hidden)]
pub use protocol::{TRANSITIONS, Transition};
pub use state::{Failed, NotRecording, PendingRecording, Recording, State};
pub use status::{OperationStatus, RecordingStatus};
pub use token::{TokenError, TokenFuture, TokenSource};
pub use transport::{BlockingTransport, Transport};
pub use types::{AccessToken, CallId, ClientContext};

/// The README's example, compiled as a doctest so it cannot rot (it runs on the driver).
#[cfg(all(doctest, feature = "driver"))]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
