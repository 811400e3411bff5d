//! The protocol as an executable specification.
//!
//! `#[typestate]` checks the automaton below at compile time: every state is reachable from the
//! initial state and can reach a final one. Every edge is implemented by calling the real API of
//! `recording_status` with the same source and target types, so if the crate lost an edge (or
//! moved it to another state) this file would stop compiling. The compile-fail suite
//! (tests/compile_fail.rs) covers the other direction: no extra edges.
//!
//! While compiling, the macro exports the automaton to `tests/generated/Protocol.uml`
//! (see `.cargo/config.toml`); `diagram_matches_docs` turns it into Mermaid with sorted lines
//! and compares it with the committed `docs/states.mmd`, which the crate docs include.

// The spec spells out `Protocol<State>` on purpose: each edge reads as source -> target.
#![allow(clippy::use_self)]

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use recording_status::audit::{MemorySink, verify};
use recording_status::response::Operation;
use recording_status::state::{CallState, TRANSITIONS};
use recording_status::testing::{ScriptedTransport, Step};
use recording_status::{AccessToken, Begin, Ended, Graph, StopError};
use typestate::typestate;

fn proof() -> recording_status::auth::Authenticated {
    recording_status::auth::Authenticated::danger_authenticated_elsewhere("protocol spec")
}

/// What every spec state carries besides the real call: the Graph link and the audit trail.
#[derive(Debug, Clone)]
pub struct Env {
    graph: Arc<Graph<ScriptedTransport>>,
    audit: Arc<MemorySink>,
}

impl Env {
    fn new() -> Self {
        Self {
            graph: Arc::new(Graph::new(ScriptedTransport::new(), AccessToken::new("t"))),
            audit: Arc::new(MemorySink::default()),
        }
    }

    fn script(&self, step: Step) -> &Graph<ScriptedTransport> {
        self.graph.transport().push(step);
        &self.graph
    }
}

#[typestate]
#[allow(clippy::new_ret_no_self, missing_docs, unreachable_pub)]
mod spec {
    use super::Env;
    use recording_status as rs;

    #[automaton]
    pub struct Protocol;

    #[state]
    pub struct NotRecording {
        pub call: rs::Call<rs::NotRecording>,
        pub env: Env,
    }

    #[state]
    pub struct PendingRecording {
        pub call: rs::Call<rs::PendingRecording>,
        pub env: Env,
    }

    #[state]
    pub struct Recording {
        pub call: rs::Call<rs::Recording>,
        pub env: Env,
    }

    #[state]
    pub struct Failed {
        pub call: rs::Call<rs::Failed>,
        pub env: Env,
    }

    pub trait NotRecording {
        fn start(env: Env) -> NotRecording;
        fn begin_recording(self, answer: rs::testing::Step) -> BeginOutcome;
        fn end(self) -> rs::Ended;
    }

    pub trait PendingRecording {
        fn handle_operation(self, status: &str) -> OperationOutcome;
        fn abandon(self) -> Failed;
        fn end(self) -> rs::Ended;
    }

    pub trait Recording {
        fn retain(&self);
        fn stop_recording(self, keep_handle: bool, answer: rs::testing::Step) -> StopOutcome;
        fn report_failure(self, answer: rs::testing::Step) -> Failed;
        fn end(self) -> rs::Ended;
    }

    pub trait Failed {
        fn begin_recording(self, answer: rs::testing::Step) -> BeginOutcome;
        fn end(self) -> rs::Ended;
    }

    pub enum BeginOutcome {
        Recording,
        PendingRecording,
        Failed,
    }

    pub enum OperationOutcome {
        Recording,
        PendingRecording,
        Failed,
    }

    pub enum StopOutcome {
        NotRecording,
        Recording,
        Failed,
    }
}

use spec::{
    BeginOutcome, Failed, FailedState, NotRecording, NotRecordingState, OperationOutcome,
    PendingRecording, PendingRecordingState, Protocol, Recording, RecordingState, StopOutcome,
};

fn begin_outcome(begin: Begin, env: Env) -> BeginOutcome {
    match begin {
        Begin::Recording(call) => BeginOutcome::Recording(Protocol {
            state: Recording { call, env },
        }),
        Begin::Pending(call) => BeginOutcome::PendingRecording(Protocol {
            state: PendingRecording { call, env },
        }),
        Begin::Failed(call) => BeginOutcome::Failed(Protocol {
            state: Failed { call, env },
        }),
        other => panic!("unexpected outcome {other:?}"),
    }
}

impl NotRecordingState for Protocol<NotRecording> {
    fn start(env: Env) -> Protocol<NotRecording> {
        let call = recording_status::Calls::new(env.audit.clone())
            .open("57dab8b1-894c-409a-b240-bd8beae78896".parse().unwrap())
            .unwrap();
        Protocol {
            state: NotRecording { call, env },
        }
    }

    fn begin_recording(self, answer: Step) -> BeginOutcome {
        let NotRecording { call, env } = self.state;
        let begin = call
            .begin_recording_blocking(env.script(answer))
            .expect("sent");
        begin_outcome(begin, env)
    }

    fn end(self) -> Ended {
        self.state.call.end()
    }
}

impl PendingRecordingState for Protocol<PendingRecording> {
    fn handle_operation(self, status: &str) -> OperationOutcome {
        let PendingRecording { call, env } = self.state;
        let op = Operation::from_json(&serde_json::json!({
            "clientContext": call.client_context(),
            "status": status,
        }))
        .unwrap();
        // Only a `failed` update sends something: a best-effort `failed` report.
        let graph = if status.eq_ignore_ascii_case("failed") {
            env.script(Step::completed())
        } else {
            &*env.graph
        };
        match call.handle_operation_blocking(graph, &proof(), &op) {
            Begin::Recording(call) => OperationOutcome::Recording(Protocol {
                state: Recording { call, env },
            }),
            Begin::Pending(call) => OperationOutcome::PendingRecording(Protocol {
                state: PendingRecording { call, env },
            }),
            Begin::Failed(call) => OperationOutcome::Failed(Protocol {
                state: Failed { call, env },
            }),
            other => panic!("unexpected outcome {other:?}"),
        }
    }

    fn abandon(self) -> Protocol<Failed> {
        let PendingRecording { call, env } = self.state;
        let call = call.abandon_blocking(env.script(Step::completed()));
        Protocol {
            state: Failed { call, env },
        }
    }

    fn end(self) -> Ended {
        self.state.call.end()
    }
}

impl RecordingState for Protocol<Recording> {
    fn retain(&self) {
        let retention = self.state.call.retention().expect("audited");
        drop(retention);
    }

    fn stop_recording(self, keep_handle: bool, answer: Step) -> StopOutcome {
        let Recording { call, env } = self.state;
        let handle = keep_handle.then(|| call.retention_handle().unwrap());
        // With a live handle the drain times out and nothing is sent, so nothing is scripted.
        let graph = if keep_handle {
            &*env.graph
        } else {
            env.script(answer)
        };
        let result = call.stop_recording_blocking(graph, Duration::from_millis(1));
        drop(handle);
        match result {
            Ok(call) => StopOutcome::NotRecording(Protocol {
                state: NotRecording { call, env },
            }),
            Err(StopError::StillRecording { call, .. }) => StopOutcome::Recording(Protocol {
                state: Recording { call: *call, env },
            }),
            Err(StopError::Unacknowledged { call }) => StopOutcome::Failed(Protocol {
                state: Failed { call, env },
            }),
            Err(other) => panic!("unexpected {other:?}"),
        }
    }

    fn report_failure(self, answer: Step) -> Protocol<Failed> {
        let Recording { call, env } = self.state;
        let call = match call.report_failure_blocking(env.script(answer), "broke", Duration::ZERO) {
            Ok(call) | Err(StopError::Unacknowledged { call }) => call,
            Err(other) => panic!("unexpected {other:?}"),
        };
        Protocol {
            state: Failed { call, env },
        }
    }

    fn end(self) -> Ended {
        self.state.call.end()
    }
}

impl FailedState for Protocol<Failed> {
    fn begin_recording(self, answer: Step) -> BeginOutcome {
        let Failed { call, env } = self.state;
        let begin = call
            .begin_recording_blocking(env.script(answer))
            .expect("sent");
        begin_outcome(begin, env)
    }

    fn end(self) -> Ended {
        self.state.call.end()
    }
}

/// Walks every edge of the spec at least once, through the real API.
#[test]
fn every_edge_runs_against_the_real_api() {
    let env = Env::new();
    let audit = env.audit.clone();

    // NotRecording -> Failed -> PendingRecording -> PendingRecording -> Failed
    let p = Protocol::<NotRecording>::start(env.clone());
    let BeginOutcome::Failed(p) = p.begin_recording(Step::graph_error(403, "8506")) else {
        panic!("403 must fail")
    };
    let BeginOutcome::PendingRecording(p) = p.begin_recording(Step::running()) else {
        panic!("running must stay pending")
    };
    let OperationOutcome::PendingRecording(p) = p.handle_operation("running") else {
        panic!("running is not final")
    };
    let p = p.abandon();
    // Failed -> Failed -> Recording
    let BeginOutcome::Failed(p) = p.begin_recording(Step::fail("reset")) else {
        panic!("an ambiguous outcome must fail")
    };
    let BeginOutcome::Recording(p) = p.begin_recording(Step::completed()) else {
        panic!("completed must record")
    };
    p.retain();
    // Recording -> Recording (drain deadline) -> Failed (unacknowledged stop)
    let StopOutcome::Recording(p) = p.stop_recording(true, Step::completed()) else {
        panic!("a live handle must block the stop")
    };
    let StopOutcome::Failed(p) = p.stop_recording(false, Step::graph_error(500, "x")) else {
        panic!("an unacknowledged stop must fail")
    };
    p.end();

    // NotRecording -> PendingRecording -> Recording -> NotRecording -> Recording -> Failed
    let p = Protocol::<NotRecording>::start(Env {
        audit: audit.clone(),
        ..Env::new()
    });
    let BeginOutcome::PendingRecording(p) = p.begin_recording(Step::running()) else {
        panic!()
    };
    let OperationOutcome::Recording(p) = p.handle_operation("Completed") else {
        panic!("a completed notification must record")
    };
    let StopOutcome::NotRecording(p) = p.stop_recording(false, Step::completed()) else {
        panic!("a drained, acknowledged stop ends recording")
    };
    let BeginOutcome::Recording(p) = p.begin_recording(Step::completed()) else {
        panic!()
    };
    let p = p.report_failure(Step::completed());
    p.end();

    // The remaining final edges, and Pending -> Failed by a failed operation.
    let p = Protocol::<NotRecording>::start(Env::new());
    let BeginOutcome::PendingRecording(p) = p.begin_recording(Step::running()) else {
        panic!()
    };
    let OperationOutcome::Failed(p) = p.handle_operation("failed") else {
        panic!("a failed notification must fail")
    };
    p.end();
    let p = Protocol::<NotRecording>::start(Env::new());
    let BeginOutcome::PendingRecording(p) = p.begin_recording(Step::running()) else {
        panic!()
    };
    p.end();
    let ended = Protocol::<NotRecording>::start(Env::new()).end();
    assert_eq!(ended.last_state, CallState::NotRecording);
    let p = Protocol::<NotRecording>::start(Env::new());
    let BeginOutcome::Recording(p) = p.begin_recording(Step::completed()) else {
        panic!()
    };
    assert_eq!(p.end().last_state, CallState::Recording);

    verify(&audit.events()).expect("the audit trail holds");
}

const EXPORTED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/generated/Protocol.uml");
const DOCS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/states.mmd");

fn exported() -> String {
    std::fs::read_to_string(EXPORTED).unwrap_or_else(|e| {
        panic!(
            "{EXPORTED} is written by #[typestate] when this test is compiled ({e}); \
             `touch tests/protocol_spec.rs` and run again"
        )
    })
}

/// The exported PlantUML, as Mermaid with sorted lines (the macro's edge order is random).
fn mermaid() -> String {
    let uml = exported();
    let mut choices = Vec::new();
    let mut edges = Vec::new();
    for line in uml.lines().map(str::trim) {
        if line.starts_with("state ") {
            choices.push(line.to_owned());
        } else if line.contains("-->") {
            edges.push(line.to_owned());
        }
    }
    choices.sort();
    edges.sort();
    let mut out = String::from("stateDiagram-v2\n");
    for line in choices.iter().chain(&edges) {
        out.push_str("    ");
        out.push_str(line);
        out.push('\n');
    }
    out
}

#[test]
fn diagram_matches_docs() {
    let generated = mermaid();
    if std::env::var_os("UPDATE_DIAGRAM").is_some() {
        std::fs::write(DOCS, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(DOCS).unwrap_or_default();
    assert_eq!(
        committed, generated,
        "docs/states.mmd differs from the protocol spec; run `UPDATE_DIAGRAM=1 cargo test \
         --test protocol_spec` and review the diff"
    );
}

/// The spec's edges, with choice nodes collapsed, are exactly the (from, to) pairs of
/// `recording_status::state::TRANSITIONS`.
#[test]
fn spec_agrees_with_the_transition_table() {
    let uml = exported();
    let name = |s: &str| s.trim().split(':').next().unwrap().trim().to_owned();
    let mut direct: Vec<(String, String)> = Vec::new();
    for line in uml.lines().filter(|l| l.contains("-->")) {
        let (from, to) = line.split_once("-->").unwrap();
        direct.push((name(from), name(to)));
    }
    let choices: BTreeSet<String> = uml
        .lines()
        .filter_map(|l| l.trim().strip_prefix("state "))
        .map(|l| l.split_whitespace().next().unwrap().to_owned())
        .collect();
    let mut spec = BTreeSet::new();
    for (from, to) in &direct {
        if from == "[*]" || choices.contains(from) {
            continue;
        }
        if choices.contains(to) {
            for (c, target) in &direct {
                if c == to {
                    spec.insert((from.clone(), target.clone()));
                }
            }
        } else {
            spec.insert((from.clone(), to.clone()));
        }
    }
    // `retain` is a self-loop on Recording (`&self`); the table has Recording -> Recording
    // through the drain deadline, which the spec also has, so the sets compare directly.
    let table: BTreeSet<(String, String)> = TRANSITIONS
        .iter()
        .map(|t| {
            let n = |s: CallState| match s {
                CallState::Ended => "[*]".to_owned(),
                other => other.to_string(),
            };
            (n(t.from), n(t.to))
        })
        .collect();
    assert_eq!(spec, table);
}
