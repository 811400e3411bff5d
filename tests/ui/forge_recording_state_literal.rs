//! Misuse: forging the `Recording` state itself with a struct literal (its fields are
//! private), e.g. to build a `Call<Recording>` from it.
use recording_status::Recording;

fn forge() -> Recording {
    Recording { armed: true }
}

fn main() {
    let _ = forge;
}
