//! Graph's `8522` ("Call not found", comms-samples#173), whatever the HTTP status, ends the
//! call as a `terminated` notification does: the driver revokes its retention, sends nothing
//! more for it, records `call_terminated` and tells the bot.

use std::sync::Arc;
use std::time::Duration;

use recording_status::audit::{AuditKind, MemorySink, verify};
use recording_status::driver::{Driver, DriverConfig, DriverEvent, Started};
use recording_status::response::{GraphError, Permanent};
use recording_status::testing::{ScriptedTransport, Step};
use recording_status::{AccessToken, Error, Graph, StopError};

use crate::support::ids::this_call;

fn call_not_found(status: u16) -> Step {
    Step::json(
        status,
        r#"{"error":{"code":"8522","message":"Call not found.","innerError":{"request-id":"7ebde706-ab9e-4495-b901-7ab4b0ce91ba","date":"2021-05-06T05:26:40"}}}"#,
    )
}

/// Whatever the HTTP status, and whether the code is a string or a number (graph-reference.md
/// §9.2), or nested in an `innerError`.
#[test]
fn code_8522_is_call_not_found_whatever_the_status() {
    for status in [400, 404, 409, 500, 503] {
        for body in [
            r#"{"error":{"code":"8522","message":"Call not found."}}"#,
            r#"{"error":{"code":8522,"message":"Call not found."}}"#,
            r#"{"error":{"code":"BadRequest","innerError":{"code":"8522"}}}"#,
        ] {
            let response = http::Response::builder()
                .status(status)
                .body(body.as_bytes().to_vec())
                .unwrap();
            let error = GraphError::from_response(&response);
            assert_eq!(
                error.permanent(),
                Some(Permanent::CallNotFound),
                "{status} {body}"
            );
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_begin_answered_8522_ends_the_call() {
    let audit = Arc::new(MemorySink::default());
    let transport = ScriptedTransport::new().then(call_not_found(500));
    let graph = Graph::new(transport, AccessToken::new("token"));
    let (driver, mut events) = Driver::new(graph, audit.clone(), DriverConfig::default());
    let call = driver.call(this_call().parse().unwrap()).unwrap();
    let Ok(Started::Failed(call)) = driver.begin_recording(call).await else {
        panic!("not recording");
    };
    assert!(
        matches!(call.reason(), Error::Graph(_)),
        "{:?}",
        call.reason()
    );
    let event = events.try_recv().unwrap();
    assert!(
        matches!(&event, DriverEvent::CallTerminated { call_id, result_info: Some(info) }
            if call_id.as_str() == this_call() && info.subcode == Some(8522)),
        "{event:?}"
    );
    // Nothing more is sent for it.
    let again = driver.begin_recording(call).await;
    assert!(
        matches!(&again, Err(not_sent) if matches!(not_sent.error, Error::CallEnded)),
        "{again:?}"
    );
    assert_eq!(driver.graph().transport().statuses(), ["recording"]);
    assert!(audit.events().iter().any(|e| matches!(
        e.kind,
        AuditKind::CallTerminated {
            subcode: Some(8522),
            ..
        }
    )));
    verify(&audit.events()).unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_stop_answered_8522_ends_the_call() {
    let audit = Arc::new(MemorySink::default());
    let transport = ScriptedTransport::new()
        .then(Step::completed())
        .then(call_not_found(404))
        .then(Step::completed());
    let graph = Graph::new(transport, AccessToken::new("token"));
    let config = DriverConfig::default().with_drain_deadline(Duration::from_secs(1));
    let (driver, mut events) = Driver::new(graph, audit.clone(), config);
    let call = driver.call(this_call().parse().unwrap()).unwrap();
    let Ok(Started::Recording(call)) = driver.begin_recording(call).await else {
        panic!("recording");
    };
    let stopped = driver.stop_recording(call).await;
    let Err(StopError::Unacknowledged { call }) = stopped else {
        panic!("{stopped:?}");
    };
    assert!(matches!(
        events.try_recv(),
        Ok(DriverEvent::CallTerminated { .. })
    ));
    let again = driver.begin_recording(call).await;
    assert!(again.is_err(), "the call ended: {again:?}");
    verify(&audit.events()).unwrap();
}

/// A notification Graph resends (`X-Microsoft-Skype-Original-Message-ID` naming the first
/// delivery, msteams-docs#9170) is applied once: the call ends once, the bot is told once, and
/// the trail records the resend.
#[tokio::test]
async fn a_resent_notification_is_applied_once() {
    use recording_status::auth::Authenticated;
    use recording_status::driver::{MESSAGE_ID_HEADER, ORIGINAL_MESSAGE_ID_HEADER};

    let audit = Arc::new(MemorySink::default());
    let graph = Graph::new(ScriptedTransport::new(), AccessToken::new("token"));
    let (driver, mut events) = Driver::new(graph, audit.clone(), DriverConfig::default());
    let proof = Authenticated::danger_authenticated_elsewhere("test");
    let terminated = format!(
        r##"{{"@odata.type":"#microsoft.graph.commsNotifications","value":[{{"@odata.type":"#microsoft.graph.commsNotification","changeType":"deleted","resourceUrl":"/communications/calls/{id}","resourceData":{{"@odata.type":"#microsoft.graph.call","state":"terminated","resultInfo":{{"@odata.type":"#microsoft.graph.resultInfo","code":200,"subcode":5001,"message":"The conversation has ended."}}}}}}]}}"##,
        id = this_call()
    );
    fn headers(pairs: &[(&'static str, &str)]) -> http::HeaderMap {
        let mut map = http::HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, value.parse().unwrap());
        }
        map
    }
    let first = headers(&[(MESSAGE_ID_HEADER, "b5cb158e-6cf1-429c-a7e6-67f360012b99")]);
    let delivery = driver
        .hub()
        .deliver_message(&proof, &first, terminated.as_bytes())
        .unwrap();
    assert_eq!((delivery.terminated, delivery.redelivered), (1, false));

    for resend in [
        headers(&[
            (MESSAGE_ID_HEADER, "0d5a2a60-8b4b-4d51-9d43-3b6b3c0a1a11"),
            (
                ORIGINAL_MESSAGE_ID_HEADER,
                "b5cb158e-6cf1-429c-a7e6-67f360012b99",
            ),
        ]),
        // The same message again, id in another case.
        headers(&[(MESSAGE_ID_HEADER, "B5CB158E-6CF1-429C-A7E6-67F360012B99")]),
    ] {
        let delivery = driver
            .hub()
            .deliver_message(&proof, &resend, terminated.as_bytes())
            .unwrap();
        assert_eq!((delivery.terminated, delivery.redelivered), (0, true));
    }
    assert!(matches!(
        events.try_recv(),
        Ok(DriverEvent::CallTerminated { .. })
    ));
    assert!(events.try_recv().is_err(), "told once");
    let resends = audit
        .events()
        .iter()
        .filter(|e| matches!(e.kind, AuditKind::NotificationRedelivered { .. }))
        .count();
    assert_eq!(resends, 2);
    verify(&audit.events()).unwrap();
}

/// The auditor's summary and timeline show a call Graph hung up on as ended by Graph, its
/// recording time ending at the revocation, not as still `Recording`.
#[tokio::test(start_paused = true)]
async fn the_summary_shows_a_call_graph_hung_up_on_as_ended_by_graph() {
    use recording_status::CallState;
    use recording_status::audit::{summary, timeline};
    use recording_status::auth::Authenticated;

    let audit = Arc::new(MemorySink::default());
    let transport = ScriptedTransport::new().then(Step::completed());
    let graph = Graph::new(transport, AccessToken::new("token"));
    let (driver, _events) = Driver::new(graph, audit.clone(), DriverConfig::default());
    let call = driver.call(this_call().parse().unwrap()).unwrap();
    let Ok(Started::Recording(call)) = driver.begin_recording(call).await else {
        panic!("recording");
    };
    tokio::time::sleep(Duration::from_millis(5)).await;
    let terminated = format!(
        r##"{{"value":[{{"changeType":"deleted","resourceUrl":"/communications/calls/{id}","resourceData":{{"@odata.type":"#microsoft.graph.call","state":"terminated"}}}}]}}"##,
        id = this_call()
    );
    let proof = Authenticated::danger_authenticated_elsewhere("test");
    driver.hub().deliver(&proof, terminated.as_bytes()).unwrap();
    // Later the bot drops the value without ending it: the recording time ended with Graph's
    // hang-up, and the call reads ended, not `Recording`.
    std::thread::sleep(Duration::from_millis(30));
    drop(call);
    tokio::task::yield_now().await;
    let events = audit.events();
    let calls = summary(&events);
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].final_state, Some(CallState::Ended));
    assert!(calls[0].ended_by_graph);
    assert!(
        calls[0].recording_ms < 30,
        "recording ends at the hang-up: {} ms",
        calls[0].recording_ms
    );
    let svg = timeline(&events, &this_call()).unwrap();
    assert!(svg.contains("ended by Graph"), "{svg}");
}

/// graph-reference.md §9.4 and §9.10: message ids are GUIDs too, and come in either form; a
/// resend whose `X-Microsoft-Skype-Original-Message-ID` spells the first delivery's id
/// upper-case without dashes is the same message, applied once.
#[tokio::test]
async fn a_resend_naming_the_first_message_in_the_other_id_form_is_applied_once() {
    use recording_status::auth::Authenticated;
    use recording_status::driver::{MESSAGE_ID_HEADER, ORIGINAL_MESSAGE_ID_HEADER};

    let audit = Arc::new(MemorySink::default());
    let graph = Graph::new(ScriptedTransport::new(), AccessToken::new("token"));
    let (driver, mut events) = Driver::new(graph, audit.clone(), DriverConfig::default());
    let proof = Authenticated::danger_authenticated_elsewhere("test");
    let terminated = format!(
        r##"{{"value":[{{"changeType":"deleted","resourceUrl":"/communications/calls/{id}","resourceData":{{"@odata.type":"#microsoft.graph.call","state":"terminated"}}}}]}}"##,
        id = this_call()
    );
    let mut first = http::HeaderMap::new();
    first.insert(
        MESSAGE_ID_HEADER,
        "b5cb158e-6cf1-429c-a7e6-67f360012b99".parse().unwrap(),
    );
    let mut resend = http::HeaderMap::new();
    resend.insert(
        MESSAGE_ID_HEADER,
        "0D5A2A608B4B4D519D433B6B3C0A1A11".parse().unwrap(),
    );
    resend.insert(
        ORIGINAL_MESSAGE_ID_HEADER,
        "B5CB158E6CF1429CA7E667F360012B99".parse().unwrap(),
    );
    let hub = driver.hub();
    let d = hub
        .deliver_message(&proof, &first, terminated.as_bytes())
        .unwrap();
    assert_eq!((d.terminated, d.redelivered), (1, false));
    let d = hub
        .deliver_message(&proof, &resend, terminated.as_bytes())
        .unwrap();
    assert_eq!((d.terminated, d.redelivered), (0, true));
    assert!(matches!(
        events.try_recv(),
        Ok(DriverEvent::CallTerminated { .. })
    ));
    assert!(events.try_recv().is_err(), "told once");
    // The trail keeps the ids as Graph sent them.
    assert!(audit.events().iter().any(|e| matches!(
        &e.kind,
        AuditKind::NotificationRedelivered { original_message_id: Some(id), .. }
            if id == "B5CB158E6CF1429CA7E667F360012B99"
    )));
}

/// graph-reference.md §9.8: call-state notifications may arrive out of order, and only the end
/// of the call ends it. `established`, a late `establishing`, `terminating`, a failed transfer
/// (the call stays `established`, with an error `resultInfo`, call-transfer.md) and the
/// notification of an incoming call leave a recording call recording; `terminated` ends it;
/// an `established` arriving after that does not bring it back.
#[tokio::test(start_paused = true)]
async fn call_states_out_of_order_neither_end_nor_revive_a_call() {
    use recording_status::RetentionWriter;
    use recording_status::auth::Authenticated;

    let audit = Arc::new(MemorySink::default());
    let transport = ScriptedTransport::new().then(Step::completed());
    let graph = Graph::new(transport, AccessToken::new("token"));
    let (driver, mut events) = Driver::new(graph, audit.clone(), DriverConfig::default());
    let call = driver.call(this_call().parse().unwrap()).unwrap();
    let Ok(Started::Recording(call)) = driver.begin_recording(call).await else {
        panic!("recording");
    };
    let mut media = RetentionWriter::new(call.retention_handle().unwrap(), Vec::new());
    let proof = Authenticated::danger_authenticated_elsewhere("test");
    let state = |change: &str, data: &str| {
        format!(
            r##"{{"value":[{{"changeType":"{change}","resourceUrl":"/communications/calls/{id}","resourceData":{{"@odata.type":"#microsoft.graph.call",{data}}}}}]}}"##,
            id = this_call()
        )
    };
    for body in [
        state("updated", r#""state":"established""#),
        state("updated", r#""state":"establishing""#),
        state("updated", r#""state":"terminating""#),
        state(
            "updated",
            r#""state":"established","resultInfo":{"code":500,"subCode":7700,"message":"<message>"}"#,
        ),
        state("created", r#""state":"incoming","direction":"incoming""#),
    ] {
        let d = driver.hub().deliver(&proof, body.as_bytes()).unwrap();
        assert_eq!(d.terminated, 0, "{body}");
        std::io::Write::write_all(&mut media, b"frame").unwrap();
    }
    assert!(events.try_recv().is_err(), "nothing to tell the bot yet");

    let ended = state(
        "deleted",
        r#""state":"terminated","resultInfo":{"code":200,"subcode":5001,"message":"The conversation has ended."}"#,
    );
    assert_eq!(
        driver
            .hub()
            .deliver(&proof, ended.as_bytes())
            .unwrap()
            .terminated,
        1
    );
    assert!(std::io::Write::write_all(&mut media, b"frame").is_err());
    assert!(matches!(
        events.try_recv(),
        Ok(DriverEvent::CallTerminated { .. })
    ));
    let late = state("updated", r#""state":"established""#);
    assert_eq!(
        driver
            .hub()
            .deliver(&proof, late.as_bytes())
            .unwrap()
            .terminated,
        0
    );
    drop(media);
    drop(driver.end(call));
    let again = driver.call(this_call().parse().unwrap()).unwrap();
    let refused = driver.begin_recording(again).await;
    assert!(
        matches!(&refused, Err(not_sent) if matches!(not_sent.error, Error::CallEnded)),
        "{refused:?}"
    );
    assert_eq!(driver.graph().transport().statuses(), ["recording"]);
    verify(&audit.events()).unwrap();
}

/// graph-reference.md §9.9: with `ConcurrentInvitationCount` 2, or paired applications, one
/// bot can hold two legs of one meeting, each its own call id, each recording on its own. Graph
/// ending one leg revokes that leg only; the other keeps recording and stops on its own id.
#[tokio::test(start_paused = true)]
async fn each_leg_of_a_meeting_records_on_its_own() {
    use recording_status::RetentionWriter;
    use recording_status::auth::Authenticated;

    const OTHER_LEG: &str = "401f5d00-6a7e-4d35-8d6b-1f2f3e4d5c6b";
    let audit = Arc::new(MemorySink::default());
    let transport = ScriptedTransport::new()
        .then(Step::completed())
        .then(Step::completed())
        .then(Step::completed());
    let graph = Graph::new(transport, AccessToken::new("token"));
    let config = DriverConfig::default().with_drain_deadline(Duration::from_secs(1));
    let (driver, mut events) = Driver::new(graph, audit.clone(), config);
    let mut legs = Vec::new();
    for id in [this_call(), OTHER_LEG.to_owned()] {
        let call = driver.call(id.parse().unwrap()).unwrap();
        let Ok(Started::Recording(call)) = driver.begin_recording(call).await else {
            panic!("{id} recording");
        };
        let media = RetentionWriter::new(call.retention_handle().unwrap(), Vec::new());
        legs.push((call, media));
    }
    let ended = format!(
        r##"{{"value":[{{"changeType":"deleted","resourceUrl":"/communications/calls/{id}","resourceData":{{"@odata.type":"#microsoft.graph.call","state":"terminated"}}}}]}}"##,
        id = this_call()
    );
    let proof = Authenticated::danger_authenticated_elsewhere("test");
    driver.hub().deliver(&proof, ended.as_bytes()).unwrap();
    let (other, mut other_media) = legs.pop().unwrap();
    let (first, mut first_media) = legs.pop().unwrap();
    assert!(std::io::Write::write_all(&mut first_media, b"frame").is_err());
    std::io::Write::write_all(&mut other_media, b"frame").unwrap();
    let Ok(DriverEvent::CallTerminated { call_id, .. }) = events.try_recv() else {
        panic!("the ended leg is surfaced");
    };
    assert_eq!(call_id.as_str(), this_call());
    assert!(events.try_recv().is_err(), "only that leg");

    drop((first_media, other_media));
    drop(driver.end(first));
    let other = driver.stop_recording(other).await.unwrap();
    drop(driver.end(other));
    let paths: Vec<_> = driver
        .graph()
        .transport()
        .requests()
        .iter()
        .map(|r| r.uri().path().to_owned())
        .collect();
    assert_eq!(
        driver.graph().transport().statuses(),
        ["recording", "recording", "notRecording"]
    );
    assert!(paths[2].contains(OTHER_LEG), "{paths:?}");
    verify(&audit.events()).unwrap();
}
