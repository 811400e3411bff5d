//! Misuse: stopping a recording that was never acknowledged (the call is `PendingRecording`).
use recording_status::testing::ScriptedTransport;
use recording_status::{Call, Graph, PendingRecording};

async fn flow(call: Call<PendingRecording>, graph: &Graph<ScriptedTransport>) {
    let _stopped = call.stop_recording(graph, std::future::pending()).await;
}

fn main() {
    let _ = flow;
}
