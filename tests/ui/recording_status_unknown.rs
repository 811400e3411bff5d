//! Misuse: building Graph's `unknown` recording status, which is not meaningful to send.
use recording_status::RecordingStatus;

fn main() {
    let _status = RecordingStatus::Unknown;
}
