//! The seam between the core and the [`driver`](crate::driver): the crate-private items the
//! driver needs beyond what any crate can use, each with why a bot must not have it. The
//! driver reaches the core through the public API and through this module only.
//!
//! - [`CallEntry`]: the registry's entry for one call (its live value, its recording episodes).
//!   The driver reports for an episode of a call whose value it does not hold (a dropped
//!   recording call, a late completion); a bot holding entries could send reports beside the
//!   call's value, which is what G7 forbids.
//! - [`OrphanHook`]: told when a recording call is dropped, to queue its best-effort
//!   `notRecording`. Registered once, by the driver, when it builds its registry
//!   ([`registry`]); a bot's own hook could skip the revocation's report or send it twice.
//! - [`RetentionShared`]: the state a recording episode's capabilities share. The driver
//!   writes the ends the trail refused before the dropped call's report (G9); a bot holding it
//!   could mint or revoke capabilities outside the typestate.
//! - [`RecordingSent`] and [`SendGuard`]: the hook told before each `recording` request of the
//!   driver's registry is handed over, armed until its outcome is known, so that the hub
//!   remembers a request whose outcome is lost (G10). A bot's hook could disarm it.
//! - [`report`]: a report of a given recording episode, refused once a later episode has begun
//!   (G7). Only the driver, which tracks episodes of calls it does not hold, may send one.
//! - [`registry`], [`entry`], [`revoke`], [`recordings`]: a registry with the dropped-call
//!   hook, the entry of a call whose value may be elsewhere, the revocation of its current
//!   recording (Graph terminated the call), and every call recording now (the instance stops).
//!   A bot revoking at will would end retention without a transition.
//! - [`unsettled`] and [`Unsettled`]: the `recording` attempt of a failed call whose outcome
//!   is unknown, which the hub keeps to recognise a late completion; internal bookkeeping.
//! - [`normalize_id`], [`MAX_CALL_ID_LEN`], [`MAX_CLIENT_CONTEXT_LEN`]: the id rules the hub
//!   applies to notifications, kept in one place; bots use [`CallId`] and
//!   [`ClientContext`](crate::ClientContext), which enforce them.

#![allow(dead_code, unused_imports)] // Used by the driver (feature `driver`).

use std::sync::Arc;

use crate::audit::AuditSink;
use crate::call::Call;
use crate::registry::Calls;
use crate::state::Failed;
use crate::types::CallId;

pub(crate) use crate::exchange::report;
pub(crate) use crate::registry::{CallEntry, OrphanHook, RecordingSent, SendGuard};
pub(crate) use crate::retention::RetentionShared;
pub(crate) use crate::state::Unsettled;
pub(crate) use crate::types::{MAX_CALL_ID_LEN, MAX_CLIENT_CONTEXT_LEN, normalize_id};

/// A registry whose dropped recording calls are told to `orphan`, and whose `recording`
/// requests are told to `recording_sent` before they are handed over.
pub(crate) fn registry(
    audit: Arc<dyn AuditSink>,
    orphan: Arc<dyn OrphanHook>,
    recording_sent: Arc<dyn RecordingSent>,
) -> Calls {
    Calls::with_hooks(audit, Some(orphan), Some(recording_sent))
}

/// The entry of `id` in `calls`, created if nobody holds one.
pub(crate) fn entry(calls: &Calls, id: &CallId) -> Arc<CallEntry> {
    calls.entry(id)
}

/// Revokes the retention of `id`'s current recording, if any: whether there was one.
pub(crate) fn revoke(calls: &Calls, id: &CallId) -> bool {
    calls.revoke(id)
}

/// Every call of `calls` recording now (retention not revoked), with its entry.
pub(crate) fn recordings(calls: &Calls) -> Vec<(Arc<CallEntry>, Arc<RetentionShared>)> {
    calls.recordings()
}

/// The `recording` attempt of `call` whose outcome is unknown, if any.
pub(crate) fn unsettled(call: &Call<Failed>) -> Option<&Unsettled> {
    call.unsettled()
}
