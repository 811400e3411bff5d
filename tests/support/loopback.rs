//! Servers on 127.0.0.1: a free port, an axum app served in the background, and a bot's
//! webhook that hands every notification to the driver's hub.

use axum::Router;

/// A port nothing listens on (bound, then released).
pub(crate) fn free_port() -> u16 {
    let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    probe.local_addr().unwrap().port()
}

/// Serves `app` on 127.0.0.1 in the background (for as long as the runtime runs) and returns
/// its origin, `http://127.0.0.1:<port>`.
pub(crate) async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}")
}

/// A bot's webhook at `/api/calling`, as its web server would run it: every body goes to
/// `hub` (authenticated elsewhere: the loopback has no Bot Framework), answered `202`, or
/// `400` if the hub cannot read it. Returns the webhook's URL, and for each delivery the
/// number of updates routed and the number held or ignored.
#[cfg(feature = "driver")]
pub(crate) async fn hub_webhook(
    hub: recording_status::driver::Hub,
) -> (String, tokio::sync::mpsc::UnboundedReceiver<(usize, usize)>) {
    use axum::body::Bytes;
    use axum::extract::State;
    use axum::http::StatusCode;
    use recording_status::driver::Hub;
    use tokio::sync::mpsc::{UnboundedSender, unbounded_channel};

    async fn hook(
        State((hub, deliveries)): State<(Hub, UnboundedSender<(usize, usize)>)>,
        body: Bytes,
    ) -> StatusCode {
        match hub.deliver(&super::graph::proof(), &body) {
            Ok(d) => {
                let _ = deliveries.send((d.routed, d.ignored + d.held));
                StatusCode::ACCEPTED
            }
            Err(_) => StatusCode::BAD_REQUEST,
        }
    }

    let (deliveries, received) = unbounded_channel();
    let app = Router::new()
        .route("/api/calling", axum::routing::post(hook))
        .with_state((hub, deliveries));
    (format!("{}/api/calling", serve(app).await), received)
}

/// Why [`transport`] got no response.
#[derive(Debug)]
pub(crate) struct LoopbackError(Box<dyn std::error::Error + Send + Sync>);

impl std::fmt::Display for LoopbackError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "loopback transport: {}", self.0)
    }
}

impl std::error::Error for LoopbackError {}

/// The crate's `Transport` as a closure over hyper-util's client, for servers on 127.0.0.1.
pub(crate) fn transport() -> impl recording_status::transport::Transport + 'static {
    use axum::body::Body;
    use hyper_util::client::legacy::Client;
    use hyper_util::rt::TokioExecutor;
    use recording_status::transport::HttpRequest;

    let client = Client::builder(TokioExecutor::new()).build_http::<Body>();
    move |request: HttpRequest| {
        let client = client.clone();
        async move {
            let (parts, body) = request.into_parts();
            let request = http::Request::from_parts(parts, Body::from(body));
            let response = client
                .request(request)
                .await
                .map_err(|e| LoopbackError(Box::new(e)))?;
            let (parts, body) = response.into_parts();
            let body = axum::body::to_bytes(Body::new(body), 1 << 20)
                .await
                .map_err(|e| LoopbackError(Box::new(e)))?;
            Ok::<_, LoopbackError>(http::Response::from_parts(parts, body.to_vec()))
        }
    }
}
