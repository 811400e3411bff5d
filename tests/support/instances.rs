//! Instances of a bot, for audits across trails: each its own registry of live calls writing
//! to its own trail, as separate processes would.

use std::sync::Arc;
use std::time::Duration;

use recording_status::audit::{AuditEvent, MemorySink};
use recording_status::testing::{ScriptedTransport, Step};
use recording_status::{Begin, Call, CallId, Calls, Graph, NotRecording, Recording};

use super::graph::graph;

/// One instance: its registry, its trail, and a Graph that acknowledges every request.
pub(crate) struct Instance {
    pub(crate) calls: Calls,
    pub(crate) trail: Arc<MemorySink>,
    pub(crate) graph: Graph<ScriptedTransport>,
}

impl Instance {
    /// An instance whose Graph answers `completed` to each of its first eight requests.
    pub(crate) fn new() -> Self {
        Self::answering(std::iter::repeat_with(Step::completed).take(8))
    }

    /// An instance whose Graph answers with `steps`, in order.
    pub(crate) fn answering(steps: impl IntoIterator<Item = Step>) -> Self {
        let trail = Arc::new(MemorySink::default());
        Self {
            calls: Calls::new(trail.clone()),
            trail,
            graph: graph(steps),
        }
    }

    /// Opens `call` and begins recording it; Graph must acknowledge.
    pub(crate) fn record(&self, call: CallId) -> Call<Recording> {
        let call = self.calls.open(call).expect("one value of the call here");
        match call.begin_recording_blocking(&self.graph).expect("sent") {
            Begin::Recording(call) => call,
            other => panic!("expected Recording, got {other:?}"),
        }
    }

    /// Retains through one capability, then stops `call`.
    pub(crate) fn retain_and_stop(&self, call: Call<Recording>) -> Call<NotRecording> {
        drop(call.retention_handle().expect("a capability"));
        call.stop_recording_blocking(&self.graph, Duration::from_secs(1))
            .expect("stopped")
    }

    /// The trail so far.
    pub(crate) fn events(&self) -> Vec<AuditEvent> {
        self.trail.events()
    }
}

/// `events` with every call id written as `spelling`, as a trail whose writer spelled ids
/// differently would hold them.
pub(crate) fn respelled(mut events: Vec<AuditEvent>, spelling: &str) -> Vec<AuditEvent> {
    for e in events.iter_mut().filter(|e| !e.call_id.is_empty()) {
        e.call_id = spelling.to_owned();
    }
    events
}
