//! Bot Framework's notification signing, emulated: RSA test keys, their JWKS, and tokens
//! minted for a bot's app id, so that a bot's own tests of JWT validation need no `openssl`;
//! and the key server, which publishes the OpenID configuration and the JWKS on loopback.
//!
//! The keys are published in this crate's source: **never trust them outside tests.**

use std::fmt;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use crate::webhook::BotFrameworkValidator;
use crate::webhook::StaticKeys;

use super::{Arc, Body, CONTENT_TYPE, Duration, HeaderValue, Response, Shared, State};

/// One of the emulator's RSA-2048 test signing keys. The emulator signs with
/// [`TestKey::FIRST`] until [`Emulator::rotate_signing_key`](super::Emulator::rotate_signing_key).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct TestKey {
    kid: &'static str,
    /// PKCS#1 DER of the private key.
    der: &'static [u8],
    /// The modulus, base64url.
    n: &'static str,
}

impl fmt::Debug for TestKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl TestKey {
    /// The key the emulator signs with first.
    pub const FIRST: Self = Self {
        kid: "emulator-signing-1",
        der: include_bytes!("keys/signing-1.der"),
        n: include_str!("keys/signing-1.n"),
    };
    /// The key a rotation moves to (and then back to [`FIRST`](Self::FIRST)).
    pub const SECOND: Self = Self {
        kid: "emulator-signing-2",
        der: include_bytes!("keys/signing-2.der"),
        n: include_str!("keys/signing-2.n"),
    };

    /// The other key: what a rotation moves to.
    pub fn next(self) -> Self {
        if self == Self::FIRST {
            Self::SECOND
        } else {
            Self::FIRST
        }
    }

    /// The key's `kid`.
    pub fn kid(&self) -> &'static str {
        self.kid
    }

    /// The public key as a JWK, as Bot Framework publishes its keys.
    pub fn jwk(&self) -> Value {
        json!({
            "kty": "RSA",
            "use": "sig",
            "kid": self.kid,
            "n": self.n.trim(),
            "e": "AQAB",
            "endorsements": ["msteams"],
        })
    }

    /// A JWKS document holding these keys.
    pub fn jwks(keys: &[Self]) -> String {
        json!({ "keys": keys.iter().map(Self::jwk).collect::<Vec<_>>() }).to_string()
    }

    /// [`StaticKeys`] holding this key, for a validator in a test.
    ///
    /// # Panics
    /// Never: the key is a valid RSA key (a unit test checks it).
    pub fn static_keys(&self) -> StaticKeys {
        StaticKeys::from_jwks_json(&Self::jwks(&[*self])).expect("the test key is a valid jwk")
    }

    /// The tenant id the emulator's tokens carry (`tid`).
    pub const TENANT_ID: &'static str = "00000000-0000-4000-8000-0000000e0a70";

    /// An `Authorization` header value (`Bearer eyJ…`) as Bot Framework sends with a calling
    /// notification: RS256, issuer `https://api.botframework.com`, audience `app_id`, tenant
    /// [`TENANT_ID`](Self::TENANT_ID), valid from a minute ago for an hour.
    ///
    /// # Example
    /// ```
    /// use recording_status::emulator::TestKey;
    /// use recording_status::webhook::BotFrameworkValidator;
    ///
    /// let validator = BotFrameworkValidator::new("my-app-id", TestKey::FIRST.static_keys());
    /// assert!(validator.validate(&TestKey::FIRST.mint("my-app-id")).is_ok());
    /// assert!(validator.validate(&TestKey::FIRST.mint("another-bot")).is_err());
    /// ```
    pub fn mint(&self, app_id: &str) -> String {
        self.mint_issued_by(BotFrameworkValidator::<StaticKeys>::ISSUER, app_id)
    }

    /// [`mint`](Self::mint) with another issuer: Graph signs calling notifications as
    /// `https://graph.microsoft.com` too ([`BotFrameworkValidator::ISSUERS`]).
    ///
    /// # Example
    /// ```
    /// use recording_status::emulator::TestKey;
    /// use recording_status::webhook::{BotFrameworkValidator, StaticKeys};
    ///
    /// let validator = BotFrameworkValidator::new("my-app-id", TestKey::FIRST.static_keys());
    /// let graph = BotFrameworkValidator::<StaticKeys>::GRAPH_ISSUER;
    /// let proof = validator.validate(&TestKey::FIRST.mint_issued_by(graph, "my-app-id"));
    /// assert_eq!(proof.unwrap().tenant(), Some(TestKey::TENANT_ID));
    /// ```
    pub fn mint_issued_by(&self, issuer: &str, app_id: &str) -> String {
        let now = chrono::Utc::now().timestamp();
        let claims = json!({
            "iss": issuer,
            "aud": app_id,
            "tid": Self::TENANT_ID,
            "nbf": now - 60,
            "exp": now + 3600,
            "serviceurl": "https://api.botframework.com/",
        });
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(self.kid.to_owned());
        let key = EncodingKey::from_rsa_der(self.der);
        match jsonwebtoken::encode(&header, &claims, &key) {
            Ok(token) => format!("Bearer {token}"),
            // Not reachable with these keys; a token nobody accepts is the safe failure.
            Err(_) => "Bearer unsigned".to_owned(),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The key server: the OpenID configuration and JWKS, and the signing state of notifications

/// Where the emulator serves its OpenID configuration (after `http://127.0.0.1:PORT`).
pub(super) const OPENID_PATH: &str = "/botframework/.well-known/openidconfiguration";
/// Where it serves its JWKS.
pub(super) const JWKS_PATH: &str = "/botframework/keys";
/// How long a minted notification token is reused (Bot Framework's live for an hour).
pub(super) const TOKEN_REUSE: Duration = Duration::from_secs(30 * 60);

/// Bot Framework's signing of notifications, emulated.
pub(super) struct Signing {
    /// Whose notifications are signed; `None`: none are.
    pub(super) app_id: Option<String>,
    pub(super) key: TestKey,
    pub(super) published: Vec<TestKey>,
    /// The token minted last for each issuer, reused for a while as Bot Framework does.
    pub(super) tokens: [Option<(String, tokio::time::Instant)>; 2],
    /// How many notifications were signed: they alternate between the two issuers.
    pub(super) signed: usize,
}

impl Signing {
    pub(super) fn new() -> Self {
        Self {
            app_id: None,
            key: TestKey::FIRST,
            published: vec![TestKey::FIRST],
            tokens: [None, None],
            signed: 0,
        }
    }

    /// Forgets the minted tokens (a new key, a new audience).
    pub(super) fn forget_tokens(&mut self) {
        self.tokens = [None, None];
    }

    /// The next notification's `Authorization`, signed alternately as Bot Framework and as
    /// Graph, the two issuers Microsoft's reference validator accepts.
    pub(super) fn authorization(&mut self) -> Option<String> {
        let app_id = self.app_id.as_deref()?;
        let which = self.signed % 2;
        self.signed = self.signed.wrapping_add(1);
        let fresh = self.tokens[which]
            .as_ref()
            .filter(|(_, minted)| minted.elapsed() < TOKEN_REUSE);
        if let Some((token, _)) = fresh {
            return Some(token.clone());
        }
        let issuer = BotFrameworkValidator::<StaticKeys>::ISSUERS[which];
        let token = self.key.mint_issued_by(issuer, app_id);
        self.tokens[which] = Some((token.clone(), tokio::time::Instant::now()));
        Some(token)
    }
}

pub(super) async fn openid_configuration(State(shared): State<Arc<Shared>>) -> Response {
    let body = json!({
        "issuer": "https://api.botframework.com",
        "authorization_endpoint": "https://invalid.botframework.com",
        "jwks_uri": format!("http://{}{JWKS_PATH}", shared.addr),
        "id_token_signing_alg_values_supported": ["RS256"],
        "token_endpoint_auth_methods_supported": ["private_key_jwt"],
    });
    json_response(body.to_string())
}

pub(super) async fn jwks(State(shared): State<Arc<Shared>>) -> Response {
    let published = shared.lock().signing.published.clone();
    json_response(TestKey::jwks(&published))
}

pub(super) fn json_response(body: String) -> Response {
    let mut response = Response::new(Body::from(body));
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_keys_sign_tokens_their_jwks_verifies() {
        for key in [TestKey::FIRST, TestKey::SECOND] {
            let validator = BotFrameworkValidator::new("app", key.static_keys());
            assert!(validator.validate(&key.mint("app")).is_ok(), "{key:?}");
            let other = BotFrameworkValidator::new("app", key.next().static_keys());
            assert!(other.validate(&key.mint("app")).is_err());
        }
    }
}
