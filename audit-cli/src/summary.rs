//! `summary FILE [--json]`: one line per call of a trail.

use std::path::Path;

use recording_status::audit::summary;

use crate::{HOLDS, UNREADABLE, print_json, read};

/// Prints the per-call summary of the trail at `file`, as a table or as JSON.
///
/// Returns the exit status: [`HOLDS`], or [`UNREADABLE`] when the file cannot be read.
pub(crate) fn run(file: &Path, json: bool) -> u8 {
    let (trail, _) = match read(file) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("{e}");
            return UNREADABLE;
        }
    };
    let calls = summary(&trail.events);
    if json {
        return match print_json(&calls) {
            Ok(()) => HOLDS,
            Err(code) => code,
        };
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
            match (c.final_state, c.ended_by_graph) {
                (_, true) => "Ended (by Graph)".to_owned(),
                (Some(state), false) => state.to_string(),
                (None, false) => "-".to_owned(),
            }
        );
    }
    HOLDS
}
