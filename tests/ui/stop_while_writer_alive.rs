//! Misuse: stopping recording while a `RetentionWriter` built on a borrowed `Retention` is
//! alive, then writing media through it after `notRecording` was reported.
use std::io::Write;

use recording_status::testing::ScriptedTransport;
use recording_status::{Call, Graph, Recording, RetentionWriter};

async fn flow(call: Call<Recording>, graph: &Graph<ScriptedTransport>) {
    let mut writer = RetentionWriter::new(call.retention().unwrap(), Vec::new());
    writer.write_all(b"frame").unwrap();
    let _stopped = call.stop_recording(graph, std::future::pending()).await;
    writer.write_all(b"late frame").unwrap();
}

fn main() {
    let _ = flow;
}
