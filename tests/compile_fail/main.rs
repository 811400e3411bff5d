//! G3, misuse does not compile: the trybuild suite over `tests/ui/` (and the legal paths of
//! `tests/ui-pass/`), and the catalogue of misuses in the docs generated from it.

mod catalogue;
mod compile_fail;
