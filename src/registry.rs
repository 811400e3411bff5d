//! [`Calls`]: the live calls of a bot. Every [`Call`] is opened here, so there is one typestate
//! value per Graph call at a time (G7).
//!
//! A Graph call has one recording indicator, so it must have one `Call` value: two values for
//! one call could disagree (one stops and reports `notRecording` while the other keeps
//! persisting media). Calls are keyed by their normalised id, so the GUID `57dab8b1-894c-…`
//! and the upper-case dash-less `57DAB8B1894C…` that Graph uses in notifications are the same
//! call, and a second live value is refused with [`Error::AlreadyOpen`].
//!
//! *One value per call in the whole process*, however many registries (or drivers, each with
//! its own) it builds: the live values and the episodes below are kept in one table per
//! process, keyed by the normalised id alone. "The same Graph" therefore reaches across
//! clouds, tenants and base URLs: Graph call ids are GUIDs, so one id names one call wherever
//! it comes from, and a process that sees the same id through two endpoints (v1.0 and beta, a
//! proxy) still talks about one call. Two processes are not covered (see the compliance page's
//! limits; `recording-audit verify` over several instances' trails finds such overlaps).
//!
//! It also numbers *recording episodes*. Each `recording` request begins a new one (from a
//! counter shared by every call of the process, so numbers only grow). A report that belongs
//! to an earlier episode (the best-effort `notRecording` for a recording call that was dropped,
//! a [reconciliation](crate::driver::Driver::reconcile) of a late completion) is checked
//! against the call's current episode right before its request is audited and sent, under the
//! same lock that starts episodes: once a later episode has begun, it is not sent, the trail
//! records [`AuditKind::ReportSuperseded`](crate::audit::AuditKind::ReportSuperseded), and the
//! error is [`Error::Superseded`].

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError, Weak};

use crate::audit::AuditSink;
use crate::error::Error;
use crate::retention::{RetentionOwner, RetentionShared};
use crate::types::CallId;

/// The live calls of a bot: the only way to get a [`Call`](crate::Call) ([`Calls::open`]).
/// Cheap to clone (clones share the same calls); keep one per bot, or use the
/// [driver](crate::driver::Driver), which keeps one.
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

/// Told when a recording call is dropped without leaving `Recording` (its retention already
/// revoked), so that a best-effort `notRecording` can be sent: the driver implements it.
pub(crate) trait OrphanHook: Send + Sync {
    /// `retention` is revoked (no write is in flight and none can start); the report belongs
    /// to `episode` of `entry`'s call, the episode `retention` recorded.
    fn orphaned(&self, entry: Arc<CallEntry>, episode: u64, retention: Arc<RetentionShared>);
}

/// Told before each `recording` request of the registry's calls is handed over, so that an
/// outcome nobody waits for any more is still recognised: the driver's hub implements it.
pub(crate) trait RecordingSent: Send + Sync {
    /// A `recording` request of `episode` with `client_context` for `call` is about to be
    /// handed over. The guard is dropped armed if its outcome may still be applied by Graph
    /// unseen.
    fn sent(&self, call: &CallId, episode: u64, client_context: &str) -> SendGuard;
}

/// Armed while a `recording` request's outcome may still be applied by Graph unseen: dropped
/// armed (the attempt was abandoned, or its outcome is unknown), it runs its action.
pub(crate) struct SendGuard(Option<Box<dyn FnOnce() + Send>>);

impl SendGuard {
    #[allow(dead_code)] // Built by the driver (feature `driver`), through the seam.
    pub(crate) fn new(on_drop: impl FnOnce() + Send + 'static) -> Self {
        Self(Some(Box::new(on_drop)))
    }

    /// The outcome is known (or the request was not applied): nothing to do on drop.
    pub(crate) fn disarm(&mut self) {
        self.0 = None;
    }
}

impl Drop for SendGuard {
    fn drop(&mut self) {
        if let Some(action) = self.0.take() {
            action();
        }
    }
}

pub(crate) struct Registry {
    pub(crate) audit: Arc<dyn AuditSink>,
    orphan: Option<Arc<dyn OrphanHook>>,
    recording_sent: Option<Arc<dyn RecordingSent>>,
    /// Keyed by the call (a reference-counted clone, compared by its normalised form).
    entries: Mutex<HashMap<CallId, Weak<CallEntry>>>,
    /// Numbers retention capabilities, unique across every call and episode of the registry.
    capabilities: AtomicU64,
}

/// The registry's entry for one Graph call: the registry's trail and hooks for it, and the
/// retention recording now; whether a value is live and the current episode are the process's
/// ([`ProcessCall`]). Lives while a value, a capability or a pending report needs it.
pub(crate) struct CallEntry {
    key: CallId,
    pub(crate) registry: Arc<Registry>,
    process: Arc<ProcessCall>,
    state: Mutex<EntryState>,
}

/// One Graph call as the whole process knows it, shared by every registry's entry for it:
/// whether a value for it is live anywhere in the process, and its latest recording episode.
struct ProcessCall {
    key: CallId,
    state: Mutex<ProcessState>,
}

#[derive(Debug, Default)]
struct ProcessState {
    live: bool,
    /// The latest episode begun on this call; 0 for none.
    episode: u64,
}

/// Numbers recording episodes across every call and registry of the process.
static EPISODES: AtomicU64 = AtomicU64::new(0);

/// The process's calls by normalised id, each while some registry's entry needs it.
fn process_calls() -> MutexGuard<'static, HashMap<CallId, Weak<ProcessCall>>> {
    static CALLS: OnceLock<Mutex<HashMap<CallId, Weak<ProcessCall>>>> = OnceLock::new();
    CALLS
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
}

impl ProcessCall {
    /// The process's record of `id`, created if no registry needs it yet.
    fn of(id: &CallId) -> Arc<Self> {
        let mut calls = process_calls();
        if let Some(call) = calls.get(id).and_then(Weak::upgrade) {
            return call;
        }
        let call = Arc::new(Self {
            key: id.clone(),
            state: Mutex::default(),
        });
        calls.insert(id.clone(), Arc::downgrade(&call));
        call
    }

    /// The process's record of `id`, if a registry needs it. Upgraded under the table's lock,
    /// returned (and so dropped) after it: the last one's drop takes that lock.
    fn existing(id: &CallId) -> Option<Arc<Self>> {
        process_calls().get(id).and_then(Weak::upgrade)
    }

    fn lock(&self) -> MutexGuard<'_, ProcessState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for ProcessCall {
    fn drop(&mut self) {
        let mut calls = process_calls();
        // A new record for the same call may already have taken the slot.
        if calls.get(&self.key).is_some_and(|w| w.strong_count() == 0) {
            calls.remove(&self.key);
            // The table lives as long as the process: give back what a burst of calls grew it
            // to once it is mostly empty (halving at a quarter full keeps this amortised O(1)).
            let capacity = calls.capacity();
            if capacity > 64 && calls.len() < capacity / 4 {
                calls.shrink_to(capacity / 2);
            }
        }
    }
}

/// The retention of the episode recording now, so that a call Graph terminated can be revoked
/// at once, wherever its value is.
#[derive(Default)]
struct LiveRetention(Weak<RetentionShared>);

#[derive(Debug, Default)]
struct EntryState {
    retention: LiveRetention,
}

impl fmt::Debug for LiveRetention {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.strong_count() > 0 {
            "Recording"
        } else {
            "None"
        })
    }
}

/// The claim a live [`Call`](crate::Call) value holds on its entry: dropping it frees the
/// call for a new value.
pub(crate) struct Claim {
    pub(crate) entry: Arc<CallEntry>,
}

impl Calls {
    /// An empty registry whose calls audit to `audit`.
    pub fn new(audit: Arc<dyn AuditSink>) -> Self {
        Self::with_hooks(audit, None, None)
    }

    /// A registry whose dropped recording calls are told to `orphan`, and whose `recording`
    /// requests are told to `recording_sent` before they are handed over (the driver's).
    pub(crate) fn with_hooks(
        audit: Arc<dyn AuditSink>,
        orphan: Option<Arc<dyn OrphanHook>>,
        recording_sent: Option<Arc<dyn RecordingSent>>,
    ) -> Self {
        Self {
            registry: Arc::new(Registry {
                audit,
                orphan,
                recording_sent,
                entries: Mutex::new(HashMap::new()),
                capabilities: AtomicU64::new(1),
            }),
        }
    }

    /// Claims `id` for a new value (see [`Calls::open`]).
    ///
    /// # Errors
    /// [`Error::AlreadyOpen`] if a value for the same call (under any spelling) is alive in
    /// this process, through this registry or another.
    pub(crate) fn claim(&self, id: &CallId) -> Result<Claim, Error> {
        let entry = self.entry(id);
        {
            let mut state = entry.process.lock();
            if state.live {
                return Err(Error::AlreadyOpen {
                    call_id: id.clone(),
                });
            }
            state.live = true;
        }
        Ok(Claim { entry })
    }

    /// Whether a value for `id` (under any spelling) is alive in this process, through this
    /// registry or another.
    pub fn is_open(&self, id: &CallId) -> bool {
        ProcessCall::existing(id).is_some_and(|call| call.lock().live)
    }

    /// The audit sink the calls write to.
    pub fn audit(&self) -> &Arc<dyn AuditSink> {
        &self.registry.audit
    }

    /// The entry of `id`, created if nobody holds one.
    pub(crate) fn entry(&self, id: &CallId) -> Arc<CallEntry> {
        let mut entries = self.registry.lock_entries();
        if let Some(entry) = entries.get(id).and_then(Weak::upgrade) {
            return entry;
        }
        let entry = Arc::new(CallEntry {
            key: id.clone(),
            registry: self.registry.clone(),
            process: ProcessCall::of(id),
            state: Mutex::new(EntryState::default()),
        });
        entries.insert(entry.key.clone(), Arc::downgrade(&entry));
        entry
    }

    /// Revokes the retention of `id`'s current recording episode, if it has one (Graph
    /// terminated the call). Returns whether there was one to revoke.
    pub(crate) fn revoke(&self, id: &CallId) -> bool {
        let recording = self
            .existing_entry(id)
            .and_then(|entry| entry.lock().retention.0.upgrade());
        match recording {
            Some(shared) => {
                shared.revoke();
                true
            }
            None => false,
        }
    }

    /// Every call recording now (its retention not revoked), with its entry: what an
    /// instance that stops must end.
    pub(crate) fn recordings(&self) -> Vec<(Arc<CallEntry>, Arc<RetentionShared>)> {
        // Upgraded under the map's lock, dropped after it: an entry's drop takes that lock.
        let entries: Vec<Arc<CallEntry>> = self
            .registry
            .lock_entries()
            .values()
            .filter_map(Weak::upgrade)
            .collect();
        entries
            .into_iter()
            .filter_map(|entry| {
                let retention = entry.lock().retention.0.upgrade()?;
                (!retention.is_revoked()).then_some((entry, retention))
            })
            .collect()
    }

    fn existing_entry(&self, id: &CallId) -> Option<Arc<CallEntry>> {
        self.registry.lock_entries().get(id).and_then(Weak::upgrade)
    }
}

impl fmt::Debug for Calls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let entries = self.registry.lock_entries();
        f.debug_struct("Calls")
            .field("entries", &entries.len())
            .field("audit", &self.registry.audit)
            .finish_non_exhaustive()
    }
}

impl Registry {
    fn lock_entries(&self) -> MutexGuard<'_, HashMap<CallId, Weak<CallEntry>>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A later episode of the call has begun: a report of an earlier one must not be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Superseded {
    /// The episode that has begun.
    pub(crate) current: u64,
}

impl CallEntry {
    /// The trail the call's events go to.
    pub(crate) fn audit(&self) -> &dyn AuditSink {
        &*self.registry.audit
    }

    /// The hook told of the call's `recording` requests, if the registry has one.
    pub(crate) fn recording_sent(&self) -> Option<&dyn RecordingSent> {
        self.registry.recording_sent.as_deref()
    }

    fn lock(&self) -> MutexGuard<'_, EntryState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Begins a new recording episode and runs `first_step` (which audits it) before any
    /// report of an earlier episode can pass [`within_episode`](Self::within_episode).
    pub(crate) fn begin_episode<R>(&self, first_step: impl FnOnce(u64) -> R) -> (u64, R) {
        let mut state = self.process.lock();
        let episode = EPISODES.fetch_add(1, Ordering::Relaxed) + 1;
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
        let state = self.process.lock();
        if state.episode > episode {
            return Err(Superseded {
                current: state.episode,
            });
        }
        Ok(step())
    }

    /// Remembers the retention of the episode that entered `Recording`.
    pub(crate) fn set_recording(&self, shared: &Arc<RetentionShared>) {
        self.lock().retention = LiveRetention(Arc::downgrade(shared));
    }

    /// The latest episode begun on this call (0 for none).
    pub(crate) fn episode(&self) -> u64 {
        self.process.lock().episode
    }
}

/// Retention reaches its call's trail, capability numbers and orphan hook through its entry.
impl RetentionOwner for CallEntry {
    fn audit(&self) -> &dyn AuditSink {
        &*self.registry.audit
    }

    fn next_capability(&self) -> u64 {
        self.registry.capabilities.fetch_add(1, Ordering::Relaxed)
    }

    fn orphaned(self: Arc<Self>, retention: Arc<RetentionShared>) {
        if let Some(hook) = self.registry.orphan.clone() {
            hook.orphaned(self, retention.episode(), retention);
        }
    }
}

impl Drop for CallEntry {
    fn drop(&mut self) {
        let mut entries = self.registry.lock_entries();
        // A new entry for the same call may already have taken the slot.
        if entries
            .get(&self.key)
            .is_some_and(|w| w.strong_count() == 0)
        {
            entries.remove(&self.key);
        }
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        self.entry.process.lock().live = false;
    }
}

impl fmt::Debug for Claim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Claim")
            .field("episode", &self.entry.episode())
            .finish()
    }
}
