//! What the emulator answers: the behaviours a script lists, and the script itself.

use std::time::Duration;

#[cfg(doc)]
use crate::Emulator;

/// What the emulator does with an accepted `updateRecordingStatus` request.
///
/// Scripts are lists of behaviours: each valid request consumes the next one, and the last one
/// repeats (see [`Emulator::script`]).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Behavior {
    /// `200`, `Location`, and an operation with status `completed`: the update took effect
    /// (the documented example answer).
    Complete,
    /// `200` and an operation with status `running`; after `delay`, the operation completes
    /// (the call's status is updated) and a `completed` notification is `POST`ed to the callback
    /// URL, shaped by `notify`.
    Running {
        /// How long after the response the operation completes.
        delay: Duration,
        /// How the notification is sent.
        notify: NotifyStyle,
    },
    /// Like [`Behavior::Running`], but the notification says `failed`, with a `resultInfo`
    /// carrying `code` and `subcode`; the call's status does not change.
    RunningThenFail {
        /// How long after the response the operation fails.
        delay: Duration,
        /// `resultInfo.code`.
        code: i64,
        /// `resultInfo.subcode`.
        subcode: i64,
    },
    /// `200` and an operation with status `failed` and this `resultInfo`.
    Failed {
        /// `resultInfo.code`.
        code: i64,
        /// `resultInfo.subcode`.
        subcode: i64,
        /// `resultInfo.message`.
        message: String,
    },
    /// Graph's throttling answer: the error envelope with `status` (`429` or `503`) and a
    /// `Retry-After` header.
    Throttle {
        /// The HTTP status; anything that is not a 4xx or 5xx status is sent as `429`.
        status: u16,
        /// The `Retry-After` header.
        retry_after: RetryAfter,
    },
    /// A server error envelope with `status` (`500`, `502`, `504`); anything that is not a 5xx
    /// status is sent as `500`.
    ServerError {
        /// The HTTP status.
        status: u16,
    },
    /// Waits `delay` before doing `then`.
    Slow {
        /// How long to wait before answering.
        delay: Duration,
        /// What to do afterwards.
        then: Box<Self>,
    },
    /// `200` with a body that is not an operation.
    Malformed(MalformedBody),
    /// `403` with `{"error":{"code":"8506","message":"API call not allowed for non-Compliance
    /// Recording call",…}}`, Graph's answer for calls that are not policy-recording calls.
    Forbidden8506,
    /// Closes the TCP connection without answering; recorded with `http_status` `0`.
    DropConnection,
    /// Sends `200` with a `Content-Length` larger than the bytes that follow, then closes the
    /// connection.
    TruncatedBody,
    /// `200` and a `completed` operation, but the `Location` header points to
    /// `https://evil.example/…`: clients must never follow it with their token.
    ForeignLocation,
    /// Like [`Behavior::Complete`]; then, `after` later, Graph hangs up the call: a signed
    /// `terminated` notification goes to the callback URL (as
    /// [`Emulator::hang_up`](crate::Emulator::hang_up) sends), and every later request for the
    /// call is answered `404` with code `8522` ("Call not found").
    CompleteThenHangUp {
        /// How long after the response Graph hangs up.
        after: Duration,
    },
}

/// How a [`Behavior::Running`] notification is sent.
///
/// The default sends one notification in the documented `commsNotifications` shape (no legacy
/// `resource`), with ids as in the response (lower case with dashes), status `completed`, and
/// no `Authorization` header unless [`Emulator::sign_notifications_for`] was called.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct NotifyStyle {
    /// Sends the same notification body twice.
    pub duplicate: bool,
    /// After the final notification, also sends a stale one saying `running`.
    pub out_of_order: bool,
    /// Ids in resource paths are upper case without dashes, as Graph notifies them
    /// (`57DAB8B1894C409AB240BD8BEAE78896`).
    pub upper_dashless_ids: bool,
    /// Statuses are PascalCase (`Completed`), as in Graph's metadata.
    pub pascal_case: bool,
    /// Each notification also carries the legacy `resource` (`/app/calls/…/operations/…`)
    /// next to the documented `resourceUrl`, as real traffic does
    /// (`microsoftgraph/microsoft-graph-comms-samples#599`).
    pub legacy_resource: bool,
    /// The `Authorization` header value sent with notifications (e.g. `Bearer eyJ…`), if any.
    pub bearer: Option<String>,
}

impl NotifyStyle {
    /// Everything Graph may do at once: duplicated, followed by a stale `running`, upper-case
    /// dash-less ids, PascalCase statuses, the legacy `resource` next to `resourceUrl` (no
    /// `Authorization` header of its own).
    ///
    /// # Example
    /// ```
    /// use graph_emulator::NotifyStyle;
    ///
    /// let style = NotifyStyle::messy().with_bearer("Bearer eyJ0eXAi…");
    /// assert!(style.duplicate && style.out_of_order && style.upper_dashless_ids);
    /// assert!(style.pascal_case && style.legacy_resource);
    /// assert_eq!(style.bearer.as_deref(), Some("Bearer eyJ0eXAi…"));
    /// ```
    #[must_use]
    pub fn messy() -> Self {
        Self::default()
            .with_duplicate()
            .with_out_of_order()
            .with_upper_dashless_ids()
            .with_pascal_case()
            .with_legacy_resource()
    }

    /// Sets [`duplicate`](Self::duplicate).
    #[must_use]
    pub fn with_duplicate(mut self) -> Self {
        self.duplicate = true;
        self
    }

    /// Sets [`out_of_order`](Self::out_of_order).
    #[must_use]
    pub fn with_out_of_order(mut self) -> Self {
        self.out_of_order = true;
        self
    }

    /// Sets [`upper_dashless_ids`](Self::upper_dashless_ids).
    #[must_use]
    pub fn with_upper_dashless_ids(mut self) -> Self {
        self.upper_dashless_ids = true;
        self
    }

    /// Sets [`pascal_case`](Self::pascal_case).
    #[must_use]
    pub fn with_pascal_case(mut self) -> Self {
        self.pascal_case = true;
        self
    }

    /// Sets [`legacy_resource`](Self::legacy_resource).
    #[must_use]
    pub fn with_legacy_resource(mut self) -> Self {
        self.legacy_resource = true;
        self
    }

    /// Sets the `Authorization` header value sent with notifications (e.g. `Bearer eyJ…`).
    #[must_use]
    pub fn with_bearer(mut self, authorization: impl Into<String>) -> Self {
        self.bearer = Some(authorization.into());
        self
    }
}

/// The `Retry-After` header of a [`Behavior::Throttle`] answer.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum RetryAfter {
    /// Delta-seconds: `Retry-After: 7`.
    Seconds(u64),
    /// An IMF-fixdate this long from now, rounded up to the next whole second:
    /// `Retry-After: Fri, 27 Nov 2026 06:00:00 GMT`.
    HttpDate(Duration),
    /// No `Retry-After` header.
    None,
}

/// The body of a [`Behavior::Malformed`] answer.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum MalformedBody {
    /// An HTML error page, with `Content-Type: text/html`.
    Html,
    /// The operation's JSON cut in the middle, with `Content-Type: application/json`.
    TruncatedJson,
    /// An empty body.
    Empty,
}

/// A list of behaviours, walked one request at a time; the last one repeats.
#[derive(Debug)]
pub(crate) struct Script {
    behaviors: Vec<Behavior>,
    /// Where a per-call script is (the default script keeps one position per call instead).
    pub(crate) next: usize,
}

impl Script {
    pub(crate) fn new(behaviors: Vec<Behavior>) -> Self {
        Self { behaviors, next: 0 }
    }

    /// The behaviour at `position` (the last one repeats) and the position after it.
    pub(crate) fn at(&self, position: usize) -> (Behavior, usize) {
        let last = self.behaviors.len().saturating_sub(1);
        let index = position.min(last);
        let behavior = self
            .behaviors
            .get(index)
            .cloned()
            .unwrap_or(Behavior::Complete);
        (behavior, (index + 1).min(last))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_repeat_their_last_behavior() {
        let script = Script::new(vec![Behavior::Forbidden8506, Behavior::Complete]);
        let (first, next) = script.at(0);
        assert!(matches!(first, Behavior::Forbidden8506));
        let (second, next) = script.at(next);
        assert!(matches!(second, Behavior::Complete));
        let (third, _) = script.at(next);
        assert!(matches!(third, Behavior::Complete));
        assert!(matches!(
            Script::new(Vec::new()).at(7).0,
            Behavior::Complete
        ));
    }

    #[test]
    fn the_default_style_is_the_documented_shape() {
        let style = NotifyStyle::default();
        assert!(!style.duplicate && !style.out_of_order && !style.upper_dashless_ids);
        assert!(!style.pascal_case && !style.legacy_resource && style.bearer.is_none());
    }
}
