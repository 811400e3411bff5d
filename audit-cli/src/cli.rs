//! The command line, as clap types: three subcommands and their arguments.
//!
//! The doc comments here are the tool's `--help`. A usage error (an unknown subcommand or
//! option, a missing argument) is clap's, printed on stderr with exit status 2, the status of
//! bad arguments in the tool's contract; `--help` and `--version` print on stdout and exit 0.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Checks a recording bot's audit trails without running the bot: one trail, or one per
/// instance of the bot.
///
/// Trails are the JSON lines that `recording_status::audit::JsonLinesSink` writes, chained or
/// not.
#[derive(Debug, Parser)]
#[command(
    name = "recording-audit",
    version,
    propagate_version = true,
    subcommand_required = true,
    arg_required_else_help = true,
    after_help = "Every subcommand checks every trail first: its hash chain (refusing a trail \
                  without a chain or without a key unless told to accept it) and the recording \
                  rule. Exit status: 0 the rule holds, 1 a violation (a broken, absent or \
                  unkeyed chain, and a trail its checkpoints contradict, included) in any \
                  file, whatever else could not be read, 2 unreadable input or bad arguments \
                  and no violation."
)]
pub(crate) struct Cli {
    /// What to do with the trails.
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Checks each trail's hash chain and replays the recording rule on it; with several
    /// trails (one per instance of the bot), also checks that no call was held by two instances
    /// at once.
    ///
    /// Prints, per file, that the rule holds (with counts, the calls a cut trail leaves open
    /// and the recordings entered through notifications the library did not authenticate), or
    /// the first violation with its line, call and rule; then, with several files, every call
    /// held by two instances at overlapping times (G7/live-in-two-instances).
    ///
    /// With --checkpoints (one trail only), also checks the trail against the signed
    /// checkpoints its witness collected: a trail cut before a checkpoint, or rewritten and
    /// rechained after it, is a violation naming the checkpoint; the witnessed prefix and the
    /// unwitnessed tail are printed.
    Verify {
        /// The trails to check, one per instance (each file at most once).
        #[arg(value_name = "FILE", required = true)]
        files: Vec<PathBuf>,
        /// One JSON array of per-file reports instead of text.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        checks: Checks,
        #[command(flatten)]
        witnessed: Witnessed,
    },
    /// Per call: episodes, time recording, capabilities and the state at the end of the trail.
    ///
    /// With several trails (one per instance of the bot): each trail's calls, then a line per
    /// instance and a total line across instances (a call held by several counts once).
    Summary {
        /// The trails to summarise, one per instance (each file at most once).
        #[arg(value_name = "FILE", required = true)]
        files: Vec<PathBuf>,
        /// JSON instead of tables.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        checks: Checks,
    },
    /// Draws the whole trail, or one call with --call, as a printable SVG page: a labelled
    /// time axis, a legend, the rule's checkpoints with their gaps written as numbers, and
    /// violations marked.
    ///
    /// Without --call: every call in one page, a row each (states as a strip, capabilities
    /// and episodes counted, the gaps in words), each call verified on its own events and a
    /// violating one marked, the whole trail's first violation in the heading. With --call:
    /// that call's states as bands, capabilities as bars, requests and answers as ticks, and
    /// each checkpoint numbered, its gaps listed below the axis. Refuses to overwrite an
    /// existing picture unless given --force.
    Timeline {
        /// The trail to read.
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// The call to draw (any spelling of its id); the whole trail without it.
        #[arg(long, value_name = "ID")]
        call: Option<String>,
        /// Where to write the picture.
        #[arg(long, value_name = "OUT.svg")]
        svg: PathBuf,
        /// Overwrite OUT.svg if it exists.
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        checks: Checks,
    },
}

/// How the trails are checked, the same for every subcommand: the key, and what the auditor
/// accepts of a trail that cannot show it was not edited.
///
/// `summary` and `timeline` report on a broken trail all the same, then name it on stderr and
/// exit 1.
#[derive(Debug, Args)]
pub(crate) struct Checks {
    /// The key the bots chained their trails with (HMAC-SHA256), as raw bytes; the same
    /// key for every file.
    #[arg(long, value_name = "PATH")]
    pub(crate) key_file: Option<PathBuf>,
    /// Accept lines without a chain (a trail written before the chain existed, or such lines
    /// before a chain): they can be added, edited or removed without a trace
    /// (G9/unchained otherwise).
    #[arg(long)]
    pub(crate) allow_unchained: bool,
    /// Accept a chain checked without --key-file: plain SHA-256, which whoever can write the
    /// file can recompute (G9/unkeyed otherwise).
    #[arg(long)]
    pub(crate) allow_unkeyed: bool,
}

/// The signed checkpoints of one trail, as its witness collected them, and the key to check
/// them with.
#[derive(Debug, Args)]
pub(crate) struct Witnessed {
    /// The witness's file of signed checkpoints of the trail (notes one after another, each
    /// ended by an empty line); only with one FILE.
    #[arg(long, value_name = "FILE", requires = "public_key")]
    pub(crate) checkpoints: Option<PathBuf>,
    /// The checkpoints' public key: its note verifier key text (NAME+ID+KEY), or a file
    /// holding it.
    #[arg(long, value_name = "KEY", requires = "checkpoints")]
    pub(crate) public_key: Option<String>,
    /// The trail's name in its checkpoints (their origin line); without it, the first
    /// checkpoint whose signature verifies names it.
    #[arg(long, value_name = "NAME", requires = "checkpoints")]
    pub(crate) origin: Option<String>,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::Cli;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }
}
