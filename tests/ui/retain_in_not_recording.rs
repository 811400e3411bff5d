//! Misuse: minting a borrowed retention capability from a call that is `NotRecording`.
use recording_status::{Call, NotRecording};

fn persist(call: Call<NotRecording>) {
    let _retention = call.retention();
}

fn main() {
    let _ = persist;
}
