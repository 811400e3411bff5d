//! Misuse: returning a borrowed `Retention` from the function that owns (and drops) its call,
//! so the capability would outlive every `Call<Recording>`.
use recording_status::{Call, Recording, Retention};

fn escape(call: Call<Recording>) -> Retention<'static> {
    call.retention().unwrap()
}

fn main() {
    let _ = escape;
}
