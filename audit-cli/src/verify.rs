//! `verify FILE... [--json] [CHECKS] [--checkpoints FILE --public-key KEY [--origin NAME]]`:
//! the hash chain and the recording rule, per file; with several files (one per instance of
//! the bot), no call held by two instances at once; with `--checkpoints`, one trail against
//! the signed checkpoints of its chain head that its witness collected
//! ([`check_checkpoints`]).
//!
//! `--checkpoints` takes one trail only (a usage error, exit 2, otherwise): a witness file
//! holds one trail's checkpoints. A checkpoint the trail contradicts (cut before it,
//! rewritten after it), or that proves nothing (not signed by the key, another trail's), is a
//! violation (exit 1); the first is the file's violation unless its chain already broke, and
//! every one is listed. Notes of the witness file that cannot be read (a torn last one
//! included) are listed and change nothing: they witness nothing, and what they would have
//! covered is in the unwitnessed tail.

use std::path::{Path, PathBuf};

use recording_status::audit::{
    CheckpointFile, CheckpointReport, Hold, InstanceTrail, Overlap, SignedCheckpoint, Trail,
    Verified, VerifierKey, Violation, check_checkpoints, verify_instances,
};

use crate::check::{Policy, Problem, line, violation};
use crate::cli::{Checks, Witnessed};
use crate::{Outcome, UNREADABLE, print_json, read};

/// What `verify` found in one file (one element of `--json`'s array).
#[derive(Debug, serde::Serialize)]
struct FileReport {
    file: String,
    holds: bool,
    events: usize,
    calls: usize,
    retentions: usize,
    chain: String,
    torn_tail: Option<(u64, u64)>,
    violation: Option<Problem>,
    open: Vec<String>,
    /// Calls a crashed run left open that a later run closed (and whether it reported them).
    recovered: Vec<String>,
    unauthenticated: Vec<String>,
    /// With several files only (absent for one, so that its report is unchanged): every call
    /// this file's instance held while another instance held it too.
    #[serde(skip_serializing_if = "Option::is_none")]
    overlaps: Option<Vec<OverlapReport>>,
    /// With --checkpoints only (absent otherwise, so that the report is unchanged).
    #[serde(skip_serializing_if = "Option::is_none")]
    checkpoints: Option<CheckpointsReport>,
}

/// What the trail's checkpoints show: the witnessed prefix, the unwitnessed tail, and every
/// checkpoint the trail contradicts or that proves nothing.
#[derive(Debug, serde::Serialize)]
struct CheckpointsReport {
    file: String,
    key: String,
    origin: Option<String>,
    /// Notes read (those that parse).
    read: usize,
    holding: usize,
    witnessed_seq: u64,
    witnessed_line: Option<usize>,
    /// The checkpoint that witnessed it, counted from 1 in the file.
    witnessed_by: Option<usize>,
    witnessed_at: Option<String>,
    trail_seq: u64,
    unwitnessed: usize,
    unwitnessed_from_line: Option<usize>,
    problems: Vec<CheckpointProblemReport>,
    unreadable: Vec<UnreadableReport>,
}

/// A checkpoint the trail contradicts, or that proves nothing.
#[derive(Debug, serde::Serialize)]
struct CheckpointProblemReport {
    /// Counted from 1 among the notes read.
    checkpoint: usize,
    /// Where its note starts in the witness file.
    note_line: usize,
    seq: u64,
    at: String,
    rule: String,
    /// The trail's line where the trail contradicts it (none for unverified or foreign).
    line: Option<usize>,
    words: String,
}

/// A note of the witness file that could not be read.
#[derive(Debug, serde::Serialize)]
struct UnreadableReport {
    line: usize,
    torn: bool,
    reason: String,
}

/// The checkpoints to check the one trail against, read once.
#[derive(Debug)]
struct Checkpoints {
    file: PathBuf,
    key: VerifierKey,
    origin: Option<String>,
    read: CheckpointFile,
}

impl Checkpoints {
    /// Reads the key and the witness file, if --checkpoints was given.
    ///
    /// # Errors
    ///
    /// [`UNREADABLE`] after saying why on stderr: several trails, a key that is neither a
    /// verifier key nor a file holding one, or a witness file that cannot be read.
    fn load(witnessed: &Witnessed, files: &[PathBuf]) -> Result<Option<Self>, u8> {
        let (Some(file), Some(key)) = (&witnessed.checkpoints, &witnessed.public_key) else {
            return Ok(None);
        };
        if files.len() != 1 {
            eprintln!(
                "--checkpoints checks one trail (a witness file holds one trail's \
                 checkpoints): give one FILE, not {}",
                files.len()
            );
            return Err(UNREADABLE);
        }
        let key = match key.parse::<VerifierKey>() {
            Ok(key) => key,
            Err(as_text) => {
                let text = std::fs::read_to_string(key).map_err(|e| {
                    eprintln!("--public-key {key}: not a verifier key ({as_text}), nor a file holding one ({e})");
                    UNREADABLE
                })?;
                text.parse().map_err(|e| {
                    eprintln!("--public-key {key}: {e}");
                    UNREADABLE
                })?
            }
        };
        let read = CheckpointFile::read(file).map_err(|e| {
            eprintln!("{}: {e}", file.display());
            UNREADABLE
        })?;
        Ok(Some(Self {
            file: file.clone(),
            key,
            origin: witnessed.origin.clone(),
            read,
        }))
    }

    /// Checks `trail` against the checkpoints: the report, and the first problem as the
    /// file's violation.
    fn check(&self, trail: &Trail) -> (CheckpointsReport, Option<Problem>) {
        let notes: Vec<SignedCheckpoint> = self
            .read
            .notes
            .iter()
            .map(|n| n.checkpoint.clone())
            .collect();
        let found: CheckpointReport =
            check_checkpoints(trail, &notes, &self.key, self.origin.as_deref());
        let file = self.file.display().to_string();
        let problems: Vec<CheckpointProblemReport> = found
            .problems
            .iter()
            .map(|p| CheckpointProblemReport {
                checkpoint: p.checkpoint + 1,
                note_line: self.read.notes[p.checkpoint].line,
                seq: p.seq,
                at: p.at.to_rfc3339(),
                rule: p.rule.code().to_owned(),
                line: p.index.map(|i| line(trail, i)),
                words: format!(
                    "{p} ({file}, note at line {})",
                    self.read.notes[p.checkpoint].line
                ),
            })
            .collect();
        let first = problems.first().map(|p| Problem {
            line: p.line.unwrap_or(1),
            call_id: String::new(),
            rule: p.rule.clone(),
            words: p.words.clone(),
        });
        let report = CheckpointsReport {
            file,
            key: format!("{}+{:08x}", self.key.name(), self.key.id()),
            origin: found.origin.clone(),
            read: notes.len(),
            holding: found.holding,
            witnessed_seq: found.witnessed_seq,
            witnessed_line: found.witnessed_index.map(|i| line(trail, i)),
            witnessed_by: found.witnessed_by.map(|i| i + 1),
            witnessed_at: found.witnessed_at.map(|t| t.to_rfc3339()),
            trail_seq: found.trail_seq,
            unwitnessed: found.unwitnessed,
            unwitnessed_from_line: found.unwitnessed_from.map(|i| line(trail, i)),
            problems,
            unreadable: self
                .read
                .unreadable
                .iter()
                .map(|u| UnreadableReport {
                    line: u.line,
                    torn: u.torn,
                    reason: u.reason.clone(),
                })
                .collect(),
        };
        (report, first)
    }
}

/// A call held by two instances at once, as both files' reports show it.
#[derive(Debug, Clone, serde::Serialize)]
struct OverlapReport {
    call_id: String,
    rule: String,
    words: String,
    /// The two holds, the one that began first first.
    holds: [HoldReport; 2],
}

/// One instance's hold on a call, with lines instead of event positions.
#[derive(Debug, Clone, serde::Serialize)]
struct HoldReport {
    file: String,
    from: String,
    from_line: usize,
    until: String,
    until_line: usize,
    /// The trail ends with the call still held: `until` is its last event.
    open: bool,
}

/// `hold`, found by `verify_instances` over `inputs` (so `hold.instance` indexes it).
fn hold_report(inputs: &[(&PathBuf, Trail, Vec<u8>)], hold: &Hold) -> HoldReport {
    let trail = &inputs[hold.instance].1;
    HoldReport {
        file: hold.name.clone(),
        from: hold.from.to_rfc3339(),
        from_line: line(trail, hold.from_index),
        until: hold.until.to_rfc3339(),
        until_line: line(trail, hold.until_index),
        open: hold.open,
    }
}

fn overlap_report(inputs: &[(&PathBuf, Trail, Vec<u8>)], o: &Overlap) -> OverlapReport {
    OverlapReport {
        call_id: o.call_id.clone(),
        rule: o.rule().code().to_owned(),
        words: o.rule().words().to_owned(),
        holds: [
            hold_report(inputs, &o.first),
            hold_report(inputs, &o.second),
        ],
    }
}

/// Checks every file in `files`, each on its own and, with several, all together; then prints
/// the reports (text, or JSON with `json`).
///
/// Returns the exit status ([`Outcome::status`]): [`VIOLATED`](crate::VIOLATED) if any file
/// breaks the rule or its chain (or the policy refuses its chain, or its checkpoints are
/// contradicted or prove nothing) or a call was held by two instances at once, whatever else
/// could not be read; otherwise [`UNREADABLE`] if the key or a file could not be read (or
/// --checkpoints was given with several files, or its file or key could not be read); otherwise
/// [`HOLDS`](crate::HOLDS). A file that cannot be read is named on stderr and the others are
/// still checked, together among themselves.
pub(crate) fn run(files: &[PathBuf], json: bool, checks: &Checks, witnessed: &Witnessed) -> u8 {
    let policy = match Policy::new(checks) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let checkpoints = match Checkpoints::load(witnessed, files) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let mut outcome = Outcome::default();
    let mut read_ok = Vec::new();
    for file in files {
        match read(file) {
            Ok((trail, bytes)) => read_ok.push((file, trail, bytes)),
            Err(e) => {
                eprintln!("{e}");
                outcome.unreadable = true;
            }
        }
    }
    let names: Vec<String> = read_ok
        .iter()
        .map(|(f, ..)| f.display().to_string())
        .collect();
    let trails: Vec<InstanceTrail<'_>> = read_ok
        .iter()
        .zip(&names)
        .map(|((_, trail, _), name)| InstanceTrail::new(name, &trail.events))
        .collect();
    let together = verify_instances(&trails);
    let several = files.len() > 1;
    let overlaps: Vec<OverlapReport> = together
        .overlaps
        .iter()
        .map(|o| overlap_report(&read_ok, o))
        .collect();
    let mut reports = Vec::new();
    for (instance, ((file, trail, bytes), verdict)) in
        read_ok.iter().zip(&together.trails).enumerate()
    {
        let witnessed = checkpoints.as_ref().map(|c| c.check(trail));
        let mut report = check(file, trail, bytes, &policy, verdict, witnessed);
        if several {
            let mine: Vec<OverlapReport> = together
                .overlaps
                .iter()
                .zip(&overlaps)
                .filter(|(o, _)| o.first.instance == instance || o.second.instance == instance)
                .map(|(_, r)| r.clone())
                .collect();
            report.holds &= mine.is_empty();
            report.overlaps = Some(mine);
        }
        outcome.violated |= !report.holds;
        reports.push(report);
    }
    if json {
        if let Err(code) = print_json(&reports) {
            return code;
        }
    } else {
        for r in &reports {
            print_report(r);
        }
        if several {
            print_overlaps(reports.len(), &overlaps);
        }
    }
    outcome.status()
}

/// Checks one trail read from `file`: its chain over `bytes` under `policy`, and the rule over
/// its events as [`verify`](recording_status::audit::verify) found it (`verdict`), with what
/// its checkpoints showed (`witnessed`), if they were given. The chain's problem, if any, is
/// the file's violation; otherwise the checkpoints' first; otherwise the rule's.
fn check(
    file: &Path,
    trail: &Trail,
    bytes: &[u8],
    policy: &Policy,
    verdict: &Result<Verified, Violation>,
    witnessed: Option<(CheckpointsReport, Option<Problem>)>,
) -> FileReport {
    let mut report = FileReport {
        file: file.display().to_string(),
        holds: true,
        events: trail.events.len(),
        calls: 0,
        retentions: 0,
        chain: String::new(),
        torn_tail: trail.torn_tail.map(|t| (t.offset, t.bytes)),
        violation: None,
        open: Vec::new(),
        recovered: Vec::new(),
        unauthenticated: Vec::new(),
        overlaps: None,
        checkpoints: None,
    };
    let (chain, problem) = policy.chain(bytes);
    report.chain = chain;
    if let Some(problem) = problem {
        report.holds = false;
        report.violation = Some(problem);
    }
    if let Some((checkpoints, problem)) = witnessed {
        report.checkpoints = Some(checkpoints);
        if let Some(problem) = problem {
            report.holds = false;
            report.violation.get_or_insert(problem);
        }
    }
    match verdict {
        Ok(Verified {
            calls,
            retentions,
            open,
            recovered,
            unauthenticated,
            ..
        }) => {
            report.calls = *calls;
            report.retentions = *retentions;
            report.open = open
                .iter()
                .map(|o| {
                    format!(
                        "{} left {} with {} live capabilities",
                        o.call_id,
                        o.state,
                        o.live.len()
                    )
                })
                .collect();
            report.recovered = recovered
                .iter()
                .map(|r| {
                    format!(
                        "{} left {} by a crash, recovered at line {}, {}",
                        r.call_id,
                        r.state,
                        line(trail, r.index),
                        if r.reported {
                            "then reported"
                        } else {
                            "NOT reported"
                        }
                    )
                })
                .collect();
            report.unauthenticated = unauthenticated
                .iter()
                .map(|u| {
                    format!(
                        "{} entered recording at line {} via {}",
                        u.call_id,
                        line(trail, u.index),
                        u.via
                    )
                })
                .collect();
        }
        Err(v) => {
            report.holds = false;
            if report.violation.is_none() {
                report.violation = Some(violation(trail, v));
            }
        }
    }
    report
}

/// The check across instances, after the per-file reports: each overlap located at the line
/// where the second instance began to hold the call, then both holds.
fn print_overlaps(instances: usize, overlaps: &[OverlapReport]) {
    if overlaps.is_empty() {
        println!("across {instances} instances: no call held by two at once");
        return;
    }
    println!(
        "across {instances} instances: {} overlaps (a call held by two at once)",
        overlaps.len()
    );
    for o in overlaps {
        let [first, second] = &o.holds;
        println!(
            "{}:{}: VIOLATION {} (call {}): {}",
            second.file, second.from_line, o.rule, o.call_id, o.words
        );
        for h in [first, second] {
            println!(
                "  held by {} from {} (line {}) {} {} (line {})",
                h.file,
                h.from,
                h.from_line,
                if h.open {
                    "to its trail's end, still held, at"
                } else {
                    "until"
                },
                h.until,
                h.until_line
            );
        }
    }
}

fn print_report(r: &FileReport) {
    match &r.violation {
        Some(v) => println!("{}", v.line_for(&r.file)),
        None => println!(
            "{}: the rule holds: {} events, {} calls, {} retention capabilities",
            r.file, r.events, r.calls, r.retentions
        ),
    }
    println!("  chain: {}", r.chain);
    if let Some((offset, bytes)) = r.torn_tail {
        println!("  torn tail: {bytes} bytes at offset {offset} (not events; ignored)");
    }
    if !r.open.is_empty() {
        println!("  the trail ends with calls still open (cut, or still running):");
        for o in &r.open {
            println!("    {o}");
        }
    }
    for c in &r.recovered {
        println!("  recovered: {c}");
    }
    for u in &r.unauthenticated {
        println!("  not authenticated by this crate: {u}");
    }
    if let Some(c) = &r.checkpoints {
        print_checkpoints(c);
    }
}

fn print_checkpoints(c: &CheckpointsReport) {
    println!(
        "  checkpoints: {} read from {} (key {}, origin {}): {} hold, {} contradicted or \
         proving nothing",
        c.read,
        c.file,
        c.key,
        c.origin
            .as_deref()
            .map_or("-".to_owned(), |o| format!("{o:?}")),
        c.holding,
        c.problems.len()
    );
    match (c.witnessed_by, &c.witnessed_at) {
        (Some(by), Some(at)) => println!(
            "  witnessed: up to seq {} (line {}), by checkpoint #{by} signed {at}",
            c.witnessed_seq,
            c.witnessed_line.map_or("-".to_owned(), |l| l.to_string()),
        ),
        _ => println!("  witnessed: nothing (no checkpoint holds)"),
    }
    match c.unwitnessed_from_line {
        Some(from) => println!(
            "  unwitnessed tail: {} lines from line {from} (seq {} to {}): they can still be \
             cut or rewritten unseen",
            c.unwitnessed,
            c.witnessed_seq + 1,
            c.trail_seq
        ),
        None => println!("  unwitnessed tail: none"),
    }
    for p in &c.problems {
        println!(
            "  checkpoint #{}: VIOLATION {}: {}",
            p.checkpoint, p.rule, p.words
        );
    }
    for u in &c.unreadable {
        println!(
            "  unreadable note at line {} of {}{}: {} (it witnesses nothing)",
            u.line,
            c.file,
            if u.torn { " (torn)" } else { "" },
            u.reason
        );
    }
}
