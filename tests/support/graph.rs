//! A Graph for the core API: scripted answers, the bearer token, and calls already opened or
//! recording.

use std::sync::Arc;

use recording_status::audit::AuditSink;
use recording_status::auth::Authenticated;
use recording_status::testing::{ScriptedTransport, Step};
use recording_status::{AccessToken, Begin, Call, Calls, Graph, NotRecording, Recording};

use super::ids::call_id;

macro_rules! token {
    () => {
        "eyJ0eXAiOiJKV1Qi.super-secret-token.sig"
    };
}

/// The bearer token every test Graph sends.
pub(crate) const TOKEN: &str = token!();
/// `Authorization`'s value with [`TOKEN`].
pub(crate) const BEARER: &str = concat!("Bearer ", token!());
/// The part of [`TOKEN`] that must never appear anywhere but in `Authorization`.
pub(crate) const SECRET: &str = "super-secret-token";

/// Proof that a notification was authenticated, for tests that hand updates over directly.
pub(crate) fn proof() -> Authenticated {
    Authenticated::danger_authenticated_elsewhere("test harness")
}

/// A transport that answers with `steps`, in order.
pub(crate) fn scripted(steps: impl IntoIterator<Item = Step>) -> ScriptedTransport {
    steps
        .into_iter()
        .fold(ScriptedTransport::new(), ScriptedTransport::then)
}

/// A Graph over `transport`, with [`TOKEN`].
pub(crate) fn graph_over<T>(transport: T) -> Graph<T> {
    Graph::new(transport, AccessToken::new(TOKEN))
}

/// A Graph that answers with `steps`, in order; its transport shows what was sent.
pub(crate) fn graph(steps: impl IntoIterator<Item = Step>) -> Graph<ScriptedTransport> {
    graph_over(scripted(steps))
}

/// [`CALL`](super::ids::CALL), opened in a registry of its own that writes to `audit`.
pub(crate) fn open(audit: Arc<dyn AuditSink>) -> Call<NotRecording> {
    Calls::new(audit)
        .open(call_id())
        .expect("the only value of the call")
}

/// [`open`], then begun: `graph` must acknowledge the `recording` request.
pub(crate) async fn recording(
    graph: &Graph<ScriptedTransport>,
    audit: Arc<dyn AuditSink>,
) -> Call<Recording> {
    match open(audit).begin_recording(graph).await.expect("sent") {
        Begin::Recording(call) => call,
        other => panic!("expected Recording, got {other:?}"),
    }
}

/// [`recording`], through the blocking twin.
pub(crate) fn recording_blocking(
    graph: &Graph<ScriptedTransport>,
    audit: Arc<dyn AuditSink>,
) -> Call<Recording> {
    match open(audit).begin_recording_blocking(graph).expect("sent") {
        Begin::Recording(call) => call,
        other => panic!("expected Recording, got {other:?}"),
    }
}
