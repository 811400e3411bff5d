//! Misuse: reporting `failed` while a borrowed `Retention` is still alive and could persist
//! media afterwards.
use recording_status::testing::ScriptedTransport;
use recording_status::{Call, Graph, Recording};

async fn flow(call: Call<Recording>, graph: &Graph<ScriptedTransport>) {
    let retention = call.retention().unwrap();
    let _failed = call
        .report_failure(graph, "media pipeline broke", std::future::pending())
        .await;
    drop(retention);
}

fn main() {
    let _ = flow;
}
