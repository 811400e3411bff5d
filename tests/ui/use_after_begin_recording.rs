//! Misuse: keeping and using the `Call<NotRecording>` after `begin_recording` consumed it
//! (the old state must be unreachable once a transition happened).
use recording_status::testing::ScriptedTransport;
use recording_status::{Call, Graph, NotRecording};

async fn flow(call: Call<NotRecording>, graph: &Graph<ScriptedTransport>) {
    let _begin = call.begin_recording(graph).await;
    let _stale = call.id();
}

fn main() {
    let _ = flow;
}
