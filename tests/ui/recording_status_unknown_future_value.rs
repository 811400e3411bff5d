//! Misuse: building Graph's `unknownFutureValue` recording status (an evolvable-enum
//! sentinel), which is not meaningful to send.
use recording_status::RecordingStatus;

fn main() {
    let _status = RecordingStatus::UnknownFutureValue;
}
