//! Audit sinks for tests: one that refuses the events a test picks, all or nothing per write,
//! and remembers how the events it kept arrived.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use recording_status::audit::{AuditEvent, AuditKind, AuditSink, MemorySink};
use recording_status::error::AuditError;

/// A memory sink that, while refusing is on, refuses every write (one `record`, or one
/// `record_batch`) holding an event its predicate picks, keeping none of that write's events,
/// as `JsonLinesSink` does with a write that fails. It remembers each accepted write's events
/// by [`label`].
#[derive(Debug)]
pub(crate) struct Refusing {
    inner: MemorySink,
    writes: Mutex<Vec<Vec<String>>>,
    refuse: fn(&AuditKind) -> bool,
    on: AtomicBool,
}

impl Refusing {
    /// Refuses the events `refuse` picks from the start.
    pub(crate) fn new(refuse: fn(&AuditKind) -> bool) -> Arc<Self> {
        Arc::new(Self {
            inner: MemorySink::default(),
            writes: Mutex::default(),
            refuse,
            on: AtomicBool::new(true),
        })
    }

    /// Refuses nothing until [`set_refusing`](Self::set_refusing) turns it on.
    pub(crate) fn idle(refuse: fn(&AuditKind) -> bool) -> Arc<Self> {
        let sink = Self::new(refuse);
        sink.set_refusing(false);
        sink
    }

    /// Accepts everything: a memory sink that remembers how events arrived.
    pub(crate) fn accepting() -> Arc<Self> {
        Self::new(|_| false)
    }

    /// Refuses every event: a trail that cannot be written at all.
    pub(crate) fn broken() -> Arc<Self> {
        Self::new(|_| true)
    }

    pub(crate) fn set_refusing(&self, on: bool) {
        self.on.store(on, Ordering::SeqCst);
    }

    /// The accepted writes, each as the [`label`]s of its events.
    pub(crate) fn writes(&self) -> Vec<Vec<String>> {
        self.writes.lock().unwrap().clone()
    }

    /// The accepted events.
    pub(crate) fn events(&self) -> Vec<AuditEvent> {
        self.inner.events()
    }
}

impl AuditSink for Refusing {
    fn record(&self, event: &AuditEvent) -> Result<(), AuditError> {
        self.record_batch(std::slice::from_ref(event))
    }

    fn record_batch(&self, events: &[AuditEvent]) -> Result<(), AuditError> {
        if self.on.load(Ordering::SeqCst) && events.iter().any(|e| (self.refuse)(&e.kind)) {
            return Err(AuditError::Io(std::io::Error::other(
                "refused by the test sink",
            )));
        }
        self.writes
            .lock()
            .unwrap()
            .push(events.iter().map(|e| label(&e.kind)).collect());
        self.inner.record_batch(events)
    }
}

/// An event's serde name, and for a transition `transition:<to>`.
pub(crate) fn label(kind: &AuditKind) -> String {
    let json = serde_json::to_value(kind).unwrap();
    let event = json["event"].as_str().unwrap().to_owned();
    match kind {
        AuditKind::Transition { to, .. } => format!("{event}:{to}"),
        _ => event,
    }
}

/// The [`label`]s of `events`.
pub(crate) fn labels(events: &[AuditEvent]) -> Vec<String> {
    events.iter().map(|e| label(&e.kind)).collect()
}

/// The episodes `events` begin for the call keyed `call_key`, in order, read from their
/// `recording requested (registry episode N)` transitions.
pub(crate) fn begun_episodes(events: &[AuditEvent], call_key: &str) -> Vec<u64> {
    events
        .iter()
        .filter(|e| e.call_id == call_key)
        .filter_map(|e| match &e.kind {
            AuditKind::Transition { reason, .. } => reason
                .strip_prefix("recording requested (registry episode ")
                .and_then(|n| n.strip_suffix(')'))
                .and_then(|n| n.parse().ok()),
            _ => None,
        })
        .collect()
}

/// The trail of `sink` as JSON text, for checks that a secret never reaches it.
pub(crate) fn as_json(sink: &MemorySink) -> String {
    serde_json::to_string(&sink.events()).unwrap()
}
