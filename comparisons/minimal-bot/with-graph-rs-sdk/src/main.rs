//! Sends `recording`, then `notRecording`, for one call through graph-rs-sdk 3.x
//! (`communications().call(id).update_recording_status(&body)`), each with a fresh
//! `clientContext`; fails unless Graph answers 2xx with `"status": "completed"`.
//!
//! ```sh
//! minimal-bot-with-graph-rs-sdk BASE_URL CALL_ID TOKEN
//! ```
//!
//! `BASE_URL` is Graph's (`https://graph.microsoft.com/v1.0`, or another national cloud's);
//! built with `--features loopback`, also an emulator's (`http://127.0.0.1:PORT/v1.0`).

use graph_rs_sdk::http::Url;
use graph_rs_sdk::{GraphClient, GraphClientConfiguration};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let [base, call, token]: [String; 3] = std::env::args()
        .skip(1)
        .collect::<Vec<_>>()
        .try_into()
        .map_err(|_| "usage: minimal-bot-with-graph-rs-sdk BASE_URL CALL_ID TOKEN")?;
    let client = client(&Url::parse(&base)?, token);

    for status in ["recording", "notRecording"] {
        let body = serde_json::json!({
            "clientContext": uuid::Uuid::new_v4().to_string(),
            "status": status,
        });
        let answer = client
            .communications()
            .call(&call)
            .update_recording_status(&body)
            .send()
            .await?;
        let http = answer.status();
        let operation: serde_json::Value = answer.json().await?;
        let outcome = operation["status"].as_str().unwrap_or("?");
        if !http.is_success() || outcome != "completed" {
            return Err(format!("{status}: HTTP {http}, {operation}").into());
        }
        println!("{status}: {outcome}");
    }
    Ok(())
}

/// A client sending to `base`. Panics (in graph-rs-sdk) for a host outside Graph's national
/// clouds, or for plain `http`.
#[cfg(not(feature = "loopback"))]
fn client(base: &Url, token: String) -> GraphClient {
    let mut client = GraphClient::from(GraphClientConfiguration::new().access_token(token));
    client.use_endpoint(base);
    client
}

/// As without `loopback`, except that a plain `http` base URL (an emulator's) is taken as it
/// is, on a client that allows `http`.
#[cfg(feature = "loopback")]
fn client(base: &Url, token: String) -> GraphClient {
    let http = base.scheme() == "http";
    let config = GraphClientConfiguration::new()
        .access_token(token)
        .https_only(!http);
    let mut client = GraphClient::from(config);
    if http {
        client.use_test_endpoint(base);
    } else {
        client.use_endpoint(base);
    }
    client
}
