//! Misuse: minting an owned retention handle (for a spawned media task) while the `recording`
//! update is still `PendingRecording`.
use recording_status::{Call, PendingRecording};

fn spawn_media_task(call: Call<PendingRecording>) {
    let _handle = call.retention_handle();
}

fn main() {
    let _ = spawn_media_task;
}
