//! Legal: calls of any state kept together in a `HashMap<CallId, AnyCall>`.
use std::collections::HashMap;
use std::sync::Arc;

use recording_status::audit::MemorySink;
use recording_status::testing::ScriptedTransport;
use recording_status::{AnyCall, Call, CallId, CallState, Graph};

const ID: &str = "57dab8b1-894c-409a-b240-bd8beae78896";

async fn track(graph: &Graph<ScriptedTransport>, calls: &mut HashMap<CallId, AnyCall>) {
    let id: CallId = ID.parse().unwrap();
    let call = Call::new(id.clone(), Arc::new(MemorySink::default()));
    let entry = match call.begin_recording(graph).await {
        Ok(begin) => AnyCall::from(begin),
        Err(not_sent) => AnyCall::NotRecording(not_sent.call),
    };
    calls.insert(id, entry);
    if let Some(AnyCall::Recording(call)) = calls.get(&ID.parse().unwrap()) {
        let _ = call.retention_handle();
    }
}

fn main() {
    let mut calls: HashMap<CallId, AnyCall> = HashMap::new();
    let id: CallId = ID.parse().unwrap();
    calls.insert(
        id.clone(),
        AnyCall::NotRecording(Call::new(id, Arc::new(MemorySink::default()))),
    );
    assert!(calls.values().all(|c| c.state() == CallState::NotRecording));
    let _ = track;
}
