//! What the integration test binaries share, so that each piece is written once: call and
//! operation ids, Graph's bodies (answers and notifications), scripted Graphs and drivers,
//! audit sinks that refuse on demand, bot instances each with its own trail, signed webhook
//! tokens, captured log lines, a loopback server, child processes that do not race the trail's
//! file lock, and an SVG well-formedness check.
//!
//! Every binary includes this module with `#[path = "../support/mod.rs"] mod support;` and uses
//! only a part of it, hence the `dead_code` allowance below.
#![allow(dead_code)]

pub(crate) mod bodies;
#[cfg(feature = "driver")]
pub(crate) mod driving;
pub(crate) mod graph;
pub(crate) mod ids;
pub(crate) mod instances;
pub(crate) mod jwt;
pub(crate) mod logs;
pub(crate) mod loopback;
pub(crate) mod sinks;
pub(crate) mod spawn;
pub(crate) mod svg;

use std::future::Future;

use proptest::test_runner::Config;

/// The proptest configuration of every property here: 256 cases (`PROPTEST_CASES` overrides
/// it), and no failure files written into the source tree.
pub(crate) fn proptest_config() -> Config {
    Config {
        cases: 256,
        failure_persistence: None,
        ..Config::default()
    }
}

/// Runs `future` to completion on a fresh current-thread runtime, with time and I/O enabled.
pub(crate) fn block_on<F: Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
        .block_on(future)
}

/// Asserts that `text` (a trail, an error chain, a request log…) does not hold the bearer
/// token [`graph::TOKEN`] or a recognisable part of it.
pub(crate) fn assert_no_token(text: &str) {
    assert!(
        !text.contains(graph::SECRET),
        "the bearer token leaked: {text}"
    );
}
