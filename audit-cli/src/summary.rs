//! `summary FILE... [--json] [CHECKS]`: one line per call of each trail; with several trails
//! (one per instance), one line per instance and a total across instances. Then, on stderr,
//! every trail that does not hold, as `verify` would find it.

use std::collections::BTreeSet;
use std::path::PathBuf;

use recording_status::audit::{CallSummary, InstanceTrail, summary, verify_instances};

use crate::check::{Policy, Problem, violation, warn};
use crate::cli::Checks;
use crate::{Outcome, print_json, read};

/// One instance's trail, summarised (an element of `instances` in the JSON for several files).
#[derive(Debug, serde::Serialize)]
struct InstanceSummary {
    file: String,
    calls: Vec<CallSummary>,
    totals: Totals,
}

/// Sums over calls: of one instance, or of every instance.
#[derive(Debug, Default, serde::Serialize)]
struct Totals {
    /// Distinct calls: a call that several instances held counts once in the total.
    calls: usize,
    episodes: usize,
    recording_ms: i64,
    capabilities: usize,
}

/// The JSON for several files.
#[derive(Debug, serde::Serialize)]
struct Across {
    instances: Vec<InstanceSummary>,
    total: Totals,
}

fn totals<'a>(calls: impl IntoIterator<Item = &'a CallSummary>) -> Totals {
    let mut distinct = BTreeSet::new();
    let mut t = Totals::default();
    for c in calls {
        distinct.insert(c.call_id.as_str());
        t.episodes += c.episodes;
        t.recording_ms += c.recording_ms;
        t.capabilities += c.capabilities;
    }
    t.calls = distinct.len();
    t
}

/// Prints the per-call summary of the trails in `files`, as tables or as JSON: for one file,
/// its calls (a table, or a JSON array of calls, as always); for several, each file's calls,
/// then a line per instance and a total (a JSON object `{"instances": [{"file", "calls",
/// "totals"}], "total"}`).
///
/// Every trail is checked as `verify` checks it (the chain under the policy, the rule, and
/// with several files no call held by two instances at once); the summary is printed all the
/// same, then each trail that does not hold is named on stderr with its first violation.
///
/// Returns the exit status ([`Outcome::status`]): [`VIOLATED`](crate::VIOLATED) when a trail
/// does not hold, whatever else could not be read; otherwise [`UNREADABLE`](crate::UNREADABLE)
/// when the key or a file cannot be read (it is named on stderr and the others are still
/// summarised); otherwise [`HOLDS`](crate::HOLDS).
pub(crate) fn run(files: &[PathBuf], json: bool, checks: &Checks) -> u8 {
    let policy = match Policy::new(checks) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let mut outcome = Outcome::default();
    let mut read_ok = Vec::new();
    for file in files {
        match read(file) {
            Ok(read) => read_ok.push((file, read)),
            Err(e) => {
                eprintln!("{e}");
                outcome.unreadable = true;
            }
        }
    }
    let names: Vec<String> = read_ok
        .iter()
        .map(|(f, _)| f.display().to_string())
        .collect();
    let trails: Vec<InstanceTrail<'_>> = read_ok
        .iter()
        .zip(&names)
        .map(|((_, (trail, _)), name)| InstanceTrail::new(name, &trail.events))
        .collect();
    let together = verify_instances(&trails);
    let mut problems: Vec<(&PathBuf, Problem)> = Vec::new();
    for ((file, (trail, bytes)), verdict) in read_ok.iter().zip(&together.trails) {
        let (_, chain) = policy.chain(bytes);
        let problem = chain.or_else(|| verdict.as_ref().err().map(|v| violation(trail, v)));
        if let Some(problem) = problem {
            problems.push((file, problem));
        }
    }
    outcome.violated = !problems.is_empty() || !together.overlaps.is_empty();
    let instances: Vec<InstanceSummary> = read_ok
        .iter()
        .map(|(file, (trail, _))| {
            let calls = summary(&trail.events);
            InstanceSummary {
                file: file.display().to_string(),
                totals: totals(&calls),
                calls,
            }
        })
        .collect();
    let printed = print(files.len(), instances, json);
    for (file, problem) in &problems {
        warn(file, problem);
    }
    for o in &together.overlaps {
        eprintln!(
            "{} and {}: VIOLATION {} (call {}): {}",
            o.first.name,
            o.second.name,
            o.rule().code(),
            o.call_id,
            o.rule().words()
        );
    }
    match printed {
        Err(code) if !outcome.violated => code,
        _ => outcome.status(),
    }
}

/// Prints the summaries of the trails read (out of `files`).
///
/// # Errors
///
/// The status to exit with when the JSON cannot be serialised.
fn print(files: usize, mut instances: Vec<InstanceSummary>, json: bool) -> Result<(), u8> {
    if files == 1 {
        // One file: its calls alone, in the shape one file has always had.
        return match instances.pop() {
            Some(one) if json => print_json(&one.calls),
            Some(one) => {
                print_calls(&one.calls);
                Ok(())
            }
            None => Ok(()),
        };
    }
    let total = totals(instances.iter().flat_map(|i| &i.calls));
    if json {
        let across = Across { instances, total };
        return print_json(&across);
    }
    for i in &instances {
        println!("instance {}", i.file);
        print_calls(&i.calls);
        println!();
    }
    println!(
        "{:<34} {:>8} {:>8} {:>12} {:>12}",
        "instance", "calls", "episodes", "recording ms", "capabilities"
    );
    for i in &instances {
        print_totals(&i.file, &i.totals);
    }
    print_totals(&format!("total ({} instances)", instances.len()), &total);
    Ok(())
}

fn print_calls(calls: &[CallSummary]) {
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
            match (c.final_state, c.ended_by_graph, c.recovered) {
                (_, true, _) => "Ended (by Graph)".to_owned(),
                (_, false, true) => "Ended (recovered after a crash)".to_owned(),
                (Some(state), false, false) => state.to_string(),
                (None, false, false) => "-".to_owned(),
            }
        );
    }
}

fn print_totals(label: &str, t: &Totals) {
    println!(
        "{label:<34} {:>8} {:>8} {:>12} {:>12}",
        t.calls, t.episodes, t.recording_ms, t.capabilities
    );
}
