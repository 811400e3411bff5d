//! Misuse: ending the call (it terminated) while a borrowed `Retention` is still alive and
//! could persist media afterwards.
use recording_status::{Call, Recording};

fn terminated(call: Call<Recording>) {
    let retention = call.retention().unwrap();
    let _ended = call.end();
    drop(retention);
}

fn main() {
    let _ = terminated;
}
