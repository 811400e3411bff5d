//! Misuse: implementing the sealed `State` trait for a type of one's own, to get a fifth
//! state whose `Call` the crate never checked.
use recording_status::{CallState, State};

#[derive(Debug)]
struct Acknowledged;

impl State for Acknowledged {
    const STATE: CallState = CallState::Recording;
}

fn main() {}
