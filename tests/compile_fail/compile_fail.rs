//! G3: every misuse below must fail to compile; each file holds exactly one misuse.
//!
//! # Two modes of `misuse_does_not_compile`
//!
//! The `.stderr` snapshots in `tests/ui/` hold the exact wording of the pinned toolchain,
//! **rustc 1.95.x stable** ([`PINNED_RUSTC`]). Which mode runs depends on the compiler that
//! `$RUSTC` (or `rustc` on `PATH` when `RUSTC` is unset) reports with `--version`:
//!
//! * **Exact mode** (pinned toolchain): trybuild compares every file's full compiler output
//!   with its committed snapshot.
//! * **Codes-only mode** (any other compiler, or forced with
//!   `RECORDING_STATUS_UI_CODES_ONLY=1`): every `tests/ui/*.rs` file must still fail to
//!   compile, and its first error must be the one its committed snapshot starts with: the
//!   same error code (`error[E0599]` …), or, for an error without a code (`error: cannot
//!   construct …`), the same message text. Nothing else of the wording is compared, so a newer
//!   compiler that rephrases a message does not fail the suite, while a misuse that starts
//!   to compile (or fails for another reason) still does. The files are copied into a fresh
//!   temporary directory and trybuild runs there with `TRYBUILD=overwrite`, which writes
//!   fresh `.stderr` files next to the copies (never touching the committed ones) and still
//!   fails if a file compiles. `TRYBUILD` is only read from the environment, and setting it
//!   in this process would leak into the other tests of this binary (and needs `unsafe`), so
//!   trybuild runs in a child process: this very test binary, restricted to the ignored
//!   helper test `ui_codes_only_child`, with `TRYBUILD=overwrite` set on that child only.
//!   The child shares trybuild's project under `target/tests/trybuild/`, which trybuild
//!   serialises with its own lock file.
//!
//! # Regenerating snapshots
//!
//! On rustc 1.95 only: `TRYBUILD=overwrite cargo test --all-features --test compile_fail`.
//! On another compiler that command does not rewrite `tests/ui/*.stderr` (codes-only mode
//! runs on copies). To move the pin, change [`PINNED_RUSTC`] and regenerate with the new
//! toolchain.
//!
//! `RECORDING_STATUS_UI_DIR` (default `tests/ui`) points `misuse_does_not_compile` at another
//! directory of misuse files, to exercise this harness on a modified copy.

use std::env;
use std::ffi::OsString;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The `major.minor` of the stable rustc the committed `.stderr` snapshots were made with.
const PINNED_RUSTC: &str = "1.95";
/// Set (to anything but `0`) to run codes-only mode even on the pinned toolchain.
const FORCE_CODES_ONLY: &str = "RECORDING_STATUS_UI_CODES_ONLY";
/// Overrides the directory of misuse files (default [`UI_DIR`]).
const UI_DIR_OVERRIDE: &str = "RECORDING_STATUS_UI_DIR";
const UI_DIR: &str = "tests/ui";
/// Set by codes-only mode on the child process only: the temporary directory to run.
const CHILD_DIR: &str = "RECORDING_STATUS_UI_CHILD_DIR";
/// Name of the helper test the child process runs, as the test binary lists it.
const CHILD_TEST: &str = "compile_fail::ui_codes_only_child";

#[test]
fn misuse_does_not_compile() {
    let ui_dir = env::var_os(UI_DIR_OVERRIDE).map_or_else(|| PathBuf::from(UI_DIR), PathBuf::from);
    let version = rustc_version();
    let forced = env::var_os(FORCE_CODES_ONLY).is_some_and(|v| !v.is_empty() && v != "0");
    if !forced && is_pinned(&version) {
        trybuild::TestCases::new().compile_fail(ui_dir.join("*.rs"));
        return;
    }
    eprintln!(
        "compile_fail: codes-only mode ({version}; snapshots are pinned to rustc \
         {PINNED_RUSTC}.x{}): comparing first error codes, not full wording",
        if forced { ", forced" } else { "" },
    );
    check_codes_only(&ui_dir);
}

/// Run by `misuse_does_not_compile` in a child process (codes-only mode); a no-op otherwise.
#[test]
#[ignore = "helper of misuse_does_not_compile, which runs it in a child process"]
fn ui_codes_only_child() {
    if let Some(dir) = env::var_os(CHILD_DIR) {
        trybuild::TestCases::new().compile_fail(Path::new(&dir).join("*.rs"));
    }
}

#[test]
fn legal_paths_compile() {
    let t = trybuild::TestCases::new();
    t.pass("tests/ui-pass/*.rs");
}

#[test]
fn mode_selection_and_first_error_parsing() {
    assert!(is_pinned("rustc 1.95.0 (59807616e 2026-04-14)"));
    assert!(is_pinned("rustc 1.95.12 (0123456789 2026-09-01)"));
    assert!(!is_pinned("rustc 1.96.0 (0123456789 2026-05-28)"));
    assert!(!is_pinned("rustc 1.95.0-nightly (0123456789 2026-02-01)"));
    assert!(!is_pinned("rustc 1.9.5"));
    assert!(!is_pinned("rustc 1.950.0"));
    let coded =
        "warning: unused import\nerror[E0599]: no method named `retention`\n --> x.rs:5:27\n";
    let first = first_error(coded).unwrap();
    assert_eq!(first.code.as_deref(), Some("E0599"));
    assert_eq!(first.message, "no method named `retention`");
    assert_eq!(first.to_string(), "error[E0599]");
    let uncoded = "error: cannot construct `Call<_>` with struct literal syntax\n  |\n";
    let first = first_error(uncoded).unwrap();
    assert_eq!(first.code, None);
    assert_eq!(
        first.message,
        "cannot construct `Call<_>` with struct literal syntax"
    );
    assert_eq!(
        first.to_string(),
        "error: cannot construct `Call<_>` with struct literal syntax"
    );
    // Codes-only mode compares codes, and messages only where there is no code.
    let reworded = "error[E0599]: no method named `retention` found for struct `Call`\n";
    assert!(
        first_error(reworded)
            .unwrap()
            .same_as(&first_error(coded).unwrap())
    );
    let other_code = "error[E0277]: no method named `retention`\n";
    assert!(
        !first_error(other_code)
            .unwrap()
            .same_as(&first_error(coded).unwrap())
    );
    assert_eq!(first_error("warning: only a warning\n"), None);
}

/// `rustc --version` of `$RUSTC`, or of `rustc` when cargo was not given one.
fn rustc_version() -> String {
    let rustc = env::var_os("RUSTC").unwrap_or_else(|| OsString::from("rustc"));
    let output = Command::new(&rustc)
        .arg("--version")
        .output()
        .unwrap_or_else(|err| panic!("cannot run `{} --version`: {err}", rustc.display()));
    assert!(
        output.status.success(),
        "`{} --version` failed: {}",
        rustc.display(),
        String::from_utf8_lossy(&output.stderr),
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// `rustc 1.95.N (…)` stable; betas and nightlies (`1.95.0-nightly`) are not pinned.
fn is_pinned(version: &str) -> bool {
    version
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.strip_prefix(PINNED_RUSTC)?.strip_prefix('.'))
        .is_some_and(|patch| !patch.is_empty() && patch.bytes().all(|b| b.is_ascii_digit()))
}

/// The first error of a compiler output (a `.stderr` snapshot): its code, if it has one
/// (`error[E0599]: …`), and its message. Codes-only mode compares it by [`same_as`]; the
/// catalogue in the docs shows both.
///
/// [`same_as`]: Self::same_as
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct FirstError {
    pub(crate) code: Option<String>,
    pub(crate) message: String,
}

impl FirstError {
    /// What codes-only mode checks: the same code, or for an error without a code, the same
    /// message.
    fn same_as(&self, other: &Self) -> bool {
        match (&self.code, &other.code) {
            (Some(a), Some(b)) => a == b,
            (None, None) => self.message == other.message,
            _ => false,
        }
    }
}

impl std::fmt::Display for FirstError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.code {
            Some(code) => write!(f, "error[{code}]"),
            None => write!(f, "error: {}", self.message),
        }
    }
}

/// The first `error[…]: …` or `error: …` line of a compiler output, if any.
pub(crate) fn first_error(stderr: &str) -> Option<FirstError> {
    stderr.lines().find_map(|line| {
        let rest = line.strip_prefix("error")?;
        if let Some(message) = rest.strip_prefix(':') {
            return Some(FirstError {
                code: None,
                message: message.trim().to_owned(),
            });
        }
        let (code, message) = rest.strip_prefix('[')?.split_once("]:")?;
        Some(FirstError {
            code: Some(code.to_owned()),
            message: message.trim().to_owned(),
        })
    })
}

fn check_codes_only(ui_dir: &Path) {
    let mut cases: Vec<PathBuf> = fs::read_dir(ui_dir)
        .unwrap_or_else(|err| panic!("cannot read {}: {err}", ui_dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "rs"))
        .collect();
    cases.sort();
    assert!(!cases.is_empty(), "no *.rs files in {}", ui_dir.display());

    let scratch = tempfile::tempdir().expect("temporary directory");
    for case in &cases {
        let name = case.file_name().expect("file name");
        fs::copy(case, scratch.path().join(name))
            .unwrap_or_else(|err| panic!("cannot copy {}: {err}", case.display()));
    }

    let exe = env::current_exe().expect("path of this test binary");
    let child = Command::new(exe)
        .args([
            CHILD_TEST,
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("TRYBUILD", "overwrite")
        .env(CHILD_DIR, scratch.path())
        .output()
        .expect("run this test binary as a child");
    assert!(
        child.status.success(),
        "codes-only mode: a misuse compiled or trybuild failed ({}):\n{}\n{}",
        child.status,
        String::from_utf8_lossy(&child.stdout),
        String::from_utf8_lossy(&child.stderr),
    );

    let mut problems = String::new();
    for case in &cases {
        let committed_path = case.with_extension("stderr");
        let fresh_path = scratch
            .path()
            .join(case.file_name().expect("file name"))
            .with_extension("stderr");
        let Ok(committed) = fs::read_to_string(&committed_path) else {
            let _ = writeln!(
                problems,
                "{}: no committed snapshot (generate it on rustc {PINNED_RUSTC})",
                committed_path.display(),
            );
            continue;
        };
        let Some(expected) = first_error(&committed) else {
            let _ = writeln!(problems, "{}: no error line", committed_path.display());
            continue;
        };
        let fresh = fs::read_to_string(&fresh_path).unwrap_or_default();
        match first_error(&fresh) {
            Some(actual) if actual.same_as(&expected) => {}
            actual => {
                let actual = actual.map_or_else(|| "no error".to_owned(), |a| a.to_string());
                let _ = writeln!(
                    problems,
                    "{}: expected first error `{expected}`, got `{actual}`:\n{fresh}",
                    case.display(),
                );
            }
        }
    }
    assert!(problems.is_empty(), "codes-only mode:\n{problems}");
}
