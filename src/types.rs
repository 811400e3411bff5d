//! Parsed domain values: [`CallId`], [`ClientContext`] and [`AccessToken`].
//!
//! Each type is parsed once, at the edge, and cannot hold an invalid value afterwards
//! ("parse, don't validate"). Their constructors are the only place the rules live.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// [`CallId::MAX_LEN`].
pub(crate) const MAX_CALL_ID_LEN: usize = 256;

/// [`ClientContext::MAX_LEN`].
pub(crate) const MAX_CLIENT_CONTEXT_LEN: usize = 256;

/// A string that is not a valid Graph call id. See [`CallId`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum InvalidCallId {
    /// The id is empty. Pass the id Graph gave in the incoming-call notification.
    #[error("call id is empty")]
    Empty,
    /// The id is longer than [`CallId::MAX_LEN`](CallId::MAX_LEN) bytes; it did
    /// not come from Graph.
    #[error("call id is {len} bytes long, more than the 256 allowed")]
    TooLong {
        /// The length in bytes.
        len: usize,
    },
    /// The id holds a character that could change the URL's path, query or fragment, or a
    /// whitespace or control character; it did not come from Graph.
    #[error("call id contains the forbidden character {ch:?}")]
    ForbiddenChar {
        /// The first forbidden character.
        ch: char,
    },
    /// The id is `.` or contains `..`, a path-traversal attempt.
    #[error("call id contains a dot segment")]
    DotSegment,
}

/// A string that is not a valid `clientContext`. See [`ClientContext`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum InvalidClientContext {
    /// The context is empty; use [`ClientContext::fresh`](ClientContext::fresh).
    #[error("client context is empty")]
    Empty,
    /// The context is longer than Graph's limit of 256 characters; shorten it.
    #[error("client context is {len} characters long, more than the 256 allowed")]
    TooLong {
        /// The length in characters.
        len: usize,
    },
    /// The context holds a character outside printable ASCII; Graph declares the field
    /// non-Unicode. Encode it (e.g. hex or base64) first.
    #[error("client context character {index} ({ch:?}) is not printable ascii")]
    NotPrintableAscii {
        /// The character's position, counted in characters.
        index: usize,
        /// The character.
        ch: char,
    },
}

/// The id of a Graph call, as given in `/communications/calls/{id}`.
///
/// Accepted: GUIDs (`57dab8b1-894c-409a-b240-bd8beae78896`), dash-less 32-hex ids
/// (`57DAB8B1894C409AB240BD8BEAE78896`) and other opaque ids. Rejected: the empty string, ids
/// longer than [`CallId::MAX_LEN`] bytes, and ids containing `/`, `?`, `#`, `%`, `..`,
/// whitespace or control characters, so that an id always becomes exactly one URL path segment.
///
/// # Example
/// ```
/// use recording_status::CallId;
///
/// let id: CallId = "57dab8b1-894c-409a-b240-bd8beae78896".parse()?;
/// assert_eq!(id.normalized(), "57dab8b1894c409ab240bd8beae78896");
/// assert!("../admin".parse::<CallId>().is_err());
///
/// // One call, one identity: Graph's notification spelling is equal, and hashes the same.
/// let notified: CallId = "57DAB8B1894C409AB240BD8BEAE78896".parse()?;
/// assert_eq!(id, notified);
/// assert_eq!(notified.as_str(), "57DAB8B1894C409AB240BD8BEAE78896"); // sent as given
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Identity
/// Equality, hashing and the audit trail use [`normalized`](Self::normalized) (lower case, no
/// dashes), the form in which Graph's spellings of one call agree; requests use the id exactly
/// as given ([`as_str`](Self::as_str)).
///
/// # Cost
/// Cloning is a reference-count increment: the id and its normalised form share one
/// allocation, so the registry and the driver's hub hold the id without copying it.
#[derive(Clone)]
pub struct CallId {
    /// The id as given, followed by its normalised form unless the two are equal.
    text: Arc<str>,
    /// `text[..raw_end]` is the id as given (at most [`CallId::MAX_LEN`] bytes).
    raw_end: u16,
    /// `text[normalized_start..]` is the normalised id.
    normalized_start: u16,
    /// Every byte of the id is unreserved, so it is its own path segment.
    plain_segment: bool,
}

impl PartialEq for CallId {
    fn eq(&self, other: &Self) -> bool {
        self.normalized() == other.normalized()
    }
}

impl Eq for CallId {}

impl std::hash::Hash for CallId {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.normalized().hash(state);
    }
}

impl Serialize for CallId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl CallId {
    /// The longest call id accepted, in bytes. Graph call ids are GUIDs (36 bytes); the limit
    /// only keeps hostile input from growing URLs and audit lines without bound.
    pub const MAX_LEN: usize = MAX_CALL_ID_LEN;

    /// Parses a call id.
    ///
    /// # Errors
    /// [`InvalidCallId`] says which rule the input broke; the input itself is not echoed in full.
    pub fn new(id: impl Into<String>) -> Result<Self, InvalidCallId> {
        let id = id.into();
        if id.is_empty() {
            return Err(InvalidCallId::Empty);
        }
        if id.len() > MAX_CALL_ID_LEN {
            return Err(InvalidCallId::TooLong { len: id.len() });
        }
        let forbidden = |c: char| {
            matches!(c, '/' | '?' | '#' | '%' | '\\') || c.is_whitespace() || c.is_control()
        };
        // Graph's ids are ASCII: one pass over the bytes then, the first forbidden byte being
        // the first forbidden character.
        let first_forbidden = if id.is_ascii() {
            id.bytes().map(char::from).find(|c| forbidden(*c))
        } else {
            id.chars().find(|c| forbidden(*c))
        };
        if let Some(ch) = first_forbidden {
            return Err(InvalidCallId::ForbiddenChar { ch });
        }
        if id.contains("..") || id == "." {
            return Err(InvalidCallId::DotSegment);
        }
        // Normalising works byte by byte: `-` never occurs inside a multi-byte character, and
        // ASCII lower-casing leaves the bytes of other characters alone.
        let (mut normalized_len, mut upper, mut plain_segment) = (0, false, true);
        for b in id.bytes() {
            normalized_len += usize::from(b != b'-');
            upper |= b.is_ascii_uppercase();
            plain_segment &= is_unreserved(b);
        }
        if normalized_len == 0 {
            return Err(InvalidCallId::Empty);
        }
        // Both lengths are at most `MAX_CALL_ID_LEN`, so they fit.
        let raw_end =
            u16::try_from(id.len()).map_err(|_| InvalidCallId::TooLong { len: id.len() })?;
        if normalized_len == id.len() && !upper {
            return Ok(Self {
                text: Arc::from(id),
                raw_end,
                normalized_start: 0,
                plain_segment,
            });
        }
        let mut text = String::with_capacity(id.len() + normalized_len);
        text.push_str(&id);
        id.split('-').for_each(|part| text.push_str(part));
        text[id.len()..].make_ascii_lowercase();
        Ok(Self {
            text: Arc::from(text),
            raw_end,
            normalized_start: raw_end,
            plain_segment,
        })
    }

    /// The id exactly as given, as it is sent in request URLs.
    pub fn as_str(&self) -> &str {
        &self.text[..usize::from(self.raw_end)]
    }

    /// The id's identity: lower case, without dashes. Graph answers `57dab8b1-894c-…` but
    /// notifies `57DAB8B1894C…` for the same call; both normalise to `57dab8b1894c…`. The audit
    /// trail writes this form.
    pub fn normalized(&self) -> &str {
        &self.text[usize::from(self.normalized_start)..]
    }

    /// The id as one percent-encoded URL path segment (RFC 3986 unreserved characters are kept,
    /// every other byte is `%XX`).
    pub fn path_segment(&self) -> String {
        let mut out = String::with_capacity(self.path_segment_len());
        self.push_path_segment(&mut out);
        out
    }

    /// The length of [`path_segment`](Self::path_segment), in bytes.
    pub(crate) fn path_segment_len(&self) -> usize {
        if self.plain_segment {
            return usize::from(self.raw_end);
        }
        self.as_str()
            .bytes()
            .map(|b| if is_unreserved(b) { 1 } else { 3 })
            .sum()
    }

    /// Appends [`path_segment`](Self::path_segment) to `out`.
    pub(crate) fn push_path_segment(&self, out: &mut String) {
        let raw = self.as_str();
        if self.plain_segment {
            out.push_str(raw);
            return;
        }
        const HEX: &[u8; 16] = b"0123456789ABCDEF";
        for &b in raw.as_bytes() {
            if is_unreserved(b) {
                out.push(char::from(b));
            } else {
                out.push('%');
                out.push(char::from(HEX[usize::from(b >> 4)]));
                out.push(char::from(HEX[usize::from(b & 0x0f)]));
            }
        }
    }
}

impl fmt::Debug for CallId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("CallId").field(&self.as_str()).finish()
    }
}

impl fmt::Display for CallId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for CallId {
    type Err = InvalidCallId;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

impl<'de> Deserialize<'de> for CallId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::new(s).map_err(serde::de::Error::custom)
    }
}

/// Lower-cases an id and removes its dashes, the form Graph ids are compared in.
pub(crate) fn normalize_id(id: &str) -> String {
    id.chars()
        .filter(|c| *c != '-')
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// RFC 3986 unreserved: kept as is in a path segment.
fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// A version-4 UUID from the operating system's random bytes, drawn [`RANDOM_POOL`] bytes at a
/// time into a per-thread pool; each byte is handed out once.
///
/// `uuid::Uuid::new_v4` makes one `getrandom` system call per id, and a status request needs
/// two (its `clientContext` and `client-request-id`): on loopback those calls were about 2 % of
/// a request. The pool makes one call per 16 ids. The bytes are the kernel's own, so the ids are
/// as unpredictable as before; only their uniqueness matters to Graph. A process that forks
/// copies the pool, so parent and child would hand out the same ids until they refill: the
/// crate's transports never fork.
pub(crate) fn random_uuid() -> uuid::Uuid {
    use std::cell::RefCell;

    thread_local! {
        static POOL: RefCell<([u8; RANDOM_POOL], usize)> =
            const { RefCell::new(([0; RANDOM_POOL], RANDOM_POOL)) };
    }
    let drawn = POOL.with(|pool| {
        let (bytes, used) = &mut *pool.borrow_mut();
        if *used == RANDOM_POOL {
            getrandom::fill(bytes).ok()?;
            *used = 0;
        }
        let mut id = [0u8; 16];
        id.copy_from_slice(&bytes[*used..*used + 16]);
        bytes[*used..*used + 16].fill(0);
        *used += 16;
        Some(id)
    });
    match drawn {
        Some(id) => uuid::Builder::from_random_bytes(id).into_uuid(),
        // The system refused random bytes: as `new_v4`, which reports it.
        None => uuid::Uuid::new_v4(),
    }
}

/// How many random bytes [`random_uuid`] draws from the system at a time (16 ids).
const RANDOM_POOL: usize = 256;

/// [`random_uuid`] as 36 lower-case characters, in one allocation of exactly that size.
pub(crate) fn random_uuid_string() -> String {
    let mut text = [0u8; uuid::fmt::Hyphenated::LENGTH];
    random_uuid()
        .hyphenated()
        .encode_lower(&mut text)
        .to_owned()
}

/// The `clientContext` sent with an update: printable ASCII, 1 to 256 characters.
///
/// Graph describes it as a "unique client context string" and declares it non-Unicode, so this
/// type accepts only printable ASCII (`' '..='~'`), where characters and bytes coincide.
/// [`ClientContext::fresh`] makes a new random one (a UUID, as the .NET SDK does); the crate
/// uses a fresh one for every request unless told otherwise.
///
/// # Example
/// ```
/// use recording_status::ClientContext;
///
/// let ctx = ClientContext::new("bot-7/call-42/attempt-1")?;
/// assert_eq!(ctx.as_str(), "bot-7/call-42/attempt-1");
/// assert!(ClientContext::new("").is_err());
/// assert!(ClientContext::new("é").is_err());
/// assert_ne!(ClientContext::fresh(), ClientContext::fresh());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct ClientContext(String);

impl ClientContext {
    /// The longest `clientContext` Graph accepts, in characters ("Max limit is 256 chars").
    pub const MAX_LEN: usize = MAX_CLIENT_CONTEXT_LEN;

    /// Parses a client context.
    ///
    /// # Errors
    /// [`InvalidClientContext`] if the input is empty, longer than 256 characters, or holds a
    /// character outside printable ASCII.
    pub fn new(context: impl Into<String>) -> Result<Self, InvalidClientContext> {
        let context = context.into();
        if context.is_empty() {
            return Err(InvalidClientContext::Empty);
        }
        let chars = context.chars().count();
        if chars > MAX_CLIENT_CONTEXT_LEN {
            return Err(InvalidClientContext::TooLong { len: chars });
        }
        if let Some((index, ch)) = context
            .chars()
            .enumerate()
            .find(|(_, c)| !(' '..='~').contains(c))
        {
            return Err(InvalidClientContext::NotPrintableAscii { index, ch });
        }
        Ok(Self(context))
    }

    /// A new random context (a version-4 UUID, 36 characters).
    pub fn fresh() -> Self {
        Self(random_uuid_string())
    }

    /// The context as sent on the wire.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ClientContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ClientContext").field(&self.0).finish()
    }
}

impl fmt::Display for ClientContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for ClientContext {
    type Err = InvalidClientContext;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

impl<'de> Deserialize<'de> for ClientContext {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::new(s).map_err(serde::de::Error::custom)
    }
}

/// A bearer token for Graph. Its `Debug` and `Display` print `[redacted]`; it has no `Serialize`
/// and no `PartialEq`, so it cannot leak into logs, errors or the audit trail by accident.
///
/// # Example
/// ```
/// use recording_status::AccessToken;
///
/// let token = AccessToken::new("eyJ0eXAi.secret.sig");
/// assert_eq!(format!("{token:?}"), "AccessToken([redacted])");
/// assert_eq!(token.to_string(), "[redacted]");
/// ```
#[derive(Clone)]
pub struct AccessToken(String);

impl AccessToken {
    /// Wraps a bearer token (without the `Bearer ` prefix).
    pub fn new(token: impl Into<String>) -> Self {
        Self(token.into())
    }

    /// The secret itself.
    ///
    /// # Security warning
    /// Whatever you do with the returned string may leak it; do not log it.
    pub fn secret(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AccessToken([redacted])")
    }
}

impl fmt::Display for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_graph_ids() {
        for id in [
            "57dab8b1-894c-409a-b240-bd8beae78896",
            "57DAB8B1894C409AB240BD8BEAE78896",
            "401f5d00-6a7e-4d35-8d6b-1f2f3e4d5c6b",
            "opaque_ID~1.2:x@y",
            "ünïcode",
        ] {
            assert!(CallId::new(id).is_ok(), "{id}");
        }
    }

    #[test]
    fn rejects_hostile_ids() {
        for (id, why) in [
            ("", "empty"),
            ("a/b", "slash"),
            ("a?b=1", "query"),
            ("a#b", "fragment"),
            ("a%2Fb", "percent"),
            ("..", "dots"),
            ("a..b", "dots"),
            (".", "dot"),
            ("a b", "space"),
            ("a\tb", "tab"),
            ("a\nb", "newline"),
            ("a\u{0}b", "nul"),
            ("a\u{7f}b", "del"),
            ("a\u{2028}b", "line separator"),
            ("a\\b", "backslash"),
        ] {
            assert!(CallId::new(id).is_err(), "{why}: {id:?}");
        }
        assert!(matches!(
            CallId::new("x".repeat(MAX_CALL_ID_LEN + 1)),
            Err(InvalidCallId::TooLong { .. })
        ));
    }

    #[test]
    fn path_segment_encodes_everything_but_unreserved() {
        let id = CallId::new("a:b@c~d.e_f-ü").unwrap();
        assert_eq!(id.path_segment(), "a%3Ab%40c~d.e_f-%C3%BC");
    }

    #[test]
    fn normalized_matches_notification_form() {
        let a = CallId::new("57dab8b1-894c-409a-b240-bd8beae78896").unwrap();
        let b = CallId::new("57DAB8B1894C409AB240BD8BEAE78896").unwrap();
        assert_eq!(a.normalized(), b.normalized());
    }

    #[test]
    fn client_context_bounds() {
        assert!(ClientContext::new("x".repeat(256)).is_ok());
        assert!(matches!(
            ClientContext::new("x".repeat(257)),
            Err(InvalidClientContext::TooLong { len: 257 })
        ));
        assert!(ClientContext::new("~ !").is_ok());
        assert!(matches!(
            ClientContext::new("ab\u{7f}"),
            Err(InvalidClientContext::NotPrintableAscii { index: 2, .. })
        ));
        assert!(ClientContext::new("line\n").is_err());
        assert!(ClientContext::new("日本").is_err());
        assert_eq!(ClientContext::fresh().as_str().len(), 36);
    }

    #[test]
    fn deserialize_validates() {
        assert!(serde_json::from_str::<CallId>("\"a/b\"").is_err());
        assert!(serde_json::from_str::<ClientContext>("\"\"").is_err());
        assert!(serde_json::from_str::<ClientContext>("\"ok\"").is_ok());
    }

    #[test]
    fn token_never_prints() {
        let t = AccessToken::new("super-secret");
        assert!(!format!("{t:?} {t} {t:#?}").contains("super-secret"));
    }

    #[test]
    fn pooled_uuids_are_v4_and_distinct_across_refills() {
        let mut seen = std::collections::HashSet::new();
        // Five pools' worth, so the pool is refilled several times.
        for _ in 0..5 * RANDOM_POOL / 16 {
            let id = random_uuid();
            assert_eq!(id.get_version(), Some(uuid::Version::Random));
            assert_eq!(id.get_variant(), uuid::Variant::RFC4122);
            assert!(seen.insert(id), "{id} drawn twice");
        }
        let text = random_uuid_string();
        assert_eq!(text.len(), 36);
        assert_eq!(text.parse::<uuid::Uuid>().unwrap().get_version_num(), 4);
        assert_eq!(text, text.to_ascii_lowercase());
    }

    #[test]
    fn both_spellings_survive_sharing_one_allocation() {
        for (raw, normalized) in [
            (
                "57DAB8B1-894C-409A-B240-BD8BEAE78896",
                "57dab8b1894c409ab240bd8beae78896",
            ),
            (
                "57dab8b1894c409ab240bd8beae78896",
                "57dab8b1894c409ab240bd8beae78896",
            ),
            ("a-b", "ab"),
        ] {
            let id = CallId::new(raw).unwrap();
            let clone = id.clone();
            assert_eq!((clone.as_str(), clone.normalized()), (raw, normalized));
            assert_eq!(clone.to_string(), raw);
            assert_eq!(format!("{clone:?}"), format!("CallId({raw:?})"));
            assert_eq!(serde_json::to_string(&clone).unwrap(), format!("\"{raw}\""));
            assert_eq!(clone.path_segment().len(), clone.path_segment_len());
        }
    }

    proptest::proptest! {
        #[test]
        fn spellings_and_segment_match_their_definitions(raw in "[a-zA-Z0-9:@~._ü\\-]{1,40}") {
            if let Ok(id) = CallId::new(raw.clone()) {
                proptest::prop_assert_eq!(id.as_str(), raw.as_str());
                proptest::prop_assert_eq!(id.normalized(), normalize_id(&raw));
                let mut segment = String::new();
                for b in raw.bytes() {
                    if is_unreserved(b) {
                        segment.push(char::from(b));
                    } else {
                        segment.push_str(&format!("%{b:02X}"));
                    }
                }
                proptest::prop_assert_eq!(id.path_segment_len(), segment.len());
                proptest::prop_assert_eq!(id.path_segment(), segment);
            }
        }
    }

    /// The rules as first written, over `char`s, to check the byte-wise fast path against.
    fn reference_rules(id: &str) -> Result<String, InvalidCallId> {
        if id.is_empty() {
            return Err(InvalidCallId::Empty);
        }
        if id.len() > MAX_CALL_ID_LEN {
            return Err(InvalidCallId::TooLong { len: id.len() });
        }
        if let Some(c) = id.chars().find(|c| {
            matches!(c, '/' | '?' | '#' | '%' | '\\') || c.is_whitespace() || c.is_control()
        }) {
            return Err(InvalidCallId::ForbiddenChar { ch: c });
        }
        if id.contains("..") || id == "." {
            return Err(InvalidCallId::DotSegment);
        }
        let normalized = normalize_id(id);
        if normalized.is_empty() {
            return Err(InvalidCallId::Empty);
        }
        Ok(normalized)
    }

    proptest::proptest! {
        #[test]
        fn parsing_follows_the_rules(raw in "[a-zA-Z0-9./?#%\\\\ \t\u{b}\u{7f}\u{85}\u{2028}ü-]{0,12}") {
            let ours = CallId::new(raw.clone()).map(|id| id.normalized().to_owned());
            proptest::prop_assert_eq!(format!("{ours:?}"), format!("{:?}", reference_rules(&raw)));
        }
    }
}
