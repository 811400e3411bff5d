//! Misuse: forging a borrowed `Retention` with a struct literal (its fields are private), to
//! persist media without a `Call<Recording>`.
use recording_status::Retention;

fn forge() -> Retention<'static> {
    Retention { capability: 1 }
}

fn main() {
    let _ = forge;
}
