//! Legal: an owned `RetentionHandle` moves into a `'static` thread and a `'static` closure
//! while the call stays free to be stopped.
use std::io::Write;

use recording_status::testing::ScriptedTransport;
use recording_status::{Call, Graph, Recording, RetentionHandle, RetentionWriter};

fn spawn_media_task(handle: RetentionHandle) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut writer = RetentionWriter::new(handle, Vec::new());
        while !writer.capability().is_stopping() {
            if writer.write_all(b"frame").is_err() {
                break;
            }
        }
        drop(writer.finish());
    })
}

fn boxed_task(handle: RetentionHandle) -> Box<dyn FnOnce() + Send + 'static> {
    Box::new(move || drop(handle))
}

async fn flow(call: Call<Recording>, graph: &Graph<ScriptedTransport>) {
    let task = spawn_media_task(call.retention_handle().unwrap());
    let later = boxed_task(call.retention_handle().unwrap());
    // The handles do not borrow the call: stopping compiles, and waits for them at run time.
    let stopping = call.stop_recording(graph, std::future::pending());
    later();
    let _ = task.join();
    let _ = stopping.await;
}

fn main() {
    let _ = flow;
}
