//! Call and operation ids: the well-known ones, their other spellings, and fresh ones.

use recording_status::CallId;

/// The call most tests drive, as the bot knows it (a GUID).
pub(crate) const CALL: &str = "57dab8b1-894c-409a-b240-bd8beae78896";
/// [`CALL`] as Graph spells it in notifications: upper case, no dashes.
pub(crate) const CALL_UPPER: &str = "57DAB8B1894C409AB240BD8BEAE78896";
/// [`CALL`] as the crate keys it and writes it in the trail: lower case, no dashes.
pub(crate) const CALL_KEY: &str = "57dab8b1894c409ab240bd8beae78896";
/// A second call, for tests that need two.
pub(crate) const OTHER: &str = "401f5d00-6a7e-4d35-8d6b-1f2f3e4d5c6b";

/// The operation id of `Step::running()` and `Step::operation(…)`, and of the answers in
/// [`bodies`](super::bodies).
pub(crate) const OP: &str = "0fe0623f-d628-42ed-b4bd-8ac290072cc5";
/// [`OP`] as Graph spells it in notifications.
pub(crate) const OP_UPPER: &str = "0FE0623FD62842EDB4BD8AC290072CC5";

/// [`CALL`], parsed.
pub(crate) fn call_id() -> CallId {
    CALL.parse().expect("a call id")
}

/// `id` as Graph spells ids in notifications: upper case, no dashes.
pub(crate) fn upper(id: &str) -> String {
    id.replace('-', "").to_ascii_uppercase()
}

/// `id` as the crate keys calls and operations: lower case, no dashes.
pub(crate) fn normalized(id: &str) -> String {
    id.replace('-', "").to_ascii_lowercase()
}

/// Call `n` of a family of calls (GUID form), whose number [`numbered_call_of`] reads back.
pub(crate) fn numbered_call(n: usize) -> CallId {
    format!("57dab8b1-894c-409a-b240-{n:012x}")
        .parse()
        .expect("a call id")
}

/// The number of a [`numbered_call`] in either spelling, or `None` for another id.
pub(crate) fn numbered_call_of(id: &str) -> Option<usize> {
    let id = normalized(id);
    let n = id.strip_prefix("57dab8b1894c409ab240")?;
    usize::from_str_radix(n, 16).ok()
}

/// The operation id of call `n`'s request (GUID form).
pub(crate) fn numbered_operation(n: usize) -> String {
    format!("0fe0623f-d628-42ed-b4bd-{n:012x}")
}

/// A call id no other test uses, for tests that run against something shared (an emulator,
/// a server) while other tests run beside them.
pub(crate) fn unique_call() -> String {
    uuid::Uuid::new_v4().to_string()
}
