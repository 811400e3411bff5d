//! What the run did and whether the rule held, judged from the audit trail and the bytes on
//! disk, never from timing: under load a media task may start late or a completion may miss
//! its deadline, and neither breaks the rule.
//!
//! Every check says whether it ran; a check that needs the built-in emulator says so in
//! external mode instead of passing silently.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

use recording_status::audit::{AuditEvent, AuditKind, Verified, Violation, verify};
use recording_status::{CallId, CallState, RecordingStatus};

use crate::scenario::Scenario;

/// Rows of the per-call table printed in full; larger runs print the first ones and totals.
const TABLE_ROWS: usize = 60;

/// What the bot itself saw of one call.
#[derive(Debug, Clone)]
pub(crate) struct CallRun {
    pub(crate) id: CallId,
    /// The emulator's script for the call; `None` against an external endpoint.
    pub(crate) scenario: Option<Scenario>,
    pub(crate) frames: u64,
    /// Bytes the media tasks wrote through retention capabilities.
    pub(crate) bytes_written: u64,
    /// Bytes found in the call's media files afterwards.
    pub(crate) bytes_on_disk: u64,
    /// Why the call did not record, a media task's error, or a driver error; empty if none.
    pub(crate) note: String,
}

/// What the built-in emulator observed; `None` in external mode.
#[derive(Debug, Clone, Copy)]
pub(crate) struct EmulatorView {
    pub(crate) requests: usize,
    pub(crate) unauthorized: usize,
    pub(crate) notifications: usize,
    /// Notifications the webhook answered `401`/`403`.
    pub(crate) notifications_refused: usize,
}

/// Late completions the driver surfaced, and the reconciliations that failed.
#[derive(Debug, Clone, Default)]
pub(crate) struct LateView {
    pub(crate) surfaced: usize,
    pub(crate) reconcile_failures: Vec<String>,
}

/// What the trail says about one call.
#[derive(Debug, Default)]
struct FromTrail {
    /// Each request and what came back, in order (`recording 200 completed`, …).
    answers: Vec<String>,
    /// Whether the call ever entered `Recording`.
    recorded: bool,
    final_state: Option<CallState>,
    capabilities: usize,
}

fn abbreviate(status: RecordingStatus) -> &'static str {
    match status {
        RecordingStatus::Recording => "rec",
        RecordingStatus::NotRecording => "notRec",
        RecordingStatus::Failed => "failed",
    }
}

fn read_trail(events: &[AuditEvent]) -> HashMap<String, FromTrail> {
    let mut calls: HashMap<String, FromTrail> = HashMap::new();
    let mut requests: HashMap<&str, RecordingStatus> = HashMap::new();
    for event in events {
        if event.call_id.is_empty() {
            continue;
        }
        let call = calls.entry(event.call_id.clone()).or_default();
        match &event.kind {
            AuditKind::RequestSent {
                status,
                client_request_id,
                ..
            } => {
                requests.insert(client_request_id, *status);
            }
            AuditKind::ResponseReceived {
                client_request_id,
                http_status,
                outcome,
                ..
            } => {
                let status = requests.get(client_request_id.as_str());
                call.answers.push(format!(
                    "{} {http_status} {}",
                    status.map_or("?", |s| abbreviate(*s)),
                    format!("{outcome:?}").to_lowercase()
                ));
            }
            AuditKind::TransportFailed { kind, .. } => {
                call.answers.push(format!(
                    "no answer ({})",
                    format!("{kind:?}").to_lowercase()
                ));
            }
            AuditKind::OperationUpdate {
                matched: true,
                status,
                ..
            } => {
                call.answers
                    .push(format!("notified {}", status.as_deref().unwrap_or("?")));
            }
            AuditKind::LateCompletion { .. } => call.answers.push("late completed".to_owned()),
            AuditKind::Transition { to, .. } => {
                call.recorded |= *to == CallState::Recording;
                call.final_state = Some(*to);
            }
            AuditKind::RetentionStarted { .. } => call.capabilities += 1,
            _ => {}
        }
    }
    calls
}

/// One check and its verdict.
#[derive(Debug)]
pub(crate) struct Check {
    pub(crate) name: &'static str,
    pub(crate) verdict: Verdict,
}

#[derive(Debug)]
pub(crate) enum Verdict {
    Passed,
    Failed(Vec<String>),
    /// Why it could not run here.
    NotRun(&'static str),
}

impl Check {
    fn from_failures(name: &'static str, failures: Vec<String>) -> Self {
        let verdict = if failures.is_empty() {
            Verdict::Passed
        } else {
            Verdict::Failed(failures)
        };
        Self { name, verdict }
    }

    fn not_run(name: &'static str, why: &'static str) -> Self {
        Self {
            name,
            verdict: Verdict::NotRun(why),
        }
    }
}

/// Everything the run produced, to judge and print.
#[derive(Debug)]
pub(crate) struct Run<'a> {
    pub(crate) calls: &'a [CallRun],
    pub(crate) trail: &'a [AuditEvent],
    pub(crate) emulator: Option<EmulatorView>,
    pub(crate) late: LateView,
    /// Notifications the webhook refused (a token that did not validate).
    pub(crate) webhook_refused: usize,
    /// Whether the webhook validated tokens (not `--insecure-unauthenticated-webhook`).
    pub(crate) authenticated: bool,
}

/// The run judged: what the trail says per call (read once), and the checks.
#[derive(Debug)]
pub(crate) struct Judged {
    facts: HashMap<String, FromTrail>,
    pub(crate) checks: Vec<Check>,
}

/// The checks, each judged from the trail, the bytes on disk, and (when there is one) the
/// emulator's own record.
pub(crate) fn judge(run: &Run<'_>) -> Judged {
    let facts = read_trail(run.trail);
    let verified: Result<Verified, Violation> = verify(run.trail);
    let mut checks = Vec::new();

    checks.push(Check::from_failures(
        "the audit trail proves the rule (G1, G2, G7)",
        match &verified {
            Ok(_) => Vec::new(),
            Err(violation) => vec![violation.to_string()],
        },
    ));
    checks.push(Check::from_failures(
        "the trail leaves no call pending or recording, and no capability alive",
        match &verified {
            Ok(v) => v.open.iter().map(|open| format!("{open:?}")).collect(),
            Err(_) => vec!["not judged: the trail breaks the rule".to_owned()],
        },
    ));
    checks.push(Check::from_failures(
        "the bytes on disk are exactly the bytes written through capabilities",
        run.calls
            .iter()
            .filter(|c| c.bytes_on_disk != c.bytes_written)
            .map(|c| {
                format!(
                    "{}: {} bytes on disk, {} written through capabilities",
                    c.id, c.bytes_on_disk, c.bytes_written
                )
            })
            .collect(),
    ));
    checks.push(Check::from_failures(
        "media reached the disk only for calls the trail shows in Recording",
        run.calls
            .iter()
            .filter(|c| c.bytes_on_disk > 0)
            .filter(|c| !facts.get(c.id.normalized()).is_some_and(|f| f.recorded))
            .map(|c| {
                format!(
                    "{}: {} bytes on disk, never Recording",
                    c.id, c.bytes_on_disk
                )
            })
            .collect(),
    ));
    if run.authenticated {
        checks.push(Check::from_failures(
            "every notification acted on was authenticated (Bot Framework JWT, rotating keys)",
            match &verified {
                Ok(v) => v
                    .unauthenticated
                    .iter()
                    .map(|u| format!("{}: line {} via {}", u.call_id, u.index + 1, u.via))
                    .collect(),
                Err(_) => vec!["not judged: the trail breaks the rule".to_owned()],
            },
        ));
        checks.push(Check::from_failures(
            "no notification was refused by the webhook",
            if run.webhook_refused == 0 {
                Vec::new()
            } else {
                vec![format!("{} refused (see stderr)", run.webhook_refused)]
            },
        ));
    } else {
        checks.push(Check::not_run(
            "every notification acted on was authenticated",
            "--insecure-unauthenticated-webhook was given",
        ));
    }
    checks.push(Check::from_failures(
        "every late completion surfaced was reconciled",
        run.late.reconcile_failures.clone(),
    ));
    match run.emulator {
        Some(view) => {
            checks.push(Check::from_failures(
                "calls whose script never acknowledges recording (8506, failed operations, errors, unreadable answers) persisted nothing",
                run.calls
                    .iter()
                    .filter(|c| c.scenario.is_some_and(|s| !s.may_record()))
                    .filter(|c| c.bytes_on_disk > 0)
                    .map(|c| {
                        format!(
                            "{}: {:?} persisted {} bytes",
                            c.id, c.scenario, c.bytes_on_disk
                        )
                    })
                    .collect(),
            ));
            checks.push(Check::from_failures(
                "every request reached Graph with a bearer token",
                if view.unauthorized == 0 {
                    Vec::new()
                } else {
                    vec![format!("{} requests without one", view.unauthorized)]
                },
            ));
        }
        None => {
            checks.push(Check::not_run(
                "calls whose script never acknowledges recording persisted nothing",
                "needs the built-in emulator's script",
            ));
            checks.push(Check::not_run(
                "every request reached Graph with a bearer token",
                "needs the built-in emulator's record of requests",
            ));
        }
    }
    Judged { facts, checks }
}

/// Prints the per-call table, the totals and the checks; returns whether every check that ran
/// passed.
pub(crate) fn print(run: &Run<'_>, judged: &Judged) -> bool {
    let (facts, checks) = (&judged.facts, &judged.checks);
    let mut table = String::new();
    let _ = writeln!(
        table,
        "\n{:<36}  {:<14}  {:<13}  {:>6}  {:>8}  graph answered (from the trail)",
        "call", "script", "final state", "frames", "bytes"
    );
    for c in run.calls.iter().take(TABLE_ROWS) {
        let fact = facts.get(c.id.normalized());
        let script = c.scenario.map_or("-".to_owned(), |s| format!("{s:?}"));
        let state = fact
            .and_then(|f| f.final_state)
            .map_or("-".to_owned(), |s| s.to_string());
        let answers = fact.map_or(String::new(), |f| f.answers.join(" → "));
        let note = if c.note.is_empty() {
            String::new()
        } else {
            format!("  [{}]", c.note)
        };
        let _ = writeln!(
            table,
            "{:<36}  {script:<14}  {state:<13}  {:>6}  {:>8}  {answers}{note}",
            c.id.as_str(),
            c.frames,
            c.bytes_on_disk
        );
    }
    if run.calls.len() > TABLE_ROWS {
        let _ = writeln!(
            table,
            "… and {} more calls (see the trail, or `recording-audit summary`)",
            run.calls.len() - TABLE_ROWS
        );
    }
    print!("{table}");

    let mut by_state: BTreeMap<String, usize> = BTreeMap::new();
    for c in run.calls {
        let state = facts
            .get(c.id.normalized())
            .and_then(|f| f.final_state)
            .map_or("-".to_owned(), |s| s.to_string());
        *by_state.entry(state).or_default() += 1;
    }
    let recorded = run
        .calls
        .iter()
        .filter(|c| facts.get(c.id.normalized()).is_some_and(|f| f.recorded))
        .count();
    let capabilities: usize = facts.values().map(|f| f.capabilities).sum();
    println!("\nfinal states (trail): {by_state:?}");
    print!("recorded (trail): {recorded} calls, {capabilities} retention capabilities");
    let scripted = run
        .calls
        .iter()
        .filter(|c| c.scenario.is_some_and(Scenario::may_record))
        .count();
    if run.emulator.is_some() {
        print!(
            "; {scripted} scripted to be acknowledged (a shortfall is load: deadlines passed, not a rule broken)"
        );
    }
    println!();
    println!("late completions surfaced: {}", run.late.surfaced);
    let rotations = run
        .trail
        .iter()
        .filter(|e| matches!(e.kind, AuditKind::KeysRotated { .. }))
        .count();
    println!(
        "webhook: {} notifications refused; signing key rotations picked up (trail): {rotations}",
        run.webhook_refused
    );
    if let Some(view) = run.emulator {
        println!(
            "emulator: {} requests, {} notifications sent, {} refused by the webhook",
            view.requests, view.notifications, view.notifications_refused
        );
    }

    println!("\nchecks:");
    let mut passed = true;
    for check in checks {
        match &check.verdict {
            Verdict::Passed => println!("  ok       {}", check.name),
            Verdict::NotRun(why) => println!("  not run  {} ({why})", check.name),
            Verdict::Failed(failures) => {
                passed = false;
                println!("  FAILED   {} ({} cases)", check.name, failures.len());
                for f in failures.iter().take(20) {
                    println!("             - {f}");
                }
            }
        }
    }
    let ran = checks
        .iter()
        .filter(|c| !matches!(c.verdict, Verdict::NotRun(_)))
        .count();
    if passed {
        println!(
            "policy checks: all {ran} that ran passed, {} could not run here",
            checks.len() - ran
        );
    } else {
        println!("policy checks: FAILED");
    }
    passed
}
