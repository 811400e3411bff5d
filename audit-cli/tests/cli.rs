//! The command-line auditor, `recording-audit`, run as an auditor would: on real trails the
//! library wrote, on the hand-made forged trails of the repository's `tests/fixtures/trails`,
//! on an edited chained trail, on the trails of several instances together
//! (`tests/fixtures/instances`), and drawing one call's timeline (golden-tested;
//! `UPDATE_GOLDEN=1` rewrites it); and its command line (help, version, usage errors).

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::Arc;

use recording_status::audit::{AuditEvent, AuditKind, AuditSink, JsonLinesSink};
use recording_status::testing::{ScriptedTransport, Step};
use recording_status::{AccessToken, Begin, CallState, Calls, Graph, RecordingStatus};

mod support;
use support::{audit, rechain, stderr, stdout};

/// The repository's `tests/fixtures/`, shared with the library's tests.
fn fixtures() -> PathBuf {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures")).to_path_buf()
}

/// A real trail: one call recorded, with two capabilities, then stopped.
fn real_trail(path: &Path) {
    record_into(JsonLinesSink::open(path).unwrap());
}

/// [`real_trail`], written into `sink`.
fn record_into(sink: JsonLinesSink) {
    // One value per call in the process: the tests running beside this one wait for the call.
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _turn = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let sink = Arc::new(sink);
    let calls = Calls::new(sink);
    let graph = Graph::new(
        ScriptedTransport::new()
            .then(Step::completed())
            .then(Step::completed()),
        AccessToken::new("t"),
    );
    let call = calls
        .open("57dab8b1-894c-409a-b240-bd8beae78896".parse().unwrap())
        .unwrap();
    let Begin::Recording(call) = call.begin_recording_blocking(&graph).unwrap() else {
        panic!("recording")
    };
    drop((call.retention().unwrap(), call.retention_handle().unwrap()));
    drop(
        call.stop_recording_blocking(&graph, std::time::Duration::from_secs(1))
            .unwrap(),
    );
}

/// A trail whose run crashed while recording (the call's value and its capability vanish
/// without an event), and a later run that recovered the call and reported it.
fn recovered_trail(path: &Path) {
    let sink = Arc::new(JsonLinesSink::open(path).unwrap());
    let calls = Calls::new(sink.clone());
    let graph = Graph::new(
        ScriptedTransport::new().then(Step::completed()),
        AccessToken::new("t"),
    );
    // A call no other test opens: the crash below leaves its value alive in this process.
    let call = calls
        .open("0b5e6f1c-2d3a-4e4f-8a9b-c0d1e2f30415".parse().unwrap())
        .unwrap();
    let Begin::Recording(call) = call.begin_recording_blocking(&graph).unwrap() else {
        panic!("recording")
    };
    let handle = call.retention_handle().unwrap();
    let capability = handle.number();
    // The crash: nothing more is written for the call by this run.
    std::mem::forget((call, handle));
    let call_id = "0b5e6f1c2d3a4e4f8a9bc0d1e2f30415";
    let last_event_at = JsonLinesSink::read(path).unwrap().events.last().unwrap().at;
    for kind in [
        AuditKind::CallRecovered {
            state: CallState::Recording,
            capabilities: vec![capability],
            last_event_at,
        },
        AuditKind::RequestSent {
            status: RecordingStatus::NotRecording,
            client_context: "recovered".into(),
            client_request_id: "6a1d1f4e-5b4c-4f7e-9a53-0b7e0f3c2d11".into(),
        },
    ] {
        sink.record(&AuditEvent::now(call_id, kind)).unwrap();
    }
}

#[test]
fn a_real_trail_holds() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    real_trail(&path);
    let o = audit(&["verify", "--allow-unkeyed", path.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    let out = stdout(&o);
    assert!(out.contains("the rule holds"), "{out}");
    assert!(out.contains("chain: holds"), "{out}");
    let o = audit(&["summary", "--allow-unkeyed", path.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0));
    assert!(stdout(&o).contains("NotRecording"));
}

#[test]
fn every_forged_trail_is_a_violation_naming_the_line_the_call_and_the_rule() {
    let dir = fixtures().join("trails");
    let mut forged = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        if !name.ends_with(".jsonl") || name.starts_with("ok_") {
            continue;
        }
        forged += 1;
        let o = audit(&[
            "verify",
            "--json",
            "--allow-unchained",
            path.to_str().unwrap(),
        ]);
        assert_eq!(o.status.code(), Some(1), "{name}: {}", stdout(&o));
        let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        let v = &report[0]["violation"];
        assert!(v["line"].as_u64().unwrap() >= 1, "{name}");
        assert_eq!(v["call_id"], "57dab8b1894c409ab240bd8beae78896", "{name}");
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

/// Checks that `svg` is well-formed XML: tags balance and nest, attributes are quoted.
fn well_formed(svg: &str) -> Result<(), String> {
    let mut stack: Vec<String> = Vec::new();
    let mut rest = svg;
    while let Some(open) = rest.find('<') {
        let close = rest[open..].find('>').ok_or("unclosed tag")? + open;
        let tag = &rest[open + 1..close];
        rest = &rest[close + 1..];
        if let Some(name) = tag.strip_prefix('/') {
            let top = stack.pop().ok_or(format!("</{name}> without opening"))?;
            if top != name.trim() {
                return Err(format!("</{name}> closes <{top}>"));
            }
            continue;
        }
        if !tag.matches('"').count().is_multiple_of(2) {
            return Err(format!("unbalanced quotes in <{tag}>"));
        }
        let name = tag.split_whitespace().next().ok_or("empty tag")?.to_owned();
        if !tag.ends_with('/') {
            stack.push(name);
        }
    }
    if stack.is_empty() {
        Ok(())
    } else {
        Err(format!("unclosed: {stack:?}"))
    }
}

#[test]
fn the_timeline_of_one_call_matches_its_golden_picture() {
    let root = fixtures().join("timeline");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("episode.svg");
    let o = audit(&[
        "timeline",
        root.join("episode.jsonl").to_str().unwrap(),
        "--call",
        "57DAB8B1-894C-409A-B240-BD8BEAE78896",
        "--svg",
        out.to_str().unwrap(),
        "--allow-unchained",
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

#[test]
fn help_lists_the_three_subcommands_and_the_exit_statuses_and_exits_0() {
    for args in [&["--help"][..], &["-h"], &["help"]] {
        let o = audit(args);
        assert_eq!(o.status.code(), Some(0), "{args:?}: {}", stderr(&o));
        let out = stdout(&o);
        for expected in ["verify", "summary", "timeline", "Exit status"] {
            assert!(out.contains(expected), "{args:?}: {expected} in {out}");
        }
    }
    let o = audit(&["verify", "--help"]);
    assert_eq!(o.status.code(), Some(0));
    for expected in [
        "--json",
        "--key-file",
        "--allow-unchained",
        "--allow-unkeyed",
        "FILE",
    ] {
        assert!(
            stdout(&o).contains(expected),
            "{expected} in {}",
            stdout(&o)
        );
    }
    let o = audit(&["timeline", "--help"]);
    assert_eq!(o.status.code(), Some(0));
    for expected in [
        "--call",
        "--svg",
        "--force",
        "--allow-unchained",
        "--key-file",
    ] {
        assert!(
            stdout(&o).contains(expected),
            "{expected} in {}",
            stdout(&o)
        );
    }
}

#[test]
fn version_prints_the_package_version_and_exits_0() {
    for args in [&["--version"][..], &["-V"], &["verify", "--version"]] {
        let o = audit(args);
        assert_eq!(o.status.code(), Some(0), "{args:?}: {}", stderr(&o));
        let out = stdout(&o);
        // `recording-audit 0.1.0`, or `recording-audit-verify 0.1.0` after a subcommand.
        assert!(out.starts_with("recording-audit"), "{args:?}: {out}");
        assert!(
            out.trim_end()
                .ends_with(concat!(" ", env!("CARGO_PKG_VERSION"))),
            "{args:?}: {out}"
        );
    }
}

#[test]
fn an_unknown_option_or_subcommand_exits_2_naming_it() {
    let trail = fixtures().join("timeline/episode.jsonl");
    let trail = trail.to_str().unwrap();
    for (args, named) in [
        (&["verify", "--frobnicate", trail][..], "--frobnicate"),
        (&["summary", trail, "--svg", "out.svg"], "--svg"),
        (&["frobnicate"], "frobnicate"),
    ] {
        let o = audit(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stdout(&o));
        assert!(stdout(&o).is_empty(), "{args:?}: {}", stdout(&o));
        assert!(stderr(&o).contains(named), "{args:?}: {}", stderr(&o));
    }
}

#[test]
fn a_missing_argument_exits_2_naming_it() {
    let trail = fixtures().join("timeline/episode.jsonl");
    let trail = trail.to_str().unwrap();
    for (args, named) in [
        (&["verify"][..], "<FILE>"),
        (&["summary"], "<FILE>"),
        (&["timeline", trail, "--call", "x"], "--svg"),
        (&["verify", trail, "--key-file"], "--key-file"),
    ] {
        let o = audit(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stdout(&o));
        assert!(stdout(&o).is_empty(), "{args:?}: {}", stdout(&o));
        assert!(stderr(&o).contains(named), "{args:?}: {}", stderr(&o));
    }
}

/// One trail read as two instances would be compared with itself: refused, naming it.
#[test]
fn a_file_given_twice_exits_2_naming_it() {
    let trail = fixtures().join("timeline/episode.jsonl");
    let trail = trail.to_str().unwrap();
    let again = fixtures().join("timeline/../timeline/episode.jsonl");
    for command in ["verify", "summary"] {
        let o = audit(&[command, trail, again.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(2), "{command}: {}", stdout(&o));
        assert!(stdout(&o).is_empty(), "{command}: {}", stdout(&o));
        assert!(stderr(&o).contains("given twice"), "{}", stderr(&o));
        assert!(stderr(&o).contains(trail), "{}", stderr(&o));
    }
}

#[test]
fn no_subcommand_prints_the_usage_on_stderr_and_exits_2() {
    let o = audit(&[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stdout(&o).is_empty(), "{}", stdout(&o));
    assert!(stderr(&o).contains("verify"), "{}", stderr(&o));
}

/// `tests/fixtures/instances/NAME`, as an argument.
fn instance(name: &str) -> String {
    fixtures()
        .join("instances")
        .join(name)
        .to_str()
        .unwrap()
        .to_owned()
}

fn json(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", stdout(o)))
}

#[test]
fn instances_recording_different_calls_at_once_hold_across_instances() {
    let (a, c) = (
        instance("a_records.jsonl"),
        instance("c_records_another_call.jsonl"),
    );
    let o = audit(&["verify", "--allow-unchained", &a, &c]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert!(
        stdout(&o).contains("across 2 instances: no call held by two at once"),
        "{}",
        stdout(&o)
    );
    let reports = json(&audit(&["verify", "--json", "--allow-unchained", &a, &c]));
    for r in reports.as_array().unwrap() {
        assert_eq!(r["holds"], true, "{r}");
        assert_eq!(r["overlaps"], serde_json::json!([]), "{r}");
    }
}

/// The two trails spell the call differently (a GUID, and Graph's upper case without
/// dashes): one call all the same, held by both between 09:00:10 and 09:00:23.
#[test]
fn one_call_held_by_two_instances_at_once_is_a_violation_naming_both_files_and_holds() {
    let (a, b) = (
        instance("a_records.jsonl"),
        instance("b_records_meanwhile.jsonl"),
    );
    let o = audit(&["verify", "--allow-unchained", &a, &b]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    let out = stdout(&o);
    for expected in [
        format!(
            "{b}:1: VIOLATION G7/live-in-two-instances (call 57dab8b1894c409ab240bd8beae78896)"
        ),
        format!(
            "held by {a} from 2025-06-02T09:00:00+00:00 (line 1) until \
             2025-06-02T09:00:23+00:00 (line 9)"
        ),
        format!(
            "held by {b} from 2025-06-02T09:00:10+00:00 (line 1) until \
             2025-06-02T09:00:33+00:00 (line 9)"
        ),
    ] {
        assert!(out.contains(&expected), "{expected} in {out}");
    }

    let o = audit(&["verify", "--json", "--allow-unchained", &b, &a]);
    assert_eq!(o.status.code(), Some(1));
    let reports = json(&o);
    for (r, file) in reports.as_array().unwrap().iter().zip([&b, &a]) {
        assert_eq!(r["file"], file.as_str());
        assert_eq!(r["holds"], false, "{r}");
        assert_eq!(
            r["violation"],
            serde_json::Value::Null,
            "each holds on its own: {r}"
        );
        let overlaps = r["overlaps"].as_array().unwrap();
        assert_eq!(overlaps.len(), 1, "{r}");
        let overlap = &overlaps[0];
        assert_eq!(overlap["rule"], "G7/live-in-two-instances");
        assert_eq!(overlap["call_id"], "57dab8b1894c409ab240bd8beae78896");
        let holds = overlap["holds"].as_array().unwrap();
        assert_eq!(holds[0]["file"], a.as_str());
        assert_eq!(holds[0]["until"], "2025-06-02T09:00:23+00:00");
        assert_eq!(holds[1]["file"], b.as_str());
        assert_eq!(holds[1]["from"], "2025-06-02T09:00:10+00:00");
        assert_eq!(
            (&holds[1]["from_line"], &holds[1]["until_line"]),
            (&1.into(), &9.into())
        );
    }
}

#[test]
fn a_call_recorded_by_one_instance_after_the_other_stopped_holds() {
    let (a, b) = (
        instance("a_records.jsonl"),
        instance("b_records_after_a_stopped.jsonl"),
    );
    let o = audit(&["verify", "--allow-unchained", &a, &b]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert!(
        stdout(&o).contains("no call held by two at once"),
        "{}",
        stdout(&o)
    );
}

/// One file's report is what it was before several files were checked together: no
/// `overlaps` key, no line across instances.
#[test]
fn one_files_report_is_unchanged_by_the_check_across_instances() {
    let a = instance("a_records.jsonl");
    let o = audit(&["verify", "--allow-unchained", &a]);
    assert_eq!(o.status.code(), Some(0));
    assert!(!stdout(&o).contains("across"), "{}", stdout(&o));
    let reports = json(&audit(&["verify", "--json", "--allow-unchained", &a]));
    let mut keys: Vec<&str> = reports[0]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "calls",
            "chain",
            "events",
            "file",
            "holds",
            "open",
            "recovered",
            "retentions",
            "torn_tail",
            "unauthenticated",
            "violation"
        ]
    );
}

/// Two instances keyed with the same key, one after the other on one call; one trail is then
/// edited. Its chain is reported broken, the other's holds, and the exit status is 1.
#[test]
fn one_broken_chain_among_several_keyed_trails_is_reported_for_that_trail() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("key");
    std::fs::write(&key, b"instances' shared key").unwrap();
    let (a, b) = (dir.path().join("a.jsonl"), dir.path().join("b.jsonl"));
    for path in [&a, &b] {
        record_into(
            JsonLinesSink::options()
                .key(b"instances' shared key".to_vec())
                .open(path)
                .unwrap(),
        );
    }
    let args = |json| {
        let mut args = vec!["verify", "--key-file", key.to_str().unwrap()];
        args.extend(json);
        args.extend([a.to_str().unwrap(), b.to_str().unwrap()]);
        audit(&args)
    };
    let o = args(None);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert_eq!(stdout(&o).matches("(keyed)").count(), 2, "{}", stdout(&o));

    let text = std::fs::read_to_string(&b).unwrap();
    let edited = text.replacen("\"outcome\":\"completed\"", "\"outcome\":\"pending\"", 1);
    assert_ne!(edited, text);
    std::fs::write(&b, edited).unwrap();
    let o = args(Some("--json"));
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    let reports = json(&o);
    assert_eq!(reports[0]["holds"], true, "{}", reports[0]);
    assert_eq!(reports[1]["holds"], false);
    assert_eq!(reports[1]["violation"]["rule"], "G9/chain");
    assert_eq!(reports[1]["overlaps"], serde_json::json!([]));
}

#[test]
fn a_summary_of_several_instances_totals_each_and_all() {
    let (a, b, c) = (
        instance("a_records.jsonl"),
        instance("b_records_after_a_stopped.jsonl"),
        instance("c_records_another_call.jsonl"),
    );
    let o = audit(&["summary", "--allow-unchained", &a, &b, &c]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    let row = |label: &str| {
        out.lines()
            .find(|l| l.starts_with(label) && !l.starts_with("instance "))
            .unwrap_or_else(|| panic!("no line for {label} in {out}"))
            .split_whitespace()
            .rev()
            .take(4)
            .collect::<Vec<_>>()
    };
    // Capabilities, recording ms, episodes and calls, read from the right.
    assert_eq!(row(&a), ["1", "20000", "1", "1"]);
    // The call a and b held one after the other counts once.
    assert_eq!(row("total (3 instances)"), ["3", "60000", "3", "2"]);

    let o = audit(&["summary", "--json", "--allow-unchained", &a, &b, &c]);
    assert_eq!(o.status.code(), Some(0));
    let summary = json(&o);
    assert_eq!(
        summary["total"],
        serde_json::json!({"calls": 2, "episodes": 3, "recording_ms": 60000, "capabilities": 3})
    );
    let instances = summary["instances"].as_array().unwrap();
    assert_eq!(instances.len(), 3);
    assert_eq!(instances[1]["file"], b.as_str());
    assert_eq!(instances[1]["totals"]["recording_ms"], 20000);
    assert_eq!(
        instances[1]["calls"][0]["call_id"],
        "57dab8b1894c409ab240bd8beae78896"
    );

    // One file keeps its shape: an array of calls.
    let one = json(&audit(&["summary", "--json", "--allow-unchained", &a]));
    assert_eq!(one.as_array().unwrap().len(), 1);
}

/// A type in the notation the compliance page uses to document `verify --json`.
#[derive(Debug)]
enum Shape {
    String,
    Bool,
    Integer,
    Null,
    /// `[T]`: a list of `T`.
    List(Box<Self>),
    /// `[T, U]`: a pair.
    Pair(Box<Self>, Box<Self>),
    /// `{"key": T, …}`: an object with exactly these keys.
    Object(Vec<(String, Self)>),
    /// `A | B`: either one.
    Either(Vec<Self>),
}

/// Reads a [`Shape`] off the front of a text, leaving whatever follows it.
struct ShapeReader<'a> {
    rest: &'a str,
}

impl ShapeReader<'_> {
    fn eat(&mut self, token: &str) -> bool {
        self.rest = self.rest.trim_start();
        match self.rest.strip_prefix(token) {
            Some(rest) => {
                self.rest = rest;
                true
            }
            None => false,
        }
    }

    fn expect(&mut self, token: &str) {
        assert!(self.eat(token), "`{token}` expected at: {}", self.rest);
    }

    fn shape(&mut self) -> Shape {
        let mut either = vec![self.one()];
        while self.eat("|") {
            either.push(self.one());
        }
        if either.len() == 1 {
            either.remove(0)
        } else {
            Shape::Either(either)
        }
    }

    fn one(&mut self) -> Shape {
        if self.eat("{") {
            let mut fields = Vec::new();
            loop {
                self.expect("\"");
                let end = self.rest.find('"').expect("a closing quote");
                let key = self.rest[..end].to_owned();
                self.rest = &self.rest[end + 1..];
                self.expect(":");
                fields.push((key, self.shape()));
                if self.eat("}") {
                    return Shape::Object(fields);
                }
                self.expect(",");
            }
        }
        if self.eat("[") {
            let first = Box::new(self.shape());
            if self.eat("]") {
                return Shape::List(first);
            }
            self.expect(",");
            let second = Box::new(self.shape());
            self.expect("]");
            return Shape::Pair(first, second);
        }
        for (word, shape) in [
            ("string", Shape::String),
            ("bool", Shape::Bool),
            ("integer", Shape::Integer),
            ("null", Shape::Null),
        ] {
            if self.eat(word) {
                return shape;
            }
        }
        panic!("no shape at: {}", self.rest)
    }
}

/// The shape of one element of `verify --json`'s array, read from the compliance page of the
/// library's docs (the text after `--json`, as rustdoc shows it).
fn documented_verify_shape() -> Shape {
    let page = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../src/compliance.rs"));
    let source = std::fs::read_to_string(page).unwrap();
    let docs: String = source
        .lines()
        .filter_map(|l| l.strip_prefix("//!"))
        .map(|l| l.strip_prefix(' ').unwrap_or(l))
        .collect::<Vec<_>>()
        .join("\n");
    let verify = docs
        .find("recording-audit verify FILE")
        .expect("the page documents verify");
    let json = verify + docs[verify..].find("--json ").expect("and its --json");
    let object = json + docs[json..].find('{').expect("with a shape");
    ShapeReader {
        rest: &docs[object..],
    }
    .one()
}

/// Where a shape may vary: each alternative of an `A | B`, and each list holding something.
fn variations(shape: &Shape, at: &str, out: &mut Vec<String>) {
    match shape {
        Shape::List(item) => {
            out.push(format!("{at} non-empty"));
            variations(item, &format!("{at}[]"), out);
        }
        Shape::Pair(a, b) => {
            variations(a, &format!("{at}.0"), out);
            variations(b, &format!("{at}.1"), out);
        }
        Shape::Object(fields) => {
            for (key, field) in fields {
                variations(field, &format!("{at}.{key}"), out);
            }
        }
        Shape::Either(either) => {
            for (i, alternative) in either.iter().enumerate() {
                out.push(format!("{at} as alternative {i}"));
                variations(alternative, at, out);
            }
        }
        Shape::String | Shape::Bool | Shape::Integer | Shape::Null => {}
    }
}

/// Checks `value` against `shape`, noting in `seen` which [`variations`] it showed.
fn conforms(
    value: &serde_json::Value,
    shape: &Shape,
    at: &str,
    seen: &mut std::collections::BTreeSet<String>,
) -> Result<(), String> {
    use serde_json::Value;
    let wrong = || Err(format!("{at}: {value} is not {shape:?}"));
    match (shape, value) {
        (Shape::String, Value::String(_))
        | (Shape::Bool, Value::Bool(_))
        | (Shape::Null, Value::Null) => Ok(()),
        (Shape::Integer, Value::Number(n)) if n.is_u64() || n.is_i64() => Ok(()),
        (Shape::List(item), Value::Array(items)) => {
            if !items.is_empty() {
                seen.insert(format!("{at} non-empty"));
            }
            items
                .iter()
                .try_for_each(|v| conforms(v, item, &format!("{at}[]"), seen))
        }
        (Shape::Pair(a, b), Value::Array(items)) if items.len() == 2 => {
            conforms(&items[0], a, &format!("{at}.0"), seen)?;
            conforms(&items[1], b, &format!("{at}.1"), seen)
        }
        (Shape::Object(fields), Value::Object(map)) => {
            let documented: Vec<&str> = fields.iter().map(|(k, _)| k.as_str()).collect();
            let mut sent: Vec<&str> = map.keys().map(String::as_str).collect();
            let mut expected = documented.clone();
            expected.sort_unstable();
            sent.sort_unstable();
            if sent != expected {
                return Err(format!("{at}: keys {sent:?}, documented {documented:?}"));
            }
            fields
                .iter()
                .try_for_each(|(k, field)| conforms(&map[k], field, &format!("{at}.{k}"), seen))
        }
        (Shape::Either(either), _) => {
            for (i, alternative) in either.iter().enumerate() {
                let mut inner = seen.clone();
                if conforms(value, alternative, at, &mut inner).is_ok() {
                    *seen = inner;
                    seen.insert(format!("{at} as alternative {i}"));
                    return Ok(());
                }
            }
            wrong()
        }
        _ => wrong(),
    }
}

#[test]
fn the_shape_reader_and_the_check_can_fail() {
    let shape = ShapeReader {
        rest: r#"{"a": integer, "b": [string] | null} trailing"#,
    }
    .one();
    let mut seen = std::collections::BTreeSet::new();
    let check = |v: serde_json::Value, seen: &mut _| conforms(&v, &shape, "", seen);
    assert!(check(serde_json::json!({"a": 1, "b": ["x"]}), &mut seen).is_ok());
    assert!(check(serde_json::json!({"a": 1, "b": null}), &mut seen).is_ok());
    assert!(check(serde_json::json!({"a": "1", "b": null}), &mut seen).is_err());
    assert!(check(serde_json::json!({"a": 1.5, "b": null}), &mut seen).is_err());
    assert!(check(serde_json::json!({"a": 1, "b": [3]}), &mut seen).is_err());
    assert!(check(serde_json::json!({"a": 1}), &mut seen).is_err());
    assert!(check(serde_json::json!({"a": 1, "b": null, "c": 2}), &mut seen).is_err());
    let mut all = Vec::new();
    variations(&shape, "", &mut all);
    assert!(all.iter().all(|v| seen.contains(v)), "{all:?} {seen:?}");
}

/// `verify --json` prints what the compliance page documents: every field, with its type, and
/// no other, on trails that show every variation the page allows (holding and violating, a
/// torn tail, a broken chain, calls left open, recordings entered unauthenticated).
#[test]
fn verify_json_has_the_documented_shape() {
    let shape = documented_verify_shape();
    let dir = tempfile::tempdir().unwrap();
    let holding = dir.path().join("holding.jsonl");
    real_trail(&holding);
    let torn = dir.path().join("torn.jsonl");
    real_trail(&torn);
    let mut bytes = std::fs::read(&torn).unwrap();
    bytes.extend_from_slice(br#"{"at":"2025-06-02T09"#);
    std::fs::write(&torn, bytes).unwrap();
    let edited = dir.path().join("edited.jsonl");
    real_trail(&edited);
    let text = std::fs::read_to_string(&edited).unwrap();
    std::fs::write(
        &edited,
        text.replacen("\"outcome\":\"completed\"", "\"outcome\":\"pending\"", 1),
    )
    .unwrap();
    let forged = fixtures().join("trails/a_ack_reused_after_failed.jsonl");
    let cut = fixtures().join("trails/ok_cut_while_recording_unauthenticated.jsonl");
    let recovered = dir.path().join("recovered.jsonl");
    recovered_trail(&recovered);
    let files = [&holding, &torn, &edited, &forged, &cut, &recovered]
        .map(|p| p.to_str().unwrap().to_owned());

    // One file at a time: the shape documented is one file's (several add `overlaps`).
    let reports: Vec<serde_json::Value> = files
        .iter()
        .map(|file| {
            let o = audit(&[
                "verify",
                "--json",
                "--allow-unchained",
                "--allow-unkeyed",
                file,
            ]);
            assert!(matches!(o.status.code(), Some(0 | 1)), "{}", stderr(&o));
            let mut one: Vec<serde_json::Value> = serde_json::from_slice(&o.stdout).unwrap();
            assert_eq!(one.len(), 1);
            one.remove(0)
        })
        .collect();

    let mut seen = std::collections::BTreeSet::new();
    for (report, file) in reports.iter().zip(&files) {
        conforms(report, &shape, "", &mut seen).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(
            report["file"],
            file.as_str(),
            "one object per file, in order"
        );
        assert_eq!(
            report["holds"].as_bool(),
            Some(report["violation"].is_null()),
            "{file}"
        );
    }
    let mut every = Vec::new();
    variations(&shape, "", &mut every);
    let missing: Vec<_> = every.iter().filter(|v| !seen.contains(*v)).collect();
    assert!(missing.is_empty(), "not shown by any trail: {missing:?}");

    let [holding, torn, edited, forged, cut, recovered] = &reports[..] else {
        unreachable!()
    };
    assert_eq!(recovered["holds"], true);
    assert_eq!(recovered["open"], serde_json::json!([]));
    let recovered = recovered["recovered"][0].as_str().unwrap();
    assert!(
        recovered.starts_with("0b5e6f1c2d3a4e4f8a9bc0d1e2f30415 left Recording by a crash")
            && recovered.ends_with("then reported"),
        "{recovered}"
    );
    assert_eq!(holding["holds"], true);
    assert_eq!(torn["holds"], true);
    let [offset, len] = [&torn["torn_tail"][0], &torn["torn_tail"][1]];
    assert_eq!(len, 20, "the bytes appended after the last line");
    assert_eq!(
        offset.as_u64().unwrap() + 20,
        std::fs::metadata(&files[1]).unwrap().len()
    );
    assert_eq!(edited["violation"]["rule"], "G9/chain");
    assert_eq!(edited["violation"]["call_id"], "");
    assert!(
        forged["violation"]["rule"]
            .as_str()
            .unwrap()
            .starts_with("G1/")
    );
    assert_eq!(cut["holds"], true);
    assert!(!cut["open"].as_array().unwrap().is_empty());
    assert!(!cut["unauthenticated"].as_array().unwrap().is_empty());
}

/// Sets the `at` of the first line holding `event` to `at`.
fn restamp(text: &str, event: &str, at: &str) -> String {
    let line = text.lines().find(|l| l.contains(event)).unwrap();
    let (head, tail) = line.split_once("\"at\":\"").unwrap();
    let (_, tail) = tail.split_once('"').unwrap();
    text.replacen(line, &format!("{head}\"at\":\"{at}\"{tail}"), 1)
}

/// A retention stamped before its `recording` request was sent, lines in order and the chain
/// recomputed: the chain holds, and time going back is the violation, at that line.
#[test]
fn a_retention_stamped_before_its_recording_request_is_a_violation() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    real_trail(&path);
    let text = std::fs::read_to_string(&path).unwrap();
    let forged = rechain(
        &restamp(
            &text,
            "\"event\":\"retention_started\"",
            "2000-01-01T00:00:00Z",
        ),
        None,
    );
    std::fs::write(&path, &forged).unwrap();
    let o = audit(&[
        "verify",
        "--json",
        "--allow-unkeyed",
        path.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    let report = &json(&o)[0];
    assert!(
        report["chain"].as_str().unwrap().starts_with("holds"),
        "{report}"
    );
    let line = forged
        .lines()
        .position(|l| l.contains("\"event\":\"retention_started\""))
        .unwrap()
        + 1;
    assert_eq!(report["violation"]["rule"], "G9/time-goes-back", "{report}");
    assert_eq!(report["violation"]["line"], line);
}

/// The violation `verify --json` reports for the one trail at `path`, after `flags`, and the
/// exit status.
fn violation_of(path: &Path, flags: &[&str]) -> (Option<i32>, serde_json::Value) {
    let mut args = vec!["verify", "--json"];
    args.extend(flags);
    args.push(path.to_str().unwrap());
    let o = audit(&args);
    (o.status.code(), json(&o)[0]["violation"].clone())
}

/// An unchained line (a forged event) before a chained trail: the chain holds over the rest,
/// but the line could have been added by anyone, so it is refused unless the auditor accepts
/// unchained lines.
#[test]
fn an_unchained_line_before_a_chained_trail_is_a_violation_unless_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    real_trail(&path);
    let text = std::fs::read_to_string(&path).unwrap();
    let forged = AuditEvent::now(
        "57dab8b1894c409ab240bd8beae78896",
        AuditKind::RetentionEnded { capability: 7 },
    );
    let mut first = serde_json::to_string(&forged).unwrap();
    first = first.replace(&forged.at.to_rfc3339(), "2000-01-01T00:00:00Z");
    std::fs::write(&path, format!("{first}\n{text}")).unwrap();

    let (code, v) = violation_of(&path, &["--allow-unkeyed"]);
    assert_eq!(code, Some(1), "{v}");
    assert_eq!(
        (&v["rule"], &v["line"], &v["call_id"]),
        (&"G9/unchained".into(), &1.into(), &"".into())
    );
    let o = audit(&["verify", "--allow-unkeyed", path.to_str().unwrap()]);
    assert!(
        stdout(&o).contains("after 1 unchained lines"),
        "{}",
        stdout(&o)
    );

    // Accepted, the forged line is replayed with the rest: it ends a capability never started.
    let (code, v) = violation_of(&path, &["--allow-unkeyed", "--allow-unchained"]);
    assert_eq!(code, Some(1), "{v}");
    assert_eq!(v["rule"], "G4/capability-ended-without-start");
}

/// A trail with `seq` and `chain` stripped from every line is refused unless the auditor
/// accepts a trail without a chain; accepted, it is replayed as before.
#[test]
fn a_trail_without_a_chain_is_a_violation_unless_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    real_trail(&path);
    let stripped: String = std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .map(|l| format!("{{{}\n", &l.split_once(",\"chain\":\"").unwrap().1[66..]))
        .collect();
    std::fs::write(&path, stripped).unwrap();
    let (code, v) = violation_of(&path, &[]);
    assert_eq!(code, Some(1), "{v}");
    assert_eq!(
        (&v["rule"], &v["line"]),
        (&"G9/unchained".into(), &1.into())
    );
    let (code, v) = violation_of(&path, &["--allow-unchained"]);
    assert_eq!((code, v), (Some(0), serde_json::Value::Null));
}

/// A chain checked without a key could have been recomputed by whoever wrote the file: it is
/// refused unless the auditor accepts it; under the bot's key it holds.
#[test]
fn a_chain_checked_without_a_key_is_a_violation_unless_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("plain.jsonl");
    real_trail(&plain);
    let (code, v) = violation_of(&plain, &[]);
    assert_eq!(code, Some(1), "{v}");
    assert_eq!((&v["rule"], &v["line"]), (&"G9/unkeyed".into(), &1.into()));
    assert_eq!(violation_of(&plain, &["--allow-unkeyed"]).0, Some(0));

    let keyed = dir.path().join("keyed.jsonl");
    record_into(
        JsonLinesSink::options()
            .key(*b"the bot's key")
            .open(&keyed)
            .unwrap(),
    );
    let key = dir.path().join("key");
    std::fs::write(&key, b"the bot's key").unwrap();
    let (code, v) = violation_of(&keyed, &["--key-file", key.to_str().unwrap()]);
    assert_eq!((code, v), (Some(0), serde_json::Value::Null));
    // Without its key, a keyed chain does not hold at all.
    let (code, v) = violation_of(&keyed, &["--allow-unkeyed"]);
    assert_eq!((code, &v["rule"]), (Some(1), &"G9/chain".into()));
}

/// `summary` and `timeline` check a trail as `verify` does: an edited trail is still
/// reported on, then named on stderr with its violation, and the exit status is 1.
#[test]
fn summary_and_timeline_say_when_a_trail_is_broken() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    real_trail(&path);
    let file = path.to_str().unwrap();
    let svg = dir.path().join("call.svg");
    let timeline = |extra: &[&str]| {
        let mut args = vec![
            "timeline",
            file,
            "--call",
            "57dab8b1894c409ab240bd8beae78896",
            "--svg",
            svg.to_str().unwrap(),
            "--force",
        ];
        args.extend(extra);
        audit(&args)
    };
    for o in [
        audit(&["summary", "--allow-unkeyed", file]),
        timeline(&["--allow-unkeyed"]),
    ] {
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        assert!(stderr(&o).is_empty(), "{}", stderr(&o));
    }
    // Unkeyed, by default: refused like verify refuses it.
    let o = audit(&["summary", file]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("G9/unkeyed"), "{}", stderr(&o));

    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        text.replacen("\"outcome\":\"completed\"", "\"outcome\":\"pending\"", 1),
    )
    .unwrap();
    for o in [
        audit(&["summary", "--allow-unkeyed", file]),
        audit(&["summary", "--json", "--allow-unkeyed", file]),
        timeline(&["--allow-unkeyed"]),
    ] {
        assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
        assert!(!stdout(&o).is_empty(), "the report is printed all the same");
        let err = stderr(&o);
        assert!(err.contains(&format!("{file}:")), "{err}");
        assert!(err.contains("VIOLATION G9/chain"), "{err}");
        assert!(err.contains("does not hold"), "{err}");
    }
}

/// `timeline` writes a new picture; an existing file is left alone unless `--force`.
#[test]
fn timeline_overwrites_a_file_only_when_forced() {
    let trail = fixtures().join("timeline/episode.jsonl");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("call.svg");
    std::fs::write(&out, "the auditor's own file").unwrap();
    let run = |force: bool| {
        let mut args = vec![
            "timeline",
            trail.to_str().unwrap(),
            "--call",
            "57dab8b1894c409ab240bd8beae78896",
            "--svg",
            out.to_str().unwrap(),
            "--allow-unchained",
        ];
        if force {
            args.push("--force");
        }
        audit(&args)
    };
    let o = run(false);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--force"), "{}", stderr(&o));
    assert_eq!(
        std::fs::read_to_string(&out).unwrap(),
        "the auditor's own file"
    );
    let o = run(true);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(std::fs::read_to_string(&out).unwrap().starts_with("<svg"));
}

/// Without `--call`, `timeline` draws every call of the trail on one page, marks the one that
/// breaks the rule, exits as `verify` would, and leaves an existing picture alone unless
/// `--force`.
#[test]
fn timeline_without_a_call_draws_the_whole_trail() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("trail.svg");
    let draw = |trail: &Path, extra: &[&str]| {
        let mut args = vec![
            "timeline",
            trail.to_str().unwrap(),
            "--svg",
            out.to_str().unwrap(),
            "--allow-unchained",
        ];
        args.extend(extra);
        audit(&args)
    };
    let good = fixtures().join("timeline/episode.jsonl");
    let o = draw(&good, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o).trim(), out.to_str().unwrap());
    let svg = std::fs::read_to_string(&out).unwrap();
    well_formed(&svg).unwrap();
    for expected in [
        "Audit trail: 1 call, 13 events",
        ">57dab8b1894c409ab240bd8beae78896<",
        "verify, over the whole trail: the rule holds",
        "last capability (#1) ended 10.0 ms before `notRecording` was sent",
        r#"class="legend""#,
        r#"class="axis-tick""#,
    ] {
        assert!(svg.contains(expected), "{expected} in {svg}");
    }
    assert!(!svg.contains("call-row violation"), "{svg}");

    // Not overwritten without --force, whatever the trail.
    let forged = fixtures().join("trails/a_ack_reused_after_failed.jsonl");
    let o = draw(&forged, &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--force"), "{}", stderr(&o));
    assert_eq!(std::fs::read_to_string(&out).unwrap(), svg);

    // A trail that breaks the rule: drawn, its call marked, then named on stderr, exit 1.
    let o = draw(&forged, &["--force"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("VIOLATION"), "{}", stderr(&o));
    let svg = std::fs::read_to_string(&out).unwrap();
    well_formed(&svg).unwrap();
    assert!(svg.contains(r#"<g class="call-row violation">"#), "{svg}");
    assert!(
        svg.contains("✗ verify, over the whole trail: first violation at line"),
        "{svg}"
    );
}

/// With several files, a violation in one decides the exit status, whatever else cannot be
/// read; unreadable input alone exits 2.
#[test]
fn a_violation_wins_over_an_unreadable_file() {
    let forged = fixtures().join("trails/a_ack_reused_after_failed.jsonl");
    let good = instance("a_records.jsonl");
    let missing = "/nonexistent/audit.jsonl";
    for command in ["verify", "summary"] {
        for files in [
            [forged.to_str().unwrap(), missing],
            [missing, forged.to_str().unwrap()],
        ] {
            let mut args = vec![command, "--allow-unchained"];
            args.extend(files);
            let o = audit(&args);
            assert_eq!(
                o.status.code(),
                Some(1),
                "{command} {files:?}: {}",
                stderr(&o)
            );
            assert!(stderr(&o).contains(missing), "{}", stderr(&o));
        }
        let o = audit(&[command, "--allow-unchained", &good, missing]);
        assert_eq!(o.status.code(), Some(2), "{command}: {}", stderr(&o));
    }
}
