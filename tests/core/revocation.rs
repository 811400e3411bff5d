//! G8, "revocation is final", observed from the inner writer's side: once `Call::end()` has
//! returned, or a `Call<Recording>` has been dropped, no inner write of a `RetentionWriter` is
//! in flight and none starts; one check covers one inner write, never a whole buffer.
//!
//! Each test would catch a writer whose one check covered a whole `write_all` (so that the
//! rest of a buffer is written after revocation), or a revocation that returns without waiting
//! for the inner write in flight.
//!
//! How a violation is seen: right after `end()` (or the drop) returned, the main thread stores
//! `ended` and then reads how many inner writes are in flight; every inner write first counts
//! itself in flight and then reads `ended`. With sequentially consistent atomics at least one
//! side sees the other, so an inner write that is in flight after `end()` returned, or starts
//! after it, is always counted. No test asserts on a duration: sleeps only widen the windows
//! in which such a writer or revocation would be caught, and waits are bounded.

use std::io::{self, BufWriter, Write};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use recording_status::audit::MemorySink;
use recording_status::testing::Step;
use recording_status::{Call, Recording, RetentionHandle, RetentionWriter};

use crate::support::graph::{graph, recording_blocking};

/// The longest any wait in these tests may last. Only a bound, never asserted on.
const BOUND: Duration = Duration::from_secs(10);

/// How long the first inner write stays in flight once revocation has begun, so that `end()`
/// is provably waiting for it (a revocation that did not wait would return while it is in
/// flight).
const IN_FLIGHT: Duration = Duration::from_millis(50);

/// A call in `Recording`, acknowledged by a scripted Graph.
fn recording() -> Call<Recording> {
    recording_blocking(&graph([Step::completed()]), Arc::new(MemorySink::default()))
}

/// What the inner writers saw.
#[derive(Debug, Default)]
struct Probe {
    /// Set by the main thread once `end()` (or the drop) has returned.
    ended: AtomicBool,
    in_flight: AtomicUsize,
    writes: AtomicUsize,
    bytes: AtomicUsize,
    started_after_end: AtomicUsize,
}

impl Probe {
    /// At the start of every inner write.
    fn start(&self) {
        self.in_flight.fetch_add(1, SeqCst);
        self.writes.fetch_add(1, SeqCst);
        if self.ended.load(SeqCst) {
            self.started_after_end.fetch_add(1, SeqCst);
        }
    }

    /// At the end of every inner write that took `bytes`.
    fn finish(&self, bytes: usize) {
        self.bytes.fetch_add(bytes, SeqCst);
        self.in_flight.fetch_sub(1, SeqCst);
    }

    /// By the main thread, right after `end()` or the drop returned: how many inner writes
    /// are in flight.
    fn mark_ended(&self) -> usize {
        self.ended.store(true, SeqCst);
        self.in_flight.load(SeqCst)
    }

    fn after_end(&self) -> usize {
        self.started_after_end.load(SeqCst)
    }

    /// Waits (bounded) until the inner writers have started `writes` writes.
    fn wait_for_writes(&self, writes: usize) {
        let deadline = Instant::now() + BOUND;
        while self.writes.load(SeqCst) < writes && Instant::now() < deadline {
            thread::yield_now();
        }
    }
}

/// Holds the first inner write in flight: tells the main thread it has started, waits
/// (bounded) until revocation has begun, then stays in flight for [`IN_FLIGHT`].
#[derive(Debug)]
struct HoldFirst {
    started: Option<mpsc::Sender<()>>,
    /// A capability of the same call, only to watch for the revocation.
    watch: RetentionHandle,
    /// Set when the held write is about to return.
    finished: Arc<AtomicBool>,
}

impl HoldFirst {
    fn new(call: &Call<Recording>) -> (Self, mpsc::Receiver<()>, Arc<AtomicBool>) {
        let (started, on_start) = mpsc::channel();
        let finished = Arc::new(AtomicBool::new(false));
        let hold = Self {
            started: Some(started),
            watch: call.retention_handle().unwrap(),
            finished: finished.clone(),
        };
        (hold, on_start, finished)
    }

    /// Called at the start of each inner write; holds the first one.
    fn hold(&mut self) {
        let Some(started) = self.started.take() else {
            return;
        };
        started.send(()).unwrap();
        let deadline = Instant::now() + BOUND;
        while !self.watch.is_revoked() && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(1));
        }
        thread::sleep(IN_FLIGHT);
        self.finished.store(true, SeqCst);
    }
}

/// An inner writer that takes at most 64 bytes per `write` (or `poll_write`), and holds the
/// first one in flight.
#[derive(Debug)]
struct Chunky {
    probe: Arc<Probe>,
    hold: HoldFirst,
}

impl Chunky {
    fn take(&mut self, buf: &[u8]) -> usize {
        self.probe.start();
        self.hold.hold();
        let n = buf.len().min(64);
        self.probe.finish(n);
        n
    }
}

impl Write for Chunky {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Ok(self.take(buf))
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(feature = "tokio")]
impl tokio::io::AsyncWrite for Chunky {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<io::Result<usize>> {
        std::task::Poll::Ready(Ok(self.get_mut().take(buf)))
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

/// Asserts what the chunked tests expect once the media thread has returned.
fn assert_only_the_held_write_completed(
    probe: &Probe,
    held_finished_before_end_returned: bool,
    in_flight_after_end: usize,
    result: io::Result<()>,
) {
    assert!(
        held_finished_before_end_returned,
        "end() returned while an inner write was in flight"
    );
    assert_eq!(
        in_flight_after_end, 0,
        "inner writes in flight after end() returned"
    );
    assert_eq!(
        probe.after_end(),
        0,
        "inner writes started after end() returned ({} writes, {} bytes in all)",
        probe.writes.load(SeqCst),
        probe.bytes.load(SeqCst)
    );
    assert_eq!(
        result.expect_err("write_all must fail once revoked").kind(),
        io::ErrorKind::PermissionDenied
    );
    assert_eq!(
        probe.bytes.load(SeqCst),
        64,
        "only the write in flight when revocation began may complete"
    );
}

#[test]
fn write_all_checks_every_inner_write() {
    let call = recording();
    let probe = Arc::new(Probe::default());
    let (hold, on_start, held_finished) = HoldFirst::new(&call);
    let inner = Chunky {
        probe: probe.clone(),
        hold,
    };
    let mut writer = RetentionWriter::new(call.retention_handle().unwrap(), inner);
    let media = thread::spawn(move || writer.write_all(&[0xA5; 64 * 1024]));

    on_start
        .recv_timeout(BOUND)
        .expect("the first inner write started");
    drop(call.end());
    let in_flight = probe.mark_ended();
    let waited = held_finished.load(SeqCst);

    let result = media.join().unwrap();
    assert_only_the_held_write_completed(&probe, waited, in_flight, result);
}

#[cfg(feature = "tokio")]
#[test]
fn async_write_holds_the_capability_across_each_poll() {
    let call = recording();
    let probe = Arc::new(Probe::default());
    let (hold, on_start, held_finished) = HoldFirst::new(&call);
    let inner = Chunky {
        probe: probe.clone(),
        hold,
    };
    let mut writer = RetentionWriter::new(call.retention_handle().unwrap(), inner);
    let media = thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        runtime.block_on(tokio::io::AsyncWriteExt::write_all(
            &mut writer,
            &[0xA5; 64 * 1024],
        ))
    });

    on_start
        .recv_timeout(BOUND)
        .expect("the first poll_write started");
    drop(call.end());
    let in_flight = probe.mark_ended();
    let waited = held_finished.load(SeqCst);

    let result = media.join().unwrap();
    assert_only_the_held_write_completed(&probe, waited, in_flight, result);
}

/// Counts inner writes and takes at most half a frame per write, so that a frame is two inner
/// writes; yields in the middle of each so that some are in flight when the call ends.
#[derive(Debug)]
struct Counting {
    probe: Arc<Probe>,
}

impl Write for Counting {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.probe.start();
        thread::yield_now();
        let n = buf.len().min(FRAME.len() / 2);
        self.probe.finish(n);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

const TRIALS: u64 = 400;
const WRITERS: usize = 3;
const FRAME: [u8; 16] = [0xA5; 16];
/// A bound on each writer's loop; the call always ends long before.
const MAX_FRAMES: usize = 1_000_000;

/// What one trial saw go wrong.
#[derive(Debug, Default, Clone, Copy)]
struct Violations {
    in_flight: usize,
    started_after: usize,
}

/// One race: three threads write 16-byte frames through clones of one handle; after a
/// pseudo-random number of frames the main thread revokes with `revoke` (end or drop).
fn race(seed: u64, revoke: fn(Call<Recording>)) -> Violations {
    let call = recording();
    let probe = Arc::new(Probe::default());
    let handle = call.retention_handle().unwrap();
    let writers: Vec<_> = (0..WRITERS)
        .map(|_| {
            let mut writer = RetentionWriter::new(
                handle.clone(),
                Counting {
                    probe: probe.clone(),
                },
            );
            thread::spawn(move || {
                for _ in 0..MAX_FRAMES {
                    if let Err(e) = writer.write_all(&FRAME) {
                        return e.kind();
                    }
                }
                panic!("the call never ended");
            })
        })
        .collect();
    drop(handle);

    // xorshift: 1 to 256 frames before the revocation, different in every trial.
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    probe.wait_for_writes(1 + (x % 256) as usize);

    revoke(call);
    let in_flight = probe.mark_ended();
    for writer in writers {
        assert_eq!(writer.join().unwrap(), io::ErrorKind::PermissionDenied);
    }
    Violations {
        in_flight,
        started_after: probe.after_end(),
    }
}

fn assert_no_write_after(what: &str, revoke: fn(Call<Recording>)) {
    let mut failed = Vec::new();
    for trial in 0..TRIALS {
        let v = race(trial, revoke);
        if v.in_flight + v.started_after > 0 {
            failed.push((trial, v));
        }
    }
    let in_flight = failed.iter().filter(|(_, v)| v.in_flight > 0).count();
    let started = failed.iter().filter(|(_, v)| v.started_after > 0).count();
    assert!(
        failed.is_empty(),
        "{} of {TRIALS} trials failed: in {in_flight} an inner write was in flight when {what} \
         returned, in {started} one started after it; the first: {:?}",
        failed.len(),
        &failed[..failed.len().min(5)]
    );
}

#[test]
fn no_inner_write_starts_after_end_returns_under_races() {
    assert_no_write_after("end()", |call| drop(call.end()));
}

#[test]
fn no_inner_write_starts_after_drop_returns_under_races() {
    assert_no_write_after("the drop of the call", drop);
}

/// A real file behind a thin wrapper that holds the first large write in flight (see
/// [`HoldFirst`]); every byte it is given reaches the file.
#[derive(Debug)]
struct HeldFile {
    file: std::fs::File,
    probe: Arc<Probe>,
    hold: HoldFirst,
}

impl Write for HeldFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.probe.start();
        if buf.len() >= LARGE {
            self.hold.hold();
        }
        let n = self.file.write(buf);
        self.probe.finish(*n.as_ref().unwrap_or(&0));
        n
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// Larger than the `BufWriter`'s buffer, so it goes to the `RetentionWriter` in one piece.
const LARGE: usize = 256 * 1024;

#[test]
fn buffer_outside_the_writer_persists_nothing_after_revocation_even_when_dropped() {
    let call = recording();
    let file = tempfile::NamedTempFile::new().unwrap();
    let path = file.path().to_owned();
    let probe = Arc::new(Probe::default());
    let (hold, on_start, held_finished) = HoldFirst::new(&call);
    let inner = HeldFile {
        file: file.reopen().unwrap(),
        probe: probe.clone(),
        hold,
    };
    let mut storage = BufWriter::new(RetentionWriter::new(
        call.retention_handle().unwrap(),
        inner,
    ));

    let before = b"frames written and flushed while recording".to_vec();
    storage.write_all(&before).unwrap();
    storage.flush().unwrap();
    let large = vec![0xA5; LARGE];
    let media = thread::spawn(move || {
        // Bypasses the buffer: one inner write, in flight when the call ends.
        let result = storage.write_all(&large);
        (result, storage)
    });

    on_start
        .recv_timeout(BOUND)
        .expect("the large write started");
    drop(call.end());
    let in_flight = probe.mark_ended();
    let waited = held_finished.load(SeqCst);
    let at_end = std::fs::read(&path).unwrap();

    let (result, mut storage) = media.join().unwrap();
    assert!(
        waited,
        "end() returned while a write to the file was in flight"
    );
    assert_eq!(
        in_flight, 0,
        "writes to the file in flight after end() returned"
    );
    result.expect("the write that entered before revocation completes");

    // Accepted by the buffer after revocation: never reaches the file, neither by an explicit
    // flush nor by the flush `BufWriter` attempts when dropped.
    storage
        .write_all(b"tail buffered after revocation")
        .unwrap();
    assert_eq!(
        storage.flush().unwrap_err().kind(),
        io::ErrorKind::PermissionDenied
    );
    storage.write_all(b"more tail").unwrap();
    drop(storage);

    let persisted = std::fs::read(&path).unwrap();
    assert_eq!(
        probe.after_end(),
        0,
        "writes to the file after end() returned"
    );
    assert_eq!(
        persisted.len(),
        at_end.len(),
        "bytes reached the file after end() returned"
    );
    assert_eq!(persisted, [before, vec![0xA5; LARGE]].concat());
}

/// A handle cloned after the call ended is inert: a writer built on it (which gets a slot of
/// no gate) refuses every write, and nothing reaches the inner writer.
#[test]
fn a_writer_on_a_handle_cloned_after_end_writes_nothing() {
    let call = recording();
    let handle = call.retention_handle().unwrap();
    drop(call.end());
    let late = handle.clone();
    drop(handle);
    let mut writer = RetentionWriter::new(late, Vec::new());
    let refused = writer.write(b"frame").unwrap_err();
    assert_eq!(refused.kind(), io::ErrorKind::PermissionDenied);
    assert_eq!(
        writer.flush().unwrap_err().kind(),
        io::ErrorKind::PermissionDenied
    );
    let refused = writer.finish().unwrap_err();
    assert_eq!(refused.kind(), io::ErrorKind::PermissionDenied);
}
