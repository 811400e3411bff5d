//! [`HttpWitness`]: checkpoints POSTed to an endpoint through the bot's transport, from a
//! task of their own (feature `driver`).

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::sync::Notify;

use super::{SignedCheckpoint, Witness};
use crate::error::AuditError;
use crate::transport::Transport;

/// How many times a note is tried before it is given up.
const ATTEMPTS: u32 = 3;
/// The pause after the first failed attempt; doubled after each.
const FIRST_PAUSE: Duration = Duration::from_millis(250);
/// How long one attempt may take.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);

/// A witness that POSTs each checkpoint's note (`content-type: text/plain; charset=utf-8`,
/// the body exactly [`SignedCheckpoint::to_note`]) to an endpoint the operator does not
/// control, through the bot's [`Transport`]. A 2xx answer means the endpoint took it.
///
/// The sink calls [`witness`](Witness::witness) synchronously, so this only queues the note
/// and returns: the [`HttpWitnessTask`] that [`new`](Self::new) returns sends the queued
/// notes in order, one at a time. Spawn it on the bot's runtime.
///
/// - **The bound.** At most `capacity` notes wait. When one more comes, the **oldest waiting
///   note is dropped**: a newer checkpoint covers everything an older one did (the chain
///   value of line `seq` commits to every line before it); only the older one's time is
///   lost. Each drop is logged (`tracing::warn!`) and counted
///   ([`HttpWitnessStats::dropped`]).
/// - **Failures.** A transport error, a non-2xx answer or an attempt past 10 s is tried
///   again, up to 3 attempts with pauses of 250 ms then 500 ms, unless a newer note is
///   waiting (it is sent instead: counted as dropped). A note given up is logged
///   (`tracing::error!`) and counted ([`HttpWitnessStats::failed`]).
/// - **The end.** The task ends once every `HttpWitness` handle is dropped (the sink
///   holding it too) and every waiting note was sent or given up. At shutdown, after the
///   trail's last [`sync`](crate::audit::AuditSink::sync) (which signs the final
///   checkpoint), drop the sink and await the task, so that the final checkpoint leaves.
///   Dropping the task instead (or the runtime) loses the notes still waiting: logged
///   (`tracing::error!`) with their number.
///
/// # Example
/// ```
/// use std::sync::Arc;
/// use recording_status::audit::{CheckpointOptions, CheckpointSigner, HttpWitness, JsonLinesSink};
/// use recording_status::transport::HttpRequest;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let transport = |request: HttpRequest| async move {
///     // The bot's HTTP client sends `request` to the witness here.
///     http::Response::builder().status(201).body(Vec::new())
/// };
/// let (witness, task) = HttpWitness::new(transport, "https://witness.example/add-checkpoint".parse()?, 64);
/// let sending = tokio::spawn(task);
/// let witness = Arc::new(witness);
/// let dir = tempfile::tempdir()?;
/// let signer = CheckpointSigner::new("bot-1", [7; 32])?;
/// let sink = JsonLinesSink::options()
///     .checkpoints(CheckpointOptions::new("example.com/bot-1/audit", signer, witness.clone())?)
///     .open(dir.path().join("audit.jsonl"))?;
/// sink.checkpoint()?;
/// drop((sink, witness));
/// sending.await?; // every note sent
/// # Ok(())
/// # }
/// ```
pub struct HttpWitness {
    shared: Arc<Shared>,
}

impl fmt::Debug for HttpWitness {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpWitness")
            .field("url", &self.shared.url)
            .field("capacity", &self.shared.capacity)
            .field("stats", &self.stats())
            .finish()
    }
}

/// What an [`HttpWitness`] did so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct HttpWitnessStats {
    /// Notes the endpoint took (a 2xx answer).
    pub sent: u64,
    /// Notes dropped while waiting, for a newer one: at the bound, or after a failed attempt.
    pub dropped: u64,
    /// Notes given up after their last attempt failed.
    pub failed: u64,
    /// Notes waiting now.
    pub waiting: u64,
}

/// The queue, the counters, and where the notes go.
#[derive(Debug)]
struct Shared {
    url: http::Uri,
    capacity: usize,
    queue: Mutex<Queue>,
    woken: Notify,
    sent: AtomicU64,
    dropped: AtomicU64,
    failed: AtomicU64,
}

#[derive(Debug, Default)]
struct Queue {
    notes: VecDeque<String>,
    /// Every handle is gone: no note will come.
    closed: bool,
}

impl Shared {
    fn queue(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl HttpWitness {
    /// A witness POSTing to `url` through `transport`, with at most `capacity` notes waiting
    /// (at least 1), and the task that sends them: spawn it (or await it) on the bot's
    /// runtime. See the type's docs for the bound, failures and the end.
    ///
    /// # Example
    /// ```
    /// use recording_status::audit::HttpWitness;
    /// use recording_status::transport::HttpRequest;
    ///
    /// let transport = |_: HttpRequest| async { http::Response::builder().status(200).body(Vec::new()) };
    /// let (witness, task) = HttpWitness::new(transport, "http://127.0.0.1:9/".parse()?, 16);
    /// assert_eq!(witness.stats().waiting, 0);
    /// # drop(task);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new<T: Transport + 'static>(
        transport: T,
        url: http::Uri,
        capacity: usize,
    ) -> (Self, HttpWitnessTask) {
        let shared = Arc::new(Shared {
            url,
            capacity: capacity.max(1),
            queue: Mutex::new(Queue::default()),
            woken: Notify::new(),
            sent: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            failed: AtomicU64::new(0),
        });
        let task = HttpWitnessTask {
            future: Box::pin(send_all(transport, Arc::clone(&shared))),
        };
        (Self { shared }, task)
    }

    /// What the witness did so far.
    pub fn stats(&self) -> HttpWitnessStats {
        let s = &self.shared;
        HttpWitnessStats {
            sent: s.sent.load(Ordering::Relaxed),
            dropped: s.dropped.load(Ordering::Relaxed),
            failed: s.failed.load(Ordering::Relaxed),
            waiting: s.queue().notes.len() as u64,
        }
    }
}

impl Witness for HttpWitness {
    /// Queues the note for the task and returns; drops the oldest waiting note at the bound.
    /// Never fails.
    fn witness(&self, checkpoint: &SignedCheckpoint) -> Result<(), AuditError> {
        let mut queue = self.shared.queue();
        queue.notes.push_back(checkpoint.to_note());
        if queue.notes.len() > self.shared.capacity {
            queue.notes.pop_front();
            let dropped = self.shared.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            tracing::warn!(url = %self.shared.url, capacity = self.shared.capacity, dropped,
                "checkpoint witness queue full: the oldest waiting checkpoint is dropped (the newer one covers it)");
        }
        drop(queue);
        self.shared.woken.notify_one();
        Ok(())
    }
}

impl Drop for HttpWitness {
    fn drop(&mut self) {
        self.shared.queue().closed = true;
        self.shared.woken.notify_one();
    }
}

/// The task of an [`HttpWitness`]: sends its notes, in order, and ends once every handle
/// is dropped and no note waits. Spawn it on the bot's runtime (it needs tokio's timer).
///
/// Dropped before its end, it sends nothing more; the notes still waiting are lost, and
/// their number is logged (`tracing::error!`).
#[must_use = "the notes are sent only while the task is polled: spawn it"]
pub struct HttpWitnessTask {
    future: Pin<Box<dyn Future<Output = ()> + Send>>,
}

impl fmt::Debug for HttpWitnessTask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpWitnessTask").finish_non_exhaustive()
    }
}

impl Future for HttpWitnessTask {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.future.as_mut().poll(cx)
    }
}

/// Logs the notes left waiting if the task is dropped before its end.
struct Leftovers(Arc<Shared>);

impl Drop for Leftovers {
    fn drop(&mut self) {
        let waiting = self.0.queue().notes.len();
        if waiting > 0 {
            tracing::error!(url = %self.0.url, waiting,
                "checkpoint witness task dropped with checkpoints not sent");
        }
    }
}

async fn send_all<T: Transport>(transport: T, shared: Arc<Shared>) {
    let _leftovers = Leftovers(Arc::clone(&shared));
    loop {
        let next = {
            let mut queue = shared.queue();
            match queue.notes.pop_front() {
                Some(note) => Some(note),
                None if queue.closed => return,
                None => None,
            }
        };
        let Some(note) = next else {
            // `notify_one` keeps a permit for a note queued after the check above.
            shared.woken.notified().await;
            continue;
        };
        send_one(&transport, &shared, note).await;
    }
}

/// Sends one note, trying again after a failure unless a newer note waits.
async fn send_one<T: Transport>(transport: &T, shared: &Shared, note: String) {
    let mut pause = FIRST_PAUSE;
    for attempt in 1..=ATTEMPTS {
        let request = http::Request::post(shared.url.clone())
            .header(http::header::CONTENT_TYPE, "text/plain; charset=utf-8")
            .body(note.clone().into_bytes());
        let request = match request {
            Ok(r) => r,
            Err(e) => {
                shared.failed.fetch_add(1, Ordering::Relaxed);
                tracing::error!(error = %e, url = %shared.url, "checkpoint witness request could not be built");
                return;
            }
        };
        let error = match tokio::time::timeout(ATTEMPT_TIMEOUT, transport.send(request)).await {
            Ok(Ok(response)) if response.status().is_success() => {
                shared.sent.fetch_add(1, Ordering::Relaxed);
                return;
            }
            Ok(Ok(response)) => format!("answered {}", response.status()),
            Ok(Err(e)) => format!("transport failed: {e}"),
            Err(_) => format!("no answer within {ATTEMPT_TIMEOUT:?}"),
        };
        if !shared.queue().notes.is_empty() {
            shared.dropped.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(url = %shared.url, attempt, error,
                "checkpoint witness refused a checkpoint; a newer one waits and is sent instead");
            return;
        }
        if attempt == ATTEMPTS {
            shared.failed.fetch_add(1, Ordering::Relaxed);
            tracing::error!(url = %shared.url, attempt, error,
                "checkpoint witness refused a checkpoint; given up");
            return;
        }
        tracing::warn!(url = %shared.url, attempt, error, "checkpoint witness refused a checkpoint; trying again");
        tokio::time::sleep(pause).await;
        pause *= 2;
    }
}
