//! Misuse: moving a borrowed `Retention` into a `'static` thread, where it could outlive the
//! call and keep persisting after `stop_recording` (owned tasks must use `RetentionHandle`).
use recording_status::{Call, Recording};

fn spawn_media_task(call: &Call<Recording>) {
    let retention = call.retention().unwrap();
    std::thread::spawn(move || drop(retention));
}

fn main() {
    let _ = spawn_media_task;
}
