//! The protocol as an executable specification.
//!
//! `#[typestate]` checks the automaton below at compile time: every state is reachable from the
//! initial state and can reach a final one. Every edge is implemented by calling the real API of
//! `recording_status` with the same source and target types, so if the crate lost an edge (or
//! moved it to another state) this file would stop compiling. The compile-fail suite
//! (`tests/compile_fail/`) covers the other direction: no extra edges.
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
use recording_status::testing::{ScriptedTransport, Step};
use recording_status::{Begin, Ended, Graph, StopError};
use recording_status::{CallState, TRANSITIONS};
use typestate::typestate;

use crate::support::bodies::update_for;
use crate::support::graph::{graph, open, proof};
use crate::support::svg::well_formed;

/// What every spec state carries besides the real call: the Graph link and the audit trail.
#[derive(Debug, Clone)]
pub(crate) struct Env {
    graph: Arc<Graph<ScriptedTransport>>,
    audit: Arc<MemorySink>,
}

impl Env {
    fn new() -> Self {
        Self {
            graph: Arc::new(graph([])),
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
        let call = open(env.audit.clone());
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
        let op = update_for(call.client_context(), status);
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
             `touch tests/core/protocol_spec.rs` and run again"
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
         --test core protocol_spec` and review the diff"
    );
}

/// The spec's edges, with choice nodes collapsed, are exactly the (from, to) pairs of
/// `recording_status::TRANSITIONS`.
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

const SVG: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/states.svg");

/// The exported automaton as a picture, `docs/states.svg`, included inline in the
/// `compliance` module's docs. Golden-tested like `docs/states.mmd`: `UPDATE_DIAGRAM=1`
/// rewrites it.
#[test]
fn picture_matches_docs() {
    let generated = picture::render(&exported());
    well_formed(&generated).unwrap();
    if std::env::var_os("UPDATE_DIAGRAM").is_some() {
        std::fs::write(SVG, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(SVG).unwrap_or_default();
    assert!(
        committed == generated,
        "docs/states.svg differs from the protocol spec; run `UPDATE_DIAGRAM=1 cargo test \
         --test core protocol_spec` and review the diff"
    );
}

/// The well-formedness check catches what it must (so a passing check means something).
#[test]
fn picture_check_catches_broken_xml() {
    well_formed(r#"<svg a="1"><g><rect/></g><text>x &amp; y</text></svg>"#).unwrap();
    for broken in [
        "<svg><g></svg>",
        "<svg></g></svg>",
        "<svg a=\"1></svg>",
        "<svg><text>a & b</text></svg>",
        "<svg/><svg/>",
        "<svg>\n\n</svg>",
    ] {
        assert!(well_formed(broken).is_err(), "{broken} passed the check");
    }
}

/// A small, dependency-free SVG renderer for the exported automaton: states are boxes and
/// choice nodes diamonds, on a fixed layout; edges are labelled arrows (quadratic curves, bent
/// so that the two directions between a pair of nodes never overlap); `[*]` is drawn as the
/// start dot, and as a final marker beside each state that has an `end` edge.
mod picture {
    use std::collections::BTreeSet;

    /// Centres of the nodes. A node the spec grows that is not listed here goes on an extra
    /// row at the bottom, so the picture still shows it (and the golden test shows the change).
    const LAYOUT: &[(&str, f64, f64)] = &[
        ("NotRecording", 170.0, 130.0),
        ("BeginOutcome", 470.0, 130.0),
        ("PendingRecording", 770.0, 130.0),
        ("StopOutcome", 170.0, 300.0),
        ("Recording", 470.0, 300.0),
        ("OperationOutcome", 770.0, 300.0),
        ("Failed", 770.0, 470.0),
    ];
    /// The start dot, above the initial state.
    const START: (f64, f64) = (170.0, 40.0);
    /// Where the final marker of each state's edge to `[*]` goes.
    const FINALS: &[(&str, f64, f64)] = &[
        ("NotRecording", 40.0, 130.0),
        ("PendingRecording", 900.0, 130.0),
        ("Recording", 330.0, 400.0),
        ("Failed", 770.0, 555.0),
    ];
    /// Edges bent more than the default, to go around a node in their way: (from, to, bend).
    const BENDS: &[(&str, &str, f64)] = &[("PendingRecording", "Failed", -0.6)];
    /// Labels put elsewhere than halfway along their edge, to keep clear of other edges:
    /// (from, to, position along the curve from 0 to 1).
    const LABELS_AT: &[(&str, &str, f64)] = &[("Failed", "BeginOutcome", 0.6)];
    const DEFAULT_BEND: f64 = 0.12;
    /// The smallest offset of a curve's control point, so short opposite edges stay apart.
    const MIN_BEND: f64 = 26.0;

    const WIDTH: f64 = 960.0;
    const BOX: (f64, f64) = (82.0, 22.0);
    const DIAMOND: (f64, f64) = (86.0, 27.0);
    const DOT: f64 = 8.0;
    const FINAL: f64 = 10.0;

    #[derive(Clone, Copy, PartialEq)]
    enum Shape {
        Box,
        Diamond,
        Dot,
        Final,
    }

    #[derive(Clone, Copy)]
    struct Node {
        x: f64,
        y: f64,
        shape: Shape,
    }

    impl Node {
        /// The point where a ray from the centre towards `(tx, ty)` leaves the shape.
        fn boundary(self, tx: f64, ty: f64) -> (f64, f64) {
            let (dx, dy) = (tx - self.x, ty - self.y);
            let len = dx.hypot(dy).max(f64::EPSILON);
            let (ux, uy) = (dx / len, dy / len);
            let t = match self.shape {
                Shape::Box => (BOX.0 / ux.abs()).min(BOX.1 / uy.abs()),
                Shape::Diamond => 1.0 / (ux.abs() / DIAMOND.0 + uy.abs() / DIAMOND.1),
                Shape::Dot => DOT,
                Shape::Final => FINAL,
            };
            (self.x + ux * t, self.y + uy * t)
        }
    }

    /// A number as SVG wants it: one decimal, never `-0.0`.
    fn n(v: f64) -> String {
        let s = format!("{:.1}", v);
        if s == "-0.0" { "0.0".to_owned() } else { s }
    }

    fn escape(text: &str) -> String {
        text.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
    }

    struct Edge {
        from: String,
        to: String,
        label: Option<String>,
    }

    /// The exported PlantUML, parsed: choice nodes, states, and edges sorted (the macro's
    /// order is random).
    fn parse(uml: &str) -> (BTreeSet<String>, BTreeSet<String>, Vec<Edge>) {
        let mut choices = BTreeSet::new();
        let mut states = BTreeSet::new();
        let mut edges = Vec::new();
        for line in uml.lines().map(str::trim) {
            if let Some(rest) = line.strip_prefix("state ") {
                if let Some(name) = rest.split_whitespace().next() {
                    choices.insert(name.to_owned());
                }
            } else if let Some((from, rest)) = line.split_once("-->") {
                let (to, label) = match rest.split_once(':') {
                    Some((to, label)) => (to, Some(label.trim().to_owned())),
                    None => (rest, None),
                };
                let edge = Edge {
                    from: from.trim().to_owned(),
                    to: to.trim().to_owned(),
                    label,
                };
                for name in [&edge.from, &edge.to] {
                    if name != "[*]" {
                        states.insert(name.clone());
                    }
                }
                edges.push(edge);
            }
        }
        edges.sort_by(|a, b| (&a.from, &a.to, &a.label).cmp(&(&b.from, &b.to, &b.label)));
        let states = states.difference(&choices).cloned().collect();
        (choices, states, edges)
    }

    pub(super) fn render(uml: &str) -> String {
        let (choices, states, edges) = parse(uml);
        // Place every node: the fixed layout first, then any other on an extra row.
        let mut nodes: Vec<(String, Node)> = Vec::new();
        let mut extra = 0.0;
        let bottom = LAYOUT.iter().map(|l| l.2).fold(0.0, f64::max);
        for name in choices.iter().chain(&states) {
            let shape = if choices.contains(name) {
                Shape::Diamond
            } else {
                Shape::Box
            };
            let (x, y) = match LAYOUT.iter().find(|l| l.0 == name) {
                Some(&(_, x, y)) => (x, y),
                None => {
                    extra += 1.0;
                    (extra * 200.0 - 30.0, bottom + 130.0)
                }
            };
            nodes.push((name.clone(), Node { x, y, shape }));
        }
        let height = nodes
            .iter()
            .map(|(_, node)| node.y + 50.0)
            .chain(FINALS.iter().map(|f| f.2 + 30.0))
            .fold(START.1, f64::max);
        let node = |name: &str| nodes.iter().find(|(n, _)| n == name).map(|(_, node)| *node);

        let mut out = String::new();
        let w = |out: &mut String, line: String| {
            out.push_str(&line);
            out.push('\n');
        };
        // The first line is the whole opening tag, and no line is blank: that keeps the
        // picture one raw HTML block when Markdown (rustdoc) includes it.
        w(
            &mut out,
            format!(
                r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" role="img" aria-label="The recording protocol: states, Graph's outcomes and transitions" font-family="sans-serif" font-size="13">"#,
                w = n(WIDTH),
                h = n(height)
            ),
        );
        w(
            &mut out,
            "  <!-- Generated from tests/generated/Protocol.uml by tests/core/protocol_spec.rs (picture_matches_docs); UPDATE_DIAGRAM=1 rewrites it. -->".to_owned(),
        );
        w(
            &mut out,
            r##"  <defs><marker id="rs-states-arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="9" markerHeight="9" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#333"/></marker></defs>"##.to_owned(),
        );
        w(
            &mut out,
            format!(
                r##"  <rect width="{}" height="{}" fill="#ffffff"/>"##,
                n(WIDTH),
                n(height)
            ),
        );

        // Edges first, so that nodes are drawn over their ends.
        let arrow =
            r##"fill="none" stroke="#333" stroke-width="1.4" marker-end="url(#rs-states-arrow)""##;
        for edge in &edges {
            let (a, b) = match (edge.from.as_str(), edge.to.as_str()) {
                ("[*]", to) => match node(to) {
                    Some(b) => (
                        Node {
                            x: START.0,
                            y: START.1,
                            shape: Shape::Dot,
                        },
                        b,
                    ),
                    None => continue,
                },
                (from, "[*]") => match node(from) {
                    Some(a) => {
                        let (x, y) = FINALS
                            .iter()
                            .find(|f| f.0 == from)
                            .map_or((a.x, a.y + 70.0), |f| (f.1, f.2));
                        let end = Node {
                            x,
                            y,
                            shape: Shape::Final,
                        };
                        w(
                            &mut out,
                            format!(
                                r##"  <circle cx="{x}" cy="{y}" r="{r}" fill="#ffffff" stroke="#333" stroke-width="1.4"/><circle cx="{x}" cy="{y}" r="{r2}" fill="#333"/>"##,
                                x = n(x),
                                y = n(y),
                                r = n(FINAL),
                                r2 = n(FINAL - 4.0)
                            ),
                        );
                        (a, end)
                    }
                    None => continue,
                },
                (from, to) => match (node(from), node(to)) {
                    (Some(a), Some(b)) => (a, b),
                    _ => continue,
                },
            };
            if edge.from == edge.to {
                // A self-loop over the left half of the box's top edge.
                let top = a.y - BOX.1;
                let (x0, x1) = (a.x - 70.0, a.x - 40.0);
                w(
                    &mut out,
                    format!(
                        r#"  <path d="M{} {} C{} {} {} {} {} {}" {arrow}/>"#,
                        n(x0),
                        n(top),
                        n(x0 - 18.0),
                        n(top - 46.0),
                        n(x1 + 18.0),
                        n(top - 46.0),
                        n(x1),
                        n(top)
                    ),
                );
                if let Some(label) = &edge.label {
                    w(&mut out, text(a.x - 55.0, top - 42.0, "middle", label));
                }
                continue;
            }
            let (dx, dy) = (b.x - a.x, b.y - a.y);
            let len = dx.hypot(dy);
            let (nx, ny) = (-dy / len, dx / len);
            let bend = BENDS
                .iter()
                .find(|e| e.0 == edge.from && e.1 == edge.to)
                .map_or(DEFAULT_BEND, |e| e.2);
            let offset = (bend * len).abs().max(MIN_BEND).copysign(bend);
            let (cx, cy) = (
                (a.x + b.x) / 2.0 + nx * offset,
                (a.y + b.y) / 2.0 + ny * offset,
            );
            let (sx, sy) = a.boundary(cx, cy);
            let (ex, ey) = b.boundary(cx, cy);
            w(
                &mut out,
                format!(
                    r#"  <path d="M{} {} Q{} {} {} {}" {arrow}/>"#,
                    n(sx),
                    n(sy),
                    n(cx),
                    n(cy),
                    n(ex),
                    n(ey)
                ),
            );
            if let Some(label) = &edge.label {
                // Beside the curve (halfway, unless placed), on the side it bends to.
                let t = LABELS_AT
                    .iter()
                    .find(|e| e.0 == edge.from && e.1 == edge.to)
                    .map_or(0.5, |e| e.2);
                let (p, q, r) = ((1.0 - t) * (1.0 - t), 2.0 * t * (1.0 - t), t * t);
                let (mx, my) = (p * sx + q * cx + r * ex, p * sy + q * cy + r * ey);
                let (ox, oy) = (nx * offset.signum(), ny * offset.signum());
                let anchor = if ox > 0.4 {
                    "start"
                } else if ox < -0.4 {
                    "end"
                } else {
                    "middle"
                };
                w(
                    &mut out,
                    text(mx + ox * 6.0, my + oy * 12.0 + 4.0, anchor, label),
                );
            }
        }

        for (name, node) in &nodes {
            let shape = match node.shape {
                Shape::Box => format!(
                    r##"<rect x="{}" y="{}" width="{}" height="{}" rx="8" fill="#eef3fb" stroke="#2b4f81" stroke-width="1.6"/>"##,
                    n(node.x - BOX.0),
                    n(node.y - BOX.1),
                    n(2.0 * BOX.0),
                    n(2.0 * BOX.1)
                ),
                _ => format!(
                    r##"<path d="M{} {} L{} {} L{} {} L{} {} z" fill="#fdf3e1" stroke="#9a6a12" stroke-width="1.4"/>"##,
                    n(node.x),
                    n(node.y - DIAMOND.1),
                    n(node.x + DIAMOND.0),
                    n(node.y),
                    n(node.x),
                    n(node.y + DIAMOND.1),
                    n(node.x - DIAMOND.0),
                    n(node.y)
                ),
            };
            let size = if node.shape == Shape::Box { "13" } else { "11" };
            w(
                &mut out,
                format!(
                    r##"  <g>{shape}<text x="{}" y="{}" text-anchor="middle" font-size="{size}" fill="#111111">{}</text></g>"##,
                    n(node.x),
                    n(node.y + 4.5),
                    escape(name)
                ),
            );
        }
        w(
            &mut out,
            format!(
                r##"  <circle cx="{}" cy="{}" r="{}" fill="#333"/>"##,
                n(START.0),
                n(START.1),
                n(DOT)
            ),
        );
        out.push_str("</svg>\n");
        out
    }

    fn text(x: f64, y: f64, anchor: &str, label: &str) -> String {
        format!(
            r##"  <text x="{}" y="{}" text-anchor="{anchor}" font-size="12" fill="#333" stroke="#ffffff" stroke-width="4" paint-order="stroke">{}</text>"##,
            n(x),
            n(y),
            escape(label)
        )
    }
}
