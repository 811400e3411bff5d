//! `recording-audit`: checks a recording bot's audit trails without running the bot.
//!
//! ```text
//! recording-audit verify FILE... [--json] [CHECKS]
//!     [--checkpoints FILE --public-key KEY [--origin NAME]]   (one trail only)
//! recording-audit summary FILE... [--json] [CHECKS]
//! recording-audit timeline FILE [--call ID] --svg OUT.svg [--force] [CHECKS]
//!     CHECKS: [--key-file PATH] [--allow-unchained] [--allow-unkeyed]
//! ```
//!
//! With `--checkpoints`, `verify` also checks one trail against the signed checkpoints of its
//! chain head that its witness collected ([`verify`]'s module docs). Several files are the
//! trails of several instances of one bot: `verify` checks each on its own and then all
//! together (no call held by two instances at once), `summary` adds a line
//! per instance and a total. Every subcommand runs the same checks on every trail ([`check`]):
//! the chain, refused when absent or unkeyed unless the auditor accepts it, and the rule.
//! `verify` prints what they find; `summary` and `timeline` print their report, then name a
//! broken trail on stderr. Each exits 0 when the rule holds, 1 on a violation (a broken,
//! absent or unkeyed chain included) in any file, whatever else could not be read, 2 when a
//! file cannot be read or the arguments are wrong (a file given twice included) and nothing
//! violates. The checks themselves are the library's ([`recording_status::audit`]); this
//! crate reads files, parses the command line ([`cli`]) and prints.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;
use recording_status::audit::{JsonLinesSink, Trail};

mod check;
mod cli;
mod summary;
mod timeline;
mod verify;

use cli::{Cli, Command};

/// Exit status: the rule holds (or the command did its work).
const HOLDS: u8 = 0;
/// Exit status: a violation, a broken chain included. It wins over [`UNREADABLE`]: with
/// several files, one that violates is reported as a violation whatever else cannot be read.
const VIOLATED: u8 = 1;
/// Exit status: unreadable input, and no violation in what could be read. clap's usage errors
/// exit with the same status.
const UNREADABLE: u8 = 2;

fn main() -> ExitCode {
    let code = match Cli::parse().command {
        Command::Verify {
            files,
            json,
            checks,
            witnessed,
        } => distinct(&files).unwrap_or_else(|| verify::run(&files, json, &checks, &witnessed)),
        Command::Summary {
            files,
            json,
            checks,
        } => distinct(&files).unwrap_or_else(|| summary::run(&files, json, &checks)),
        Command::Timeline {
            file,
            call,
            svg,
            force,
            checks,
        } => timeline::run(&file, call.as_deref(), &svg, force, &checks),
    };
    ExitCode::from(code)
}

/// What a run over several files found: the exit status, by precedence.
#[derive(Debug, Default, Clone, Copy)]
struct Outcome {
    violated: bool,
    unreadable: bool,
}

impl Outcome {
    /// [`VIOLATED`] if any file violates, whatever else could not be read; otherwise
    /// [`UNREADABLE`] if a file could not be read; otherwise [`HOLDS`].
    fn status(self) -> u8 {
        if self.violated {
            VIOLATED
        } else if self.unreadable {
            UNREADABLE
        } else {
            HOLDS
        }
    }
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
