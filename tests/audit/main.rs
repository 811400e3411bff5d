//! The audit trail and its auditor: the JSON-lines sink and its hash chain, the verifier on
//! forged and real trails, and the `recording-audit` command line.

#[path = "../support/mod.rs"]
mod support;

mod audit_cli;
mod audit_sink;
mod verify;
