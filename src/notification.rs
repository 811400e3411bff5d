//! Sans-IO: reading Graph's `commsNotifications` webhook bodies into operation updates.
//!
//! [`parse_notifications`] is a pure, lenient and total function over the raw request body of a
//! notification callback. It never panics, whatever the bytes; it keeps no part of the body in
//! its errors (bodies can carry meeting JWTs in `tokenMeetingInfo`); and it skips what it does
//! not understand instead of failing the whole batch: every skipped entry is reported in
//! [`Notifications::ignored`] with its index and an [`IgnoreReason`].
//!
//! # What counts as an operation update
//!
//! An element of an entry's `resourceData` is an operation when the entry's resource path (its
//! `resourceUrl`, legacy `resource`, or the element's own `@odata.id`) has an `operations`
//! segment, **or** the element's `@odata.type` ends with `Operation`, ignoring ASCII case
//! (`#microsoft.graph.updateRecordingStatusOperation`, `#microsoft.graph.commsOperation`,
//! `#microsoft.graph.playPromptOperation`, …). Call and participant updates are ignored with
//! [`IgnoreReason::NotAnOperation`].
//!
//! Every operation is reported, whatever its type: routing decides what it may do. Only an
//! operation for which [`Operation::may_settle_recording`] holds (an
//! `updateRecordingStatusOperation`, a `commsOperation` or an untyped one) may settle a pending
//! `recording` request, and only one for which [`Operation::is_successful_completion`] holds
//! (`completed` with no error in `resultInfo` or `completionReason`) acknowledges it.
//!
//! # Where the ids come from
//!
//! Paths may be relative (`/communications/calls/{id}/operations/{opId}`, legacy
//! `/app/calls/{id}/…`) or absolute (`https://graph.microsoft.com/v1.0/communications/calls/…`);
//! query and fragment are ignored and nothing is percent-decoded. Each id is exactly one path
//! segment, kept as sent (Graph notifies upper-case dash-less ids such as
//! `57DAB8B1894C409AB240BD8BEAE78896`; compare with [`OperationUpdate::normalized_call_id`] and
//! [`OperationUpdate::normalized_operation_id`]). Empty, `.` and `..` segments are no ids.
//!
//! - When `resourceData` is an **object**, the entry describes that one operation: the operation
//!   id comes from the first of `resourceUrl`, `resource`, the element's `@odata.id` that has an
//!   `…/operations/{opId}` segment, and only then from the element's `id`.
//! - When `resourceData` is an **array**, the entry's paths are shared by all elements, so an
//!   element's own data wins: its `@odata.id` path, then its `id`, and only when it has neither
//!   the entry's `resourceUrl`/`resource` path.
//! - The call id comes from the same path as the operation id when that path names a call,
//!   otherwise from the first path (in the order above) that does.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::response::Operation;
use crate::types::normalize_id;

/// The largest notification body [`parse_notifications`] reads, in bytes (1 MiB). Larger bodies
/// are rejected with [`NotificationError::TooLarge`] before any parsing.
pub const MAX_NOTIFICATION_BYTES: usize = 1 << 20;

/// A parsed `commsNotifications` body: the operation updates it carries, and what was skipped.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Notifications {
    /// One update per operation found, in body order.
    pub updates: Vec<OperationUpdate>,
    /// Changes of a call's own state (a `#microsoft.graph.call` resource), in body order.
    pub calls: Vec<CallUpdate>,
    /// The entries (or `resourceData` elements) that carried no operation and no call state,
    /// in body order. An entry appears at most once per reason.
    pub ignored: Vec<Ignored>,
}

/// A change of a call's own state, e.g. Graph's `terminated` notification:
/// `changeType: deleted` on `/communications/calls/{id}` with a `#microsoft.graph.call` whose
/// `state` is `terminated` and whose `resultInfo` says why.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CallUpdate {
    /// The entry's `changeType`.
    pub change_type: ChangeType,
    /// The `{id}` of `/communications/calls/{id}` (or `/app/calls/{id}`), as sent.
    pub call_id: Option<String>,
    /// The call's `state` as sent (`establishing`, `established`, `terminating`,
    /// `terminated`, in any case), if present.
    pub state: Option<String>,
    /// The call's `resultInfo`, if present and an object (codes may arrive as strings).
    pub result_info: Option<crate::response::ResultInfo>,
}

impl CallUpdate {
    /// Whether the call has ended: `state` is `terminated` (any case), or the call itself was
    /// deleted.
    pub fn is_terminated(&self) -> bool {
        self.state
            .as_deref()
            .is_some_and(|s| s.eq_ignore_ascii_case("terminated"))
            || self.change_type == ChangeType::Deleted
    }

    /// [`call_id`](Self::call_id) lower-cased and without dashes.
    pub fn normalized_call_id(&self) -> Option<String> {
        self.call_id.as_deref().map(normalize_id)
    }
}

/// One operation reported by a notification, e.g. an `updateRecordingStatusOperation` that
/// completed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct OperationUpdate {
    /// The entry's `changeType`. A completed operation is reported as
    /// [`ChangeType::Deleted`] on the operation's URL.
    pub change_type: ChangeType,
    /// The entry's `resourceUrl` if present, else its legacy `resource`, else the element's
    /// `@odata.id`; as sent.
    pub resource: Option<String>,
    /// The `{id}` of `/communications/calls/{id}/…` or `/app/calls/{id}/…`, as sent.
    pub call_id: Option<String>,
    /// The `{opId}` of `…/operations/{opId}`, else the element's `id`, as sent (see the
    /// [module documentation](self) for the precedence).
    pub operation_id: Option<String>,
    /// The operation read from the `resourceData` element: status, `clientContext`,
    /// `resultInfo`, `@odata.type` and its own `id`.
    pub operation: Operation,
}

impl OperationUpdate {
    /// [`call_id`](Self::call_id) lower-cased and without dashes, the form ids are compared in.
    pub fn normalized_call_id(&self) -> Option<String> {
        self.call_id.as_deref().map(normalize_id)
    }

    /// [`operation_id`](Self::operation_id) lower-cased and without dashes, the form ids are
    /// compared in: Graph answers `0fe0623f-d628-…` and notifies `0FE0623FD628…`.
    pub fn normalized_operation_id(&self) -> Option<String> {
        self.operation_id.as_deref().map(normalize_id)
    }
}

/// A notification's `changeType`, parsed ignoring ASCII case.
///
/// Serialised as the camelCase wire spelling (or the unknown string as received); deserialised
/// with [`ChangeType::parse`].
///
/// # Example
/// ```
/// use recording_status::notification::ChangeType;
///
/// assert_eq!(ChangeType::parse("Deleted"), ChangeType::Deleted);
/// assert_eq!(ChangeType::parse("moved"), ChangeType::Unknown("moved".into()));
/// assert_eq!(ChangeType::Updated.as_str(), "updated");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(into = "String", from = "String")]
#[non_exhaustive]
pub enum ChangeType {
    /// `created`.
    Created,
    /// `updated`: e.g. an operation that is still running.
    Updated,
    /// `deleted`: for an operation, it has finished (`completed` or `failed`).
    Deleted,
    /// Any other string, kept verbatim; the empty string when `changeType` is missing or not a
    /// string.
    Unknown(String),
}

impl ChangeType {
    /// Parses a change type, ignoring ASCII case.
    pub fn parse(s: &str) -> Self {
        if s.eq_ignore_ascii_case("created") {
            Self::Created
        } else if s.eq_ignore_ascii_case("updated") {
            Self::Updated
        } else if s.eq_ignore_ascii_case("deleted") {
            Self::Deleted
        } else {
            Self::Unknown(s.to_owned())
        }
    }

    /// The camelCase spelling, or the unknown string as received.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Created => "created",
            Self::Updated => "updated",
            Self::Deleted => "deleted",
            Self::Unknown(s) => s,
        }
    }
}

impl From<ChangeType> for String {
    fn from(c: ChangeType) -> Self {
        match c {
            ChangeType::Unknown(s) => s,
            known => known.as_str().to_owned(),
        }
    }
}

impl From<String> for ChangeType {
    fn from(s: String) -> Self {
        Self::parse(&s)
    }
}

impl fmt::Display for ChangeType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An entry of `value` (or an element of its `resourceData`) that yielded no update.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Ignored {
    /// The entry's index in the `value` array.
    pub index: usize,
    /// Why it was skipped.
    pub reason: IgnoreReason,
}

/// Why a notification entry yielded no [`OperationUpdate`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum IgnoreReason {
    /// The entry, or an element of its `resourceData` array, is not a JSON object.
    NotAnObject,
    /// Not an operation: e.g. a call-state or participant update.
    NotAnOperation,
    /// `resourceData` is missing, `null`, an empty array, or neither an object nor an array.
    NoResourceData,
}

/// Why a notification body could not be read at all.
///
/// The messages never contain any part of the body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NotificationError {
    /// The body is larger than [`MAX_NOTIFICATION_BYTES`].
    #[error("notification body too large: {len} bytes (limit {MAX_NOTIFICATION_BYTES})")]
    TooLarge {
        /// The body's length in bytes.
        len: usize,
    },
    /// The body is not valid JSON (including invalid UTF-8 and nesting deeper than the JSON
    /// parser's recursion limit).
    #[error("notification body is not json")]
    NotJson,
    /// The body is JSON but not an object with a `value` array.
    #[error("notification body has no `value` array")]
    NoValueArray,
}

/// Parses a `commsNotifications` webhook body into operation updates. Pure and total: never
/// panics.
///
/// Authenticate the request (Bearer JWT) before acting on the result: a forged `completed`
/// could otherwise unlock persistence.
///
/// # Errors
/// [`NotificationError`] when the body is too large, not JSON, or has no `value` array.
/// Individual entries that are not operations do not fail the batch; they are listed in
/// [`Notifications::ignored`].
///
/// # Example: the documented "operation completed" notification
/// ```
/// use recording_status::notification::{parse_notifications, ChangeType};
/// use recording_status::OperationStatus;
///
/// let body = br##"{ "@odata.type": "#microsoft.graph.commsNotifications",
///   "value": [ { "@odata.type": "#microsoft.graph.commsNotification",
///     "changeType": "deleted",
///     "resourceUrl": "/communications/calls/57DAB8B1894C409AB240BD8BEAE78896/operations/0FE0623FD62842EDB4BD8AC290072CC5",
///     "resourceData": { "@odata.type": "#microsoft.graph.playPromptOperation",
///       "@odata.id": "/communications/calls/57DAB8B1894C409AB240BD8BEAE78896/operations/0FE0623FD62842EDB4BD8AC290072CC5",
///       "@odata.etag": "W/\"54451\"",
///       "resultInfo": { "@odata.type": "#microsoft.graph.resultInfo", "code": 200, "subcode": 0, "message": "Action completed successfully." },
///       "clientContext": "d45324c1-fcb5-430a-902c-f20af696537c",
///       "status": "completed" } } ] }"##;
///
/// let notifications = parse_notifications(body)?;
/// let update = &notifications.updates[0];
/// assert_eq!(update.change_type, ChangeType::Deleted);
/// assert_eq!(update.operation.status, Some(OperationStatus::Completed));
/// // Graph answered `0fe0623f-d628-42ed-b4bd-8ac290072cc5` for the same operation.
/// assert_eq!(
///     update.normalized_operation_id().as_deref(),
///     Some("0fe0623fd62842edb4bd8ac290072cc5")
/// );
/// assert_eq!(update.call_id.as_deref(), Some("57DAB8B1894C409AB240BD8BEAE78896"));
/// assert!(notifications.ignored.is_empty());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn parse_notifications(body: &[u8]) -> Result<Notifications, NotificationError> {
    if body.len() > MAX_NOTIFICATION_BYTES {
        return Err(NotificationError::TooLarge { len: body.len() });
    }
    // serde_json bounds recursion (128 levels), so deep nesting is an error, not an overflow.
    let root: Value = serde_json::from_slice(body).map_err(|_| NotificationError::NotJson)?;
    let entries = root
        .get("value")
        .and_then(Value::as_array)
        .ok_or(NotificationError::NoValueArray)?;

    let mut out = Notifications {
        updates: Vec::new(),
        calls: Vec::new(),
        ignored: Vec::new(),
    };
    for (index, entry) in entries.iter().enumerate() {
        parse_entry(index, entry, &mut out);
    }
    Ok(out)
}

fn parse_entry(index: usize, entry: &Value, out: &mut Notifications) {
    let ignore = |reason: IgnoreReason, out: &mut Notifications| {
        // Only this entry's records (the tail, at most one per reason) are searched, so a
        // body of many ignored entries stays linear.
        let seen = out
            .ignored
            .iter()
            .rev()
            .take_while(|i| i.index == index)
            .any(|i| i.reason == reason);
        if !seen {
            out.ignored.push(Ignored { index, reason });
        }
    };
    let Some(entry) = entry.as_object() else {
        ignore(IgnoreReason::NotAnObject, out);
        return;
    };
    let change_type = ChangeType::parse(text(entry, "changeType").unwrap_or(""));
    let resource_url = text(entry, "resourceUrl");
    let legacy_resource = text(entry, "resource");
    let envelope = [
        resource_url.map(parse_path),
        legacy_resource.map(parse_path),
    ];

    let (elements, shared) = match entry.get("resourceData") {
        Some(data @ Value::Object(_)) => (std::slice::from_ref(data), false),
        Some(Value::Array(items)) if !items.is_empty() => (items.as_slice(), true),
        _ => {
            ignore(IgnoreReason::NoResourceData, out);
            return;
        }
    };

    for element in elements {
        let Some(data) = element.as_object() else {
            ignore(IgnoreReason::NotAnObject, out);
            continue;
        };
        let odata_id = text(data, "@odata.id");
        let own = odata_id.map(parse_path);
        let is_operation = envelope
            .iter()
            .chain([&own])
            .flatten()
            .any(|p| p.operations)
            || text(data, "@odata.type").is_some_and(ends_with_operation);
        let Some(operation) = is_operation
            .then(|| Operation::from_json(element))
            .flatten()
        else {
            // The call's own state: its path names a call and no operation, and the data is
            // a `#microsoft.graph.call` or carries a `state`.
            let call_path = envelope
                .iter()
                .chain([&own])
                .flatten()
                .find(|p| p.call_id.is_some() && !p.operations);
            let is_call = text(data, "@odata.type").is_some_and(|t| {
                let t = t.trim_start_matches('#');
                t.eq_ignore_ascii_case("microsoft.graph.call") || t.eq_ignore_ascii_case("call")
            }) || data.contains_key("state");
            if let (Some(path), true) = (call_path, is_call) {
                out.calls.push(CallUpdate {
                    change_type: change_type.clone(),
                    call_id: path.call_id.map(str::to_owned),
                    state: text(data, "state").map(str::to_owned),
                    result_info: data
                        .get("resultInfo")
                        .filter(|v| v.is_object())
                        .and_then(|v| serde_json::from_value(v.clone()).ok()),
                });
                continue;
            }
            ignore(IgnoreReason::NotAnOperation, out);
            continue;
        };

        // The id sources in precedence order (see the module documentation).
        let order = if shared {
            [
                Source::Path(own),
                Source::OwnId,
                Source::Path(envelope[0]),
                Source::Path(envelope[1]),
            ]
        } else {
            [
                Source::Path(envelope[0]),
                Source::Path(envelope[1]),
                Source::Path(own),
                Source::OwnId,
            ]
        };
        let own_id = text(data, "id");
        let mut operation_id = None;
        let mut call_id = None;
        for source in order {
            match source {
                Source::Path(Some(path)) if path.operation_id.is_some() => {
                    operation_id = path.operation_id;
                    call_id = path.call_id;
                    break;
                }
                Source::OwnId if own_id.is_some() => {
                    operation_id = own_id;
                    break;
                }
                _ => {}
            }
        }
        if call_id.is_none() {
            call_id = order.iter().find_map(|s| match s {
                Source::Path(Some(path)) => path.call_id,
                _ => None,
            });
        }

        out.updates.push(OperationUpdate {
            change_type: change_type.clone(),
            resource: resource_url
                .or(legacy_resource)
                .or(odata_id)
                .map(str::to_owned),
            call_id: call_id.map(str::to_owned),
            operation_id: operation_id.map(str::to_owned),
            operation,
        });
    }
}

/// A non-empty string field of a JSON object.
fn text<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    obj.get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

fn ends_with_operation(odata_type: &str) -> bool {
    const SUFFIX: &str = "operation";
    let bytes = odata_type.as_bytes();
    bytes
        .len()
        .checked_sub(SUFFIX.len())
        .and_then(|start| bytes.get(start..))
        .is_some_and(|tail| tail.eq_ignore_ascii_case(SUFFIX.as_bytes()))
}

/// Where an id may come from.
#[derive(Clone, Copy)]
enum Source<'a> {
    /// A resource path, if the field was present.
    Path(Option<PathIds<'a>>),
    /// The `resourceData` element's own `id`.
    OwnId,
}

/// What a resource path says about the call and operation.
#[derive(Debug, Clone, Copy, Default)]
struct PathIds<'a> {
    /// The segment after `communications/calls` or `app/calls`.
    call_id: Option<&'a str>,
    /// The segment after the first `operations` segment.
    operation_id: Option<&'a str>,
    /// Whether any segment is `operations`.
    operations: bool,
}

fn parse_path(resource: &str) -> PathIds<'_> {
    let end = resource.find(['?', '#']).unwrap_or(resource.len());
    let mut path = resource.get(..end).unwrap_or_default();
    if let Some(scheme_end) = path.find("://") {
        let after = path.get(scheme_end + 3..).unwrap_or_default();
        path = after
            .find('/')
            .and_then(|i| after.get(i..))
            .unwrap_or_default();
    }
    let segments: Vec<&str> = path.split('/').collect();
    let id_at = |i: usize| {
        segments
            .get(i)
            .copied()
            .filter(|s| !s.is_empty() && *s != "." && *s != "..")
    };
    let mut ids = PathIds::default();
    for (i, pair) in segments.windows(2).enumerate() {
        if ids.call_id.is_none()
            && (pair[0].eq_ignore_ascii_case("communications")
                || pair[0].eq_ignore_ascii_case("app"))
            && pair[1].eq_ignore_ascii_case("calls")
        {
            ids.call_id = id_at(i + 2);
        }
    }
    if let Some(i) = segments
        .iter()
        .position(|s| s.eq_ignore_ascii_case("operations"))
    {
        ids.operations = true;
        ids.operation_id = id_at(i + 1);
    }
    ids
}

#[cfg(test)]
mod tests;
