//! Misuse: forging an owned `RetentionHandle` with a struct literal (its fields are private),
//! to persist media without a `Call<Recording>`.
use recording_status::RetentionHandle;

fn forge() -> RetentionHandle {
    RetentionHandle { capability: 1 }
}

fn main() {
    let _ = forge;
}
