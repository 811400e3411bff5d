//! The crate against graph-rs-sdk 3.x: the comparison is `benches/versus_graph_rs_sdk.rs`;
//! `src/bin/emulator.rs` serves the crate's Graph emulator for the minimal bots of
//! `../minimal-bot`. See `../README.md`.
