//! Witnessed checkpoints (G12): a trail cut before its last checkpoint, rewritten and rechained
//! (plain, and with the HMAC key), checked against a checkpoint signed by another key or of
//! another trail, or longer than its last checkpoint; a torn witness file; when the sink emits
//! checkpoints (every N events, every T, at sync, at the driver's shutdown, on demand) and what
//! a failing witness does; and the HTTP witness over loopback.
//!
//! The note format, the key id and the witness file's framing are tested in
//! `src/audit/checkpoint/`.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use recording_status::audit::{
    AuditEvent, AuditKind, AuditSink, Checkpoint, CheckpointFile, CheckpointOptions,
    CheckpointReport, CheckpointSigner, FileWitness, JsonLinesSink, Rule, SignedCheckpoint,
    VerifierKey, Witness, check_chain, check_checkpoints,
};
use recording_status::error::AuditError;

use crate::support::spawn::opening;

const ORIGIN: &str = "example.com/bot-1/audit";
const SEED: [u8; 32] = [7; 32];

fn signer() -> CheckpointSigner {
    CheckpointSigner::new("bot-1", SEED).unwrap()
}

fn key() -> VerifierKey {
    signer().verifier_key()
}

fn ended(capability: u64) -> AuditEvent {
    AuditEvent::now("c1", AuditKind::RetentionEnded { capability })
}

/// A trail and the witness file of its checkpoints, in a directory of their own.
struct Witnessed {
    _dir: tempfile::TempDir,
    trail: PathBuf,
    witness: PathBuf,
}

impl Witnessed {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        Self {
            trail: dir.path().join("audit.jsonl"),
            witness: dir.path().join("checkpoints.txt"),
            _dir: dir,
        }
    }

    /// Writes `events` events (one write each) through a sink that checkpoints every
    /// `every` of them, chained under `key` if given, with `origin`; the sink is dropped
    /// without a sync (so no final checkpoint).
    fn write(&self, events: u64, every: u64, key: Option<&[u8]>, origin: &str) {
        let sink = self.sink(every, key, origin, Arc::new(self.file_witness()));
        for c in 1..=events {
            sink.record(&ended(c)).unwrap();
        }
    }

    fn file_witness(&self) -> FileWitness {
        FileWitness::open(&self.witness).unwrap()
    }

    fn sink(
        &self,
        every: u64,
        key: Option<&[u8]>,
        origin: &str,
        witness: Arc<dyn Witness>,
    ) -> JsonLinesSink {
        let mut options = JsonLinesSink::options().checkpoints(
            CheckpointOptions::new(origin, signer(), witness)
                .unwrap()
                .every_events(every)
                .every(Duration::from_secs(3600)),
        );
        if let Some(key) = key {
            options = options.key(key);
        }
        opening(|| options.open(&self.trail)).unwrap()
    }

    fn checkpoints(&self) -> Vec<SignedCheckpoint> {
        notes(&self.witness)
    }

    fn check(&self, checkpoints: &[SignedCheckpoint], origin: Option<&str>) -> CheckpointReport {
        let trail = JsonLinesSink::read(&self.trail).unwrap();
        check_checkpoints(&trail, checkpoints, &key(), origin)
    }

    fn text(&self) -> String {
        std::fs::read_to_string(&self.trail).unwrap()
    }
}

fn notes(witness: &Path) -> Vec<SignedCheckpoint> {
    let file = CheckpointFile::read(witness).unwrap();
    assert!(file.unreadable.is_empty(), "{:?}", file.unreadable);
    file.notes.into_iter().map(|n| n.checkpoint).collect()
}

fn seqs(checkpoints: &[SignedCheckpoint]) -> Vec<u64> {
    checkpoints.iter().map(|c| c.checkpoint().seq()).collect()
}

/// The rules of the report's problems, with the checkpoints' positions and seqs.
fn problems(report: &CheckpointReport) -> Vec<(usize, u64, Rule)> {
    report
        .problems
        .iter()
        .map(|p| (p.checkpoint, p.seq, p.rule))
        .collect()
}

/// Recomputes the chain of every line of `text`, as a forger who knows the chain's algorithm
/// (and, with `key`, holds the trail's key) can: the chain then holds.
fn rechain(text: &str, key: Option<&[u8]>) -> String {
    use hmac::{Hmac, KeyInit, Mac};
    use sha2::{Digest, Sha256};
    let mut prev = [0u8; 32];
    let mut out = String::new();
    for line in text.lines() {
        let (start, rest) = line.split_once(",\"chain\":\"").unwrap();
        let rest = &rest[66..];
        let body = format!("{start},{rest}");
        prev = match key {
            None => {
                let mut h = Sha256::new();
                h.update(prev);
                h.update(body.as_bytes());
                h.finalize().into()
            }
            Some(key) => {
                let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key).unwrap();
                mac.update(&prev);
                mac.update(body.as_bytes());
                mac.finalize().into_bytes().into()
            }
        };
        let hex: String = prev.iter().map(|b| format!("{b:02x}")).collect();
        out.push_str(&format!("{start},\"chain\":\"{hex}\",{rest}\n"));
    }
    out
}

#[test]
fn a_trail_cut_before_its_last_checkpoint_names_it() {
    let w = Witnessed::new();
    w.write(5, 2, None, ORIGIN);
    let checkpoints = w.checkpoints();
    assert_eq!(seqs(&checkpoints), [2, 4]);
    assert!(w.check(&checkpoints, Some(ORIGIN)).holds());

    // Cut after line 3: a valid shorter chain, which the chain alone cannot tell.
    let cut: String = w.text().lines().take(3).map(|l| format!("{l}\n")).collect();
    std::fs::write(&w.trail, &cut).unwrap();
    assert_eq!(check_chain(cut.as_bytes(), None).unwrap().seq, 3);

    let report = w.check(&checkpoints, Some(ORIGIN));
    assert_eq!(problems(&report), [(1, 4, Rule::CheckpointTruncated)]);
    let text = report.problems[0].to_string();
    assert!(
        text.starts_with("checkpoint #2 (seq 4, signed ")
            && text.contains("the trail ends at seq 3, before this checkpoint"),
        "{text}"
    );
    assert_eq!(report.problems[0].index, Some(2), "the trail's last line");
    // The first checkpoint still holds: the prefix up to it is witnessed.
    assert_eq!((report.holding, report.witnessed_seq), (1, 2));
    assert_eq!((report.unwitnessed, report.unwitnessed_from), (1, Some(2)));
}

/// Rewrites line 2 (capability 2 becomes 9) and rechains the trail with `key`: the chain
/// holds again, and every checkpoint from line 2 on is contradicted.
fn rewritten_and_rechained(key: Option<&[u8]>) {
    let w = Witnessed::new();
    w.write(5, 2, key, ORIGIN);
    let checkpoints = w.checkpoints();
    assert_eq!(seqs(&checkpoints), [2, 4]);
    let forged = rechain(
        &w.text()
            .replacen("\"capability\":2}", "\"capability\":9}", 1),
        key,
    );
    assert_ne!(forged, w.text());
    std::fs::write(&w.trail, &forged).unwrap();
    assert_eq!(check_chain(forged.as_bytes(), key).unwrap().seq, 5);

    let report = w.check(&checkpoints, Some(ORIGIN));
    assert_eq!(
        problems(&report),
        [
            (0, 2, Rule::CheckpointContradicted),
            (1, 4, Rule::CheckpointContradicted)
        ]
    );
    let first = &report.problems[0];
    assert_eq!(first.index, Some(1));
    assert!(
        first.to_string().starts_with(&format!(
            "checkpoint #1 (seq 2, signed {}): line 2 (seq 2) has another chain value",
            checkpoints[0].checkpoint().at().to_rfc3339()
        )),
        "{first}"
    );
    assert_eq!(
        (report.holding, report.witnessed_seq, report.unwitnessed),
        (0, 0, 5)
    );
}

#[test]
fn a_trail_rewritten_with_a_recomputed_chain_contradicts_its_checkpoints() {
    rewritten_and_rechained(None);
}

#[test]
fn a_trail_rewritten_and_rechained_with_its_hmac_key_contradicts_its_checkpoints() {
    rewritten_and_rechained(Some(b"the bot's chain key"));
}

/// A forger holding the chain key but not the witness's copy signs a checkpoint of the
/// rewritten trail with a key of their own, under the same name: it proves nothing, and
/// the genuine checkpoints still expose the rewrite.
#[test]
fn a_checkpoint_signed_by_another_key_is_named_unverified() {
    let w = Witnessed::new();
    w.write(4, 2, None, ORIGIN);
    let mut checkpoints = w.checkpoints();
    let genuine = checkpoints[1].checkpoint().clone();
    let forger = CheckpointSigner::new("bot-1", [8; 32]).unwrap();
    let forged = Checkpoint::new(ORIGIN, 4, [0xee; 32], genuine.at())
        .unwrap()
        .sign(&forger);
    checkpoints.push(forged);
    let report = w.check(&checkpoints, Some(ORIGIN));
    assert_eq!(problems(&report), [(2, 4, Rule::CheckpointUnverified)]);
    let text = report.problems[0].to_string();
    let theirs = format!("signed by: bot-1+{:08x}", forger.verifier_key().id());
    assert!(
        text.contains("no signature by key bot-1+") && text.contains(&theirs),
        "{text}"
    );
    assert_eq!(report.problems[0].index, None);
    assert_eq!((report.holding, report.witnessed_seq), (2, 4));

    // A genuine note whose text was altered after signing does not verify either.
    let altered = checkpoints[0].to_note().replacen("\n2\n", "\n3\n", 1);
    let report = w.check(&[SignedCheckpoint::parse(&altered).unwrap()], None);
    assert_eq!(problems(&report), [(0, 3, Rule::CheckpointUnverified)]);
    assert!(report.problems[0].detail.contains("does not verify"));
}

#[test]
fn a_checkpoint_of_another_origin_is_named_foreign() {
    let ours = Witnessed::new();
    ours.write(4, 2, None, ORIGIN);
    let theirs = Witnessed::new();
    theirs.write(4, 2, None, "example.com/bot-2/audit");
    let mut checkpoints = ours.checkpoints();
    checkpoints.extend(theirs.checkpoints());

    // Without an origin, the first checkpoint that verifies sets it.
    let report = ours.check(&checkpoints, None);
    assert_eq!(report.origin.as_deref(), Some(ORIGIN));
    assert_eq!(
        problems(&report),
        [
            (2, 2, Rule::CheckpointForeign),
            (3, 4, Rule::CheckpointForeign)
        ]
    );
    assert!(
        report.problems[0]
            .detail
            .contains("origin \"example.com/bot-2/audit\""),
        "{}",
        report.problems[0]
    );
    // Told the origin, the auditor refuses the other trail's checkpoints whatever comes
    // first.
    let report = ours.check(&theirs.checkpoints(), Some(ORIGIN));
    assert_eq!(report.problems.len(), 2);
    assert!(
        report
            .problems
            .iter()
            .all(|p| p.rule == Rule::CheckpointForeign)
    );
    assert_eq!(report.witnessed_seq, 0);
}

/// Two trails under one origin (a bot reusing its name): the other trail's checkpoints
/// contradict this one at their seqs.
#[test]
fn a_checkpoint_of_another_trail_with_the_same_origin_is_contradicted() {
    let ours = Witnessed::new();
    ours.write(4, 2, None, ORIGIN);
    let theirs = Witnessed::new();
    let sink = theirs.sink(2, None, ORIGIN, Arc::new(theirs.file_witness()));
    for c in 1..=4 {
        sink.record(&ended(c + 100)).unwrap();
    }
    drop(sink);
    let report = ours.check(&theirs.checkpoints(), Some(ORIGIN));
    assert_eq!(
        problems(&report),
        [
            (0, 2, Rule::CheckpointContradicted),
            (1, 4, Rule::CheckpointContradicted)
        ]
    );
}

#[test]
fn a_trail_longer_than_its_last_checkpoint_holds_and_reports_its_unwitnessed_tail() {
    let w = Witnessed::new();
    w.write(8, 3, None, ORIGIN);
    let checkpoints = w.checkpoints();
    assert_eq!(seqs(&checkpoints), [3, 6]);
    let report = w.check(&checkpoints, Some(ORIGIN));
    assert!(report.holds(), "{:?}", report.problems);
    assert_eq!(report.holding, 2);
    assert_eq!(
        (
            report.witnessed_seq,
            report.witnessed_index,
            report.witnessed_by
        ),
        (6, Some(5), Some(1))
    );
    assert_eq!(report.witnessed_at, Some(checkpoints[1].checkpoint().at()));
    assert_eq!(report.trail_seq, 8);
    assert_eq!((report.unwitnessed, report.unwitnessed_from), (2, Some(6)));

    // The tail is what can still change unseen: cut it, and the checkpoints still hold.
    let cut: String = w.text().lines().take(6).map(|l| format!("{l}\n")).collect();
    std::fs::write(&w.trail, cut).unwrap();
    let report = w.check(&checkpoints, Some(ORIGIN));
    assert!(report.holds());
    assert_eq!((report.witnessed_seq, report.unwitnessed), (6, 0));

    // No checkpoint at all: everything is the tail.
    let report = w.check(&[], Some(ORIGIN));
    assert!(report.holds());
    assert_eq!((report.witnessed_seq, report.unwitnessed), (0, 6));
}

/// The witness's host lost power while appending a note: the notes before it still check
/// the trail, and the torn one is reported.
#[test]
fn a_torn_witness_file_keeps_its_earlier_checkpoints() {
    let w = Witnessed::new();
    w.write(6, 2, None, ORIGIN);
    let mut bytes = std::fs::read(&w.witness).unwrap();
    bytes.truncate(bytes.len() - 30);
    std::fs::write(&w.witness, &bytes).unwrap();
    let file = CheckpointFile::read(&w.witness).unwrap();
    assert_eq!(file.notes.len(), 2);
    assert_eq!(file.unreadable.len(), 1);
    assert!(file.unreadable[0].torn);
    let checkpoints: Vec<_> = file.notes.into_iter().map(|n| n.checkpoint).collect();
    let report = w.check(&checkpoints, Some(ORIGIN));
    assert!(report.holds());
    assert_eq!((report.witnessed_seq, report.unwitnessed), (4, 2));

    // The sink reopening the trail (and its witness the file) goes on after the torn note.
    let sink = w.sink(2, None, ORIGIN, Arc::new(w.file_witness()));
    sink.record(&ended(7)).unwrap();
    sink.record(&ended(8)).unwrap();
    drop(sink);
    let file = CheckpointFile::read(&w.witness).unwrap();
    let read: Vec<_> = file.notes.into_iter().map(|n| n.checkpoint).collect();
    assert_eq!(seqs(&read), [2, 4, 8]);
    assert_eq!(file.unreadable.len(), 1);
    assert!(!file.unreadable[0].torn);
}

#[test]
fn checkpoints_come_every_n_events_at_sync_and_on_demand() {
    let w = Witnessed::new();
    let sink = w.sink(3, None, ORIGIN, Arc::new(w.file_witness()));
    for c in 1..=10 {
        sink.record(&ended(c)).unwrap();
    }
    assert_eq!(seqs(&w.checkpoints()), [3, 6, 9]);
    // One write of several lines is checked once, after it.
    sink.record_batch(&[ended(11), ended(12), ended(13), ended(14)])
        .unwrap();
    assert_eq!(seqs(&w.checkpoints()), [3, 6, 9, 14]);
    sink.record(&ended(15)).unwrap();
    // At sync, the head; not again when nothing was written since.
    sink.sync().unwrap();
    sink.sync().unwrap();
    assert_eq!(seqs(&w.checkpoints()), [3, 6, 9, 14, 15]);
    // On demand, always.
    let forced = sink.checkpoint().unwrap().unwrap();
    assert_eq!(forced.verify(&key()).unwrap().seq(), 15);
    assert_eq!(seqs(&w.checkpoints()), [3, 6, 9, 14, 15, 15]);
    let status = sink.checkpoint_status().unwrap();
    assert_eq!(
        (status.witnessed, status.last_seq, status.failures),
        (6, Some(15), 0)
    );
    drop(sink);
    let report = w.check(&w.checkpoints(), Some(ORIGIN));
    assert!(report.holds());
    assert_eq!((report.holding, report.unwitnessed), (6, 0));
    // The next sink counts from the trail's head when it opens.
    let sink = w.sink(3, None, ORIGIN, Arc::new(w.file_witness()));
    sink.record(&ended(16)).unwrap();
    sink.record(&ended(17)).unwrap();
    assert_eq!(seqs(&w.checkpoints()).last(), Some(&15));
    sink.record(&ended(18)).unwrap();
    assert_eq!(seqs(&w.checkpoints()).last(), Some(&18));
}

#[test]
fn checkpoints_come_every_t_when_lines_are_written() {
    let w = Witnessed::new();
    let options = |every| {
        CheckpointOptions::new(ORIGIN, signer(), Arc::new(w.file_witness()))
            .unwrap()
            .every_events(1000)
            .every(every)
    };
    // T elapsed at every write: a checkpoint after each.
    let sink = opening(|| {
        JsonLinesSink::options()
            .checkpoints(options(Duration::ZERO))
            .open(&w.trail)
    })
    .unwrap();
    for c in 1..=3 {
        sink.record(&ended(c)).unwrap();
    }
    assert_eq!(seqs(&w.checkpoints()), [1, 2, 3]);
    // Nothing written: nothing signed, however much time passes.
    sink.sync().unwrap();
    assert_eq!(seqs(&w.checkpoints()), [1, 2, 3]);
    drop(sink);
    // T not elapsed: none until N.
    let sink = opening(|| {
        JsonLinesSink::options()
            .checkpoints(options(Duration::from_secs(3600)))
            .open(&w.trail)
    })
    .unwrap();
    for c in 4..=6 {
        sink.record(&ended(c)).unwrap();
    }
    assert_eq!(seqs(&w.checkpoints()), [1, 2, 3]);
}

/// A witness that refuses everything, counting the checkpoints it was offered.
#[derive(Debug, Default)]
struct Refusing(Mutex<Vec<u64>>);

impl Witness for Refusing {
    fn witness(&self, checkpoint: &SignedCheckpoint) -> Result<(), AuditError> {
        self.0.lock().unwrap().push(checkpoint.checkpoint().seq());
        Err(AuditError::Witness("the witness is down".into()))
    }
}

#[test]
fn a_failing_witness_fails_no_event_and_is_counted() {
    let w = Witnessed::new();
    let witness = Arc::new(Refusing::default());
    let sink = w.sink(2, None, ORIGIN, witness.clone());
    for c in 1..=5 {
        sink.record(&ended(c)).unwrap();
    }
    sink.sync().unwrap();
    assert_eq!(*witness.0.lock().unwrap(), [2, 4, 5]);
    assert!(matches!(sink.checkpoint(), Err(AuditError::Witness(_))));
    let status = sink.checkpoint_status().unwrap();
    assert_eq!(
        (status.witnessed, status.last_seq, status.failures),
        (0, None, 4)
    );
    assert_eq!(
        status.last_error.as_deref(),
        Some("checkpoint witness failed: the witness is down")
    );
    drop(sink);
    assert_eq!(JsonLinesSink::read(&w.trail).unwrap().len(), 5);
}

/// The driver's shutdown syncs the trail, which signs the final checkpoint: it covers the
/// `instance_stopped` line, the trail's last.
#[cfg(feature = "driver")]
#[test]
fn the_drivers_shutdown_signs_a_final_checkpoint() {
    use recording_status::driver::{Driver, DriverConfig};

    let w = Witnessed::new();
    let sink = Arc::new(w.sink(1000, None, ORIGIN, Arc::new(w.file_witness())));
    crate::support::block_on(async {
        let graph = crate::support::graph::graph(Vec::new());
        let (driver, _events) = Driver::new(graph, sink.clone(), DriverConfig::default());
        sink.record(&ended(1)).unwrap();
        driver.shutdown(Duration::from_secs(1)).await;
    });
    let trail = JsonLinesSink::read(&w.trail).unwrap();
    assert!(matches!(
        trail.events.last().unwrap().kind,
        AuditKind::InstanceStopped { .. }
    ));
    let checkpoints = w.checkpoints();
    assert_eq!(seqs(&checkpoints), [trail.len() as u64]);
    let report = w.check(&checkpoints, Some(ORIGIN));
    assert!(report.holds());
    assert_eq!(report.unwitnessed, 0);
}

#[cfg(feature = "driver")]
mod http_witness {
    use axum::Router;
    use axum::body::Bytes;
    use axum::extract::State;
    use axum::http::{HeaderMap, StatusCode};
    use recording_status::audit::HttpWitness;
    use tokio::sync::mpsc::{UnboundedSender, unbounded_channel};

    use super::*;
    use crate::support::loopback::{serve, transport};

    /// A witness endpoint on 127.0.0.1 answering `status` to every POST to `/checkpoints`,
    /// and what it received: the content type and the body of each.
    async fn endpoint(
        status: StatusCode,
    ) -> (
        http::Uri,
        tokio::sync::mpsc::UnboundedReceiver<(String, String)>,
    ) {
        async fn add(
            State((status, received)): State<(StatusCode, UnboundedSender<(String, String)>)>,
            headers: HeaderMap,
            body: Bytes,
        ) -> StatusCode {
            let content_type = headers
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            let _ = received.send((content_type, String::from_utf8_lossy(&body).into_owned()));
            status
        }
        let (sender, received) = unbounded_channel();
        let app = Router::new()
            .route("/checkpoints", axum::routing::post(add))
            .with_state((status, sender));
        let url = format!("{}/checkpoints", serve(app).await);
        (url.parse().unwrap(), received)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_endpoint_receives_exactly_each_note_in_order() {
        let (url, mut received) = endpoint(StatusCode::CREATED).await;
        let (witness, task) = HttpWitness::new(transport(), url, 16);
        let sending = tokio::spawn(task);
        let witness = Arc::new(witness);
        let w = Witnessed::new();
        let sink = w.sink(2, None, ORIGIN, witness.clone());
        let mut signed = Vec::new();
        for c in 1..=5 {
            sink.record(&ended(c)).unwrap();
        }
        sink.sync().unwrap();
        signed.push(sink.checkpoint().unwrap().unwrap());
        drop(sink);
        let stats_before_end = witness.stats();
        assert_eq!(stats_before_end.failed, 0);
        drop(witness);
        tokio::time::timeout(Duration::from_secs(10), sending)
            .await
            .expect("the task ends once every handle is gone and the notes are sent")
            .unwrap();
        let mut bodies = Vec::new();
        while let Ok((content_type, body)) = received.try_recv() {
            assert_eq!(content_type, "text/plain; charset=utf-8");
            bodies.push(body);
        }
        let read: Vec<SignedCheckpoint> = bodies
            .iter()
            .map(|b| SignedCheckpoint::parse(b).unwrap())
            .collect();
        assert_eq!(seqs(&read), [2, 4, 5, 5]);
        for (body, note) in bodies.iter().zip(&read) {
            assert_eq!(body, &note.to_note(), "exactly the note's text");
            note.verify(&key()).unwrap();
        }
        assert_eq!(bodies.last(), Some(&signed[0].to_note()));
        let trail = JsonLinesSink::read(&w.trail).unwrap();
        assert!(check_checkpoints(&trail, &read, &key(), Some(ORIGIN)).holds());
    }

    /// The witness's stats once `done` holds of them, or after 10 s.
    async fn settled(
        witness: &HttpWitness,
        done: impl Fn(&recording_status::audit::HttpWitnessStats) -> bool,
    ) -> recording_status::audit::HttpWitnessStats {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let stats = witness.stats();
            if done(&stats) || tokio::time::Instant::now() > deadline {
                return stats;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    fn note(seq: u64) -> SignedCheckpoint {
        Checkpoint::new(ORIGIN, seq, [1; 32], chrono::Utc::now())
            .unwrap()
            .sign(&signer())
    }

    /// At the bound the oldest waiting note goes (the newer covers it), counted; the task
    /// started later sends the newest ones.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn at_the_bound_the_oldest_note_is_dropped_and_counted() {
        let (url, mut received) = endpoint(StatusCode::OK).await;
        let (witness, task) = HttpWitness::new(transport(), url, 2);
        for seq in 1..=5 {
            witness.witness(&note(seq)).unwrap();
        }
        let stats = witness.stats();
        assert_eq!((stats.dropped, stats.waiting, stats.sent), (3, 2, 0));
        let sending = tokio::spawn(task);
        let stats = settled(&witness, |s| s.sent == 2).await;
        assert_eq!((stats.sent, stats.waiting, stats.failed), (2, 0, 0));
        drop(witness);
        sending.await.unwrap();
        let mut got = Vec::new();
        while let Ok((_, body)) = received.try_recv() {
            got.push(SignedCheckpoint::parse(&body).unwrap().checkpoint().seq());
        }
        assert_eq!(got, [4, 5]);
    }

    /// An endpoint that refuses: each note is tried three times, then given up and counted;
    /// the events were never failed.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_refusing_endpoint_is_tried_again_then_given_up_and_counted() {
        let (url, mut received) = endpoint(StatusCode::SERVICE_UNAVAILABLE).await;
        let (witness, task) = HttpWitness::new(transport(), url, 4);
        let sending = tokio::spawn(task);
        witness.witness(&note(1)).unwrap();
        let stats = settled(&witness, |s| s.failed == 1).await;
        assert_eq!((stats.sent, stats.dropped, stats.waiting), (0, 0, 0));
        drop(witness);
        tokio::time::timeout(Duration::from_secs(10), sending)
            .await
            .unwrap()
            .unwrap();
        let mut attempts = 0;
        while received.try_recv().is_ok() {
            attempts += 1;
        }
        assert_eq!(attempts, 3);
    }
}
