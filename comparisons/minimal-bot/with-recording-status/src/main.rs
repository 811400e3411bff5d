//! Sends `recording` (and waits for its `completed`), then `notRecording`, for one call
//! through recording-status: `Driver`, `ReqwestTransport` with rustls, a memory audit trail.
//!
//! ```sh
//! minimal-bot-with-recording-status BASE_URL CALL_ID TOKEN
//! ```
//!
//! `BASE_URL` is Graph's (`https://graph.microsoft.com/v1.0`) or an emulator's on loopback
//! (`http://127.0.0.1:PORT/v1.0`: the crate accepts plain `http` for loopback hosts only).

use std::sync::Arc;

use recording_status::audit::MemorySink;
use recording_status::driver::{Driver, DriverConfig, Started};
use recording_status::transports::reqwest_0_13::ReqwestTransport;
use recording_status::{AccessToken, Endpoint, Graph};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let [base, call, token]: [String; 3] = std::env::args()
        .skip(1)
        .collect::<Vec<_>>()
        .try_into()
        .map_err(|_| "usage: minimal-bot-with-recording-status BASE_URL CALL_ID TOKEN")?;
    let graph = Graph::new(ReqwestTransport::new()?, AccessToken::new(token))
        .with_endpoint(Endpoint::custom(&base)?);
    let trail = Arc::new(MemorySink::default());
    let (driver, _events) = Driver::new(graph, trail.clone(), DriverConfig::default());

    let call = driver.call(call.parse()?)?;
    let call = match driver.begin_recording(call).await? {
        Started::Recording(call) => call,
        Started::Failed(call) => return Err(format!("recording refused: {}", call.reason()).into()),
        _ => return Err("recording not started".into()),
    };
    println!("recording: completed");
    let call = driver.stop_recording(call).await?;
    println!("notRecording: completed");
    // The bot leaves the call: no request is sent for it again.
    let _ended = call.end();
    println!("{} audit events", trail.events().len());
    Ok(())
}
