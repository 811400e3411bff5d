//! Legal: calls of any state kept together in a `HashMap<CallId, AnyCall>`.
use std::collections::HashMap;
use std::sync::Arc;

use recording_status::audit::MemorySink;
use recording_status::testing::ScriptedTransport;
use recording_status::{AnyCall, CallId, CallState, Calls, Graph};

const ID: &str = "57dab8b1-894c-409a-b240-bd8beae78896";

async fn track(
    graph: &Graph<ScriptedTransport>,
    registry: &Calls,
    calls: &mut HashMap<CallId, AnyCall>,
) -> Result<(), recording_status::Error> {
    let id: CallId = ID.parse().unwrap();
    let call = registry.open(id.clone())?;
    let entry = match call.begin_recording(graph).await {
        Ok(begin) => AnyCall::from(begin),
        Err(not_sent) => AnyCall::NotRecording(not_sent.call),
    };
    calls.insert(id, entry);
    // Graph's notification spelling finds the same entry.
    if let Some(AnyCall::Recording(call)) = calls.get(&"57DAB8B1894C409AB240BD8BEAE78896".parse().unwrap()) {
        let _ = call.retention_handle();
    }
    Ok(())
}

fn main() -> Result<(), recording_status::Error> {
    let registry = Calls::new(Arc::new(MemorySink::default()));
    let mut calls: HashMap<CallId, AnyCall> = HashMap::new();
    let id: CallId = ID.parse().unwrap();
    calls.insert(id.clone(), AnyCall::NotRecording(registry.open(id)?));
    assert!(calls.values().all(|c| c.state() == CallState::NotRecording));
    let _ = track;
    Ok(())
}
