//! [`check_checkpoints`]: a trail against the checkpoints an auditor holds.

use std::collections::HashMap;
use std::fmt;

use chrono::{DateTime, Utc};

use super::{SignedCheckpoint, VerifierKey};
use crate::audit::chain::GENESIS;
use crate::audit::{Rule, Trail};

/// A checkpoint the trail contradicts, or that proves nothing: which one, and why.
///
/// `Display` names it as `checkpoint #N (seq S, signed T)`, `N` counted from 1 in the order
/// the checkpoints were given (the witness file's order).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CheckpointProblem {
    /// The checkpoint's position among those given, from 0.
    pub checkpoint: usize,
    /// Its `seq`.
    pub seq: u64,
    /// Its time.
    pub at: DateTime<Utc>,
    /// [`Rule::CheckpointTruncated`], [`Rule::CheckpointContradicted`],
    /// [`Rule::CheckpointUnverified`] or [`Rule::CheckpointForeign`].
    pub rule: Rule,
    /// The event (index into the trail) where the trail contradicts it: the line at its
    /// `seq` for a rewrite, the trail's last event for a cut. `None` for a checkpoint that
    /// proves nothing about this trail (unverified, foreign).
    pub index: Option<usize>,
    /// What is wrong, in words.
    pub detail: String,
}

impl fmt::Display for CheckpointProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "checkpoint #{} (seq {}, signed {}): {}",
            self.checkpoint + 1,
            self.seq,
            self.at.to_rfc3339(),
            self.detail
        )
    }
}

/// What [`check_checkpoints`] found: the witnessed prefix, the unwitnessed tail, and every
/// checkpoint the trail contradicts or that proves nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CheckpointReport {
    /// The origin the checkpoints were held to: the one given, or else that of the first
    /// checkpoint whose signature verifies.
    pub origin: Option<String>,
    /// Checkpoints that verify and that the trail agrees with.
    pub holding: usize,
    /// The `seq` up to which the trail is witnessed: the largest of the holding checkpoints'
    /// (`0`: none holds).
    pub witnessed_seq: u64,
    /// The event (index into the trail) at [`witnessed_seq`](Self::witnessed_seq).
    pub witnessed_index: Option<usize>,
    /// The holding checkpoint that witnessed it (its position among those given, from 0).
    pub witnessed_by: Option<usize>,
    /// When that checkpoint was signed.
    pub witnessed_at: Option<DateTime<Utc>>,
    /// The `seq` of the trail's last chained line (`0`: none).
    pub trail_seq: u64,
    /// Event lines after the witnessed prefix: the unwitnessed tail, which can still be cut
    /// or rewritten unseen. (Lines without `seq` and `chain` are covered by no checkpoint and
    /// not counted here: the chain's own check refuses them.)
    pub unwitnessed: usize,
    /// The index of the tail's first event, if there is a tail.
    pub unwitnessed_from: Option<usize>,
    /// Every checkpoint the trail contradicts, or that proves nothing, in the order given.
    pub problems: Vec<CheckpointProblem>,
}

impl CheckpointReport {
    /// Whether no checkpoint is contradicted and every one verifies (the tail may still be
    /// long: see [`unwitnessed`](Self::unwitnessed)).
    pub fn holds(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Checks `trail` against `checkpoints`, signed by `key`, of the trail named `origin` (or,
/// without one, of the origin of the first checkpoint whose signature verifies).
///
/// For each checkpoint, in order: its signature by `key` ([`Rule::CheckpointUnverified`]
/// otherwise: another key signed it, or the note was altered), its origin
/// ([`Rule::CheckpointForeign`]: another trail's), that the trail reaches its `seq`
/// ([`Rule::CheckpointTruncated`]: the trail was cut after the checkpoint was witnessed),
/// and that the trail's line at that `seq` has the checkpoint's chain value
/// ([`Rule::CheckpointContradicted`]: the trail was rewritten and rechained after it, or
/// the checkpoint is of another trail with the same origin). Then the report says up to
/// where the trail is witnessed, and how many lines follow unwitnessed.
///
/// This compares the chain values the lines carry: it proves something only about a trail
/// whose chain holds. Run [`check_chain`](crate::audit::check_chain) on the same bytes
/// (under the trail's key, if it has one) as well; `recording-audit verify` runs both.
///
/// # Example: a trail cut after its checkpoint
/// ```
/// use std::sync::Arc;
/// use recording_status::audit::{
///     AuditEvent, AuditKind, AuditSink, CheckpointFile, CheckpointOptions, CheckpointSigner,
///     FileWitness, JsonLinesSink, Rule, check_checkpoints,
/// };
///
/// let dir = tempfile::tempdir()?;
/// let (path, witnessed) = (dir.path().join("audit.jsonl"), dir.path().join("checkpoints.txt"));
/// let signer = CheckpointSigner::new("bot-1", [7; 32])?;
/// let key = signer.verifier_key();
/// let witness = Arc::new(FileWitness::open(&witnessed)?);
/// let sink = JsonLinesSink::options()
///     .checkpoints(CheckpointOptions::new("example.com/bot-1/audit", signer, witness)?.every_events(3))
///     .open(&path)?;
/// for capability in 1..=4 {
///     sink.record(&AuditEvent::now("c1", AuditKind::RetentionEnded { capability }))?;
/// }
/// drop(sink);
/// let checkpoints: Vec<_> = CheckpointFile::read(&witnessed)?.notes.into_iter().map(|n| n.checkpoint).collect();
///
/// let report = check_checkpoints(&JsonLinesSink::read(&path)?, &checkpoints, &key, None);
/// assert!(report.holds());
/// assert_eq!((report.witnessed_seq, report.unwitnessed), (3, 1));
///
/// // Cut after line 2: before the checkpoint of line 3.
/// let text = std::fs::read_to_string(&path)?;
/// let cut: String = text.lines().take(2).map(|l| format!("{l}\n")).collect();
/// std::fs::write(&path, cut)?;
/// let report = check_checkpoints(&JsonLinesSink::read(&path)?, &checkpoints, &key, None);
/// assert_eq!(report.problems[0].rule, Rule::CheckpointTruncated);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn check_checkpoints(
    trail: &Trail,
    checkpoints: &[SignedCheckpoint],
    key: &VerifierKey,
    origin: Option<&str>,
) -> CheckpointReport {
    // Each `seq` to its event, the first if a broken trail repeats one.
    let mut at_seq = HashMap::new();
    let mut trail_seq = 0;
    let mut last_chained = None;
    for (index, seq) in trail.seqs.iter().enumerate() {
        if let Some(seq) = *seq {
            at_seq.entry(seq).or_insert(index);
            trail_seq = trail_seq.max(seq);
            last_chained = Some(index);
        }
    }
    let mut report = CheckpointReport {
        origin: origin.map(str::to_owned),
        trail_seq,
        ..CheckpointReport::default()
    };
    for (number, signed) in checkpoints.iter().enumerate() {
        let claimed = signed.checkpoint();
        let problem = |rule, index, detail: String| CheckpointProblem {
            checkpoint: number,
            seq: claimed.seq(),
            at: claimed.at(),
            rule,
            index,
            detail,
        };
        let checkpoint = match signed.verify(key) {
            Ok(c) => c,
            Err(e) => {
                report.problems.push(problem(
                    Rule::CheckpointUnverified,
                    None,
                    format!("{e}: it proves nothing"),
                ));
                continue;
            }
        };
        let expected = report
            .origin
            .get_or_insert_with(|| checkpoint.origin().to_owned());
        if checkpoint.origin() != expected {
            let detail = format!(
                "of another trail: origin {:?}, this trail's is {expected:?}",
                checkpoint.origin()
            );
            report
                .problems
                .push(problem(Rule::CheckpointForeign, None, detail));
            continue;
        }
        let seq = checkpoint.seq();
        let found = if seq == 0 {
            Some((None, GENESIS))
        } else {
            at_seq
                .get(&seq)
                .map(|&i| (Some(i), trail.chains[i].unwrap_or(GENESIS)))
        };
        let Some((index, chain)) = found else {
            let detail = format!(
                "the trail ends at seq {trail_seq}, before this checkpoint: cut after it was \
                 witnessed"
            );
            let last = last_chained.or(trail.events.len().checked_sub(1));
            report
                .problems
                .push(problem(Rule::CheckpointTruncated, last, detail));
            continue;
        };
        if chain != *checkpoint.head() {
            let line = index.map_or(0, |i| trail.lines[i]);
            let detail = format!(
                "line {line} (seq {seq}) has another chain value: the trail was rewritten \
                 and rechained after this checkpoint, or it is another trail's"
            );
            report
                .problems
                .push(problem(Rule::CheckpointContradicted, index, detail));
            continue;
        }
        report.holding += 1;
        if report.witnessed_by.is_none() || seq > report.witnessed_seq {
            report.witnessed_seq = seq;
            report.witnessed_index = index;
            report.witnessed_by = Some(number);
            report.witnessed_at = Some(checkpoint.at());
        }
    }
    let tail: Vec<usize> = trail
        .seqs
        .iter()
        .enumerate()
        .filter(|(_, seq)| seq.is_some_and(|s| s > report.witnessed_seq))
        .map(|(i, _)| i)
        .collect();
    report.unwitnessed = tail.len();
    report.unwitnessed_from = tail.first().copied();
    report
}
