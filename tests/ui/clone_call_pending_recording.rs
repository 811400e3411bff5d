//! Misuse: cloning a `Call<PendingRecording>`, so that one copy can take the `completed` edge
//! while the other takes another (one call, two states).
use recording_status::{Call, PendingRecording};

fn fork(call: &Call<PendingRecording>) -> Call<PendingRecording> {
    <Call<PendingRecording> as Clone>::clone(call)
}

fn main() {
    let _ = fork;
}
