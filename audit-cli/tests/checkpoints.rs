//! `recording-audit verify --checkpoints FILE --public-key KEY [--origin NAME] TRAIL`, run as
//! an auditor would on trails the library wrote with witnessed checkpoints: a trail that
//! holds with an unwitnessed tail, one cut before its last checkpoint, one rewritten and
//! rechained (plain, and with the HMAC key), checkpoints under another key or of another
//! trail, a torn witness file, and the usage rules (one trail, a key).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use recording_status::audit::{
    AuditEvent, AuditKind, AuditSink, CheckpointOptions, CheckpointSigner, FileWitness,
    JsonLinesSink,
};

mod support;
use support::{audit, rechain, stderr, stdout};

const ORIGIN: &str = "example.com/bot-1/audit";
const HMAC_KEY: &[u8] = b"the bot's chain key";

fn signer(seed: u8) -> CheckpointSigner {
    CheckpointSigner::new("bot-1", [seed; 32]).unwrap()
}

/// A trail of `events` lines that hold the rule, its witness file (a checkpoint every
/// `every` lines), the auditor's key file, and the HMAC key file.
struct Witnessed {
    _dir: tempfile::TempDir,
    trail: PathBuf,
    witness: PathBuf,
    key: String,
    hmac: PathBuf,
}

impl Witnessed {
    fn new(events: usize, every: u64, keyed: bool) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let trail = dir.path().join("audit.jsonl");
        let witness = dir.path().join("checkpoints.txt");
        let hmac = dir.path().join("hmac.key");
        std::fs::write(&hmac, HMAC_KEY).unwrap();
        let mut options = JsonLinesSink::options().checkpoints(
            CheckpointOptions::new(
                ORIGIN,
                signer(7),
                Arc::new(FileWitness::open(&witness).unwrap()),
            )
            .unwrap()
            .every_events(every),
        );
        if keyed {
            options = options.key(HMAC_KEY);
        }
        let sink = options.open(&trail).unwrap();
        for outstanding in 0..events {
            sink.record(&AuditEvent::now(
                "c1",
                AuditKind::DrainStarted { outstanding },
            ))
            .unwrap();
        }
        drop(sink);
        Self {
            _dir: dir,
            trail,
            witness,
            key: signer(7).verifier_key().to_string(),
            hmac,
        }
    }

    fn path(p: &Path) -> &str {
        p.to_str().unwrap()
    }

    /// `verify --json --checkpoints … --public-key … [extra] TRAIL`, with the HMAC key file if
    /// `keyed`, else accepting the plain chain.
    fn verify(&self, keyed: bool, extra: &[&str]) -> (Option<i32>, serde_json::Value) {
        let mut args = vec![
            "verify",
            "--json",
            "--checkpoints",
            Self::path(&self.witness),
            "--public-key",
            &self.key,
        ];
        if keyed {
            args.extend(["--key-file", Self::path(&self.hmac)]);
        } else {
            args.push("--allow-unkeyed");
        }
        args.extend(extra);
        args.push(Self::path(&self.trail));
        let o = audit(&args);
        let report: serde_json::Value = serde_json::from_slice(&o.stdout)
            .unwrap_or_else(|e| panic!("{e}: {} {}", stdout(&o), stderr(&o)));
        (o.status.code(), report[0].clone())
    }

    fn text(&self) -> String {
        std::fs::read_to_string(&self.trail).unwrap()
    }

    /// Keeps the trail's first `lines` lines.
    fn cut(&self, lines: usize) {
        let cut: String = self
            .text()
            .lines()
            .take(lines)
            .map(|l| format!("{l}\n"))
            .collect();
        std::fs::write(&self.trail, cut).unwrap();
    }
}

#[test]
fn a_trail_longer_than_its_last_checkpoint_holds_and_the_tail_is_printed() {
    let w = Witnessed::new(8, 3, false);
    let (code, report) = w.verify(false, &[]);
    assert_eq!(code, Some(0), "{report}");
    let c = &report["checkpoints"];
    assert_eq!(c["read"], 2);
    assert_eq!(c["holding"], 2);
    assert_eq!(c["origin"], ORIGIN);
    assert_eq!(
        (
            &c["witnessed_seq"],
            &c["witnessed_line"],
            &c["witnessed_by"]
        ),
        (&6.into(), &6.into(), &2.into())
    );
    assert_eq!(
        (&c["unwitnessed"], &c["unwitnessed_from_line"]),
        (&2.into(), &7.into())
    );
    assert_eq!(c["problems"], serde_json::json!([]));

    let o = audit(&[
        "verify",
        "--allow-unkeyed",
        "--checkpoints",
        Witnessed::path(&w.witness),
        "--public-key",
        &w.key,
        Witnessed::path(&w.trail),
    ]);
    assert_eq!(o.status.code(), Some(0));
    let out = stdout(&o);
    assert!(out.contains("the rule holds"), "{out}");
    assert!(
        out.contains("witnessed: up to seq 6 (line 6), by checkpoint #2 signed "),
        "{out}"
    );
    assert!(
        out.contains("unwitnessed tail: 2 lines from line 7 (seq 7 to 8)"),
        "{out}"
    );
}

#[test]
fn a_trail_cut_before_its_last_checkpoint_is_a_violation_naming_it() {
    let w = Witnessed::new(8, 3, false);
    w.cut(5);
    // The chain alone holds: a cut at the end leaves a valid shorter chain.
    let o = audit(&["verify", "--allow-unkeyed", Witnessed::path(&w.trail)]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));

    let (code, report) = w.verify(false, &[]);
    assert_eq!(code, Some(1), "{report}");
    let v = &report["violation"];
    assert_eq!(v["rule"], "G9/checkpoint-truncated");
    assert_eq!(v["line"], 5, "where the trail ends");
    let words = v["words"].as_str().unwrap();
    assert!(
        words.starts_with("checkpoint #2 (seq 6, signed ")
            && words.contains("the trail ends at seq 5, before this checkpoint"),
        "{words}"
    );
    assert_eq!(report["checkpoints"]["witnessed_seq"], 3);
}

fn rewritten_and_rechained(keyed: bool) {
    let w = Witnessed::new(8, 3, keyed);
    let key = keyed.then_some(HMAC_KEY);
    let forged = rechain(
        &w.text()
            .replacen("\"outstanding\":1}", "\"outstanding\":9}", 1),
        key,
    );
    assert_ne!(forged, w.text());
    std::fs::write(&w.trail, forged).unwrap();
    // The chain holds again, under the key if there is one.
    let (code, report) = {
        let mut args = vec!["verify", "--json"];
        if keyed {
            args.extend(["--key-file", Witnessed::path(&w.hmac)]);
        } else {
            args.push("--allow-unkeyed");
        }
        args.push(Witnessed::path(&w.trail));
        let o = audit(&args);
        (
            o.status.code(),
            serde_json::from_slice::<serde_json::Value>(&o.stdout).unwrap(),
        )
    };
    assert_eq!(code, Some(0), "{report}");

    let (code, report) = w.verify(keyed, &[]);
    assert_eq!(code, Some(1), "{report}");
    let v = &report["violation"];
    assert_eq!(v["rule"], "G9/checkpoint-contradicted");
    assert_eq!(v["line"], 3, "the line at the first checkpoint's seq");
    let words = v["words"].as_str().unwrap();
    assert!(
        words.starts_with("checkpoint #1 (seq 3, signed ")
            && words.contains("line 3 (seq 3) has another chain value")
            && words.contains("note at line 1)"),
        "{words}"
    );
    let problems = report["checkpoints"]["problems"].as_array().unwrap();
    assert_eq!(problems.len(), 2);
    assert_eq!(problems[1]["checkpoint"], 2);
    assert_eq!(problems[1]["rule"], "G9/checkpoint-contradicted");
    assert_eq!(report["checkpoints"]["unwitnessed"], 8);
}

#[test]
fn a_trail_rewritten_with_a_recomputed_chain_is_a_violation_naming_the_checkpoint() {
    rewritten_and_rechained(false);
}

#[test]
fn a_trail_rewritten_and_rechained_with_the_hmac_key_is_a_violation_naming_the_checkpoint() {
    rewritten_and_rechained(true);
}

#[test]
fn checkpoints_under_another_key_are_a_violation() {
    let w = Witnessed::new(4, 2, false);
    let other = signer(8).verifier_key().to_string();
    let (code, report) = {
        let o = audit(&[
            "verify",
            "--json",
            "--allow-unkeyed",
            "--checkpoints",
            Witnessed::path(&w.witness),
            "--public-key",
            &other,
            Witnessed::path(&w.trail),
        ]);
        (
            o.status.code(),
            serde_json::from_slice::<serde_json::Value>(&o.stdout).unwrap()[0].clone(),
        )
    };
    assert_eq!(code, Some(1), "{report}");
    assert_eq!(report["violation"]["rule"], "G9/checkpoint-unverified");
    assert_eq!(report["violation"]["line"], 1);
    assert!(
        report["violation"]["words"]
            .as_str()
            .unwrap()
            .contains("no signature by key bot-1+"),
        "{report}"
    );
    assert_eq!(report["checkpoints"]["holding"], 0);
}

#[test]
fn checkpoints_of_another_trail_are_a_violation() {
    let w = Witnessed::new(4, 2, false);
    let (code, report) = w.verify(false, &["--origin", "example.com/bot-2/audit"]);
    assert_eq!(code, Some(1), "{report}");
    assert_eq!(report["violation"]["rule"], "G9/checkpoint-foreign");
    assert_eq!(report["checkpoints"]["origin"], "example.com/bot-2/audit");

    // Same origin, another trail's heads: contradicted.
    let other = Witnessed::new(4, 2, false);
    std::fs::copy(&other.witness, &w.witness).unwrap();
    let (code, report) = w.verify(false, &["--origin", ORIGIN]);
    assert_eq!(code, Some(1), "{report}");
    assert_eq!(report["violation"]["rule"], "G9/checkpoint-contradicted");
}

#[test]
fn a_torn_witness_file_is_reported_and_its_earlier_checkpoints_hold() {
    let w = Witnessed::new(6, 2, false);
    let mut bytes = std::fs::read(&w.witness).unwrap();
    bytes.truncate(bytes.len() - 20);
    std::fs::write(&w.witness, bytes).unwrap();
    let (code, report) = w.verify(false, &[]);
    assert_eq!(code, Some(0), "{report}");
    let c = &report["checkpoints"];
    assert_eq!((&c["read"], &c["witnessed_seq"]), (&2.into(), &4.into()));
    let unreadable = c["unreadable"].as_array().unwrap();
    assert_eq!(unreadable.len(), 1);
    assert_eq!(unreadable[0]["torn"], true);
    assert_eq!(
        unreadable[0]["line"], 15,
        "the third note starts at line 15"
    );

    let o = audit(&[
        "verify",
        "--allow-unkeyed",
        "--checkpoints",
        Witnessed::path(&w.witness),
        "--public-key",
        &w.key,
        Witnessed::path(&w.trail),
    ]);
    assert!(
        stdout(&o).contains("unreadable note at line 15 of ") && stdout(&o).contains("(torn)"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn checkpoints_take_one_trail_and_a_key_from_text_or_a_file() {
    let w = Witnessed::new(2, 1, false);
    let second = Witnessed::new(2, 1, false);
    let trail = Witnessed::path(&w.trail);
    let witness = Witnessed::path(&w.witness);
    let o = audit(&[
        "verify",
        "--allow-unkeyed",
        "--checkpoints",
        witness,
        "--public-key",
        &w.key,
        trail,
        Witnessed::path(&second.trail),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("--checkpoints checks one trail"),
        "{}",
        stderr(&o)
    );

    let o = audit(&["verify", "--allow-unkeyed", "--checkpoints", witness, trail]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--public-key"), "{}", stderr(&o));

    let o = audit(&[
        "verify",
        "--checkpoints",
        witness,
        "--public-key",
        "bot-1+00000000+nonsense",
        trail,
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("not a verifier key"), "{}", stderr(&o));

    let key_file = w.witness.with_file_name("bot-1.vkey");
    std::fs::write(&key_file, format!("{}\n", w.key)).unwrap();
    let o = audit(&[
        "verify",
        "--allow-unkeyed",
        "--checkpoints",
        witness,
        "--public-key",
        Witnessed::path(&key_file),
        trail,
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains("2 hold"), "{}", stdout(&o));

    let o = audit(&["verify", "--help"]);
    for expected in ["--checkpoints", "--public-key", "--origin"] {
        assert!(stdout(&o).contains(expected), "{expected}");
    }
}

/// The field names of the `"checkpoints"` object documented on the compliance page (nested
/// objects' too), in order.
fn documented_checkpoint_fields() -> Vec<String> {
    let page = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../src/compliance.rs"));
    let docs: String = std::fs::read_to_string(page)
        .unwrap()
        .lines()
        .filter_map(|l| l.strip_prefix("//!"))
        .collect::<Vec<_>>()
        .join("\n");
    let start = docs
        .find("\"checkpoints\": {")
        .expect("the page documents the object")
        + 15;
    let mut depth = 0;
    let end = start
        + docs[start..]
            .char_indices()
            .find(|&(_, c)| {
                depth += i32::from(c == '{') - i32::from(c == '}');
                depth == 0
            })
            .unwrap()
            .0;
    docs[start..=end]
        .split('"')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

/// Every key of `value`, nested objects' and array items' too, in order.
fn keys(value: &serde_json::Value, out: &mut Vec<String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                out.push(k.clone());
                keys(v, out);
            }
        }
        serde_json::Value::Array(items) => {
            if let Some(first) = items.first() {
                keys(first, out);
            }
        }
        _ => {}
    }
}

/// `verify --json --checkpoints` prints the fields the compliance page documents, and no
/// other, on a report with a problem and an unreadable note.
#[test]
fn the_checkpoints_object_has_the_documented_fields() {
    let documented = documented_checkpoint_fields();
    assert!(documented.len() > 20, "{documented:?}");
    let w = Witnessed::new(6, 2, false);
    w.cut(5);
    let mut bytes = std::fs::read(&w.witness).unwrap();
    bytes.extend_from_slice(b"example.com/bot-1/audit\n7\n");
    std::fs::write(&w.witness, bytes).unwrap();
    let (code, report) = w.verify(false, &[]);
    assert_eq!(code, Some(1), "{report}");
    let c = &report["checkpoints"];
    assert!(!c["problems"].as_array().unwrap().is_empty());
    assert!(!c["unreadable"].as_array().unwrap().is_empty());
    let mut sent = Vec::new();
    keys(c, &mut sent);
    let (mut sent_sorted, mut documented_sorted) = (sent.clone(), documented.clone());
    sent_sorted.sort();
    documented_sorted.sort();
    assert_eq!(sent_sorted, documented_sorted, "sent {sent:?}");
    // Without --checkpoints, no such object: the one-file shape is unchanged.
    let o = audit(&[
        "verify",
        "--json",
        "--allow-unkeyed",
        Witnessed::path(&w.trail),
    ]);
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(report[0].get("checkpoints").is_none());
}
