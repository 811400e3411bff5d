//! The audit trail: every attempt, response, transition and retention start/end as an
//! [`AuditEvent`], delivered to an injected [`AuditSink`] *before* the step it records goes on.
//!
//! Two sinks ship: [`MemorySink`] (tests, short-lived tools) and [`JsonLinesSink`] (one JSON
//! object per line, written and flushed per event). [`verify`] replays a trail and proves the
//! policy's ordering: a completed `recording` acknowledgement before the first retention, and
//! every retention ended before the end of recording is reported.
//!
//! One concept in parts: [`AuditEvent`] and what it records (`event`), the sinks (`sink`), and
//! the verifier that replays a trail against the rule (`verify`).

mod event;
mod sink;
mod verify;

pub use event::{AuditEvent, AuditKind, ResponseKind, TransportFailure};
pub use sink::{AuditSink, JsonLinesSink, MemorySink};
pub use verify::{Verified, Violation, verify};
