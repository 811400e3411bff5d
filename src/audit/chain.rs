//! The trail's line format, its hash chain, and [`check_chain`], which proves a JSON-lines
//! trail has not been edited, cut in the middle, reordered or added to.
//!
//! # The line format
//!
//! A trail written by [`JsonLinesSink`](super::JsonLinesSink) is UTF-8, one line per event,
//! each line ended by `\n`:
//!
//! ```text
//! {"seq":N,"chain":"<64 lowercase hex>","at":"…","call_id":"…","event":"…",…}
//! ```
//!
//! - `seq` is the line's sequence number: `1` for the first line of a new file, then one more
//!   per line, continuing across reopenings of the file. It is written in decimal with no
//!   leading zeros.
//! - `chain` is `hex(H(prev ‖ body))`, where
//!   - `prev` is the 32 raw bytes of the previous line's `chain` (32 zero bytes for the first
//!     chained line of the file);
//!   - `body` is the exact bytes of the line, without its `\n`, with the 75 bytes
//!     `"chain":"<64 hex>",` removed: the bytes `{"seq":N,` followed by the rest of the line;
//!   - `H` is SHA-256, or HMAC-SHA256 under the key the bot gave when it opened the sink
//!     ([`JsonLinesOptions::key`](super::JsonLinesOptions::key)). Keyed, the chain cannot be
//!     forged by whoever can write the file but does not hold the key; unkeyed, it shows
//!     accidental damage and edits by someone who did not recompute it.
//! - The rest is the [`AuditEvent`]'s own fields as serde writes them (`at`, `call_id`,
//!   `event`, then the fields of its kind). The sink sets `at` when it assigns `seq`, never
//!   earlier than the previous line's `at`, so the lines are in time order.
//!
//! The two leading fields are always spelled exactly as above, in that order, with no spaces:
//! a checker finds `seq` and `chain` by position, and hashes the bytes as they are (nothing is
//! re-serialized). Any other JSON reader sees two extra fields and can ignore them.
//!
//! ## Torn tails
//!
//! A line that power loss or a full disk cut short is *torn*: it is not a whole event. (A last
//! line that lacks only its `\n` is whole; the sink ends it when it reopens the file.) The
//! bytes from the end of the last event line to the end of the file are the trail's torn
//! tail. When the sink reopens such a file it leaves those bytes in place,
//! starts a new line (adding a `\n` if the tail does not end with one) and writes an event of
//! kind [`TrailResumed`](super::AuditKind::TrailResumed) (`call_id` empty) whose `offset` is
//! where the torn bytes start and whose `torn_bytes` is how many there are; its `seq` and
//! chain continue from the last event line, skipping the torn bytes. A region of bad lines in the middle of a trail is
//! accepted only when such a line follows it and describes exactly it.
//!
//! ## Older trails
//!
//! Lines without the two leading fields (written before the chain existed) still read as
//! events. They may only come first: a chained trail's first chained line has `seq` 1 and a
//! zero `prev`. [`ChainSummary::unchained`] counts them; a trail begun with a chaining sink has
//! none, so an auditor should require `0` there: the command-line auditor refuses such lines
//! (and a trail with no chain at all) as `G9/unchained` unless told `--allow-unchained`. An
//! unchained line after a chained one is always a break ([`BreakKind::Unchained`]).
//!
//! ## What the chain cannot show
//!
//! A trail cut after its last line (lines removed from the end) is a valid shorter chain, and
//! a trail rewritten by whoever can recompute the chain (anyone without a key, its holder with
//! one) is a valid other chain. Keep the chain's head, the last line's `seq` and chain value,
//! somewhere the bot's host cannot rewrite, and compare it, to detect that: witnessed
//! checkpoints ([`JsonLinesOptions::checkpoints`](super::JsonLinesOptions::checkpoints),
//! [`check_checkpoints`](super::check_checkpoints)) do it as the trail grows.

use std::fmt;

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

use super::{AuditEvent, AuditKind};

/// The `prev` of the first chained line of a file.
pub(crate) const GENESIS: [u8; 32] = [0; 32];

/// The bytes that open every chained line, before its `seq`.
const SEQ_OPEN: &[u8] = b"{\"seq\":";
/// The bytes between `{"seq":N,` and the 64 hex digits.
const CHAIN_OPEN: &[u8] = b"\"chain\":\"";
/// The bytes after the 64 hex digits.
const CHAIN_CLOSE: &[u8] = b"\",";

/// Where the last complete event line of a trail ends and what follows it: bytes that power
/// loss or a full disk left behind, which are not a whole event line.
///
/// [`JsonLinesSink::read`](super::JsonLinesSink::read) and [`check_chain`] report it;
/// [`JsonLinesSink::open`](super::JsonLinesSink::open) resumes after it.
///
/// # Example
/// ```
/// use std::io::Write;
/// use recording_status::audit::{AuditEvent, AuditKind, AuditSink, JsonLinesSink};
///
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("audit.jsonl");
/// JsonLinesSink::open(&path)?.record(&AuditEvent::now("c1", AuditKind::RetentionEnded { capability: 1 }))?;
/// let whole = std::fs::metadata(&path)?.len();
/// // Power loss while the next line was being written.
/// std::fs::OpenOptions::new().append(true).open(&path)?.write_all(b"{\"seq\":2,\"ch")?;
///
/// let trail = JsonLinesSink::read(&path)?;
/// let torn = trail.torn_tail.ok_or("the last line should be torn")?;
/// assert_eq!((torn.offset, torn.bytes), (whole, 12));
/// assert_eq!(trail.events.len(), 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct TornTail {
    /// The byte offset where the torn bytes start (just after the last complete line).
    pub offset: u64,
    /// How many bytes follow, to the end of the file.
    pub bytes: u64,
}

/// What [`check_chain`] found in a trail whose chain holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ChainSummary {
    /// Event lines checked, chained or not (torn bytes are not lines).
    pub lines: usize,
    /// Event lines without `seq` and `chain`, at the start of the trail (written before the
    /// chain existed). `0` for a trail a chaining sink began.
    pub unchained: usize,
    /// Whether the trail has chained lines at all.
    pub chained: bool,
    /// Whether the chain was checked under a key (HMAC-SHA256) rather than plain SHA-256.
    pub keyed: bool,
    /// The `seq` of the last chained line (`0` if none).
    pub seq: u64,
    /// The `chain` of the last chained line, in hex: keep it out of the host's reach to detect
    /// a trail cut at its end.
    pub head: Option<String>,
    /// Bytes after the last complete line, if any.
    pub torn_tail: Option<TornTail>,
}

/// Where and how a trail's chain breaks. See [`check_chain`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("audit trail line {line} (byte {offset}): {kind}")]
#[non_exhaustive]
pub struct ChainBreak {
    /// The line, counted from 1.
    pub line: usize,
    /// The byte offset where the line starts.
    pub offset: u64,
    /// What is wrong with it.
    pub kind: BreakKind,
}

/// What is wrong at a [`ChainBreak`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BreakKind {
    /// The line's `chain` is not the hash of the previous chain and this line: the line was
    /// edited, or inserted, or the line before it was, or the key is not the trail's.
    #[error("chain value does not match (line edited or inserted, or wrong key)")]
    BadHash,
    /// A sequence number is missing from the trail: a line was deleted.
    #[error("sequence gap: expected {expected}, found {found} (line deleted)")]
    SequenceGap {
        /// The `seq` the line should have had.
        expected: u64,
        /// The `seq` it has.
        found: u64,
    },
    /// The line's `seq` belongs elsewhere: lines were reordered, or a line was copied.
    #[error(
        "sequence out of order: expected {expected}, found {found} (lines reordered or copied)"
    )]
    OutOfOrder {
        /// The `seq` the line should have had.
        expected: u64,
        /// The `seq` it has.
        found: u64,
    },
    /// A line without `seq` and `chain` after chained lines: a line was inserted.
    #[error("line without seq and chain inside a chained trail (line inserted)")]
    Unchained,
    /// Not an event line, and not torn bytes that a later `trail_resumed` line accounts for.
    #[error("not an audit event line")]
    Malformed,
}

/// Checks a JSON-lines trail's sequence numbers and hash chain, under `key` if the trail was
/// written with one. A torn tail is not a break; it is reported in
/// [`ChainSummary::torn_tail`].
///
/// # The line format
///
/// Each line is `{"seq":N,"chain":"<64 lowercase hex>",` followed by the
/// [`AuditEvent`]'s own fields as serde writes them (`"at":…,"call_id":…,"event":…,…}`) and
/// `\n`. `seq` counts lines from 1 in a new file and continues across reopenings. `chain` is
/// `hex(H(prev ‖ body))`: `prev` is the previous line's chain as 32 raw bytes (zeros for the
/// first line), `body` is the line without its `\n` and without `"chain":"<64 hex>",` (so it
/// starts `{"seq":N,`), and `H` is SHA-256, or HMAC-SHA256 under the trail's key. Bytes that
/// are not an event line are torn: at the end of the file they are the torn tail; elsewhere
/// the next line must be a `trail_resumed` event whose `offset` and `torn_bytes` say exactly
/// where they are, and which chains to the line before them. Lines without `seq` and `chain`
/// (written before the chain existed) may only come first.
///
/// # Errors
/// The first [`ChainBreak`]: the line and what is wrong with it.
///
/// # Example: an edited line
/// ```
/// use recording_status::audit::{AuditEvent, AuditKind, AuditSink, BreakKind, JsonLinesSink, check_chain};
///
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("audit.jsonl");
/// let sink = JsonLinesSink::options().key(*b"kept by the bot").open(&path)?;
/// for capability in 1..=3 {
///     sink.record(&AuditEvent::now("c1", AuditKind::RetentionEnded { capability }))?;
/// }
/// let bytes = std::fs::read(&path)?;
/// assert_eq!(check_chain(&bytes, Some(b"kept by the bot"))?.lines, 3);
///
/// let edited = String::from_utf8(bytes)?.replace("\"capability\":2", "\"capability\":9");
/// let broken = check_chain(edited.as_bytes(), Some(b"kept by the bot")).unwrap_err();
/// assert_eq!((broken.line, broken.kind), (2, BreakKind::BadHash));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn check_chain(bytes: &[u8], key: Option<&[u8]>) -> Result<ChainSummary, ChainBreak> {
    let hasher = Hasher::new(key);
    let mut prev = GENESIS;
    let mut summary = ChainSummary {
        keyed: key.is_some(),
        ..ChainSummary::default()
    };
    let torn_tail = walk(
        bytes,
        |line, parsed| {
            let fail = |kind| ChainBreak {
                line: line.number,
                offset: line.offset,
                kind,
            };
            summary.lines += 1;
            let Some(head) = parsed.head else {
                if summary.chained {
                    return Err(fail(BreakKind::Unchained));
                }
                summary.unchained += 1;
                return Ok(());
            };
            let expected = summary.seq + 1;
            if head.seq != expected {
                let moved = head.seq < expected || seq_later(bytes, line, expected);
                return Err(fail(if moved {
                    BreakKind::OutOfOrder {
                        expected,
                        found: head.seq,
                    }
                } else {
                    BreakKind::SequenceGap {
                        expected,
                        found: head.seq,
                    }
                }));
            }
            let want = hasher.link(
                &prev,
                &[head.body_start(line.bytes), head.body_rest(line.bytes)],
            );
            if !same(&want, &head.chain) {
                return Err(fail(BreakKind::BadHash));
            }
            prev = head.chain;
            summary.chained = true;
            summary.seq = head.seq;
            Ok(())
        },
        |line, offset| ChainBreak {
            line,
            offset,
            kind: BreakKind::Malformed,
        },
    )?;
    if summary.chained {
        summary.head = Some(hex(&prev));
    }
    summary.torn_tail = torn_tail;
    Ok(summary)
}

/// Whether a line after `line` carries `seq`: then the line at hand is out of order, not
/// after a gap.
fn seq_later(bytes: &[u8], line: &Line<'_>, seq: u64) -> bool {
    let Ok(from) = usize::try_from(line.offset) else {
        return false;
    };
    let rest = bytes.get(from + line.bytes.len()..).unwrap_or_default();
    lines(rest).any(|l| matches!(Head::parse(l.bytes), Head::Chained(h) if h.seq == seq))
}

/// Compares two chain values in time independent of where they differ.
fn same(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `H`: SHA-256, or HMAC-SHA256 under the trail's key. The key never appears in `Debug`.
#[derive(Clone)]
pub(crate) enum Hasher {
    /// Plain SHA-256.
    Plain,
    /// HMAC-SHA256, keyed once and cloned per line.
    Keyed(Box<Hmac<Sha256>>),
}

impl fmt::Debug for Hasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Plain => "Sha256",
            Self::Keyed(_) => "HmacSha256([redacted])",
        })
    }
}

impl Hasher {
    pub(crate) fn new(key: Option<&[u8]>) -> Self {
        match key.map(<Hmac<Sha256> as KeyInit>::new_from_slice) {
            Some(Ok(mac)) => Self::Keyed(Box::new(mac)),
            // HMAC takes keys of any length, so `new_from_slice` does not fail.
            Some(Err(_)) | None => Self::Plain,
        }
    }

    pub(crate) fn is_keyed(&self) -> bool {
        matches!(self, Self::Keyed(_))
    }

    /// `H(prev ‖ parts…)`.
    pub(crate) fn link(&self, prev: &[u8; 32], parts: &[&[u8]]) -> [u8; 32] {
        match self {
            Self::Plain => {
                let mut h = Sha256::new();
                Digest::update(&mut h, prev);
                for part in parts {
                    Digest::update(&mut h, part);
                }
                h.finalize().into()
            }
            Self::Keyed(mac) => {
                let mut mac = (**mac).clone();
                Mac::update(&mut mac, prev);
                for part in parts {
                    Mac::update(&mut mac, part);
                }
                mac.finalize().into_bytes().into()
            }
        }
    }
}

/// Appends `{"seq":N,"chain":"<64 zeros>",` to `buf` and returns where the hex digits start,
/// for [`seal`] to fill in once the rest of the line is written.
pub(crate) fn open_line(buf: &mut Vec<u8>, seq: u64) -> usize {
    buf.extend_from_slice(SEQ_OPEN);
    // Decimal, no leading zeros; by hand, not through `fmt`.
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    let mut n = seq;
    loop {
        at -= 1;
        digits[at] = b'0' + u8::try_from(n % 10).unwrap_or(0);
        n /= 10;
        if n == 0 {
            break;
        }
    }
    buf.extend_from_slice(&digits[at..]);
    buf.push(b',');
    buf.extend_from_slice(CHAIN_OPEN);
    let hex_at = buf.len();
    buf.extend_from_slice(&[b'0'; 64]);
    buf.extend_from_slice(CHAIN_CLOSE);
    hex_at
}

/// Computes the chain of the line that starts at `start` in `buf` (opened by [`open_line`],
/// whose hex digits start at `hex_at`, and now complete but for its `\n`), writes it in place,
/// and returns it.
pub(crate) fn seal(
    buf: &mut [u8],
    start: usize,
    hex_at: usize,
    prev: &[u8; 32],
    hasher: &Hasher,
) -> [u8; 32] {
    let seq_end = hex_at - CHAIN_OPEN.len();
    let rest = hex_at + 64 + CHAIN_CLOSE.len();
    let chain = hasher.link(prev, &[&buf[start..seq_end], &buf[rest..]]);
    for (i, b) in chain.iter().enumerate() {
        buf[hex_at + 2 * i] = HEX[usize::from(b >> 4)];
        buf[hex_at + 2 * i + 1] = HEX[usize::from(b & 0xf)];
    }
    chain
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn hex(bytes: &[u8; 32]) -> String {
    bytes
        .iter()
        .flat_map(|b| [HEX[usize::from(b >> 4)], HEX[usize::from(b & 0xf)]])
        .map(char::from)
        .collect()
}

/// The leading `seq` and `chain` of a chained line, found by position.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ChainHead {
    pub(crate) seq: u64,
    pub(crate) chain: [u8; 32],
    /// End of `{"seq":N,`.
    seq_end: usize,
    /// Start of the rest, after `"chain":"<hex>",`.
    rest: usize,
}

impl ChainHead {
    fn body_start<'a>(&self, line: &'a [u8]) -> &'a [u8] {
        &line[..self.seq_end]
    }

    fn body_rest<'a>(&self, line: &'a [u8]) -> &'a [u8] {
        &line[self.rest..]
    }
}

/// How a line starts.
enum Head {
    /// Not with `{"seq":`: an older, unchained line (if it is an event at all).
    Unchained,
    /// With a well-formed `{"seq":N,"chain":"<hex>",`.
    Chained(ChainHead),
    /// With `{"seq":` but not the rest of the format.
    Malformed,
}

impl Head {
    fn parse(line: &[u8]) -> Self {
        let Some(after) = line.strip_prefix(SEQ_OPEN) else {
            return Self::Unchained;
        };
        Self::chained(line, after).map_or(Self::Malformed, Self::Chained)
    }

    fn chained(line: &[u8], after: &[u8]) -> Option<ChainHead> {
        let digits = after.iter().take_while(|b| b.is_ascii_digit()).count();
        if digits == 0 || (digits > 1 && after[0] == b'0') {
            return None;
        }
        let seq = std::str::from_utf8(&after[..digits]).ok()?.parse().ok()?;
        let seq_end = SEQ_OPEN.len() + digits + 1;
        let rest = line.get(seq_end - 1..)?.strip_prefix(b",")?;
        let rest = rest.strip_prefix(CHAIN_OPEN)?;
        let (digits, rest) = rest.split_at_checked(64)?;
        rest.strip_prefix(CHAIN_CLOSE)?;
        let mut chain = [0u8; 32];
        for (out, pair) in chain.iter_mut().zip(digits.chunks_exact(2)) {
            *out = (nibble(pair[0])? << 4) | nibble(pair[1])?;
        }
        Some(ChainHead {
            seq,
            chain,
            seq_end,
            rest: seq_end + CHAIN_OPEN.len() + 64 + CHAIN_CLOSE.len(),
        })
    }
}

/// A lowercase hex digit's value.
fn nibble(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        _ => None,
    }
}

/// An event line: the event, and its `seq` and `chain` if it has them.
#[derive(Debug)]
pub(crate) struct Parsed {
    pub(crate) event: AuditEvent,
    pub(crate) head: Option<ChainHead>,
}

/// Reads one line (without its `\n`) as an event line, or `None` if it is not one.
pub(crate) fn parse(line: &[u8]) -> Option<Parsed> {
    let head = match Head::parse(line) {
        Head::Unchained => None,
        Head::Chained(h) => Some(h),
        Head::Malformed => return None,
    };
    let event = serde_json::from_slice(line).ok()?;
    Some(Parsed { event, head })
}

/// One line of a trail.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Line<'a> {
    /// Counted from 1.
    pub(crate) number: usize,
    /// Where it starts in the file.
    pub(crate) offset: u64,
    /// Its bytes, without the `\n` (only the last line of a file can lack one).
    pub(crate) bytes: &'a [u8],
}

/// The lines of `bytes`.
pub(crate) fn lines(bytes: &[u8]) -> impl Iterator<Item = Line<'_>> {
    let mut offset = 0usize;
    let mut number = 0usize;
    std::iter::from_fn(move || {
        let rest = bytes.get(offset..).filter(|r| !r.is_empty())?;
        let (len, ended) = match rest.iter().position(|&b| b == b'\n') {
            Some(i) => (i, true),
            None => (rest.len(), false),
        };
        number += 1;
        let line = Line {
            number,
            offset: offset as u64,
            bytes: &rest[..len],
        };
        offset += len + usize::from(ended);
        Some(line)
    })
}

/// Walks a trail's event lines in order, handing each to `each`, and returns its torn tail.
/// A run of lines that are not events (or a last line without `\n`) is torn: at the end of
/// the file it is the torn tail; elsewhere the next event line must be the `trail_resumed`
/// that describes it, or the walk fails with `malformed(line, offset)` of its first line.
pub(crate) fn walk<E>(
    bytes: &[u8],
    mut each: impl FnMut(&Line<'_>, Parsed) -> Result<(), E>,
    malformed: impl Fn(usize, u64) -> E,
) -> Result<Option<TornTail>, E> {
    // The first line and offset of the run of torn lines being crossed.
    let mut torn: Option<(usize, u64)> = None;
    for line in lines(bytes) {
        let Some(parsed) = parse(line.bytes) else {
            torn.get_or_insert((line.number, line.offset));
            continue;
        };
        if let Some((number, offset)) = torn.take()
            && !resumes(&parsed.event, offset, line.offset)
        {
            return Err(malformed(number, offset));
        }
        each(&line, parsed)?;
    }
    Ok(torn.map(|(_, offset)| TornTail {
        offset,
        bytes: bytes.len() as u64 - offset,
    }))
}

/// Whether `event`, on a line at `at`, is the `trail_resumed` for torn bytes from `offset`:
/// they end where the line starts, or one byte before (the `\n` the sink added).
fn resumes(event: &AuditEvent, offset: u64, at: u64) -> bool {
    match event.kind {
        AuditKind::TrailResumed {
            torn_bytes,
            offset: o,
        } => o == offset && (at == o + torn_bytes || at == o + torn_bytes + 1),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(seq: u64, prev: &[u8; 32], rest: &str, hasher: &Hasher) -> (Vec<u8>, [u8; 32]) {
        let mut buf = Vec::new();
        let hex_at = open_line(&mut buf, seq);
        buf.extend_from_slice(rest.as_bytes());
        let chain = seal(&mut buf, 0, hex_at, prev, hasher);
        (buf, chain)
    }

    #[test]
    fn the_chain_is_the_hash_of_prev_and_the_line_without_its_chain() {
        let rest = r#""at":"2025-01-01T00:00:00Z","call_id":"c","event":"retention_ended","capability":1}"#;
        let (bytes, chain) = line(1, &GENESIS, rest, &Hasher::Plain);
        let text = String::from_utf8(bytes.clone()).unwrap();
        let body = format!("{{\"seq\":1,{rest}");
        let mut h = Sha256::new();
        Digest::update(&mut h, GENESIS);
        Digest::update(&mut h, body.as_bytes());
        let want: [u8; 32] = h.finalize().into();
        assert_eq!(chain, want);
        assert_eq!(
            text,
            format!("{{\"seq\":1,\"chain\":\"{}\",{rest}", hex(&want))
        );
        let Head::Chained(head) = Head::parse(&bytes) else {
            panic!("not chained")
        };
        assert_eq!((head.seq, head.chain), (1, want));
        let parsed = parse(&bytes).unwrap();
        assert_eq!(parsed.event.call_id, "c");
    }

    #[test]
    fn keyed_chain_differs_and_key_is_not_in_debug() {
        let rest = r#""at":"2025-01-01T00:00:00Z","call_id":"c","event":"retention_ended","capability":1}"#;
        let keyed = Hasher::new(Some(b"top-secret-key"));
        let (_, a) = line(1, &GENESIS, rest, &Hasher::Plain);
        let (_, b) = line(1, &GENESIS, rest, &keyed);
        assert_ne!(a, b);
        assert!(!format!("{keyed:?}").contains("top-secret"));
        assert!(keyed.is_keyed());
    }

    #[test]
    fn heads_are_parsed_strictly() {
        let ok = format!("{{\"seq\":12,\"chain\":\"{}\",\"at\":1}}", "ab".repeat(32));
        assert!(matches!(Head::parse(ok.as_bytes()), Head::Chained(h) if h.seq == 12));
        for bad in [
            format!("{{\"seq\":012,\"chain\":\"{}\",", "ab".repeat(32)),
            format!("{{\"seq\":,\"chain\":\"{}\",", "ab".repeat(32)),
            format!("{{\"seq\":1,\"chain\":\"{}\",", "AB".repeat(32)),
            format!("{{\"seq\":1,\"chain\":\"{}\",", "ab".repeat(31)),
            "{\"seq\":1,\"at\":2}".to_owned(),
            format!(
                "{{\"seq\":99999999999999999999,\"chain\":\"{}\",",
                "ab".repeat(32)
            ),
        ] {
            assert!(
                matches!(Head::parse(bad.as_bytes()), Head::Malformed),
                "{bad}"
            );
        }
        assert!(matches!(Head::parse(b"{\"at\":1}"), Head::Unchained));
    }

    #[test]
    fn seq_is_written_in_decimal_without_leading_zeros() {
        for seq in [0, 1, 9, 10, 99, 100, 12_345, u64::MAX] {
            let mut buf = Vec::new();
            open_line(&mut buf, seq);
            let text = String::from_utf8(buf).unwrap();
            assert!(
                text.starts_with(&format!("{{\"seq\":{seq},\"chain\":\"")),
                "{text}"
            );
        }
    }

    #[test]
    fn lines_keep_offsets_and_an_unended_last_line() {
        let all: Vec<_> = lines(b"a\n\nbc")
            .map(|l| (l.number, l.offset, l.bytes))
            .collect();
        assert_eq!(
            all,
            [(1, 0, &b"a"[..]), (2, 2, &b""[..]), (3, 3, &b"bc"[..])]
        );
    }
}
