//! `timeline FILE --call ID --svg OUT.svg`: one call's life as an SVG picture.

use std::path::Path;

use recording_status::audit::timeline;

use crate::{HOLDS, UNREADABLE, read};

/// Draws `call` from the trail at `file` into `out`, and prints `out`'s path.
///
/// Returns the exit status: [`HOLDS`], or [`UNREADABLE`] when the trail cannot be read, has no
/// event for the call, or the picture cannot be written.
pub(crate) fn run(file: &Path, call: &str, out: &Path) -> u8 {
    let (trail, _) = match read(file) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("{e}");
            return UNREADABLE;
        }
    };
    let Some(svg) = timeline(&trail.events, call) else {
        eprintln!("{}: no event for call {call}", file.display());
        return UNREADABLE;
    };
    if let Err(e) = std::fs::write(out, svg) {
        eprintln!("{}: {e}", out.display());
        return UNREADABLE;
    }
    println!("{}", out.display());
    HOLDS
}
