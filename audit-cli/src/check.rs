//! The checks every subcommand runs on every trail before it reports on it: the hash chain
//! under the auditor's policy, then the recording rule. `verify` prints what they find;
//! `summary` and `timeline` print their report, then say which trail is broken.

use std::path::Path;

use recording_status::audit::{Rule, Trail, Violation, check_chain};

use crate::UNREADABLE;
use crate::cli::Checks;

/// The first thing wrong with a trail: the rule, the line, the call (empty for the chain's
/// rules, which are about the file's bytes, not a call) and what is wrong, in words.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct Problem {
    pub(crate) line: usize,
    pub(crate) call_id: String,
    pub(crate) rule: String,
    pub(crate) words: String,
}

impl Problem {
    fn chain(line: usize, rule: Rule, words: String) -> Self {
        Self {
            line,
            call_id: String::new(),
            rule: rule.code().to_owned(),
            words,
        }
    }

    /// `FILE:LINE: VIOLATION RULE (call ID): words`, the line every subcommand prints.
    pub(crate) fn line_for(&self, file: &str) -> String {
        format!(
            "{file}:{}: VIOLATION {} (call {}): {}",
            self.line,
            self.rule,
            if self.call_id.is_empty() {
                "-"
            } else {
                &self.call_id
            },
            self.words
        )
    }
}

/// The key and what the auditor accepts of a chain, read once for every file.
#[derive(Debug)]
pub(crate) struct Policy {
    key: Option<Vec<u8>>,
    allow_unchained: bool,
    allow_unkeyed: bool,
}

impl Policy {
    /// Reads the key file, if any.
    ///
    /// # Errors
    ///
    /// [`UNREADABLE`] when the key file cannot be read, after naming it on stderr.
    pub(crate) fn new(checks: &Checks) -> Result<Self, u8> {
        let key = match &checks.key_file {
            Some(path) => Some(std::fs::read(path).map_err(|e| {
                eprintln!("{}: {e}", path.display());
                UNREADABLE
            })?),
            None => None,
        };
        Ok(Self {
            key,
            allow_unchained: checks.allow_unchained,
            allow_unkeyed: checks.allow_unkeyed,
        })
    }

    /// Checks a trail's chain over its `bytes`: what to print for it, and the problem, if the
    /// chain breaks or the policy refuses it.
    ///
    /// A trail with no line at all has nothing to chain and is not refused.
    pub(crate) fn chain(&self, bytes: &[u8]) -> (String, Option<Problem>) {
        let summary = match check_chain(bytes, self.key.as_deref()) {
            Ok(summary) => summary,
            Err(b) => {
                return (
                    format!("broken at line {}: {}", b.line, b.kind),
                    Some(Problem::chain(
                        b.line,
                        Rule::ChainBroken,
                        b.kind.to_string(),
                    )),
                );
            }
        };
        if summary.lines == 0 {
            return ("empty (no line)".to_owned(), None);
        }
        if !summary.chained {
            let problem = (!self.allow_unchained).then(|| {
                Problem::chain(
                    1,
                    Rule::Unchained,
                    "no line has seq and chain, so lines can be added, edited or removed \
                     without a trace (--allow-unchained accepts it)"
                        .to_owned(),
                )
            });
            return ("absent (trail written without a chain)".to_owned(), problem);
        }
        let chained = summary.lines - summary.unchained;
        let mut text = format!("holds over {chained} lines");
        let mut problem = None;
        if summary.unchained > 0 {
            text.push_str(&format!(", after {} unchained lines", summary.unchained));
            if !self.allow_unchained {
                problem = Some(Problem::chain(
                    1,
                    Rule::Unchained,
                    format!(
                        "{} of {} lines have no seq and chain, so they can be added, edited or \
                         removed without a trace (--allow-unchained accepts it)",
                        summary.unchained, summary.lines
                    ),
                ));
            }
        }
        if summary.keyed {
            text.push_str(" (keyed)");
        } else {
            text.push_str(" (not keyed)");
            if problem.is_none() && !self.allow_unkeyed {
                problem = Some(Problem::chain(
                    1,
                    Rule::Unkeyed,
                    "the chain is plain SHA-256, which whoever can write the file can \
                     recompute (--key-file checks it under the bot's key; --allow-unkeyed \
                     accepts it)"
                        .to_owned(),
                ));
            }
        }
        (text, problem)
    }
}

/// The 1-based line of event `index` of `trail`.
pub(crate) fn line(trail: &Trail, index: usize) -> usize {
    trail.lines.get(index).copied().unwrap_or(index + 1)
}

/// A violation of the rule, with its line in the file.
pub(crate) fn violation(trail: &Trail, v: &Violation) -> Problem {
    Problem {
        line: line(trail, v.index),
        call_id: v.call_id.clone(),
        rule: v.rule.code().to_owned(),
        words: v.rule.words().to_owned(),
    }
}

/// After a report that is not `verify`'s: says on stderr that the trail at `file` is broken,
/// and that what was printed of it cannot be trusted.
pub(crate) fn warn(file: &Path, problem: &Problem) {
    eprintln!(
        "{}\n  the trail does not hold: what is printed of it above cannot be trusted",
        problem.line_for(&file.display().to_string())
    );
}
