//! The JSON-lines audit trail (G9): torn tails, group commit under many threads, the hash chain
//! against edits, deletions, reordering and insertions, keyed chains, and older trails.
//!
//! A writer that fails and then recovers is tested in `src/audit/sink.rs` through the sink's
//! storage seam (a full file system cannot be had here).

use std::collections::HashSet;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use recording_status::audit::{
    AuditEvent, AuditKind, AuditSink, BreakKind, ChainBreak, Durability, JsonLinesSink, TornTail,
    check_chain,
};
use recording_status::error::AuditError;

use crate::support::spawn::{open_sink, opening};

fn ended(call: &str, capability: u64) -> AuditEvent {
    AuditEvent::now(call, AuditKind::RetentionEnded { capability })
}

fn capability(e: &AuditEvent) -> u64 {
    match e.kind {
        AuditKind::RetentionEnded { capability } => capability,
        ref other => panic!("unexpected {other:?}"),
    }
}

fn trail_path() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    (dir, path)
}

/// A trail of `n` events (capabilities 1..=n), written by a sink opened with `key`.
fn written(path: &Path, n: u64, key: Option<&[u8]>) {
    let mut options = JsonLinesSink::options();
    if let Some(key) = key {
        options = options.key(key);
    }
    let sink = opening(|| options.open(path)).unwrap();
    for c in 1..=n {
        sink.record(&ended("c1", c)).unwrap();
    }
}

fn lines_of(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn joined(lines: &[String]) -> Vec<u8> {
    lines
        .iter()
        .flat_map(|l| format!("{l}\n").into_bytes())
        .collect()
}

fn broken(lines: &[String], key: Option<&[u8]>) -> ChainBreak {
    check_chain(&joined(lines), key).unwrap_err()
}

fn numbers(t: Option<TornTail>) -> Option<(u64, u64)> {
    t.map(|t| (t.offset, t.bytes))
}

#[test]
fn torn_tail_is_reported_by_read_and_resumed_by_open() {
    let (_dir, path) = trail_path();
    written(&path, 3, None);
    let whole = std::fs::metadata(&path).unwrap().len();
    let offset = whole - (lines_of(&path)[2].len() as u64 + 1);
    // Power loss in the middle of the third line.
    OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(offset + 20)
        .unwrap();

    let trail = JsonLinesSink::read(&path).unwrap();
    assert_eq!(trail.events.len(), 2, "the events before the torn line");
    assert_eq!(numbers(trail.torn_tail), Some((offset, 20)));
    let summary = check_chain(&std::fs::read(&path).unwrap(), None).unwrap();
    assert_eq!((summary.lines, summary.seq), (2, 2));
    assert_eq!(numbers(summary.torn_tail), Some((offset, 20)));

    let sink = open_sink(&path).unwrap();
    assert_eq!(numbers(sink.repaired()), Some((offset, 20)));
    sink.record(&ended("c1", 4)).unwrap();
    drop(sink);

    let trail = JsonLinesSink::read(&path).unwrap();
    assert_eq!(trail.torn_tail, None);
    assert_eq!(trail.lines, [1, 2, 4, 5], "line 3 holds the torn bytes");
    assert_eq!(trail.seqs, [Some(1), Some(2), Some(3), Some(4)]);
    assert_eq!(
        trail.events[2].kind,
        AuditKind::TrailResumed {
            torn_bytes: 20,
            offset
        }
    );
    assert_eq!(trail.events[2].call_id, "");
    // The first event after the repair is whole, not swallowed by the torn bytes.
    assert_eq!(capability(&trail.events[3]), 4);
    let summary = check_chain(&std::fs::read(&path).unwrap(), None).unwrap();
    assert_eq!(
        (summary.lines, summary.seq, summary.torn_tail),
        (4, 4, None)
    );
    // Reopening a repaired trail repairs nothing.
    assert_eq!(open_sink(&path).unwrap().repaired(), None);
}

#[test]
fn a_line_cut_just_before_its_newline_is_whole_and_ended_on_open() {
    let (_dir, path) = trail_path();
    written(&path, 2, None);
    let len = std::fs::metadata(&path).unwrap().len();
    OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(len - 1)
        .unwrap();
    let trail = JsonLinesSink::read(&path).unwrap();
    assert_eq!((trail.events.len(), trail.torn_tail), (2, None));
    let sink = open_sink(&path).unwrap();
    assert_eq!(sink.repaired(), None);
    sink.record(&ended("c1", 3)).unwrap();
    drop(sink);
    let trail = JsonLinesSink::read(&path).unwrap();
    assert_eq!(trail.seqs, [Some(1), Some(2), Some(3)]);
    assert_eq!(
        check_chain(&std::fs::read(&path).unwrap(), None)
            .unwrap()
            .seq,
        3
    );
}

#[test]
fn a_resume_torn_in_its_turn_is_resumed_again() {
    let (_dir, path) = trail_path();
    written(&path, 2, None);
    let good = std::fs::metadata(&path).unwrap().len();
    // Torn bytes, then a `\n` and half a marker: power went twice.
    let mut file = OpenOptions::new().append(true).open(&path).unwrap();
    file.write_all(b"{\"seq\":3,\"chain\n{\"seq\":3,\"chain\":\"00")
        .unwrap();
    drop(file);
    let torn = open_sink(&path).unwrap().repaired().unwrap();
    assert_eq!(torn.offset, good);
    let trail = JsonLinesSink::read(&path).unwrap();
    assert_eq!(trail.torn_tail, None);
    assert_eq!(trail.lines, [1, 2, 5]);
    assert_eq!(
        check_chain(&std::fs::read(&path).unwrap(), None)
            .unwrap()
            .seq,
        3
    );
}

#[test]
fn a_whole_line_that_is_not_an_event_at_the_end_is_torn() {
    let (_dir, path) = trail_path();
    written(&path, 2, None);
    let good = std::fs::metadata(&path).unwrap().len();
    let mut file = OpenOptions::new().append(true).open(&path).unwrap();
    file.write_all(b"\0\0\0\0\n").unwrap();
    drop(file);
    assert_eq!(
        numbers(JsonLinesSink::read(&path).unwrap().torn_tail),
        Some((good, 5))
    );
    // It ends with `\n` already: the marker follows at once.
    assert_eq!(
        numbers(open_sink(&path).unwrap().repaired()),
        Some((good, 5))
    );
    let trail = JsonLinesSink::read(&path).unwrap();
    assert_eq!(
        (trail.lines.as_slice(), trail.torn_tail),
        (&[1, 2, 4][..], None)
    );
    assert_eq!(
        check_chain(&std::fs::read(&path).unwrap(), None)
            .unwrap()
            .seq,
        3
    );
}

#[test]
fn bad_bytes_in_the_middle_are_malformed_not_torn() {
    let (_dir, path) = trail_path();
    written(&path, 3, None);
    let mut lines = lines_of(&path);
    let offset = lines[0].len() as u64 + 1;
    lines[1] = "{\"seq\":2,garbage".to_owned();
    std::fs::write(&path, joined(&lines)).unwrap();
    let err = JsonLinesSink::read(&path).unwrap_err();
    assert!(
        matches!(err, AuditError::Malformed { line: 2, offset: o } if o == offset),
        "{err:?}"
    );
    let b = broken(&lines, None);
    assert_eq!(
        (b.line, b.offset, b.kind),
        (2, offset, BreakKind::Malformed)
    );
}

/// 64 threads × 100 events through one sink, then read back: every event once, `seq`
/// strictly increasing, `at` never going back, and the chain holding.
fn many_threads(durability: Durability) {
    const THREADS: u64 = 64;
    const EACH: u64 = 100;
    let (_dir, path) = trail_path();
    let sink =
        Arc::new(opening(|| JsonLinesSink::options().durability(durability).open(&path)).unwrap());
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let sink = sink.clone();
            std::thread::spawn(move || {
                for c in 0..EACH {
                    sink.record(&ended(&format!("t{t}"), c)).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    drop(sink);

    let trail = JsonLinesSink::read(&path).unwrap();
    assert_eq!(trail.events.len() as u64, THREADS * EACH);
    assert_eq!(trail.torn_tail, None);
    let seen: HashSet<(String, u64)> = trail
        .events
        .iter()
        .map(|e| (e.call_id.clone(), capability(e)))
        .collect();
    assert_eq!(
        seen.len() as u64,
        THREADS * EACH,
        "every event exactly once"
    );
    let seqs: Vec<u64> = trail.seqs.iter().map(|s| s.unwrap()).collect();
    assert_eq!(seqs, (1..=THREADS * EACH).collect::<Vec<_>>());
    assert!(
        trail.events.windows(2).all(|w| w[0].at <= w[1].at),
        "at never goes back"
    );
    // Each thread's own events are in its order.
    for t in 0..THREADS {
        let call = format!("t{t}");
        let mine: Vec<u64> = trail
            .events
            .iter()
            .filter(|e| e.call_id == call)
            .map(capability)
            .collect();
        assert_eq!(mine, (0..EACH).collect::<Vec<_>>());
    }
    let summary = check_chain(&std::fs::read(&path).unwrap(), None).unwrap();
    assert_eq!(
        (summary.lines as u64, summary.seq),
        (THREADS * EACH, THREADS * EACH)
    );
    assert!(summary.chained && !summary.keyed && summary.unchained == 0);
}

#[test]
fn sixty_four_threads_flushed() {
    many_threads(Durability::Flushed);
}

#[test]
fn sixty_four_threads_synced() {
    many_threads(Durability::Synced);
}

#[test]
fn an_edited_line_is_a_bad_hash_at_that_line() {
    let (_dir, path) = trail_path();
    written(&path, 5, None);
    let mut lines = lines_of(&path);
    lines[2] = lines[2].replace("\"capability\":3", "\"capability\":7");
    let b = broken(&lines, None);
    assert_eq!((b.line, b.kind), (3, BreakKind::BadHash));
}

#[test]
fn a_deleted_line_is_a_sequence_gap_at_its_place() {
    let (_dir, path) = trail_path();
    written(&path, 5, None);
    let mut lines = lines_of(&path);
    lines.remove(2);
    let b = broken(&lines, None);
    assert_eq!(
        (b.line, b.kind),
        (
            3,
            BreakKind::SequenceGap {
                expected: 3,
                found: 4
            }
        )
    );
    // The first line too.
    let mut lines = lines_of(&path);
    lines.remove(0);
    assert_eq!(broken(&lines, None).line, 1);
}

#[test]
fn reordered_lines_are_out_of_order_at_the_first_moved_line() {
    let (_dir, path) = trail_path();
    written(&path, 5, None);
    let mut lines = lines_of(&path);
    lines.swap(2, 3);
    let b = broken(&lines, None);
    assert_eq!(
        (b.line, b.kind),
        (
            3,
            BreakKind::OutOfOrder {
                expected: 3,
                found: 4
            }
        )
    );
    // A line moved to the end.
    let mut lines = lines_of(&path);
    let moved = lines.remove(1);
    lines.push(moved);
    let b = broken(&lines, None);
    assert_eq!(
        (b.line, b.kind),
        (
            2,
            BreakKind::OutOfOrder {
                expected: 2,
                found: 3
            }
        )
    );
}

#[test]
fn inserted_lines_are_detected_at_their_place() {
    let (_dir, path) = trail_path();
    written(&path, 5, Some(b"bot key"));
    let original = lines_of(&path);

    // A copy of line 2 inserted as line 3.
    let mut lines = original.clone();
    lines.insert(2, original[1].clone());
    let b = broken(&lines, Some(b"bot key"));
    assert_eq!(
        (b.line, b.kind),
        (
            3,
            BreakKind::OutOfOrder {
                expected: 3,
                found: 2
            }
        )
    );

    // A forged line 3 with the next seq and a chain computed without the key, the rest
    // renumbered: the forged line fails.
    let (_other, forged_path) = trail_path();
    written(&forged_path, 5, None);
    let mut lines = original.clone();
    lines.insert(2, lines_of(&forged_path)[2].clone());
    let b = broken(&lines, Some(b"bot key"));
    assert_eq!((b.line, b.kind), (3, BreakKind::BadHash));

    // An older-format (unchained) line inserted.
    let mut lines = original.clone();
    lines.insert(2, serde_json::to_string(&ended("c1", 42)).unwrap());
    let b = broken(&lines, Some(b"bot key"));
    assert_eq!((b.line, b.kind), (3, BreakKind::Unchained));
}

#[test]
fn a_keyed_chain_needs_its_key() {
    let (_dir, path) = trail_path();
    written(&path, 4, Some(b"right key"));
    let bytes = std::fs::read(&path).unwrap();
    let summary = check_chain(&bytes, Some(b"right key")).unwrap();
    assert!(summary.keyed && summary.chained);
    assert_eq!(summary.lines, 4);
    for wrong in [Some(&b"wrong key"[..]), None] {
        let b = check_chain(&bytes, wrong).unwrap_err();
        assert_eq!((b.line, b.kind), (1, BreakKind::BadHash));
    }
    // Reopened with the same key, the chain continues.
    let sink = opening(|| JsonLinesSink::options().key(*b"right key").open(&path)).unwrap();
    sink.record(&ended("c1", 5)).unwrap();
    drop(sink);
    let summary = check_chain(&std::fs::read(&path).unwrap(), Some(b"right key")).unwrap();
    assert_eq!(summary.seq, 5);
}

#[test]
fn an_older_unchained_trail_still_reads_and_continues() {
    let (_dir, path) = trail_path();
    let old: String = (1..=3)
        .map(|c| serde_json::to_string(&ended("c1", c)).unwrap() + "\n")
        .collect();
    std::fs::write(&path, &old).unwrap();

    let trail = JsonLinesSink::read(&path).unwrap();
    assert_eq!(trail.events.len(), 3);
    assert_eq!(trail.seqs, [None, None, None]);
    assert!(!trail.chained());
    let summary = check_chain(old.as_bytes(), None).unwrap();
    assert!(!summary.chained);
    assert_eq!(
        (summary.lines, summary.unchained, summary.head),
        (3, 3, None)
    );

    // A chaining sink continues it: its lines start at seq 1.
    written(&path, 2, None);
    let trail = JsonLinesSink::read(&path).unwrap();
    assert_eq!(trail.seqs, [None, None, None, Some(1), Some(2)]);
    let summary = check_chain(&std::fs::read(&path).unwrap(), None).unwrap();
    assert_eq!((summary.lines, summary.unchained, summary.seq), (5, 3, 2));
}

#[test]
fn one_sink_per_file() {
    let (_dir, path) = trail_path();
    let first = open_sink(&path).unwrap();
    assert!(matches!(open_sink(&path), Err(AuditError::InUse)));
    drop(first);
    open_sink(&path).unwrap();
}

#[test]
fn seq_and_chain_continue_across_reopenings() {
    let (_dir, path) = trail_path();
    written(&path, 2, None);
    written(&path, 2, None);
    let trail = JsonLinesSink::read(&path).unwrap();
    assert_eq!(trail.seqs, [Some(1), Some(2), Some(3), Some(4)]);
    let summary = check_chain(&std::fs::read(&path).unwrap(), None).unwrap();
    assert_eq!(summary.seq, 4);
    assert_eq!(summary.head.unwrap().len(), 64);
}
