//! Unit tests of [`notification`](super).

use super::*;
use crate::status::OperationStatus;

// api-reference/v1.0/api/call-delete.md, "Notification - terminating" and "Notification -
// terminated", verbatim.
const DOCS_TERMINATING: &str = r##"{
  "@odata.type": "#microsoft.graph.commsNotifications",
  "value": [
{
  "@odata.type": "#microsoft.graph.commsNotification",
  "changeType": "updated",
  "resourceUrl": "/communications/calls/57dab8b1-894c-409a-b240-bd8beae78896",
  "resourceData": {
    "@odata.type": "#microsoft.graph.call",
    "state": "terminating"
  }
}
  ]
}"##;
const DOCS_TERMINATED: &str = r##"{
  "@odata.type": "#microsoft.graph.commsNotifications",
  "value": [
{
  "@odata.type": "#microsoft.graph.commsNotification",
  "changeType": "deleted",
  "resourceUrl": "/communications/calls/57dab8b1-894c-409a-b240-bd8beae78896",
  "resourceData": {
    "@odata.type": "#microsoft.graph.call",
    "state": "terminated",
    "resultInfo": {
      "@odata.type": "#microsoft.graph.resultInfo",
      "code": "200",
      "subcode": "5001",
      "message": "The conversation has ended."
    }
  }
}
  ]
}"##;

#[test]
fn docs_call_state_notifications() {
    let terminating = parse_notifications(DOCS_TERMINATING.as_bytes()).unwrap();
    assert!(terminating.updates.is_empty() && terminating.ignored.is_empty());
    assert_eq!(terminating.calls.len(), 1);
    assert!(!terminating.calls[0].is_terminated());
    assert_eq!(terminating.calls[0].state.as_deref(), Some("terminating"));

    let terminated = parse_notifications(DOCS_TERMINATED.as_bytes()).unwrap();
    let call = &terminated.calls[0];
    assert!(call.is_terminated());
    assert_eq!(
        call.normalized_call_id().as_deref(),
        Some("57dab8b1894c409ab240bd8beae78896")
    );
    let info = call.result_info.as_ref().unwrap();
    assert_eq!((info.code, info.subcode), (Some(200), Some(5001)));
}

/// msteams-docs#9159: PascalCase state, `updated`, upper-case dash-less id in `resource`.
#[test]
fn pascal_case_terminated_with_the_notification_id_form() {
    let body = br##"{"value":[{"changeType":"updated",
        "resource":"/app/calls/57DAB8B1894C409AB240BD8BEAE78896",
        "resourceData":{"@odata.type":"#microsoft.graph.call","state":"Terminated",
        "resultInfo":{"code":408,"message":"Callee could not be reached.","subcode":8544}}}]}"##;
    let parsed = parse_notifications(body).unwrap();
    let call = &parsed.calls[0];
    assert!(call.is_terminated());
    assert_eq!(
        call.call_id.as_deref(),
        Some("57DAB8B1894C409AB240BD8BEAE78896")
    );
    assert_eq!(call.result_info.as_ref().unwrap().subcode, Some(8544));
}

/// A participant update is neither an operation nor the call's own state.
#[test]
fn participants_are_not_call_state() {
    let body = br##"{"value":[{"changeType":"updated",
        "resourceUrl":"/communications/calls/57DAB8B1894C409AB240BD8BEAE78896/participants",
        "resourceData":[{"@odata.type":"#microsoft.graph.participant","id":"p1"}]}]}"##;
    let parsed = parse_notifications(body).unwrap();
    assert!(parsed.calls.is_empty());
    assert_eq!(parsed.ignored.len(), 1);
}

// graph-reference.md §2.3: call-playprompt.md, "Notification - operation completed".
const DOCS_PLAY_PROMPT: &str = r##"{ "@odata.type": "#microsoft.graph.commsNotifications",
"value": [ { "@odata.type": "#microsoft.graph.commsNotification",
  "changeType": "deleted",
  "resourceUrl": "/communications/calls/57DAB8B1894C409AB240BD8BEAE78896/operations/0FE0623FD62842EDB4BD8AC290072CC5",
  "resourceData": { "@odata.type": "#microsoft.graph.playPromptOperation",
    "@odata.id": "/communications/calls/57DAB8B1894C409AB240BD8BEAE78896/operations/0FE0623FD62842EDB4BD8AC290072CC5",
    "@odata.etag": "W/\"54451\"",
    "resultInfo": { "@odata.type": "#microsoft.graph.resultInfo", "code": 200, "subcode": 0, "message": "Action completed successfully." },
    "clientContext": "d45324c1-fcb5-430a-902c-f20af696537c",
    "status": "completed" } } ] }"##;

// graph-reference.md §2.3: comms-samples#599 envelope (ids in full from the issue);
// `resourceData` abbreviated to its operation fields.
const SAMPLES_599: &str = r##"{ "@odata.type": "#microsoft.graph.commsNotifications",
"value": [ { "@odata.type": "#microsoft.graph.commsNotification",
  "changeType": "deleted",
  "resource": "/app/calls/401f5d00-10e5-40f1-b6b5-83ac2b74c79f/operations/c0b3aeee-8b14-4524-820a-16d2da4a4a8a",
  "resourceUrl": "/communications/calls/401f5d00-10e5-40f1-b6b5-83ac2b74c79f/operations/c0b3aeee-8b14-4524-820a-16d2da4a4a8a",
  "resourceData": { "@odata.type": "#microsoft.graph.inviteParticipantsOperation",
    "participants": [ { "@odata.type": "#microsoft.graph.invitationParticipantInfo" } ],
    "status": "completed" } } ] }"##;

fn parse(body: &str) -> Notifications {
    parse_notifications(body.as_bytes()).expect("parses")
}

fn only_update(n: &Notifications) -> &OperationUpdate {
    assert_eq!(n.updates.len(), 1, "{n:?}");
    &n.updates[0]
}

#[test]
fn docs_play_prompt_completed() {
    let n = parse(DOCS_PLAY_PROMPT);
    assert!(n.ignored.is_empty());
    let u = only_update(&n);
    let url = "/communications/calls/57DAB8B1894C409AB240BD8BEAE78896/operations/0FE0623FD62842EDB4BD8AC290072CC5";
    assert_eq!(u.change_type, ChangeType::Deleted);
    assert_eq!(u.resource.as_deref(), Some(url));
    assert_eq!(
        u.call_id.as_deref(),
        Some("57DAB8B1894C409AB240BD8BEAE78896")
    );
    assert_eq!(
        u.operation_id.as_deref(),
        Some("0FE0623FD62842EDB4BD8AC290072CC5")
    );
    assert_eq!(
        u.normalized_operation_id(),
        Some(normalize_id("0fe0623f-d628-42ed-b4bd-8ac290072cc5"))
    );
    assert_eq!(u.operation.status, Some(OperationStatus::Completed));
    assert_eq!(u.operation.id, None);
    assert_eq!(
        u.operation.client_context.as_deref(),
        Some("d45324c1-fcb5-430a-902c-f20af696537c")
    );
    assert_eq!(
        u.operation.result_info.as_ref().and_then(|r| r.code),
        Some(200)
    );
    assert_eq!(
        u.operation.odata_type.as_deref(),
        Some("#microsoft.graph.playPromptOperation")
    );
}

#[test]
fn docs_play_prompt_may_not_settle_recording() {
    // The docs' playPrompt completion carries the very operation id that the
    // updateRecordingStatus docs response uses (`0fe0623f-d628-42ed-b4bd-8ac290072cc5`),
    // and it is a successful completion: only its type keeps it from settling a pending
    // `recording` request with that id.
    let n = parse(DOCS_PLAY_PROMPT);
    let u = only_update(&n);
    assert_eq!(
        u.normalized_operation_id(),
        Some(normalize_id("0fe0623f-d628-42ed-b4bd-8ac290072cc5"))
    );
    assert!(u.operation.is_successful_completion());
    assert!(!u.operation.may_settle_recording());

    // The same body typed as the recording operation, as the base type, or untyped may.
    for replacement in [
        r##""@odata.type": "#microsoft.graph.updateRecordingStatusOperation""##,
        r##""@odata.type": "#microsoft.graph.commsOperation""##,
        r#""@odata.type": null"#,
        r#""untyped": true"#,
    ] {
        let body = DOCS_PLAY_PROMPT.replace(
            r##""@odata.type": "#microsoft.graph.playPromptOperation""##,
            replacement,
        );
        let u = parse(&body).updates.remove(0);
        assert!(u.operation.may_settle_recording(), "{replacement}");
    }
}

#[test]
fn samples_599_invite_participants_may_not_settle_recording() {
    let u = parse(SAMPLES_599).updates.remove(0);
    assert_eq!(u.operation.status, Some(OperationStatus::Completed));
    assert!(!u.operation.may_settle_recording());
}

// api-reference/v1.0/api/call-senddtmftones.md, "Notification - operation completed",
// "Error case 1", verbatim.
const DOCS_DTMF_ERROR_1: &str = r##"{
  "@odata.type": "#microsoft.graph.commsNotifications",
  "value": [
{
  "@odata.type": "#microsoft.graph.commsNotification",
  "changeType": "deleted",
  "resourceUrl": "/communications/calls/481f3600-983e-4276-9b59-c1b30ec8d125/operations/d36fe651-9f50-484d-bd4b-1e6415eae448",
  "resourceData": {
    "@odata.type": "#microsoft.graph.sendDtmfTonesOperation",
    "status": "completed",
    "completionReason": "mediaOperationCanceled",
    "clientContext": "e0be71f1-a14f-4cec-b65a-e7aba5db7c53",
    "id": "d36fe651-9f50-484d-bd4b-1e6415eae448"
  }
}
  ]
}"##;

#[test]
fn docs_send_dtmf_completion_reasons() {
    // "Error case 1" as quoted; "Successful case" and "Error case 2" differ from it only in
    // `completionReason`.
    for (reason, success) in [
        ("mediaOperationCanceled", false),
        ("completedSuccessfully", true),
        ("unknown", false),
    ] {
        let body = DOCS_DTMF_ERROR_1.replace("mediaOperationCanceled", reason);
        let n = parse(&body);
        let u = only_update(&n);
        assert_eq!(u.change_type, ChangeType::Deleted);
        assert_eq!(
            u.operation_id.as_deref(),
            Some("d36fe651-9f50-484d-bd4b-1e6415eae448")
        );
        assert_eq!(u.operation.status, Some(OperationStatus::Completed));
        assert_eq!(u.operation.completion_reason.as_deref(), Some(reason));
        assert_eq!(u.operation.is_successful_completion(), success, "{reason}");
        assert_eq!(u.operation.is_failure(), !success, "{reason}");
        assert!(!u.operation.may_settle_recording());
    }
}

#[test]
fn completed_recording_update_with_an_error_is_a_failure() {
    let body = r##"{"value":[{"changeType":"deleted",
      "resourceUrl":"/communications/calls/57DAB8B1894C409AB240BD8BEAE78896/operations/0FE0623FD62842EDB4BD8AC290072CC5",
      "resourceData":{"@odata.type":"#microsoft.graph.updateRecordingStatusOperation",
        "clientContext":"ctx-1","status":"completed",
        "resultInfo":{"@odata.type":"#microsoft.graph.resultInfo","code":500,"subcode":8510,"message":"x"}}}]}"##;
    let u = parse(body).updates.remove(0);
    assert!(u.operation.may_settle_recording());
    assert!(!u.operation.is_successful_completion());
    assert!(u.operation.is_failure());
}

#[test]
fn samples_599_resource_and_resource_url() {
    let n = parse(SAMPLES_599);
    let u = only_update(&n);
    assert_eq!(
        u.resource.as_deref(),
        Some(
            "/communications/calls/401f5d00-10e5-40f1-b6b5-83ac2b74c79f/operations/c0b3aeee-8b14-4524-820a-16d2da4a4a8a"
        )
    );
    assert_eq!(
        u.call_id.as_deref(),
        Some("401f5d00-10e5-40f1-b6b5-83ac2b74c79f")
    );
    assert_eq!(
        u.operation_id.as_deref(),
        Some("c0b3aeee-8b14-4524-820a-16d2da4a4a8a")
    );
    assert_eq!(u.operation.status, Some(OperationStatus::Completed));

    // Legacy `resource` alone is enough.
    let legacy = SAMPLES_599.replace("\"resourceUrl\"", "\"ignoredUrl\"");
    let u = parse(&legacy).updates.remove(0);
    assert!(
        u.resource
            .as_deref()
            .is_some_and(|r| r.starts_with("/app/"))
    );
    assert_eq!(
        u.normalized_call_id().as_deref(),
        Some("401f5d0010e540f1b6b583ac2b74c79f")
    );
    assert_eq!(
        u.normalized_operation_id().as_deref(),
        Some("c0b3aeee8b144524820a16d2da4a4a8a")
    );
}

#[test]
fn update_recording_status_pascal_case_completed() {
    let body = r##"{ "value": [ { "changeType": "Deleted",
      "resourceUrl": "https://graph.microsoft.com/v1.0/communications/calls/57dab8b1-894c-409a-b240-bd8beae78896/operations/0fe0623f-d628-42ed-b4bd-8ac290072cc5?x=1#frag",
      "resourceData": { "@odata.type": "#microsoft.graph.updateRecordingStatusOperation",
        "id": "0fe0623f-d628-42ed-b4bd-8ac290072cc5", "clientContext": "ctx-1",
        "resultInfo": null, "status": "Completed" } } ] }"##;
    let n = parse(body);
    let u = only_update(&n);
    assert_eq!(u.change_type, ChangeType::Deleted);
    assert_eq!(u.operation.status, Some(OperationStatus::Completed));
    assert_eq!(u.operation.client_context.as_deref(), Some("ctx-1"));
    assert_eq!(u.operation.result_info, None);
    assert!(u.operation.may_settle_recording());
    assert!(u.operation.is_successful_completion());
    assert_eq!(
        u.call_id.as_deref(),
        Some("57dab8b1-894c-409a-b240-bd8beae78896")
    );
    assert_eq!(
        u.operation_id.as_deref(),
        Some("0fe0623f-d628-42ed-b4bd-8ac290072cc5")
    );
}

#[test]
fn type_alone_or_path_alone_makes_an_operation() {
    // No path at all: the type says operation; the id comes from `resourceData.id`.
    let body = r##"{"value":[{"changeType":"updated","resourceData":{
        "@odata.type":"#microsoft.graph.COMMSOPERATION","id":"op-1","status":"running"}}]}"##;
    let u = parse(body).updates.remove(0);
    assert_eq!(u.operation_id.as_deref(), Some("op-1"));
    assert_eq!(u.call_id, None);
    assert_eq!(u.resource, None);
    assert_eq!(u.operation.status, Some(OperationStatus::Running));
    assert!(u.operation.may_settle_recording());

    // No type: the path says operation; `@odata.id` is the resource.
    let body = r#"{"value":[{"changeType":"deleted","resourceData":{
        "@odata.id":"/communications/calls/c1/operations/o1","status":"failed"}}]}"#;
    let u = parse(body).updates.remove(0);
    assert_eq!(
        u.resource.as_deref(),
        Some("/communications/calls/c1/operations/o1")
    );
    assert_eq!(
        (u.call_id.as_deref(), u.operation_id.as_deref()),
        (Some("c1"), Some("o1"))
    );
    assert_eq!(u.operation.status, Some(OperationStatus::Failed));
    assert_eq!(u.operation.odata_type, None);
    assert!(u.operation.may_settle_recording());
    assert!(u.operation.is_failure());
}

#[test]
fn resource_data_array() {
    let body = r##"{"value":[{"changeType":"deleted",
      "resourceUrl":"/communications/calls/CALL1/operations/ENVOP",
      "resourceData":[
        {"@odata.type":"#microsoft.graph.updateRecordingStatusOperation","id":"op-a","status":"completed"},
        {"@odata.type":"#microsoft.graph.updateRecordingStatusOperation",
         "@odata.id":"/communications/calls/CALL2/operations/op-b","status":"failed"},
        {"@odata.type":"#microsoft.graph.commsOperation","status":"running"},
        7
      ]}]}"##;
    let n = parse(body);
    assert_eq!(n.updates.len(), 3);
    let ids: Vec<_> = n
        .updates
        .iter()
        .map(|u| (u.call_id.as_deref(), u.operation_id.as_deref()))
        .collect();
    // updateRecordingStatusOperation and commsOperation elements may settle a recording.
    assert!(n.updates.iter().all(|u| u.operation.may_settle_recording()));
    // Own `id` beats the shared path; own `@odata.id` beats both; the shared path is the
    // fallback for an element with no id of its own.
    assert_eq!(
        ids,
        [
            (Some("CALL1"), Some("op-a")),
            (Some("CALL2"), Some("op-b")),
            (Some("CALL1"), Some("ENVOP")),
        ]
    );
    assert!(
        n.updates
            .iter()
            .all(|u| u.resource.as_deref() == Some("/communications/calls/CALL1/operations/ENVOP"))
    );
    assert_eq!(
        n.ignored,
        [Ignored {
            index: 0,
            reason: IgnoreReason::NotAnObject
        }]
    );
}

#[test]
fn call_state_is_read_and_participant_updates_are_ignored() {
    // Shape of comms-samples#700 (call state) and #77 (participants, legacy `resource`).
    let body = r##"{ "@odata.type": "#microsoft.graph.commsNotifications", "value": [
      { "@odata.type": "#microsoft.graph.commsNotification", "changeType": "Updated",
        "resourceUrl": "/communications/calls/811f5c00-0e32-48ce-9f27-8d77b9892453",
        "resource": "/app/calls/811f5c00-0e32-48ce-9f27-8d77b9892453",
        "resourceData": { "@odata.type": "#microsoft.graph.call", "state": "Established",
          "meetingInfo": { "tokenMeetingInfo": { "token": "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.secret.sig" } } } },
      { "changeType": "updated", "resource": "/app/calls/451f0a00-ea04-4c8f-90d8-cddf1ac603d5/participants",
        "resourceData": [ { "@odata.type": "#microsoft.graph.participant", "id": "p1" },
                          { "@odata.type": "#microsoft.graph.participant", "id": "p2" } ] } ] }"##;
    let n = parse(body);
    assert!(n.updates.is_empty());
    // The call's own state is read (not its meeting token), the participants are not.
    assert_eq!(n.calls.len(), 1);
    assert_eq!(n.calls[0].state.as_deref(), Some("Established"));
    assert!(!n.calls[0].is_terminated());
    assert!(!format!("{:?}", n.calls).contains("secret"));
    assert_eq!(
        n.ignored,
        [Ignored {
            index: 1,
            reason: IgnoreReason::NotAnOperation
        }]
    );
    assert!(!format!("{n:?}").contains("secret"));
}

#[test]
fn unknown_change_type_is_kept() {
    let body = DOCS_PLAY_PROMPT.replace("\"deleted\"", "\"archived\"");
    let u = parse(&body).updates.remove(0);
    assert_eq!(u.change_type, ChangeType::Unknown("archived".into()));
    for (wire, ct) in [
        ("CREATED", ChangeType::Created),
        ("Updated", ChangeType::Updated),
        ("deleted", ChangeType::Deleted),
        ("", ChangeType::Unknown(String::new())),
    ] {
        assert_eq!(ChangeType::parse(wire), ct);
    }
    let json = serde_json::to_string(&ChangeType::Deleted).unwrap();
    assert_eq!(json, "\"deleted\"");
    let back: ChangeType = serde_json::from_str("\"Deleted\"").unwrap();
    assert_eq!(back, ChangeType::Deleted);
    let unknown = serde_json::to_string(&ChangeType::Unknown("x".into())).unwrap();
    assert_eq!(unknown, "\"x\"");
}

#[test]
fn missing_and_wrong_typed_fields() {
    let body = r##"{"value":[
        {},
        {"changeType":"deleted","resourceUrl":"/communications/calls/c/operations/o"},
        {"changeType":"deleted","resourceData":null},
        {"changeType":"deleted","resourceData":[]},
        {"changeType":"deleted","resourceData":"text"},
        {"resourceUrl":"/communications/calls/c/operations/o","resourceData":{}},
        {"changeType":5,"resourceUrl":7,"resource":["x"],
         "resourceData":{"@odata.type":3,"@odata.id":{},"id":1e400,"status":[],"resultInfo":"no"}},
        {"changeType":"deleted","resourceUrl":"/communications/calls//operations/",
         "resourceData":{"@odata.type":"#microsoft.graph.commsOperation"}},
        "entry",
        null
    ]}"##;
    let n = parse_notifications(body.as_bytes());
    // `1e400` is out of range for serde_json: the whole body is not JSON.
    assert_eq!(n, Err(NotificationError::NotJson));

    let body = body.replace("1e400", "123456789012345678901234567890");
    let n = parse(&body);
    assert_eq!(n.updates.len(), 2, "{n:?}");
    let u = &n.updates[0];
    assert_eq!(u.change_type, ChangeType::Unknown(String::new()));
    assert_eq!(
        (u.call_id.as_deref(), u.operation_id.as_deref()),
        (Some("c"), Some("o"))
    );
    assert_eq!(u.operation.status, None);
    let u = &n.updates[1];
    assert_eq!(
        (u.call_id.as_deref(), u.operation_id.as_deref()),
        (None, None)
    );
    let reasons: Vec<_> = n.ignored.iter().map(|i| (i.index, i.reason)).collect();
    assert_eq!(
        reasons,
        [
            (0, IgnoreReason::NoResourceData),
            (1, IgnoreReason::NoResourceData),
            (2, IgnoreReason::NoResourceData),
            (3, IgnoreReason::NoResourceData),
            (4, IgnoreReason::NoResourceData),
            (6, IgnoreReason::NotAnOperation),
            (8, IgnoreReason::NotAnObject),
            (9, IgnoreReason::NotAnObject),
        ]
    );
}

#[test]
fn not_json() {
    for body in [
        &b""[..],
        b"   ",
        b"not json",
        b"{\"value\": [",
        b"\xff\xfe{\"value\":[]}",
        b"{\"value\":[\"\xc3\x28\"]}",
    ] {
        assert_eq!(parse_notifications(body), Err(NotificationError::NotJson));
    }
    // Deeper than serde_json's recursion limit: an error, not a stack overflow.
    let deep = format!(
        r#"{{"value":[{}{}]}}"#,
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    assert_eq!(
        parse_notifications(deep.as_bytes()),
        Err(NotificationError::NotJson)
    );
}

#[test]
fn no_value_array() {
    for body in [
        r#"{"value": 5}"#,
        r#"{"value": null}"#,
        r#"{"value": {}}"#,
        "{}",
        "[]",
        "5",
        "\"value\"",
    ] {
        assert_eq!(
            parse_notifications(body.as_bytes()),
            Err(NotificationError::NoValueArray),
            "{body}"
        );
    }
    assert_eq!(
        parse(r#"{"value": []}"#),
        Notifications {
            updates: Vec::new(),
            calls: Vec::new(),
            ignored: Vec::new()
        }
    );
}

#[test]
fn many_ignored_entries_stay_linear() {
    let n = MAX_NOTIFICATION_BYTES / 6;
    let body = format!(r#"{{"value":[{}0]}}"#, "null,".repeat(n));
    let start = std::time::Instant::now();
    let parsed = parse(&body);
    assert_eq!(parsed.ignored.len(), n + 1);
    assert!(start.elapsed() < std::time::Duration::from_secs(10));
}

#[test]
fn too_large() {
    let mut body = DOCS_PLAY_PROMPT.as_bytes().to_vec();
    body.resize(MAX_NOTIFICATION_BYTES + 1, b' ');
    let err = parse_notifications(&body).unwrap_err();
    assert_eq!(
        err,
        NotificationError::TooLarge {
            len: MAX_NOTIFICATION_BYTES + 1
        }
    );
    body.truncate(MAX_NOTIFICATION_BYTES);
    assert_eq!(parse_notifications(&body).unwrap().updates.len(), 1);
}

#[test]
fn errors_are_lowercase_and_never_echo_the_body() {
    let secret = br#"{"value": 5, "tokenMeetingInfo": {"token": "eyJsecret"}}"#;
    let broken = br#"{"tokenMeetingInfo": {"token": "eyJsecret"}"#;
    for body in [&secret[..], &broken[..]] {
        let err = parse_notifications(body).unwrap_err();
        let shown = format!("{err} {err:?}");
        assert!(!shown.contains("eyJ"), "{shown}");
        assert!(err.to_string().starts_with("notification"));
    }
    let big = NotificationError::TooLarge { len: 2 }.to_string();
    assert_eq!(big, big.to_lowercase());
}

#[test]
fn normalized_ids_match_across_forms() {
    let update = |id: &str| OperationUpdate {
        change_type: ChangeType::Deleted,
        resource: None,
        call_id: Some(id.to_owned()),
        operation_id: Some(id.to_owned()),
        operation: Operation::from_json(&serde_json::json!({})).unwrap(),
    };
    let a = update("57DAB8B1894C409AB240BD8BEAE78896");
    let b = update("57dab8b1-894c-409a-b240-bd8beae78896");
    assert_eq!(a.normalized_call_id(), b.normalized_call_id());
    assert_eq!(a.normalized_operation_id(), b.normalized_operation_id());
    assert_eq!(
        a.normalized_call_id().as_deref(),
        Some("57dab8b1894c409ab240bd8beae78896")
    );
}

#[test]
fn path_parsing() {
    let p = parse_path("https://graph.microsoft.com/beta/communications/calls/C/operations/O?$x=1");
    assert_eq!(
        (p.call_id, p.operation_id, p.operations),
        (Some("C"), Some("O"), true)
    );
    let p = parse_path("https://app/calls/X");
    assert_eq!((p.call_id, p.operations), (None, false));
    let p = parse_path("/app/calls/C/participants/P#operations/x");
    assert_eq!(
        (p.call_id, p.operation_id, p.operations),
        (Some("C"), None, false)
    );
    let p = parse_path("/communications/calls/../operations/./x");
    assert_eq!(
        (p.call_id, p.operation_id, p.operations),
        (None, None, true)
    );
    for weird in [
        "",
        "/",
        "://",
        "https://",
        "?",
        "#",
        "calls",
        "/communications/calls",
    ] {
        let p = parse_path(weird);
        assert_eq!((p.call_id, p.operation_id), (None, None), "{weird}");
    }
    assert!(ends_with_operation("#microsoft.graph.PlayPromptOPERATION"));
    assert!(!ends_with_operation("ration"));
    assert!(!ends_with_operation("#microsoft.graph.participant"));
    assert!(!ends_with_operation("é"));
}

// api-reference/v1.0/api/call-cancelmediaprocessing.md, "Notification - Operation canceled
// for recordResponse", verbatim.
const DOCS_CANCELED: &str = r##"{
  "@odata.type": "#microsoft.graph.commsNotifications",
  "value": [
    {
      "@odata.type": "#microsoft.graph.commsNotification",
      "changeType": "deleted",
      "resourceUrl": "/communications/calls/57DAB8B1894C409AB240BD8BEAE78896/operations/0FE0623FD62842EDB4BD8AC290072CC5",
      "resourceData": {
        "@odata.type": "#microsoft.graph.recordOperation",
        "@odata.id": "/communications/calls/57DAB8B1894C409AB240BD8BEAE78896/operations/0FE0623FD62842EDB4BD8AC290072CC5",
        "@odata.etag": "W/\"54451\"",
        "id": "0fe0623f-d628-42ed-b4bd-8ac290072cc5",
        "clientContext": "d45324c1-fcb5-430a-902c-f20af696537c",
        "status": "failed",
        "resultInfo": {
          "@odata.type": "#microsoft.graph.resultInfo",
          "code": 400,
          "subcode": 8508,
          "message": "Action failed, the operation was cancelled."
        },
        "recordingLocation": "",
        "recordingAccessToken": "",
        "completionReason": "operationCanceled"
      }
    }
  ]
}"##;

/// graph-reference.md §9.1 and §9.4: `changeType: deleted` says the operation finished, not
/// that it succeeded; and one notification spells the same operation id both ways (upper-case
/// dash-less in the paths, dashed in `resourceData.id`), which read as one id.
#[test]
fn docs_deleted_is_finished_not_successful_and_mixes_id_forms() {
    let update = parse(DOCS_CANCELED).updates.remove(0);
    assert_eq!(update.change_type, ChangeType::Deleted);
    assert!(update.operation.is_failure());
    assert!(!update.operation.is_successful_completion());
    let info = update.operation.result_info.as_ref().unwrap();
    assert_eq!((info.code, info.subcode), (Some(400), Some(8508)));
    assert_eq!(
        update.normalized_operation_id(),
        update.operation.id.as_deref().map(normalize_id)
    );
    assert_eq!(
        update.normalized_call_id().as_deref(),
        Some("57dab8b1894c409ab240bd8beae78896")
    );

    // Typed as the recording operation, the same `deleted` entry is still a failure, and with
    // `status: completed` (no error) a success: only `status` and the error fields decide.
    let recording = DOCS_CANCELED.replace("recordOperation", "updateRecordingStatusOperation");
    let failed = parse(&recording).updates.remove(0);
    assert!(failed.operation.may_settle_recording() && failed.operation.is_failure());
    let completed = recording
        .replace(r#""status": "failed""#, r#""status": "completed""#)
        .replace(r#""code": 400"#, r#""code": 200"#)
        .replace(r#""completionReason": "operationCanceled""#, r#""x": 0"#);
    let completed = parse(&completed).updates.remove(0);
    assert!(completed.operation.is_successful_completion());
    let updated = DOCS_CANCELED.replace(r#""changeType": "deleted""#, r#""changeType": "updated""#);
    assert!(parse(&updated).updates[0].operation.is_failure());
}

// api-reference/v1.0/api/call-transfer.md, example 2: "Notification - transfer completed"
// (code 0, subcode 7015; in example 1 the same notification has only a terminationReason)
// and "Notification - transfer failed" (the call stays established; the key is `subCode`).
const DOCS_TRANSFER_COMPLETED: &str = r##"{
  "@odata.type": "#microsoft.graph.commsNotifications",
  "value": [
    {
      "@odata.type": "#microsoft.graph.commsNotification",
      "changeType": "deleted",
      "resourceUrl": "/communications/calls/341a0500-d4bf-4224-8b19-1581168d328b",
      "resourceData": {
        "@odata.type": "#microsoft.graph.call",
        "state": "terminated",
        "resultInfo": {
          "@odata.type": "#microsoft.graph.resultInfo",
          "code": 0,
          "subcode": 7015,
          "message": "GracefulTransferCompleted"
        }
      }
    }
  ]
}"##;
const DOCS_TRANSFER_FAILED: &str = r##"{
  "@odata.type": "#microsoft.graph.commsNotifications",
  "value": [
    {
      "@odata.type": "#microsoft.graph.commsNotification",
      "changeType": "updated",
      "resourceUrl": "/communications/calls/341a0500-d4bf-4224-8b19-1581168d328b",
      "resourceData": {
        "@odata.type": "#microsoft.graph.call",
        "state": "established",
        "resultInfo": {
          "@odata.type": "#microsoft.graph.resultInfo",
          "code": 500,
          "subCode": 7700,
          "message": "<message>"
        },
        "replacesContext": "<replacesContext>"
      }
    }
  ]
}"##;

/// graph-reference.md §9.2: `resultInfo` as the transfer docs send it. A code of 0 ends the
/// call all the same; an error code on a call that stays established does not end it; a
/// `terminated` call with no `resultInfo` at all is ended too.
#[test]
fn docs_call_transfer_result_infos() {
    let completed = parse(DOCS_TRANSFER_COMPLETED).calls.remove(0);
    assert!(completed.is_terminated());
    let info = completed.result_info.unwrap();
    assert_eq!((info.code, info.subcode), (Some(0), Some(7015)));

    let failed = parse(DOCS_TRANSFER_FAILED).calls.remove(0);
    assert!(!failed.is_terminated());
    let info = failed.result_info.unwrap();
    assert_eq!((info.code, info.subcode), (Some(500), Some(7700)));

    let reason_only = DOCS_TRANSFER_COMPLETED.replace(
        r#""resultInfo": {"#,
        r#""terminationReason": "AppTransferred", "ignored": {"#,
    );
    let call = parse(&reason_only).calls.remove(0);
    assert!(call.is_terminated() && call.result_info.is_none());
}

/// graph-reference.md §9.3: every enum string the parser reads is compared ignoring case:
/// `changeType`, the operation's `status` and `completionReason`, the call's `state`, the
/// `@odata.type` names (recording operation, call) and the path segments (`communications`,
/// `app`, `calls`, `operations`). Each word of a body, spelled camelCase, PascalCase, upper
/// or lower case, reads as the body does with the documented spelling.
#[test]
fn every_enum_is_read_ignoring_case() {
    fn spellings(word: &str) -> [String; 4] {
        let mut pascal = word.to_owned();
        pascal[..1].make_ascii_uppercase();
        [
            word.to_owned(),
            pascal,
            word.to_ascii_uppercase(),
            word.to_ascii_lowercase(),
        ]
    }
    /// Reads `base` with each word of `words` (found inside its delimiters) spelled each way.
    fn each_spelling<T: PartialEq + fmt::Debug>(
        base: &str,
        words: &[(&str, &str)],
        read: impl Fn(&Notifications) -> T,
        expected: &T,
    ) {
        assert_eq!(&read(&parse(base)), expected, "{base}");
        for (around, word) in words {
            assert!(base.contains(around), "{around}");
            for spelled in spellings(word) {
                let body = base.replace(around, &around.replace(word, &spelled));
                assert_eq!(&read(&parse(&body)), expected, "{spelled} in {body}");
            }
        }
    }
    let operation = |n: &Notifications| {
        n.updates.first().map(|u| {
            (
                u.change_type.clone(),
                u.call_id.clone(),
                u.operation_id.clone(),
                u.operation.may_settle_recording(),
                u.operation.is_successful_completion(),
                u.operation.is_failure(),
            )
        })
    };
    let completed = r##"{"value":[{"changeType":"deleted",
        "resourceUrl":"/communications/calls/C1/operations/O1",
        "resourceData":{"@odata.type":"#microsoft.graph.updateRecordingStatusOperation",
        "status":"completed","completionReason":"completedSuccessfully"}}]}"##;
    let words = [
        (r#""deleted""#, "deleted"),
        ("/communications/", "communications"),
        ("/calls/", "calls"),
        ("/operations/", "operations"),
        (
            "#microsoft.graph.updateRecordingStatusOperation",
            "microsoft.graph.updateRecordingStatusOperation",
        ),
        (r#""completed""#, "completed"),
        (r#""completedSuccessfully""#, "completedSuccessfully"),
    ];
    let ids = (Some("C1".to_owned()), Some("O1".to_owned()));
    let done = (ChangeType::Deleted, ids.0.clone(), ids.1.clone());
    each_spelling(
        completed,
        &words,
        operation,
        &Some((
            done.0.clone(),
            done.1.clone(),
            done.2.clone(),
            true,
            true,
            false,
        )),
    );
    let failed = completed.replace(r#""completed""#, r#""failed""#);
    each_spelling(
        &failed,
        &[(r#""failed""#, "failed")],
        operation,
        &Some((
            done.0.clone(),
            done.1.clone(),
            done.2.clone(),
            true,
            false,
            true,
        )),
    );
    let running = completed
        .replace(r#""deleted""#, r#""updated""#)
        .replace(r#""completed""#, r#""notStarted""#);
    each_spelling(
        &running,
        &[
            (r#""updated""#, "updated"),
            (r#""notStarted""#, "notStarted"),
        ],
        operation,
        &Some((ChangeType::Updated, ids.0, ids.1, true, false, false)),
    );
    let legacy = completed.replace("/communications/", "/app/");
    each_spelling(
        &legacy,
        &[("/app/", "app")],
        operation,
        &operation(&parse(completed)),
    );

    let call = |n: &Notifications| {
        n.calls
            .first()
            .map(|c| (c.is_terminated(), c.call_id.clone()))
    };
    let ended = Some((true, Some("C1".to_owned())));
    let terminated = r##"{"value":[{"changeType":"updated",
        "resourceUrl":"/communications/calls/C1",
        "resourceData":{"@odata.type":"#microsoft.graph.call","state":"terminated"}}]}"##;
    each_spelling(
        terminated,
        &[(r#""terminated""#, "terminated")],
        call,
        &ended,
    );
    // Without a `state`, only the type says this is the call's own state, and only the
    // change type says it ended.
    let deleted = r##"{"value":[{"changeType":"deleted",
        "resourceUrl":"/communications/calls/C1",
        "resourceData":{"@odata.type":"#microsoft.graph.call"}}]}"##;
    each_spelling(
        deleted,
        &[
            (r#""deleted""#, "deleted"),
            ("#microsoft.graph.call", "microsoft.graph.call"),
        ],
        call,
        &ended,
    );
}

/// graph-reference.md §9.4: a call or operation id reads as the same id, normalised, in
/// either form (a GUID with dashes, upper-case without) in every field that carries one:
/// `resourceUrl`, legacy `resource`, `resourceData`'s `@odata.id` and `id`, for operation and
/// call-state entries alike.
#[test]
fn ids_in_either_form_in_every_field() {
    const CALL: &str = "57dab8b1-894c-409a-b240-bd8beae78896";
    const OP: &str = "0fe0623f-d628-42ed-b4bd-8ac290072cc5";
    let forms = |id: &str| [id.to_owned(), id.replace('-', "").to_ascii_uppercase()];
    let (call_key, op_key) = (normalize_id(CALL), normalize_id(OP));
    for call in forms(CALL) {
        for op in forms(OP) {
            let path = format!("/communications/calls/{call}/operations/{op}");
            let legacy = format!("/app/calls/{call}/operations/{op}");
            for entry in [
                format!(r#""resourceUrl":"{path}","resourceData":{{"status":"completed"}}"#),
                format!(r#""resource":"{legacy}","resourceData":{{"status":"completed"}}"#),
                format!(r#""resourceData":{{"@odata.id":"{path}","status":"completed"}}"#),
                format!(
                    r#""resourceUrl":"/communications/calls/{call}","resourceData":{{"@odata.type":"commsOperation","id":"{op}","status":"completed"}}"#
                ),
                format!(
                    r#""resourceUrl":"/communications/calls/{call}","resourceData":[{{"@odata.type":"commsOperation","id":"{op}","status":"completed"}}]"#
                ),
            ] {
                let body = format!(r#"{{"value":[{{"changeType":"deleted",{entry}}}]}}"#);
                let u = parse(&body).updates.remove(0);
                assert_eq!(u.normalized_call_id().as_ref(), Some(&call_key), "{entry}");
                assert_eq!(
                    u.normalized_operation_id().as_ref(),
                    Some(&op_key),
                    "{entry}"
                );
            }
        }
        for entry in [
            format!(r#""resourceUrl":"/communications/calls/{call}""#),
            format!(r#""resource":"/app/calls/{call}""#),
        ] {
            let body = format!(
                r##"{{"value":[{{"changeType":"deleted",{entry},"resourceData":{{"@odata.type":"#microsoft.graph.call","state":"terminated"}}}}]}}"##
            );
            let c = parse(&body).calls.remove(0);
            assert_eq!(c.normalized_call_id().as_ref(), Some(&call_key), "{entry}");
        }
    }
}
