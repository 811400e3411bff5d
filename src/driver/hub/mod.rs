//! [`Hub`]: routes operation updates from the bot's notification webhook to the calls waiting
//! for them, remembers what it must (early updates, abandoned and settled requests) within a
//! budget of bytes and time, and says so whenever it forgets something (G10).
//!
//! Every lookup is an index lookup: waiting requests by normalised call id and by
//! `clientContext`, remembered requests by `clientContext` and by call and operation id. Ids are
//! normalised once when a request registers and once per update, so routing one completion
//! costs the same at 100 or 10,000 pending calls.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

use super::{DriverEvent, Forgotten, ForgottenKind, LateCompletion};
use crate::audit::{AuditEvent, AuditKind, AuditSink};
use crate::auth::Authenticated;
use crate::call::Call;
use crate::notification::{NotificationError, OperationUpdate, parse_notifications};
use crate::registry::Calls;
use crate::response::Operation;
use crate::seam::{MAX_CALL_ID_LEN, MAX_CLIENT_CONTEXT_LEN, normalize_id, revoke};
use crate::state::PendingRecording;
use crate::status::OperationStatus;
use crate::types::CallId;
use memory::{EndedCalls, Memory, heap};

mod memory;

/// The longest operation id the hub keeps, in bytes; longer ids cannot be Graph's (GUIDs, 36
/// bytes) and are dropped from an update before it is kept.
#[doc(hidden)]
pub const MAX_OPERATION_ID_LEN: usize = 256;

/// How a notification body was used. See [`Hub::deliver`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Delivery {
    /// Updates handed to a waiting call.
    pub routed: usize,
    /// Late completions surfaced as [`DriverEvent::LateCompletion`].
    pub late: usize,
    /// Updates kept because no call was waiting for them yet.
    pub held: usize,
    /// Entries ignored: not operations, duplicates, out of order, contradictions, or for
    /// settled or ended calls.
    pub ignored: usize,
    /// Calls Graph said ended ([`DriverEvent::CallTerminated`]).
    pub terminated: usize,
    /// The body was a resend of a message already applied ([`Hub::deliver_message`]): nothing
    /// in it was applied again.
    pub redelivered: bool,
}

/// The headers Graph's notification requests carry that say which message a body is: a resend
/// keeps the first delivery's id in the second header.
pub const MESSAGE_ID_HEADER: &str = "x-microsoft-skype-message-id";

/// See [`MESSAGE_ID_HEADER`].
pub const ORIGINAL_MESSAGE_ID_HEADER: &str = "x-microsoft-skype-original-message-id";

/// The longest message id the hub keeps, in bytes; a longer one is not Graph's and is ignored.
const MAX_MESSAGE_ID_LEN: usize = 256;

/// What the hub may remember, and for how long. See [`DriverConfig`](super::DriverConfig).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Budget {
    pub(crate) max_age: Duration,
    pub(crate) max_bytes: usize,
}

/// Routes operation updates from the bot's notification webhook to the calls waiting for them.
///
/// Correlates by normalised call id and operation id (lower case, no dashes), or by
/// `clientContext`; an update must agree with the request on every id both know (see
/// [`Call::is_for_this_request`]). Duplicates, out-of-order, contradicting and unknown updates
/// are ignored with an audit entry; an update that arrives before its call started waiting is
/// held. What the hub remembers (held updates, abandoned and settled requests) is bounded by
/// [`DriverConfig::memory`](super::DriverConfig::memory) and
/// [`DriverConfig::memory_bytes`](super::DriverConfig::memory_bytes); whatever it forgets is
/// audited and surfaced as [`DriverEvent::Forgotten`], and an abandoned request it can no
/// longer match is surfaced for reconciliation.
#[derive(Clone)]
pub struct Hub {
    state: Arc<Mutex<HubState>>,
    audit: Arc<dyn AuditSink>,
    events: mpsc::UnboundedSender<DriverEvent>,
    /// The driver's live calls, whose retention a termination revokes.
    calls: Calls,
}

impl fmt::Debug for Hub {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.lock();
        f.debug_struct("Hub")
            .field("waiting", &s.waiting.len())
            .field("abandoned", &s.abandoned.len())
            .field("settled", &s.settled.len())
            .field("held", &s.held.len())
            .field("bytes", &s.bytes())
            .finish()
    }
}

/// A `recording` request, in the form updates are matched against (ids normalised).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Key {
    pub(crate) call: String,
    pub(crate) operation: Option<String>,
    pub(crate) context: String,
    /// The recording episode the request began.
    pub(crate) episode: u64,
}

/// How an update relates to a request's [`Key`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Match {
    Yes,
    No,
    /// About this request by one id, contradicted by the other: audited and ignored.
    Contradiction,
}

/// An update with its ids normalised once, and its strings capped.
struct Update {
    call: Option<String>,
    operation: Option<String>,
    context: Option<String>,
    raw: OperationUpdate,
}

impl Update {
    fn new(mut raw: OperationUpdate) -> Self {
        // Strings from the network are capped before anything keeps them (G10): a value over
        // the bound cannot be Graph's, and is dropped.
        if raw
            .call_id
            .as_ref()
            .is_some_and(|c| c.len() > MAX_CALL_ID_LEN)
        {
            raw.call_id = None;
        }
        if raw
            .operation_id
            .as_ref()
            .is_some_and(|o| o.len() > MAX_OPERATION_ID_LEN)
        {
            raw.operation_id = None;
        }
        if raw
            .operation
            .id
            .as_ref()
            .is_some_and(|o| o.len() > MAX_OPERATION_ID_LEN)
        {
            raw.operation.id = None;
        }
        if raw
            .operation
            .client_context
            .as_ref()
            .is_some_and(|c| c.len() > MAX_CLIENT_CONTEXT_LEN)
        {
            raw.operation.client_context = None;
        }
        if raw.resource.as_ref().is_some_and(|r| r.len() > 1024) {
            raw.resource = None;
        }
        if raw
            .operation
            .odata_type
            .as_ref()
            .is_some_and(|t| t.len() > 256)
        {
            // Too long to be a recording operation's type; keep it refused, not unknown.
            raw.operation.odata_type = Some("(oversized)".to_owned());
        }
        if let Some(info) = &mut raw.operation.result_info
            && info.message.as_ref().is_some_and(|m| m.len() > 1024)
        {
            info.message = None;
        }
        if raw
            .operation
            .completion_reason
            .as_ref()
            .is_some_and(|r| r.len() > 256)
        {
            raw.operation.completion_reason = Some("(oversized)".to_owned());
        }
        Self {
            call: raw.normalized_call_id(),
            operation: raw.normalized_operation_id(),
            context: raw.operation.client_context.clone(),
            raw,
        }
    }

    /// The bytes this update holds on the heap while kept (see [`heap`]).
    fn bytes(&self) -> usize {
        let s = |o: &Option<String>| o.as_ref().map_or(0, |s| heap(s.len()));
        let op = &self.raw.operation;
        s(&self.call)
            + s(&self.operation)
            + s(&self.context)
            + s(&self.raw.resource)
            + s(&self.raw.call_id)
            + s(&self.raw.operation_id)
            + s(&op.id)
            + s(&op.client_context)
            + s(&op.odata_type)
            + s(&op.completion_reason)
            + op.result_info.as_ref().map_or(0, |i| s(&i.message))
    }

    /// The operation handed to a waiting call, with the id from the notification's path when
    /// `resourceData` carries none.
    fn operation(&self) -> Operation {
        let mut operation = self.raw.operation.clone();
        if operation.id.is_none() {
            operation.id.clone_from(&self.raw.operation_id);
        }
        operation
    }
}

impl Key {
    /// An update is about this request when it is a recording operation, its call id (if it
    /// has one) is this call, one of its ids matches and none contradicts. Without a call id
    /// it can match only by `clientContext`.
    fn relate(&self, update: &Update) -> Match {
        if !update.raw.operation.may_settle_recording() {
            return Match::No;
        }
        if update.call.as_deref().is_some_and(|c| c != self.call) {
            return Match::No;
        }
        let op = match (&self.operation, &update.operation) {
            (Some(mine), Some(theirs)) if update.call.is_some() => Some(mine == theirs),
            _ => None,
        };
        let context = update.context.as_deref().map(|c| c == self.context);
        match (op, context) {
            (Some(true), Some(false)) | (Some(false), Some(true)) => Match::Contradiction,
            (Some(true), None) | (None | Some(true), Some(true)) => Match::Yes,
            _ => Match::No,
        }
    }

    /// The bytes this key holds on the heap (see [`heap`]).
    fn bytes(&self) -> usize {
        heap(self.call.len())
            + self.operation.as_ref().map_or(0, |o| heap(o.len()))
            + heap(self.context.len())
    }

    /// The index keys a remembered request is found under.
    fn index(&self) -> Vec<String> {
        let mut keys = vec![format!("c:{}", self.context)];
        if let Some(op) = &self.operation {
            keys.push(format!("o:{}/{op}", self.call));
        }
        keys
    }
}

/// The index keys an update may find a remembered request under.
fn lookups(update: &Update) -> Vec<String> {
    let mut keys = Vec::with_capacity(2);
    if let Some(context) = &update.context {
        keys.push(format!("c:{context}"));
    }
    if let (Some(call), Some(op)) = (&update.call, &update.operation) {
        keys.push(format!("o:{call}/{op}"));
    }
    keys
}

/// A request whose call gave up waiting: its late `completed` is surfaced, never applied.
struct Abandoned {
    call_id: CallId,
    key: Key,
}

struct Waiting {
    id: u64,
    key: Key,
    tx: mpsc::UnboundedSender<(Authenticated, Operation)>,
}

struct HubState {
    next_id: u64,
    /// At most one per call: one live value per call (G7), one request in flight per value.
    waiting: HashMap<String, Waiting>,
    waiting_by_context: HashMap<String, String>,
    abandoned: Memory<Abandoned>,
    settled: Memory<Key>,
    held: Memory<(Authenticated, Update)>,
    /// Ended calls, to refuse further requests for them and ignore their updates; bounded by
    /// the same age and bytes as the others.
    ended: EndedCalls,
    /// The ids of notification messages applied (`X-Microsoft-Skype-Message-ID`), so that a
    /// resend is applied once.
    messages: Memory<()>,
    budget: Budget,
}

/// Something the hub forgot or must say, collected under the lock and reported after it.
enum Note {
    Forgotten(Forgotten),
    Unresolved(LateCompletion),
}

impl HubState {
    fn bytes(&self) -> usize {
        self.abandoned.bytes
            + self.settled.bytes
            + self.held.bytes
            + self.ended.bytes
            + self.messages.bytes
    }

    fn id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// Forgets what is older than the budget's age, then the oldest entries until the three
    /// memories fit its bytes. Every forgotten entry becomes a note.
    fn trim(&mut self, now: Instant, notes: &mut Vec<Note>) {
        let max_age = self.budget.max_age;
        while let Some(a) = self.abandoned.pop_expired(now, max_age) {
            notes.push(unresolved(a));
        }
        while let Some(key) = self.settled.pop_expired(now, max_age) {
            notes.push(forgotten(
                ForgottenKind::SettledRequest,
                &key.call,
                "expired",
            ));
        }
        while let Some((_, update)) = self.held.pop_expired(now, max_age) {
            notes.push(forgotten_update(&update, "expired"));
        }
        while let Some(call) = self.ended.pop(Some((now, max_age))) {
            notes.push(forgotten(ForgottenKind::EndedCall, &call, "expired"));
        }
        while self.messages.pop_expired(now, max_age).is_some() {
            notes.push(forgotten(ForgottenKind::DeliveredMessage, "", "expired"));
        }
        // Over the byte budget: settled requests go first (they only catch duplicates), then
        // held updates, then abandoned requests (each reported for reconciliation), and ended
        // calls last: forgetting one would let a late `completed` put a call Graph terminated
        // while it was pending into `Recording` (G8).
        while self.bytes() > self.budget.max_bytes {
            if self.messages.pop_oldest().is_some() {
                // Message ids only catch resends: forgotten first.
                notes.push(forgotten(
                    ForgottenKind::DeliveredMessage,
                    "",
                    "over budget",
                ));
            } else if let Some(key) = self.settled.pop_oldest() {
                notes.push(forgotten(
                    ForgottenKind::SettledRequest,
                    &key.call,
                    "over budget",
                ));
            } else if let Some((_, update)) = self.held.pop_oldest() {
                notes.push(forgotten_update(&update, "over budget"));
            } else if let Some(a) = self.abandoned.pop_oldest() {
                notes.push(unresolved(a));
            } else if let Some(call) = self.ended.pop(None) {
                notes.push(forgotten(ForgottenKind::EndedCall, &call, "over budget"));
            } else {
                break;
            }
        }
    }

    fn add_abandoned(&mut self, call_id: CallId, key: Key, notes: &mut Vec<Note>) {
        let now = Instant::now();
        if self
            .abandoned
            .find(&key.index(), |a| a.key == key)
            .is_none()
        {
            let id = self.id();
            let bytes = key.bytes() + heap(call_id.as_str().len());
            self.abandoned
                .insert(id, now, key.index(), bytes, Abandoned { call_id, key });
        }
        self.trim(now, notes);
    }

    fn add_settled(&mut self, key: Key, notes: &mut Vec<Note>) {
        let now = Instant::now();
        let id = self.id();
        let bytes = key.bytes();
        self.settled.insert(id, now, key.index(), bytes, key);
        self.trim(now, notes);
    }

    fn unregister(&mut self, call: &str, id: u64) {
        if let Some(w) = self.waiting.get(call)
            && w.id == id
            && let Some(w) = self.waiting.remove(call)
        {
            self.waiting_by_context.remove(&w.key.context);
        }
    }
}

fn forgotten(kind: ForgottenKind, call: &str, why: &str) -> Note {
    Note::Forgotten(Forgotten {
        kind,
        call_id: CallId::new(call).ok(),
        reason: why.to_owned(),
    })
}

fn forgotten_update(update: &Update, why: &str) -> Note {
    forgotten(
        ForgottenKind::EarlyUpdate,
        update.call.as_deref().unwrap_or_default(),
        why,
    )
}

fn unresolved(a: Abandoned) -> Note {
    Note::Unresolved(LateCompletion {
        call_id: a.call_id,
        episode: a.key.episode,
        operation_id: a.key.operation,
        client_context: a.key.context,
    })
}

/// A pending call's registration with the hub. Dropping it without [`Waiter::settle`] or
/// [`Waiter::close`] (the waiting future was cancelled) removes it from the hub and files the
/// request as abandoned, so that a late `completed` is still surfaced.
pub(crate) struct Waiter {
    hub: Hub,
    id: u64,
    call_id: CallId,
    key: Key,
    pub(crate) updates: mpsc::UnboundedReceiver<(Authenticated, Operation)>,
    done: bool,
}

impl Waiter {
    /// The request reached a final status.
    pub(crate) fn settle(mut self) {
        self.done = true;
        let mut notes = Vec::new();
        {
            let mut s = self.hub.lock();
            s.unregister(&self.key.call, self.id);
            s.add_settled(self.key.clone(), &mut notes);
        }
        self.hub.report(notes);
    }

    /// The deadline passed: unregister and file the request as abandoned in one step, and
    /// return the updates that were routed before that.
    pub(crate) fn close(mut self) -> Vec<(Authenticated, Operation)> {
        self.done = true;
        let mut notes = Vec::new();
        let mut routed = Vec::new();
        {
            let mut s = self.hub.lock();
            s.unregister(&self.key.call, self.id);
            while let Ok(update) = self.updates.try_recv() {
                routed.push(update);
            }
            s.add_abandoned(self.call_id.clone(), self.key.clone(), &mut notes);
        }
        self.hub.report(notes);
        routed
    }
}

impl Drop for Waiter {
    fn drop(&mut self) {
        if !self.done {
            let mut notes = Vec::new();
            {
                let mut s = self.hub.lock();
                s.unregister(&self.key.call, self.id);
                s.add_abandoned(self.call_id.clone(), self.key.clone(), &mut notes);
            }
            self.hub.report(notes);
        }
    }
}

impl Hub {
    pub(crate) fn new(
        audit: Arc<dyn AuditSink>,
        events: mpsc::UnboundedSender<DriverEvent>,
        budget: Budget,
        calls: Calls,
    ) -> Self {
        Self {
            state: Arc::new(Mutex::new(HubState {
                next_id: 0,
                waiting: HashMap::new(),
                waiting_by_context: HashMap::new(),
                abandoned: Memory::default(),
                settled: Memory::default(),
                held: Memory::default(),
                messages: Memory::default(),
                ended: EndedCalls::default(),
                budget,
            })),
            audit,
            events,
            calls,
        }
    }

    fn lock(&self) -> MutexGuard<'_, HubState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// How many bytes the hub's memories hold now (held updates, abandoned and settled
    /// requests, ended calls), as it counts them against
    /// [`DriverConfig::memory_bytes`](super::DriverConfig::memory_bytes).
    pub fn remembered_bytes(&self) -> usize {
        self.lock().bytes()
    }

    /// How many requests are waiting for a notification now.
    pub fn waiting(&self) -> usize {
        self.lock().waiting.len()
    }

    /// Graph says the call is gone (a `terminated` notification, or `8522` "Call not found"
    /// in an answer): its retention is revoked at once, no request is sent for it again, the
    /// trail records `call_terminated`, and the bot gets [`DriverEvent::CallTerminated`].
    pub(crate) fn call_gone(&self, call_id: CallId, info: Option<crate::response::ResultInfo>) {
        self.mark_ended(&call_id);
        let revoked = revoke(&self.calls, &call_id);
        tracing::info!(%call_id, revoked, "Graph says the call is gone");
        let event = AuditEvent::now(
            call_id.normalized(),
            AuditKind::CallTerminated {
                code: info.as_ref().and_then(|i| i.code),
                subcode: info.as_ref().and_then(|i| i.subcode),
                message: info.as_ref().and_then(|i| i.message.clone()),
            },
        );
        if let Err(e) = self.audit.record(&event) {
            tracing::error!(error = %e, "could not audit the end of a call");
        }
        self.send(DriverEvent::CallTerminated {
            call_id,
            result_info: info,
        });
    }

    pub(crate) fn mark_ended(&self, call: &CallId) {
        let now = Instant::now();
        let mut notes = Vec::new();
        {
            let mut s = self.lock();
            s.ended.insert(call.normalized(), now);
            s.trim(now, &mut notes);
        }
        self.report(notes);
    }

    pub(crate) fn abandon(&self, call: &CallId, key: Key) {
        let mut notes = Vec::new();
        self.lock().add_abandoned(call.clone(), key, &mut notes);
        self.report(notes);
    }

    /// Takes every abandoned request, whose outcome is unknown: the instance is stopping and
    /// reports `failed` for each. Returns each one's call and recording episode.
    pub(crate) fn take_abandoned(&self) -> Vec<(CallId, u64)> {
        let mut s = self.lock();
        let mut taken = Vec::new();
        while let Some(a) = s.abandoned.pop_oldest() {
            taken.push((a.call_id, a.key.episode));
        }
        taken
    }

    pub(crate) fn has_ended(&self, call: &CallId) -> bool {
        self.lock().ended.contains(call.normalized())
    }

    pub(crate) fn register(&self, call: &Call<PendingRecording>) -> Waiter {
        let (tx, updates) = mpsc::unbounded_channel();
        let key = Key {
            call: call.id().normalized().to_owned(),
            operation: call.operation_id().map(normalize_id),
            context: call.client_context().to_owned(),
            episode: call.episode(),
        };
        let mut s = self.lock();
        let id = s.id();
        // Updates that raced ahead of the registration: found by call id or context.
        let mut early = Vec::new();
        let lookups = [format!("k:{}", key.call), format!("c:{}", key.context)];
        while let Some(held) = s.held.find(&lookups, |(_, u)| key.relate(u) == Match::Yes) {
            if let Some((proof, update)) = s.held.remove(held) {
                early.push((proof, update.operation()));
            }
        }
        for update in early {
            let _ = tx.send(update);
        }
        if let Some(old) = s.waiting.insert(
            key.call.clone(),
            Waiting {
                id,
                key: key.clone(),
                tx,
            },
        ) {
            // One value per call, one request in flight: a stale entry can only be a leftover.
            s.waiting_by_context.remove(&old.key.context);
        }
        s.waiting_by_context
            .insert(key.context.clone(), key.call.clone());
        Waiter {
            hub: self.clone(),
            id,
            call_id: call.id().clone(),
            key,
            updates,
            done: false,
        }
    }

    /// [`deliver`](Self::deliver), applying each notification message once: Graph resends a
    /// message it thinks was not received, with `X-Microsoft-Skype-Original-Message-ID` set to
    /// the first delivery's `X-Microsoft-Skype-Message-ID` (msteams-docs#9170). A body whose
    /// message id, or original message id, was applied within
    /// [`DriverConfig::memory`](super::DriverConfig::memory) is acknowledged but not applied again
    /// ([`Delivery::redelivered`]), and the trail records `notification_redelivered`. Pass the
    /// request's headers; ids that are absent, not ASCII or over 256 bytes are not used. Ids
    /// are compared as other ids are, ignoring case and dashes, so a GUID and its upper-case
    /// dash-less spelling name the same message.
    ///
    /// # Errors
    /// As [`deliver`](Self::deliver).
    pub fn deliver_message(
        &self,
        proof: &Authenticated,
        headers: &http::HeaderMap,
        body: &[u8],
    ) -> Result<Delivery, NotificationError> {
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
                .filter(|v| !v.is_empty() && v.len() <= MAX_MESSAGE_ID_LEN)
        };
        let (message, original) = (
            header(MESSAGE_ID_HEADER),
            header(ORIGINAL_MESSAGE_ID_HEADER),
        );
        // Message ids are GUIDs, compared in the one form ids are normalised to.
        let ids: Vec<String> = message
            .iter()
            .chain(&original)
            .map(|v| format!("m:{}", normalize_id(v)))
            .collect();
        if ids.is_empty() {
            return self.deliver(proof, body);
        }
        let mut notes = Vec::new();
        let seen = {
            let mut s = self.lock();
            let seen = s.messages.find(&ids, |()| true).is_some();
            if !seen {
                // Marked before it is applied: a resend racing the first delivery is caught.
                let (now, id) = (Instant::now(), s.id());
                let bytes = 0;
                s.messages.insert(id, now, ids.clone(), bytes, ());
                s.trim(now, &mut notes);
            }
            seen
        };
        self.report(notes);
        if !seen {
            return self.deliver(proof, body);
        }
        tracing::info!(message_id = ?message, "notification resent; applied once already");
        let event = AuditEvent::now(
            "",
            AuditKind::NotificationRedelivered {
                message_id: message.map(str::to_owned),
                original_message_id: original.map(str::to_owned),
                via: proof.method().to_string(),
            },
        );
        if let Err(e) = self.audit.record(&event) {
            tracing::error!(error = %e, "could not audit a resent notification");
        }
        Ok(Delivery {
            redelivered: true,
            ..Delivery::default()
        })
    }

    /// Hands an authenticated `commsNotifications` body to the waiting calls.
    ///
    /// `proof` shows the webhook request was authenticated (see [`crate::auth`]); without it a
    /// forged `completed` could unlock retention. The cost per update does not grow with the
    /// number of waiting calls or remembered requests.
    ///
    /// # Errors
    /// [`NotificationError`] if the body is not a `commsNotifications` object; nothing is
    /// routed then. Individual entries that cannot be used are ignored, not errors.
    ///
    /// # Example: Graph hangs up
    ///
    /// The notification Graph posts to the call's `callbackUri` when the call ends, in full, as
    /// Microsoft documents it: "Notification - terminated" in
    /// [Delete call](https://learn.microsoft.com/en-us/graph/api/call-delete)
    /// (`api-reference/v1.0/api/call-delete.md` in microsoftgraph/microsoft-graph-docs-contrib).
    /// The call's retention is revoked at once, the bot is told why, and nothing more is sent for
    /// the call.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # tokio::runtime::Builder::new_current_thread().enable_time().build()?.block_on(async {
    /// use std::io::Write;
    /// use std::sync::Arc;
    /// use recording_status::audit::{AuditKind, MemorySink};
    /// use recording_status::auth::Authenticated;
    /// use recording_status::driver::{Driver, DriverConfig, DriverEvent, Started};
    /// use recording_status::testing::{ScriptedTransport, Step};
    /// use recording_status::{AccessToken, Graph, RetentionWriter, StopError};
    ///
    /// let transport = ScriptedTransport::new().then(Step::completed());
    /// let graph = Graph::new(transport, AccessToken::new("t"));
    /// let audit = Arc::new(MemorySink::default());
    /// let (driver, mut events) = Driver::new(graph, audit.clone(), DriverConfig::default());
    /// let call = driver.call("57dab8b1-894c-409a-b240-bd8beae78896".parse()?)?;
    /// let Started::Recording(call) = driver.begin_recording(call).await? else {
    ///     return Err("not acknowledged: nothing may be persisted".into());
    /// };
    /// let mut media = RetentionWriter::new(call.retention_handle()?, Vec::new());
    /// media.write_all(b"frame")?;
    ///
    /// // POST https://bot.contoso.com/api/calls
    /// // Content-Type: application/json
    /// let body = br##"{
    ///   "@odata.type": "#microsoft.graph.commsNotifications",
    ///   "value": [
    ///     {
    ///       "@odata.type": "#microsoft.graph.commsNotification",
    ///       "changeType": "deleted",
    ///       "resourceUrl": "/communications/calls/57dab8b1-894c-409a-b240-bd8beae78896",
    ///       "resourceData": {
    ///         "@odata.type": "#microsoft.graph.call",
    ///         "state": "terminated",
    ///         "resultInfo": {
    ///           "@odata.type": "#microsoft.graph.resultInfo",
    ///           "code": "200",
    ///           "subcode": "5001",
    ///           "message": "The conversation has ended."
    ///         }
    ///       }
    ///     }
    ///   ]
    /// }"##;
    /// // The webhook validated the request's bearer token (see `recording_status::webhook`).
    /// let proof = Authenticated::danger_authenticated_elsewhere("validated by the web stack");
    /// let delivery = driver.hub().deliver(&proof, body)?;
    /// assert_eq!(delivery.terminated, 1);
    ///
    /// // Revoked at once: no more media reaches storage.
    /// assert!(media.write_all(b"frame").is_err());
    /// // The bot is told, with Graph's reason (codes arrive as strings here, read as numbers).
    /// let Some(DriverEvent::CallTerminated { result_info: Some(info), .. }) = events.recv().await
    /// else {
    ///     return Err("the end of the call is surfaced".into());
    /// };
    /// assert_eq!((info.code, info.subcode), (Some(200), Some(5001)));
    /// assert!(audit.events().iter().any(|e| matches!(e.kind, AuditKind::CallTerminated { .. })));
    /// // Nothing more is sent for the call: stopping hands the value back, to be ended.
    /// let Err(StopError::StillRecording { call, .. }) = driver.stop_recording(call).await else {
    ///     return Err("a call Graph ended is not reported to".into());
    /// };
    /// drop(media);
    /// driver.end(*call);
    /// assert_eq!(driver.graph().transport().statuses(), ["recording"]);
    /// # Ok(())
    /// # })
    /// # }
    /// ```
    pub fn deliver(
        &self,
        proof: &Authenticated,
        body: &[u8],
    ) -> Result<Delivery, NotificationError> {
        let parsed = parse_notifications(body)?;
        let mut delivery = Delivery {
            ignored: parsed.ignored.len(),
            ..Delivery::default()
        };
        // Calls Graph ended: each is blocked and revoked at once (outside the hub's lock:
        // revocation waits for writes in flight).
        let mut terminated = Vec::new();
        for update in parsed.calls {
            let id = update
                .call_id
                .as_deref()
                .filter(|_| update.is_terminated())
                .and_then(|id| CallId::new(id).ok());
            match id {
                Some(id) => terminated.push((id, update.result_info)),
                None => delivery.ignored += 1,
            }
        }
        delivery.terminated = terminated.len();
        let now = Instant::now();
        let mut ignored = Vec::new();
        let mut late = Vec::new();
        let mut notes = Vec::new();
        {
            let mut s = self.lock();
            s.trim(now, &mut notes);
            for update in parsed.updates {
                let update = Update::new(update);
                match self.route(&mut s, proof, update, now, &mut late, &mut notes) {
                    Routed::Waiter => delivery.routed += 1,
                    Routed::Late => delivery.late += 1,
                    Routed::Held => delivery.held += 1,
                    Routed::Ignored(update, why) => {
                        delivery.ignored += 1;
                        ignored.push((update, why));
                    }
                }
            }
        }
        let audit = |call: &str, kind| {
            if let Err(e) = self.audit.record(&AuditEvent::now(call, kind)) {
                tracing::error!(error = %e, "could not audit a notification");
            }
        };
        audit(
            "",
            AuditKind::NotificationAccepted {
                via: proof.method().to_string(),
                routed: delivery.routed,
                ignored: delivery.ignored,
            },
        );
        for (update, reason) in ignored {
            audit(
                update.call.as_deref().unwrap_or_default(),
                AuditKind::NotificationIgnored {
                    operation_id: update.raw.operation_id.clone(),
                    client_context: update.context.clone(),
                    status: update
                        .raw
                        .operation
                        .status
                        .as_ref()
                        .map(|s| s.as_str().to_owned()),
                    reason: reason.to_owned(),
                },
            );
        }
        for (call_id, info) in terminated {
            self.call_gone(call_id, info);
        }
        for l in late {
            tracing::warn!(call_id = %l.call_id, "late `completed` for an abandoned recording request");
            audit(
                l.call_id.normalized(),
                AuditKind::LateCompletion {
                    operation_id: l.operation_id.clone(),
                    client_context: l.client_context.clone(),
                },
            );
            self.send(DriverEvent::LateCompletion(l));
        }
        self.report(notes);
        Ok(delivery)
    }

    fn route(
        &self,
        s: &mut HubState,
        proof: &Authenticated,
        update: Update,
        now: Instant,
        late: &mut Vec<LateCompletion>,
        notes: &mut Vec<Note>,
    ) -> Routed {
        if !update.raw.operation.may_settle_recording() {
            return Routed::Ignored(Box::new(update), "not a recording operation");
        }
        // 1. The request waiting on this call, or on this context; never for a call that
        // ended (Graph terminated it while the request was pending).
        let waiting_call = update.call.clone().or_else(|| {
            update
                .context
                .as_ref()
                .and_then(|c| s.waiting_by_context.get(c).cloned())
        });
        if waiting_call.as_ref().is_some_and(|c| s.ended.contains(c)) {
            return Routed::Ignored(Box::new(update), "for a call that ended");
        }
        if let Some(w) = waiting_call.as_ref().and_then(|c| s.waiting.get(c)) {
            match w.key.relate(&update) {
                Match::Yes => {
                    if w.tx.send((proof.clone(), update.operation())).is_ok() {
                        return Routed::Waiter;
                    }
                }
                Match::Contradiction => {
                    return Routed::Ignored(
                        Box::new(update),
                        "operation id and clientContext contradict the waiting request",
                    );
                }
                Match::No => {}
            }
        }
        let keys = lookups(&update);
        // 2. A request the call gave up on: a late completion.
        if let Some(id) = s
            .abandoned
            .find(&keys, |a| a.key.relate(&update) == Match::Yes)
        {
            if update.raw.operation.status != Some(OperationStatus::Completed) {
                return Routed::Ignored(Box::new(update), "for an abandoned operation");
            }
            if let Some(a) = s.abandoned.remove(id) {
                // Surfaced once; later copies count as duplicates.
                late.push(LateCompletion {
                    call_id: a.call_id,
                    episode: a.key.episode,
                    operation_id: update.raw.operation_id.clone().or(a.key.operation.clone()),
                    client_context: a.key.context.clone(),
                });
                s.add_settled(a.key, notes);
                return Routed::Late;
            }
        }
        // 3. A request that already settled: a duplicate or out of order.
        if s.settled
            .find(&keys, |k| k.relate(&update) == Match::Yes)
            .is_some()
        {
            return Routed::Ignored(
                Box::new(update),
                "duplicate or out of order for a settled operation",
            );
        }
        if update.call.as_ref().is_some_and(|c| s.ended.contains(c)) {
            return Routed::Ignored(Box::new(update), "for a call that ended");
        }
        // 4. Nobody is waiting yet: hold it (capped, counted, bounded).
        let mut held_keys = Vec::with_capacity(2);
        if let Some(call) = &update.call {
            held_keys.push(format!("k:{call}"));
        }
        if let Some(context) = &update.context {
            held_keys.push(format!("c:{context}"));
        }
        if held_keys.is_empty() {
            return Routed::Ignored(
                Box::new(update),
                "carries neither a call id nor a clientContext",
            );
        }
        let id = s.id();
        let bytes = update.bytes() + proof.tenant().map_or(0, |t| heap(t.len()));
        s.held
            .insert(id, now, held_keys, bytes, (proof.clone(), update));
        s.trim(now, notes);
        Routed::Held
    }

    fn send(&self, event: DriverEvent) {
        if self.events.send(event).is_err() {
            tracing::error!(
                "a driver event could not be surfaced: the DriverEvents receiver was dropped"
            );
        }
    }

    /// Audits and surfaces what the hub forgot.
    fn report(&self, notes: Vec<Note>) {
        for note in notes {
            match note {
                Note::Forgotten(f) => {
                    tracing::warn!(kind = ?f.kind, reason = %f.reason, "the notification hub forgot an entry");
                    let call = f.call_id.as_ref().map_or("", |c| c.normalized());
                    if let Err(e) = self.audit.record(&AuditEvent::now(
                        call,
                        AuditKind::HubForgot {
                            what: f.kind.as_str().to_owned(),
                            reason: f.reason.clone(),
                        },
                    )) {
                        tracing::error!(error = %e, "could not audit a forgotten hub entry");
                    }
                    self.send(DriverEvent::Forgotten(f));
                }
                Note::Unresolved(l) => {
                    tracing::warn!(call_id = %l.call_id, "an abandoned request can no longer be matched; reconcile it");
                    if let Err(e) = self.audit.record(&AuditEvent::now(
                        l.call_id.normalized(),
                        AuditKind::HubForgot {
                            what: ForgottenKind::AbandonedRequest.as_str().to_owned(),
                            reason: format!(
                                "registry episode {}: outcome never learned; reported for reconciliation",
                                l.episode
                            ),
                        },
                    )) {
                        tracing::error!(error = %e, "could not audit a forgotten hub entry");
                    }
                    self.send(DriverEvent::OutcomeUnknown(l));
                }
            }
        }
    }
}

/// Where one update went.
enum Routed {
    Waiter,
    Late,
    Held,
    Ignored(Box<Update>, &'static str),
}
