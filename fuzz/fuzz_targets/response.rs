//! Graph's answer to `updateRecordingStatus`: any status, headers and body are read without a
//! panic; only a 2xx whose operation is a successful completion is `Completed`; the correlation
//! headers win over `innerError`, which is the fallback; and `classify` never waits longer than
//! the policy's cap.
//!
//! Input layout (raw bytes, no `arbitrary` decoding, so a JSON seed stays a JSON body):
//!
//! | bytes  | meaning                                                                       |
//! |--------|-------------------------------------------------------------------------------|
//! | 0..2   | status, little-endian, mapped to `100..=999`                                   |
//! | 2      | header mask: which of [`HEADERS`] to add, bit `i` for `HEADERS[i]`             |
//! | …      | for each selected header in order: one length byte, then that many value bytes |
//! | rest   | the body, exactly as Graph would send it                                       |
//!
//! Header values that `http` refuses (control characters) are skipped; values with bytes
//! 0x80..=0xff are kept, and read as absent by `to_str`, as the crate does.
#![no_main]

use chrono::{TimeZone as _, Utc};
use libfuzzer_sys::fuzz_target;
use recording_status::response::{GraphError, Outcome, interpret_response};
use recording_status::retry::{RetryPolicy, Verdict, classify};
use serde_json::Value;

/// The headers the mask selects, bit 0 first. `request-id` twice: a repeated header's first
/// value is the one read.
const HEADERS: [&str; 8] = [
    "location",
    "request-id",
    "client-request-id",
    "date",
    "retry-after",
    "content-type",
    "request-id",
    "x-ms-ags-diagnostic",
];

fuzz_target!(|data: &[u8]| {
    let Some((head, mut rest)) = data.split_first_chunk::<3>() else {
        return;
    };
    let status = 100 + u16::from_le_bytes([head[0], head[1]]) % 900;
    let mask = head[2];
    let mut builder = http::Response::builder().status(status);
    for (bit, name) in HEADERS.iter().enumerate() {
        if mask & (1 << bit) == 0 {
            continue;
        }
        let Some((&len, tail)) = rest.split_first() else {
            break;
        };
        let (value, tail) = tail.split_at(usize::from(len).min(tail.len()));
        rest = tail;
        if let Ok(value) = http::HeaderValue::from_bytes(value) {
            builder = builder.header(*name, value);
        }
    }
    let Ok(response) = builder.body(rest.to_vec()) else {
        return;
    };
    check(&response);
});

fn header(response: &http::Response<Vec<u8>>, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

fn check(response: &http::Response<Vec<u8>>) {
    let status = response.status();
    let outcome = interpret_response(response);
    match &outcome {
        Outcome::Completed {
            operation,
            location,
        } => {
            assert!(status.is_success());
            assert!(operation.is_successful_completion());
            assert!(operation.may_settle_recording());
            assert_eq!(*location, header(response, "location"));
        }
        Outcome::Pending {
            operation,
            location,
        } => {
            assert!(status.is_success());
            assert_eq!(*location, header(response, "location"));
            match operation {
                None => assert!(response.body().iter().all(u8::is_ascii_whitespace)),
                Some(op) => {
                    assert!(op.may_settle_recording());
                    assert!(!op.is_successful_completion() && !op.is_failure());
                }
            }
        }
        Outcome::Failed { operation } => {
            assert!(status.is_success());
            assert!(operation.is_failure() && !operation.is_successful_completion());
        }
        Outcome::Unparseable { status: s, body } => {
            assert!(status.is_success());
            assert_eq!(*s, status);
            assert_eq!(body, response.body());
            assert!(!body.iter().all(u8::is_ascii_whitespace));
        }
        Outcome::GraphError(error) => {
            assert!(!status.is_success());
            assert_eq!(*error, GraphError::from_response(response));
        }
        _ => {}
    }

    let error = GraphError::from_response(response);
    assert_eq!(error.status, status);
    assert_eq!(error.body, *response.body());
    check_correlation(response, &error);
    let _ = (error.permanent(), error.to_string(), format!("{error:?}"));

    // `classify` with the response's own `Retry-After`: a wait is only ever for 429/503, and
    // never longer than the policy's cap.
    let retry_after = header(response, "retry-after");
    let now = Utc.with_ymd_and_hms(2026, 11, 27, 5, 58, 0).unwrap();
    let policy = RetryPolicy::default();
    let verdict = classify(&outcome, retry_after.as_deref(), &policy, 3, 0.5, now);
    match verdict {
        Verdict::Done => assert!(status.is_success()),
        Verdict::RetryAfter(wait) => {
            assert!(matches!(status.as_u16(), 429 | 503));
            assert!(wait <= policy.max_retry_after);
        }
        Verdict::RefreshToken => assert_eq!(status.as_u16(), 401),
        Verdict::Permanent(_) | Verdict::Ambiguous | Verdict::Rejected => {
            assert!(!status.is_success());
        }
        _ => {}
    }
}

/// `request-id` and `client-request-id` come from the headers when they are readable, else
/// from the first `innerError` (outermost first, at most 32 deep) that has one; `date` from
/// the first `innerError` that has one, else the header.
fn check_correlation(response: &http::Response<Vec<u8>>, error: &GraphError) {
    let body: Option<Value> = serde_json::from_slice(response.body()).ok();
    let mut chain = Vec::new();
    if let Some(envelope) = body.as_ref().and_then(|b| b.get("error")) {
        let mut inner = inner_error(envelope);
        while let Some(i) = inner {
            if chain.len() == 32 {
                break;
            }
            chain.push(i);
            inner = inner_error(i);
        }
    }
    let from_chain = |names: &[&str]| {
        chain.iter().find_map(|i| {
            names
                .iter()
                .find_map(|n| i.get(*n).and_then(Value::as_str))
                .map(str::to_owned)
        })
    };
    let expected =
        header(response, "request-id").or_else(|| from_chain(&["request-id", "requestId"]));
    assert_eq!(error.request_id, expected, "request-id");
    let expected = header(response, "client-request-id")
        .or_else(|| from_chain(&["client-request-id", "clientRequestId"]));
    assert_eq!(error.client_request_id, expected, "client-request-id");
    let expected = from_chain(&["date"]).or_else(|| header(response, "date"));
    assert_eq!(error.date, expected, "date");
}

fn inner_error(v: &Value) -> Option<&Value> {
    v.get("innerError")
        .or_else(|| v.get("innererror"))
        .filter(|i| i.is_object())
}
