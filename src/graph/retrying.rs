//! What an exchange does after each attempt: retry (and after how long), refresh the token
//! once, or stop. With the `driver` feature the graph's [`RetryPolicy`] decides; without it
//! there is no policy and every exchange makes exactly one attempt.

use std::time::Duration;

use super::{Attempts, Graph};
use crate::response::Outcome;
#[cfg(feature = "driver")]
use crate::retry::{RetryPolicy, Verdict, backoff, classify, jitter, may_retry};

/// The decision after an attempt. Without the `driver` feature it is always `Done`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(not(feature = "driver"), allow(dead_code))]
pub(super) enum Next {
    /// Wait this long, then make another attempt.
    RetryAfter(Duration),
    /// Make another attempt at once, with a refreshed token.
    RefreshToken,
    /// The last attempt's result stands.
    Done,
}

/// The attempts of one exchange.
#[derive(Debug)]
pub(super) struct Retrying<'g> {
    #[cfg(feature = "driver")]
    policy: Option<&'g RetryPolicy>,
    #[cfg(not(feature = "driver"))]
    policy: std::marker::PhantomData<&'g ()>,
    attempt: u32,
    refreshed: bool,
}

impl<'g> Retrying<'g> {
    pub(super) fn new<T>(graph: &'g Graph<T>, attempts: Attempts) -> Self {
        #[cfg(feature = "driver")]
        let policy = graph
            .retry
            .as_ref()
            .filter(|_| attempts == Attempts::Policy);
        #[cfg(not(feature = "driver"))]
        let policy = {
            let _ = (graph, attempts);
            std::marker::PhantomData
        };
        Self {
            policy,
            attempt: 0,
            refreshed: false,
        }
    }

    /// Starts the next attempt; returns its number (1 for the first).
    pub(super) fn next_attempt(&mut self) -> u32 {
        self.attempt += 1;
        self.attempt
    }

    /// Whether the token was refreshed (after a `401`): the next attempt asks for a fresh one.
    pub(super) fn refreshed(&self) -> bool {
        self.refreshed
    }

    /// No response: only a request that never left is retried, with backoff.
    #[cfg_attr(not(feature = "driver"), allow(clippy::unused_self))]
    pub(super) fn after_no_response(&mut self, not_delivered: bool, elapsed: Duration) -> Next {
        #[cfg(feature = "driver")]
        if let (true, Some(policy)) = (not_delivered, self.policy) {
            let wait = backoff(policy, self.attempt, jitter());
            if may_retry(policy, self.attempt, elapsed, wait) {
                return Next::RetryAfter(wait);
            }
        }
        #[cfg(not(feature = "driver"))]
        let _ = (not_delivered, elapsed);
        Next::Done
    }

    /// An answer: throttling is retried after `Retry-After`, a `401` once with a fresh token.
    #[cfg_attr(not(feature = "driver"), allow(clippy::unused_self))]
    pub(super) fn after_answer(
        &mut self,
        outcome: &Outcome,
        retry_after: Option<&str>,
        elapsed: Duration,
    ) -> Next {
        #[cfg(feature = "driver")]
        if let Some(policy) = self.policy {
            let verdict = classify(
                outcome,
                retry_after,
                policy,
                self.attempt,
                jitter(),
                chrono::Utc::now(),
            );
            match verdict {
                Verdict::RetryAfter(wait) if may_retry(policy, self.attempt, elapsed, wait) => {
                    return Next::RetryAfter(wait);
                }
                Verdict::RefreshToken
                    if !self.refreshed
                        && may_retry(policy, self.attempt, elapsed, Duration::ZERO) =>
                {
                    self.refreshed = true;
                    return Next::RefreshToken;
                }
                _ => {}
            }
        }
        #[cfg(not(feature = "driver"))]
        let _ = (outcome, retry_after, elapsed);
        Next::Done
    }
}
