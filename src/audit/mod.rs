//! The audit trail: every attempt, response, transition and retention start/end as an
//! [`AuditEvent`], delivered to an injected [`AuditSink`] *before* the step it records goes on.
//!
//! Two sinks ship: [`MemorySink`] (tests, short-lived tools) and [`JsonLinesSink`] (one JSON
//! object per line; each line sequenced, time-stamped under the sink's lock and chained to the
//! one before it by SHA-256, or HMAC-SHA256 under a key the bot supplies; concurrent events
//! written together, each `record` returning once its own line is flushed to the OS or synced
//! to disk, as [`Durability`] says). [`check_chain`] finds an edited, deleted, reordered or
//! inserted line; [`verify`] replays a trail against the rule (G1, G2, G7, G9) and lists what a
//! cut trail leaves open; [`verify_instances`] verifies the trails of several instances of a
//! bot, each on its own and then together, where one call held by two instances at once
//! breaks G7. With [`CheckpointOptions`], the sink also signs checkpoints of its chain head for
//! a [`Witness`] outside the operator's reach, and [`check_checkpoints`] names the checkpoint a
//! cut or rechained trail contradicts (G12). The command-line auditor `recording-audit` runs
//! them.
//!
//! One concept in five parts, and a report: what an event records (`event`), the sinks
//! (`sink`; `group`, the group commit they share with a bot's own storage; and `durable`, a
//! synced trail's sync thread and the futures the async loops await it with), the chain that
//! makes the trail tamper-evident (`chain`), the witnessed checkpoints of its head
//! (`checkpoint`: format, emission, witnesses, the check), the verifier that replays it
//! (`verify`, and `instances` across trails), and the auditor's [`summary`] (`report`) and
//! pictures, of one call ([`timeline`]) or of the whole trail ([`trail_timeline`])
//! (`picture`).

mod chain;
mod checkpoint;
pub(crate) mod durable;
mod event;
#[cfg(test)]
pub(crate) mod flaky;
mod group;
mod instances;
mod picture;
mod report;
mod sink;
mod verify;

pub use chain::{BreakKind, ChainBreak, ChainSummary, TornTail, check_chain};
pub use checkpoint::{
    Checkpoint, CheckpointError, CheckpointFile, CheckpointOptions, CheckpointProblem,
    CheckpointReport, CheckpointSigner, CheckpointStatus, FileWitness, NoteAt, SignedCheckpoint,
    UnreadableNote, VerifierKey, Witness, check_checkpoints,
};
#[cfg(feature = "driver")]
pub use checkpoint::{HttpWitness, HttpWitnessStats, HttpWitnessTask};
pub use event::{AuditEvent, AuditKind, ResponseKind, TransportFailure};
pub use group::{GroupCommit, GroupWrite};
pub use instances::{Hold, InstanceTrail, InstancesReport, Overlap, verify_instances};
pub use picture::{timeline, trail_timeline};
pub use report::{CallSummary, summary};
pub use sink::{AuditSink, Durability, JsonLinesOptions, JsonLinesSink, MemorySink, Trail};
pub use verify::{OpenCall, RecoveredCall, Rule, Unauthenticated, Verified, Violation, verify};

use crate::error::AuditError;
use crate::types::CallId;

/// Records `kind` about `call` under its normalised id: one spelling per call in the trail
/// (G7), whichever spelling the caller holds.
pub(crate) fn record_for(
    audit: &dyn AuditSink,
    call: &CallId,
    kind: AuditKind,
) -> Result<(), AuditError> {
    audit.record(&AuditEvent::now(call.normalized(), kind))
}
