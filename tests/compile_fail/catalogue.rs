//! The compile-fail catalogue (G3) in the `compliance` docs is generated from `tests/ui/`, so it
//! cannot drift from the suite that `tests/compile_fail/compile_fail.rs` runs.
//!
//! Each `tests/ui/*.rs` file holds one misuse and says which in its `//!` doc; its `.stderr`
//! snapshot holds the compiler's verdict. `catalogue_matches_docs` rebuilds
//! `docs/compile-fail.md` from them in memory and compares it with the committed copy;
//! `UPDATE_DIAGRAM=1 cargo test --test compile_fail catalogue` rewrites it.

use std::fmt::Write as _;
use std::path::Path;

use crate::compile_fail::{FirstError, first_error};

const UI: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/ui");
const DOCS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/compile-fail.md");

/// The misuse a file describes, in one line: the first sentence of its leading `//!` doc,
/// without the `Misuse:` prefix.
fn misuse(source: &str) -> String {
    let doc: Vec<&str> = source
        .lines()
        .map_while(|l| l.strip_prefix("//!"))
        .map(str::trim)
        .take_while(|l| !l.is_empty())
        .collect();
    let doc = doc.join(" ");
    let doc = doc.strip_prefix("Misuse:").unwrap_or(&doc).trim();
    // A sentence ends at a `.` followed by the end or by a space and a capital letter (so that
    // "e.g. from" does not end it).
    let bytes = doc.as_bytes();
    let end = (0..bytes.len())
        .find(|&i| {
            bytes[i] == b'.'
                && (i + 1 == bytes.len()
                    || (bytes[i + 1] == b' '
                        && bytes.get(i + 2).is_some_and(u8::is_ascii_uppercase)))
        })
        .map_or(doc.len(), |i| i + 1);
    let sentence = &doc[..end];
    let mut chars = sentence.chars();
    chars.next().map_or_else(String::new, |first| {
        first.to_uppercase().chain(chars).collect()
    })
}

/// Markdown table cells cannot hold a `|`.
fn cell(text: &str) -> String {
    text.replace('|', "\\|")
}

fn catalogue() -> String {
    let mut files: Vec<_> = std::fs::read_dir(UI)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "rs"))
        .collect();
    files.sort();
    let mut out = String::from(
        "<!-- Generated from tests/ui/ by tests/compile_fail/catalogue.rs; `UPDATE_DIAGRAM=1 cargo test \
         --test compile_fail catalogue` rewrites it. -->\n\n\
         | Misuse that does not compile | `tests/ui/` | Error | First error |\n\
         |---|---|---|---|\n",
    );
    for path in &files {
        let name = path.file_name().unwrap().to_string_lossy();
        let source = std::fs::read_to_string(path).unwrap();
        let stderr_path = path.with_extension("stderr");
        let stderr = std::fs::read_to_string(&stderr_path)
            .unwrap_or_else(|e| panic!("{}: {e}", stderr_path.display()));
        let FirstError { code, message } =
            first_error(&stderr).unwrap_or_else(|| panic!("no error line in:\n{stderr}"));
        let misuse = misuse(&source);
        assert!(
            !misuse.is_empty(),
            "{name} has no `//!` doc saying its misuse"
        );
        writeln!(
            out,
            "| {} | `{name}` | {} | {} |",
            cell(&misuse),
            code.map_or_else(|| "(no code)".to_owned(), |c| format!("`{c}`")),
            cell(&message),
        )
        .unwrap();
    }
    writeln!(
        out,
        "\n{} misuses, each its own file; `cargo test --test compile_fail` checks them.",
        files.len()
    )
    .unwrap();
    out
}

#[test]
fn catalogue_matches_docs() {
    let generated = catalogue();
    if std::env::var_os("UPDATE_DIAGRAM").is_some() {
        std::fs::write(DOCS, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(DOCS).unwrap_or_default();
    assert!(
        committed == generated,
        "docs/compile-fail.md differs from tests/ui/; run `UPDATE_DIAGRAM=1 cargo test --test \
         compile_fail catalogue` and review the diff"
    );
}

#[test]
fn misuse_and_error_are_read_as_documented() {
    assert_eq!(
        misuse(
            "//! Misuse: conjuring a `Call<Recording>` by deserializing it (e.g. from a\n\
             //! persisted session). More words.\nuse x;\n"
        ),
        "Conjuring a `Call<Recording>` by deserializing it (e.g. from a persisted session)."
    );
    assert_eq!(misuse("//! Misuse: one line\n\n//! not this\n"), "One line");
    assert_eq!(
        first_error("warning: w\nerror[E0599]: no method named `x`\nerror[E0277]: y\n"),
        Some(FirstError {
            code: Some("E0599".to_owned()),
            message: "no method named `x`".to_owned()
        })
    );
    assert_eq!(
        first_error("error: cannot construct `Call<_>`\n --> a.rs\n"),
        Some(FirstError {
            code: None,
            message: "cannot construct `Call<_>`".to_owned()
        })
    );
    assert!(Path::new(UI).is_dir());
}
