//! End to end over real HTTP on loopback: the Graph emulator, the shipped transports, both
//! against each other, and the example bot as a user runs it. Each part needs the features of
//! what it runs, so with default features this binary is empty.

#[path = "../support/mod.rs"]
mod support;

#[cfg(all(feature = "emulator", feature = "reqwest-0_13", feature = "ureq-3"))]
mod e2e;
#[cfg(feature = "emulator")]
mod emulator;
#[cfg(all(feature = "emulator", feature = "reqwest-0_13"))]
mod example_bot;
#[cfg(all(feature = "reqwest-0_13", feature = "ureq-3"))]
mod transports;
