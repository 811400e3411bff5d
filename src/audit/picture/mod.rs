//! The auditor's pictures, as self-contained SVG pages to print: one call's life
//! ([`timeline`]) and every call of a trail on one page ([`trail_timeline`]).
//!
//! Both pages have a fixed width (1100 px, A4 landscape at 96 dpi), a white background and
//! black text; colour only adds to what the words say (a violation is also written `✗`).
//! Each has a labelled time axis (round ticks in µs, ms or s since its first event, whose UTC
//! instant is written once) and a legend explaining every mark and line style. The rule's
//! checkpoints (G1: the completed acknowledgement before `Recording` and the first capability;
//! G2: the last capability's end before `notRecording` or `failed`) carry their gaps as
//! numbers computed from the events' timestamps, in badges and words whose size does not
//! depend on the axis's scale: a 0.1 ms gap on a five-minute axis is as legible as a long one.
//!
//! Every text from the trail (call ids, statuses) is escaped, and characters XML cannot hold
//! are replaced, so that a hostile trail cannot inject markup or break the page. The output
//! depends on the events alone: one trail, one picture, byte for byte.
//!
//! Parts: the vocabulary of the page (`svg`: axis, legend, escaping, durations), the
//! checkpoints and per-call verification (`checkpoints`), and the two views (`call`,
//! `trail`).

mod call;
mod checkpoints;
mod svg;
mod trail;

#[cfg(test)]
mod tests;

use super::AuditEvent;

/// Draws one call's life as an SVG page an auditor can print; `None` if the trail has no
/// event for `call` (any spelling of its id).
///
/// The page shows:
///
/// - a heading: the call, its events and their lines in the trail, and whether the rule holds
///   for it, verified on its own events with [`verify`](super::verify) (the call's first
///   violation, its line and rule, in red, if not);
/// - its states (`NotRecording`, `PendingRecording`, `Recording`, `Failed`, `Ended`) as bands
///   along a labelled time axis from the call's first event, each retention capability as a
///   bar from its start to its end (or revocation), each request, answer and notification as a
///   tick on a row of its own;
/// - each checkpoint of the rule as a numbered badge with a dashed line down to the axis, and,
///   below the axis, its gaps written out, e.g. "acknowledged (completed answer) 420 µs after
///   `recording` was sent", "first capability (#1) started 50.0 µs after the acknowledgement",
///   "last capability (#2) ended 110 µs before `notRecording` was sent". A gap whose events
///   are in the wrong order (by line, or by the clock) is a violation, written with `✗` in
///   red; so is a capability started outside `Recording` or alive when the end was reported;
/// - the violation found, as a `✗` badge at its event;
/// - a legend.
///
/// The gaps are measured, not judged: the verdict is the verifier's. A trail whose time goes
/// back across calls is caught by verifying the whole trail, which the command-line auditor
/// does next to drawing.
///
/// # Example
/// ```
/// use recording_status::audit::{AuditEvent, AuditKind, timeline};
/// use recording_status::CallState;
///
/// let trail = [AuditEvent::now(
///     "57dab8b1894c409ab240bd8beae78896",
///     AuditKind::Transition {
///         from: CallState::PendingRecording,
///         to: CallState::Recording,
///         reason: "no acknowledgement at all".into(),
///     },
/// )];
/// let svg = timeline(&trail, "57DAB8B1-894C-409A-B240-BD8BEAE78896").unwrap();
/// assert!(svg.contains("G1/recording-without-ack"));
/// assert!(timeline(&trail, "another call").is_none());
/// ```
pub fn timeline(events: &[AuditEvent], call: &str) -> Option<String> {
    call::draw(&checkpoints::of_call(events, call))
}

/// Draws every call of a trail on one SVG page an auditor can print: one compact row per
/// call, in order of first appearance, on one time axis from the trail's first event.
///
/// Each row shows the call's id, its events, capabilities and episodes, its states as a
/// strip, its checkpoints as dashed marks and their gaps written as numbers under the strip
/// (as [`timeline`] words them), and whether it holds. Events without a call (a notification
/// body's acceptance, an instance's stop) have no row.
///
/// # Violations
///
/// [`verify`](super::verify) stops at a trail's first violation, which would hide every
/// later call that breaks the rule. So each call is verified twice:
///
/// - the whole trail is verified, and its first violation is written in the heading with its
///   line, call and rule (it may be about no call, or about time going back across calls,
///   which only the whole trail shows);
/// - each call's events are verified on their own: the rule is per call, so a call's first
///   violation is found whatever other calls did. A call that breaks it gets a red row, a `✗`
///   at the offending event and a line naming it, its line in the trail and its rule; the
///   whole trail's first violation is added to its call's row if verifying the call alone
///   did not find it.
///
/// Lines are counted as events, one a line, as [`Violation::line`](super::Violation::line)
/// counts them.
///
/// # Example
/// ```
/// use recording_status::audit::{AuditEvent, AuditKind, trail_timeline};
/// use recording_status::CallState;
///
/// let forged = AuditEvent::now(
///     "c2",
///     AuditKind::Transition {
///         from: CallState::PendingRecording,
///         to: CallState::Recording,
///         reason: "no acknowledgement at all".into(),
///     },
/// );
/// let svg = trail_timeline(&[forged]);
/// assert!(svg.contains("1 of 1 break the rule"));
/// ```
pub fn trail_timeline(events: &[AuditEvent]) -> String {
    trail::draw(events)
}
