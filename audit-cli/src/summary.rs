//! `summary FILE... [--json]`: one line per call of each trail; with several trails (one per
//! instance), one line per instance and a total across instances.

use std::collections::BTreeSet;
use std::path::PathBuf;

use recording_status::audit::{CallSummary, summary};

use crate::{HOLDS, UNREADABLE, print_json, read};

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
/// Returns the exit status: [`HOLDS`], or [`UNREADABLE`] when a file cannot be read (it is
/// named on stderr and the others are still summarised).
pub(crate) fn run(files: &[PathBuf], json: bool) -> u8 {
    let mut status = HOLDS;
    let mut instances = Vec::new();
    for file in files {
        match read(file) {
            Ok((trail, _)) => {
                let calls = summary(&trail.events);
                instances.push(InstanceSummary {
                    file: file.display().to_string(),
                    totals: totals(&calls),
                    calls,
                });
            }
            Err(e) => {
                eprintln!("{e}");
                status = UNREADABLE;
            }
        }
    }
    if let [_] = files {
        // One file: its calls alone, in the shape one file has always had.
        return match instances.pop() {
            Some(one) if json => print_json(&one.calls).map_or_else(|code| code, |()| HOLDS),
            Some(one) => {
                print_calls(&one.calls);
                HOLDS
            }
            None => status,
        };
    }
    let total = totals(instances.iter().flat_map(|i| &i.calls));
    if json {
        let across = Across { instances, total };
        return print_json(&across).map_or_else(|code| code, |()| status);
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
    status
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
