//! `recording-audit`: checks a recording bot's audit trails without running the bot.
//!
//! ```text
//! recording-audit verify FILE... [--json] [--key-file PATH]
//! recording-audit summary FILE... [--json]
//! recording-audit timeline FILE --call ID --svg OUT.svg
//! ```
//!
//! Several files are the trails of several instances of one bot: `verify` checks each on its
//! own and then all together (no call held by two instances at once), `summary` adds a line
//! per instance and a total. `verify` exits 0 when the rule holds, 1 on a violation (a broken
//! chain included), 2 when a file cannot be read or the arguments are wrong (a file given
//! twice included). The checks themselves are the library's ([`recording_status::audit`]);
//! this crate reads files, parses the command line ([`cli`]) and prints.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;
use recording_status::audit::{JsonLinesSink, Trail};

mod cli;
mod summary;
mod timeline;
mod verify;

use cli::{Cli, Command};

/// Exit status: the rule holds (or the command did its work).
const HOLDS: u8 = 0;
/// Exit status: a violation, a broken chain included.
const VIOLATED: u8 = 1;
/// Exit status: unreadable input. clap's usage errors exit with the same status.
const UNREADABLE: u8 = 2;

fn main() -> ExitCode {
    let code = match Cli::parse().command {
        Command::Verify {
            files,
            json,
            key_file,
        } => distinct(&files).unwrap_or_else(|| verify::run(&files, json, key_file.as_deref())),
        Command::Summary { files, json } => {
            distinct(&files).unwrap_or_else(|| summary::run(&files, json))
        }
        Command::Timeline { file, call, svg } => timeline::run(&file, &call, &svg),
    };
    ExitCode::from(code)
}

/// Refuses a file given twice (under any path): read as two instances, a trail would be
/// compared with itself and every call it holds flagged, and a summary would count it twice.
///
/// Returns the exit status ([`UNREADABLE`], the status of bad arguments) after naming the file
/// on stderr, or `None` when every file is distinct. A file that cannot be resolved is left to
/// the reading that follows, which names it.
fn distinct(files: &[PathBuf]) -> Option<u8> {
    let mut seen = std::collections::BTreeMap::new();
    for file in files {
        let Ok(canonical) = std::fs::canonicalize(file) else {
            continue;
        };
        if let Some(first) = seen.insert(canonical, file) {
            eprintln!(
                "{}: given twice (as {}): each trail is one instance's, counted once",
                file.display(),
                first.display()
            );
            return Some(UNREADABLE);
        }
    }
    None
}

/// Reads one trail: its events, and its bytes for the chain check.
///
/// # Errors
///
/// The message to print, naming the file.
fn read(path: &Path) -> Result<(Trail, Vec<u8>), String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let trail = JsonLinesSink::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok((trail, bytes))
}

/// Prints `value` as pretty JSON on stdout.
///
/// # Errors
///
/// The status to exit with when it cannot be serialised ([`UNREADABLE`], as before).
fn print_json(value: &impl serde::Serialize) -> Result<(), u8> {
    match serde_json::to_string_pretty(value) {
        Ok(json) => {
            println!("{json}");
            Ok(())
        }
        Err(e) => {
            eprintln!("{e}");
            Err(UNREADABLE)
        }
    }
}
