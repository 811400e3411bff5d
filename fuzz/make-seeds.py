#!/usr/bin/env python3
"""Writes the seed corpora fuzz/corpus/<target>/ from Microsoft's documented payloads.

Sources (microsoftgraph/microsoft-graph-docs-contrib, v1.0):
  api-reference/v1.0/api/call-updaterecordingstatus.md   200 + Location, completed operation
  api-reference/v1.0/api/call-playprompt.md              running answer, "operation completed"
  api-reference/v1.0/api/call-senddtmftones.md           success, mediaOperationCanceled, unknown
  api-reference/v1.0/api/call-delete.md                  204, terminating / terminated
  api-reference/v1.0/resources/commsnotification.md      envelope
and ../shared/graph-reference.md §2.3 and §3 (comms-samples#599 `resource` + `resourceUrl`,
error envelopes with innerError / innererror, 7504 / 7505 / 8506, throttling with a nested
innerError and Retry-After 41 / 315).

Run from anywhere: python3 fuzz/make-seeds.py. Deterministic; rewrites only the files it names.
"""

import json
import os
import struct
from datetime import datetime, timezone

HERE = os.path.dirname(os.path.abspath(__file__))

CALL = "57dab8b1-894c-409a-b240-bd8beae78896"
CALL_UP = "57DAB8B1894C409AB240BD8BEAE78896"
OP = "0fe0623f-d628-42ed-b4bd-8ac290072cc5"
OP_UP = "0FE0623FD62842EDB4BD8AC290072CC5"
DTMF_CALL = "481f3600-983e-4276-9b59-c1b30ec8d125"
DTMF_OP = "d36fe651-9f50-484d-bd4b-1e6415eae448"
THIRD_CALL = "2a5f3e9b-0c1d-4e7f-8a9b-1c2d3e4f5a6b"
LOCATION = f"https://graph.microsoft.com/v1.0/communications/calls/{CALL}/operations/{OP}"
REQUEST_ID = "3d972a68-7b28-4c7f-8d2c-2b7c1a0f9e11"
CLIENT_REQUEST_ID = "225aed2b-1b5e-4d83-a1c1-8f1c0b6e2a47"


def js(value):
    return json.dumps(value, indent=2).encode()


def jc(value):
    """Compact JSON: the hub target's inputs stay short (and fast)."""
    return json.dumps(value, separators=(",", ":")).encode()


def write(target, name, data):
    directory = os.path.join(HERE, "corpus", target)
    os.makedirs(directory, exist_ok=True)
    assert len(name) != 40, "40-character names are ignored by fuzz/.gitignore"
    with open(os.path.join(directory, name), "wb") as f:
        f.write(data)


# --- Graph payloads --------------------------------------------------------------------------

URS_COMPLETED = {  # call-updaterecordingstatus.md, Response
    "@odata.type": "#microsoft.graph.updateRecordingStatusOperation",
    "clientContext": "clientContext-value",
    "id": OP,
    "resultInfo": None,
    "status": "completed",
}
PLAY_PROMPT_RUNNING = {  # call-playprompt.md, Response
    "@odata.type": "#microsoft.graph.playPromptOperation",
    "id": OP,
    "status": "running",
    "clientContext": "d45324c1-fcb5-430a-902c-f20af696537c",
}
DTMF_RUNNING = {  # call-senddtmftones.md, Response
    "@odata.type": "#microsoft.graph.sendDtmfTonesOperation",
    "status": "running",
    "clientContext": "e0be71f1-a14f-4cec-b65a-e7aba5db7c53",
    "id": DTMF_OP,
}


def envelope(*entries):
    return {"@odata.type": "#microsoft.graph.commsNotifications", "value": list(entries)}


def entry(change, url, data, resource=None):
    e = {"@odata.type": "#microsoft.graph.commsNotification", "changeType": change}
    if resource is not None:
        e["resource"] = resource
    if url is not None:
        e["resourceUrl"] = url
    e["resourceData"] = data
    return e


def play_prompt_completed():  # call-playprompt.md, Notification - operation completed
    url = f"/communications/calls/{CALL_UP}/operations/{OP_UP}"
    return envelope(entry("deleted", url, {
        "@odata.type": "#microsoft.graph.playPromptOperation",
        "@odata.id": url,
        "@odata.etag": 'W/"54451"',
        "resultInfo": {"@odata.type": "#microsoft.graph.resultInfo", "code": 200, "subcode": 0,
                       "message": "Action completed successfully."},
        "clientContext": "d45324c1-fcb5-430a-902c-f20af696537c",
        "status": "completed",
    }))


def dtmf_completed(reason):  # call-senddtmftones.md, the three notifications
    url = f"/communications/calls/{DTMF_CALL}/operations/{DTMF_OP}"
    return envelope(entry("deleted", url, {
        "@odata.type": "#microsoft.graph.sendDtmfTonesOperation",
        "status": "completed",
        "completionReason": reason,
        "clientContext": "e0be71f1-a14f-4cec-b65a-e7aba5db7c53",
        "id": DTMF_OP,
    }))


def call_state(change, state, result=None, call=CALL):  # call-delete.md
    data = {"@odata.type": "#microsoft.graph.call", "state": state}
    if result is not None:
        data["resultInfo"] = result
    return envelope(entry(change, f"/communications/calls/{call}", data))


TERMINATED = {"@odata.type": "#microsoft.graph.resultInfo", "code": "200", "subcode": "5001",
              "message": "The conversation has ended."}


def urs(call, op, status, context=None, result=None, reason=None, odata="#microsoft.graph.updateRecordingStatusOperation",
        legacy=False, upper=True):
    """An updateRecordingStatusOperation notification in the documented shape."""
    call_s = call.replace("-", "").upper() if upper else call
    op_s = op.replace("-", "").upper() if (upper and op) else op
    url = f"/communications/calls/{call_s}/operations/{op_s}" if op else f"/communications/calls/{call_s}"
    data = {"@odata.type": odata, "@odata.id": url}
    if odata is None:
        del data["@odata.type"]
    if result is not None:
        data["resultInfo"] = result
    if reason is not None:
        data["completionReason"] = reason
    if context is not None:
        data["clientContext"] = context
    data["status"] = status
    resource = f"/app/calls/{call}/operations/{op}" if legacy else None
    return entry("deleted" if status.lower() in ("completed", "failed") else "updated", url, data, resource)


OK_RESULT = {"@odata.type": "#microsoft.graph.resultInfo", "code": 200, "subcode": 0,
             "message": "Action completed successfully."}
ERR_RESULT = {"@odata.type": "#microsoft.graph.resultInfo", "code": 500, "subcode": 8519,
              "message": "Server Internal Error. DiagCode: 3002#7106"}


def error(code, message, inner=None):
    e = {"code": code, "message": message}
    if inner is not None:
        e["innerError"] = inner
    return {"error": e}


ERRORS = {
    # concepts/errors.md via the SDK design doc (ErrorContent.html)
    "sdk-design-400": (400, error("BadRequest", "Resource not found for the segment 'mef'.", {
        "date": "2021-07-02T01:40:19", "request-id": REQUEST_ID, "client-request-id": CLIENT_REQUEST_ID})),
    # microsoft-graph-docs-contrib#5874
    "tenant-mismatch-7505": (403, error("7505", "Request authorization tenant mismatch.", {
        "request-id": REQUEST_ID, "date": "2020-02-13T17:30:24"})),
    # comms-samples#276, #538
    "tenant-permissions-7504": (403, error("7504", "Insufficient enterprise tenant permissions, cannot access this API.", {
        "request-id": REQUEST_ID, "date": "2020-02-13T17:30:24"})),
    # comms-samples#444
    "not-compliance-8506": (403, error("8506", "API call not allowed for non-Compliance Recording call", {
        "request-id": REQUEST_ID, "client-request-id": CLIENT_REQUEST_ID, "date": "2024-05-02T10:11:12"})),
    # learn.microsoft.com/answers/questions/648796: nested innerError code
    "throttled-429": (429, error("activityLimitReached", "The request has been throttled", {
        "code": "throttledRequest", "innerError": {"code": "throttledRequest"},
        "date": "2021-12-02T09:21:57", "request-id": REQUEST_ID, "client-request-id": CLIENT_REQUEST_ID})),
    "unavailable-503": (503, error("serviceNotAvailable", "The service is temporarily unavailable.", {
        "date": "2026-11-27T05:58:00", "request-id": REQUEST_ID})),
    "unauthorized-401": (401, error("InvalidAuthenticationToken", "Access token has expired or is not yet valid.", {
        "date": "2026-11-27T05:58:00", "request-id": REQUEST_ID, "client-request-id": CLIENT_REQUEST_ID})),
    "not-found-404": (404, error("itemNotFound", "Call not found.", {
        "requestId": REQUEST_ID, "date": "2026-11-27T05:58:00"})),
    "internal-500": (500, error("InternalServerError", "Server Internal Error. DiagCode: 3002#7106")),
    "gateway-504": (504, error("UnknownError", "", {"date": "2026-11-27T05:58:00"})),
    # concepts/errors.md @76a1d2bf: `innererror`, `requestId`
    "lowercase-innererror-409": (409, {"error": {"code": "Conflict", "message": "m", "innererror": {
        "requestId": REQUEST_ID, "clientRequestId": CLIENT_REQUEST_ID, "date": "2019-01-01T00:00:00"}}}),
}

# --- response: status (u16 LE), header mask, [len, value]..., body ---------------------------

HEADER_BITS = ["location", "request-id", "client-request-id", "date", "retry-after",
               "content-type", "request-id", "x-ms-ags-diagnostic"]


def response_seed(status, headers, body):
    mask = 0
    values = b""
    for bit, name in enumerate(HEADER_BITS):
        if bit == 6:
            continue  # the second request-id slot
        if name in headers:
            mask |= 1 << bit
            v = headers[name].encode("latin-1")
            assert len(v) < 256
            values += bytes([len(v)]) + v
    return struct.pack("<H", status - 100) + bytes([mask]) + values + body


def responses():
    corr = {"request-id": REQUEST_ID, "client-request-id": CLIENT_REQUEST_ID,
            "date": "Fri, 27 Nov 2026 05:58:00 GMT"}
    write("response", "doc-updaterecordingstatus-200-completed",
          response_seed(200, {"location": LOCATION, **corr, "content-type": "application/json"}, js(URS_COMPLETED)))
    write("response", "doc-playprompt-200-running",
          response_seed(200, {"location": LOCATION, "content-type": "application/json"}, js(PLAY_PROMPT_RUNNING)))
    write("response", "doc-senddtmftones-200-running",
          response_seed(200, {"location": LOCATION}, js(DTMF_RUNNING)))
    running = dict(URS_COMPLETED, status="running")
    write("response", "urs-200-running", response_seed(200, {"location": LOCATION}, js(running)))
    write("response", "urs-200-notstarted-untyped",
          response_seed(200, {}, json.dumps({"id": OP, "status": "NotStarted"}).encode()))
    write("response", "urs-200-status-null", response_seed(200, corr, js(dict(URS_COMPLETED, status=None))))
    write("response", "urs-200-completed-error-result",
          response_seed(200, corr, js(dict(URS_COMPLETED, resultInfo=ERR_RESULT))))
    write("response", "urs-200-completed-canceled",
          response_seed(200, {}, js(dict(URS_COMPLETED, completionReason="mediaOperationCanceled"))))
    write("response", "urs-200-failed", response_seed(200, {}, js(dict(URS_COMPLETED, status="failed", resultInfo=ERR_RESULT))))
    write("response", "urs-202-empty", response_seed(202, {"location": LOCATION}, b""))
    write("response", "doc-call-delete-204", response_seed(204, corr, b""))
    write("response", "html-200", response_seed(200, {"content-type": "text/html"}, b"<html><body>Bad gateway</body></html>"))
    # A long (2 KB) answer: the old `(u16, Vec<u8>)` target decoded such seeds to an empty body.
    long_op = dict(URS_COMPLETED, resultInfo=dict(OK_RESULT, message="Action completed successfully. " * 60))
    write("response", "urs-200-completed-2kb", response_seed(200, {"location": LOCATION, **corr}, js(long_op)))
    for name, (status, body) in ERRORS.items():
        # Without correlation headers: request-id, client-request-id and date come from innerError.
        write("response", f"error-{name}-bare", response_seed(status, {}, js(body)))
        headers = dict(corr)
        if status in (429, 503):
            headers["retry-after"] = "315" if status == 429 else "Fri, 27 Nov 2026 06:00:00 GMT"
        write("response", f"error-{name}-headers", response_seed(status, headers, js(body)))
    write("response", "error-429-retry-after-41",
          response_seed(429, {"retry-after": "41", "request-id": REQUEST_ID}, js(ERRORS["throttled-429"][1])))
    write("response", "error-503-retry-after-rfc850",
          response_seed(503, {"retry-after": "Friday, 27-Nov-26 06:00:00 GMT"}, b""))
    write("response", "error-503-retry-after-asctime",
          response_seed(503, {"retry-after": "Fri Nov 27 06:00:00 2026"}, b""))
    write("response", "error-502-empty", response_seed(502, {}, b""))
    write("response", "error-403-obs-text-request-id",
          response_seed(403, {"request-id": "caf\xe9"}, js(ERRORS["tenant-mismatch-7505"][1])))


# --- retry_after: now (u64 LE, seconds since 1900-01-01), delay (u32 LE), cap (u8), text -----

EARLIEST = -2_208_988_800


def retry_seed(text, now=datetime(2026, 11, 27, 5, 58, tzinfo=timezone.utc), delay=120, cap=60):
    return struct.pack("<QIB", int(now.timestamp()) - EARLIEST, delay, cap) + text.encode()


def retry_afters():
    seeds = {
        "delta-120": "120", "delta-315": "315", "delta-41": "41", "delta-0": "0", "delta-ows": " \t7 ",
        "delta-day": "86400", "delta-over-day": "86401", "delta-huge": "18446744073709551616",
        "imf-fixdate": "Fri, 27 Nov 2026 06:00:00 GMT", "rfc850": "Friday, 27-Nov-26 06:00:00 GMT",
        "asctime": "Fri Nov 27 06:00:00 2026", "asctime-padded": "Fri Nov  6 06:00:00 2026",
        "rfc9110-imf": "Sun, 06 Nov 1994 08:49:37 GMT", "rfc9110-rfc850": "Sunday, 06-Nov-94 08:49:37 GMT",
        "rfc9110-asctime": "Sun Nov  6 08:49:37 1994", "past-date": "Fri, 27 Nov 2026 05:00:00 GMT",
        "far-future": "Sat, 27 Nov 2027 06:00:00 GMT", "wrong-weekday": "Thu, 27 Nov 2026 06:00:00 GMT",
        "leap-second": "Thu, 31 Dec 2026 23:59:60 GMT", "garbage": "soon", "fraction": "1.5",
        "negative": "-5", "arabic-digits": "\u0661\u0662\u0660",
    }
    for name, text in seeds.items():
        write("retry_after", name, retry_seed(text))
    write("retry_after", "rfc850-y2k-boundary",
          retry_seed("Tuesday, 31-Dec-69 23:59:59 GMT", now=datetime(2069, 12, 31, 23, 0, tzinfo=timezone.utc),
                     delay=86400, cap=255))
    write("retry_after", "year-9999",
          retry_seed("Fri, 31 Dec 9999 23:59:59 GMT", now=datetime(9999, 12, 29, tzinfo=timezone.utc), delay=7))


# --- notification: plain bodies --------------------------------------------------------------

def notifications():
    write("notification", "doc-playprompt-completed.json", js(play_prompt_completed()))
    for reason in ("completedSuccessfully", "mediaOperationCanceled", "unknown"):
        write("notification", f"doc-senddtmftones-{reason}.json", js(dtmf_completed(reason)))
    write("notification", "doc-call-delete-terminating.json", js(call_state("updated", "terminating")))
    write("notification", "doc-call-delete-terminated.json", js(call_state("deleted", "terminated", TERMINATED)))
    write("notification", "doc-commsnotification-empty.json", js(envelope()))
    write("notification", "urs-completed.json", js(envelope(urs(CALL, OP, "completed", "clientContext-value", OK_RESULT))))
    write("notification", "urs-completed-legacy-resource.json",
          js(envelope(urs(CALL, OP, "Completed", "clientContext-value", legacy=True, upper=False))))
    write("notification", "urs-failed.json", js(envelope(urs(CALL, OP, "failed", "clientContext-value", ERR_RESULT))))
    write("notification", "comms-operation-array.json", js(envelope(entry(
        "updated", f"/communications/calls/{CALL}/operations",
        [{"@odata.type": "#microsoft.graph.commsOperation", "@odata.id": f"/communications/calls/{CALL}/operations/{OP}",
          "status": "running"},
         {"@odata.type": "#microsoft.graph.commsOperation", "id": DTMF_OP, "status": "completed"}]))))
    write("notification", "participants-array.json", js(envelope(entry(
        "updated", f"/communications/calls/{CALL}/participants",
        [{"@odata.type": "#microsoft.graph.participant", "id": "p1",
          "info": {"identity": {"user": {"id": "u1", "displayName": "Alex"}}}}]))))


# --- hub: bodies with $C0/$C1/$C2 for the generated clientContexts; \n--\n and \n~~\n ---------

def hub():
    c0, c1, c2 = "$C0", "$C1", "$C2"
    seeds = {
        # Matches call 0 by call, operation id and context: Recording.
        "call0-completed.json": envelope(urs(CALL, OP, "completed", c0, OK_RESULT)),
        # Call 1 by its operation id only (legacy /app resource, PascalCase status): Recording.
        "call1-completed-legacy.json": envelope(urs(DTMF_CALL, "D36FE6519F50484DBD4B1E6415EAE448", "Completed",
                                                    legacy=True, upper=False)),
        # Call 2 has no operation id: only its context matches.
        "call2-completed-by-context.json": envelope(urs(THIRD_CALL, "7c2e41aa-0000-4000-8000-000000000001",
                                                        "completed", c2, odata="#microsoft.graph.commsOperation")),
        # No call in the path at all: routed by context.
        "call2-context-only.json": envelope(entry("deleted", None, {
            "@odata.type": "#microsoft.graph.updateRecordingStatusOperation", "clientContext": c2,
            "status": "completed"})),
        # Wrong context with the right operation id: a contradiction, never Recording.
        "call0-contradiction.json": envelope(urs(CALL, OP, "completed", c1)),
        # Another call's context: never Recording.
        "call0-other-context.json": envelope(urs(CALL, None, "completed", c1)),
        # The documented playPrompt completion on call 0's ids: not a recording operation.
        "call0-playprompt.json": play_prompt_completed(),
        # Failures.
        "call1-failed.json": envelope(urs(DTMF_CALL, DTMF_OP, "failed", None, ERR_RESULT)),
        "call0-completed-canceled.json": envelope(urs(CALL, OP, "completed", c0, reason="mediaOperationCanceled")),
        "call0-completed-code-500.json": envelope(urs(CALL, OP, "completed", c0, ERR_RESULT)),
        # All three at once, in one array.
        "all-array.json": envelope(entry("deleted", None, [
            {"@odata.type": "#microsoft.graph.updateRecordingStatusOperation",
             "@odata.id": f"/communications/calls/{CALL}/operations/{OP}", "clientContext": c0, "status": "completed"},
            {"@odata.id": f"/app/calls/{DTMF_CALL}/operations/{DTMF_OP}", "status": "completed"},
            {"@odata.type": "commsOperation", "clientContext": c2, "status": "completed"}])),
        # The call ends (call-delete.md), then its completion arrives.
        "call0-terminated-then-completed.json": envelope(
            call_state("deleted", "terminated", TERMINATED)["value"][0], urs(CALL, OP, "completed", c0)),
        # Unknown calls with long ids and contexts: held, over the budget, forgotten.
        "held-over-budget.json": envelope(*[
            urs(f"{i:08x}-0000-4000-8000-" + "f" * 12, f"{i:08x}-1111-4000-8000-" + "e" * 12, "completed",
                "x" * 120 + str(i), {"code": 200, "subcode": 0, "message": "m" * 100})
            for i in range(8)]),
    }
    for name, body in seeds.items():
        write("hub", name, jc(body))
    running = jc(envelope(urs(CALL, OP, "running", c0)))
    done = jc(envelope(urs(CALL, OP, "completed", c0)))
    # running, then completed, then a duplicate.
    write("hub", "call0-running-completed-duplicate", running + b"\n--\n" + done + b"\n--\n" + done)
    # The deadline passes; the completion is late; then a duplicate of it.
    write("hub", "deadline-then-late", jc(envelope()) + b"\n~~\n" + done + b"\n--\n" + done
          + b"\n--\n" + jc(envelope(urs(THIRD_CALL, None, "completed", c2))))
    write("hub", "deadline-held-then-expired", running + b"\n~~\n"
          + jc(envelope(urs("99999999-0000-4000-8000-000000000000", OP, "completed", "ctx"))) + b"\n~~\n"
          + b"\n~~\n" + done)
    # Graph ends call 0 while its request is pending; the completion follows in a later body.
    # With FUZZ_HUB_TERMINATION=1 this fails today: the call becomes Recording, retention live.
    write("hub", "call0-terminated-then-completed-later",
          jc(call_state("deleted", "terminated", TERMINATED)) + b"\n--\n" + done)
    write("hub", "not-json", b"\x00not json")


if __name__ == "__main__":
    responses()
    retry_afters()
    notifications()
    hub()
    for target in ("call_id",):
        for name, text in {
            "guid": CALL, "upper-dashless": CALL_UP, "opaque": "19:meeting_abc@thread.v2",
            "slash": "a/b", "dotdot": "..", "percent": "a%2Fb", "long": "a" * 257,
        }.items():
            write(target, name, text.encode())
