//! Misuse: conjuring a `Call<Recording>` through `Default`.
use recording_status::{Call, Recording};

fn main() {
    let _call = Call::<Recording>::default();
}
