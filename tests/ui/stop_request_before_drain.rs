//! Misuse: sending the end-of-recording request before the capabilities have ended: a
//! `Draining` call has no request to prepare; only `drained` (which waits for every
//! capability) gives the status update (G2).
use std::time::Instant;

use recording_status::{AccessToken, Call, Endpoint, Recording};

fn early(call: Call<Recording>, endpoint: &Endpoint, token: &AccessToken) {
    let draining = call.start_stop().unwrap();
    let _ = draining.prepare(endpoint, token, Instant::now());
}

fn main() {
    let _ = early;
}
