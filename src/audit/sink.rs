//! Where audit events go: the [`AuditSink`] trait, [`MemorySink`] and [`JsonLinesSink`].

use std::fmt;
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{self, Read as _, Seek as _, SeekFrom, Write as _};
use std::mem;
use std::ops::Deref;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use chrono::{DateTime, Datelike as _, Timelike as _, Utc};

use super::chain::{self, GENESIS, Hasher, TornTail};
use super::checkpoint::{self, Checkpointer};
use super::durable::{self, SyncFn, Syncer};
use super::group::{Group, Refusal, Writing};
use super::{AuditEvent, AuditKind, CheckpointOptions, CheckpointStatus, SignedCheckpoint};
use crate::error::AuditError;

/// Where audit events go. Implementations must persist (or at least accept) the event before
/// returning `Ok`: the crate proceeds with the step only afterwards.
pub trait AuditSink: Send + Sync + fmt::Debug {
    /// Records one event.
    ///
    /// # Errors
    /// Any failure to record; the step the event describes is then not taken, where it can be.
    fn record(&self, event: &AuditEvent) -> Result<(), AuditError>;

    /// Records `events` in order, for steps that follow each other with nothing visible
    /// between them (so that the sink can write them together: [`JsonLinesSink`] writes them
    /// with one write, and one sync, as consecutive lines).
    ///
    /// [`JsonLinesSink`] and [`MemorySink`] record all of them or none: on `Err`, none of
    /// them is in the trail, nor ever appears later. This default records them one at a time
    /// and stops at the first refusal, so on `Err` the events before the refused one are
    /// recorded; a sink that can do better should override it.
    ///
    /// # Errors
    /// As [`record`](Self::record); the steps the events describe are then not taken.
    ///
    /// # Example
    /// ```
    /// use recording_status::audit::{AuditEvent, AuditKind, AuditSink, JsonLinesSink};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let path = dir.path().join("audit.jsonl");
    /// let sink = JsonLinesSink::open(&path)?;
    /// sink.record_batch(&[
    ///     AuditEvent::now("c1", AuditKind::RetentionEnded { capability: 1 }),
    ///     AuditEvent::now("c1", AuditKind::RetentionEnded { capability: 2 }),
    /// ])?;
    /// assert_eq!(JsonLinesSink::read(&path)?.seqs, [Some(1), Some(2)]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    fn record_batch(&self, events: &[AuditEvent]) -> Result<(), AuditError> {
        events.iter().try_for_each(|event| self.record(event))
    }

    /// Makes every event recorded so far durable on disk, whatever the sink's everyday
    /// durability: the driver calls it as an instance stops
    /// ([`Driver::shutdown`](crate::driver::Driver::shutdown)). [`JsonLinesSink`] syncs its
    /// file; the default does nothing, for sinks whose `record` is already as durable as they
    /// can make it (such as [`MemorySink`]).
    ///
    /// # Errors
    /// The storage could not be synced; what was recorded may not survive a power loss.
    fn sync(&self) -> Result<(), AuditError> {
        Ok(())
    }

    /// Whether [`record`](Self::record) waits for slow storage (a sync to disk, a database's
    /// commit) long enough that async code should not wait for it on an executor's thread
    /// (for the writes whose wait the sink cannot leave to the loop: see
    /// [`defers`](Self::defers)).
    /// The async loops then run each step that writes to the sink off the executor's threads
    /// ([`Timer::blocking`](crate::Timer::blocking); the driver does, on a multi-threaded tokio
    /// runtime), so that the steps of many calls wait on the sink at once, and a sink that
    /// groups the writes of concurrent callers ([`JsonLinesSink`], [`GroupCommit`](super::GroupCommit)) makes them
    /// durable together: one write and one sync for all of them, each step proceeding once
    /// its own events are durable.
    ///
    /// `false` unless overridden; [`JsonLinesSink`] says `true` at [`Durability::Synced`].
    fn blocks(&self) -> bool {
        false
    }

    /// Whether the sink can leave the wait for durability to the crate's async loops: for the
    /// write of a request's `request_sent`, [`JsonLinesSink`] at [`Durability::Synced`] returns
    /// once the line is with the OS, and the loop awaits its sync (woken by the sink's sync
    /// thread, no thread parked) before the request is sent. The mechanism is the crate's own:
    /// a sink of yours leaves this `false`, and a wrapper forwards it.
    fn defers(&self) -> bool {
        false
    }
}

impl<T: AuditSink + ?Sized> AuditSink for Arc<T> {
    fn record(&self, event: &AuditEvent) -> Result<(), AuditError> {
        (**self).record(event)
    }

    fn record_batch(&self, events: &[AuditEvent]) -> Result<(), AuditError> {
        (**self).record_batch(events)
    }

    fn sync(&self) -> Result<(), AuditError> {
        (**self).sync()
    }

    fn blocks(&self) -> bool {
        (**self).blocks()
    }

    fn defers(&self) -> bool {
        (**self).defers()
    }
}

/// Keeps events in memory, in the order recorded.
///
/// Like [`JsonLinesSink`], it keeps the trail in time order under its lock: an event stamped
/// earlier than the one recorded before it (two tasks each stamped an event, and the later
/// stamp won the lock) is kept with the earlier event's time, so that [`verify`](super::verify)
/// never finds time going back in a trail the crate wrote. Other events keep their own time.
///
/// # Example
/// ```
/// use recording_status::audit::{AuditEvent, AuditKind, AuditSink, MemorySink};
///
/// let sink = MemorySink::default();
/// sink.record(&AuditEvent::now("c1", AuditKind::RetentionEnded { capability: 1 }))?;
/// assert_eq!(sink.events().len(), 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Default)]
pub struct MemorySink {
    events: Mutex<Vec<AuditEvent>>,
}

impl MemorySink {
    /// A copy of the events so far, in order.
    pub fn events(&self) -> Vec<AuditEvent> {
        self.events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl MemorySink {
    /// Appends `event` to `events`, stamped no earlier than the last of them.
    fn push_in_time_order(events: &mut Vec<AuditEvent>, event: &AuditEvent) {
        let event = event.no_earlier_than(events.last().map(|last| last.at));
        events.push(event);
    }
}

impl AuditSink for MemorySink {
    fn record(&self, event: &AuditEvent) -> Result<(), AuditError> {
        let mut events = self.events.lock().unwrap_or_else(PoisonError::into_inner);
        Self::push_in_time_order(&mut events, event);
        Ok(())
    }

    fn record_batch(&self, batch: &[AuditEvent]) -> Result<(), AuditError> {
        let mut events = self.events.lock().unwrap_or_else(PoisonError::into_inner);
        for event in batch {
            Self::push_in_time_order(&mut events, event);
        }
        Ok(())
    }
}

/// How durable an event is when [`JsonLinesSink`]'s [`record`](AuditSink::record) returns.
///
/// # Example
/// ```
/// use recording_status::audit::{Durability, JsonLinesSink};
///
/// let dir = tempfile::tempdir()?;
/// let sink = JsonLinesSink::options()
///     .durability(Durability::Synced)
///     .open(dir.path().join("audit.jsonl"))?;
/// assert_eq!(sink.durability(), Durability::Synced);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Durability {
    /// Written to the operating system (no buffer left in the process): the event survives a
    /// crash of the bot, not a crash of the machine or a power loss.
    #[default]
    Flushed,
    /// Also synced to the disk (`fdatasync`): the event survives power loss. Costs a disk
    /// round trip per group of concurrent events: lines go to the OS at once, and a thread of
    /// the sink's own syncs every line written before each sync. The async loops
    /// ([`Graph::run`](crate::Graph::run), the driver) await a request's and an answer's lines
    /// as futures ([`defers`](AuditSink::defers)), holding no thread, so the lines of every
    /// call in flight share the next sync (14 to 20 lines a sync at 64 calls in flight:
    /// `BENCHMARKS.md`); other writes wait on their thread (the sink
    /// [`blocks`](AuditSink::blocks)). A failed sync stops the trail: see [`JsonLinesSink`].
    Synced,
}

/// How to open a [`JsonLinesSink`]: durability, chain key and checkpoints. From
/// [`JsonLinesSink::options`].
///
/// # Example
/// ```
/// use recording_status::audit::{Durability, JsonLinesSink};
///
/// let dir = tempfile::tempdir()?;
/// let options = JsonLinesSink::options()
///     .durability(Durability::Synced)
///     .key(*b"from the bot's secret store");
/// assert!(!format!("{options:?}").contains("secret store"));
/// let sink = options.open(dir.path().join("audit.jsonl"))?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Default)]
pub struct JsonLinesOptions {
    durability: Durability,
    key: Option<Vec<u8>>,
    checkpoints: Option<CheckpointOptions>,
}

impl fmt::Debug for JsonLinesOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JsonLinesOptions")
            .field("durability", &self.durability)
            .field("key", &self.key.as_ref().map(|_| "[redacted]"))
            .field("checkpoints", &self.checkpoints)
            .finish()
    }
}

impl JsonLinesOptions {
    /// How durable each event is before `record` returns ([`Durability::Flushed`] unless set).
    #[must_use]
    pub fn durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }

    /// Chains the lines with HMAC-SHA256 under `key` instead of plain SHA-256, so that whoever
    /// can write the file but does not hold the key cannot forge a valid chain. Reopen the
    /// trail, and [check it](super::check_chain), with the same key: the sink cannot tell a
    /// wrong key on open.
    #[must_use]
    pub fn key(mut self, key: impl Into<Vec<u8>>) -> Self {
        self.key = Some(key.into());
        self
    }

    /// Signs checkpoints of the trail's chain head and hands them to a witness, as `options`
    /// say (every N lines, every T seconds, checked when lines are written; and at
    /// [`sync`](AuditSink::sync), which the driver calls at shutdown). See
    /// [`Checkpoint`](super::Checkpoint) for what they prove, and
    /// [`JsonLinesSink::checkpoint_status`] for how they fare.
    ///
    /// A checkpoint covers only lines on the disk: at [`Durability::Flushed`] the sink syncs
    /// the file before it signs (one sync per checkpoint).
    ///
    /// # Example
    /// ```
    /// use std::sync::Arc;
    /// use recording_status::audit::{CheckpointOptions, CheckpointSigner, FileWitness, JsonLinesSink};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let witness = Arc::new(FileWitness::open(dir.path().join("checkpoints.txt"))?);
    /// let signer = CheckpointSigner::new("bot-1", [7; 32])?; // a seed from the secret store
    /// let sink = JsonLinesSink::options()
    ///     .checkpoints(CheckpointOptions::new("example.com/bot-1/audit", signer, witness)?)
    ///     .open(dir.path().join("audit.jsonl"))?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn checkpoints(mut self, options: CheckpointOptions) -> Self {
        self.checkpoints = Some(options);
        self
    }

    /// Opens `path` with these options. See [`JsonLinesSink::open`].
    ///
    /// # Errors
    /// As [`JsonLinesSink::open`].
    pub fn open(&self, path: impl AsRef<Path>) -> Result<JsonLinesSink, AuditError> {
        JsonLinesSink::open_with(path.as_ref(), self)
    }
}

/// Appends events to a file, one JSON object per line, each line with a sequence number and a
/// hash chaining it to the line before: `{"seq":N,"chain":"<64 hex>",` then the event's own
/// fields (the format in full: [`check_chain`](super::check_chain)).
/// [`record`](AuditSink::record) returns once the event's line is durable at the sink's
/// [`Durability`].
///
/// - **Refused means absent.** When writing or flushing fails, every event of that write is
///   refused and the file is cut back to its last written length: a refused event never
///   appears later. The next write starts from there (cutting back again first, if that failed
///   too, and again when the sink is dropped), so a failure does not stop later events from
///   being written.
/// - **A failed sync stops the trail** (at [`Durability::Synced`]). After `fdatasync` fails,
///   the kernel may have dropped the unsynced pages and marked them clean, so that a second
///   sync reports success without them (the 2018 "fsyncgate" finding, after which PostgreSQL
///   stops rather than retry). The sink cuts the file back to its last synced line, refuses
///   every event the sync would have carried (their steps are not taken) and every later one.
///   Open the file again to go on: the trail resumes after its last synced line.
/// - **Group commit.** Concurrent `record`s share writes: whoever finds no write in progress
///   takes every waiting line, writes them with one write, and wakes the others. A write that
///   fails refuses exactly the events it carried, each caller's step not taken. At
///   [`Durability::Synced`] the sink's sync thread makes durable, with each sync, every line
///   written before it began; the async loops await their lines' sync as futures
///   ([`AuditSink::defers`]), so the lines of every call in flight share syncs without a
///   thread parked for each.
/// - **Sequenced and in time order.** The sink stamps `at` when it assigns the line's `seq`,
///   never earlier than the previous line's, so the file's lines are in `seq` and time order.
/// - **Torn tails.** [`open`](Self::open) resumes a trail whose end was torn by power loss or
///   a full disk on a new line, after a `trail_resumed` event that says where the torn bytes
///   are ([`repaired`](Self::repaired)); [`read`](Self::read) reports such bytes at the end.
/// - **One writer.** The sink holds an exclusive lock on the file while it lives.
///
/// # Example
/// ```
/// use recording_status::audit::{AuditEvent, AuditKind, AuditSink, JsonLinesSink, check_chain};
///
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("audit.jsonl");
/// let sink = JsonLinesSink::open(&path)?;
/// sink.record(&AuditEvent::now("c1", AuditKind::RetentionEnded { capability: 1 }))?;
///
/// let line = std::fs::read_to_string(&path)?;
/// assert!(line.starts_with("{\"seq\":1,\"chain\":\""));
/// assert_eq!(JsonLinesSink::read(&path)?.events.len(), 1);
/// assert_eq!(check_chain(line.as_bytes(), None)?.seq, 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct JsonLinesSink {
    group: Group<Entry>,
    journal: Arc<Mutex<Journal>>,
    /// At [`Durability::Synced`]: the sync thread, and who waits for it.
    syncer: Option<Arc<Syncer>>,
    durability: Durability,
    keyed: bool,
    repaired: Option<TornTail>,
    checkpoints: Option<Checkpointer>,
}

impl fmt::Debug for JsonLinesSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JsonLinesSink")
            .field("durability", &self.durability)
            .field("keyed", &self.keyed)
            .field("repaired", &self.repaired)
            .field(
                "checkpoints",
                &self.checkpoints.as_ref().map(Checkpointer::origin),
            )
            .finish_non_exhaustive()
    }
}

impl JsonLinesSink {
    /// Opens `path` for appending, creating it if needed, with [`Durability::Flushed`] and an
    /// unkeyed chain. An existing trail is continued: its last complete line gives the next
    /// `seq` and the chain's previous value. If the file ends with torn bytes, the trail
    /// resumes on a new line after them with a `trail_resumed` event (see
    /// [`repaired`](Self::repaired)).
    ///
    /// # Errors
    /// The file cannot be opened, read or written; [`AuditError::InUse`] if another sink holds
    /// it.
    ///
    /// # Example
    /// ```
    /// use recording_status::audit::{AuditEvent, AuditKind, AuditSink, JsonLinesSink};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let path = dir.path().join("audit.jsonl");
    /// let event = AuditEvent::now("c1", AuditKind::RetentionEnded { capability: 1 });
    /// JsonLinesSink::open(&path)?.record(&event)?;
    /// JsonLinesSink::open(&path)?.record(&event)?; // continues at seq 2
    /// let trail = std::fs::read_to_string(&path)?;
    /// assert!(trail.lines().nth(1).is_some_and(|line| line.starts_with("{\"seq\":2,")));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open(path: impl AsRef<Path>) -> Result<Self, AuditError> {
        Self::open_with(path.as_ref(), &JsonLinesOptions::default())
    }

    /// Options for [`open`](Self::open): [`Durability`] and a chain key.
    ///
    /// # Example
    /// ```
    /// use recording_status::audit::{Durability, JsonLinesSink};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let sink = JsonLinesSink::options()
    ///     .durability(Durability::Synced)
    ///     .key(*b"per-deployment secret")
    ///     .open(dir.path().join("audit.jsonl"))?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn options() -> JsonLinesOptions {
        JsonLinesOptions::default()
    }

    /// The durability chosen when the sink was opened.
    ///
    /// # Example
    /// ```
    /// use recording_status::audit::{Durability, JsonLinesSink};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let sink = JsonLinesSink::open(dir.path().join("audit.jsonl"))?;
    /// assert_eq!(sink.durability(), Durability::Flushed);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn durability(&self) -> Durability {
        self.durability
    }

    /// The torn tail [`open`](Self::open) found and resumed after, if any: the trail holds a
    /// `trail_resumed` event with the same offset and length.
    ///
    /// # Example
    /// ```
    /// use std::io::Write;
    /// use recording_status::audit::{AuditKind, JsonLinesSink};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let path = dir.path().join("audit.jsonl");
    /// std::fs::write(&path, b"{\"seq\":1,\"cha")?; // power loss mid-line
    ///
    /// let sink = JsonLinesSink::open(&path)?;
    /// let torn = sink.repaired().ok_or("the tail should have been repaired")?;
    /// assert_eq!((torn.offset, torn.bytes), (0, 13));
    /// let trail = JsonLinesSink::read(&path)?;
    /// assert!(matches!(trail.events[0].kind, AuditKind::TrailResumed { offset: 0, torn_bytes: 13 }));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn repaired(&self) -> Option<TornTail> {
        self.repaired
    }

    /// Reads a JSON-lines trail back: its events with their line numbers and `seq`s, and the
    /// torn bytes at its end, if any (the events before them are returned). Lines written
    /// before the chain existed read too (their `seq` is `None`). This does not check the
    /// chain: [`check_chain`](super::check_chain) does.
    ///
    /// # Errors
    /// The file cannot be read ([`AuditError::Io`]), or a line before the end is not an event
    /// and no `trail_resumed` line accounts for it ([`AuditError::Malformed`], with its line
    /// number and byte offset).
    ///
    /// # Example
    /// ```
    /// use recording_status::audit::{AuditEvent, AuditKind, AuditSink, JsonLinesSink};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let path = dir.path().join("audit.jsonl");
    /// let sink = JsonLinesSink::open(&path)?;
    /// sink.record(&AuditEvent::now("c1", AuditKind::RetentionEnded { capability: 1 }))?;
    ///
    /// let trail = JsonLinesSink::read(&path)?;
    /// assert_eq!((trail.lines[0], trail.seqs[0]), (1, Some(1)));
    /// assert!(trail.torn_tail.is_none() && trail.chained());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn read(path: impl AsRef<Path>) -> Result<Trail, AuditError> {
        let bytes = std::fs::read(path)?;
        let mut trail = Trail {
            events: Vec::new(),
            lines: Vec::new(),
            seqs: Vec::new(),
            chains: Vec::new(),
            torn_tail: None,
        };
        trail.torn_tail = chain::walk(
            &bytes,
            |line, parsed| {
                trail.events.push(parsed.event);
                trail.lines.push(line.number);
                trail.seqs.push(parsed.head.map(|h| h.seq));
                trail.chains.push(parsed.head.map(|h| h.chain));
                Ok(())
            },
            |line, offset| AuditError::Malformed { line, offset },
        )?;
        Ok(trail)
    }

    fn open_with(path: &Path, options: &JsonLinesOptions) -> Result<Self, AuditError> {
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => return Err(AuditError::InUse),
            // A file system without locks: go on without one.
            Err(TryLockError::Error(e)) if e.kind() == io::ErrorKind::Unsupported => {}
            Err(TryLockError::Error(e)) => return Err(e.into()),
        }
        let len = file.metadata()?.len();
        let last = last_line(&mut file, len)?;
        let newline = ends_with_newline(&mut file, len)?;
        let mut journal = Journal::new(
            Box::new(file),
            options.durability,
            Hasher::new(options.key.as_deref()),
            len,
        );
        // Where the trail's good part ends: past the last event line's `\n`.
        let mut good = 0;
        if let Some((end, line)) = &last {
            if let Some(h) = line.head {
                (journal.seq, journal.head) = (h.seq, h.chain);
            }
            journal.at = Some(line.event.at);
            if *end == len {
                // The last line is whole but for its `\n` (cut just before it): end it.
                journal.commit(b"\n", &[] as &[Entry])?;
            }
            good = end + 1;
        }
        let repaired = if good < len {
            let torn = TornTail {
                offset: good,
                bytes: len - good,
            };
            let event = AuditEvent::now(
                "",
                AuditKind::TrailResumed {
                    torn_bytes: torn.bytes,
                    offset: torn.offset,
                },
            );
            let prefix: &[u8] = if newline { b"" } else { b"\n" };
            journal.commit(prefix, std::slice::from_ref(&event))?;
            Some(torn)
        } else {
            None
        };
        let seq = journal.seq;
        let mut sink = Self::with_journal(journal, repaired)?;
        sink.checkpoints = options
            .checkpoints
            .clone()
            .map(|options| Checkpointer::new(options, seq));
        Ok(sink)
    }

    /// The sink over `journal`; at [`Durability::Synced`], with its sync thread started (the
    /// journal's lines so far are durable: `open` synced them).
    fn with_journal(mut journal: Journal, repaired: Option<TornTail>) -> io::Result<Self> {
        let durability = journal.durability;
        let keyed = journal.hasher.is_keyed();
        let syncer = if durability == Durability::Synced {
            let sync = journal.storage.sync_handle()?;
            journal.sync_inline = false;
            Some((journal.seq, journal.len, sync))
        } else {
            None
        };
        let journal = Arc::new(Mutex::new(journal));
        let syncer = match syncer {
            Some((seq, len, sync)) => {
                let weak = Arc::downgrade(&journal);
                Some(Syncer::start(
                    seq,
                    len,
                    sync,
                    Box::new(move |len, refusal: &Refusal| {
                        if let Some(journal) = weak.upgrade() {
                            journal
                                .lock()
                                .unwrap_or_else(PoisonError::into_inner)
                                .stop(len, refusal);
                        }
                    }),
                )?)
            }
            None => None,
        };
        Ok(Self {
            group: Group::new(),
            durability,
            keyed,
            journal,
            syncer,
            repaired,
            checkpoints: None,
        })
    }

    /// A sink writing to `storage` from its start (tests: a storage that fails on demand).
    #[cfg(test)]
    pub(super) fn over(storage: Box<dyn Storage>, durability: Durability) -> Self {
        Self::with_journal(
            Journal::new(storage, durability, Hasher::new(None), 0),
            None,
        )
        .expect("a test storage gives a sync handle")
    }

    fn journal(&self) -> MutexGuard<'_, Journal> {
        self.journal.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl AuditSink for JsonLinesSink {
    fn record(&self, event: &AuditEvent) -> Result<(), AuditError> {
        self.submit(std::slice::from_ref(event))
    }

    fn record_batch(&self, events: &[AuditEvent]) -> Result<(), AuditError> {
        if events.is_empty() {
            return Ok(());
        }
        self.submit(events)
    }

    /// Syncs the file's data to the disk (`fdatasync`), under the journal's lock: every line
    /// written before it returns is on the disk. With checkpoints, then signs one of the
    /// trail's head for the witness, unless the last one covers it already; a witness failure
    /// is logged and counted ([`checkpoint_status`](JsonLinesSink::checkpoint_status)), not
    /// returned: the lines are synced.
    fn sync(&self) -> Result<(), AuditError> {
        let Some(checkpoints) = &self.checkpoints else {
            return self.head(true).map(|_| ());
        };
        let mut state = checkpoints.lock();
        let head = self.head(true)?;
        if !Checkpointer::covered(&state, head.seq) {
            let _ = checkpoints.emit(&mut state, Ok(head));
        }
        Ok(())
    }

    /// At [`Durability::Synced`]: each write waits for the disk.
    fn blocks(&self) -> bool {
        self.durability == Durability::Synced
    }

    /// At [`Durability::Synced`]: a request's `request_sent` is awaited by the async loops.
    fn defers(&self) -> bool {
        self.durability == Durability::Synced
    }
}

impl Drop for JsonLinesSink {
    /// Syncs what was written, and ends the sync thread.
    fn drop(&mut self) {
        if let Some(syncer) = &self.syncer {
            syncer.close();
        }
    }
}

impl JsonLinesSink {
    /// Writes made to the file so far (each with one sync at [`Durability::Synced`]), and the
    /// events they carried, refused ones included: with group commit, `events / writes` is how
    /// many events a write carried on average.
    ///
    /// # Example
    /// ```
    /// use recording_status::audit::{AuditEvent, AuditKind, AuditSink, JsonLinesSink};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let sink = JsonLinesSink::open(dir.path().join("audit.jsonl"))?;
    /// sink.record_batch(&[
    ///     AuditEvent::now("c1", AuditKind::RetentionEnded { capability: 1 }),
    ///     AuditEvent::now("c1", AuditKind::RetentionEnded { capability: 2 }),
    /// ])?;
    /// assert_eq!(sink.counts(), (1, 2));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn counts(&self) -> (u64, u64) {
        self.group.counts()
    }

    /// At [`Durability::Synced`], the syncs the sink's sync thread made so far and the lines
    /// they made durable (`lines / syncs` is how many lines a sync carried on average);
    /// `None` at [`Durability::Flushed`].
    ///
    /// # Example
    /// ```
    /// use recording_status::audit::{AuditEvent, AuditKind, AuditSink, Durability, JsonLinesSink};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let sink = JsonLinesSink::options()
    ///     .durability(Durability::Synced)
    ///     .open(dir.path().join("audit.jsonl"))?;
    /// sink.record(&AuditEvent::now("c1", AuditKind::RetentionEnded { capability: 1 }))?;
    /// assert_eq!(sink.syncs(), Some((1, 1)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn syncs(&self) -> Option<(u64, u64)> {
        self.syncer.as_ref().map(|syncer| syncer.counts())
    }

    /// Writes `events` as consecutive lines, alone or with other callers' lines, all of them
    /// or none; returns once they are durable.
    fn submit(&self, events: &[AuditEvent]) -> Result<(), AuditError> {
        // The `seq` after this caller's write, if it led one.
        let mut led = None;
        let result = self.group.submit(events, Entry::new, |writing| {
            let (result, seq) = match writing {
                // Serialized straight into the write buffer.
                Writing::Alone(events) => self.commit(events),
                // Serialized by their callers while they waited.
                Writing::Together(entries) => self.commit(entries),
            };
            led = Some(seq);
            result.map(|()| seq)
        });
        if let Some(seq) = led {
            self.after_commit(&result, seq);
        }
        let seq = result?;
        match &self.syncer {
            // Inside the async loops' `deferring`, they wait; otherwise, here.
            Some(syncer) if !durable::defer(syncer, seq) => syncer.wait(seq),
            _ => Ok(()),
        }
    }

    /// Writes `entries` as the leader, and returns the outcome and the trail's `seq` after it;
    /// tells the sync thread what is written.
    fn commit<R: Rest>(&self, entries: &[R]) -> (Result<(), AuditError>, u64) {
        let mut journal = self.journal();
        let result = journal.commit(b"", entries);
        if result.is_ok()
            && let Some(syncer) = &self.syncer
        {
            syncer.written(journal.seq, journal.len);
        }
        (result, journal.seq)
    }

    /// After the leader's write (its locks released, so that the next write can go on):
    /// signs a checkpoint for the witness if one is due, unless another caller is making one.
    fn after_commit(&self, result: &Result<u64, AuditError>, seq: u64) {
        let Some(checkpoints) = &self.checkpoints else {
            return;
        };
        if result.is_err() {
            return;
        }
        let Some(mut state) = checkpoints.try_lock() else {
            return;
        };
        if checkpoints.due(&state, seq) {
            let head = self.head(true);
            let _ = checkpoints.emit(&mut state, head);
        }
    }

    /// The last line's `seq`, chain value and time, once the line is on the disk if `sync`
    /// (synced here at [`Durability::Flushed`], by the sync thread at `Synced`), so that a
    /// checkpoint never covers a line a power loss can take away.
    fn head(&self, sync: bool) -> Result<checkpoint::Head, AuditError> {
        let mut journal = self.journal();
        if sync && self.syncer.is_none() {
            journal.storage.sync()?;
        }
        let head = checkpoint::Head {
            seq: journal.seq,
            chain: journal.head,
            at: journal.at,
        };
        drop(journal);
        if sync && let Some(syncer) = &self.syncer {
            syncer.wait(head.seq)?;
        }
        Ok(head)
    }

    /// Signs a checkpoint of the trail's head now and hands it to the witness, whether one is
    /// due or not (the file synced first at [`Durability::Flushed`]). `Ok(None)` when the sink
    /// was opened without [checkpoints](JsonLinesOptions::checkpoints).
    ///
    /// # Errors
    /// The file could not be synced ([`AuditError::Io`]), or the witness refused the
    /// checkpoint (its error, such as [`AuditError::Witness`]). Either is also counted in
    /// [`checkpoint_status`](Self::checkpoint_status).
    ///
    /// # Example
    /// ```
    /// use std::sync::Arc;
    /// use recording_status::audit::{
    ///     AuditEvent, AuditKind, AuditSink, CheckpointOptions, CheckpointSigner, FileWitness,
    ///     JsonLinesSink,
    /// };
    ///
    /// let dir = tempfile::tempdir()?;
    /// let witness = Arc::new(FileWitness::open(dir.path().join("checkpoints.txt"))?);
    /// let signer = CheckpointSigner::new("bot-1", [7; 32])?;
    /// let key = signer.verifier_key();
    /// let sink = JsonLinesSink::options()
    ///     .checkpoints(CheckpointOptions::new("example.com/bot-1/audit", signer, witness)?)
    ///     .open(dir.path().join("audit.jsonl"))?;
    /// sink.record(&AuditEvent::now("c1", AuditKind::RetentionEnded { capability: 1 }))?;
    ///
    /// let signed = sink.checkpoint()?.ok_or("checkpoints are on")?;
    /// assert_eq!(signed.verify(&key)?.seq(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn checkpoint(&self) -> Result<Option<SignedCheckpoint>, AuditError> {
        let Some(checkpoints) = &self.checkpoints else {
            return Ok(None);
        };
        let mut state = checkpoints.lock();
        let head = self.head(true);
        checkpoints.emit(&mut state, head).map(Some)
    }

    /// How the sink's checkpoints fare: how many the witness took, up to which `seq`, and its
    /// failures, with the last one's message. `None` without
    /// [checkpoints](JsonLinesOptions::checkpoints).
    ///
    /// # Example
    /// ```
    /// use recording_status::audit::JsonLinesSink;
    ///
    /// let dir = tempfile::tempdir()?;
    /// let sink = JsonLinesSink::open(dir.path().join("audit.jsonl"))?;
    /// assert!(sink.checkpoint_status().is_none());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn checkpoint_status(&self) -> Option<CheckpointStatus> {
        self.checkpoints.as_ref().map(Checkpointer::status)
    }
}

/// A JSON-lines trail read back by [`JsonLinesSink::read`].
///
/// It dereferences to its events, so [`verify(&trail)`](super::verify) replays them.
///
/// # Example
/// ```
/// use recording_status::audit::{AuditEvent, AuditKind, AuditSink, JsonLinesSink, verify};
///
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("audit.jsonl");
/// JsonLinesSink::open(&path)?.record(&AuditEvent::now("c1", AuditKind::DrainStarted { outstanding: 0 }))?;
/// let trail = JsonLinesSink::read(&path)?;
/// assert_eq!((trail.len(), trail.torn_tail), (1, None));
/// verify(&trail)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Trail {
    /// The events, in file order (`trail_resumed` markers included).
    pub events: Vec<AuditEvent>,
    /// The line of each event, counted from 1.
    pub lines: Vec<usize>,
    /// The `seq` of each event, `None` for lines written before the chain existed.
    pub seqs: Vec<Option<u64>>,
    /// The `chain` value each event's line carries, as 32 raw bytes (`None` for lines written
    /// before the chain existed). Read, not checked: [`check_chain`](super::check_chain)
    /// checks them, and [`check_checkpoints`](super::check_checkpoints) compares them with
    /// signed checkpoints.
    pub chains: Vec<Option<[u8; 32]>>,
    /// Bytes after the last complete line (power loss, full disk), if any.
    pub torn_tail: Option<TornTail>,
}

impl Trail {
    /// Whether every event line carries `seq` and `chain` (`false` for an empty trail).
    pub fn chained(&self) -> bool {
        !self.seqs.is_empty() && self.seqs.iter().all(Option::is_some)
    }
}

impl Deref for Trail {
    type Target = [AuditEvent];

    fn deref(&self) -> &[AuditEvent] {
        &self.events
    }
}

/// One event waiting in the queue for the writer: serialized by its caller, so the writer only
/// adds `seq`, `chain` and `at`.
struct Entry {
    /// The event's line after `"at":"…",`: see [`write_rest`].
    rest: Vec<u8>,
}

impl Entry {
    fn new(event: &AuditEvent) -> Result<Self, AuditError> {
        let mut rest = Vec::with_capacity(256);
        write_rest(&mut rest, event).map_err(AuditError::Serialize)?;
        Ok(Self { rest })
    }
}

/// What the writer puts after a line's `"at":"…",`.
trait Rest {
    fn write_rest(&self, buf: &mut Vec<u8>) -> Result<(), serde_json::Error>;
}

impl Rest for Entry {
    fn write_rest(&self, buf: &mut Vec<u8>) -> Result<(), serde_json::Error> {
        buf.extend_from_slice(&self.rest);
        Ok(())
    }
}

impl Rest for AuditEvent {
    fn write_rest(&self, buf: &mut Vec<u8>) -> Result<(), serde_json::Error> {
        write_rest(buf, self)
    }
}

/// Writes `event`'s JSON after its `at`, byte for byte as serde writes it in the event's
/// object: `"call_id":"…",` then its kind's fields, from `"event":…`, and the closing `}`.
/// The event's `at` is not written (the sink stamps its own), nor serialized: serde's
/// `flatten` would go through a map and chrono's `Display`.
fn write_rest(buf: &mut Vec<u8>, event: &AuditEvent) -> Result<(), serde_json::Error> {
    buf.extend_from_slice(b"\"call_id\":");
    serde_json::to_writer(&mut *buf, &event.call_id)?;
    let start = buf.len();
    // `{"event":"…",…}`: its fields are the event's, after `call_id`; its `{` becomes the
    // comma between them.
    serde_json::to_writer(&mut *buf, &event.kind)?;
    match buf.get_mut(start) {
        Some(open @ b'{') => *open = b',',
        _ => return Err(serde::ser::Error::custom("audit kind is not a JSON object")),
    }
    Ok(())
}

/// Writes `at` as JSON, byte for byte as serde (chrono's RFC 3339, `AutoSi` fraction, `Z`)
/// writes it, without going through `fmt`.
fn write_at(buf: &mut Vec<u8>, at: &DateTime<Utc>) -> Result<(), serde_json::Error> {
    // Each of `DateTime`'s own accessors converts to the naive time again: convert once.
    let (date, time) = (at.date_naive(), at.time());
    let (year, nano) = (date.year(), time.nanosecond());
    let Ok(year) = u32::try_from(year) else {
        return serde_json::to_writer(buf, at);
    };
    if year > 9999 || nano >= 1_000_000_000 {
        // Years chrono writes with a sign, and leap seconds: let serde write them.
        return serde_json::to_writer(buf, at);
    }
    let digits = |buf: &mut Vec<u8>, n: u32, width: u32| {
        for i in (0..width).rev() {
            buf.push(b'0' + u8::try_from(n / 10u32.pow(i) % 10).unwrap_or(0));
        }
    };
    buf.push(b'"');
    digits(buf, year, 4);
    for (sep, n) in [
        (b'-', date.month()),
        (b'-', date.day()),
        (b'T', time.hour()),
    ] {
        buf.push(sep);
        digits(buf, n, 2);
    }
    for n in [time.minute(), time.second()] {
        buf.push(b':');
        digits(buf, n, 2);
    }
    if nano != 0 {
        buf.push(b'.');
        if nano % 1_000_000 == 0 {
            digits(buf, nano / 1_000_000, 3);
        } else if nano % 1_000 == 0 {
            digits(buf, nano / 1_000, 6);
        } else {
            digits(buf, nano, 9);
        }
    }
    buf.extend_from_slice(b"Z\"");
    Ok(())
}

/// The file and the chain's state, held by the caller writing a batch.
struct Journal {
    storage: Box<dyn Storage>,
    durability: Durability,
    /// At [`Durability::Synced`], whether each write syncs (while the sink opens) or the sync
    /// thread does.
    sync_inline: bool,
    hasher: Hasher,
    /// The last written line's `seq` (`0` for none).
    seq: u64,
    /// The last written line's chain value.
    head: [u8; 32],
    /// The last written line's `at`.
    at: Option<DateTime<Utc>>,
    /// The file's written length: with the OS (and on disk at `Synced` once the sync thread
    /// says so).
    len: u64,
    /// Whether bytes of a refused batch may be in the file past `len`.
    dirty: bool,
    /// Why the trail stopped, after a failed sync: every later event is refused.
    stopped: Option<Refusal>,
    buf: Vec<u8>,
}

impl Journal {
    fn new(storage: Box<dyn Storage>, durability: Durability, hasher: Hasher, len: u64) -> Self {
        Self {
            storage,
            durability,
            sync_inline: true,
            hasher,
            seq: 0,
            head: GENESIS,
            at: None,
            len,
            dirty: false,
            stopped: None,
            buf: Vec::new(),
        }
    }

    /// A sync failed: cuts the file back to its last synced length `len` (now, or when the
    /// sink goes) and refuses every later event.
    fn stop(&mut self, len: u64, refusal: &Refusal) {
        self.stopped = Some(refusal.clone());
        self.len = len;
        self.dirty = true;
        if let Err(e) = self.cut_back() {
            tracing::error!(error = %e, synced_len = len,
                "audit trail: the lines after the last sync could not be cut off yet");
        }
    }

    /// Writes `prefix` and one line per entry with one write, makes it durable, and advances
    /// the chain. On failure, nothing of it stays: the file is cut back to its durable length
    /// (now, or before the next write if that fails too) and the chain does not advance.
    fn commit<R: Rest>(&mut self, prefix: &[u8], entries: &[R]) -> Result<(), AuditError> {
        if let Some(stopped) = self.stopped.clone() {
            let _ = self.cut_back();
            return Err(stopped.into_error());
        }
        self.cut_back()?;
        let mut buf = mem::take(&mut self.buf);
        buf.clear();
        buf.extend_from_slice(prefix);
        let (mut seq, mut head, mut at) = (self.seq, self.head, self.at);
        for entry in entries {
            seq += 1;
            let now = Utc::now();
            let stamp = at.map_or(now, |at| at.max(now));
            let start = buf.len();
            let hex_at = chain::open_line(&mut buf, seq);
            buf.extend_from_slice(b"\"at\":");
            write_at(&mut buf, &stamp).map_err(AuditError::Serialize)?;
            buf.push(b',');
            entry.write_rest(&mut buf).map_err(AuditError::Serialize)?;
            head = chain::seal(&mut buf, start, hex_at, &head, &self.hasher);
            buf.push(b'\n');
            at = Some(stamp);
        }
        // Bytes past `len` are the refused batch's until the write is known to be durable,
        // even if the storage panics midway.
        self.dirty = true;
        let written = self.write(&buf);
        let len = buf.len() as u64;
        self.buf = buf;
        match written {
            Ok(()) => {
                self.dirty = false;
                self.len += len;
                (self.seq, self.head, self.at) = (seq, head, at);
                Ok(())
            }
            Err(e) => {
                // If this fails too, it is tried again before the next write, and when the
                // sink is dropped.
                let _ = self.cut_back();
                Err(e.into())
            }
        }
    }

    fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.storage.append(bytes)?;
        if self.durability == Durability::Synced && self.sync_inline {
            self.storage.sync()?;
        }
        Ok(())
    }

    /// Cuts the file back to its durable length if a refused batch may have left bytes past
    /// it, and at `Synced` syncs the cut (best effort: the bytes are gone from the file either
    /// way).
    fn cut_back(&mut self) -> io::Result<()> {
        if self.dirty {
            self.storage.truncate(self.len)?;
            self.dirty = false;
            if self.durability == Durability::Synced {
                let _ = self.storage.sync();
            }
        }
        Ok(())
    }
}

impl Drop for Journal {
    /// A refused batch whose bytes could not be cut off yet is cut off now, when the sink goes
    /// (the bot shutting down): otherwise a later `open` would read its lines as events. If the
    /// file system still refuses, nothing more can be done here; see the honest limits on the
    /// [`compliance`](crate::compliance) page.
    fn drop(&mut self) {
        if let Err(e) = self.cut_back() {
            tracing::error!(error = %e, durable_len = self.len,
                "audit trail: the lines of a refused batch could not be cut off and remain after the trail's durable length");
        }
    }
}

/// What the journal writes to: the trail's file, or a test double.
pub(super) trait Storage: Send {
    /// Appends all of `bytes` and hands them to the operating system (no buffer in the
    /// process), or fails, possibly after appending part of them.
    fn append(&mut self, bytes: &[u8]) -> io::Result<()>;
    /// Syncs the data to the disk.
    fn sync(&mut self) -> io::Result<()>;
    /// Cuts the file back to `len` bytes.
    fn truncate(&mut self, len: u64) -> io::Result<()>;
    /// A way to sync the data from another thread, while lines are appended.
    fn sync_handle(&self) -> io::Result<SyncFn>;
}

impl Storage for File {
    fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
        // Opened for appending: each write goes to the current end, which `truncate` moves.
        self.write_all(bytes)
    }

    fn sync(&mut self) -> io::Result<()> {
        self.sync_data()
    }

    fn truncate(&mut self, len: u64) -> io::Result<()> {
        self.set_len(len)
    }

    fn sync_handle(&self) -> io::Result<SyncFn> {
        // The same open file: a sync covers every line written through either handle.
        let file = self.try_clone()?;
        Ok(Box::new(move || file.sync_data()))
    }
}

/// Whether the file's last byte is `\n`.
fn ends_with_newline(file: &mut File, len: u64) -> io::Result<bool> {
    let Some(last) = len.checked_sub(1) else {
        return Ok(false);
    };
    let mut byte = [0u8];
    file.seek(SeekFrom::Start(last))?;
    file.read_exact(&mut byte)?;
    Ok(byte[0] == b'\n')
}

/// Where the file's last event line ends (before its `\n`, if it has one) and what it holds,
/// reading backwards from the end in growing windows.
fn last_line(file: &mut File, len: u64) -> io::Result<Option<(u64, chain::Parsed)>> {
    let mut window: u64 = 64 * 1024;
    loop {
        let start = len.saturating_sub(window);
        let mut buf = Vec::new();
        file.seek(SeekFrom::Start(start))?;
        io::Read::by_ref(file)
            .take(len - start)
            .read_to_end(&mut buf)?;
        // The candidate line is `buf[from..end]`; `end` is its `\n` or the end of the file.
        let mut end = buf.len() - usize::from(buf.last() == Some(&b'\n'));
        loop {
            let from = match buf[..end].iter().rposition(|&b| b == b'\n') {
                Some(nl) => nl + 1,
                None if start == 0 => 0,
                // The line starts before the window.
                None => break,
            };
            if let Some(parsed) = chain::parse(&buf[from..end]) {
                return Ok(Some((start + end as u64, parsed)));
            }
            if from == 0 {
                return Ok(None);
            }
            end = from - 1;
        }
        window = window.saturating_mul(4);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::mpsc;
    use std::time::Duration;

    use super::*;
    use crate::audit::check_chain;
    use crate::audit::flaky::Flaky;

    fn ended(capability: u64) -> AuditEvent {
        AuditEvent::now("c1", AuditKind::RetentionEnded { capability })
    }

    fn capabilities(bytes: &[u8]) -> Vec<u64> {
        chain::lines(bytes)
            .map(|l| match chain::parse(l.bytes).unwrap().event.kind {
                AuditKind::RetentionEnded { capability } => capability,
                other => panic!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn failing_every_kth_group_write_at_64_callers_refuses_exactly_the_events_it_carried() {
        for every in [2, 3, 7] {
            let file = Flaky {
                fail_every: Arc::new(AtomicUsize::new(every)),
                ..Flaky::default()
            };
            let sink = Arc::new(file.sink(Durability::Synced));
            let outcomes: Vec<(u64, bool)> = std::thread::scope(|s| {
                let callers: Vec<_> = (0..64u64)
                    .map(|caller| {
                        let sink = sink.clone();
                        s.spawn(move || {
                            (0..20u64)
                                .map(|i| {
                                    let n = caller * 100 + i;
                                    (n, sink.record(&ended(n)).is_ok())
                                })
                                .collect::<Vec<_>>()
                        })
                    })
                    .collect();
                callers
                    .into_iter()
                    .flat_map(|c| c.join().unwrap())
                    .collect()
            });
            let bytes = file.bytes();
            // Readable, chained without a gap: the torn halves of failed writes were cut off.
            let lines = check_chain(&bytes, None).unwrap().seq;
            let mut kept = capabilities(&bytes);
            assert_eq!(kept.len() as u64, lines);
            kept.sort_unstable();
            let mut accepted: Vec<u64> = outcomes
                .iter()
                .filter(|(_, ok)| *ok)
                .map(|(n, _)| *n)
                .collect();
            accepted.sort_unstable();
            assert_eq!(kept, accepted, "every {every}: trail and outcomes differ");
            assert!(
                accepted.len() < outcomes.len(),
                "every {every}: nothing refused"
            );
            let (writes, _) = sink.counts();
            assert!(writes < 64 * 20, "every {every}: no write was shared");
        }
    }

    #[test]
    fn a_refused_event_never_appears_after_the_writer_recovers() {
        let file = Flaky::default();
        let sink = file.sink(Durability::Flushed);
        sink.record(&ended(1)).unwrap();
        file.fail_append.store(true, Ordering::SeqCst);
        let err = sink.record(&ended(2)).unwrap_err();
        assert!(matches!(&err, AuditError::Io(e) if e.kind() == io::ErrorKind::StorageFull));
        // The half-written line was cut off at once.
        assert_eq!(capabilities(&file.bytes()), [1]);
        file.fail_append.store(false, Ordering::SeqCst);
        sink.record(&ended(3)).unwrap();
        let bytes = file.bytes();
        assert_eq!(capabilities(&bytes), [1, 3]);
        // The refused event took no sequence number: no gap.
        assert_eq!(check_chain(&bytes, None).unwrap().seq, 2);
    }

    #[test]
    fn a_batch_is_one_write_and_a_refused_batch_leaves_nothing() {
        let file = Flaky::default();
        let sink = file.sink(Durability::Synced);
        sink.record_batch(&[ended(1), ended(2)]).unwrap();
        assert_eq!(file.appends.load(Ordering::SeqCst), 1, "one write");
        assert_eq!(file.syncs.load(Ordering::SeqCst), 1, "one sync");
        file.fail_append.store(true, Ordering::SeqCst);
        assert!(sink.record_batch(&[ended(3), ended(4), ended(5)]).is_err());
        assert_eq!(capabilities(&file.bytes()), [1, 2]);
        file.fail_append.store(false, Ordering::SeqCst);
        sink.record_batch(&[]).unwrap();
        sink.record_batch(&[ended(8), ended(9)]).unwrap();
        let bytes = file.bytes();
        // No refused event appears later, and no `seq` was spent on one.
        assert_eq!(capabilities(&bytes), [1, 2, 8, 9]);
        assert_eq!(check_chain(&bytes, None).unwrap().seq, 4);
    }

    #[test]
    fn a_batch_queued_behind_a_write_stays_together_and_is_refused_together() {
        let file = Flaky {
            // The first write succeeds, the second (everything queued behind it) fails.
            fail_nth: Arc::new(AtomicUsize::new(2)),
            ..Flaky::default()
        };
        let sink = Arc::new(file.sink(Durability::Flushed));
        let (open, gate) = mpsc::channel();
        *file.gate.lock().unwrap() = Some(gate);
        let first = {
            let sink = sink.clone();
            std::thread::spawn(move || sink.record(&ended(0)))
        };
        while !sink.group.writing() {
            std::thread::sleep(Duration::from_millis(1));
        }
        let batch = {
            let sink = sink.clone();
            std::thread::spawn(move || sink.record_batch(&[ended(1), ended(2), ended(3)]))
        };
        while sink.group.queued() < 3 {
            std::thread::sleep(Duration::from_millis(1));
        }
        open.send(()).unwrap();
        first.join().unwrap().unwrap();
        assert!(batch.join().unwrap().is_err());
        assert_eq!(capabilities(&file.bytes()), [0]);
        sink.record_batch(&[ended(4), ended(5)]).unwrap();
        let bytes = file.bytes();
        assert_eq!(capabilities(&bytes), [0, 4, 5]);
        assert_eq!(check_chain(&bytes, None).unwrap().seq, 3);
    }

    #[test]
    fn memory_sink_records_a_batch_in_order() {
        let sink = MemorySink::default();
        sink.record_batch(&[ended(1), ended(2)]).unwrap();
        let got: Vec<_> = sink.events().into_iter().map(|e| e.kind).collect();
        assert_eq!(
            got,
            [
                AuditKind::RetentionEnded { capability: 1 },
                AuditKind::RetentionEnded { capability: 2 }
            ]
        );
    }

    #[test]
    fn a_failed_cut_back_is_retried_before_the_next_write() {
        let file = Flaky::default();
        let sink = file.sink(Durability::Flushed);
        sink.record(&ended(1)).unwrap();
        file.fail_append.store(true, Ordering::SeqCst);
        file.fail_truncate.store(true, Ordering::SeqCst);
        assert!(sink.record(&ended(2)).is_err());
        // Still failing to cut back: refused, nothing written after the junk.
        file.fail_append.store(false, Ordering::SeqCst);
        let before = file.bytes();
        assert!(sink.record(&ended(3)).is_err());
        assert_eq!(file.bytes(), before);
        file.fail_truncate.store(false, Ordering::SeqCst);
        sink.record(&ended(4)).unwrap();
        let bytes = file.bytes();
        assert_eq!(capabilities(&bytes), [1, 4]);
        check_chain(&bytes, None).unwrap();
    }

    /// Before: a sink dropped (the bot shutting down) while the bytes of a refused batch were
    /// still in the file left them there, and a later `open` read them as events.
    #[test]
    fn a_sink_dropped_with_refused_bytes_in_the_file_cuts_them_off() {
        let file = Flaky::default();
        let sink = file.sink(Durability::Synced);
        sink.record(&ended(1)).unwrap();
        // The whole batch is written, then its sync and the cut back fail.
        file.fail_sync.store(true, Ordering::SeqCst);
        file.fail_truncate.store(true, Ordering::SeqCst);
        assert!(sink.record_batch(&[ended(2), ended(3)]).is_err());
        assert_eq!(
            capabilities(&file.bytes()),
            [1, 2, 3],
            "refused lines in the file"
        );
        file.fail_sync.store(false, Ordering::SeqCst);
        file.fail_truncate.store(false, Ordering::SeqCst);
        let syncs = file.syncs.load(Ordering::SeqCst);
        drop(sink);
        let bytes = file.bytes();
        assert_eq!(capabilities(&bytes), [1]);
        check_chain(&bytes, None).unwrap();
        assert_eq!(
            file.syncs.load(Ordering::SeqCst),
            syncs + 1,
            "the cut is synced too"
        );
    }

    /// A storage that panics after writing leaves bytes nobody acknowledged: they are the
    /// refused batch's, cut off when the sink goes.
    #[test]
    fn bytes_of_a_write_that_panicked_are_cut_off() {
        let file = Flaky::default();
        let sink = file.sink(Durability::Flushed);
        sink.record(&ended(1)).unwrap();
        file.panic_append.store(true, Ordering::SeqCst);
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _ = sink.record(&ended(2));
        }));
        assert!(panicked.is_err());
        assert_eq!(
            capabilities(&file.bytes()),
            [1, 2],
            "written, never acknowledged"
        );
        drop(sink);
        let bytes = file.bytes();
        assert_eq!(capabilities(&bytes), [1]);
        check_chain(&bytes, None).unwrap();
    }

    /// A failed sync may have lost the unsynced lines without a trace (a retried sync can
    /// succeed without them): the trail stops at its last synced line.
    #[test]
    fn a_failed_sync_refuses_the_event_removes_its_line_and_stops_the_trail() {
        let file = Flaky::default();
        let sink = file.sink(Durability::Synced);
        sink.record(&ended(1)).unwrap();
        assert_eq!(file.syncs.load(Ordering::SeqCst), 1);
        file.fail_sync.store(true, Ordering::SeqCst);
        let err = sink.record(&ended(2)).unwrap_err();
        assert!(err.to_string().contains("i/o"), "{err}");
        assert!(format!("{err:?}").contains("sync failed"), "{err:?}");
        assert_eq!(capabilities(&file.bytes()), [1]);
        file.fail_sync.store(false, Ordering::SeqCst);
        assert!(sink.record(&ended(3)).is_err(), "the trail stopped");
        assert!(sink.sync().is_err());
        assert_eq!(capabilities(&file.bytes()), [1]);
        check_chain(&file.bytes(), None).unwrap();
    }

    /// Inside `deferring` (the async loops' `request_sent`), `record` returns once the line is
    /// with the OS; the step's effect waits for the `Pending` it hands back, which ends once
    /// the sync thread has synced the line.
    #[test]
    fn a_deferred_line_returns_before_its_sync_and_its_wait_ends_after_it() {
        let file = Flaky::default();
        let sink = file.sink(Durability::Synced);
        let (open, gate) = mpsc::channel();
        *file.sync_gate.lock().unwrap() = Some(gate);
        let (recorded, pending) = durable::deferring(|| sink.record(&ended(1)));
        recorded.unwrap();
        assert_eq!(capabilities(&file.bytes()), [1], "with the OS");
        assert_eq!(file.syncs.load(Ordering::SeqCst), 0, "not synced yet");
        let waiter = std::thread::spawn(move || pending.wait_blocking());
        std::thread::sleep(Duration::from_millis(20));
        assert!(!waiter.is_finished(), "the wait ended before the sync");
        open.send(()).unwrap();
        waiter.join().unwrap().unwrap();
        assert_eq!(file.syncs.load(Ordering::SeqCst), 1);
        // Outside `deferring`, `record` waits itself.
        sink.record(&ended(2)).unwrap();
        assert_eq!(file.syncs.load(Ordering::SeqCst), 2);
    }

    /// A sink dropped while a deferred line still waits for its sync syncs it as it closes:
    /// the wait ends with `Ok`, and the line is on the disk.
    #[test]
    fn a_sink_dropped_while_a_line_waits_syncs_it_first() {
        let file = Flaky::default();
        let sink = file.sink(Durability::Synced);
        let (recorded, pending) = durable::deferring(|| sink.record(&ended(1)));
        recorded.unwrap();
        assert_eq!(file.syncs.load(Ordering::SeqCst), 0);
        drop(sink);
        pending.wait_blocking().unwrap();
        assert_eq!(file.synced(), file.bytes());
        assert_eq!(capabilities(&file.bytes()), [1]);
    }

    /// `sync` at `Synced` waits for every line written so far, deferred ones included.
    #[test]
    fn sync_covers_the_deferred_lines() {
        let file = Flaky::default();
        let sink = file.sink(Durability::Synced);
        let (recorded, _left_to_the_caller) = durable::deferring(|| sink.record(&ended(1)));
        recorded.unwrap();
        sink.sync().unwrap();
        assert_eq!(file.synced(), file.bytes());
        assert_eq!(sink.syncs(), Some((1, 1)));
    }

    /// A deferred line whose sync fails: its wait fails, the line is cut off, and so is every
    /// line written after the last good sync, whoever wrote it.
    #[test]
    fn a_failed_sync_fails_the_deferred_wait_and_cuts_every_unsynced_line() {
        let file = Flaky::default();
        let sink = Arc::new(file.sink(Durability::Synced));
        sink.record(&ended(1)).unwrap();
        let (open, gate) = mpsc::channel();
        *file.sync_gate.lock().unwrap() = Some(gate);
        file.fail_sync.store(true, Ordering::SeqCst);
        let (recorded, pending) = durable::deferring(|| sink.record(&ended(2)));
        recorded.unwrap();
        let waiter = std::thread::spawn(move || pending.wait_blocking());
        // Written while the sync that fails is under way.
        let (recorded, late) = durable::deferring(|| sink.record(&ended(3)));
        recorded.unwrap();
        open.send(()).unwrap();
        assert!(waiter.join().unwrap().is_err());
        assert!(late.wait_blocking().is_err());
        assert_eq!(capabilities(&file.bytes()), [1]);
        assert!(sink.record(&ended(4)).is_err());
    }

    #[test]
    fn a_failed_batch_fails_every_record_in_it_and_later_ones_succeed() {
        let file = Flaky {
            // The first write succeeds, the second (the batch of three) fails.
            fail_nth: Arc::new(AtomicUsize::new(2)),
            ..Flaky::default()
        };
        let sink = Arc::new(file.sink(Durability::Synced));
        let (open, gate) = mpsc::channel();
        *file.gate.lock().unwrap() = Some(gate);
        // The first caller leads and holds its write at the gate.
        let first = {
            let sink = sink.clone();
            std::thread::spawn(move || sink.record(&ended(0)))
        };
        while !sink.group.writing() {
            std::thread::sleep(Duration::from_millis(1));
        }
        // Three more queue up behind it: they will be one batch.
        let followers: Vec<_> = (1..=3)
            .map(|i| {
                let sink = sink.clone();
                std::thread::spawn(move || sink.record(&ended(i)))
            })
            .collect();
        while sink.group.queued() < 3 {
            std::thread::sleep(Duration::from_millis(1));
        }
        open.send(()).unwrap();
        first.join().unwrap().unwrap();
        for follower in followers {
            let err = follower.join().unwrap().unwrap_err();
            assert!(matches!(&err, AuditError::Io(e) if e.kind() == io::ErrorKind::StorageFull));
        }
        assert_eq!(
            file.appends.load(Ordering::SeqCst),
            2,
            "one write per batch"
        );
        assert_eq!(capabilities(&file.bytes()), [0]);
        sink.record(&ended(9)).unwrap();
        let bytes = file.bytes();
        assert_eq!(capabilities(&bytes), [0, 9]);
        assert_eq!(check_chain(&bytes, None).unwrap().seq, 2);
    }

    #[test]
    fn events_are_stamped_by_the_sink_in_order() {
        let file = Flaky::default();
        let sink = file.sink(Durability::Flushed);
        let mut old = ended(1);
        old.at = DateTime::<Utc>::UNIX_EPOCH;
        let before = Utc::now();
        sink.record(&old).unwrap();
        let bytes = file.bytes();
        let line = chain::lines(&bytes).next().unwrap();
        assert!(chain::parse(line.bytes).unwrap().event.at >= before);
    }

    #[test]
    fn at_is_written_as_serde_writes_it() {
        let base = Utc::now().timestamp();
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut cases = vec![
            DateTime::<Utc>::UNIX_EPOCH,
            DateTime::<Utc>::MIN_UTC,
            DateTime::<Utc>::MAX_UTC,
            DateTime::from_timestamp(-62_167_219_200, 5).unwrap(), // year 0
            DateTime::from_timestamp(253_402_300_799, 999_999_999).unwrap(), // 9999-12-31
            Utc::now(),
        ];
        for _ in 0..20_000 {
            let secs = base + i64::try_from(next() % 4_000_000_000).unwrap() - 2_000_000_000;
            let nanos = match next() % 4 {
                0 => 0,
                1 => u32::try_from(next() % 1000).unwrap() * 1_000_000,
                2 => u32::try_from(next() % 1_000_000).unwrap() * 1000,
                _ => u32::try_from(next() % 1_000_000_000).unwrap(),
            };
            cases.push(DateTime::from_timestamp(secs, nanos).unwrap());
        }
        for at in cases {
            let mut mine = Vec::new();
            write_at(&mut mine, &at).unwrap();
            assert_eq!(
                String::from_utf8(mine).unwrap(),
                serde_json::to_string(&at).unwrap()
            );
        }
    }

    /// One event of every kind, with escapes and `null`s.
    fn every_kind() -> Vec<AuditEvent> {
        use crate::audit::{ResponseKind, TransportFailure};
        use crate::protocol::CallState;
        use crate::status::RecordingStatus;
        let s = || "a \"quoted\" \\ line\n\u{1}é".to_owned();
        [
            AuditKind::RequestSent {
                status: RecordingStatus::NotRecording,
                client_context: s(),
                client_request_id: "r".to_owned(),
            },
            AuditKind::ResponseReceived {
                client_request_id: "r".to_owned(),
                http_status: 200,
                outcome: ResponseKind::GraphError,
                operation_id: None,
                request_id: Some(s()),
                echoed_client_request_id: Some(s()),
                date: Some(s()),
            },
            AuditKind::OperationUpdate {
                operation_id: Some("o".to_owned()),
                client_context: None,
                status: None,
                matched: false,
                via: s(),
                reason: None,
            },
            AuditKind::OperationUpdate {
                operation_id: None,
                client_context: Some(s()),
                status: Some("completed".to_owned()),
                matched: true,
                via: "jwt".to_owned(),
                reason: Some(s()),
            },
            AuditKind::NotificationAccepted {
                via: s(),
                routed: 2,
                ignored: 0,
            },
            AuditKind::NotificationIgnored {
                operation_id: None,
                client_context: None,
                status: None,
                reason: s(),
            },
            AuditKind::LateCompletion {
                operation_id: None,
                client_context: s(),
            },
            AuditKind::TransportFailed {
                client_request_id: "r".to_owned(),
                kind: TransportFailure::Timeout,
                error: s(),
            },
            AuditKind::Transition {
                from: CallState::PendingRecording,
                to: CallState::Recording,
                reason: s(),
            },
            AuditKind::RetentionStarted {
                capability: u64::MAX,
                owned: true,
            },
            AuditKind::RetentionEnded { capability: 0 },
            AuditKind::DrainStarted { outstanding: 3 },
            AuditKind::DrainTimedOut { outstanding: 1 },
            AuditKind::RetentionRevoked { outstanding: 0 },
            AuditKind::TrailResumed {
                torn_bytes: 13,
                offset: 0,
            },
            AuditKind::CallTerminated {
                code: Some(-1),
                subcode: None,
                message: Some(s()),
            },
            AuditKind::HubForgot {
                what: "early_update".to_owned(),
                reason: s(),
            },
            AuditKind::KeysRotated {
                added: vec![s(), "k".to_owned()],
                removed: vec![],
            },
            AuditKind::ReportSuperseded {
                status: RecordingStatus::Failed,
                episode: 1,
                current_episode: 2,
            },
        ]
        .into_iter()
        .map(|kind| AuditEvent::now(s(), kind))
        .collect()
    }

    #[test]
    fn lines_are_the_events_as_serde_writes_them() {
        for event in every_kind() {
            let mut line = b"{\"at\":".to_vec();
            write_at(&mut line, &event.at).unwrap();
            line.push(b',');
            write_rest(&mut line, &event).unwrap();
            assert_eq!(
                String::from_utf8(line).unwrap(),
                serde_json::to_string(&event).unwrap()
            );
            let mut queued = Vec::new();
            Entry::new(&event).unwrap().write_rest(&mut queued).unwrap();
            let mut direct = Vec::new();
            event.write_rest(&mut direct).unwrap();
            assert_eq!(queued, direct);
        }
    }

    #[test]
    fn every_kind_reads_back_from_the_file() {
        let file = Flaky::default();
        let sink = file.sink(Durability::Flushed);
        let events = every_kind();
        sink.record(&events[0]).unwrap();
        sink.record_batch(&events[1..]).unwrap();
        let bytes = file.bytes();
        let back: Vec<_> = chain::lines(&bytes)
            .map(|l| chain::parse(l.bytes).unwrap().event)
            .collect();
        assert_eq!(back.len(), events.len());
        for (back, event) in back.iter().zip(&events) {
            assert_eq!((&back.call_id, &back.kind), (&event.call_id, &event.kind));
        }
        assert_eq!(check_chain(&bytes, None).unwrap().seq, events.len() as u64);
    }

    #[test]
    fn the_key_never_shows_in_debug() {
        let options = JsonLinesSink::options().key(*b"hunter2-secret");
        assert!(!format!("{options:?}").contains("hunter2"));
        let dir = tempfile::tempdir().unwrap();
        let sink = options.open(dir.path().join("a.jsonl")).unwrap();
        let debug = format!("{sink:?}");
        assert!(
            !debug.contains("hunter2") && debug.contains("keyed: true"),
            "{debug}"
        );
    }

    /// Two tasks stamp events, and the later stamp wins the lock: the memory trail is still
    /// in time order, and verifies.
    #[test]
    fn a_memory_trail_stays_in_time_order() {
        let sink = MemorySink::default();
        let later = AuditEvent::now("c1", AuditKind::RetentionEnded { capability: 1 });
        let mut earlier = later.clone();
        earlier.at = later.at - chrono::Duration::seconds(1);
        sink.record(&later).unwrap();
        sink.record(&earlier).unwrap();
        sink.record_batch(&[earlier.clone(), later.clone()])
            .unwrap();
        let at: Vec<_> = sink.events().iter().map(|e| e.at).collect();
        assert_eq!(at, [later.at; 4]);
    }
}
