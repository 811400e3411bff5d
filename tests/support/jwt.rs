//! Bearer tokens for the webhook, as Bot Framework signs them (or as an attacker forges them),
//! with the test keys of `tests/data/`.

use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};

/// The bot's app id: the audience of the tokens its webhook accepts.
pub(crate) const APP_ID: &str = "8d5bd6c2-0000-4000-8000-000000000001";
/// The private key the issuer signs with; its public half is [`JWKS`] under [`KID`].
pub(crate) const KEY_PEM: &str = include_str!("../data/webhook_test_key.pem");
/// A key the issuer never published.
pub(crate) const ATTACKER_PEM: &str = include_str!("../data/webhook_attacker_key.pem");
/// The issuer's key set: [`KEY_PEM`]'s public half under [`KID`].
pub(crate) const JWKS: &str = include_str!("../data/webhook_test_jwks.json");
/// The `kid` of the key in [`JWKS`].
pub(crate) const KID: &str = "test-key-1";

/// `Bearer <jwt>`: Bot Framework's claims for audience `aud`, valid for ten minutes from now,
/// signed RS256 with `key_pem` under `kid`.
pub(crate) fn bearer(key_pem: &str, kid: &str, aud: &str) -> String {
    let now = chrono::Utc::now().timestamp();
    let claims = serde_json::json!({
        "iss": "https://api.botframework.com", "aud": aud,
        "exp": now + 600, "nbf": now - 10, "tid": "tenant-1",
    });
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(kid.into());
    let key = EncodingKey::from_rsa_pem(key_pem.as_bytes()).unwrap();
    format!("Bearer {}", encode(&header, &claims, &key).unwrap())
}

/// `Bearer <jwt>` naming `kid`, well-formed but signed by nobody, as an attacker floods a
/// webhook with: it is refused at the `kid`, before any signature check.
pub(crate) fn unsigned_bearer(kid: &str) -> String {
    let header = serde_json::json!({ "alg": "RS256", "typ": "JWT", "kid": kid }).to_string();
    let claims = serde_json::json!({
        "iss": "https://api.botframework.com", "aud": APP_ID, "exp": 4_000_000_000_i64,
    })
    .to_string();
    format!(
        "Bearer {}.{}.c2lnbmF0dXJl",
        base64url(header.as_bytes()),
        base64url(claims.as_bytes())
    )
}

/// Base64url without padding, as JWTs are encoded.
fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().fold(0u32, |n, b| (n << 8) | u32::from(*b)) << (8 * (3 - chunk.len()));
        for i in 0..=chunk.len() {
            out.push(char::from(ALPHABET[(n >> (18 - 6 * i)) as usize & 63]));
        }
    }
    out
}
