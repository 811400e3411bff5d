//! Legal: begin → Recording → borrowed retention through a writer → drop → stop; and
//! Failed → begin_recording again.
use std::io::Write;
use std::sync::Arc;

use recording_status::audit::MemorySink;
use recording_status::testing::ScriptedTransport;
use recording_status::{AccessToken, Begin, Call, Graph, NotRecording, RetentionWriter};

async fn flow(
    graph: &Graph<ScriptedTransport>,
) -> Result<Call<NotRecording>, Box<dyn std::error::Error>> {
    let audit = Arc::new(MemorySink::default());
    let call = recording_status::Calls::new(audit).open("57dab8b1-894c-409a-b240-bd8beae78896".parse()?)?;
    let call = match call.begin_recording(graph).await? {
        Begin::Recording(call) => call,
        // A failed call may try again; it needs a fresh `completed` acknowledgement.
        Begin::Failed(failed) => match failed.begin_recording(graph).await? {
            Begin::Recording(call) => call,
            _ => return Err("not acknowledged".into()),
        },
        _ => return Err("not acknowledged".into()),
    };

    let mut writer = RetentionWriter::new(call.retention()?, Vec::new());
    writer.write_all(b"frame")?;
    let (_stored, capability) = writer.finish()?;
    drop(capability);

    {
        let retention = call.retention()?;
        let _ = retention.number();
    } // ended before the stop

    Ok(call.stop_recording(graph, std::future::pending()).await?)
}

fn main() {
    let _graph = Graph::new(ScriptedTransport::new(), AccessToken::new("token"));
    let _ = flow;
}
