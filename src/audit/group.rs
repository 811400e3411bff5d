//! Group commit: the events of concurrent callers written together, each caller returning once
//! the write that carried its own events is done. [`JsonLinesSink`](super::JsonLinesSink)
//! writes its file this way; [`GroupCommit`] lends the same queue to a bot's own storage.
//!
//! Whoever finds no write in progress writes its events alone. Callers arriving meanwhile
//! queue theirs, consecutively, in one batch; once the write in progress ends, the first of
//! them to get the queue's lock takes the whole batch and writes it with one call of the
//! storage (one write, one sync), and every caller of the batch gets that write's outcome.

use std::fmt;
use std::io;
use std::mem;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, PoisonError};

use chrono::{DateTime, Utc};

use super::{AuditEvent, AuditSink};
use crate::error::AuditError;

/// What a leader writes: the caller's own events (no one else's were waiting), or a batch of
/// queued entries from several callers.
pub(super) enum Writing<'a, T> {
    /// The caller's events, alone.
    Alone(&'a [AuditEvent]),
    /// Entries of the callers of one batch, in queue order.
    Together(&'a [T]),
}

/// The queue of callers waiting for a write, and their outcomes. `T` is what waits in the
/// queue for an event (the event itself, or its serialized form).
pub(super) struct Group<T> {
    queue: Mutex<Queue<T>>,
    woken: Condvar,
    /// `queue.writing`, readable without the lock, for followers spinning.
    busy: AtomicBool,
    /// Whether followers spin before parking (not on a single core).
    spin: bool,
    /// Writes made (alone or together).
    writes: AtomicU64,
    /// Events those writes carried.
    events: AtomicU64,
}

/// The callers waiting for a write, and whether one is in progress.
struct Queue<T> {
    entries: Vec<T>,
    /// How many events `entries` holds.
    events: u64,
    /// The batch `entries` will be written in.
    batch: Arc<Batch>,
    writing: bool,
    /// Callers parked on `woken`.
    waiting: usize,
}

impl<T> Queue<T> {
    /// No one writes or waits to: a caller may write its events alone.
    fn idle(&self) -> bool {
        !self.writing && self.entries.is_empty()
    }
}

/// The outcome of one write, for everyone whose events it carried.
#[derive(Default)]
struct Batch {
    /// The write's outcome: what it returned (for the trail's file, its last `seq`).
    done: OnceLock<Result<u64, Refusal>>,
}

/// Why a batch was refused, for each of its callers (an `io::Error` cannot be cloned).
#[derive(Debug, Clone)]
pub(super) struct Refusal {
    kind: io::ErrorKind,
    pub(super) message: String,
}

impl From<&AuditError> for Refusal {
    fn from(e: &AuditError) -> Self {
        match e {
            AuditError::Io(e) => Self {
                kind: e.kind(),
                message: e.to_string(),
            },
            _ => Self {
                kind: io::ErrorKind::InvalidData,
                message: e.to_string(),
            },
        }
    }
}

impl Refusal {
    pub(super) fn into_error(self) -> AuditError {
        AuditError::Io(io::Error::new(self.kind, self.message))
    }
}

impl<T> Group<T> {
    pub(super) fn new() -> Self {
        Self {
            queue: Mutex::new(Queue {
                entries: Vec::new(),
                events: 0,
                batch: Arc::default(),
                writing: false,
                waiting: 0,
            }),
            woken: Condvar::new(),
            busy: AtomicBool::new(false),
            spin: std::thread::available_parallelism().is_ok_and(|n| n.get() > 1),
            writes: AtomicU64::new(0),
            events: AtomicU64::new(0),
        }
    }

    /// Writes `events` with `write`, alone or with other callers' events, and returns the
    /// outcome of the write that carried them (what `write` returned: for the trail's file,
    /// the `seq` of its last line). `entry` makes the queued form of an event (outside the
    /// locks); `write` must write all of what it is given or none of it.
    pub(super) fn submit(
        &self,
        events: &[AuditEvent],
        entry: impl Fn(&AuditEvent) -> Result<T, AuditError>,
        mut write: impl FnMut(Writing<'_, T>) -> Result<u64, AuditError>,
    ) -> Result<u64, AuditError> {
        let count = events.len() as u64;
        let queue = self.queue();
        if queue.idle() {
            // No one writes or waits: write these events alone, as they are.
            let lead = self.lead(queue, None, count);
            let result = write(Writing::Alone(events));
            drop(lead);
            return result;
        }
        drop(queue);
        // Made outside the locks, to wait in the queue for the writer.
        let entries = events.iter().map(entry).collect::<Result<Vec<_>, _>>()?;
        let mut queue = self.queue();
        if queue.idle() {
            // The writer finished meanwhile, and no one waits.
            let lead = self.lead(queue, None, count);
            let result = write(Writing::Together(&entries));
            drop(lead);
            return result;
        }
        // Consecutive in the queue, so consecutive in the write.
        queue.entries.extend(entries);
        queue.events += count;
        let batch = Arc::clone(&queue.batch);
        // Follow while another caller writes; lead once no one does and our batch waits.
        loop {
            if let Some(done) = batch.done.get() {
                return done.clone().map_err(Refusal::into_error);
            }
            if !queue.writing {
                break;
            }
            // A write to the page cache takes a few microseconds: spin a little before
            // parking, which costs two context switches and a system call.
            drop(queue);
            if self.spin {
                spin_until(|| batch.done.get().is_some() || !self.busy.load(Ordering::Acquire));
            }
            queue = self.queue();
            if batch.done.get().is_some() || !queue.writing {
                continue;
            }
            queue.waiting += 1;
            queue = self
                .woken
                .wait(queue)
                .unwrap_or_else(PoisonError::into_inner);
            queue.waiting -= 1;
        }
        // No write in progress and our batch not written: it is still the queue's batch.
        let entries = mem::take(&mut queue.entries);
        let count = mem::take(&mut queue.events);
        queue.batch = Arc::default();
        let lead = self.lead(queue, Some(batch), count);
        let result = write(Writing::Together(&entries));
        if let Some(batch) = &lead.batch {
            let _ = batch
                .done
                .set(result.as_ref().copied().map_err(Refusal::from));
        }
        drop(lead);
        result
    }

    /// Writes made so far, and the events they carried (refused ones included).
    pub(super) fn counts(&self) -> (u64, u64) {
        (
            self.writes.load(Ordering::Relaxed),
            self.events.load(Ordering::Relaxed),
        )
    }

    /// Whether a write is in progress.
    #[cfg(test)]
    pub(super) fn writing(&self) -> bool {
        self.queue().writing
    }

    /// How many entries wait for the next write.
    #[cfg(test)]
    pub(super) fn queued(&self) -> usize {
        self.queue().entries.len()
    }

    fn queue(&self) -> MutexGuard<'_, Queue<T>> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Marks a write of `events` events in progress (under the queue's lock) until the
    /// returned guard drops.
    fn lead(
        &self,
        mut queue: MutexGuard<'_, Queue<T>>,
        batch: Option<Arc<Batch>>,
        events: u64,
    ) -> Lead<'_, T> {
        queue.writing = true;
        self.busy.store(true, Ordering::Release);
        self.writes.fetch_add(1, Ordering::Relaxed);
        self.events.fetch_add(events, Ordering::Relaxed);
        Lead { group: self, batch }
    }
}

/// The caller writing a batch. However it leaves (even by a panic), the batch gets an outcome
/// and the next caller may lead.
struct Lead<'a, T> {
    group: &'a Group<T>,
    /// The batch of followers written too (none when the leader writes alone).
    batch: Option<Arc<Batch>>,
}

impl<T> Drop for Lead<'_, T> {
    fn drop(&mut self) {
        if let Some(batch) = &self.batch {
            let _ = batch.done.set(Err(Refusal {
                kind: io::ErrorKind::Other,
                message: "audit sink writer panicked".to_owned(),
            }));
        }
        let mut queue = self.group.queue();
        queue.writing = false;
        self.group.busy.store(false, Ordering::Release);
        // Waking costs a system call even with no one waiting.
        if queue.waiting > 0 {
            self.group.woken.notify_all();
        }
    }
}

/// Calls `ready` with pauses that grow, then between yields of the thread, for a few
/// microseconds at most; returns whether it became true.
fn spin_until(ready: impl Fn() -> bool) -> bool {
    for round in 0..10 {
        if ready() {
            return true;
        }
        if round < 7 {
            for _ in 0..1u32 << round {
                std::hint::spin_loop();
            }
        } else {
            std::thread::yield_now();
        }
    }
    ready()
}

/// Storage that [`GroupCommit`] writes batches of events to: a database table written in one
/// transaction per batch, a file synced once per batch.
pub trait GroupWrite: Send + fmt::Debug {
    /// Makes `events` durable, in order, all of them or none: on `Err`, none of them is in
    /// the storage, nor ever appears there later (roll the transaction back, cut the file
    /// back). Every caller whose events the batch carried gets the outcome.
    ///
    /// # Errors
    /// The storage failed; the steps the events describe are not taken.
    fn write(&mut self, events: &[AuditEvent]) -> Result<(), AuditError>;
}

/// An [`AuditSink`] over a bot's own storage ([`GroupWrite`]) that writes the events of
/// concurrent callers together, as [`JsonLinesSink`](super::JsonLinesSink) writes its file:
/// while one batch is being written, the events of every caller that arrives are queued, and
/// the next write carries all of them; each caller returns once the write that carried its own
/// events is done, with that write's outcome. A refused write refuses exactly the events it
/// carried. Like the crate's sinks, it keeps the trail in time order: see
/// [`MemorySink`](super::MemorySink).
///
/// It says it [`blocks`](AuditSink::blocks), so the driver runs each step that writes to it
/// off tokio's worker threads: the steps of many calls wait on it at once, and share writes.
///
/// # Example
/// ```
/// use std::sync::Arc;
/// use recording_status::audit::{AuditEvent, AuditKind, AuditSink, GroupCommit, GroupWrite};
/// use recording_status::error::AuditError;
///
/// /// Stands in for a database: one transaction per batch.
/// #[derive(Debug, Default)]
/// struct Table(Vec<AuditEvent>);
///
/// impl GroupWrite for Table {
///     fn write(&mut self, events: &[AuditEvent]) -> Result<(), AuditError> {
///         self.0.extend_from_slice(events); // BEGIN; INSERT …; COMMIT;
///         Ok(())
///     }
/// }
///
/// let sink = Arc::new(GroupCommit::new(Table::default()));
/// let threads: Vec<_> = (0..4)
///     .map(|n| {
///         let sink = sink.clone();
///         std::thread::spawn(move || {
///             sink.record(&AuditEvent::now(format!("c{n}"), AuditKind::RetentionEnded { capability: 1 }))
///         })
///     })
///     .collect();
/// for t in threads {
///     t.join().unwrap()?;
/// }
/// let (writes, events) = sink.counts();
/// assert_eq!(events, 4);
/// assert!((1..=4).contains(&writes));
/// assert_eq!(sink.with_storage(|table| table.0.len()), 4);
/// # Ok::<(), AuditError>(())
/// ```
pub struct GroupCommit<W> {
    group: Group<AuditEvent>,
    storage: Mutex<Stamped<W>>,
}

/// The storage, and the time of the last event it took.
struct Stamped<W> {
    storage: W,
    at: Option<DateTime<Utc>>,
    /// The batch being written, its times kept in order.
    buf: Vec<AuditEvent>,
}

impl<W: GroupWrite> Stamped<W> {
    /// Writes `events` with each `at` no earlier than the one before it, across batches too:
    /// an event stamped before the one queued ahead of it (two tasks each stamped an event,
    /// and the later stamp was queued first) is written with the earlier event's time, so that
    /// [`verify`](super::verify) never finds time going back in a trail it wrote.
    fn write(&mut self, events: &[AuditEvent]) -> Result<(), AuditError> {
        let mut buf = mem::take(&mut self.buf);
        buf.clear();
        let mut at = self.at;
        buf.extend(events.iter().map(|event| {
            let event = event.no_earlier_than(at);
            at = Some(event.at);
            event
        }));
        let written = self.storage.write(&buf);
        if written.is_ok() {
            self.at = at;
        }
        self.buf = buf;
        written
    }
}

impl<W: GroupWrite> GroupCommit<W> {
    /// Writes to `storage`, grouping concurrent callers.
    pub fn new(storage: W) -> Self {
        Self {
            group: Group::new(),
            storage: Mutex::new(Stamped {
                storage,
                at: None,
                buf: Vec::new(),
            }),
        }
    }

    /// Writes made so far (each one [`GroupWrite::write`]), and the events they carried.
    pub fn counts(&self) -> (u64, u64) {
        self.group.counts()
    }

    /// Calls `f` with the storage, between writes.
    pub fn with_storage<R>(&self, f: impl FnOnce(&mut W) -> R) -> R {
        f(&mut self.storage().storage)
    }

    /// The storage back.
    pub fn into_inner(self) -> W {
        self.storage
            .into_inner()
            .unwrap_or_else(PoisonError::into_inner)
            .storage
    }

    fn storage(&self) -> MutexGuard<'_, Stamped<W>> {
        self.storage.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl<W> fmt::Debug for GroupCommit<W>
where
    W: fmt::Debug,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (writes, events) = self.group.counts();
        f.debug_struct("GroupCommit")
            .field("writes", &writes)
            .field("events", &events)
            .finish_non_exhaustive()
    }
}

impl<W: GroupWrite> AuditSink for GroupCommit<W> {
    fn record(&self, event: &AuditEvent) -> Result<(), AuditError> {
        self.record_batch(std::slice::from_ref(event))
    }

    /// All of `events` or none, written with other callers' events or alone.
    fn record_batch(&self, events: &[AuditEvent]) -> Result<(), AuditError> {
        if events.is_empty() {
            return Ok(());
        }
        self.group
            .submit(
                events,
                |e| Ok(e.clone()),
                |writing| match writing {
                    Writing::Alone(events) | Writing::Together(events) => {
                        self.storage().write(events).map(|()| 0)
                    }
                },
            )
            .map(|_| ())
    }

    fn blocks(&self) -> bool {
        true
    }
}
