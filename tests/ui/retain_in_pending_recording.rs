//! Misuse: minting a borrowed retention capability before Graph acknowledged `recording`
//! as `completed` (the call is `PendingRecording`).
use recording_status::{Call, PendingRecording};

fn persist(call: Call<PendingRecording>) {
    let _retention = call.retention();
}

fn main() {
    let _ = persist;
}
