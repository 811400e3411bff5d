//! `Retry-After` values: any text parses or is refused without a panic, whatever `now`; a parsed
//! wait is never more than a day, `classify` never waits longer than the policy's cap, and the
//! three HTTP-date forms round-trip.
//!
//! Input layout (raw bytes):
//!
//! | bytes | meaning                                                                       |
//! |-------|-------------------------------------------------------------------------------|
//! | 0..8  | `now`, seconds (little-endian `u64`), mapped into years 1900..=9999           |
//! | 8..12 | a delay in seconds, for the round trips (mapped to `0..=2 days`)              |
//! | 12    | the policy's cap on an honoured `Retry-After`, in seconds                      |
//! | rest  | the header value: UTF-8 as is, anything else read lossily                      |
//!
//! Inputs shorter than 13 bytes are header values on their own, with fixed `now` and delay.
#![no_main]

use std::time::Duration;

use chrono::{DateTime, Datelike as _, TimeZone as _, Utc};
use libfuzzer_sys::fuzz_target;
use recording_status::response::{Outcome, interpret_response};
use recording_status::retry::{RetryPolicy, Verdict, classify, parse_retry_after};

/// Waits over a day are refused by `parse_retry_after`.
const DAY: u64 = 24 * 60 * 60;
/// 1900-01-01T00:00:00Z and 9999-12-30T00:00:00Z.
const EARLIEST: i64 = -2_208_988_800;
const LATEST: i64 = 253_402_128_000;

fuzz_target!(|data: &[u8]| {
    let (now_bits, delay_bits, cap, text) = match data.split_first_chunk::<13>() {
        Some((head, text)) => (
            u64::from_le_bytes(head[..8].try_into().unwrap()),
            u32::from_le_bytes(head[8..12].try_into().unwrap()),
            head[12],
            text,
        ),
        None => (1_795_759_080, 120, 60, data),
    };
    let span = u64::try_from(LATEST - EARLIEST).unwrap();
    let now_secs = EARLIEST + i64::try_from(now_bits % span).unwrap();
    let now = Utc.timestamp_opt(now_secs, 0).unwrap();
    let text = String::from_utf8_lossy(text);

    // Arbitrary text.
    let parsed = parse_retry_after(&text, now);
    if let Some(wait) = parsed {
        assert!(wait <= Duration::from_secs(DAY), "{text:?} -> {wait:?}");
    }
    let trimmed = text.trim_matches([' ', '\t']);
    if !trimmed.is_empty() && trimmed.bytes().all(|b| b.is_ascii_digit()) {
        let expected = trimmed
            .parse::<u64>()
            .ok()
            .filter(|s| *s <= DAY)
            .map(Duration::from_secs);
        assert_eq!(parsed, expected, "{text:?}");
    }
    let _ = parse_retry_after(&text, DateTime::<Utc>::MIN_UTC);
    let _ = parse_retry_after(&text, DateTime::<Utc>::MAX_UTC);

    // The policy's cap bounds whatever `classify` waits, for 429 and 503.
    let policy = RetryPolicy::default().with_max_retry_after(Duration::from_secs(cap.into()));
    for status in [429, 503] {
        let response = http::Response::builder()
            .status(status)
            .body(Vec::new())
            .unwrap();
        let outcome = interpret_response(&response);
        assert!(matches!(outcome, Outcome::GraphError(_)));
        match classify(&outcome, Some(&text), &policy, 2, 0.5, now) {
            Verdict::RetryAfter(wait) => {
                assert!(wait <= policy.max_retry_after, "{text:?} -> {wait:?}");
                if let Some(parsed) = parsed {
                    assert_eq!(wait, parsed.min(policy.max_retry_after));
                }
            }
            other => panic!("{status} classified as {other:?}"),
        }
    }

    // Round trips: a date `delay` seconds after `now`, in each of the three forms.
    let delay = u64::from(delay_bits) % (2 * DAY + 1);
    let Some(date) = now_secs
        .checked_add(i64::try_from(delay).unwrap())
        .and_then(|s| Utc.timestamp_opt(s, 0).single())
    else {
        return;
    };
    let expected = (delay <= DAY).then(|| Duration::from_secs(delay));
    let year = date.year();
    let mut forms = Vec::new();
    if (1000..=9999).contains(&year) {
        forms.push(date.format("%a, %d %b %Y %H:%M:%S GMT").to_string()); // IMF-fixdate
        forms.push(date.format("%a %b %e %H:%M:%S %Y").to_string()); // asctime
    }
    if (1970..=2069).contains(&year) {
        // RFC 850: chrono reads two-digit years as 1970..=2069 (`69` is 2069; src/retry.rs's
        // comment says 1969).
        forms.push(date.format("%A, %d-%b-%y %H:%M:%S GMT").to_string());
    }
    for form in &forms {
        assert_eq!(parse_retry_after(form, now), expected, "{form:?} at {now}");
        // Optional whitespace around the value is allowed.
        assert_eq!(
            parse_retry_after(&format!(" \t{form} "), now),
            expected,
            "{form:?} at {now}"
        );
        // The same date is no wait at all once it has passed.
        assert_eq!(
            parse_retry_after(form, date),
            Some(Duration::ZERO),
            "{form:?} at itself"
        );
    }
});
