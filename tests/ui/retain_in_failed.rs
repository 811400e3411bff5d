//! Misuse: minting a borrowed retention capability from a call whose recording `Failed`.
use recording_status::{Call, Failed};

fn persist(call: Call<Failed>) {
    let _retention = call.retention();
}

fn main() {
    let _ = persist;
}
