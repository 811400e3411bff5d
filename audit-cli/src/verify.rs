//! `verify FILE... [--json] [CHECKS]`: the hash chain and the recording rule, per file; with
//! several files (one per instance of the bot), no call held by two instances at once.

use std::path::{Path, PathBuf};

use recording_status::audit::{
    Hold, InstanceTrail, Overlap, Trail, Verified, Violation, verify_instances,
};

use crate::check::{Policy, Problem, line, violation};
use crate::cli::Checks;
use crate::{Outcome, print_json, read};

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
/// breaks the rule or its chain (or the policy refuses its chain) or a call was held by two
/// instances at once, whatever else could not be read; otherwise
/// [`UNREADABLE`](crate::UNREADABLE) if the key or a file could not be read; otherwise
/// [`HOLDS`](crate::HOLDS). A file that cannot be read is named on stderr and the others are
/// still checked, together among themselves.
pub(crate) fn run(files: &[PathBuf], json: bool, checks: &Checks) -> u8 {
    let policy = match Policy::new(checks) {
        Ok(p) => p,
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
        let mut report = check(file, trail, bytes, &policy, verdict);
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
/// its events as [`verify`](recording_status::audit::verify) found it (`verdict`). The chain's
/// problem, if any, is the file's violation; otherwise the rule's.
fn check(
    file: &Path,
    trail: &Trail,
    bytes: &[u8],
    policy: &Policy,
    verdict: &Result<Verified, Violation>,
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
    };
    let (chain, problem) = policy.chain(bytes);
    report.chain = chain;
    if let Some(problem) = problem {
        report.holds = false;
        report.violation = Some(problem);
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
}
