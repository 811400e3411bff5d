//! The command line, as clap types: three subcommands and their arguments.
//!
//! The doc comments here are the tool's `--help`. A usage error (an unknown subcommand or
//! option, a missing argument) is clap's, printed on stderr with exit status 2, the status of
//! bad arguments in the tool's contract; `--help` and `--version` print on stdout and exit 0.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

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
    after_help = "Exit status: 0 the rule holds, 1 a violation (a broken chain included), \
                  2 unreadable input or bad arguments."
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
    Verify {
        /// The trails to check, one per instance (each file at most once).
        #[arg(value_name = "FILE", required = true)]
        files: Vec<PathBuf>,
        /// One JSON array of per-file reports instead of text.
        #[arg(long)]
        json: bool,
        /// The key the bots chained their trails with (HMAC-SHA256), as raw bytes; the same
        /// key for every file.
        #[arg(long, value_name = "PATH")]
        key_file: Option<PathBuf>,
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
    },
    /// Draws one call's life as SVG: states as bands, capabilities as bars, requests and
    /// answers as ticks.
    Timeline {
        /// The trail to read.
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// The call to draw (any spelling of its id).
        #[arg(long, value_name = "ID")]
        call: String,
        /// Where to write the picture.
        #[arg(long, value_name = "OUT.svg")]
        svg: PathBuf,
    },
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
