//! [`Calls`]: the live calls of a bot. Every [`Call`] is opened here, so there is one typestate
//! value per Graph call at a time (G7).
//!
//! A Graph call has one recording indicator, so it must have one `Call` value: two values for
//! one call could disagree (one stops and reports `notRecording` while the other keeps
//! persisting media). The registry keys calls by their normalised id, so the GUID
//! `57dab8b1-894c-…` and the upper-case dash-less `57DAB8B1894C…` that Graph uses in
//! notifications are the same call, and a second live value is refused with
//! [`Error::AlreadyOpen`].
//!
//! It also numbers *recording episodes*. Each `recording` request begins a new one (from a
//! counter shared by every call of the registry, so numbers only grow). A report that belongs
//! to an earlier episode (the best-effort `notRecording` for a recording call that was dropped,
//! a [reconciliation](crate::driver::Driver::reconcile) of a late completion) is checked
//! against the call's current episode right before its request is audited and sent, under the
//! same lock that starts episodes: once a later episode has begun, it is not sent, the trail
//! records [`AuditKind::ReportSuperseded`](crate::audit::AuditKind::ReportSuperseded), and the
//! error is [`Error::Superseded`].

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};

use crate::audit::AuditSink;
use crate::call::{Call, OrphanHook};
use crate::error::Error;
use crate::retention::RetentionShared;
use crate::state::NotRecording;
use crate::types::CallId;

/// The live calls of a bot: the only way to get a [`Call`]. Cheap to clone (clones share the
/// same calls); keep one per bot, or use the [driver](crate::driver::Driver), which keeps one.
///
/// # Example
/// ```
/// use std::sync::Arc;
/// use recording_status::{Calls, CallState, Error};
/// use recording_status::audit::MemorySink;
///
/// let calls = Calls::new(Arc::new(MemorySink::default()));
/// let call = calls.open("57dab8b1-894c-409a-b240-bd8beae78896".parse()?)?;
/// assert_eq!(call.state(), CallState::NotRecording);
///
/// // Graph's notification spelling of the same call is the same call.
/// let again = calls.open("57DAB8B1894C409AB240BD8BEAE78896".parse()?);
/// assert!(matches!(again, Err(Error::AlreadyOpen { .. })));
///
/// drop(call); // once the value is gone, the call can be opened again
/// assert!(calls.open("57DAB8B1894C409AB240BD8BEAE78896".parse()?).is_ok());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Calls {
    registry: Arc<Registry>,
}

pub(crate) struct Registry {
    pub(crate) audit: Arc<dyn AuditSink>,
    pub(crate) orphan: Option<Arc<dyn OrphanHook>>,
    /// Keyed by the call (a reference-counted clone, compared by its normalised form).
    lines: Mutex<HashMap<CallId, Weak<Line>>>,
    episodes: AtomicU64,
    /// Numbers retention capabilities, unique across every call and episode of the registry.
    pub(crate) capabilities: AtomicU64,
}

/// The shared state of one Graph call: whether a value for it is live, and its current
/// recording episode. Lives while a value, a capability or a pending report needs it.
pub(crate) struct Line {
    key: CallId,
    pub(crate) registry: Arc<Registry>,
    state: Mutex<LineState>,
}

/// The retention of the episode recording now, so that a call Graph terminated can be revoked
/// at once, wherever its value is.
#[derive(Default)]
struct Recording(Weak<RetentionShared>);

#[derive(Debug, Default)]
struct LineState {
    live: bool,
    /// The latest episode begun on this call; 0 for none.
    episode: u64,
    recording: Recording,
}

impl fmt::Debug for Recording {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.strong_count() > 0 {
            "Recording"
        } else {
            "None"
        })
    }
}

/// The seat a live [`Call`] value holds: dropping it frees the call for a new value.
pub(crate) struct Seat {
    pub(crate) line: Arc<Line>,
}

impl Calls {
    /// An empty registry whose calls audit to `audit`.
    pub fn new(audit: Arc<dyn AuditSink>) -> Self {
        Self::with_orphan_hook(audit, None)
    }

    pub(crate) fn with_orphan_hook(
        audit: Arc<dyn AuditSink>,
        orphan: Option<Arc<dyn OrphanHook>>,
    ) -> Self {
        Self {
            registry: Arc::new(Registry {
                audit,
                orphan,
                lines: Mutex::new(HashMap::new()),
                episodes: AtomicU64::new(0),
                capabilities: AtomicU64::new(1),
            }),
        }
    }

    /// Opens `id`: a new `Call<NotRecording>`.
    ///
    /// # Errors
    /// [`Error::AlreadyOpen`] if a value for the same call (under any spelling of its id) is
    /// alive: use that one, or drop it first.
    pub fn open(&self, id: CallId) -> Result<Call<NotRecording>, Error> {
        let line = self.line(&id);
        {
            let mut state = line.lock();
            if state.live {
                return Err(Error::AlreadyOpen { call_id: id });
            }
            state.live = true;
        }
        Ok(Call::open(id, Seat { line }))
    }

    /// Whether a value for `id` (under any spelling) is alive.
    pub fn is_open(&self, id: &CallId) -> bool {
        self.existing_line(id).is_some_and(|l| l.lock().live)
    }

    /// The audit sink the calls write to.
    pub fn audit(&self) -> &Arc<dyn AuditSink> {
        &self.registry.audit
    }

    /// The line of `id`, created if nobody holds one.
    pub(crate) fn line(&self, id: &CallId) -> Arc<Line> {
        let mut lines = self.registry.lock_lines();
        if let Some(line) = lines.get(id).and_then(Weak::upgrade) {
            return line;
        }
        let line = Arc::new(Line {
            key: id.clone(),
            registry: self.registry.clone(),
            state: Mutex::new(LineState::default()),
        });
        lines.insert(line.key.clone(), Arc::downgrade(&line));
        line
    }

    /// Revokes the retention of `id`'s current recording episode, if it has one (Graph
    /// terminated the call). Returns whether there was one to revoke.
    #[cfg_attr(not(feature = "driver"), allow(dead_code))]
    pub(crate) fn revoke(&self, id: &CallId) -> bool {
        let recording = self
            .existing_line(id)
            .and_then(|line| line.lock().recording.0.upgrade());
        match recording {
            Some(shared) => {
                shared.revoke();
                true
            }
            None => false,
        }
    }

    fn existing_line(&self, id: &CallId) -> Option<Arc<Line>> {
        self.registry.lock_lines().get(id).and_then(Weak::upgrade)
    }
}

impl fmt::Debug for Calls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let lines = self.registry.lock_lines();
        f.debug_struct("Calls")
            .field("lines", &lines.len())
            .field("audit", &self.registry.audit)
            .finish_non_exhaustive()
    }
}

impl Registry {
    fn lock_lines(&self) -> MutexGuard<'_, HashMap<CallId, Weak<Line>>> {
        self.lines.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A later episode of the call has begun: a report of an earlier one must not be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Superseded {
    /// The episode that has begun.
    pub(crate) current: u64,
}

impl Line {
    fn lock(&self) -> MutexGuard<'_, LineState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Begins a new recording episode and runs `first_step` (which audits it) before any
    /// report of an earlier episode can pass [`within_episode`](Self::within_episode).
    pub(crate) fn begin_episode<R>(&self, first_step: impl FnOnce(u64) -> R) -> (u64, R) {
        let mut state = self.lock();
        let episode = self.registry.episodes.fetch_add(1, Ordering::Relaxed) + 1;
        let out = first_step(episode);
        state.episode = episode;
        (episode, out)
    }

    /// Runs `step` (which audits a report of `episode`) only if no later episode has begun;
    /// episodes cannot begin while it runs.
    pub(crate) fn within_episode<R>(
        &self,
        episode: u64,
        step: impl FnOnce() -> R,
    ) -> Result<R, Superseded> {
        let state = self.lock();
        if state.episode > episode {
            return Err(Superseded {
                current: state.episode,
            });
        }
        Ok(step())
    }

    /// Remembers the retention of the episode that entered `Recording`.
    pub(crate) fn set_recording(&self, shared: &Arc<RetentionShared>) {
        self.lock().recording = Recording(Arc::downgrade(shared));
    }

    /// The latest episode begun on this call (0 for none).
    pub(crate) fn episode(&self) -> u64 {
        self.lock().episode
    }
}

impl Drop for Line {
    fn drop(&mut self) {
        let mut lines = self.registry.lock_lines();
        // A new line for the same call may already have taken the slot.
        if lines.get(&self.key).is_some_and(|w| w.strong_count() == 0) {
            lines.remove(&self.key);
        }
    }
}

impl Drop for Seat {
    fn drop(&mut self) {
        self.line.lock().live = false;
    }
}

impl fmt::Debug for Seat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Seat")
            .field("episode", &self.line.episode())
            .finish()
    }
}
