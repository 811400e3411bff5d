//! The audit trail and its verifier: the JSON-lines sink and its hash chain, the verifier on
//! forged and real trails, and on the trails of several instances together, and witnessed
//! checkpoints of the chain's head. The
//! `recording-audit` command line is tested in its own crate (`audit-cli/tests/cli.rs`).

#[path = "../support/mod.rs"]
mod support;

mod audit_sink;
mod checkpoints;
mod instances;
mod verify;
