//! Misuse: forging a `Call<Recording>` with a struct literal instead of earning it through a
//! `completed` acknowledgement (its fields are private).
use std::sync::Arc;

use recording_status::audit::AuditSink;
use recording_status::{Call, CallId, Recording};

fn forge(id: CallId, audit: Arc<dyn AuditSink>, state: Recording) -> Call<Recording> {
    Call { id, audit, state }
}

fn main() {
    let _ = forge;
}
