//! G3: every misuse below must fail to compile; each file holds exactly one misuse.

#[test]
fn misuse_does_not_compile() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
}

#[test]
fn legal_paths_compile() {
    let t = trybuild::TestCases::new();
    t.pass("tests/ui-pass/*.rs");
}
