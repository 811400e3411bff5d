//! Misuse: forging a `Call<Recording>` with a struct literal instead of earning it through a
//! `completed` acknowledgement (its fields are private).
use recording_status::{Call, CallId, Recording};

fn forge(id: CallId, state: Recording) -> Call<Recording> {
    Call { id, state }
}

fn main() {
    let _ = forge;
}
