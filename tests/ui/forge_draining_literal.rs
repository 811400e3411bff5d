//! Misuse: forging a `Draining` call with a struct literal, to skip the stop signal and the
//! wait for the capabilities to end (its fields are private).
use recording_status::{Call, Draining, NotRecording, Recording, StopError};

fn forge(call: Call<Recording>) -> Draining<Result<Call<NotRecording>, StopError>> {
    Draining { call }
}

fn main() {
    let _ = forge;
}
