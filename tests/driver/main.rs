//! The async driver and its notification hub (feature `driver`), on tokio's paused clock:
//! Graph's real behaviour, the hub at scale, the audit events each step writes together, calls
//! Graph says are gone, and Graph's notifications in every spelling it uses.
#![cfg(feature = "driver")]

#[path = "../support/mod.rs"]
mod support;

mod audit_batch;
mod call_gone;
mod driver;
mod group_commit;
mod hub;
mod shutdown;
mod spellings;
