//! The async driver and its notification hub (feature `driver`), on tokio's paused clock:
//! Graph's real behaviour, the hub at scale, and the audit events each step writes together.
#![cfg(feature = "driver")]

#[path = "../support/mod.rs"]
mod support;

mod audit_batch;
mod driver;
mod hub;
