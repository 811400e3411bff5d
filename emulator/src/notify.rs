//! The notification sender: settles pending operations and posts Graph's `commsNotifications`
//! to the callback URL, signed like Bot Framework when asked.

use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::body::Body;
use http::header::{AUTHORIZATION, CONTENT_TYPE};
use http::{HeaderValue, Method, StatusCode};

use crate::handler::{Accepted, CLIENT_REQUEST_ID};
use crate::wire::{
    ChangeType, OperationStatus, OperationUpdate, ResultInfo, encode_segment, upper_dashless,
};
use std::sync::Arc;

use crate::{MAX_BODY_BYTES, NotifyStyle, Shared};

/// How long a notification `POST` may take.
const NOTIFY_TIMEOUT: Duration = Duration::from_secs(10);

/// How a pending operation ends.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Settle {
    Completed,
    Failed { code: i64, subcode: i64 },
}

impl Accepted {
    /// After `delay`: settles the operation and notifies the callback URL; cancelled when the
    /// emulator stops.
    pub(crate) fn settle_later(self, delay: Duration, settle: Settle, style: NotifyStyle) {
        let mut stopped = self.shared.stopped.clone();
        tokio::spawn(async move {
            let work = async {
                tokio::time::sleep(delay).await;
                if matches!(settle, Settle::Completed) {
                    self.shared.set_status(&self.call_id, self.status);
                }
                self.notify(settle, &style).await;
            };
            tokio::select! {
                () = work => {}
                _ = stopped.wait_for(|stop| *stop) => {}
            }
        });
    }

    async fn notify(&self, settle: Settle, style: &NotifyStyle) {
        let Some(url) = self.shared.lock().callback_url.clone() else {
            tracing::warn!(
                call_id = %self.call_id,
                "graph emulator: no callback url set; notification dropped"
            );
            return;
        };
        let (status, result) = match settle {
            Settle::Completed => (
                OperationStatus::Completed,
                ResultInfo::new(200, 0, "Action completed successfully."),
            ),
            Settle::Failed { code, subcode } => (
                OperationStatus::Failed,
                ResultInfo::new(code, subcode, "Update recording status failed."),
            ),
        };
        // A finished operation is notified as `deleted` on its URL (call-playprompt.md).
        let final_body = self.notification(ChangeType::Deleted, status, Some(result), style);
        let mut bodies = vec![final_body.clone()];
        if style.duplicate {
            bodies.push(final_body);
        }
        if style.out_of_order {
            bodies.push(self.notification(
                ChangeType::Updated,
                OperationStatus::Running,
                None,
                style,
            ));
        }
        for body in bodies {
            let bearer = match &style.bearer {
                Some(bearer) => Some(bearer.clone()),
                None => self.shared.lock().signing.authorization(),
            };
            self.post(&url, body, bearer.as_deref()).await;
        }
    }

    /// A `commsNotifications` body for this operation.
    fn notification(
        &self,
        change_type: ChangeType,
        status: OperationStatus,
        result_info: Option<ResultInfo>,
        style: &NotifyStyle,
    ) -> String {
        let (call, operation) = if style.upper_dashless_ids {
            (
                upper_dashless(&self.call_id),
                upper_dashless(&self.operation_id),
            )
        } else {
            (encode_segment(&self.call_id), self.operation_id.clone())
        };
        OperationUpdate {
            call: &call,
            operation: &operation,
            client_context: self.context.as_deref(),
            change_type,
            status,
            pascal_case: style.pascal_case,
            legacy_resource: style.legacy_resource,
        }
        .to_json(result_info)
    }

    async fn post(&self, url: &str, body: String, bearer: Option<&str>) {
        post(&self.shared, url, body, bearer).await;
    }
}

/// `after` from now (unless the emulator stops first): Graph hangs up `call_id`
/// ([`hang_up`]).
pub(crate) fn hang_up_later(shared: Arc<Shared>, call_id: String, after: Duration) {
    let mut stopped = shared.stopped.clone();
    tokio::spawn(async move {
        tokio::select! {
            () = async {
                tokio::time::sleep(after).await;
                hang_up(&shared, &call_id).await;
            } => {}
            _ = stopped.wait_for(|stop| *stop) => {}
        }
    });
}

/// Graph hangs up `call_id`: the call is gone (later requests for it get `8522`), and a
/// signed `terminated` notification in the documented shape (`call-delete.md`: `deleted` on
/// the call's URL, a `#microsoft.graph.call` with `state` `terminated` and a `resultInfo`) goes
/// to the callback URL.
pub(crate) async fn hang_up(shared: &Arc<Shared>, call_id: &str) {
    shared.end_call(call_id);
    let Some(url) = shared.lock().callback_url.clone() else {
        tracing::warn!(%call_id, "graph emulator: no callback url set; hang-up not notified");
        return;
    };
    let body = crate::wire::terminated_notification(&encode_segment(call_id));
    let bearer = shared.lock().signing.authorization();
    post(shared, &url, body, bearer.as_deref()).await;
}

async fn post(shared: &Shared, url: &str, body: String, bearer: Option<&str>) {
    let mut request = http::Request::new(Body::from(body));
    *request.method_mut() = Method::POST;
    match url.parse::<http::Uri>() {
        Ok(uri) if uri.scheme_str() == Some("http") && uri.authority().is_some() => {
            *request.uri_mut() = uri;
        }
        _ => {
            tracing::warn!("graph emulator: callback url is not an http url; notification dropped");
            return;
        }
    }
    let headers = request.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let Ok(id) = HeaderValue::try_from(uuid::Uuid::new_v4().to_string()) {
        headers.insert(CLIENT_REQUEST_ID, id);
    }
    if let Some(bearer) = bearer {
        match HeaderValue::try_from(bearer) {
            Ok(mut value) => {
                value.set_sensitive(true);
                headers.insert(AUTHORIZATION, value);
            }
            Err(_) => tracing::warn!("graph emulator: invalid callback authorization header"),
        }
    }
    let sent = tokio::time::timeout(NOTIFY_TIMEOUT, async {
        let response = shared.client.request(request).await?;
        let status = response.status();
        // Drain (bounded) so the connection can be reused.
        let _ = axum::body::to_bytes(Body::new(response.into_body()), MAX_BODY_BYTES).await;
        Ok::<_, hyper_util::client::legacy::Error>(status)
    })
    .await;
    match sent {
        Ok(Ok(status)) => {
            shared.notifications_sent.fetch_add(1, Ordering::Relaxed);
            if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
                shared.notifications_refused.fetch_add(1, Ordering::Relaxed);
            }
            if !status.is_success() {
                tracing::warn!(%status, "graph emulator: callback answered with an error");
            }
        }
        Ok(Err(e)) => tracing::warn!(error = %e, "graph emulator: notification not delivered"),
        Err(_) => tracing::warn!("graph emulator: notification timed out"),
    }
}
