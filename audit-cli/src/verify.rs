//! `verify FILE... [--json] [--key-file PATH]`: the hash chain and the recording rule, per
//! file.

use std::path::{Path, PathBuf};

use recording_status::audit::{Trail, Verified, Violation, check_chain, verify};

use crate::{HOLDS, UNREADABLE, VIOLATED, print_json, read};

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
    violation: Option<ViolationReport>,
    open: Vec<String>,
    unauthenticated: Vec<String>,
}

/// The first violation in a file: the rule the verifier found broken, or the chain.
#[derive(Debug, serde::Serialize)]
struct ViolationReport {
    line: usize,
    call_id: String,
    rule: String,
    words: String,
}

fn violation_report(trail: &Trail, v: &Violation) -> ViolationReport {
    ViolationReport {
        line: trail.lines.get(v.index).copied().unwrap_or(v.index + 1),
        call_id: v.call_id.clone(),
        rule: v.rule.code().to_owned(),
        words: v.rule.words().to_owned(),
    }
}

/// Checks every file in `files`, then prints the reports (text, or JSON with `json`).
///
/// Returns the exit status: [`UNREADABLE`] if the key or any file could not be read,
/// otherwise [`VIOLATED`] if any file breaks the rule or its chain, otherwise [`HOLDS`].
/// A file that cannot be read is named on stderr and the others are still checked.
pub(crate) fn run(files: &[PathBuf], json: bool, key_file: Option<&Path>) -> u8 {
    let key = match key_file {
        Some(path) => match std::fs::read(path) {
            Ok(k) => Some(k),
            Err(e) => {
                eprintln!("{}: {e}", path.display());
                return UNREADABLE;
            }
        },
        None => None,
    };
    let mut worst = HOLDS;
    let mut reports = Vec::new();
    for file in files {
        let (trail, bytes) = match read(file) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("{e}");
                worst = UNREADABLE;
                continue;
            }
        };
        let report = check(file, &trail, &bytes, key.as_deref());
        if !report.holds && worst == HOLDS {
            worst = VIOLATED;
        }
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
    }
    worst
}

/// Checks one trail read from `file`: its chain over `bytes`, then the rule over its events.
fn check(file: &Path, trail: &Trail, bytes: &[u8], key: Option<&[u8]>) -> FileReport {
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
        unauthenticated: Vec::new(),
    };
    match check_chain(bytes, key) {
        Ok(summary) if summary.chained => {
            report.chain = format!(
                "holds over {} lines{}",
                summary.lines - summary.unchained,
                if summary.keyed { " (keyed)" } else { "" }
            );
        }
        Ok(_) => report.chain = "absent (trail written without a chain)".to_owned(),
        Err(b) => {
            report.holds = false;
            report.chain = format!("broken at line {}: {}", b.line, b.kind);
            report.violation = Some(ViolationReport {
                line: b.line,
                call_id: String::new(),
                rule: "G9/chain".to_owned(),
                words: b.kind.to_string(),
            });
        }
    }
    match verify(&trail.events) {
        Ok(Verified {
            calls,
            retentions,
            open,
            unauthenticated,
            ..
        }) => {
            report.calls = calls;
            report.retentions = retentions;
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
            report.unauthenticated = unauthenticated
                .iter()
                .map(|u| {
                    let line = trail.lines.get(u.index).copied().unwrap_or(u.index + 1);
                    format!(
                        "{} entered recording at line {line} via {}",
                        u.call_id, u.via
                    )
                })
                .collect();
        }
        Err(v) => {
            report.holds = false;
            if report.violation.is_none() {
                report.violation = Some(violation_report(trail, &v));
            }
        }
    }
    report
}

fn print_report(r: &FileReport) {
    match &r.violation {
        Some(v) => println!(
            "{}:{}: VIOLATION {} (call {}): {}",
            r.file,
            v.line,
            v.rule,
            if v.call_id.is_empty() {
                "-"
            } else {
                &v.call_id
            },
            v.words
        ),
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
    for u in &r.unauthenticated {
        println!("  not authenticated by this crate: {u}");
    }
}
