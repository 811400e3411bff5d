//! Misuse: converting a `Call<PendingRecording>` into a `Call<Recording>` with `From`/`Into`,
//! skipping the `completed` acknowledgement.
use recording_status::{Call, PendingRecording, Recording};

fn skip_ack(call: Call<PendingRecording>) -> Call<Recording> {
    call.into()
}

fn main() {
    let _ = skip_ack;
}
