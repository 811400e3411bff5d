//! Misuse: creating a `Call` without the registry that knows the live calls (G7). A second
//! value for a call already open could stop recording while the first keeps persisting; only
//! `Calls::open` (or `Driver::call`) creates calls, and refuses a second live value.
use std::sync::Arc;

use recording_status::Call;
use recording_status::audit::MemorySink;

fn main() {
    let _call = Call::new(
        "57dab8b1-894c-409a-b240-bd8beae78896".parse().unwrap(),
        Arc::new(MemorySink::default()),
    );
}
