//! Witnessed checkpoints (G12): signed statements of a trail's chain head, handed to a witness
//! outside the operator's reach, against which an auditor checks the trail later.
//!
//! The hash chain ([`check_chain`](super::check_chain)) shows an edit in the middle of a trail,
//! but not a trail cut at its end, nor one rewritten and rechained by whoever can recompute
//! the chain (anyone, for plain SHA-256; the key holder, for HMAC). A checkpoint closes both:
//! the sink signs its chain head, `(seq, chain value of line seq)`, with an Ed25519 key whose
//! public half the auditor holds, and hands it to a [`Witness`]. Once the auditor holds a
//! checkpoint, the trail up to it can no longer be changed unseen, even by the holder of the
//! signing key and of the chain key: a shorter trail does not reach the checkpoint's `seq`,
//! and a rewritten one has another chain value there (the chain value of line `seq` depends on
//! every byte of lines `1..=seq`).
//!
//! # The parts
//!
//! - [`Checkpoint`], [`SignedCheckpoint`], [`CheckpointSigner`] and [`VerifierKey`]: the format
//!   below, signing and checking one note;
//! - [`Witness`], where the sink hands each checkpoint, with [`FileWitness`] (an append-only
//!   file the auditor collects) and, with the `driver` feature, [`HttpWitness`] (a POST to an
//!   endpoint through the bot's [`Transport`](crate::transport::Transport));
//! - [`CheckpointFile`]: a witness file read back;
//! - [`check_checkpoints`]: a trail checked against the checkpoints an auditor holds.
//!
//! The sink emits checkpoints when given [`CheckpointOptions`] through
//! [`JsonLinesOptions::checkpoints`](super::JsonLinesOptions::checkpoints): see there for when.
//!
//! The format, what a checkpoint proves and what it does not: see [`Checkpoint`].

mod check;
mod emit;
mod file;
#[cfg(feature = "driver")]
mod http;

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::{DateTime, SecondsFormat, Utc};
use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};
use sha2::{Digest as _, Sha256};

pub use check::{CheckpointProblem, CheckpointReport, check_checkpoints};
pub(crate) use emit::{Checkpointer, Head};
pub use file::{CheckpointFile, FileWitness, NoteAt, UnreadableNote};
#[cfg(feature = "driver")]
pub use http::{HttpWitness, HttpWitnessStats, HttpWitnessTask};

use crate::error::AuditError;

/// The signed-note algorithm byte of Ed25519.
const ED25519: u8 = 0x01;
/// What opens a signature line: U+2014 and a space.
const SIGNATURE_OPEN: &str = "\u{2014} ";
/// What opens the time extension line.
const TIME_OPEN: &str = "time ";
/// The longest origin accepted.
const MAX_ORIGIN: usize = 255;
/// The most signature lines read from one note.
const MAX_SIGNATURES: usize = 100;

/// Why a checkpoint, a key or a key name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CheckpointError {
    /// The origin is empty, longer than 255 bytes, or holds a control character. Choose a
    /// name like `example.com/bot-1/audit`.
    #[error("invalid checkpoint origin: {reason}")]
    InvalidOrigin {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A key name is empty, or holds a space or a `+`. Choose a name like `bot-1`.
    #[error("invalid key name (empty, or with a space or a plus sign)")]
    InvalidKeyName,
    /// The text is not a signed checkpoint note: it says where.
    #[error("not a checkpoint note: {reason}")]
    Malformed {
        /// What is wrong, and where.
        reason: String,
    },
    /// The text is not a verifier key (`name+hex id+base64 key`).
    #[error("not an Ed25519 note verifier key: {reason}")]
    InvalidVerifierKey {
        /// What is wrong.
        reason: String,
    },
    /// The note carries no signature by the key (by its name and id): it was signed by
    /// another key, or the auditor holds the wrong one. Its signers are listed.
    #[error("no signature by key {key} (signed by: {signers})")]
    NotSignedByKey {
        /// The key looked for, `name+id`.
        key: String,
        /// The signatures the note carries, `name+id` each, comma-separated.
        signers: String,
    },
    /// The note carries a line by the key's name and id, but the signature does not verify:
    /// the text was altered after signing, or the signature was forged.
    #[error("signature by key {key} does not verify (text altered or signature forged)")]
    BadSignature {
        /// The key, `name+id`.
        key: String,
    },
}

/// A key name as signed notes allow it: non-empty, no Unicode space, no `+`.
fn valid_key_name(name: &str) -> bool {
    !name.is_empty() && !name.chars().any(|c| c.is_whitespace() || c == '+')
}

/// Checks an origin: non-empty, at most [`MAX_ORIGIN`] bytes, no control character.
fn check_origin(origin: &str) -> Result<(), CheckpointError> {
    let reason = if origin.is_empty() {
        "empty"
    } else if origin.len() > MAX_ORIGIN {
        "longer than 255 bytes"
    } else if origin.chars().any(char::is_control) {
        "holds a control character"
    } else {
        return Ok(());
    };
    Err(CheckpointError::InvalidOrigin { reason })
}

/// The signed-note key id: the first 4 bytes of `SHA-256(name ‖ '\n' ‖ 0x01 ‖ key)`.
fn key_id(name: &str, key: &VerifyingKey) -> u32 {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update([b'\n', ED25519]);
    h.update(key.as_bytes());
    let digest = h.finalize();
    u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]])
}

/// A statement of a trail's chain head: the trail named `origin` had, at time `at`, line
/// `seq` with chain value `head` (and so, exactly its lines `1..=seq`).
///
/// # The format
///
/// A checkpoint is a [C2SP signed note] whose text is a [C2SP `tlog-checkpoint`] body, UTF-8.
/// Here, line 42 of the trail `example.com/bot-1/audit` (whose chain value is, for the
/// example's sake, `SHA-256("example")`), signed by the key `bot-1`:
///
/// ```text
/// example.com/bot-1/audit
/// 42
/// UNhY4JhezH9gQYqvDMWrWH9CwlcKiECVqejMrND2VFw=
/// time 2025-06-02T09:00:00.123Z
///
/// — bot-1 FnMqUJXudF83dDYpMEnIBQKqbe9JyvMBu+WN71mC+t7KWpuyWBU2NUA3EGlZq0dgEeKWTFLGVVPTQDTZKwKidOSRLwQ=
/// ```
///
/// and the auditor's public key for it (seed `[42; 32]`, key name `bot-1`):
///
/// ```text
/// bot-1+16732a50+ARl/ayPhbIUyxqvIOPrNXqeJvgx2spIDNAOb+os9No1h
/// ```
///
/// - The **origin** line names the trail: a name the bot chooses, unique to the trail (for
///   instance `example.com/bot-1/audit`); non-empty, at most 255 bytes, no control
///   characters.
/// - The **size** line is the `seq` of the last trail line the checkpoint covers, in decimal
///   without leading zeros (`0`: the empty trail).
/// - The **hash** line is that line's chain value (the 32 bytes of its `"chain"`, the hex in
///   the trail), in standard padded base64 (32 zero bytes for the empty trail).
/// - Then one **extension line**, `time ` and the RFC 3339 UTC time the checkpoint was signed
///   (the sink's clock). Other extension lines are allowed by the format, signed, and ignored.
/// - The text ends with a newline; a blank line; then one or more **signature lines**,
///   `— <key name> <base64(key id ‖ signature)>`, where `—` is U+2014, the key id is the first
///   4 bytes (big-endian) of `SHA-256(key name ‖ 0x0A ‖ 0x01 ‖ public key)`, `0x01` is the
///   signed-note algorithm byte of Ed25519, and the signature is Ed25519 over the text
///   (every byte up to and including its last newline). Signatures by other keys (a
///   witness's cosignature) may follow and are ignored when checking under a key.
/// - The auditor's **public key** is the note verifier key text,
///   `<key name>+<8 hex digits of key id>+<base64(0x01 ‖ 32-byte public key)>`, as
///   [`VerifierKey`] parses and prints it.
///
/// ## Where this departs from C2SP
///
/// - The **hash is a hash-chain head, not a Merkle tree root**: there are no inclusion or
///   consistency proofs. An auditor checks a checkpoint by reading the trail itself (its
///   chain verified by [`check_chain`](super::check_chain)) up to line `seq` and comparing
///   that line's chain value: it needs the whole trail, not a proof.
/// - The size is the **`seq` of the last line covered**, which is also the number of chained
///   lines covered for a trail begun by a chaining sink.
/// - The `time` extension line is ours; signed notes do not define one.
/// - Verification uses Ed25519's strict rules (`verify_strict`: no small-order keys, no
///   malleable signatures), stricter than most note verifiers; the signer never produces what
///   they reject.
///
/// # What a checkpoint proves, and what it does not
///
/// - **It proves** that the trail's first `seq` lines were exactly these when the checkpoint
///   was signed: once the auditor holds it, no one (the operator, the holder of the chain key,
///   the holder of the signing key) can cut the trail before it, or rewrite and rechain it,
///   without [`check_checkpoints`] naming the checkpoint the trail contradicts. It proves
///   this about a trail whose chain holds ([`check_chain`](super::check_chain), under the key
///   for a keyed trail): the checkpoint pins the chain head, the chain pins the lines.
/// - **It does not cover the tail**: lines after the last checkpoint the auditor holds can
///   still be cut or rewritten unseen. [`CheckpointReport`] says how many there are.
/// - **It needs a witness outside the operator's control.** The signing key lives with the
///   bot, so whoever controls the bot can sign a checkpoint of a rewritten trail; what they
///   cannot do is take back a checkpoint the witness already holds. A witness file on the
///   bot's own disk, which the operator can rewrite together with the trail, proves nothing
///   against the operator.
/// - **An operator who never sends checkpoints** (or a sink opened without them) leaves the
///   whole trail unwitnessed: the auditor sees no checkpoint, or old ones and a long tail, and
///   should ask why.
///
/// [C2SP signed note]: https://c2sp.org/signed-note
/// [C2SP `tlog-checkpoint`]: https://c2sp.org/tlog-checkpoint
///
/// # Example
/// ```
/// use recording_status::audit::{Checkpoint, CheckpointSigner};
///
/// let at = "2025-06-02T09:00:00Z".parse()?;
/// let checkpoint = Checkpoint::new("example.com/bot-1/audit", 42, [7; 32], at)?;
/// assert_eq!(
///     checkpoint.text(),
///     "example.com/bot-1/audit\n42\nBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=\ntime 2025-06-02T09:00:00Z\n",
/// );
/// let signer = CheckpointSigner::new("bot-1", [1; 32])?;
/// let signed = checkpoint.sign(&signer);
/// assert_eq!(signed.verify(&signer.verifier_key())?, &checkpoint);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Checkpoint {
    origin: String,
    seq: u64,
    head: [u8; 32],
    at: DateTime<Utc>,
}

impl Checkpoint {
    /// A checkpoint of line `seq` of the trail named `origin`, whose chain value is `head`,
    /// made at `at`. For the empty trail, `seq` is 0 and `head` is 32 zero bytes.
    ///
    /// # Errors
    /// [`CheckpointError::InvalidOrigin`]: empty, longer than 255 bytes, or with a control
    /// character.
    ///
    /// # Example
    /// ```
    /// use recording_status::audit::{Checkpoint, CheckpointError};
    ///
    /// let at = chrono::Utc::now();
    /// assert!(Checkpoint::new("example.com/bot-1/audit", 1, [0; 32], at).is_ok());
    /// assert!(matches!(
    ///     Checkpoint::new("two\nlines", 1, [0; 32], at),
    ///     Err(CheckpointError::InvalidOrigin { .. })
    /// ));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new(
        origin: impl Into<String>,
        seq: u64,
        head: [u8; 32],
        at: DateTime<Utc>,
    ) -> Result<Self, CheckpointError> {
        let origin = origin.into();
        check_origin(&origin)?;
        Ok(Self {
            origin,
            seq,
            head,
            at,
        })
    }

    /// The trail's name.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The `seq` of the last trail line covered (0 for the empty trail).
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// The chain value of line [`seq`](Self::seq), as 32 raw bytes.
    pub fn head(&self) -> &[u8; 32] {
        &self.head
    }

    /// When the checkpoint was made.
    pub fn at(&self) -> DateTime<Utc> {
        self.at
    }

    /// The note text: origin, size, hash and time lines, each ended by a newline. This is
    /// what a signature covers.
    ///
    /// # Example
    /// ```
    /// use recording_status::audit::Checkpoint;
    ///
    /// let checkpoint = Checkpoint::new("t", 0, [0; 32], "2025-01-01T00:00:00Z".parse()?)?;
    /// assert_eq!(checkpoint.text().lines().count(), 4);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn text(&self) -> String {
        format!(
            "{}\n{}\n{}\n{TIME_OPEN}{}\n",
            self.origin,
            self.seq,
            BASE64.encode(self.head),
            self.at.to_rfc3339_opts(SecondsFormat::AutoSi, true)
        )
    }

    /// Signs the checkpoint with `signer`.
    ///
    /// # Example
    /// ```
    /// use recording_status::audit::{Checkpoint, CheckpointSigner};
    ///
    /// let signer = CheckpointSigner::new("bot-1", [9; 32])?;
    /// let checkpoint = Checkpoint::new("example.com/bot-1/audit", 3, [1; 32], chrono::Utc::now())?;
    /// let note = checkpoint.sign(&signer).to_note();
    /// assert!(note.contains("\n\n\u{2014} bot-1 "));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn sign(&self, signer: &CheckpointSigner) -> SignedCheckpoint {
        let text = self.text();
        let signature = signer.key.sign(text.as_bytes()).to_bytes();
        SignedCheckpoint {
            checkpoint: self.clone(),
            text,
            signatures: vec![NoteSignature {
                name: signer.name.clone(),
                id: signer.id,
                bytes: signature.to_vec(),
            }],
        }
    }

    /// Reads a note text (without its signatures).
    fn parse_text(text: &str) -> Result<Self, CheckpointError> {
        let malformed = |reason: String| CheckpointError::Malformed { reason };
        if text.chars().any(|c| c.is_control() && c != '\n') {
            return Err(malformed("a control character in the text".to_owned()));
        }
        let body = text
            .strip_suffix('\n')
            .ok_or_else(|| malformed("the text does not end with a newline".to_owned()))?;
        let mut lines = body.split('\n');
        let origin = lines.next().unwrap_or_default();
        check_origin(origin).map_err(|e| malformed(format!("line 1 (origin): {e}")))?;
        let size = lines
            .next()
            .ok_or_else(|| malformed("no size line".to_owned()))?;
        let canonical = !size.is_empty()
            && size.bytes().all(|b| b.is_ascii_digit())
            && (size == "0" || !size.starts_with('0'));
        let seq =
            size.parse().ok().filter(|_| canonical).ok_or_else(|| {
                malformed(format!("line 2 (size) is not a decimal number: {size:?}"))
            })?;
        let hash = lines
            .next()
            .ok_or_else(|| malformed("no hash line".to_owned()))?;
        let head: [u8; 32] = BASE64
            .decode(hash)
            .ok()
            .and_then(|h| h.try_into().ok())
            .ok_or_else(|| malformed("line 3 (hash) is not 32 bytes in base64".to_owned()))?;
        let mut at = None;
        for (n, line) in lines.enumerate() {
            if line.is_empty() {
                return Err(malformed(format!("line {} is empty", n + 4)));
            }
            if let Some(time) = line.strip_prefix(TIME_OPEN) {
                if at.is_some() {
                    return Err(malformed("two time lines".to_owned()));
                }
                let time = DateTime::parse_from_rfc3339(time)
                    .map_err(|e| malformed(format!("line {} (time): {e}", n + 4)))?;
                at = Some(time.with_timezone(&Utc));
            }
        }
        let at = at.ok_or_else(|| malformed("no time line".to_owned()))?;
        Ok(Self {
            origin: origin.to_owned(),
            seq,
            head,
            at,
        })
    }
}

/// One signature line of a note.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct NoteSignature {
    name: String,
    id: u32,
    /// The signature, after the key id (64 bytes for Ed25519; any length for other keys).
    bytes: Vec<u8>,
}

impl NoteSignature {
    fn line(&self) -> String {
        let mut blob = self.id.to_be_bytes().to_vec();
        blob.extend_from_slice(&self.bytes);
        format!("{SIGNATURE_OPEN}{} {}\n", self.name, BASE64.encode(blob))
    }

    fn parse(line: &str) -> Result<Self, CheckpointError> {
        let malformed = |reason: &str| CheckpointError::Malformed {
            reason: format!("signature line {line:?}: {reason}"),
        };
        let rest = line
            .strip_prefix(SIGNATURE_OPEN)
            .ok_or_else(|| malformed("does not start with \u{2014} and a space"))?;
        let (name, blob) = rest
            .split_once(' ')
            .ok_or_else(|| malformed("no space between key name and signature"))?;
        if !valid_key_name(name) {
            return Err(malformed("invalid key name"));
        }
        let blob = BASE64.decode(blob).map_err(|_| malformed("not base64"))?;
        if blob.len() < 5 {
            return Err(malformed("shorter than a key id and a signature"));
        }
        let (id, bytes) = blob.split_at(4);
        Ok(Self {
            name: name.to_owned(),
            id: u32::from_be_bytes([id[0], id[1], id[2], id[3]]),
            bytes: bytes.to_vec(),
        })
    }
}

/// A [`Checkpoint`] with its note text and signature lines, as a witness holds it.
///
/// # Example: a note read back and checked
/// ```
/// use recording_status::audit::{Checkpoint, CheckpointSigner, SignedCheckpoint};
///
/// let signer = CheckpointSigner::new("bot-1", [3; 32])?;
/// let note = Checkpoint::new("example.com/bot-1/audit", 7, [2; 32], chrono::Utc::now())?
///     .sign(&signer)
///     .to_note();
/// let read = SignedCheckpoint::parse(&note)?;
/// assert_eq!(read.verify(&signer.verifier_key())?.seq(), 7);
/// assert_eq!(read.to_note(), note);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SignedCheckpoint {
    checkpoint: Checkpoint,
    /// The signed text, exactly as signed or read.
    text: String,
    signatures: Vec<NoteSignature>,
}

impl SignedCheckpoint {
    /// The checkpoint, **not yet verified**: [`verify`](Self::verify) it under the auditor's
    /// key before trusting it.
    pub fn checkpoint(&self) -> &Checkpoint {
        &self.checkpoint
    }

    /// The whole note: text, blank line, signature lines (each ended by a newline).
    pub fn to_note(&self) -> String {
        let mut note = self.text.clone();
        note.push('\n');
        for signature in &self.signatures {
            note.push_str(&signature.line());
        }
        note
    }

    /// The keys that signed the note, as `name+hex id` (whether their signatures verify or
    /// not).
    ///
    /// # Example
    /// ```
    /// use recording_status::audit::{Checkpoint, CheckpointSigner};
    ///
    /// let signer = CheckpointSigner::new("bot-1", [3; 32])?;
    /// let signed = Checkpoint::new("t", 0, [0; 32], chrono::Utc::now())?.sign(&signer);
    /// let key = signer.verifier_key();
    /// assert_eq!(signed.signers(), [format!("bot-1+{:08x}", key.id())]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn signers(&self) -> Vec<String> {
        self.signatures
            .iter()
            .map(|s| format!("{}+{:08x}", s.name, s.id))
            .collect()
    }

    /// Reads a note: text (a checkpoint body), a blank line, then one or more signature
    /// lines, each ended by a newline. Signatures are not checked here.
    ///
    /// # Errors
    /// [`CheckpointError::Malformed`], saying what is wrong.
    ///
    /// # Example
    /// ```
    /// use recording_status::audit::{CheckpointError, SignedCheckpoint};
    ///
    /// let unsigned = "example.com/bot-1/audit\n1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\ntime 2025-01-01T00:00:00Z\n\n";
    /// assert!(matches!(SignedCheckpoint::parse(unsigned), Err(CheckpointError::Malformed { .. })));
    /// ```
    pub fn parse(note: &str) -> Result<Self, CheckpointError> {
        let malformed = |reason: &str| CheckpointError::Malformed {
            reason: reason.to_owned(),
        };
        let split = note
            .find("\n\n")
            .ok_or_else(|| malformed("no blank line before the signatures"))?;
        let (text, signatures) = (&note[..=split], &note[split + 2..]);
        let checkpoint = Checkpoint::parse_text(text)?;
        let signatures = signatures
            .strip_suffix('\n')
            .ok_or_else(|| malformed("no signature line, or the last one lacks its newline"))?;
        let signatures = signatures
            .split('\n')
            .map(NoteSignature::parse)
            .collect::<Result<Vec<_>, _>>()?;
        if signatures.len() > MAX_SIGNATURES {
            return Err(malformed("more than 100 signature lines"));
        }
        Ok(Self {
            checkpoint,
            text: text.to_owned(),
            signatures,
        })
    }

    /// Checks the note's signature by `key` (the line with its name and id) and returns the
    /// checkpoint. Lines by other keys are ignored.
    ///
    /// # Errors
    /// [`CheckpointError::NotSignedByKey`] when no line is by `key` (another key signed it);
    /// [`CheckpointError::BadSignature`] when the line by `key` does not verify.
    ///
    /// # Example: a checkpoint signed by another key
    /// ```
    /// use recording_status::audit::{Checkpoint, CheckpointError, CheckpointSigner};
    ///
    /// let ours = CheckpointSigner::new("bot-1", [1; 32])?;
    /// let theirs = CheckpointSigner::new("bot-1", [2; 32])?;
    /// let signed = Checkpoint::new("t", 1, [0; 32], chrono::Utc::now())?.sign(&theirs);
    /// assert!(matches!(
    ///     signed.verify(&ours.verifier_key()),
    ///     Err(CheckpointError::NotSignedByKey { .. })
    /// ));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn verify(&self, key: &VerifierKey) -> Result<&Checkpoint, CheckpointError> {
        let line = self
            .signatures
            .iter()
            .find(|s| s.name == key.name && s.id == key.id)
            .ok_or_else(|| CheckpointError::NotSignedByKey {
                key: key.label(),
                signers: self.signers().join(", "),
            })?;
        let bad = || CheckpointError::BadSignature { key: key.label() };
        let bytes: [u8; 64] = line.bytes.as_slice().try_into().map_err(|_| bad())?;
        let signature = ed25519_dalek::Signature::from_bytes(&bytes);
        key.key
            .verify_strict(self.text.as_bytes(), &signature)
            .map_err(|_| bad())?;
        Ok(&self.checkpoint)
    }
}

/// The private half of a checkpoint key: signs checkpoints under a key name.
///
/// Made from a 32-byte Ed25519 seed the bot keeps secret (a secret store, not the trail's
/// disk); its [`verifier_key`](Self::verifier_key) goes to the auditor. `Debug` shows the
/// name and key id, never the seed; the seed is wiped from memory when the signer drops.
///
/// # Example
/// ```
/// use recording_status::audit::CheckpointSigner;
///
/// let seed = [42u8; 32]; // from the bot's secret store
/// let signer = CheckpointSigner::new("bot-1", seed)?;
/// let public = signer.verifier_key().to_string(); // give this line to the auditor
/// assert!(public.starts_with("bot-1+"));
/// assert!(!format!("{signer:?}").contains("42"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct CheckpointSigner {
    name: String,
    id: u32,
    key: SigningKey,
}

impl fmt::Debug for CheckpointSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CheckpointSigner")
            .field("name", &self.name)
            .field("id", &format_args!("{:08x}", self.id))
            .field("seed", &"[redacted]")
            .finish()
    }
}

impl CheckpointSigner {
    /// A signer named `name` (the key name in signature lines) from a 32-byte Ed25519 seed.
    ///
    /// # Errors
    /// [`CheckpointError::InvalidKeyName`] when `name` is empty or holds a space or a `+`.
    ///
    /// # Example
    /// ```
    /// use recording_status::audit::{CheckpointError, CheckpointSigner};
    ///
    /// assert!(CheckpointSigner::new("bot-1", [0; 32]).is_ok());
    /// assert!(matches!(CheckpointSigner::new("bot 1", [0; 32]), Err(CheckpointError::InvalidKeyName)));
    /// ```
    pub fn new(name: impl Into<String>, seed: [u8; 32]) -> Result<Self, CheckpointError> {
        let name = name.into();
        if !valid_key_name(&name) {
            return Err(CheckpointError::InvalidKeyName);
        }
        let key = SigningKey::from_bytes(&seed);
        let id = key_id(&name, &key.verifying_key());
        Ok(Self { name, id, key })
    }

    /// The key name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The public half, for the auditor.
    ///
    /// # Example
    /// ```
    /// use recording_status::audit::{CheckpointSigner, VerifierKey};
    ///
    /// let signer = CheckpointSigner::new("bot-1", [5; 32])?;
    /// let text = signer.verifier_key().to_string();
    /// assert_eq!(text.parse::<VerifierKey>()?, signer.verifier_key());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn verifier_key(&self) -> VerifierKey {
        VerifierKey {
            name: self.name.clone(),
            id: self.id,
            key: self.key.verifying_key(),
        }
    }
}

/// The public half of a checkpoint key, as the auditor holds it: the note verifier key text
/// `<name>+<8 hex digits of key id>+<base64(0x01 ‖ 32-byte Ed25519 public key)>`, parsed with
/// [`FromStr`] and printed with [`Display`](fmt::Display).
///
/// # Example
/// ```
/// use recording_status::audit::VerifierKey;
///
/// let text = "bot-1+16732a50+ARl/ayPhbIUyxqvIOPrNXqeJvgx2spIDNAOb+os9No1h";
/// let key: VerifierKey = text.parse()?;
/// assert_eq!((key.name(), key.id()), ("bot-1", 0x16732a50));
/// assert_eq!(key.to_string(), text);
/// // The key id must be the name's and key's.
/// assert!("bot-1+00000000+ARl/ayPhbIUyxqvIOPrNXqeJvgx2spIDNAOb+os9No1h".parse::<VerifierKey>().is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifierKey {
    name: String,
    id: u32,
    key: VerifyingKey,
}

impl VerifierKey {
    /// The key name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key id: the first 4 bytes of `SHA-256(name ‖ '\n' ‖ 0x01 ‖ public key)`.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// `name+hex id`, as errors and reports name the key.
    fn label(&self) -> String {
        format!("{}+{:08x}", self.name, self.id)
    }
}

impl fmt::Display for VerifierKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut blob = vec![ED25519];
        blob.extend_from_slice(self.key.as_bytes());
        write!(f, "{}+{:08x}+{}", self.name, self.id, BASE64.encode(blob))
    }
}

impl FromStr for VerifierKey {
    type Err = CheckpointError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let invalid = |reason: &str| CheckpointError::InvalidVerifierKey {
            reason: reason.to_owned(),
        };
        let text = text.trim();
        let mut parts = text.splitn(3, '+');
        let (Some(name), Some(id), Some(blob)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(invalid("expected name+id+key"));
        };
        if !valid_key_name(name) {
            return Err(invalid("invalid key name"));
        }
        if id.len() != 8 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(invalid("the key id is not 8 hex digits"));
        }
        let id = u32::from_str_radix(id, 16).map_err(|_| invalid("bad key id"))?;
        let blob = BASE64
            .decode(blob)
            .map_err(|_| invalid("the key is not base64"))?;
        let Some((&ED25519, key)) = blob.split_first() else {
            return Err(invalid("not an Ed25519 key (algorithm byte 0x01)"));
        };
        let key: [u8; 32] = key
            .try_into()
            .map_err(|_| invalid("an Ed25519 key is 32 bytes"))?;
        let key = VerifyingKey::from_bytes(&key).map_err(|_| invalid("not a curve point"))?;
        if key_id(name, &key) != id {
            return Err(invalid("the key id does not match the name and key"));
        }
        Ok(Self {
            name: name.to_owned(),
            id,
            key,
        })
    }
}

/// Where a sink hands each checkpoint it signs: somewhere the operator does not control,
/// whence the auditor collects them.
///
/// The sink calls [`witness`](Self::witness) synchronously, after the lines the checkpoint
/// covers are durable and outside its write locks, from whichever caller's commit made the
/// checkpoint due (or from [`AuditSink::sync`](super::AuditSink::sync) and
/// [`JsonLinesSink::checkpoint`](super::JsonLinesSink::checkpoint)): it must not block for
/// long. Hand slow work (a network round trip) to a task, as [`HttpWitness`] does.
///
/// # Example: a witness that keeps the notes in memory
/// ```
/// use std::sync::Mutex;
/// use recording_status::audit::{SignedCheckpoint, Witness};
/// use recording_status::error::AuditError;
///
/// #[derive(Debug, Default)]
/// struct Notes(Mutex<Vec<String>>);
///
/// impl Witness for Notes {
///     fn witness(&self, checkpoint: &SignedCheckpoint) -> Result<(), AuditError> {
///         self.0.lock().unwrap().push(checkpoint.to_note());
///         Ok(())
///     }
/// }
/// ```
pub trait Witness: Send + Sync + fmt::Debug {
    /// Takes one signed checkpoint, quickly.
    ///
    /// # Errors
    /// The checkpoint could not be handed over. The sink logs it and counts it
    /// ([`CheckpointStatus`]); the events it covers stay recorded.
    fn witness(&self, checkpoint: &SignedCheckpoint) -> Result<(), AuditError>;
}

impl<T: Witness + ?Sized> Witness for Arc<T> {
    fn witness(&self, checkpoint: &SignedCheckpoint) -> Result<(), AuditError> {
        (**self).witness(checkpoint)
    }
}

/// How a [`JsonLinesSink`](super::JsonLinesSink) emits checkpoints: the trail's origin, the
/// signer, the witness, and how often. Given to
/// [`JsonLinesOptions::checkpoints`](super::JsonLinesOptions::checkpoints).
///
/// A checkpoint is due once `every_events` lines (1,000 unless set) were written since the
/// last one, or once `every` (60 s unless set) has passed since it and a line was written.
/// The sink checks this after each write it commits: there is no timer thread, so a trail
/// that stays idle gets its next checkpoint with its next write, or at
/// [`AuditSink::sync`](super::AuditSink::sync) (which the driver calls at shutdown), or when
/// the bot calls [`JsonLinesSink::checkpoint`](super::JsonLinesSink::checkpoint).
///
/// # Example
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use recording_status::audit::{CheckpointOptions, CheckpointSigner, FileWitness, JsonLinesSink};
///
/// let dir = tempfile::tempdir()?;
/// let witness = FileWitness::open(dir.path().join("checkpoints.txt"))?;
/// let signer = CheckpointSigner::new("bot-1", [7; 32])?;
/// let sink = JsonLinesSink::options()
///     .checkpoints(
///         CheckpointOptions::new("example.com/bot-1/audit", signer, Arc::new(witness))?
///             .every_events(500)
///             .every(Duration::from_secs(30)),
///     )
///     .open(dir.path().join("audit.jsonl"))?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct CheckpointOptions {
    pub(crate) origin: String,
    pub(crate) signer: CheckpointSigner,
    pub(crate) witness: Arc<dyn Witness>,
    pub(crate) every_events: u64,
    pub(crate) every: Duration,
}

impl CheckpointOptions {
    /// Checkpoints of the trail named `origin`, signed by `signer`, handed to `witness`.
    ///
    /// # Errors
    /// [`CheckpointError::InvalidOrigin`].
    ///
    /// # Example
    /// ```
    /// use std::sync::Arc;
    /// use recording_status::audit::{CheckpointOptions, CheckpointSigner, FileWitness};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let witness = Arc::new(FileWitness::open(dir.path().join("checkpoints.txt"))?);
    /// let signer = CheckpointSigner::new("bot-1", [7; 32])?;
    /// assert!(CheckpointOptions::new("", signer, witness).is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new(
        origin: impl Into<String>,
        signer: CheckpointSigner,
        witness: Arc<dyn Witness>,
    ) -> Result<Self, CheckpointError> {
        let origin = origin.into();
        check_origin(&origin)?;
        Ok(Self {
            origin,
            signer,
            witness,
            every_events: 1000,
            every: Duration::from_secs(60),
        })
    }

    /// A checkpoint once this many lines were written since the last one (at least 1).
    #[must_use]
    pub fn every_events(mut self, events: u64) -> Self {
        self.every_events = events.max(1);
        self
    }

    /// A checkpoint once this much time has passed since the last one and a line was
    /// written since (checked when lines are written).
    #[must_use]
    pub fn every(mut self, every: Duration) -> Self {
        self.every = every;
        self
    }
}

/// What a sink's checkpoints have come to: from
/// [`JsonLinesSink::checkpoint_status`](super::JsonLinesSink::checkpoint_status).
///
/// A witness that fails does not fail the events (they are recorded already): each failure is
/// logged (`tracing::error!`) and counted here, with the last one's message.
///
/// # Example
/// ```
/// use std::sync::Arc;
/// use recording_status::audit::{
///     AuditEvent, AuditKind, AuditSink, CheckpointOptions, CheckpointSigner, FileWitness,
///     JsonLinesSink,
/// };
///
/// let dir = tempfile::tempdir()?;
/// let witness = Arc::new(FileWitness::open(dir.path().join("checkpoints.txt"))?);
/// let signer = CheckpointSigner::new("bot-1", [7; 32])?;
/// let sink = JsonLinesSink::options()
///     .checkpoints(CheckpointOptions::new("example.com/bot-1/audit", signer, witness)?.every_events(2))
///     .open(dir.path().join("audit.jsonl"))?;
/// for capability in 1..=4 {
///     sink.record(&AuditEvent::now("c1", AuditKind::RetentionEnded { capability }))?;
/// }
/// let status = sink.checkpoint_status().ok_or("checkpoints are on")?;
/// assert_eq!((status.witnessed, status.last_seq, status.failures), (2, Some(4), 0));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CheckpointStatus {
    /// Checkpoints the witness took.
    pub witnessed: u64,
    /// The `seq` of the last checkpoint the witness took.
    pub last_seq: Option<u64>,
    /// Checkpoints the witness refused (or that could not be made: the trail's sync failed).
    pub failures: u64,
    /// The last failure, in words.
    pub last_error: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at() -> DateTime<Utc> {
        "2025-06-02T09:00:00.123Z".parse().unwrap()
    }

    #[test]
    fn a_note_round_trips_and_verifies() {
        let signer = CheckpointSigner::new("bot-1", [1; 32]).unwrap();
        let checkpoint = Checkpoint::new("example.com/bot-1/audit", 42, [9; 32], at()).unwrap();
        let note = checkpoint.sign(&signer).to_note();
        let text = checkpoint.text();
        assert!(note.starts_with(&format!("{text}\n\u{2014} bot-1 ")));
        assert!(note.ends_with('\n') && !note.ends_with("\n\n"));
        let read = SignedCheckpoint::parse(&note).unwrap();
        assert_eq!(read.verify(&signer.verifier_key()).unwrap(), &checkpoint);
        assert_eq!(read.to_note(), note);
    }

    #[test]
    fn the_key_id_is_the_signed_note_one() {
        // SHA-256("bot-1" ‖ 0x0A ‖ 0x01 ‖ key), computed independently of `key_id`.
        let signer = CheckpointSigner::new("bot-1", [1; 32]).unwrap();
        let key = signer.verifier_key();
        let mut input = b"bot-1\n\x01".to_vec();
        input.extend_from_slice(key.key.as_bytes());
        let digest = Sha256::digest(&input);
        assert_eq!(key.id().to_be_bytes(), digest[..4]);
        let text = key.to_string();
        let blob = BASE64.decode(text.rsplit('+').next().unwrap()).unwrap();
        assert_eq!(blob[0], 0x01);
        assert_eq!(&blob[1..], key.key.as_bytes());
    }

    #[test]
    fn an_altered_text_or_a_foreign_key_does_not_verify() {
        let signer = CheckpointSigner::new("bot-1", [1; 32]).unwrap();
        let note = Checkpoint::new("o", 5, [9; 32], at())
            .unwrap()
            .sign(&signer)
            .to_note();
        let altered = SignedCheckpoint::parse(&note.replacen("\n5\n", "\n6\n", 1)).unwrap();
        assert!(matches!(
            altered.verify(&signer.verifier_key()),
            Err(CheckpointError::BadSignature { .. })
        ));
        let other = CheckpointSigner::new("bot-2", [1; 32]).unwrap();
        let read = SignedCheckpoint::parse(&note).unwrap();
        let err = read.verify(&other.verifier_key()).unwrap_err();
        assert!(err.to_string().contains("bot-1+"), "{err}");
    }

    #[test]
    fn a_cosignature_by_an_unknown_key_is_ignored() {
        let signer = CheckpointSigner::new("bot-1", [1; 32]).unwrap();
        let mut note = Checkpoint::new("o", 5, [9; 32], at())
            .unwrap()
            .sign(&signer)
            .to_note();
        note.push_str(&format!(
            "\u{2014} witness.example {}\n",
            BASE64.encode([1u8; 72])
        ));
        let read = SignedCheckpoint::parse(&note).unwrap();
        assert_eq!(read.signers().len(), 2);
        read.verify(&signer.verifier_key()).unwrap();
    }

    #[test]
    fn malformed_notes_are_refused() {
        let signer = CheckpointSigner::new("bot-1", [1; 32]).unwrap();
        let good = Checkpoint::new("o", 5, [9; 32], at())
            .unwrap()
            .sign(&signer)
            .to_note();
        SignedCheckpoint::parse(&good).unwrap();
        let time = "time 2025-06-02T09:00:00.123Z";
        for bad in [
            good.replacen("\n5\n", "\n05\n", 1),
            good.replacen("\n5\n", "\n-5\n", 1),
            good.replacen("\n5\n", "\n\n", 1),
            good.replacen(time, "time yesterday", 1),
            good.replacen(time, "note", 1),
            good.replacen(time, &format!("{time}\n{time}"), 1),
            good.replacen("o\n", "\n", 1),
            good.replacen("\u{2014}", "-", 1),
            good.trim_end().to_owned(),
            good.split("\n\n").next().unwrap().to_owned() + "\n\n",
            good.replacen("o\n", "o\u{7}\n", 1),
            good.replacen("CQkJ", "CQk", 1),
        ] {
            assert!(
                matches!(
                    SignedCheckpoint::parse(&bad),
                    Err(CheckpointError::Malformed { .. })
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn names_origins_and_keys_are_checked() {
        for bad in ["", "a b", "a+b", "a\u{a0}b"] {
            assert!(CheckpointSigner::new(bad, [0; 32]).is_err(), "{bad:?}");
        }
        assert!(Checkpoint::new("x".repeat(256), 0, [0; 32], at()).is_err());
        assert!(Checkpoint::new("x".repeat(255), 0, [0; 32], at()).is_ok());
        let good = CheckpointSigner::new("k", [3; 32])
            .unwrap()
            .verifier_key()
            .to_string();
        assert_eq!(
            good.parse::<VerifierKey>().unwrap().to_string(),
            good,
            "round trip"
        );
        for bad in [
            good.replacen("k+", "j+", 1),
            good.replacen('+', "+0", 1),
            good.rsplit_once('+').unwrap().0.to_owned(),
            format!("{}+AgAA", good.rsplit_once('+').unwrap().0),
        ] {
            assert!(bad.parse::<VerifierKey>().is_err(), "{bad}");
        }
    }

    /// The example note and key of `Checkpoint`'s docs, from the seed and head they say.
    #[test]
    fn the_documented_example_is_what_the_signer_writes() {
        let docs = include_str!("mod.rs")
            .replace("\n/// ", "\n//! ")
            .replace("\n///\n", "\n//!\n");
        let block = |after: &str| -> String {
            let start = docs.find(after).unwrap();
            let open = start + docs[start..].find("//! ```text\n").unwrap() + 12;
            let close = open + docs[open..].find("//! ```\n").unwrap();
            docs[open..close]
                .lines()
                .map(|l| l.strip_prefix("//!").unwrap().trim_start_matches(' '))
                .map(|l| format!("{l}\n"))
                .collect()
        };
        let note = block("# The format");
        let key = block("and the auditor's public key");
        let signer = CheckpointSigner::new("bot-1", [42; 32]).unwrap();
        let head: [u8; 32] = Sha256::digest(b"example").into();
        let checkpoint = Checkpoint::new(
            "example.com/bot-1/audit",
            42,
            head,
            "2025-06-02T09:00:00.123Z".parse().unwrap(),
        )
        .unwrap();
        assert_eq!(checkpoint.sign(&signer).to_note(), note);
        assert_eq!(format!("{}\n", signer.verifier_key()), key);
    }

    #[test]
    fn the_seed_never_shows_in_debug() {
        let signer = CheckpointSigner::new("bot-1", [0xab; 32]).unwrap();
        let debug = format!("{signer:?}");
        assert!(debug.contains("redacted") && !debug.to_lowercase().contains("abab"));
        assert!(!debug.contains("171"), "{debug}");
    }
}
