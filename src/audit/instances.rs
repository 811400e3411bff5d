//! [`verify_instances`]: one audit over the trails of several instances of a bot, where a call
//! must be held by one instance at a time.
//!
//! A compliance recorder runs as several instances for high availability, each writing its own
//! trail. Each trail is replayed on its own by [`verify`]. Then the trails are read together,
//! because one rule is invisible to any single trail: the registry of live calls that keeps one
//! typestate value per call (G7) is per process, so only the trails side by side show two
//! instances holding the same call at once. [`verify_instances`] says what holding means and
//! how time is compared.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use chrono::{DateTime, Utc};

use super::{AuditEvent, AuditKind, Rule, Verified, Violation, verify};
use crate::protocol::CallState;
use crate::types::normalize_id;

/// One instance's trail, named for the reports (a file name, a host name).
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct InstanceTrail<'a> {
    /// The instance's name, as reports should show it.
    pub name: &'a str,
    /// Its events, in trail order.
    pub events: &'a [AuditEvent],
}

impl<'a> InstanceTrail<'a> {
    /// The trail `events` of the instance called `name`.
    pub fn new(name: &'a str, events: &'a [AuditEvent]) -> Self {
        Self { name, events }
    }
}

/// What [`verify_instances`] found: each trail's own verdict, and the calls that two
/// instances held at once.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct InstancesReport {
    /// Each trail's [`verify`] result, in the order the trails were given.
    pub trails: Vec<Result<Verified, Violation>>,
    /// Every pair of holds of one call by two instances that overlap in time, sorted by call
    /// id, then by the time the later of the two began.
    pub overlaps: Vec<Overlap>,
}

impl InstancesReport {
    /// Whether the rule holds: every trail on its own, and no call held by two instances at
    /// once.
    pub fn holds(&self) -> bool {
        self.overlaps.is_empty() && self.trails.iter().all(Result::is_ok)
    }
}

/// One instance's hold on a call, from the event that made the call live in its trail to the
/// event that released it (see [`verify_instances`] for what holding means).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Hold {
    /// The position of the instance's trail among those given to [`verify_instances`].
    pub instance: usize,
    /// The instance's name.
    pub name: String,
    /// When the hold began: the `at` of the event at [`from_index`](Self::from_index).
    pub from: DateTime<Utc>,
    /// The position in its trail of the event that began the hold.
    pub from_index: usize,
    /// When the hold ended: the `at` of the event at [`until_index`](Self::until_index). For
    /// an [`open`](Self::open) hold, the trail's last event (or `from`, if that is later).
    pub until: DateTime<Utc>,
    /// The position of the event that released the call, or of the trail's last event for an
    /// open hold.
    pub until_index: usize,
    /// The trail ends with the call still held: the hold lasts up to and including `until`.
    pub open: bool,
}

impl Hold {
    /// Whether the hold had not yet ended at `at`.
    fn lasts_past(&self, at: DateTime<Utc>) -> bool {
        at < self.until || (self.open && at == self.until)
    }

    /// Whether the two holds overlap: each began before the other ended.
    fn overlaps(&self, other: &Self) -> bool {
        self.lasts_past(other.from) && other.lasts_past(self.from)
    }
}

impl fmt::Display for Hold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} from {} (event {})",
            self.name,
            self.from.to_rfc3339(),
            self.from_index
        )?;
        if self.open {
            write!(
                f,
                " to its trail's end at {} (still held)",
                self.until.to_rfc3339()
            )
        } else {
            write!(
                f,
                " until {} (event {})",
                self.until.to_rfc3339(),
                self.until_index
            )
        }
    }
}

/// A call held by two instances at overlapping times ([`Rule::LiveInTwoInstances`]): the call
/// and both holds.
///
/// Not a [`Violation`], which names one line of one trail: this breach exists only between two
/// trails, so it names both, with the interval each held the call. Its code is in [`Rule`]
/// with the others, so that tools and dashboards read one vocabulary.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("call {call_id}: held by {first} and by {second}: {}", self.rule())]
#[non_exhaustive]
pub struct Overlap {
    /// The call, normalised (lower case, no dashes), whatever spelling each trail used.
    pub call_id: String,
    /// The hold that began first (the one given first, if they began at the same instant).
    pub first: Hold,
    /// The hold that began while `first` lasted.
    pub second: Hold,
}

impl Overlap {
    /// The rule broken: always [`Rule::LiveInTwoInstances`].
    pub fn rule(&self) -> Rule {
        Rule::LiveInTwoInstances
    }
}

/// Verifies the trails of several instances of one bot: each on its own with [`verify`], then
/// all together, where a call held by two instances at overlapping times is an [`Overlap`]
/// ([`Rule::LiveInTwoInstances`]).
///
/// The check across trails runs over every trail, including one that broke the rule on its
/// own: one violation does not hide another. Calls are keyed by their normalised id, so a GUID
/// in one trail and Graph's upper-case dash-less spelling in another are the same call. The
/// cost is `O(n log n)` in the number of holds, plus the number of instances for each hold.
///
/// With one trail, the result is that trail's [`verify`] and no overlap.
///
/// # Holding a call
///
/// An instance *holds* a call, in its trail, from the event after which the call (keyed by its
/// normalised id, whatever spelling a line uses) is `PendingRecording` or `Recording` or has a
/// retention capability alive, until the event after which it is none of these: it left for
/// `NotRecording`, `Failed` or `Ended` with every capability ended, its retention was revoked,
/// or Graph said the call was gone (`call_terminated`).
///
/// `PendingRecording` counts, not only `Recording` and live retention: an instance in it has a
/// `recording` request out and may be told `completed` at any moment. If another instance
/// records meanwhile, or reports `notRecording` meanwhile, the two requests reach Graph in an
/// order neither trail shows, and Graph may be told "not recording" while media is persisted.
/// A handover is therefore clean only when one instance releases the call (its `notRecording`
/// or `failed` answered and the call out of `Recording`) before the other begins.
///
/// # Time
///
/// Holds are compared on the events' `at` stamps, each from its own instance's clock: skew
/// between the machines can hide an overlap shorter than the skew, or show one that was not.
/// Two holds overlap when each began before the other ended; one that ends at the very instant
/// the other begins does not. A trail that ends with the call still held (a crash, or a copy
/// taken while the bot ran; [`Verified::open`] lists it) holds it up to and including its last
/// event, the last evidence that the instance was alive: an instance taking over after that is
/// not flagged, and the open call is reported with the first trail.
///
/// # Example
/// ```
/// use recording_status::CallState;
/// use recording_status::audit::{AuditEvent, AuditKind, InstanceTrail, Rule, verify_instances};
///
/// // A transition of `call` at second `s` past 09:00.
/// let moved = |call: &str, s: u32, from, to| {
///     let mut event = AuditEvent::now(
///         call,
///         AuditKind::Transition { from, to, reason: "example".into() },
///     );
///     event.at = format!("2025-06-02T09:00:{s:02}Z").parse().unwrap();
///     event
/// };
/// use CallState::{NotRecording, PendingRecording};
/// // Instance a asks to record at 09:00:01 and gives up at 09:00:05; instance b asks to
/// // record the same call, spelled as Graph spells it, at 09:00:03.
/// let a = [
///     moved("57dab8b1-894c-409a-b240-bd8beae78896", 1, NotRecording, PendingRecording),
///     moved("57dab8b1-894c-409a-b240-bd8beae78896", 5, PendingRecording, CallState::Failed),
/// ];
/// let b = [moved("57DAB8B1894C409AB240BD8BEAE78896", 3, NotRecording, PendingRecording)];
///
/// let report = verify_instances(&[InstanceTrail::new("a", &a), InstanceTrail::new("b", &b)]);
/// assert!(!report.holds());
/// let overlap = &report.overlaps[0];
/// assert_eq!(overlap.rule(), Rule::LiveInTwoInstances);
/// assert_eq!(overlap.call_id, "57dab8b1894c409ab240bd8beae78896");
/// assert_eq!((overlap.first.name.as_str(), overlap.second.name.as_str()), ("a", "b"));
/// assert!(overlap.second.open);
///
/// // Had a released the call at 09:00:02, before b began, the trails would hold together.
/// let handed_over = [a[0].clone(), moved(&a[1].call_id, 2, PendingRecording, CallState::Failed)];
/// let report = verify_instances(&[
///     InstanceTrail::new("a", &handed_over),
///     InstanceTrail::new("b", &b),
/// ]);
/// assert!(report.holds());
/// ```
pub fn verify_instances(trails: &[InstanceTrail<'_>]) -> InstancesReport {
    let mut holds: BTreeMap<String, Vec<Hold>> = BTreeMap::new();
    for (instance, trail) in trails.iter().enumerate() {
        for (call_id, hold) in holds_in(instance, trail) {
            holds.entry(call_id).or_default().push(hold);
        }
    }
    InstancesReport {
        trails: trails.iter().map(|t| verify(t.events)).collect(),
        overlaps: holds
            .into_iter()
            .flat_map(|(call_id, holds)| overlaps_of(&call_id, holds))
            .collect(),
    }
}

/// What a trail says about one call so far, as far as holding it goes.
#[derive(Default)]
struct Held {
    state: Option<CallState>,
    live: BTreeSet<u64>,
    /// When and at which event the current hold began, if the call is held.
    since: Option<(DateTime<Utc>, usize)>,
}

impl Held {
    fn is_held(&self) -> bool {
        matches!(
            self.state,
            Some(CallState::PendingRecording | CallState::Recording)
        ) || !self.live.is_empty()
    }
}

/// Every hold of every call in one trail, in trail order, keyed by normalised call id.
fn holds_in(instance: usize, trail: &InstanceTrail<'_>) -> Vec<(String, Hold)> {
    let hold = |from: (DateTime<Utc>, usize), until: DateTime<Utc>, until_index, open| Hold {
        instance,
        name: trail.name.to_owned(),
        from: from.0,
        from_index: from.1,
        until: until.max(from.0),
        until_index,
        open,
    };
    let mut calls: BTreeMap<String, Held> = BTreeMap::new();
    let mut holds = Vec::new();
    // Entries that are not about a call (a notification body's acceptance) have no id.
    for (index, e) in trail
        .events
        .iter()
        .enumerate()
        .filter(|(_, e)| !e.call_id.is_empty())
    {
        let call_id = normalize_id(&e.call_id);
        let c = calls.entry(call_id.clone()).or_default();
        match &e.kind {
            AuditKind::Transition { to, .. } => c.state = Some(*to),
            AuditKind::RetentionStarted { capability, .. } => {
                c.live.insert(*capability);
            }
            AuditKind::RetentionEnded { capability } => {
                c.live.remove(capability);
            }
            // Revoked capabilities cannot write (G8); Graph's end of the call revokes too, and
            // so does the crash a later run recovers the call from.
            AuditKind::RetentionRevoked { .. }
            | AuditKind::CallTerminated { .. }
            | AuditKind::CallRecovered { .. } => {
                c.live.clear();
                c.state = Some(CallState::Ended);
            }
            _ => {}
        }
        match (c.is_held(), c.since) {
            (true, None) => c.since = Some((e.at, index)),
            (false, Some(since)) => {
                c.since = None;
                holds.push((call_id, hold(since, e.at, index, false)));
            }
            _ => {}
        }
    }
    if let Some((last_index, last)) = trail.events.iter().enumerate().next_back() {
        for (call_id, c) in calls {
            if let Some(since) = c.since {
                holds.push((call_id, hold(since, last.at, last_index, true)));
            }
        }
    }
    holds
}

/// The overlapping pairs among one call's holds, from any trails.
///
/// The holds of one trail follow each other, so of all the holds of one instance that began
/// no later than a given one, only the latest can still last: each hold is compared with the
/// latest of every other instance, never with all of them.
fn overlaps_of(call_id: &str, mut holds: Vec<Hold>) -> Vec<Overlap> {
    holds.sort_by(|a, b| {
        (a.from, a.instance, a.from_index).cmp(&(b.from, b.instance, b.from_index))
    });
    let mut latest: BTreeMap<usize, usize> = BTreeMap::new();
    let mut overlaps = Vec::new();
    for (i, hold) in holds.iter().enumerate() {
        for (_, &j) in latest
            .iter()
            .filter(|(instance, _)| **instance != hold.instance)
        {
            let earlier = &holds[j];
            if earlier.overlaps(hold) {
                overlaps.push(Overlap {
                    call_id: call_id.to_owned(),
                    first: earlier.clone(),
                    second: hold.clone(),
                });
            }
        }
        latest.insert(hold.instance, i);
    }
    overlaps
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: u32) -> DateTime<Utc> {
        format!("2025-06-02T09:00:{s:02}Z").parse().unwrap()
    }

    fn event(call: &str, s: u32, kind: AuditKind) -> AuditEvent {
        let mut e = AuditEvent::now(call, kind);
        e.at = at(s);
        e
    }

    fn to(call: &str, s: u32, to: CallState) -> AuditEvent {
        event(
            call,
            s,
            AuditKind::Transition {
                from: CallState::NotRecording,
                to,
                reason: String::new(),
            },
        )
    }

    const CALL: &str = "57dab8b1894c409ab240bd8beae78896";

    #[test]
    fn a_hold_ends_when_the_call_is_neither_pending_nor_recording_nor_retained() {
        let trail = [
            to(CALL, 1, CallState::PendingRecording),
            to(CALL, 2, CallState::Recording),
            event(
                CALL,
                3,
                AuditKind::RetentionStarted {
                    capability: 1,
                    owned: true,
                },
            ),
            // A forged exit with retention alive: the capability still holds the call.
            to(CALL, 4, CallState::NotRecording),
            event(CALL, 6, AuditKind::RetentionEnded { capability: 1 }),
            to(CALL, 8, CallState::Failed),
        ];
        let holds = holds_in(0, &InstanceTrail::new("a", &trail));
        assert_eq!(holds.len(), 1, "{holds:?}");
        let (call, hold) = &holds[0];
        assert_eq!(call, CALL);
        assert_eq!((hold.from, hold.from_index), (at(1), 0));
        assert_eq!((hold.until, hold.until_index, hold.open), (at(6), 4, false));
    }

    #[test]
    fn revocation_and_graphs_end_release_the_call() {
        for release in [
            AuditKind::RetentionRevoked { outstanding: 1 },
            AuditKind::CallTerminated {
                code: None,
                subcode: None,
                message: None,
            },
        ] {
            let trail = [
                to(CALL, 1, CallState::Recording),
                event(
                    CALL,
                    2,
                    AuditKind::RetentionStarted {
                        capability: 1,
                        owned: true,
                    },
                ),
                event(CALL, 3, release.clone()),
            ];
            let holds = holds_in(0, &InstanceTrail::new("a", &trail));
            assert_eq!(holds.len(), 1, "{release:?}");
            assert_eq!((holds[0].1.until, holds[0].1.open), (at(3), false));
        }
    }

    #[test]
    fn an_open_hold_lasts_to_the_trails_last_event_inclusive() {
        let trail = [
            to(CALL, 1, CallState::PendingRecording),
            to("401f5d006a7e4d358d6b1f2f3e4d5c6b", 4, CallState::Failed),
        ];
        let holds = holds_in(0, &InstanceTrail::new("a", &trail));
        let hold = &holds[0].1;
        assert_eq!((hold.until, hold.until_index, hold.open), (at(4), 1, true));
        assert!(hold.lasts_past(at(4)));
        assert!(!hold.lasts_past(at(5)));
    }

    #[test]
    fn holds_that_touch_do_not_overlap_and_holds_that_cross_do() {
        let a = [
            to(CALL, 1, CallState::PendingRecording),
            to(CALL, 3, CallState::Failed),
        ];
        let touching = [
            to(CALL, 3, CallState::PendingRecording),
            to(CALL, 4, CallState::Failed),
        ];
        let crossing = [
            to(CALL, 2, CallState::PendingRecording),
            to(CALL, 4, CallState::Failed),
        ];
        let run = |b: &[AuditEvent]| {
            verify_instances(&[InstanceTrail::new("a", &a), InstanceTrail::new("b", b)]).overlaps
        };
        assert!(run(&touching).is_empty());
        let overlaps = run(&crossing);
        assert_eq!(overlaps.len(), 1);
        assert_eq!(
            (overlaps[0].first.instance, overlaps[0].second.instance),
            (0, 1)
        );
    }

    #[test]
    fn each_hold_is_compared_with_every_other_instance() {
        // Three instances hold the call at once: three pairs.
        let trail = [to(CALL, 1, CallState::Recording)];
        let trails = [
            InstanceTrail::new("a", &trail),
            InstanceTrail::new("b", &trail),
            InstanceTrail::new("c", &trail),
        ];
        let pairs: Vec<(usize, usize)> = verify_instances(&trails)
            .overlaps
            .iter()
            .map(|o| (o.first.instance, o.second.instance))
            .collect();
        assert_eq!(pairs, [(0, 1), (0, 2), (1, 2)]);
    }

    #[test]
    fn time_running_backwards_is_not_a_panic() {
        let a = [
            to(CALL, 9, CallState::Recording),
            to(CALL, 1, CallState::NotRecording),
        ];
        let b = [
            to(CALL, 5, CallState::Recording),
            to("", 0, CallState::Ended),
        ];
        let report = verify_instances(&[InstanceTrail::new("a", &a), InstanceTrail::new("b", &b)]);
        assert_eq!(report.trails.len(), 2);
    }

    #[test]
    fn an_overlap_says_both_holds_and_the_rule() {
        let a = [
            to(CALL, 1, CallState::Recording),
            to("401f5d006a7e4d358d6b1f2f3e4d5c6b", 5, CallState::Failed),
        ];
        let b = [
            to(CALL, 2, CallState::PendingRecording),
            to(CALL, 3, CallState::Failed),
        ];
        let report = verify_instances(&[InstanceTrail::new("a", &a), InstanceTrail::new("b", &b)]);
        assert_eq!(
            report.overlaps[0].to_string(),
            format!(
                "call {CALL}: held by a from 2025-06-02T09:00:01+00:00 (event 0) to its trail's \
                 end at 2025-06-02T09:00:05+00:00 (still held) and by b from \
                 2025-06-02T09:00:02+00:00 (event 0) until 2025-06-02T09:00:03+00:00 (event 1): \
                 live in two instances at overlapping times (G7/live-in-two-instances)"
            )
        );
    }
}
