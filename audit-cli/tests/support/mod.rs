//! What both of the tool's test files use: running it, reading what it printed, and forging a
//! trail's chain as an operator would.

use std::process::{Command, Output};

/// Runs `recording-audit` with `args`.
pub(crate) fn audit(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_recording-audit"))
        .args(args)
        .output()
        .unwrap()
}

/// What it printed on stdout.
pub(crate) fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// What it printed on stderr.
pub(crate) fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Recomputes the chain of every line, as a forger who knows the algorithm (and, with `key`,
/// holds the trail's key) can.
pub(crate) fn rechain(text: &str, key: Option<&[u8]>) -> String {
    use hmac::{Hmac, KeyInit, Mac};
    use sha2::{Digest, Sha256};
    let mut prev = [0u8; 32];
    let mut out = String::new();
    for line in text.lines() {
        let (start, rest) = line.split_once(",\"chain\":\"").unwrap();
        let rest = &rest[66..];
        let body = format!("{start},{rest}");
        prev = match key {
            None => Sha256::new()
                .chain_update(prev)
                .chain_update(body.as_bytes())
                .finalize()
                .into(),
            Some(key) => {
                let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key).unwrap();
                mac.update(&prev);
                mac.update(body.as_bytes());
                mac.finalize().into_bytes().into()
            }
        };
        let hex: String = prev.iter().map(|b| format!("{b:02x}")).collect();
        out.push_str(&format!("{start},\"chain\":\"{hex}\",{rest}\n"));
    }
    out
}
