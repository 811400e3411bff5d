//! Serves the crate's Graph emulator on `127.0.0.1` until Ctrl-C (or `--for SECONDS`), for
//! the minimal bots of `../minimal-bot`: prints its base URL first, then, when it stops, one
//! line per request it received (method, path, body's `status` and `clientContext`,
//! `client-request-id`, whether a bearer token was present, HTTP status answered).
//!
//! ```sh
//! cargo run --release --bin emulator -- [--port PORT] [--for SECONDS]
//! ```

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use recording_status::emulator::Emulator;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> std::io::Result<()> {
    let mut port = 0;
    let mut seconds = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args.next().and_then(|v| v.parse::<u64>().ok());
        match (arg.as_str(), value) {
            ("--port", Some(p)) => port = u16::try_from(p).expect("a port fits in 16 bits"),
            ("--for", Some(s)) => seconds = Some(s),
            _ => panic!("usage: emulator [--port PORT] [--for SECONDS]"),
        }
    }
    let emulator = Emulator::start_on(SocketAddr::from((Ipv4Addr::LOCALHOST, port))).await?;
    println!("{}", emulator.base_url());
    match seconds {
        Some(s) => tokio::time::sleep(Duration::from_secs(s)).await,
        None => tokio::signal::ctrl_c().await?,
    }
    for r in emulator.requests() {
        println!(
            "{} {} status={} clientContext={} client-request-id={} authorized={} -> {}",
            r.method,
            r.path,
            r.status.as_deref().unwrap_or("-"),
            r.client_context.as_deref().unwrap_or("-"),
            r.client_request_id.as_deref().unwrap_or("-"),
            r.authorized,
            r.http_status
        );
    }
    emulator.shutdown().await;
    Ok(())
}
