//! `recording-audit`: checks a recording bot's audit trail without running the bot.
//!
//! ```text
//! recording-audit verify FILE... [--json] [--key-file PATH]
//! recording-audit summary FILE [--json]
//! recording-audit timeline FILE --call ID --svg OUT.svg
//! ```
//!
//! `verify` exits 0 when the rule holds in every file, 1 on a violation (a broken chain
//! included), 2 when a file cannot be read or the arguments are wrong. The checks themselves
//! are the library's ([`recording_status::audit`]); this crate reads files, parses the command
//! line ([`cli`]) and prints.

use std::path::Path;
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
        } => verify::run(&files, json, key_file.as_deref()),
        Command::Summary { file, json } => summary::run(&file, json),
        Command::Timeline { file, call, svg } => timeline::run(&file, &call, &svg),
    };
    ExitCode::from(code)
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
