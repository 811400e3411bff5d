//! The typestate core and its properties, through the public API with a scripted Graph: every
//! transition of the table, one live value per Graph call, revocation from the writer's side,
//! the protocol as an executable spec with its diagrams, property tests of the rule, and the
//! transitions as steps with no I/O driven by hand.

#[path = "../support/mod.rs"]
mod support;

mod lifecycle;
mod one_call;
mod properties;
mod protocol_spec;
mod revocation;
mod steps;
// Drives calls through the async driver (orphan reports race the next value's begin).
#[cfg(feature = "driver")]
mod rule_at_every_instant;
