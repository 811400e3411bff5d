//! Unit tests of [`retry`](super).

use chrono::TimeZone;

use super::*;
use crate::response::interpret_response;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 27, 5, 58, 0).unwrap()
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn outcome(status: u16, body: &[u8]) -> Outcome {
    interpret_response(
        &http::Response::builder()
            .status(status)
            .body(body.to_vec())
            .unwrap(),
    )
}

fn verdict(status: u16, body: &[u8], retry_after: Option<&str>) -> Verdict {
    classify(
        &outcome(status, body),
        retry_after,
        &RetryPolicy::default(),
        1,
        1.0,
        now(),
    )
}

#[test]
fn retry_after_delta_seconds() {
    assert_eq!(parse_retry_after("0", now()), Some(Duration::ZERO));
    assert_eq!(parse_retry_after("120", now()), Some(secs(120)));
    assert_eq!(parse_retry_after(" 7 ", now()), Some(secs(7)));
    assert_eq!(parse_retry_after("\t007", now()), Some(secs(7)));
    assert_eq!(parse_retry_after("315", now()), Some(secs(315)));
    assert_eq!(parse_retry_after("86400", now()), Some(secs(86_400)));
}

#[test]
fn retry_after_http_dates() {
    // IMF-fixdate, two minutes ahead.
    assert_eq!(
        parse_retry_after("Fri, 27 Nov 2026 06:00:00 GMT", now()),
        Some(secs(120))
    );
    // RFC 850 and asctime.
    assert_eq!(
        parse_retry_after("Friday, 27-Nov-26 06:00:00 GMT", now()),
        Some(secs(120))
    );
    assert_eq!(
        parse_retry_after("Fri Nov 27 06:00:00 2026", now()),
        Some(secs(120))
    );
    // RFC 850's two-digit years: `70` is 1970 (past: retry now), `69` is 2069 (absurd).
    assert_eq!(
        parse_retry_after("Thursday, 01-Jan-70 00:00:00 GMT", now()),
        Some(Duration::ZERO)
    );
    assert_eq!(
        parse_retry_after("Tuesday, 01-Jan-69 00:00:00 GMT", now()),
        None
    );
    let early = Utc.with_ymd_and_hms(2026, 11, 6, 5, 59, 0).unwrap();
    assert_eq!(
        parse_retry_after("Fri Nov  6 06:00:00 2026", early),
        Some(secs(60))
    );
    // Past and present dates: retry now.
    assert_eq!(
        parse_retry_after("Fri, 27 Nov 2026 05:00:00 GMT", now()),
        Some(Duration::ZERO)
    );
    assert_eq!(
        parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now()),
        Some(Duration::ZERO)
    );
    assert_eq!(
        parse_retry_after("Fri, 27 Nov 2026 05:58:00 GMT", now()),
        Some(Duration::ZERO)
    );
    // Far in the future: absurd.
    assert_eq!(
        parse_retry_after("Sat, 27 Nov 2027 06:00:00 GMT", now()),
        None
    );
}

#[test]
fn retry_after_garbage_is_none() {
    for value in [
        "",
        "   ",
        "soon",
        "-5",
        "+5",
        "1e9",
        "1.5",
        "12 s",
        "86401",
        "18446744073709551615",
        "18446744073709551616",
        "99999999999999999999999999999999999999",
        "١٢٠",
        "１２０",
        "Fri, 27 Nov 2026 06:00:00 GMT\u{e9}",
        "Fri, 32 Nov 2026 06:00:00 GMT",
        "Fri, 27 Nov 2026 25:00:00 GMT",
        "Fri, 27 Nov 2026",
        "GMT",
        "\u{1F600}",
    ] {
        assert_eq!(parse_retry_after(value, now()), None, "{value:?}");
    }
    // Extreme `now` values do not panic.
    let _ = parse_retry_after("Fri, 27 Nov 2026 06:00:00 GMT", DateTime::<Utc>::MIN_UTC);
    let _ = parse_retry_after("Fri, 27 Nov 2026 06:00:00 GMT", DateTime::<Utc>::MAX_UTC);
}

#[test]
fn retry_after_is_capped() {
    assert_eq!(
        verdict(429, b"", Some("315")),
        Verdict::RetryAfter(secs(60))
    );
    assert_eq!(
        verdict(503, b"", Some("Fri, 27 Nov 2026 08:00:00 GMT")),
        Verdict::RetryAfter(secs(60))
    );
    let policy = RetryPolicy::default().with_max_retry_after(secs(5));
    let v = classify(&outcome(429, b""), Some("41"), &policy, 1, 0.0, now());
    assert_eq!(v, Verdict::RetryAfter(secs(5)));
    // The cap also bounds a backoff.
    let policy = policy
        .with_max_backoff(secs(100))
        .with_initial_backoff(secs(100));
    let v = classify(&outcome(429, b""), None, &policy, 1, 1.0, now());
    assert_eq!(v, Verdict::RetryAfter(secs(5)));
}

#[test]
fn backoff_grows_is_capped_and_never_overflows() {
    let policy = RetryPolicy::default();
    assert_eq!(backoff(&policy, 0, 0.0), Duration::from_millis(250));
    assert_eq!(backoff(&policy, 1, 0.0), Duration::from_millis(250));
    assert_eq!(backoff(&policy, 1, 1.0), Duration::from_millis(500));
    assert_eq!(backoff(&policy, 2, 1.0), secs(1));
    assert_eq!(backoff(&policy, 5, 1.0), secs(8));
    assert_eq!(backoff(&policy, 6, 0.0), secs(4));
    assert_eq!(backoff(&policy, 3, 0.5), Duration::from_millis(1500));
    let huge = RetryPolicy::default()
        .with_initial_backoff(Duration::MAX)
        .with_max_backoff(Duration::MAX);
    let zero = RetryPolicy::default().with_initial_backoff(Duration::ZERO);
    for jitter in [0.0, 1.0] {
        let mut previous = Duration::ZERO;
        for attempt in 0..=1000 {
            let wait = backoff(&policy, attempt, jitter);
            assert!(wait >= previous, "attempt {attempt} jitter {jitter}");
            assert!(wait <= policy.max_backoff);
            assert!(wait >= policy.max_backoff / 2 || attempt < 5);
            previous = wait;
            assert!(backoff(&huge, attempt, jitter) >= Duration::MAX / 2);
            assert_eq!(backoff(&zero, attempt, jitter), Duration::ZERO);
        }
        assert!(backoff(&huge, u32::MAX, jitter) <= Duration::MAX);
    }
    // Jitter out of range is clamped; NaN counts as 0.
    assert_eq!(backoff(&policy, 1, -3.0), Duration::from_millis(250));
    assert_eq!(backoff(&policy, 1, 7.0), Duration::from_millis(500));
    assert_eq!(backoff(&policy, 1, f64::NAN), Duration::from_millis(250));
    assert_eq!(
        backoff(&policy, 1, f64::INFINITY),
        Duration::from_millis(500)
    );
}

#[test]
fn classify_success_is_done() {
    assert_eq!(
        verdict(200, br#"{"id":"x","status":"completed"}"#, None),
        Verdict::Done
    );
    assert_eq!(
        verdict(200, br#"{"id":"x","status":"running"}"#, None),
        Verdict::Done
    );
    assert_eq!(
        verdict(200, br#"{"id":"x","status":"failed"}"#, Some("5")),
        Verdict::Done
    );
    assert_eq!(verdict(202, b"", None), Verdict::Done);
    assert_eq!(verdict(200, b"<html>", None), Verdict::Done);
}

#[test]
fn classify_throttling_retries() {
    assert_eq!(verdict(429, b"", Some("7")), Verdict::RetryAfter(secs(7)));
    assert_eq!(
        verdict(429, b"", Some("Fri, 27 Nov 2026 05:58:30 GMT")),
        Verdict::RetryAfter(secs(30))
    );
    // No header or garbage: backoff for the attempt (1, jitter 1.0 → 500 ms).
    assert_eq!(
        verdict(429, b"", None),
        Verdict::RetryAfter(Duration::from_millis(500))
    );
    assert_eq!(
        verdict(429, b"", Some("soon")),
        Verdict::RetryAfter(Duration::from_millis(500))
    );
    let v = classify(
        &outcome(429, b""),
        None,
        &RetryPolicy::default(),
        4,
        0.0,
        now(),
    );
    assert_eq!(v, Verdict::RetryAfter(secs(2)));
    assert_eq!(verdict(503, b"", Some("3")), Verdict::RetryAfter(secs(3)));
    assert_eq!(
        verdict(503, b"", None),
        Verdict::RetryAfter(Duration::from_millis(500))
    );
}

#[test]
fn classify_server_errors_are_ambiguous() {
    for status in [500, 502, 504, 501, 599] {
        assert_eq!(verdict(status, b"", None), Verdict::Ambiguous, "{status}");
        // A Retry-After does not make an ambiguous answer retryable.
        assert_eq!(
            verdict(status, b"", Some("1")),
            Verdict::Ambiguous,
            "{status}"
        );
    }
}

#[test]
fn classify_auth_permanent_and_rejected() {
    assert_eq!(verdict(401, b"", None), Verdict::RefreshToken);
    assert_eq!(
        verdict(403, b"", None),
        Verdict::Permanent(Permanent::Forbidden)
    );
    assert_eq!(
        verdict(404, b"", Some("5")),
        Verdict::Permanent(Permanent::CallNotFound)
    );
    let body = |code: &str| format!(r#"{{"error":{{"code":"{code}","message":"m"}}}}"#);
    assert_eq!(
        verdict(403, body("8506").as_bytes(), None),
        Verdict::Permanent(Permanent::NotComplianceCall)
    );
    assert_eq!(
        verdict(403, body("7504").as_bytes(), None),
        Verdict::Permanent(Permanent::InsufficientTenantPermissions)
    );
    assert_eq!(
        verdict(403, body("7505").as_bytes(), None),
        Verdict::Permanent(Permanent::TenantMismatch)
    );
    // A permanent code wins over a status that would otherwise be retried.
    assert_eq!(
        verdict(401, body("7505").as_bytes(), None),
        Verdict::Permanent(Permanent::TenantMismatch)
    );
    for status in [400, 409, 301, 302, 304, 100] {
        assert_eq!(verdict(status, b"", None), Verdict::Rejected, "{status}");
    }
    assert_eq!(
        verdict(400, body("BadRequest").as_bytes(), Some("1")),
        Verdict::Rejected
    );
}

#[test]
fn may_retry_deadline_edge() {
    let policy = RetryPolicy::default();
    let deadline = policy.deadline;
    assert!(may_retry(&policy, 1, Duration::ZERO, Duration::ZERO));
    assert!(may_retry(
        &policy,
        1,
        deadline - secs(1),
        secs(1) - Duration::from_nanos(1)
    ));
    assert!(!may_retry(&policy, 1, deadline - secs(1), secs(1)));
    assert!(!may_retry(&policy, 1, deadline, Duration::ZERO));
    assert!(!may_retry(&policy, 1, Duration::MAX, Duration::MAX));
    // Attempt budget.
    assert!(may_retry(&policy, 7, Duration::ZERO, Duration::ZERO));
    assert!(!may_retry(&policy, 8, Duration::ZERO, Duration::ZERO));
    let once = RetryPolicy::default().with_max_attempts(1);
    assert!(!may_retry(&once, 1, Duration::ZERO, Duration::ZERO));
}

#[test]
fn policy_builders() {
    let p = RetryPolicy::default()
        .with_deadline(secs(1))
        .with_max_retry_after(secs(2))
        .with_initial_backoff(secs(3))
        .with_max_backoff(secs(4))
        .with_max_attempts(5)
        .with_report_grace(secs(6));
    assert_eq!(
        p,
        RetryPolicy {
            deadline: secs(1),
            max_retry_after: secs(2),
            initial_backoff: secs(3),
            max_backoff: secs(4),
            max_attempts: 5,
            report_grace: secs(6),
        }
    );
}

#[test]
fn retry_jitter_is_a_fraction() {
    let draws: Vec<f64> = (0..1000).map(|_| jitter()).collect();
    assert!(draws.iter().all(|j| (0.0..1.0).contains(j)));
    assert!(draws.iter().any(|j| *j < 0.5) && draws.iter().any(|j| *j >= 0.5));
}
