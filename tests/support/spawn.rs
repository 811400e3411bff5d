//! Child processes beside audit trails, in one test binary.
//!
//! A child holds a copy of every file this process has open from its fork until its exec
//! closes them (close-on-exec), and with it the lock of any `JsonLinesSink` open at that
//! instant. A test that drops a sink and reopens its trail meanwhile finds the trail locked by
//! another test's child (`AuditError::InUse`). `Command::spawn` returning does not end that
//! window (the kernel lets a vfork parent go on before the child's close-on-exec files are
//! closed), so in a binary that starts children, trails are opened through [`opening`] and
//! children run through [`output`], which never overlap: a child runs to its end under the
//! lock.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::{PoisonError, RwLock};

use recording_status::audit::JsonLinesSink;
use recording_status::error::AuditError;

static CHILDREN: RwLock<()> = RwLock::new(());

/// Runs `open` (which opens a trail) while no child runs.
pub(crate) fn opening<T>(open: impl FnOnce() -> T) -> T {
    let _no_child = CHILDREN.read().unwrap_or_else(PoisonError::into_inner);
    open()
}

/// `JsonLinesSink::open(path)`, while no child runs.
pub(crate) fn open_sink(path: &Path) -> Result<JsonLinesSink, AuditError> {
    opening(|| JsonLinesSink::open(path))
}

/// `command.output()`, while no trail is being opened. Meant for short-lived children.
pub(crate) fn output(command: &mut Command) -> std::io::Result<Output> {
    let _child = CHILDREN.write().unwrap_or_else(PoisonError::into_inner);
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?
        .wait_with_output()
}
