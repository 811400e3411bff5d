//! Graph's answer to updateRecordingStatus: any status and body must be read without a panic,
//! and only a 2xx can ever be `Completed`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use recording_status::response::{GraphError, Outcome, interpret_response};

fuzz_target!(|input: (u16, Vec<u8>)| {
    let (status, body) = input;
    let Ok(response) = http::Response::builder()
        .status(status % 900 + 100)
        .header("request-id", "fuzz")
        .body(body)
    else {
        return;
    };
    let outcome = interpret_response(&response);
    if matches!(outcome, Outcome::Completed { .. }) {
        assert!(response.status().is_success());
    }
    let error = GraphError::from_response(&response);
    let _ = (error.permanent(), error.to_string(), format!("{error:?}"));
});
