//! Misuse: implementing the sealed `Capability` trait for a type of one's own, to feed a
//! `RetentionWriter` without a capability minted by `Call<Recording>`.
use std::io;

use recording_status::retention::Capability;
use recording_status::{CallId, RetentionWriter};

#[derive(Debug)]
struct Forged(CallId);

impl Capability for Forged {
    fn call_id(&self) -> &CallId {
        &self.0
    }

    fn check(&self) -> io::Result<()> {
        Ok(())
    }
}

fn persist(id: CallId) {
    let _writer = RetentionWriter::new(Forged(id), Vec::<u8>::new());
}

fn main() {
    let _ = persist;
}
