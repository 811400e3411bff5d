//! What the typestate costs next to the work it guards.
//!
//! - `status_change/*`: a full `NotRecording → Recording → NotRecording` round trip (two
//!   requests answered `completed` in process), three ways (see `support/round_trip.rs` for
//!   what each includes): through the typed API (`typed_round_trip`: registry, typestate,
//!   retention bookkeeping, audit to a sink that keeps nothing), through the crate's sans-IO
//!   functions alone (`sans_io_round_trip`: `UpdateRequest` and `interpret_response`), and with
//!   bare `serde_json` and `http` (`plain_serde_and_http`).
//!   - `interleaved_{typed,sans_io,plain}`: the three in one run, rotating blocks of
//!     [`ROUND_TRIP_BLOCK`] round trips between them (and which goes first), each timed on its
//!     own; each reports its own side of the same runs. Afterwards the bench prints ns per
//!     round trip each way over every block it ran (warm-up included), and the ratios
//!     typed / sans-IO and typed / plain.
//! - `request/*`, `response/*`: the pure request builder and response interpreter.
//! - `media/*`: writing frames through a `RetentionWriter` against writing them directly, into
//!   memory and into a buffered file, for 64 B, 1 KiB and 16 KiB frames.
//!   - `{memory,file}_{raw,retention}`: criterion's usual measurement, one writer after the
//!     other (their ratio drifts with whatever else the machine does in between).
//!   - `gate_enter_leave`: an empty write through a `RetentionWriter` into [`std::io::sink`]:
//!     entering and leaving the retention gate once around an inner write that does nothing,
//!     which is what a `RetentionWriter` adds to every inner write.
//!   - `interleaved_{memory,file}_{raw,retention}`: both writers in one run, alternating blocks
//!     of [`BLOCK`] frames (which side goes first alternates too), each side timed on its own;
//!     `_raw` reports the raw side's time, `_retention` the guarded side's, of the same runs.
//!     After each pair the bench prints both sides' ns per frame over every block it ran
//!     (warm-up included) and their ratio, guarded / raw.

#[path = "support/round_trip.rs"]
mod round_trip;
mod support;

use std::hint::black_box;
use std::io::{BufWriter, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use recording_status::audit::AuditSink;
use recording_status::request::UpdateRequest;
use recording_status::response::interpret_response;
use recording_status::{
    AccessToken, Begin, CallId, Endpoint, Graph, RecordingStatus, RetentionWriter,
};
use round_trip::{CALL, COMPLETED, Plain, SansIo, Typed, completed};
use support::Discard;

const ERROR: &[u8] = br#"{"error":{"code":"activityLimitReached","message":"throttled","innerError":{"code":"throttledRequest","date":"2021-07-02T01:40:19","request-id":"1a0ffbc0-0000","client-request-id":"225aed2b-0000"}}}"#;

/// Round trips per block in the interleaved `status_change` measurement.
const ROUND_TRIP_BLOCK: u64 = 16;

/// The three ways of [`round_trip`], measured side by side: blocks of [`ROUND_TRIP_BLOCK`]
/// round trips rotate between them (and which goes first rotates too), each way's time summed
/// on its own.
struct Trio {
    typed: Typed,
    sans_io: SansIo,
    plain: Plain,
    totals: [Duration; 3],
    round_trips: u64,
    blocks: u64,
}

impl Trio {
    const NAMES: [&'static str; 3] = ["typed", "sans_io", "plain"];

    /// Runs `n` round trips each way; returns each way's time.
    fn run(&mut self, n: u64) -> [Duration; 3] {
        let mut spent = [Duration::ZERO; 3];
        let mut done = 0;
        while done < n {
            let k = ROUND_TRIP_BLOCK.min(n - done);
            for turn in 0..3 {
                let way = (turn + self.blocks as usize) % 3;
                let start = Instant::now();
                for _ in 0..k {
                    let ok = match way {
                        0 => self.typed.round_trip(),
                        1 => self.sans_io.round_trip(),
                        _ => self.plain.round_trip(),
                    };
                    assert!(ok);
                }
                spent[way] += start.elapsed();
            }
            done += k;
            self.blocks += 1;
        }
        for (total, s) in self.totals.iter_mut().zip(spent) {
            *total += s;
        }
        self.round_trips += n;
        spent
    }
}

fn status_change(c: &mut Criterion) {
    let mut g = c.benchmark_group("status_change");
    let audit: Arc<dyn AuditSink> = Arc::new(Discard);
    let typed = Typed::new(audit.clone());
    g.bench_function("typed_round_trip", |b| b.iter(|| typed.round_trip()));
    let sans_io = SansIo::new();
    g.bench_function("sans_io_round_trip", |b| b.iter(|| sans_io.round_trip()));
    let plain = Plain::new();
    g.bench_function("plain_serde_and_http", |b| b.iter(|| plain.round_trip()));

    let mut trio = Trio {
        typed,
        sans_io,
        plain,
        totals: [Duration::ZERO; 3],
        round_trips: 0,
        blocks: 0,
    };
    for (way, name) in Trio::NAMES.iter().enumerate() {
        g.bench_function(format!("interleaved_{name}"), |b| {
            b.iter_custom(|iters| trio.run(iters)[way]);
        });
    }
    g.finish();
    let per = |way: usize| trio.totals[way].as_nanos() as f64 / trio.round_trips as f64;
    let [typed, sans_io, plain] = [per(0), per(1), per(2)];
    println!(
        "status_change/interleaved: typed {typed:.0} ns/round trip, sans_io {sans_io:.0}, \
         plain {plain:.0}; typed/sans_io {:.3}, typed/plain {:.3}, sans_io/plain {:.3} \
         (over {} round trips each)",
        typed / sans_io,
        typed / plain,
        sans_io / plain,
        trio.round_trips
    );
}

fn request_response(c: &mut Criterion) {
    let endpoint = Endpoint::default();
    let token = AccessToken::new("token");
    let id: CallId = CALL.parse().unwrap();
    c.bench_function("request/build", |b| {
        b.iter(|| {
            UpdateRequest::new(RecordingStatus::Recording)
                .to_http(&endpoint, black_box(&id), &token)
                .unwrap()
        });
    });
    let ok = http::Response::builder()
        .status(200)
        .body(COMPLETED.to_vec())
        .unwrap();
    let err = http::Response::builder()
        .status(429)
        .header("request-id", "r")
        .body(ERROR.to_vec())
        .unwrap();
    c.bench_function("response/completed", |b| {
        b.iter(|| interpret_response(black_box(&ok)));
    });
    c.bench_function("response/graph_error", |b| {
        b.iter(|| interpret_response(black_box(&err)));
    });
}

/// A fixed memory buffer written round and round, so long runs do not grow memory.
struct Ring {
    buf: Vec<u8>,
    pos: usize,
}

impl Ring {
    fn new() -> Self {
        Self {
            buf: vec![0; 1 << 20],
            pos: 0,
        }
    }
}

impl Write for Ring {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        if self.pos + data.len() > self.buf.len() {
            self.pos = 0;
        }
        self.buf[self.pos..self.pos + data.len()].copy_from_slice(data);
        self.pos += data.len();
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A buffered file that starts over at 64 MiB, so long runs do not fill the disk.
struct RewindingFile {
    file: BufWriter<std::fs::File>,
    written: usize,
}

impl RewindingFile {
    fn create(path: &std::path::Path) -> Self {
        Self {
            file: BufWriter::new(std::fs::File::create(path).unwrap()),
            written: 0,
        }
    }
}

impl Write for RewindingFile {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        if self.written > 64 << 20 {
            self.file.flush()?;
            std::io::Seek::seek(self.file.get_mut(), std::io::SeekFrom::Start(0))?;
            self.written = 0;
        }
        let n = self.file.write(data)?;
        self.written += n;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

/// Frames per block in the interleaved measurement.
const BLOCK: u64 = 64;

/// A raw and a guarded writer measured side by side: blocks of [`BLOCK`] frames alternate
/// between them, and each side's time is summed on its own.
struct SideBySide<R, G> {
    raw: R,
    guarded: G,
    raw_total: Duration,
    guarded_total: Duration,
    frames_total: u64,
    blocks: u64,
}

impl<R: Write, G: Write> SideBySide<R, G> {
    fn new(raw: R, guarded: G) -> Self {
        Self {
            raw,
            guarded,
            raw_total: Duration::ZERO,
            guarded_total: Duration::ZERO,
            frames_total: 0,
            blocks: 0,
        }
    }

    /// Writes `frames` frames through each writer; returns (raw time, guarded time).
    fn run(&mut self, frame: &[u8], frames: u64) -> (Duration, Duration) {
        let (mut raw, mut guarded) = (Duration::ZERO, Duration::ZERO);
        let mut done = 0;
        while done < frames {
            let n = BLOCK.min(frames - done);
            let raw_first = self.blocks.is_multiple_of(2);
            for raw_side in [raw_first, !raw_first] {
                let start = Instant::now();
                if raw_side {
                    for _ in 0..n {
                        self.raw.write_all(black_box(frame)).unwrap();
                    }
                    raw += start.elapsed();
                } else {
                    for _ in 0..n {
                        self.guarded.write_all(black_box(frame)).unwrap();
                    }
                    guarded += start.elapsed();
                }
            }
            done += n;
            self.blocks += 1;
        }
        self.raw_total += raw;
        self.guarded_total += guarded;
        self.frames_total += frames;
        (raw, guarded)
    }

    /// Benchmarks both sides as `interleaved_{name}_raw` and `interleaved_{name}_retention`,
    /// then prints the ratio over every block both ran.
    fn bench(
        mut self,
        g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
        name: &str,
        frame: &[u8],
    ) {
        let size = frame.len();
        g.bench_with_input(
            BenchmarkId::new(format!("interleaved_{name}_raw"), size),
            frame,
            |b, f| b.iter_custom(|iters| self.run(f, iters).0),
        );
        g.bench_with_input(
            BenchmarkId::new(format!("interleaved_{name}_retention"), size),
            frame,
            |b, f| b.iter_custom(|iters| self.run(f, iters).1),
        );
        if self.frames_total == 0 {
            return; // Filtered out on the command line.
        }
        let per_frame = |t: Duration| t.as_nanos() as f64 / self.frames_total as f64;
        let (raw, guarded) = (per_frame(self.raw_total), per_frame(self.guarded_total));
        println!(
            "media/interleaved_{name}/{size}: raw {raw:.2} ns/frame, retention {guarded:.2} \
             ns/frame, +{:.2} ns, ratio {:.4} over {} frames each",
            guarded - raw,
            guarded / raw,
            self.frames_total
        );
    }
}

fn media(c: &mut Criterion) {
    let graph = Graph::new(completed, AccessToken::new("token"));
    let call = recording_status::Calls::new(Arc::new(Discard))
        .open(CALL.parse().unwrap())
        .unwrap();
    let Ok(Begin::Recording(call)) = call.begin_recording_blocking(&graph) else {
        unreachable!("scripted to complete")
    };
    let dir = std::env::temp_dir().join(format!("recording-status-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut g = c.benchmark_group("media");
    // The gate alone: what every inner write pays on top of the write itself.
    let mut gate_only = RetentionWriter::new(call.retention_handle().unwrap(), std::io::sink());
    g.bench_function("gate_enter_leave", |b| {
        b.iter(|| black_box(&mut gate_only).write(black_box(&[])).unwrap());
    });
    drop(gate_only);
    for size in [64usize, 1024, 16 * 1024] {
        let frame = vec![0xA5u8; size];
        g.throughput(Throughput::Bytes(size as u64));

        let mut raw = Ring::new();
        g.bench_with_input(BenchmarkId::new("memory_raw", size), &frame, |b, f| {
            b.iter(|| raw.write_all(black_box(f)).unwrap());
        });
        let mut guarded = RetentionWriter::new(call.retention_handle().unwrap(), Ring::new());
        g.bench_with_input(
            BenchmarkId::new("memory_retention", size),
            &frame,
            |b, f| {
                b.iter(|| guarded.write_all(black_box(f)).unwrap());
            },
        );
        drop(guarded);

        let mut raw = RewindingFile::create(&dir.join("raw"));
        g.bench_with_input(BenchmarkId::new("file_raw", size), &frame, |b, f| {
            b.iter(|| raw.write_all(black_box(f)).unwrap());
        });
        drop(raw);
        let file = RewindingFile::create(&dir.join("guarded"));
        let mut guarded = RetentionWriter::new(call.retention().unwrap(), file);
        g.bench_with_input(BenchmarkId::new("file_retention", size), &frame, |b, f| {
            b.iter(|| guarded.write_all(black_box(f)).unwrap());
        });
        drop(guarded);

        SideBySide::new(
            Ring::new(),
            RetentionWriter::new(call.retention_handle().unwrap(), Ring::new()),
        )
        .bench(&mut g, "memory", &frame);
        SideBySide::new(
            RewindingFile::create(&dir.join("raw")),
            RetentionWriter::new(
                call.retention().unwrap(),
                RewindingFile::create(&dir.join("guarded")),
            ),
        )
        .bench(&mut g, "file", &frame);
    }
    g.finish();
    let _ = std::fs::remove_dir_all(&dir);
    drop(call.end());
}

criterion_group!(benches, status_change, request_response, media);
criterion_main!(benches);
