//! Graph's JSON: the answers to `updateRecordingStatus`, the operation updates a bot hands
//! over, and the `commsNotifications` bodies its webhook receives.

use recording_status::response::Operation;
use recording_status::transport::{HttpRequest, HttpResponse};
use serde_json::{Value, json};

use super::ids::OP;

/// The `@odata.type` of the operation `updateRecordingStatus` answers with.
pub(crate) const OPERATION_TYPE: &str = "#microsoft.graph.updateRecordingStatusOperation";

/// An operation update as the bot hands it over, from its JSON text.
pub(crate) fn operation(json: &str) -> Operation {
    Operation::from_json(&serde_json::from_str(json).expect("json")).expect("an object")
}

/// An update of the request whose `clientContext` is `client_context`, saying `status`.
pub(crate) fn update_for(client_context: &str, status: &str) -> Operation {
    Operation::from_json(&json!({ "clientContext": client_context, "status": status }))
        .expect("an object")
}

/// The JSON body of a request a transport was given.
pub(crate) fn sent(request: &HttpRequest) -> Value {
    serde_json::from_slice(request.body()).expect("a json request body")
}

/// The operation Graph answers with: `id` in `status`, echoing `client_context`.
pub(crate) fn operation_body(id: &str, status: &str, client_context: &Value) -> Value {
    json!({
        "@odata.type": OPERATION_TYPE,
        "clientContext": client_context,
        "id": id,
        "resultInfo": null,
        "status": status,
    })
}

/// Graph's `200` answer to `request`: operation `id` in `status`, echoing the request's
/// `clientContext`.
pub(crate) fn answer_with_id(request: &HttpRequest, id: &str, status: &str) -> HttpResponse {
    let body = operation_body(id, status, &sent(request)["clientContext"]);
    http::Response::builder()
        .status(200)
        .body(body.to_string().into_bytes())
        .expect("a response")
}

/// [`answer_with_id`] with operation [`OP`].
pub(crate) fn answer(request: &HttpRequest, status: &str) -> HttpResponse {
    answer_with_id(request, OP, status)
}

/// A `commsNotifications` body with `entries`.
pub(crate) fn notifications(entries: impl IntoIterator<Item = Value>) -> Vec<u8> {
    json!({ "value": entries.into_iter().collect::<Vec<_>>() })
        .to_string()
        .into_bytes()
}

/// A notification entry: operation `op` of call `call` (both spelled as given) is in
/// `status`, for the request with `client_context` if one is given.
pub(crate) fn operation_entry(
    call: &str,
    op: &str,
    client_context: Option<&str>,
    status: &str,
) -> Value {
    let mut data = json!({ "@odata.type": OPERATION_TYPE, "status": status });
    if let Some(context) = client_context {
        data["clientContext"] = context.into();
    }
    json!({
        "changeType": "deleted",
        "resourceUrl": format!("/communications/calls/{call}/operations/{op}"),
        "resourceData": data,
    })
}

/// A notification entry: Graph's call-state update that call `call` terminated.
pub(crate) fn terminated_entry(call: &str) -> Value {
    json!({
        "changeType": "deleted",
        "resourceUrl": format!("/communications/calls/{call}"),
        "resourceData": { "@odata.type": "#microsoft.graph.call", "state": "terminated" },
    })
}

/// A `commsNotifications` body for operation `op` of `call` in Graph's full form: typed
/// envelope and entry, both `resource` and `resourceUrl`, and a `resultInfo`.
pub(crate) fn graph_notification(call: &str, op: &str, status: &str) -> Vec<u8> {
    json!({
        "@odata.type": "#microsoft.graph.commsNotifications",
        "value": [{
            "@odata.type": "#microsoft.graph.commsNotification",
            "changeType": "deleted",
            "resource": format!("/app/calls/{call}/operations/{op}"),
            "resourceUrl": format!("/communications/calls/{call}/operations/{op}"),
            "resourceData": {
                "@odata.type": OPERATION_TYPE,
                "resultInfo": { "code": 200, "subcode": 0, "message": "ok" },
                "status": status,
            },
        }],
    })
    .to_string()
    .into_bytes()
}
