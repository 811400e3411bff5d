//! Call and operation ids: each test's own calls, their other spellings, and fresh ones.
//!
//! A process has one live value per Graph call, whatever registry or driver opened it, and the
//! tests of a binary run at once in one process: each test thread therefore drives calls of its
//! own. [`this_call`] and [`other_call`] are GUIDs whose first group is drawn once per thread, so a test
//! (run on its own thread, with everything it drives on a current-thread runtime) sees the same
//! ids throughout, and no test beside it does.

use std::cell::OnceCell;

use recording_status::CallId;

/// The call of the trails under `tests/fixtures`, as the bot knows it (a GUID).
pub(crate) const FIXTURE_CALL: &str = "57dab8b1-894c-409a-b240-bd8beae78896";
/// [`FIXTURE_CALL`] in Graph's notification spelling.
pub(crate) const FIXTURE_CALL_UPPER: &str = "57DAB8B1894C409AB240BD8BEAE78896";
/// [`FIXTURE_CALL`] as the crate keys it.
pub(crate) const FIXTURE_CALL_KEY: &str = "57dab8b1894c409ab240bd8beae78896";

thread_local! {
    /// The first group of this thread's call ids: 8 hex digits, drawn once.
    static FAMILY: OnceCell<String> = const { OnceCell::new() };
}

fn family() -> String {
    FAMILY.with(|f| f.get_or_init(|| unique_call()[..8].to_owned()).clone())
}

/// The call most tests drive, as the bot knows it (a GUID), this test's own.
pub(crate) fn this_call() -> String {
    format!("{}-894c-409a-b240-bd8beae78896", family())
}

/// [`this_call`] as Graph spells it in notifications: upper case, no dashes.
pub(crate) fn this_call_upper() -> String {
    upper(&this_call())
}

/// [`this_call`] as the crate keys it and writes it in the trail: lower case, no dashes.
pub(crate) fn this_call_key() -> String {
    normalized(&this_call())
}

/// A second call, for tests that need two, this test's own.
pub(crate) fn other_call() -> String {
    format!("{}-6a7e-4d35-8d6b-1f2f3e4d5c6b", family())
}

/// The operation id of `Step::running()` and `Step::operation(…)`, and of the answers in
/// [`bodies`](super::bodies).
pub(crate) const OP: &str = "0fe0623f-d628-42ed-b4bd-8ac290072cc5";
/// [`OP`] as Graph spells it in notifications.
pub(crate) const OP_UPPER: &str = "0FE0623FD62842EDB4BD8AC290072CC5";

/// [`this_call`], parsed.
pub(crate) fn call_id() -> CallId {
    this_call().parse().expect("a call id")
}

/// `id` as Graph spells ids in notifications: upper case, no dashes.
pub(crate) fn upper(id: &str) -> String {
    id.replace('-', "").to_ascii_uppercase()
}

/// `id` as the crate keys calls and operations: lower case, no dashes.
pub(crate) fn normalized(id: &str) -> String {
    id.replace('-', "").to_ascii_lowercase()
}

/// Call `n` of this test's family of calls (GUID form), whose number [`numbered_call_of`]
/// reads back.
pub(crate) fn numbered_call(n: usize) -> CallId {
    format!("{}-894c-409a-b240-{n:012x}", family())
        .parse()
        .expect("a call id")
}

/// The number of one of this test's [`numbered_call`]s in either spelling, or `None` for
/// another id.
pub(crate) fn numbered_call_of(id: &str) -> Option<usize> {
    let id = normalized(id);
    let n = id.strip_prefix(&format!("{}894c409ab240", family()))?;
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
