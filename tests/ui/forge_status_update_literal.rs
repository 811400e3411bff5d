//! Misuse: forging a `StatusUpdate` (the steps of a transition) with a struct literal, to
//! reach a transition's result without its first step writing the trail (its fields are
//! private).
use recording_status::Begin;
use recording_status::exchange::StatusUpdate;

fn forge() -> StatusUpdate<Begin> {
    StatusUpdate {}
}

fn main() {
    let _ = forge;
}
