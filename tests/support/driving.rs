//! Drivers for tests (feature `driver`): over a scripted Graph or any transport, and the steps
//! most tests start with.

use std::sync::Arc;

use recording_status::audit::{AuditSink, MemorySink};
use recording_status::driver::{Driver, DriverConfig, DriverEvents, Started};
use recording_status::testing::{ScriptedTransport, Step};
use recording_status::{Call, Failed, Graph, Recording, TokenSource, Transport};

use super::bodies::{notifications, terminated_entry};
use super::graph::{graph_over, proof, scripted};
use super::ids::{call_id, this_call_upper};

/// A driver over a Graph that answers with `steps`, its events, its trail, and the transport
/// (a handle on the same script: it shows what was sent, and takes more steps).
pub(crate) fn scripted_driver(
    steps: impl IntoIterator<Item = Step>,
    config: DriverConfig,
) -> (
    Driver<ScriptedTransport>,
    DriverEvents,
    Arc<MemorySink>,
    ScriptedTransport,
) {
    let transport = scripted(steps);
    let (driver, events, audit) = driver_over(transport.clone(), config);
    (driver, events, audit, transport)
}

/// A driver over `transport`, with its events and its trail.
pub(crate) fn driver_over<T: Transport + 'static>(
    transport: T,
    config: DriverConfig,
) -> (Driver<T>, DriverEvents, Arc<MemorySink>) {
    let audit = Arc::new(MemorySink::default());
    let (driver, events) = Driver::new(graph_over(transport), audit.clone(), config);
    (driver, events, audit)
}

/// A driver over `transport` (a handle on its script), with tokens from `tokens`, writing to
/// `sink`.
pub(crate) fn driver_on(
    transport: &ScriptedTransport,
    tokens: Arc<dyn TokenSource>,
    sink: Arc<dyn AuditSink>,
) -> Driver<ScriptedTransport> {
    let graph = Graph::with_token_source(transport.clone(), tokens);
    Driver::new(graph, sink, DriverConfig::default()).0
}

/// Begins recording on [`CALL`](super::ids::CALL), which the script must acknowledge.
pub(crate) async fn recording<T: Transport + 'static>(driver: &Driver<T>) -> Call<Recording> {
    match driver
        .begin_recording(driver.call(call_id()).unwrap())
        .await
        .unwrap()
    {
        Started::Recording(call) => call,
        other => panic!("expected Recording, got {other:?}"),
    }
}

/// Begins recording on [`CALL`](super::ids::CALL), which the script must make fail (`why`
/// says why).
pub(crate) async fn failed<T: Transport + 'static>(driver: &Driver<T>, why: &str) -> Call<Failed> {
    match driver
        .begin_recording(driver.call(call_id()).unwrap())
        .await
        .unwrap()
    {
        Started::Failed(call) => call,
        other => panic!("{why}: got {other:?}"),
    }
}

/// Delivers Graph's call-state notification that [`CALL`](super::ids::CALL) terminated (in
/// Graph's upper-case dash-less spelling), and checks that the hub read it.
pub(crate) fn graph_terminates_the_call<T: Transport + 'static>(driver: &Driver<T>) {
    let body = notifications([terminated_entry(&this_call_upper())]);
    assert_eq!(driver.hub().deliver(&proof(), &body).unwrap().terminated, 1);
}
