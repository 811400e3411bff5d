//! What the benches share.

use std::hint::black_box;

use recording_status::audit::{AuditEvent, AuditSink};
use recording_status::error::AuditError;

/// An audit sink that keeps nothing: what the crate costs without its trail.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Discard;

impl AuditSink for Discard {
    fn record(&self, event: &AuditEvent) -> Result<(), AuditError> {
        black_box(event);
        Ok(())
    }
}
