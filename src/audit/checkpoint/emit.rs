//! When a sink's checkpoints are due, and handing them to the witness: the part of
//! [`JsonLinesSink`](crate::audit::JsonLinesSink)'s checkpoints that does not touch its file.

use std::sync::{Mutex, MutexGuard, PoisonError, TryLockError};
use std::time::Instant;

use chrono::{DateTime, Utc};

use super::{Checkpoint, CheckpointOptions, CheckpointStatus, SignedCheckpoint};
use crate::error::AuditError;

/// A sink's checkpoint options and what its checkpoints have come to.
#[derive(Debug)]
pub(crate) struct Checkpointer {
    options: CheckpointOptions,
    state: Mutex<State>,
}

/// Since when the next checkpoint counts, and the status.
#[derive(Debug)]
pub(crate) struct State {
    /// The `seq` of the last checkpoint attempted (or the trail's at open).
    since_seq: u64,
    /// When it was attempted (or the sink opened).
    since: Instant,
    status: CheckpointStatus,
}

/// The head a checkpoint covers: the last durable line's `seq`, chain value and time.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Head {
    pub(crate) seq: u64,
    pub(crate) chain: [u8; 32],
    pub(crate) at: Option<DateTime<Utc>>,
}

impl Checkpointer {
    /// For a sink whose trail is at `seq` when it opens.
    pub(crate) fn new(options: CheckpointOptions, seq: u64) -> Self {
        Self {
            options,
            state: Mutex::new(State {
                since_seq: seq,
                since: Instant::now(),
                status: CheckpointStatus::default(),
            }),
        }
    }

    /// The origin, for the sink's `Debug`.
    pub(crate) fn origin(&self) -> &str {
        &self.options.origin
    }

    /// The state, waiting for a checkpoint under way.
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The state, unless a checkpoint is under way (it covers what this caller would).
    pub(crate) fn try_lock(&self) -> Option<MutexGuard<'_, State>> {
        match self.state.try_lock() {
            Ok(state) => Some(state),
            Err(TryLockError::Poisoned(e)) => Some(e.into_inner()),
            Err(TryLockError::WouldBlock) => None,
        }
    }

    /// Whether a checkpoint of `seq` is due: `every_events` lines since the last one, or
    /// `every` elapsed and a line written since.
    pub(crate) fn due(&self, state: &State, seq: u64) -> bool {
        seq >= state.since_seq.saturating_add(self.options.every_events)
            || (seq > state.since_seq && state.since.elapsed() >= self.options.every)
    }

    /// Whether the last checkpoint the witness took covers `seq` already.
    pub(crate) fn covered(state: &State, seq: u64) -> bool {
        state.status.last_seq.is_some_and(|last| last >= seq)
    }

    /// Signs a checkpoint of `head` (or counts `durable`'s failure: the lines could not be
    /// made durable, so nothing is signed) and hands it to the witness; logs and counts a
    /// failure. Starts the next count from here either way.
    pub(crate) fn emit(
        &self,
        state: &mut State,
        head: Result<Head, AuditError>,
    ) -> Result<SignedCheckpoint, AuditError> {
        state.since = Instant::now();
        let result = head.and_then(|head| {
            state.since_seq = head.seq;
            // Never earlier than the last line it covers, as the trail's own stamps.
            let now = Utc::now();
            let at = head.at.map_or(now, |at| at.max(now));
            let checkpoint = Checkpoint::new(self.options.origin.clone(), head.seq, head.chain, at)
                .map_err(|e| AuditError::Witness(Box::new(e)))?;
            let signed = checkpoint.sign(&self.options.signer);
            self.options.witness.witness(&signed)?;
            Ok(signed)
        });
        match &result {
            Ok(signed) => {
                state.status.witnessed += 1;
                state.status.last_seq = Some(signed.checkpoint().seq());
            }
            Err(e) => {
                tracing::error!(error = %e, origin = %self.options.origin,
                    witness = ?self.options.witness,
                    "audit trail: a checkpoint could not be made or handed to the witness; the events stay recorded");
                state.status.failures += 1;
                state.status.last_error = Some(error_chain(e));
            }
        }
        result
    }

    /// A copy of the status.
    pub(crate) fn status(&self) -> CheckpointStatus {
        self.lock().status.clone()
    }
}

/// `e` and its sources, joined by `: `.
fn error_chain(e: &AuditError) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
