//! `timeline FILE [--call ID] --svg OUT.svg [--force] [CHECKS]`: the whole trail, or one
//! call's life, as an SVG picture; then, on stderr, whether the trail does not hold, as
//! `verify` would find it.

use std::io::Write;
use std::path::Path;

use recording_status::audit::{timeline, trail_timeline, verify};

use crate::check::{Policy, violation, warn};
use crate::cli::Checks;
use crate::{HOLDS, UNREADABLE, VIOLATED, read};

/// Draws `call` from the trail at `file`, or the whole trail without one, into `out`, and
/// prints `out`'s path. An existing `out` is left alone unless `force`.
///
/// The trail is checked as `verify` checks it (the chain under the policy, then the rule); a
/// trail that does not hold is drawn all the same, then named on stderr with its first
/// violation.
///
/// Returns the exit status: [`VIOLATED`] when the trail does not hold (the picture written);
/// [`UNREADABLE`] when the key or the trail cannot be read, the trail has no event for the
/// call, `out` exists and `force` is not given, or the picture cannot be written; otherwise
/// [`HOLDS`].
pub(crate) fn run(file: &Path, call: Option<&str>, out: &Path, force: bool, checks: &Checks) -> u8 {
    let policy = match Policy::new(checks) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let (trail, bytes) = match read(file) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("{e}");
            return UNREADABLE;
        }
    };
    let svg = match call {
        None => trail_timeline(&trail.events),
        Some(call) => match timeline(&trail.events, call) {
            Some(svg) => svg,
            None => {
                eprintln!("{}: no event for call {call}", file.display());
                return UNREADABLE;
            }
        },
    };
    if let Err(e) = write(out, svg.as_bytes(), force) {
        eprintln!("{e}");
        return UNREADABLE;
    }
    println!("{}", out.display());
    let (_, chain) = policy.chain(&bytes);
    let problem = chain.or_else(|| verify(&trail.events).err().map(|v| violation(&trail, &v)));
    match problem {
        Some(problem) => {
            warn(file, &problem);
            VIOLATED
        }
        None => HOLDS,
    }
}

/// Writes `bytes` to `out`, which must not exist unless `force`.
///
/// # Errors
///
/// The message to print, naming `out`.
fn write(out: &Path, bytes: &[u8], force: bool) -> Result<(), String> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true);
    if force {
        options.create(true).truncate(true);
    } else {
        options.create_new(true);
    }
    let mut f = options.open(out).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            format!("{}: exists; give --force to overwrite it", out.display())
        } else {
            format!("{}: {e}", out.display())
        }
    })?;
    f.write_all(bytes)
        .map_err(|e| format!("{}: {e}", out.display()))
}
