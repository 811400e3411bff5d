//! `recording-audit`: checks a recording bot's audit trail without running the bot.
//!
//! ```text
//! recording-audit verify FILE... [--json] [--key-file PATH]
//! recording-audit summary FILE [--json]
//! recording-audit timeline FILE --call ID --svg OUT.svg
//! ```
//!
//! `verify` exits 0 when the rule holds in every file, 1 on a violation (a broken chain
//! included), 2 when a file cannot be read or the arguments are wrong.

use std::path::PathBuf;
use std::process::ExitCode;

use recording_status::audit::{
    JsonLinesSink, Trail, Verified, Violation, check_chain, summary, timeline, verify,
};

const USAGE: &str = "usage:
  recording-audit verify FILE... [--json] [--key-file PATH]
  recording-audit summary FILE [--json]
  recording-audit timeline FILE --call ID --svg OUT.svg

verify exits 0 when the rule holds, 1 on a violation, 2 on unreadable input.";

/// Exit codes.
const HOLDS: u8 = 0;
const VIOLATED: u8 = 1;
const UNREADABLE: u8 = 2;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let code = match args.first().map(String::as_str) {
        Some("verify") => verify_files(&args[1..]),
        Some("summary") => summarize(&args[1..]),
        Some("timeline") => draw(&args[1..]),
        Some("-h" | "--help" | "help") => {
            println!("{USAGE}");
            HOLDS
        }
        _ => {
            eprintln!("{USAGE}");
            UNREADABLE
        }
    };
    ExitCode::from(code)
}

/// Splits `--flag value` options from positional arguments.
struct Args {
    positional: Vec<String>,
    json: bool,
    key_file: Option<PathBuf>,
    call: Option<String>,
    svg: Option<PathBuf>,
}

fn parse(args: &[String]) -> Result<Args, String> {
    let mut out = Args {
        positional: Vec::new(),
        json: false,
        key_file: None,
        call: None,
        svg: None,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match a.as_str() {
            "--json" => out.json = true,
            "--key-file" => out.key_file = Some(value("--key-file")?.into()),
            "--call" => out.call = Some(value("--call")?),
            "--svg" => out.svg = Some(value("--svg")?.into()),
            flag if flag.starts_with("--") => return Err(format!("unknown option {flag}")),
            _ => out.positional.push(a.clone()),
        }
    }
    Ok(out)
}

fn read(path: &str) -> Result<(Trail, Vec<u8>), String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{path}: {e}"))?;
    let trail = JsonLinesSink::read(path).map_err(|e| format!("{path}: {e}"))?;
    Ok((trail, bytes))
}

/// What `verify` found in one file.
#[derive(serde::Serialize)]
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

#[derive(serde::Serialize)]
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

fn verify_files(args: &[String]) -> u8 {
    let args = match parse(args) {
        Ok(a) if !a.positional.is_empty() => a,
        Ok(_) => {
            eprintln!("verify needs at least one FILE\n{USAGE}");
            return UNREADABLE;
        }
        Err(e) => {
            eprintln!("{e}\n{USAGE}");
            return UNREADABLE;
        }
    };
    let key = match &args.key_file {
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
    for file in &args.positional {
        let (trail, bytes) = match read(file) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("{e}");
                worst = UNREADABLE;
                continue;
            }
        };
        let mut report = FileReport {
            file: file.clone(),
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
        match check_chain(&bytes, key.as_deref()) {
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
                    report.violation = Some(violation_report(&trail, &v));
                }
            }
        }
        if !report.holds && worst == HOLDS {
            worst = VIOLATED;
        }
        reports.push(report);
    }
    if args.json {
        match serde_json::to_string_pretty(&reports) {
            Ok(json) => println!("{json}"),
            Err(e) => {
                eprintln!("{e}");
                return UNREADABLE;
            }
        }
    } else {
        for r in &reports {
            print_report(r);
        }
    }
    worst
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

fn summarize(args: &[String]) -> u8 {
    let args = match parse(args) {
        Ok(a) if a.positional.len() == 1 => a,
        Ok(_) | Err(_) => {
            eprintln!("summary needs exactly one FILE\n{USAGE}");
            return UNREADABLE;
        }
    };
    let (trail, _) = match read(&args.positional[0]) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("{e}");
            return UNREADABLE;
        }
    };
    let calls = summary(&trail.events);
    if args.json {
        match serde_json::to_string_pretty(&calls) {
            Ok(json) => println!("{json}"),
            Err(e) => {
                eprintln!("{e}");
                return UNREADABLE;
            }
        }
        return HOLDS;
    }
    println!(
        "{:<34} {:>8} {:>12} {:>12}  final state",
        "call", "episodes", "recording ms", "capabilities"
    );
    for c in calls {
        println!(
            "{:<34} {:>8} {:>12} {:>12}  {}",
            c.call_id,
            c.episodes,
            c.recording_ms,
            c.capabilities,
            c.final_state
                .map_or_else(|| "-".to_owned(), |s| s.to_string())
        );
    }
    HOLDS
}

fn draw(args: &[String]) -> u8 {
    let args = match parse(args) {
        Ok(a) if a.positional.len() == 1 && a.call.is_some() && a.svg.is_some() => a,
        Ok(_) | Err(_) => {
            eprintln!("timeline needs FILE, --call ID and --svg OUT.svg\n{USAGE}");
            return UNREADABLE;
        }
    };
    let (trail, _) = match read(&args.positional[0]) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("{e}");
            return UNREADABLE;
        }
    };
    let (Some(call), Some(out)) = (&args.call, &args.svg) else {
        return UNREADABLE;
    };
    let Some(svg) = timeline(&trail.events, call) else {
        eprintln!("{}: no event for call {call}", args.positional[0]);
        return UNREADABLE;
    };
    if let Err(e) = std::fs::write(out, svg) {
        eprintln!("{}: {e}", out.display());
        return UNREADABLE;
    }
    println!("{}", out.display());
    HOLDS
}
