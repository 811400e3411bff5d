//! The command-line auditor, `recording-audit`, run as an auditor would: on real trails the
//! crate wrote, on the hand-made forged trails of `tests/fixtures/trails`, on an edited chained
//! trail, and drawing one call's timeline (golden-tested; `UPDATE_GOLDEN=1` rewrites it).

use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;

use recording_status::testing::Step;

use crate::support::graph::{graph, recording_blocking};
use crate::support::ids::{CALL, CALL_KEY};
use crate::support::spawn::{open_sink, output};
use crate::support::svg::well_formed;

fn audit(args: &[&str]) -> Output {
    output(Command::new(env!("CARGO_BIN_EXE_recording-audit")).args(args)).unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A real trail: one call recorded, with two capabilities, then stopped.
fn real_trail(path: &Path) {
    let sink = Arc::new(open_sink(path).unwrap());
    let graph = graph([Step::completed(), Step::completed()]);
    let call = recording_blocking(&graph, sink);
    drop((call.retention().unwrap(), call.retention_handle().unwrap()));
    drop(
        call.stop_recording_blocking(&graph, std::time::Duration::from_secs(1))
            .unwrap(),
    );
}

#[test]
fn a_real_trail_holds() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    real_trail(&path);
    let o = audit(&["verify", path.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    let out = stdout(&o);
    assert!(out.contains("the rule holds"), "{out}");
    assert!(out.contains("chain: holds"), "{out}");
    let o = audit(&["summary", path.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0));
    assert!(stdout(&o).contains("NotRecording"));
}

#[test]
fn every_forged_trail_is_a_violation_naming_the_line_the_call_and_the_rule() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/trails");
    let mut forged = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        if !name.ends_with(".jsonl") || name.starts_with("ok_") {
            continue;
        }
        forged += 1;
        let o = audit(&["verify", "--json", path.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(1), "{name}: {}", stdout(&o));
        let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        let v = &report[0]["violation"];
        assert!(v["line"].as_u64().unwrap() >= 1, "{name}");
        assert_eq!(v["call_id"], CALL_KEY, "{name}");
        assert!(v["rule"].as_str().unwrap().starts_with('G'), "{name}");
    }
    assert!(forged >= 9);
}

#[test]
fn an_edited_chained_trail_is_a_violation_at_the_edited_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    real_trail(&path);
    let text = std::fs::read_to_string(&path).unwrap();
    let edited = text.replacen("\"outcome\":\"completed\"", "\"outcome\":\"pending\"", 1);
    assert_ne!(edited, text);
    std::fs::write(&path, edited).unwrap();
    let o = audit(&["verify", path.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert!(stdout(&o).contains("G9/chain"), "{}", stdout(&o));
}

#[test]
fn unreadable_input_and_bad_arguments_exit_2() {
    assert_eq!(
        audit(&["verify", "/nonexistent/audit.jsonl"]).status.code(),
        Some(2)
    );
    assert_eq!(audit(&["verify"]).status.code(), Some(2));
    assert_eq!(audit(&["frobnicate"]).status.code(), Some(2));
    assert_eq!(audit(&["timeline", "x.jsonl"]).status.code(), Some(2));
}

#[test]
fn the_timeline_of_one_call_matches_its_golden_picture() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/timeline");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("episode.svg");
    let o = audit(&[
        "timeline",
        root.join("episode.jsonl").to_str().unwrap(),
        "--call",
        &CALL.to_ascii_uppercase(),
        "--svg",
        out.to_str().unwrap(),
    ]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let svg = std::fs::read_to_string(&out).unwrap();
    well_formed(&svg).unwrap();
    for expected in [
        "Recording",
        "#1",
        "#2",
        "→ recording",
        "→ notRecording",
        "notified completed",
    ] {
        assert!(svg.contains(expected), "{expected}");
    }
    let golden = root.join("episode.svg");
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&golden, &svg).unwrap();
    }
    assert_eq!(svg, std::fs::read_to_string(&golden).unwrap());
}

#[test]
fn the_well_formedness_check_can_fail() {
    assert!(well_formed("<svg><rect></svg>").is_err());
    assert!(well_formed("<svg><rect x=\"1/></svg>").is_err());
    assert!(well_formed("<svg><rect/></svg>").is_ok());
}
