//! What the typestate costs next to the work it guards.
//!
//! - `status_change/*`: a full `NotRecording → Recording → NotRecording` round trip through the
//!   typed API (two requests, audit, retention bookkeeping) against the plain serde and `http`
//!   work those two requests need anyway.
//! - `request/*`, `response/*`: the pure request builder and response interpreter.
//! - `media/*`: writing frames through a `RetentionWriter` against writing them directly, into
//!   a `Vec` and into a buffered file, for 64 B, 1 KiB and 16 KiB frames.

use std::hint::black_box;
use std::io::{BufWriter, Write};
use std::sync::Arc;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use recording_status::audit::{AuditEvent, AuditSink};
use recording_status::error::AuditError;
use recording_status::request::UpdateRequest;
use recording_status::response::interpret_response;
use recording_status::transport::{HttpRequest, HttpResponse};
use recording_status::{
    AccessToken, Begin, CallId, Endpoint, Graph, RecordingStatus, RetentionWriter,
};

const CALL: &str = "57dab8b1-894c-409a-b240-bd8beae78896";

const COMPLETED: &[u8] = br##"{"@odata.type":"#microsoft.graph.updateRecordingStatusOperation","id":"0fe0623f-d628-42ed-b4bd-8ac290072cc5","resultInfo":null,"status":"completed"}"##;

const ERROR: &[u8] = br#"{"error":{"code":"activityLimitReached","message":"throttled","innerError":{"code":"throttledRequest","date":"2021-07-02T01:40:19","request-id":"1a0ffbc0-0000","client-request-id":"225aed2b-0000"}}}"#;

/// An audit sink that keeps nothing, so the benchmark measures the crate, not a disk.
#[derive(Debug)]
struct Discard;

impl AuditSink for Discard {
    fn record(&self, event: &AuditEvent) -> Result<(), AuditError> {
        black_box(event);
        Ok(())
    }
}

fn completed(_: HttpRequest) -> Result<HttpResponse, http::Error> {
    http::Response::builder()
        .status(200)
        .body(COMPLETED.to_vec())
}

fn status_change(c: &mut Criterion) {
    let mut g = c.benchmark_group("status_change");
    let graph = Graph::new(completed, AccessToken::new("token"));
    let audit: Arc<dyn AuditSink> = Arc::new(Discard);
    let id: CallId = CALL.parse().unwrap();
    g.bench_function("typed_round_trip", |b| {
        b.iter(|| {
            let call = recording_status::Calls::new(audit.clone())
                .open(id.clone())
                .unwrap();
            let Ok(Begin::Recording(call)) = call.begin_recording_blocking(&graph) else {
                unreachable!("scripted to complete")
            };
            drop(black_box(call.retention().unwrap()));
            black_box(call.stop_recording_blocking(&graph, Duration::ZERO).is_ok())
        });
    });
    let endpoint = Endpoint::default();
    let token = AccessToken::new("token");
    g.bench_function("plain_serde_and_http", |b| {
        b.iter(|| {
            for status in [RecordingStatus::Recording, RecordingStatus::NotRecording] {
                let request = UpdateRequest::new(status)
                    .to_http(&endpoint, &id, &token)
                    .unwrap();
                let response = completed(black_box(request)).unwrap();
                black_box(interpret_response(&response));
            }
        });
    });
    g.finish();
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
    }
    g.finish();
    let _ = std::fs::remove_dir_all(&dir);
    drop(call.end());
}

criterion_group!(benches, status_change, request_response, media);
criterion_main!(benches);
