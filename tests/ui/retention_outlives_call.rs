//! Misuse: a borrowed `Retention` escaping the scope of the call it borrows, and being used
//! after that call was dropped.
use recording_status::{Call, Recording};

fn escape(call: Call<Recording>) {
    let escaped;
    {
        let call = call;
        escaped = call.retention().unwrap();
    } // `call` is dropped here (retention revoked)
    let _still_usable = escaped.number();
}

fn main() {
    let _ = escape;
}
