//! Bot Framework's notification signing, emulated: RSA test keys, their JWKS, and tokens
//! minted for a bot's app id, so that a bot's own tests of JWT validation need no `openssl`;
//! and the key server, which publishes the OpenID configuration and the JWKS on loopback.
//!
//! The claims and issuers are those of Microsoft's calling-notification docs and reference
//! validator (`microsoftgraph/microsoft-graph-comms-samples`:
//! `docs/articles/calls/calling-notifications.html` and
//! `Samples/Common/Sample.Common/Authentication/AuthenticationProvider.cs`): RS256, `aud` the
//! bot's app id, a `tid`, issuer `https://api.botframework.com` or `https://graph.microsoft.com`.
//!
//! The keys are published in this crate's source: **never trust them outside tests.**

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::response::Response;
use http::HeaderValue;
use http::header::CONTENT_TYPE;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use crate::Shared;

/// One of the emulator's RSA-2048 test signing keys. The emulator signs with
/// [`TestKey::FIRST`] until [`Emulator::rotate_signing_key`](crate::Emulator::rotate_signing_key).
///
/// **Never trust these keys outside tests**: their private halves are published in this
/// crate's source.
///
/// # Example: verifying a minted token with jsonwebtoken
/// ```
/// use graph_emulator::TestKey;
/// use jsonwebtoken::jwk::JwkSet;
/// use jsonwebtoken::{Algorithm, DecodingKey, Validation};
///
/// let keys: JwkSet = serde_json::from_str(&TestKey::jwks(&[TestKey::FIRST]))?;
/// let key = DecodingKey::from_jwk(keys.find(TestKey::FIRST.kid()).unwrap())?;
/// let mut validation = Validation::new(Algorithm::RS256);
/// validation.set_audience(&["my-app-id"]);
/// validation.set_issuer(&TestKey::ISSUERS);
///
/// let authorization = TestKey::FIRST.mint("my-app-id");
/// let token = authorization.strip_prefix("Bearer ").unwrap();
/// let claims = jsonwebtoken::decode::<serde_json::Value>(token, &key, &validation)?.claims;
/// assert_eq!(claims["tid"], TestKey::TENANT_ID);
/// assert_eq!(claims["iss"], TestKey::BOT_FRAMEWORK_ISSUER);
/// // Another bot's token, or one signed with the other key, does not verify.
/// let other = TestKey::FIRST.mint("another-bot");
/// assert!(jsonwebtoken::decode::<serde_json::Value>(&other[7..], &key, &validation).is_err());
/// let second = TestKey::SECOND.mint("my-app-id");
/// assert!(jsonwebtoken::decode::<serde_json::Value>(&second[7..], &key, &validation).is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
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
        der: include_bytes!("../keys/signing-1.der"),
        n: include_str!("../keys/signing-1.n"),
    };
    /// The key a rotation moves to (and then back to [`FIRST`](Self::FIRST)).
    pub const SECOND: Self = Self {
        kid: "emulator-signing-2",
        der: include_bytes!("../keys/signing-2.der"),
        n: include_str!("../keys/signing-2.n"),
    };

    /// The tenant id the emulator's tokens carry (`tid`).
    pub const TENANT_ID: &'static str = "00000000-0000-4000-8000-0000000e0a70";

    /// Bot Framework's issuer, `https://api.botframework.com`, the one the calling-notification
    /// docs name.
    pub const BOT_FRAMEWORK_ISSUER: &'static str = "https://api.botframework.com";

    /// Graph's issuer, `https://graph.microsoft.com`, which Microsoft's reference validator
    /// accepts too ("the incoming token should be issued by graph").
    pub const GRAPH_ISSUER: &'static str = "https://graph.microsoft.com";

    /// Both issuers, in the order the emulator alternates them.
    pub const ISSUERS: [&'static str; 2] = [Self::BOT_FRAMEWORK_ISSUER, Self::GRAPH_ISSUER];

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

    /// A JWKS document (`{"keys": [...]}`) holding these keys, from which a validator in a
    /// test builds its keys (see the [type's example](Self)).
    pub fn jwks(keys: &[Self]) -> String {
        json!({ "keys": keys.iter().map(Self::jwk).collect::<Vec<_>>() }).to_string()
    }

    /// An `Authorization` header value (`Bearer eyJ…`) as Bot Framework sends with a calling
    /// notification: RS256, issuer [`BOT_FRAMEWORK_ISSUER`](Self::BOT_FRAMEWORK_ISSUER),
    /// audience `app_id`, tenant [`TENANT_ID`](Self::TENANT_ID), valid from a minute ago for an
    /// hour. The [type's example](Self) verifies one with jsonwebtoken.
    ///
    /// # Example
    /// ```
    /// use graph_emulator::TestKey;
    ///
    /// let authorization = TestKey::FIRST.mint("my-app-id");
    /// let token = authorization.strip_prefix("Bearer ").unwrap();
    /// let header = jsonwebtoken::decode_header(token)?;
    /// assert_eq!(header.alg, jsonwebtoken::Algorithm::RS256);
    /// assert_eq!(header.kid.as_deref(), Some(TestKey::FIRST.kid()));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn mint(&self, app_id: &str) -> String {
        self.mint_issued_by(Self::BOT_FRAMEWORK_ISSUER, app_id)
    }

    /// [`mint`](Self::mint) with another issuer: Graph signs calling notifications as
    /// [`GRAPH_ISSUER`](Self::GRAPH_ISSUER) too.
    ///
    /// # Example
    /// ```
    /// use graph_emulator::TestKey;
    ///
    /// let authorization = TestKey::SECOND.mint_issued_by(TestKey::GRAPH_ISSUER, "my-app-id");
    /// let token = authorization.strip_prefix("Bearer ").unwrap();
    /// let header = jsonwebtoken::decode_header(token)?;
    /// assert_eq!(header.kid.as_deref(), Some(TestKey::SECOND.kid()));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
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
pub(crate) const OPENID_PATH: &str = "/botframework/.well-known/openidconfiguration";
/// Where it serves its JWKS.
pub(crate) const JWKS_PATH: &str = "/botframework/keys";
/// How long a minted notification token is reused (Bot Framework's live for an hour).
const TOKEN_REUSE: Duration = Duration::from_secs(30 * 60);

/// Bot Framework's signing of notifications, emulated.
#[derive(Debug)]
pub(crate) struct Signing {
    /// Whose notifications are signed; `None`: none are.
    app_id: Option<String>,
    pub(crate) key: TestKey,
    pub(crate) published: Vec<TestKey>,
    /// The token minted last for each issuer, reused for a while as Bot Framework does.
    tokens: [Option<(String, tokio::time::Instant)>; 2],
    /// How many notifications were signed: they alternate between the two issuers.
    signed: usize,
}

impl Signing {
    pub(crate) fn new() -> Self {
        Self {
            app_id: None,
            key: TestKey::FIRST,
            published: vec![TestKey::FIRST],
            tokens: [None, None],
            signed: 0,
        }
    }

    /// Signs every notification from now on for `app_id`.
    pub(crate) fn sign_for(&mut self, app_id: String) {
        self.app_id = Some(app_id);
        self.tokens = [None, None];
    }

    /// Publishes the next key next to the current one and signs with it from now on.
    pub(crate) fn rotate(&mut self) -> TestKey {
        let next = self.key.next();
        self.published = vec![self.key, next];
        self.key = next;
        self.tokens = [None, None];
        next
    }

    /// The next notification's `Authorization`, signed alternately as Bot Framework and as
    /// Graph, the two issuers Microsoft's reference validator accepts.
    pub(crate) fn authorization(&mut self) -> Option<String> {
        let app_id = self.app_id.as_deref()?;
        let which = self.signed % 2;
        self.signed = self.signed.wrapping_add(1);
        let fresh = self.tokens[which]
            .as_ref()
            .filter(|(_, minted)| minted.elapsed() < TOKEN_REUSE);
        if let Some((token, _)) = fresh {
            return Some(token.clone());
        }
        let token = self.key.mint_issued_by(TestKey::ISSUERS[which], app_id);
        self.tokens[which] = Some((token.clone(), tokio::time::Instant::now()));
        Some(token)
    }
}

/// `GET` [`OPENID_PATH`]: Bot Framework's OpenID configuration, its `jwks_uri` on loopback.
pub(crate) async fn openid_configuration(State(shared): State<Arc<Shared>>) -> Response {
    let body = json!({
        "issuer": TestKey::BOT_FRAMEWORK_ISSUER,
        "authorization_endpoint": "https://invalid.botframework.com",
        "jwks_uri": format!("http://{}{JWKS_PATH}", shared.addr),
        "id_token_signing_alg_values_supported": ["RS256"],
        "token_endpoint_auth_methods_supported": ["private_key_jwt"],
    });
    json_response(body.to_string())
}

/// `GET` [`JWKS_PATH`]: the keys published now.
pub(crate) async fn jwks(State(shared): State<Arc<Shared>>) -> Response {
    let published = shared.lock().signing.published.clone();
    json_response(TestKey::jwks(&published))
}

fn json_response(body: String) -> Response {
    let mut response = Response::new(Body::from(body));
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

#[cfg(test)]
mod tests {
    use jsonwebtoken::jwk::JwkSet;
    use jsonwebtoken::{DecodingKey, Validation};

    use super::*;

    fn verify(authorization: &str, key: TestKey, app_id: &str) -> Option<Value> {
        let set: JwkSet = serde_json::from_str(&TestKey::jwks(&[key])).ok()?;
        let jwk = set.find(key.kid())?;
        let decoding = DecodingKey::from_jwk(jwk).ok()?;
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_audience(&[app_id]);
        validation.set_issuer(&TestKey::ISSUERS);
        validation.set_required_spec_claims(&["exp", "nbf", "aud", "iss"]);
        let token = authorization.strip_prefix("Bearer ")?;
        // The kid says which key: a token signed with the other key names the other kid.
        if jsonwebtoken::decode_header(token).ok()?.kid.as_deref() != Some(key.kid()) {
            return None;
        }
        jsonwebtoken::decode::<Value>(token, &decoding, &validation)
            .ok()
            .map(|data| data.claims)
    }

    #[test]
    fn both_keys_sign_tokens_their_jwks_verifies() {
        for key in [TestKey::FIRST, TestKey::SECOND] {
            let claims = verify(&key.mint("app"), key, "app").expect("verifies");
            assert_eq!(claims["tid"], TestKey::TENANT_ID);
            assert_eq!(claims["iss"], TestKey::BOT_FRAMEWORK_ISSUER);
            assert!(verify(&key.mint("other"), key, "app").is_none());
            assert!(verify(&key.mint("app"), key.next(), "app").is_none());
            let graph = key.mint_issued_by(TestKey::GRAPH_ISSUER, "app");
            assert_eq!(
                verify(&graph, key, "app").expect("verifies")["iss"],
                TestKey::GRAPH_ISSUER
            );
            assert!(
                verify(
                    &key.mint_issued_by("https://evil.example", "app"),
                    key,
                    "app"
                )
                .is_none()
            );
        }
        assert_eq!(TestKey::FIRST.next(), TestKey::SECOND);
        assert_eq!(TestKey::SECOND.next(), TestKey::FIRST);
        assert!(!format!("{:?}", TestKey::FIRST).contains(&TestKey::FIRST.n[..20]));
    }

    #[test]
    fn the_signing_state_alternates_issuers_and_rotates() {
        let mut signing = Signing::new();
        assert_eq!(signing.authorization(), None, "not signing until asked");
        signing.sign_for("app".to_owned());
        let first = signing.authorization().unwrap();
        let second = signing.authorization().unwrap();
        let third = signing.authorization().unwrap();
        assert_ne!(first, second);
        assert_eq!(first, third, "a token is reused for a while");
        let issuers =
            [&first, &second].map(|t| verify(t, TestKey::FIRST, "app").unwrap()["iss"].clone());
        assert_eq!(issuers, TestKey::ISSUERS.map(Value::from));

        assert_eq!(signing.rotate(), TestKey::SECOND);
        assert_eq!(signing.published, [TestKey::FIRST, TestKey::SECOND]);
        let rotated = signing.authorization().unwrap();
        assert!(verify(&rotated, TestKey::SECOND, "app").is_some());
        assert_eq!(signing.rotate(), TestKey::FIRST);
        assert_eq!(signing.published, [TestKey::SECOND, TestKey::FIRST]);
    }
}
