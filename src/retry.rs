//! Retry policy: which answers may be retried inside one transition, and how long to wait.
//!
//! `POST updateRecordingStatus` has no documented idempotency, so only answers that show the
//! request did not take effect are retried automatically: 429 and 503 (honouring
//! `Retry-After`, capped), and 401 once after a token refresh. A 500, 502, 504 or other 5xx is
//! [`Verdict::Ambiguous`]: the update may have been applied, and the caller must reconcile
//! rather than retry blindly.
//!
//! Everything here is pure: time and randomness are passed in, nothing sleeps or reads a
//! clock.

use std::time::Duration;

use chrono::{DateTime, NaiveDateTime, Utc};
use http::StatusCode;

use crate::response::{Outcome, Permanent};

/// A `Retry-After` longer than this (one day) is treated as garbage, not honoured.
const ABSURD_RETRY_AFTER: Duration = Duration::from_secs(24 * 60 * 60);

/// How one transition retries, and for how long.
///
/// Build one from [`RetryPolicy::default`] and the `with_*` methods.
///
/// # Example
/// ```
/// use std::time::Duration;
/// use recording_status::RetryPolicy;
///
/// let policy = RetryPolicy::default()
///     .with_deadline(Duration::from_secs(10))
///     .with_max_attempts(4);
/// assert_eq!(policy.max_retry_after, Duration::from_secs(60));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RetryPolicy {
    /// The whole transition: all attempts and waits (default 30 s, as the .NET comms SDK).
    pub deadline: Duration,
    /// The cap on an honoured `Retry-After` (default 60 s; Graph has sent 315 s).
    pub max_retry_after: Duration,
    /// The first backoff when no `Retry-After` is given (default 500 ms).
    pub initial_backoff: Duration,
    /// The largest backoff when no `Retry-After` is given (default 8 s).
    pub max_backoff: Duration,
    /// The most attempts, including the first (default 8).
    pub max_attempts: u32,
    /// How long a best-effort report may take (the `failed` sent after a transition already
    /// failed): one attempt, bounded by this grace (default 1 s), so that a failed transition
    /// returns within its own deadline plus this grace, never a second deadline.
    pub report_grace: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            deadline: Duration::from_secs(30),
            max_retry_after: Duration::from_secs(60),
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(8),
            max_attempts: 8,
            report_grace: Duration::from_secs(1),
        }
    }
}

impl RetryPolicy {
    /// Sets the deadline for the whole transition, all attempts and waits included.
    #[must_use]
    pub const fn with_deadline(mut self, deadline: Duration) -> Self {
        self.deadline = deadline;
        self
    }

    /// Sets the cap on an honoured `Retry-After`.
    #[must_use]
    pub const fn with_max_retry_after(mut self, max_retry_after: Duration) -> Self {
        self.max_retry_after = max_retry_after;
        self
    }

    /// Sets the first backoff used when no `Retry-After` is given.
    #[must_use]
    pub const fn with_initial_backoff(mut self, initial_backoff: Duration) -> Self {
        self.initial_backoff = initial_backoff;
        self
    }

    /// Sets the largest backoff used when no `Retry-After` is given.
    #[must_use]
    pub const fn with_max_backoff(mut self, max_backoff: Duration) -> Self {
        self.max_backoff = max_backoff;
        self
    }

    /// Sets how long a best-effort report may take (see
    /// [`report_grace`](Self::report_grace)).
    #[must_use]
    pub const fn with_report_grace(mut self, grace: Duration) -> Self {
        self.report_grace = grace;
        self
    }

    /// Sets the most attempts, including the first. `0` and `1` both mean "never retry".
    #[must_use]
    pub const fn with_max_attempts(mut self, max_attempts: u32) -> Self {
        self.max_attempts = max_attempts;
        self
    }
}

/// Parses a `Retry-After` header value: delta-seconds (`120`) or an HTTP-date
/// (IMF-fixdate `Fri, 27 Nov 2026 06:00:00 GMT`, RFC 850 `Friday, 27-Nov-26 06:00:00 GMT`, or
/// asctime `Fri Nov 27 06:00:00 2026`).
///
/// A date at or before `now` gives [`Duration::ZERO`]. Garbage, negative numbers, fractions,
/// and waits longer than a day give `None`; the caller then backs off exponentially. The
/// result is not capped by [`RetryPolicy::max_retry_after`]; [`classify`] applies the cap.
/// Never panics.
///
/// # Example
/// ```
/// use std::time::Duration;
/// use chrono::{TimeZone, Utc};
/// use recording_status::retry::parse_retry_after;
///
/// let now = Utc.with_ymd_and_hms(2026, 11, 27, 5, 59, 0).unwrap();
/// assert_eq!(parse_retry_after("120", now), Some(Duration::from_secs(120)));
/// assert_eq!(
///     parse_retry_after("Fri, 27 Nov 2026 06:00:00 GMT", now),
///     Some(Duration::from_secs(60))
/// );
/// assert_eq!(parse_retry_after("soon", now), None);
/// ```
pub fn parse_retry_after(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    // HTTP optional whitespace is SP / HTAB only.
    let value = value.trim_matches([' ', '\t']);
    if value.is_empty() {
        return None;
    }
    let wait = if value.bytes().all(|b| b.is_ascii_digit()) {
        // `u64` parsing rejects overflow; a very long run of digits is simply `None`.
        Duration::from_secs(value.parse::<u64>().ok()?)
    } else {
        let date = parse_http_date(value)?;
        // Negative (a date in the past) fails `to_std`: retry now.
        (date - now).to_std().unwrap_or(Duration::ZERO)
    };
    (wait <= ABSURD_RETRY_AFTER).then_some(wait)
}

/// Parses the three HTTP-date forms of RFC 9110 §5.6.7, all in GMT.
fn parse_http_date(value: &str) -> Option<DateTime<Utc>> {
    if !value.is_ascii() {
        return None;
    }
    if value.ends_with(" GMT") {
        // IMF-fixdate; chrono's RFC 2822 parser checks the weekday and accepts `GMT`.
        if let Ok(date) = DateTime::parse_from_rfc2822(value) {
            return Some(date.with_timezone(&Utc));
        }
        // RFC 850: two-digit year; chrono maps 00–69 to 20xx and 70–99 to 19xx. RFC 9110
        // asks for the most recent matching year not more than 50 years ahead; the two agree
        // on every year a `Retry-After` can sensibly name (one decades away is absurd either
        // way, and refused).
        if let Ok(date) = NaiveDateTime::parse_from_str(value, "%A, %d-%b-%y %H:%M:%S GMT") {
            return Some(date.and_utc());
        }
        return None;
    }
    // asctime: `Fri Nov  6 08:49:37 1994`, day space-padded.
    NaiveDateTime::parse_from_str(value, "%a %b %e %H:%M:%S %Y")
        .ok()
        .map(|d| d.and_utc())
}

/// The wait after the `attempt`-th failed attempt (1-based; `0` counts as `1`) when Graph gave
/// no usable `Retry-After`.
///
/// "Equal jitter": with `cap = min(max_backoff, initial_backoff * 2^(attempt - 1))`, the wait
/// is `cap / 2 + jitter * cap / 2`. `jitter` is a fraction in `[0, 1]`; values outside are
/// clamped and NaN counts as `0`. Saturating: never overflows or panics, for any `attempt`.
///
/// # Example
/// ```
/// use std::time::Duration;
/// use recording_status::retry::{backoff, RetryPolicy};
///
/// let policy = RetryPolicy::default(); // 500 ms initial, 8 s max
/// assert_eq!(backoff(&policy, 1, 0.0), Duration::from_millis(250));
/// assert_eq!(backoff(&policy, 3, 1.0), Duration::from_secs(2));
/// assert_eq!(backoff(&policy, u32::MAX, 1.0), Duration::from_secs(8));
/// ```
pub fn backoff(policy: &RetryPolicy, attempt: u32, jitter: f64) -> Duration {
    let exponent = attempt.saturating_sub(1);
    let grown = match 1u32.checked_shl(exponent) {
        Some(factor) => policy.initial_backoff.saturating_mul(factor),
        None if policy.initial_backoff.is_zero() => Duration::ZERO,
        None => Duration::MAX,
    };
    let cap = grown.min(policy.max_backoff);
    let half = cap / 2;
    let jitter = if jitter.is_nan() {
        0.0
    } else {
        jitter.clamp(0.0, 1.0)
    };
    let spread = Duration::try_from_secs_f64(half.as_secs_f64() * jitter)
        .unwrap_or(half)
        .min(half);
    half.saturating_add(spread)
}

/// What to do with one attempt's result. See [`classify`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Verdict {
    /// A 2xx outcome (completed, pending, failed operation, unparseable): not a retry matter;
    /// handle the [`Outcome`] itself.
    Done,
    /// 429 or 503: Graph did not take the request. Wait this long (already capped by
    /// [`RetryPolicy::max_retry_after`]), then retry if [`may_retry`] allows it.
    RetryAfter(Duration),
    /// 401: refresh the access token once, then retry; give up on a second 401.
    RefreshToken,
    /// 403, 404, or a `8506`/`7504`/`7505` code: retrying will not help.
    Permanent(Permanent),
    /// 500, 502, 504 or another 5xx: the update may have been applied. Never retry blindly;
    /// treat the outcome as unknown and reconcile.
    Ambiguous,
    /// Any other non-2xx (400, 409, 3xx…): the request was refused; not retryable.
    Rejected,
}

/// Classifies one attempt's [`Outcome`].
///
/// - 2xx outcomes give [`Verdict::Done`].
/// - A permanent error ([`GraphError::permanent`](crate::response::GraphError::permanent))
///   gives [`Verdict::Permanent`]; a `8506`/`7504`/`7505` code wins over any status.
/// - 401 gives [`Verdict::RefreshToken`].
/// - 429 and 503 give [`Verdict::RetryAfter`]: `retry_after` (the raw `Retry-After` header
///   value, which [`Outcome::GraphError`] does not carry) parsed with `now` and capped by
///   [`RetryPolicy::max_retry_after`], or, when absent or unparseable,
///   [`backoff`]`(policy, attempt, jitter)`.
/// - Other 5xx give [`Verdict::Ambiguous`]; anything else gives [`Verdict::Rejected`].
///
/// # Example
/// ```
/// use std::time::Duration;
/// use chrono::Utc;
/// use recording_status::http;
/// use recording_status::response::interpret_response;
/// use recording_status::retry::{classify, RetryPolicy, Verdict};
///
/// let response = http::Response::builder()
///     .status(429)
///     .header("Retry-After", "315")
///     .body(Vec::new())?;
/// let retry_after = response
///     .headers()
///     .get(http::header::RETRY_AFTER)
///     .and_then(|v| v.to_str().ok());
/// let policy = RetryPolicy::default();
/// let verdict = classify(&interpret_response(&response), retry_after, &policy, 1, 0.5, Utc::now());
/// assert_eq!(verdict, Verdict::RetryAfter(Duration::from_secs(60))); // capped
///
/// let response = http::Response::builder().status(504).body(Vec::new())?;
/// let verdict = classify(&interpret_response(&response), None, &policy, 1, 0.5, Utc::now());
/// assert_eq!(verdict, Verdict::Ambiguous);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn classify(
    outcome: &Outcome,
    retry_after: Option<&str>,
    policy: &RetryPolicy,
    attempt: u32,
    jitter: f64,
    now: DateTime<Utc>,
) -> Verdict {
    let error = match outcome {
        Outcome::Completed { .. }
        | Outcome::Pending { .. }
        | Outcome::Failed { .. }
        | Outcome::Unparseable { .. } => return Verdict::Done,
        Outcome::GraphError(error) => error,
    };
    if let Some(permanent) = error.permanent() {
        return Verdict::Permanent(permanent);
    }
    match error.status {
        StatusCode::UNAUTHORIZED => Verdict::RefreshToken,
        StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE => {
            let wait = retry_after
                .and_then(|v| parse_retry_after(v, now))
                .unwrap_or_else(|| backoff(policy, attempt, jitter));
            Verdict::RetryAfter(wait.min(policy.max_retry_after))
        }
        s if s.is_server_error() => Verdict::Ambiguous,
        _ => Verdict::Rejected,
    }
}

/// Whether another attempt may follow the `attempt`-th (1-based) after waiting `wait`, with
/// `elapsed` already spent in the transition.
///
/// True when `attempt < max_attempts` and the next attempt would start strictly before the
/// deadline (`elapsed + wait < deadline`): an attempt starting at the deadline has no time left.
///
/// # Example
/// ```
/// use std::time::Duration;
/// use recording_status::retry::{may_retry, RetryPolicy};
///
/// let policy = RetryPolicy::default(); // 30 s, 8 attempts
/// assert!(may_retry(&policy, 1, Duration::from_secs(20), Duration::from_secs(5)));
/// assert!(!may_retry(&policy, 1, Duration::from_secs(20), Duration::from_secs(10)));
/// assert!(!may_retry(&policy, 8, Duration::ZERO, Duration::ZERO));
/// ```
pub fn may_retry(policy: &RetryPolicy, attempt: u32, elapsed: Duration, wait: Duration) -> bool {
    attempt < policy.max_attempts && elapsed.saturating_add(wait) < policy.deadline
}

/// A jitter fraction in `[0, 1)` from the randomness of a v4 UUID (64 of its 122 random bits;
/// the version and variant bits are skipped).
pub(crate) fn jitter() -> f64 {
    let bytes = uuid::Uuid::new_v4().into_bytes();
    let mut random = [0u8; 8];
    random[..4].copy_from_slice(&bytes[..4]);
    random[4..].copy_from_slice(&bytes[10..14]);
    // The top 53 bits fill an f64 mantissa exactly.
    let bits = u64::from_le_bytes(random) >> 11;
    #[allow(clippy::cast_precision_loss, reason = "53 bits are exact in an f64")]
    let fraction = bits as f64 / (1u64 << 53) as f64;
    fraction
}

#[cfg(test)]
mod tests;
