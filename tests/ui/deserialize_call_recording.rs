//! Misuse: conjuring a `Call<Recording>` by deserializing it (e.g. from a persisted session).
use recording_status::{Call, Recording};

fn main() {
    let _call = serde_json::from_str::<Call<Recording>>(r#"{"id":"x","state":"recording"}"#);
}
