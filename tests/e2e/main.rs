//! End to end over real HTTP on loopback: the library against the Graph emulator (an oracle of
//! its own, `graph-emulator`), the shipped transports, and the example bot as a user runs it. Each part needs the features of
//! what it runs, so with default features this binary is empty.

#[path = "../support/mod.rs"]
mod support;

#[cfg(all(feature = "driver", feature = "reqwest-0_13", feature = "ureq-3"))]
mod e2e;
// The library's wire code against the independent emulator (`graph-emulator`).
#[cfg(all(feature = "driver", feature = "jwt"))]
mod emulator;
#[cfg(all(feature = "driver", feature = "jwt", feature = "reqwest-0_13"))]
mod example_bot;
#[cfg(all(feature = "driver", feature = "reqwest-0_13"))]
mod shutdown;
#[cfg(all(feature = "reqwest-0_13", feature = "ureq-3"))]
mod transports;
