//! Graph's notifications in every spelling graph-reference.md §9 lists, handed to the hub: a
//! call or operation id in either form (a GUID with dashes, upper case without) in every field
//! that carries one, every enum in any case, and the outcome read from `status` alone, never
//! from `changeType`.

use std::time::Duration;

use recording_status::RetentionWriter;
use recording_status::audit::verify;
use recording_status::driver::{DriverConfig, Started};
use recording_status::testing::Step;
use serde_json::{Value, json};

use crate::support::bodies::{OPERATION_TYPE, notifications};
use crate::support::driving::scripted_driver;
use crate::support::graph::proof;
use crate::support::ids::{OP, this_call, upper};

/// `updateRecordingStatus`'s `200 running` answer, naming the operation `op` (as spelled).
fn running_as(op: &str) -> Step {
    Step::json(
        200,
        &json!({
            "@odata.type": OPERATION_TYPE,
            "clientContext": "$CONTEXT",
            "id": op,
            "resultInfo": null,
            "status": "running",
        })
        .to_string(),
    )
}

/// Where a notification entry carries the call and operation ids.
#[derive(Debug, Clone, Copy)]
enum Field {
    /// `resourceUrl`: `/communications/calls/{call}/operations/{op}`.
    ResourceUrl,
    /// Legacy `resource`: `/app/calls/{call}/operations/{op}`.
    Resource,
    /// The data's `@odata.id`, and no path on the entry.
    OdataId,
    /// The call in `resourceUrl` (`/communications/calls/{call}`), the operation in the data's
    /// `id`.
    OwnId,
}

/// A `completed` update of operation `op` of call `call`, both spelled as given, in `field`.
fn completed_in(field: Field, call: &str, op: &str) -> Vec<u8> {
    let mut data = json!({ "@odata.type": OPERATION_TYPE, "status": "completed" });
    let mut entry = json!({ "changeType": "deleted" });
    let path = format!("/communications/calls/{call}/operations/{op}");
    match field {
        Field::ResourceUrl => entry["resourceUrl"] = path.into(),
        Field::Resource => entry["resource"] = format!("/app/calls/{call}/operations/{op}").into(),
        Field::OdataId => data["@odata.id"] = path.into(),
        Field::OwnId => {
            entry["resourceUrl"] = format!("/communications/calls/{call}").into();
            data["id"] = op.into();
        }
    }
    entry["resourceData"] = data;
    notifications([entry])
}

/// graph-reference.md §9.4: whichever form the bot opened the call under, whichever form
/// Graph's answer gave the operation id in, and whichever form and field the notification
/// carries each id in, the notification settles the waiting `recording` request.
#[tokio::test(start_paused = true)]
async fn either_id_form_in_every_field_settles_the_waiting_request() {
    let forms = |id: &str| [id.to_owned(), upper(id)];
    for opened in forms(&this_call()) {
        for answered in forms(OP) {
            for call in forms(&this_call()) {
                for op in forms(OP) {
                    for field in [
                        Field::ResourceUrl,
                        Field::Resource,
                        Field::OdataId,
                        Field::OwnId,
                    ] {
                        let case =
                            format!("opened {opened}, answered {answered}, {field:?} {call} {op}");
                        let (driver, _events, audit, _t) =
                            scripted_driver([running_as(&answered)], DriverConfig::default());
                        let d2 = driver.clone();
                        let id = opened.parse().unwrap();
                        let waiting = tokio::spawn(async move {
                            d2.begin_recording(d2.call(id)?).await.map_err(|e| e.error)
                        });
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        let d = driver
                            .hub()
                            .deliver(&proof(), &completed_in(field, &call, &op))
                            .unwrap();
                        assert_eq!(d.routed, 1, "{case}");
                        let Ok(Started::Recording(recording)) = waiting.await.unwrap() else {
                            panic!("{case}: not recording")
                        };
                        drop(driver.end(recording));
                        verify(&audit.events()).unwrap();
                    }
                }
            }
        }
    }
}

/// graph-reference.md §9.4: a `terminated` notification naming the call in either form, in
/// `resourceUrl`, legacy `resource` or the data's `@odata.id`, ends the call the bot opened
/// under either form: its retention is revoked at once.
#[tokio::test(start_paused = true)]
async fn a_terminated_call_in_either_id_form_in_every_field_is_revoked() {
    let forms = |id: &str| [id.to_owned(), upper(id)];
    for opened in forms(&this_call()) {
        for named in forms(&this_call()) {
            let data = json!({ "@odata.type": "#microsoft.graph.call", "state": "terminated" });
            for entry in [
                json!({ "changeType": "deleted", "resourceUrl": format!("/communications/calls/{named}"), "resourceData": data }),
                json!({ "changeType": "deleted", "resource": format!("/app/calls/{named}"), "resourceData": data }),
                json!({ "changeType": "deleted", "resourceData": {
                    "@odata.type": "#microsoft.graph.call",
                    "@odata.id": format!("/communications/calls/{named}"),
                    "state": "terminated" } }),
            ] {
                let (driver, _events, _audit, _t) =
                    scripted_driver([Step::completed()], DriverConfig::default());
                let call = driver.call(opened.parse().unwrap()).unwrap();
                let Ok(Started::Recording(call)) = driver.begin_recording(call).await else {
                    panic!("recording")
                };
                let mut media = RetentionWriter::new(call.retention_handle().unwrap(), Vec::new());
                let d = driver
                    .hub()
                    .deliver(&proof(), &notifications([entry.clone()]))
                    .unwrap();
                assert_eq!(d.terminated, 1, "opened {opened}: {entry}");
                assert!(
                    std::io::Write::write_all(&mut media, b"frame").is_err(),
                    "opened {opened}: {entry}"
                );
                drop(media);
                drop(driver.end(call));
            }
        }
    }
}

/// A `recording` request left waiting, Graph's notification about it as `entry`, and what
/// came of the request.
async fn settle_with(entry: Value) -> (Started, Vec<String>) {
    let (driver, _events, audit, transport) = scripted_driver(
        [running_as(OP), Step::completed()],
        DriverConfig::default().with_pending_deadline(Duration::from_secs(10)),
    );
    let d2 = driver.clone();
    let waiting = tokio::spawn(async move {
        d2.begin_recording(d2.call(this_call().parse().unwrap()).unwrap())
            .await
            .unwrap()
    });
    tokio::time::sleep(Duration::from_secs(1)).await;
    driver
        .hub()
        .deliver(&proof(), &notifications([entry]))
        .unwrap();
    let started = waiting.await.unwrap();
    verify(&audit.events()).unwrap();
    (started, transport.statuses())
}

/// graph-reference.md §9.3: every enum of an operation update in any case (`changeType`,
/// the path segments, `@odata.type`, `status`, `completionReason`) reaches the same decision as
/// the documented camelCase: `completed` records, `failed` fails the call.
#[tokio::test(start_paused = true)]
async fn every_enum_of_an_operation_update_in_any_case_decides_alike() {
    let op = upper(OP);
    let call = upper(&this_call());
    for (change, path, odata, completed, reason, failed) in [
        (
            "deleted",
            format!("/communications/calls/{call}/operations/{op}"),
            "#microsoft.graph.updateRecordingStatusOperation",
            "completed",
            "completedSuccessfully",
            "failed",
        ),
        (
            "Deleted",
            format!("/Communications/Calls/{call}/Operations/{op}"),
            "#Microsoft.Graph.UpdateRecordingStatusOperation",
            "Completed",
            "CompletedSuccessfully",
            "Failed",
        ),
        (
            "DELETED",
            format!("/APP/CALLS/{call}/OPERATIONS/{op}"),
            "#MICROSOFT.GRAPH.UPDATERECORDINGSTATUSOPERATION",
            "COMPLETED",
            "COMPLETEDSUCCESSFULLY",
            "FAILED",
        ),
    ] {
        let entry = |status: &str| {
            json!({ "changeType": change, "resourceUrl": path, "resourceData": {
                "@odata.type": odata, "status": status, "completionReason": reason } })
        };
        let (started, sent) = settle_with(entry(completed)).await;
        assert!(
            matches!(started, Started::Recording(_)),
            "{change} {completed}: {started:?}"
        );
        assert_eq!(sent, ["recording"]);
        // One value per call in the process: this one goes before the next is opened.
        drop(started);
        let (started, sent) = settle_with(entry(failed)).await;
        assert!(
            matches!(started, Started::Failed(_)),
            "{change} {failed}: {started:?}"
        );
        assert_eq!(sent, ["recording", "failed"], "{change} {failed}");
    }
}

/// graph-reference.md §9.1: `changeType` says an operation finished (`deleted`) or changed
/// (`updated`), never how. Microsoft's `deleted` notification of a failed operation
/// (api-reference/v1.0/api/call-cancelmediaprocessing.md, retyped as the recording
/// operation) fails the call; a `completed` status settles it whatever the change type.
#[tokio::test(start_paused = true)]
async fn the_outcome_is_read_from_status_never_from_change_type() {
    let op_upper = upper(OP);
    let call_upper = upper(&this_call());
    let canceled = |change: &str, status: &str| {
        json!({
            "@odata.type": "#microsoft.graph.commsNotification",
            "changeType": change,
            "resourceUrl": format!("/communications/calls/{call_upper}/operations/{op_upper}"),
            "resourceData": {
                "@odata.type": OPERATION_TYPE,
                "@odata.id": format!("/communications/calls/{call_upper}/operations/{op_upper}"),
                "@odata.etag": "W/\"54451\"",
                "id": OP,
                "status": status,
                "resultInfo": if status == "failed" {
                    json!({ "@odata.type": "#microsoft.graph.resultInfo", "code": 400,
                        "subcode": 8508, "message": "Action failed, the operation was cancelled." })
                } else {
                    Value::Null
                },
            }
        })
    };
    for change in ["deleted", "updated"] {
        let (started, sent) = settle_with(canceled(change, "failed")).await;
        let Started::Failed(call) = started else {
            panic!("{change} failed: {started:?}")
        };
        assert!(
            matches!(call.reason(), recording_status::Error::OperationFailed(_)),
            "{:?}",
            call.reason()
        );
        assert_eq!(sent, ["recording", "failed"]);
        drop(call);
        let (started, _) = settle_with(canceled(change, "completed")).await;
        assert!(
            matches!(started, Started::Recording(_)),
            "{change} completed: {started:?}"
        );
    }
}
