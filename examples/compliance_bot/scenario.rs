//! The scenarios the example scripts into the built-in emulator: what Graph does for a call.

use std::time::Duration;

use graph_emulator::{Behavior, MalformedBody, NotifyStyle, RetryAfter};

/// What Graph does for a call, and what the bot then does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scenario {
    Immediate,
    Notified,
    NotifiedMessy,
    Throttled429,
    Unavailable503,
    OperationFailed,
    NotCompliance,
    ServerError,
    Malformed,
    Slow,
    TooLate,
    BreaksMidway,
}

impl Scenario {
    const ALL: [Self; 12] = [
        Self::Immediate,
        Self::Notified,
        Self::Throttled429,
        Self::NotifiedMessy,
        Self::OperationFailed,
        Self::Immediate,
        Self::Unavailable503,
        Self::NotCompliance,
        Self::ServerError,
        Self::Malformed,
        Self::Slow,
        Self::TooLate,
    ];

    /// Whether the bot reports `failed` half way through call `i`, as a bot whose media
    /// pipeline broke would (in either mode; the emulator scripts such calls to complete).
    pub(crate) fn breaks_midway(i: usize) -> bool {
        i % 7 == 6
    }

    pub(crate) fn for_call(i: usize) -> Self {
        if Self::breaks_midway(i) {
            Self::BreaksMidway
        } else {
            Self::ALL[i % Self::ALL.len()]
        }
    }

    /// The emulator's script: the answer to `recording`, then to whatever follows.
    pub(crate) fn behaviors(self) -> Vec<Behavior> {
        let notify = NotifyStyle::default();
        let messy = NotifyStyle::messy();
        let first = match self {
            Self::Immediate | Self::BreaksMidway => Behavior::Complete,
            Self::Notified => Behavior::Running {
                delay: Duration::from_millis(150),
                notify,
            },
            Self::NotifiedMessy => Behavior::Running {
                delay: Duration::from_millis(100),
                notify: messy,
            },
            Self::Throttled429 => Behavior::Throttle {
                status: 429,
                retry_after: RetryAfter::Seconds(1),
            },
            Self::Unavailable503 => Behavior::Throttle {
                status: 503,
                retry_after: RetryAfter::HttpDate(Duration::from_secs(1)),
            },
            Self::OperationFailed => Behavior::Failed {
                code: 500,
                subcode: 8510,
                message: "media processor unavailable".to_owned(),
            },
            Self::NotCompliance => Behavior::Forbidden8506,
            Self::ServerError => Behavior::ServerError { status: 504 },
            Self::Malformed => Behavior::Malformed(MalformedBody::Html),
            Self::Slow => Behavior::Slow {
                delay: Duration::from_millis(400),
                then: Box::new(Behavior::Complete),
            },
            Self::TooLate => Behavior::Running {
                delay: Duration::from_millis(2_500),
                notify,
            },
        };
        vec![first, Behavior::Complete]
    }

    /// Whether Graph acknowledges `recording` in this script, so that media may be persisted.
    /// Timing decides the rest: under load the bot may give up before an acknowledgement
    /// (a deadline, not a broken rule), and `TooLate`'s completion may arrive before the bot's
    /// deadline fires (then it records, rightly).
    pub(crate) fn may_record(self) -> bool {
        matches!(
            self,
            Self::Immediate
                | Self::Notified
                | Self::NotifiedMessy
                | Self::Throttled429
                | Self::Unavailable503
                | Self::Slow
                | Self::TooLate
                | Self::BreaksMidway
        )
    }
}
