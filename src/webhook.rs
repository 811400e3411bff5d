//! Authenticating notification webhooks: the Bot Framework bearer JWT.
//!
//! Teams posts call notifications (including the one that completes an
//! `updateRecordingStatus` operation) with `Authorization: Bearer <JWT>`, and "the application
//! is expected to validate this token before accepting the callback request". Without that
//! check anyone who can reach the webhook could forge a `completed` notification and unlock
//! persistence, so validate before reading the body.
//!
//! The token is an RS256 JWT whose `aud` is the bot's app id and whose `tid` is the tenant. Its
//! issuer is `https://api.botframework.com` or `https://graph.microsoft.com`: Microsoft's
//! documentation names the first, and Microsoft's reference validator for calling
//! notifications (`Samples/Common/Sample.Common/Authentication/AuthenticationProvider.cs` in
//! microsoftgraph/microsoft-graph-comms-samples, "the incoming token should be issued by
//! graph") accepts both, requires a tenant id claim and hands it to the bot; this validator does
//! the same ([`BotFrameworkValidator::ISSUERS`]). Its signing keys are published as a JWKS at
//! the `jwks_uri` of the OpenID configuration at [`OPENID_CONFIGURATION_URL`]. With the `driver`
//! feature, [`JwksKeys`] fetches both through the bot's [`Transport`](crate::Transport),
//! caches the keys, refreshes them on a schedule and on an unknown `kid` (rate-limited), and
//! keeps the last good keys when a refresh fails. [`StaticKeys`] is a fixed source built from
//! JWKS JSON, for tests or a bot that fetches keys its own way.
//!
//! [`BotFrameworkValidator::validate`] turns the raw header value into an [`Authenticated`]
//! proof (what the notification hub requires, carrying the token's tenant id) or an
//! [`AuthError`]. It accepts RS256 only (so `alg: none` and the HS256 key-confusion attack are
//! refused before any key is looked up), requires `exp` and a tenant id, checks `nbf`, `iss`,
//! `aud` and optionally which tenant, and never copies the token into an error, a `Debug`
//! output or a log.
//!
//! # From the webhook to the hub
//!
//! The handler every bot writes: validate the bearer token, then hand the body to the
//! driver's [`Hub`](crate::driver::Hub) with the proof, and answer Graph. Here with axum (any
//! web framework works the same way: the hub takes a header value and the body's bytes).
//!
//! | outcome | answer | why |
//! |---|---|---|
//! | the hub took the body ([`Hub::deliver`](crate::driver::Hub::deliver) returned `Ok`) | `202 Accepted` | the updates are routed; entries it could not use are audited, not errors |
//! | the token does not validate ([`AuthError`] other than `Keys`) | `401 Unauthorized` | the body is not read |
//! | no key could be fetched ([`AuthError::Keys`]) | `500 Internal Server Error` | the bot's fault, not the sender's: Graph may retry |
//! | the body is not a `commsNotifications` document ([`NotificationError`](crate::notification::NotificationError)) | `400 Bad Request` | nothing was routed; retrying the same body cannot help |
//!
//! ```no_run
//! # #[cfg(feature = "driver")]
//! # mod example {
//! use axum::body::Bytes;
//! use axum::extract::State;
//! use axum::http::{HeaderMap, StatusCode, header::AUTHORIZATION};
//! use axum::routing::post;
//! use axum::Router;
//! use recording_status::Transport;
//! use recording_status::driver::Hub;
//! use recording_status::webhook::{AuthError, BotFrameworkValidator, JwksKeys};
//!
//! /// What the handler needs: cheap to clone (the validator and the hub share their state).
//! #[derive(Clone)]
//! struct Webhook<T> {
//!     validator: BotFrameworkValidator<JwksKeys<T>>,
//!     hub: Hub,
//! }
//!
//! async fn notifications<T: Transport + 'static>(
//!     State(webhook): State<Webhook<T>>,
//!     headers: HeaderMap,
//!     body: Bytes,
//! ) -> StatusCode {
//!     let authorization = headers
//!         .get(AUTHORIZATION)
//!         .and_then(|value| value.to_str().ok())
//!         .unwrap_or_default(); // a missing header fails validation below
//!     // Fetches the keys again (rate-limited) if the token names a key id not yet seen.
//!     let proof = match webhook.validator.validate_refreshing(authorization).await {
//!         Ok(proof) => proof,
//!         Err(AuthError::Keys(_)) => return StatusCode::INTERNAL_SERVER_ERROR,
//!         Err(_) => return StatusCode::UNAUTHORIZED,
//!     };
//!     match webhook.hub.deliver(&proof, &body) {
//!         Ok(_delivery) => StatusCode::ACCEPTED,
//!         Err(_) => StatusCode::BAD_REQUEST,
//!     }
//! }
//!
//! /// The route to give Graph as the calls' `callbackUri`; `driver.hub()` is the hub.
//! pub fn routes<T: Transport + Clone + 'static>(
//!     validator: BotFrameworkValidator<JwksKeys<T>>,
//!     hub: Hub,
//! ) -> Router {
//!     Router::new()
//!         .route("/api/calling", post(notifications::<T>))
//!         .with_state(Webhook { validator, hub })
//! }
//! # }
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use jsonwebtoken::jwk::{AlgorithmParameters, Jwk, KeyAlgorithm, KeyOperations, PublicKeyUse};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, Validation};
use serde::Deserialize;

use crate::auth::Authenticated;

#[cfg(feature = "driver")]
mod jwks;
#[cfg(feature = "driver")]
pub use jwks::{JwksConfig, JwksKeys, KeyRotation};

/// Where Microsoft publishes the OpenID configuration whose `jwks_uri` lists the keys that sign
/// calling notifications (§2.3 of the reference). Fetch it, then the JWKS, and refresh both
/// periodically and whenever validation reports [`AuthError::UnknownKey`].
pub const OPENID_CONFIGURATION_URL: &str =
    "https://api.aps.skype.com/v1/.well-known/OpenIdConfiguration";

/// Tokens longer than this are rejected as [`AuthError::Malformed`] before any parsing: real
/// Bot Framework tokens are around 1–2 KiB.
pub const MAX_TOKEN_LEN: usize = 16 * 1024;

/// The claims of a validated notification token that this crate checks.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Claims {
    /// Issuer; one of [`BotFrameworkValidator::ISSUERS`] once validated.
    pub iss: String,
    /// Audience; the bot's app id once validated.
    pub aud: String,
    /// Expiry, unix seconds.
    pub exp: i64,
    /// Not-before, unix seconds, if the token has one.
    pub nbf: Option<i64>,
    /// The tenant id: the `tid` claim (or its long form,
    /// [`TENANT_ID_CLAIM`](BotFrameworkValidator::TENANT_ID_CLAIM)); never empty once
    /// validated.
    pub tid: String,
}

/// Where signing keys come from.
///
/// The bot fetches and caches the JWKS named by the OpenID configuration at
/// [`OPENID_CONFIGURATION_URL`] (refreshing it when keys rotate); tests use [`StaticKeys`].
/// Return only keys you trust to sign Bot Framework tokens.
///
/// # Example: keys the bot fetches its own way
///
/// ```
/// use std::collections::HashMap;
/// use recording_status::webhook::{AuthError, BotFrameworkValidator, KeySource, VerifyingKey};
///
/// #[derive(Debug, Default)]
/// struct MyKeys(HashMap<String, VerifyingKey>);
///
/// impl KeySource for MyKeys {
///     fn key(&self, kid: &str) -> Option<VerifyingKey> {
///         self.0.get(kid).cloned()
///     }
/// }
///
/// let mut keys = MyKeys::default();
/// // `n` and `e` of an RSA JWK, base64url: what the JWKS lists for each `kid`.
/// # let (n, e) = ("0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw", "AQAB");
/// keys.0.insert("kid-1".into(), VerifyingKey::from_rsa_components(n, e)?);
/// let validator = BotFrameworkValidator::new("my-bot-app-id", keys);
/// # let _ = validator;
/// # Ok::<(), AuthError>(())
/// ```
pub trait KeySource: Send + Sync + fmt::Debug {
    /// The verification key whose JWK `kid` is `kid`, or `None` if it is unknown.
    fn key(&self, kid: &str) -> Option<VerifyingKey>;
}

impl<K: KeySource + ?Sized> KeySource for Arc<K> {
    fn key(&self, kid: &str) -> Option<VerifyingKey> {
        (**self).key(kid)
    }
}

impl<K: KeySource + ?Sized> KeySource for &K {
    fn key(&self, kid: &str) -> Option<VerifyingKey> {
        (**self).key(kid)
    }
}

/// An RSA public key that verifies RS256 signatures: what a [`KeySource`] hands the validator.
///
/// Only RSA keys can be built, so a key source cannot hand the validator a key of another
/// family (the HS256 key-confusion attack needs one). The JWT library behind it is not part of
/// this crate's API.
#[derive(Clone)]
pub struct VerifyingKey(DecodingKey);

impl VerifyingKey {
    /// A key from an RSA JWK's `n` (modulus) and `e` (exponent), each base64url without
    /// padding, as a JWKS lists them.
    ///
    /// # Errors
    /// [`AuthError::Keys`] if either is not base64url. Values that decode but do not make a
    /// usable RSA key are not detected here: every token checked against that key then fails
    /// as [`AuthError::BadSignature`], as with a key that did not sign it.
    pub fn from_rsa_components(modulus: &str, exponent: &str) -> Result<Self, AuthError> {
        DecodingKey::from_rsa_components(modulus, exponent)
            .map(Self)
            .map_err(|e| KeysError::caused_by("the rsa key components are not base64url", e).into())
    }
}

impl fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("VerifyingKey(rsa)")
    }
}

/// A fixed set of RS256 verification keys, keyed by `kid`, read from JWKS JSON.
#[derive(Clone)]
pub struct StaticKeys {
    keys: BTreeMap<String, VerifyingKey>,
}

impl StaticKeys {
    /// Reads a JWKS document (`{"keys": [...]}`) and keeps its RSA signature keys.
    ///
    /// Entries without a `kid`, of another key type, marked for another use (`use` other than
    /// `sig`, `key_ops` without `verify`) or for another algorithm (`alg` other than `RS256`)
    /// are skipped, as are entries this crate cannot parse; if a `kid` repeats, the first entry
    /// wins.
    ///
    /// # Errors
    ///
    /// [`AuthError::Keys`] if the JSON is not a JWKS or holds no usable key.
    pub fn from_jwks_json(json: &str) -> Result<Self, AuthError> {
        #[derive(Deserialize)]
        struct Set {
            keys: Vec<serde_json::Value>,
        }
        let set: Set = serde_json::from_str(json)
            .map_err(|e| KeysError::caused_by("jwks is not a json key set", e))?;
        let mut keys = BTreeMap::new();
        for entry in set.keys {
            let Ok(jwk) = serde_json::from_value::<Jwk>(entry) else {
                continue;
            };
            if let Some((kid, key)) = usable_key(&jwk) {
                keys.entry(kid).or_insert(key);
            }
        }
        if keys.is_empty() {
            return Err(KeysError::new("jwks holds no rsa signature key with a kid").into());
        }
        Ok(Self { keys })
    }

    /// The key ids held, in order.
    pub fn kids(&self) -> impl Iterator<Item = &str> {
        self.keys.keys().map(String::as_str)
    }
}

fn usable_key(jwk: &Jwk) -> Option<(String, VerifyingKey)> {
    let common = &jwk.common;
    let kid = common.key_id.clone()?;
    let AlgorithmParameters::RSA(rsa) = &jwk.algorithm else {
        return None;
    };
    if common
        .public_key_use
        .as_ref()
        .is_some_and(|u| *u != PublicKeyUse::Signature)
        || common
            .key_operations
            .as_ref()
            .is_some_and(|ops| !ops.contains(&KeyOperations::Verify))
        || common
            .key_algorithm
            .is_some_and(|alg| alg != KeyAlgorithm::RS256)
    {
        return None;
    }
    let key = VerifyingKey::from_rsa_components(&rsa.n, &rsa.e).ok()?;
    Some((kid, key))
}

impl fmt::Debug for StaticKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StaticKeys")
            .field("kids", &self.keys.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl KeySource for StaticKeys {
    fn key(&self, kid: &str) -> Option<VerifyingKey> {
        self.keys.get(kid).cloned()
    }
}

/// Validates the Bot Framework bearer JWT on calling-notification webhooks.
///
/// # Example
///
/// ```
/// use recording_status::webhook::{AuthError, BotFrameworkValidator, StaticKeys};
///
/// # let jwks_json = include_str!("../tests/data/webhook_test_jwks.json");
/// // The JWKS the bot fetched from the OpenID configuration's `jwks_uri`.
/// let keys = StaticKeys::from_jwks_json(jwks_json)?;
/// let validator = BotFrameworkValidator::new("5b2a…-bot-app-id", keys)
///     .with_tenant("72f988bf-86f1-41af-91ab-2d7cd011db47");
///
/// // In the webhook handler, with the request's `Authorization` header value:
/// let authorization = "Bearer not-a-jwt";
/// match validator.validate(authorization) {
///     Ok(auth) => {
///         // Only now read the `commsNotifications` body and act on it, passing `auth` along.
///         # let _ = auth;
///     }
///     Err(AuthError::UnknownKey) => { /* refresh the JWKS, validate once more, else 401 */ }
///     Err(e) => {
///         // Answer 401 (500 for `AuthError::Keys`) and ignore the body.
///         assert!(matches!(e, AuthError::Malformed));
///     }
/// }
/// # Ok::<(), AuthError>(())
/// ```
#[derive(Clone)]
pub struct BotFrameworkValidator<K> {
    app_id: String,
    tenant: Option<String>,
    leeway: u64,
    keys: K,
    validation: Validation,
}

impl<K: fmt::Debug> fmt::Debug for BotFrameworkValidator<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BotFrameworkValidator")
            .field("app_id", &self.app_id)
            .field("tenant", &self.tenant)
            .field("leeway_secs", &self.leeway)
            .field("keys", &self.keys)
            .finish_non_exhaustive()
    }
}

impl<K: KeySource> BotFrameworkValidator<K> {
    /// Bot Framework's issuer, the one Microsoft's calling-notifications page names.
    pub const ISSUER: &'static str = "https://api.botframework.com";

    /// Microsoft Graph's issuer, which Microsoft's reference validator accepts beside
    /// [`ISSUER`](Self::ISSUER) ("the incoming token should be issued by graph").
    pub const GRAPH_ISSUER: &'static str = "https://graph.microsoft.com";

    /// Every issuer accepted: those of Microsoft's reference validator for calling
    /// notifications (`AuthenticationProvider.cs` in microsoft-graph-comms-samples), with the
    /// keys of [`OPENID_CONFIGURATION_URL`].
    pub const ISSUERS: [&'static str; 2] = [Self::ISSUER, Self::GRAPH_ISSUER];

    /// The long name of the tenant id claim, which .NET's token handler maps `tid` to and
    /// Microsoft's reference validator reads; accepted in place of `tid`.
    pub const TENANT_ID_CLAIM: &'static str =
        "http://schemas.microsoft.com/identity/claims/tenantid";

    /// The default clock-skew allowance, in seconds (as in the Bot Framework SDKs).
    pub const DEFAULT_LEEWAY_SECS: u64 = 300;

    /// A validator for tokens addressed to the bot whose app (client) id is `app_id`, checked
    /// against `keys`, with a [`DEFAULT_LEEWAY_SECS`](Self::DEFAULT_LEEWAY_SECS) leeway, any of
    /// the [`ISSUERS`](Self::ISSUERS), and any tenant (a tenant id is still required).
    pub fn new(app_id: impl Into<String>, keys: K) -> Self {
        let app_id = app_id.into();
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        validation.set_issuer(&Self::ISSUERS);
        validation.set_audience(&[app_id.as_str()]);
        // Time claims are checked against the caller's clock in `validate_at`.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.leeway = 0;
        Self {
            app_id,
            tenant: None,
            leeway: Self::DEFAULT_LEEWAY_SECS,
            keys,
            validation,
        }
    }

    /// Sets the clock-skew allowance applied to `exp` and `nbf`. Keep it small: it extends the
    /// life of a stolen token.
    #[must_use]
    pub fn with_leeway(mut self, secs: u64) -> Self {
        self.leeway = secs;
        self
    }

    /// Also requires the token's tenant id to be `tid` (every token must carry one; this says
    /// which).
    #[must_use]
    pub fn with_tenant(mut self, tid: impl Into<String>) -> Self {
        self.tenant = Some(tid.into());
        self
    }

    /// The key source, e.g. to refresh a cache after [`AuthError::UnknownKey`].
    pub fn keys(&self) -> &K {
        &self.keys
    }

    /// Validates `authorization`, the raw `Authorization` header value (`"Bearer eyJ…"`), at
    /// `now_unix` (unix seconds). Pure apart from the [`KeySource`] lookup. The proof records
    /// [`AuthMethod::BotFrameworkJwt`](crate::auth::AuthMethod::BotFrameworkJwt) and the
    /// token's tenant id ([`Authenticated::tenant`]).
    ///
    /// # Errors
    ///
    /// An [`AuthError`] saying why the request must be refused; none contains the token.
    pub fn validate_at(
        &self,
        authorization: &str,
        now_unix: i64,
    ) -> Result<Authenticated, AuthError> {
        self.validate_claims_at(authorization, now_unix)
            .map(|(proof, _)| proof)
    }

    /// [`validate_at`](Self::validate_at), also returning the validated [`Claims`].
    ///
    /// # Errors
    ///
    /// As [`validate_at`](Self::validate_at).
    pub fn validate_claims_at(
        &self,
        authorization: &str,
        now_unix: i64,
    ) -> Result<(Authenticated, Claims), AuthError> {
        let token = bearer_token(authorization)?;
        if token.len() > MAX_TOKEN_LEN {
            return Err(AuthError::Malformed);
        }
        let header = parse_header(token)?;
        if header.alg != "RS256" {
            return Err(AuthError::UnsupportedAlgorithm);
        }
        if header.crit.is_some() {
            // No critical extension is understood here (RFC 7515 §4.1.11).
            return Err(AuthError::Malformed);
        }
        let kid = header.kid.ok_or(AuthError::Malformed)?;
        let VerifyingKey(key) = self.keys.key(&kid).ok_or(AuthError::UnknownKey)?;
        // Only RSA keys can be built; defend in depth.
        if key.family() != AlgorithmFamily::Rsa {
            return Err(KeysError::new("the key source returned a non-rsa key").into());
        }
        let raw = jsonwebtoken::decode::<RawClaims>(token, &key, &self.validation)
            .map_err(map_jwt_error)?
            .claims;

        let leeway = i64::try_from(self.leeway).unwrap_or(i64::MAX);
        if now_unix >= raw.exp.saturating_add(leeway) {
            return Err(AuthError::Expired);
        }
        if raw
            .nbf
            .is_some_and(|nbf| now_unix.saturating_add(leeway) < nbf)
        {
            return Err(AuthError::NotYetValid);
        }
        let tid = raw.tenant()?;
        if self.tenant.as_ref().is_some_and(|tenant| *tenant != tid) {
            return Err(AuthError::WrongTenant);
        }
        // jsonwebtoken checked both; defend in depth against a change in its semantics.
        if !Self::ISSUERS.contains(&raw.iss.as_str()) {
            return Err(AuthError::WrongIssuer);
        }
        if !raw.aud.contains(&self.app_id) {
            return Err(AuthError::WrongAudience);
        }
        let claims = Claims {
            iss: raw.iss,
            aud: self.app_id.clone(),
            exp: raw.exp,
            nbf: raw.nbf,
            tid,
        };
        Ok((Authenticated::bot_framework(claims.tid.clone()), claims))
    }

    /// [`validate_at`](Self::validate_at) with the system clock.
    ///
    /// # Errors
    ///
    /// As [`validate_at`](Self::validate_at).
    pub fn validate(&self, authorization: &str) -> Result<Authenticated, AuthError> {
        self.validate_at(authorization, chrono::Utc::now().timestamp())
    }
}

/// Why a webhook request's credentials were refused. Answer `401 Unauthorized` (or `500` for
/// [`Keys`](Self::Keys)) and do not act on the request body. No variant carries the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// The header is absent, empty or not `Bearer <token>`. Refuse the request; check that the
    /// proxy in front of the bot forwards `Authorization`.
    #[error("authorization is not a bearer token")]
    MissingBearer,
    /// The token is not a compact JWS, its header or claims are not valid JSON of the right
    /// shape, it lacks `kid`, `exp`, `iss` or `aud`, it names a critical extension, or it is
    /// too long. Refuse the request; retrying will not help.
    #[error("bearer token is malformed")]
    Malformed,
    /// The token's `kid` is not in the key source. Keys rotate: refresh the JWKS from the OpenID
    /// configuration and validate once more; if the key is still unknown, refuse the request.
    #[error("bearer token is signed with an unknown key")]
    UnknownKey,
    /// The token's `alg` is not `RS256` (e.g. `none`, or `HS256` in a key-confusion attempt).
    /// Refuse the request; such a token did not come from Microsoft.
    #[error("bearer token algorithm is not rs256")]
    UnsupportedAlgorithm,
    /// The signature does not match the key named by `kid`: the token was forged or altered.
    /// Refuse the request.
    #[error("bearer token signature is invalid")]
    BadSignature,
    /// `exp` has passed, even allowing for the leeway. Refuse the request; if this happens to
    /// fresh requests, check the server's clock.
    #[error("bearer token has expired")]
    Expired,
    /// `nbf` is in the future, even allowing for the leeway. Refuse the request and check the
    /// server's clock.
    #[error("bearer token is not valid yet")]
    NotYetValid,
    /// `iss` is none of [`BotFrameworkValidator::ISSUERS`]. Refuse the request.
    #[error("bearer token issuer is neither bot framework nor graph")]
    WrongIssuer,
    /// `aud` is not this bot's app id: the token was issued to another bot. Refuse the request;
    /// if every request fails so, check the app id the validator was built with.
    #[error("bearer token audience is not this bot")]
    WrongAudience,
    /// The token carries no tenant id (`tid`, or
    /// [`TENANT_ID_CLAIM`](BotFrameworkValidator::TENANT_ID_CLAIM)), or an empty one, or two
    /// that differ. Microsoft's reference validator refuses such a token; so does this one.
    #[error("bearer token carries no tenant id")]
    MissingTenant,
    /// The tenant id is not the tenant set with
    /// [`with_tenant`](BotFrameworkValidator::with_tenant). Refuse the request.
    #[error("bearer token tenant is not the expected tenant")]
    WrongTenant,
    /// The key material is unusable (keys that cannot be fetched, a bad JWKS, an invalid RSA
    /// key). This is the bot's fault, not the caller's: fix or refresh the key source. The
    /// [`KeysError`] says what failed, with the underlying error as its source.
    #[error(transparent)]
    Keys(KeysError),
}

impl From<KeysError> for AuthError {
    fn from(e: KeysError) -> Self {
        Self::Keys(e)
    }
}

/// Why signing keys are unusable ([`AuthError::Keys`]): what failed, and the underlying error
/// (a transport's, a JSON parser's, the crypto library's) as its
/// [`source`](std::error::Error::source) when there is one. Equal when the messages are.
#[derive(Clone)]
pub struct KeysError {
    message: String,
    source: Option<Arc<dyn std::error::Error + Send + Sync>>,
}

impl KeysError {
    pub(crate) fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            source: None,
        }
    }

    pub(crate) fn caused_by(
        message: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self {
            message: message.into(),
            source: Some(Arc::new(source)),
        }
    }

    /// What failed, without the source's message.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Debug for KeysError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeysError")
            .field("message", &self.message)
            .field("source", &self.source)
            .finish()
    }
}

impl fmt::Display for KeysError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "signing keys are unusable: {}", self.message)
    }
}

impl std::error::Error for KeysError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

impl PartialEq for KeysError {
    fn eq(&self, other: &Self) -> bool {
        self.message == other.message
    }
}

impl Eq for KeysError {}

fn map_jwt_error(e: jsonwebtoken::errors::Error) -> AuthError {
    use jsonwebtoken::errors::ErrorKind as K;
    match e.kind() {
        K::InvalidSignature => AuthError::BadSignature,
        K::InvalidAlgorithm | K::UnsupportedAlgorithm | K::MissingAlgorithm => {
            AuthError::UnsupportedAlgorithm
        }
        K::InvalidIssuer => AuthError::WrongIssuer,
        K::InvalidAudience => AuthError::WrongAudience,
        K::ExpiredSignature => AuthError::Expired,
        K::ImmatureSignature => AuthError::NotYetValid,
        K::InvalidRsaKey(_) | K::InvalidKeyFormat => {
            KeysError::caused_by("the rsa key for this kid is invalid", e).into()
        }
        K::Provider(_) => KeysError::caused_by("the crypto provider failed", e).into(),
        // Never forward messages that may quote the token (JSON, base64, UTF-8 errors).
        _ => AuthError::Malformed,
    }
}

/// Extracts the token from `Bearer <token>` (scheme case-insensitive, RFC 7235).
fn bearer_token(authorization: &str) -> Result<&str, AuthError> {
    let value = authorization.trim();
    let (scheme, rest) = value
        .split_once([' ', '\t'])
        .ok_or(AuthError::MissingBearer)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(AuthError::MissingBearer);
    }
    let token = rest.trim();
    if token.is_empty() {
        return Err(AuthError::MissingBearer);
    }
    if token.bytes().any(|b| b.is_ascii_whitespace()) {
        return Err(AuthError::Malformed);
    }
    Ok(token)
}

#[derive(Deserialize)]
struct RawHeader {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    crit: Option<serde_json::Value>,
}

fn parse_header(token: &str) -> Result<RawHeader, AuthError> {
    let mut parts = token.split('.');
    let (Some(header), Some(_), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(AuthError::Malformed);
    };
    let bytes = b64url_decode(header).ok_or(AuthError::Malformed)?;
    serde_json::from_slice(&bytes).map_err(|_| AuthError::Malformed)
}

/// Unpadded base64url (RFC 7515 §2), for the header only; jsonwebtoken decodes the rest.
fn b64url_decode(s: &str) -> Option<Vec<u8>> {
    if s.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' => 62,
            b'_' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

#[derive(Deserialize)]
struct RawClaims {
    iss: String,
    aud: Audience,
    exp: i64,
    #[serde(default)]
    nbf: Option<i64>,
    #[serde(default)]
    tid: Option<String>,
    #[serde(
        default,
        rename = "http://schemas.microsoft.com/identity/claims/tenantid"
    )]
    tenant_id: Option<String>,
}

impl RawClaims {
    /// The tenant id, from `tid` or its long form; both present must agree.
    fn tenant(&self) -> Result<String, AuthError> {
        let tid = match (self.tid.as_deref(), self.tenant_id.as_deref()) {
            (Some(short), Some(long)) if short != long => return Err(AuthError::MissingTenant),
            (Some(tid), _) | (None, Some(tid)) => tid,
            (None, None) => return Err(AuthError::MissingTenant),
        };
        if tid.trim().is_empty() {
            return Err(AuthError::MissingTenant);
        }
        Ok(tid.to_owned())
    }
}

/// The `kid` a token names, if its header can be read.
#[cfg_attr(not(feature = "driver"), allow(dead_code))]
fn token_kid(authorization: &str) -> Option<String> {
    let token = bearer_token(authorization).ok()?;
    if token.len() > MAX_TOKEN_LEN {
        return None;
    }
    parse_header(token).ok()?.kid
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

impl Audience {
    fn contains(&self, app_id: &str) -> bool {
        match self {
            Self::One(aud) => aud == app_id,
            Self::Many(auds) => auds.iter().any(|aud| aud == app_id),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::AuthMethod;
    use jsonwebtoken::{EncodingKey, Header, encode};
    use serde_json::{Value, json};

    const KEY_PEM: &str = include_str!("../tests/data/webhook_test_key.pem");
    const PUBLIC_PEM: &str = include_str!("../tests/data/webhook_test_key.pub.pem");
    const ATTACKER_PEM: &str = include_str!("../tests/data/webhook_attacker_key.pem");
    const JWKS: &str = include_str!("../tests/data/webhook_test_jwks.json");
    const KID: &str = "test-key-1";
    const APP_ID: &str = "5b2a9d1e-0000-4000-8000-00000000b07";
    const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
    const NOW: i64 = 1_750_000_000;
    const ISSUER: &str = BotFrameworkValidator::<StaticKeys>::ISSUER;

    fn validator() -> BotFrameworkValidator<StaticKeys> {
        BotFrameworkValidator::new(APP_ID, StaticKeys::from_jwks_json(JWKS).unwrap())
    }

    fn claims() -> Value {
        json!({
            "iss": ISSUER, "aud": APP_ID, "exp": NOW + 3600, "nbf": NOW - 60, "tid": TENANT,
            "serviceurl": "https://smba.trafficmanager.net/amer/",
        })
    }

    fn with(mut claims: Value, key: &str, value: Value) -> Value {
        claims[key] = value;
        claims
    }

    fn sign_with(pem: &str, alg: Algorithm, kid: Option<&str>, claims: &Value) -> String {
        let mut header = Header::new(alg);
        header.kid = kid.map(str::to_owned);
        let key = EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap();
        encode(&header, claims, &key).unwrap()
    }

    fn sign(claims: &Value) -> String {
        sign_with(KEY_PEM, Algorithm::RS256, Some(KID), claims)
    }

    fn b64url(bytes: &[u8]) -> String {
        const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let mut out = String::new();
        for chunk in bytes.chunks(3) {
            let n = chunk
                .iter()
                .enumerate()
                .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
            for i in 0..=chunk.len() {
                out.push(ABC[(n >> (18 - 6 * i) & 63) as usize] as char);
            }
        }
        out
    }

    /// A token with a hand-written header, signed (if `alg` is given) with the test key.
    fn craft(header: &Value, claims: &Value, alg: Option<Algorithm>) -> String {
        let message = format!(
            "{}.{}",
            b64url(header.to_string().as_bytes()),
            b64url(claims.to_string().as_bytes())
        );
        let signature = match alg {
            Some(alg) => {
                let key = EncodingKey::from_rsa_pem(KEY_PEM.as_bytes()).unwrap();
                jsonwebtoken::crypto::sign(message.as_bytes(), &key, alg).unwrap()
            }
            None => String::new(),
        };
        format!("{message}.{signature}")
    }

    fn check(token: &str) -> Result<Authenticated, AuthError> {
        validator().validate_at(&format!("Bearer {token}"), NOW)
    }

    #[test]
    fn base64url_round_trips() {
        for len in 0..10 {
            let bytes: Vec<u8> = (0..len).map(|i| i * 37 + 250).map(|i| i as u8).collect();
            assert_eq!(b64url_decode(&b64url(&bytes)).unwrap(), bytes);
        }
        assert!(b64url_decode("a").is_none());
        assert!(b64url_decode("ab+/").is_none());
    }

    #[test]
    fn valid_token_is_accepted_and_claims_are_exposed() {
        let auth = check(&sign(&claims())).unwrap();
        assert_eq!(auth.method(), &AuthMethod::BotFrameworkJwt);
        assert_eq!(auth.tenant(), Some(TENANT));
        let header = format!("Bearer {}", sign(&claims()));
        let (proof, c) = validator().validate_claims_at(&header, NOW).unwrap();
        assert_eq!(proof, auth);
        assert_eq!(
            (c.iss.as_str(), c.aud.as_str(), c.exp, c.nbf, c.tid.as_str()),
            (ISSUER, APP_ID, NOW + 3600, Some(NOW - 60), TENANT)
        );
    }

    #[test]
    fn tenant_is_checked_when_configured() {
        let v = validator().with_tenant(TENANT);
        let header = |c: &Value| format!("Bearer {}", sign(c));
        assert!(v.validate_at(&header(&claims()), NOW).is_ok());
        let other = with(
            claims(),
            "tid",
            json!("00000000-0000-0000-0000-000000000000"),
        );
        assert_eq!(
            v.validate_at(&header(&other), NOW).unwrap_err(),
            AuthError::WrongTenant
        );
        // Without `with_tenant`, any tenant is accepted.
        assert!(check(&sign(&other)).is_ok());
    }

    /// As Microsoft's reference validator: a token without a tenant id is refused, with or
    /// without `with_tenant`; the long claim name .NET maps `tid` to is read too.
    #[test]
    fn a_tenant_id_is_required_and_handed_to_the_bot() {
        let mut none = claims();
        none.as_object_mut().unwrap().remove("tid");
        for v in [validator(), validator().with_tenant(TENANT)] {
            assert_eq!(
                v.validate_at(&format!("Bearer {}", sign(&none)), NOW),
                Err(AuthError::MissingTenant)
            );
        }
        for empty in [json!(""), json!("  ")] {
            let err = check(&sign(&with(claims(), "tid", empty))).unwrap_err();
            assert_eq!(err, AuthError::MissingTenant);
        }
        let err = check(&sign(&with(claims(), "tid", json!(7)))).unwrap_err();
        assert_eq!(err, AuthError::Malformed);

        let long = BotFrameworkValidator::<StaticKeys>::TENANT_ID_CLAIM;
        let only_long = with(none.clone(), long, json!(TENANT));
        let auth = check(&sign(&only_long)).unwrap();
        assert_eq!(auth.tenant(), Some(TENANT));
        let both = with(claims(), long, json!(TENANT));
        assert!(check(&sign(&both)).is_ok(), "both names, one tenant");
        let differ = with(
            claims(),
            long,
            json!("00000000-0000-0000-0000-000000000000"),
        );
        assert_eq!(check(&sign(&differ)), Err(AuthError::MissingTenant));
    }

    /// Microsoft's reference validator for calling notifications accepts Graph's issuer beside
    /// Bot Framework's (`AuthenticationProvider.cs` in microsoft-graph-comms-samples).
    #[test]
    fn tokens_issued_by_graph_are_accepted() {
        let graph = BotFrameworkValidator::<StaticKeys>::GRAPH_ISSUER;
        assert_eq!(
            BotFrameworkValidator::<StaticKeys>::ISSUERS,
            [
                "https://api.botframework.com",
                "https://graph.microsoft.com"
            ]
        );
        let header = format!("Bearer {}", sign(&with(claims(), "iss", json!(graph))));
        let (proof, c) = validator().validate_claims_at(&header, NOW).unwrap();
        assert_eq!(c.iss, graph);
        assert_eq!(proof.tenant(), Some(TENANT));
    }

    #[test]
    fn bearer_scheme_is_case_insensitive_and_whitespace_tolerant() {
        let token = sign(&claims());
        for header in [
            format!("bearer {token}"),
            format!("BEARER   {token} "),
            format!(" Bearer\t{token}"),
        ] {
            assert!(
                validator().validate_at(&header, NOW).is_ok(),
                "{header:.12}"
            );
        }
    }

    #[test]
    fn wrong_issuer_is_refused() {
        for iss in [
            json!("https://sts.windows.net/x/"),
            json!("https://api.botframework.com/"),
            json!("https://graph.microsoft.com/"),
            json!("https://GRAPH.microsoft.com"),
            json!("https://graph.microsoft.us"),
        ] {
            let err = check(&sign(&with(claims(), "iss", iss))).unwrap_err();
            assert_eq!(err, AuthError::WrongIssuer);
        }
    }

    #[test]
    fn wrong_audience_is_refused_and_arrays_are_understood() {
        let err = check(&sign(&with(claims(), "aud", json!("another-bot")))).unwrap_err();
        assert_eq!(err, AuthError::WrongAudience);
        let err = check(&sign(&with(claims(), "aud", json!(["another-bot"])))).unwrap_err();
        assert_eq!(err, AuthError::WrongAudience);
        let header = format!(
            "Bearer {}",
            sign(&with(claims(), "aud", json!(["x", APP_ID])))
        );
        let (_, c) = validator().validate_claims_at(&header, NOW).unwrap();
        assert_eq!(c.aud, APP_ID);
    }

    #[test]
    fn missing_required_claims_are_malformed() {
        for claim in ["exp", "iss", "aud"] {
            let mut c = claims();
            c.as_object_mut().unwrap().remove(claim);
            assert_eq!(
                check(&sign(&c)).unwrap_err(),
                AuthError::Malformed,
                "{claim}"
            );
        }
        let err = check(&sign(&with(claims(), "exp", json!("tomorrow")))).unwrap_err();
        assert_eq!(err, AuthError::Malformed);
    }

    #[test]
    fn expired_token_is_refused() {
        let err = check(&sign(&with(claims(), "exp", json!(NOW - 301)))).unwrap_err();
        assert_eq!(err, AuthError::Expired);
    }

    #[test]
    fn not_yet_valid_token_is_refused() {
        let err = check(&sign(&with(claims(), "nbf", json!(NOW + 301)))).unwrap_err();
        assert_eq!(err, AuthError::NotYetValid);
    }

    #[test]
    fn leeway_applies_to_exp_and_nbf() {
        let at = |v: &BotFrameworkValidator<StaticKeys>, c: &Value| {
            v.validate_at(&format!("Bearer {}", sign(c)), NOW)
        };
        let default = validator();
        // Default 300 s: expired 299 s ago or valid from 300 s ahead is still accepted...
        assert!(at(&default, &with(claims(), "exp", json!(NOW - 299))).is_ok());
        assert!(at(&default, &with(claims(), "nbf", json!(NOW + 300))).is_ok());
        // ...but `exp` is exclusive: now == exp + leeway is expired.
        let err = at(&default, &with(claims(), "exp", json!(NOW - 300))).unwrap_err();
        assert_eq!(err, AuthError::Expired);
        let err = at(&default, &with(claims(), "nbf", json!(NOW + 301))).unwrap_err();
        assert_eq!(err, AuthError::NotYetValid);

        let strict = validator().with_leeway(0);
        assert!(at(&strict, &with(claims(), "exp", json!(NOW + 1))).is_ok());
        assert!(at(&strict, &with(claims(), "nbf", json!(NOW))).is_ok());
        let err = at(&strict, &with(claims(), "exp", json!(NOW))).unwrap_err();
        assert_eq!(err, AuthError::Expired);
        let err = at(&strict, &with(claims(), "nbf", json!(NOW + 1))).unwrap_err();
        assert_eq!(err, AuthError::NotYetValid);

        // A huge leeway saturates instead of overflowing.
        let lax = validator().with_leeway(u64::MAX);
        assert!(at(&lax, &with(claims(), "exp", json!(0))).is_ok());
    }

    #[test]
    fn validate_uses_the_system_clock() {
        let now = chrono::Utc::now().timestamp();
        let fresh = with(with(claims(), "exp", json!(now + 600)), "nbf", json!(now));
        assert!(
            validator()
                .validate(&format!("Bearer {}", sign(&fresh)))
                .is_ok()
        );
        // Valid at NOW (2025) + 1 h, long expired by the system clock.
        let old = with(claims(), "exp", json!(NOW - 3600));
        let err = validator().validate(&format!("Bearer {}", sign(&old)));
        assert_eq!(err.unwrap_err(), AuthError::Expired);
    }

    #[test]
    fn unknown_or_missing_kid_is_refused() {
        let token = sign_with(KEY_PEM, Algorithm::RS256, Some("rotated-away"), &claims());
        assert_eq!(check(&token).unwrap_err(), AuthError::UnknownKey);
        let token = sign_with(KEY_PEM, Algorithm::RS256, None, &claims());
        assert_eq!(check(&token).unwrap_err(), AuthError::Malformed);
    }

    #[test]
    fn tampered_payload_has_a_bad_signature() {
        let token = sign(&claims());
        let forged = sign(&with(claims(), "aud", json!("another-bot")));
        let mut parts: Vec<&str> = token.split('.').collect();
        // A genuine token for another bot, its payload swapped into this token.
        parts[1] = forged.split('.').nth(1).unwrap();
        assert_eq!(
            check(&parts.join(".")).unwrap_err(),
            AuthError::BadSignature
        );
        let mut bytes = token.into_bytes();
        let i = bytes.len() - 10;
        bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
        let flipped = String::from_utf8(bytes).unwrap();
        assert_eq!(check(&flipped).unwrap_err(), AuthError::BadSignature);
    }

    #[test]
    fn token_signed_by_another_key_under_a_known_kid_is_refused() {
        let token = sign_with(ATTACKER_PEM, Algorithm::RS256, Some(KID), &claims());
        assert_eq!(check(&token).unwrap_err(), AuthError::BadSignature);
    }

    #[test]
    fn alg_none_is_refused() {
        for alg in ["none", "None", "NONE"] {
            let header = json!({"alg": alg, "typ": "JWT", "kid": KID});
            let unsigned = craft(&header, &claims(), None);
            assert_eq!(
                check(&unsigned).unwrap_err(),
                AuthError::UnsupportedAlgorithm
            );
            // Even with a genuine RS256 signature appended.
            let sig = sign(&claims()).rsplit('.').next().unwrap().to_owned();
            let err = check(&format!("{unsigned}{sig}")).unwrap_err();
            assert_eq!(err, AuthError::UnsupportedAlgorithm);
        }
    }

    #[test]
    fn hs256_signed_with_the_public_key_is_refused() {
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(KID.into());
        for secret in [PUBLIC_PEM.as_bytes(), JWKS.as_bytes()] {
            let token = encode(&header, &claims(), &EncodingKey::from_secret(secret)).unwrap();
            assert_eq!(check(&token).unwrap_err(), AuthError::UnsupportedAlgorithm);
        }
    }

    #[test]
    fn other_rsa_algorithms_are_refused() {
        for alg in [Algorithm::RS384, Algorithm::RS512, Algorithm::PS256] {
            let token = sign_with(KEY_PEM, alg, Some(KID), &claims());
            assert_eq!(check(&token).unwrap_err(), AuthError::UnsupportedAlgorithm);
        }
    }

    #[test]
    fn critical_header_extensions_are_refused() {
        let header = json!({"alg": "RS256", "kid": KID, "crit": ["exp"], "exp": NOW});
        let token = craft(&header, &claims(), Some(Algorithm::RS256));
        assert_eq!(check(&token).unwrap_err(), AuthError::Malformed);
        // The same hand-crafted path without `crit` is accepted, so `crit` is what is refused.
        let header = json!({"alg": "RS256", "kid": KID});
        assert!(check(&craft(&header, &claims(), Some(Algorithm::RS256))).is_ok());
    }

    #[test]
    fn missing_bearer_is_refused() {
        let token = sign(&claims());
        for header in [
            String::new(),
            "   ".into(),
            "Bearer".into(),
            "Bearer    ".into(),
            token.clone(),
            format!("Basic {token}"),
            format!("Bearer{token}"),
            format!("JWT {token}"),
        ] {
            let err = validator().validate_at(&header, NOW).unwrap_err();
            assert_eq!(err, AuthError::MissingBearer, "{header:.12}");
        }
    }

    #[test]
    fn garbage_is_malformed() {
        let token = sign(&claims());
        let (head, rest) = token.split_once('.').unwrap();
        for garbage in [
            "garbage".to_owned(),
            "a.b".into(),
            "a.b.c.d".into(),
            "...".into(),
            format!("{token}.x"),
            format!("{head}=.{rest}"),
            format!("{}.{rest}", b64url(b"not json")),
            format!("{}.{rest}", b64url(b"{\"kid\":\"test-key-1\"}")),
            format!("{}.{rest}", b64url(b"{\"alg\":\"RS256\",\"alg\":\"none\"}")),
            format!("{head}.{rest} trailing"),
            format!("{head}.{}", "A".repeat(MAX_TOKEN_LEN)),
        ] {
            let err = check(&garbage).unwrap_err();
            assert_eq!(err, AuthError::Malformed, "{garbage:.40}");
        }
        // A signed token whose payload is not JSON.
        let header = json!({"alg": "RS256", "kid": KID});
        let message = format!(
            "{}.{}",
            b64url(header.to_string().as_bytes()),
            b64url(b"[1")
        );
        let key = EncodingKey::from_rsa_pem(KEY_PEM.as_bytes()).unwrap();
        let sig = jsonwebtoken::crypto::sign(message.as_bytes(), &key, Algorithm::RS256).unwrap();
        assert_eq!(
            check(&format!("{message}.{sig}")).unwrap_err(),
            AuthError::Malformed
        );
    }

    #[derive(Debug)]
    struct HmacSource;
    impl KeySource for HmacSource {
        fn key(&self, _kid: &str) -> Option<VerifyingKey> {
            // Not possible through the public constructors.
            Some(VerifyingKey(DecodingKey::from_secret(
                PUBLIC_PEM.as_bytes(),
            )))
        }
    }

    #[test]
    fn key_errors_keep_their_source() {
        use std::error::Error as _;
        let err = StaticKeys::from_jwks_json("<html>maintenance</html>").unwrap_err();
        assert_eq!(
            err.to_string(),
            "signing keys are unusable: jwks is not a json key set"
        );
        let source = err.source().expect("the json error is kept");
        assert!(source.is::<serde_json::Error>(), "{source:?}");

        let err = VerifyingKey::from_rsa_components("not base64url!", "AQAB").unwrap_err();
        assert!(
            matches!(&err, AuthError::Keys(e) if e.source().is_some()),
            "{err:?}"
        );
        // Without a source, nothing to chain.
        let err = StaticKeys::from_jwks_json(r#"{"keys":[]}"#).unwrap_err();
        assert!(err.source().is_none());
    }

    #[test]
    fn non_rsa_keys_from_the_source_are_refused() {
        let v = BotFrameworkValidator::new(APP_ID, HmacSource);
        let err = v
            .validate_at(&format!("Bearer {}", sign(&claims())), NOW)
            .unwrap_err();
        assert!(matches!(err, AuthError::Keys(_)), "{err:?}");
    }

    #[test]
    fn shared_key_sources_work() {
        let keys = Arc::new(StaticKeys::from_jwks_json(JWKS).unwrap());
        let v = BotFrameworkValidator::new(APP_ID, Arc::clone(&keys));
        assert!(
            v.validate_at(&format!("Bearer {}", sign(&claims())), NOW)
                .is_ok()
        );
        let v = BotFrameworkValidator::new(APP_ID, &*keys);
        assert!(
            v.validate_at(&format!("Bearer {}", sign(&claims())), NOW)
                .is_ok()
        );
    }

    #[test]
    fn jwks_keeps_only_rsa_signature_keys() {
        let test_key: Value = serde_json::from_str::<Value>(JWKS).unwrap()["keys"][0].clone();
        let jwks = json!({"keys": [
            {"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"},
            {"kty": "EC", "kid": "ec", "crv": "P-256",
             "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
             "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"},
            with(with(test_key.clone(), "kid", json!("enc")), "use", json!("enc")),
            with(with(test_key.clone(), "kid", json!("ps")), "alg", json!("PS256")),
            with(with(test_key.clone(), "kid", json!("ops")), "key_ops", json!(["encrypt"])),
            with(with(test_key.clone(), "kid", json!("bad-n")), "n", json!("!!!")),
            {"kty": "RSA", "n": test_key["n"], "e": test_key["e"]},
            {"kty": "something-new", "kid": "future"},
            with(with(test_key.clone(), "kid", json!("rs")), "alg", json!("RS256")),
            test_key,
        ]});
        let keys = StaticKeys::from_jwks_json(&jwks.to_string()).unwrap();
        assert_eq!(keys.kids().collect::<Vec<_>>(), ["rs", KID]);
        assert!(keys.key("hmac").is_none() && keys.key("enc").is_none());

        for bad in ["", "{}", "[]", r#"{"keys": {}}"#, r#"{"keys": []}"#] {
            let err = StaticKeys::from_jwks_json(bad).unwrap_err();
            assert!(matches!(err, AuthError::Keys(_)), "{bad}: {err:?}");
        }
        let only_hmac = r#"{"keys": [{"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"}]}"#;
        assert!(StaticKeys::from_jwks_json(only_hmac).is_err());
    }

    #[test]
    fn debug_output_lists_kids_not_key_material() {
        let n = serde_json::from_str::<Value>(JWKS).unwrap()["keys"][0]["n"]
            .as_str()
            .unwrap()
            .to_owned();
        let keys = format!("{:?}", StaticKeys::from_jwks_json(JWKS).unwrap());
        assert_eq!(keys, r#"StaticKeys { kids: ["test-key-1"] }"#);
        let v = format!("{:?}", validator().with_tenant(TENANT));
        assert!(
            v.contains(APP_ID) && v.contains(TENANT) && v.contains("test-key-1"),
            "{v}"
        );
        assert!(!v.contains(&n[..32]), "{v}");
    }

    #[test]
    fn the_token_never_appears_in_errors_or_debug_output() {
        let good = sign(&claims());
        let cases = [
            sign(&with(claims(), "iss", json!("https://evil.example"))),
            sign(&with(claims(), "aud", json!("another-bot"))),
            sign(&with(claims(), "exp", json!(NOW - 3600))),
            sign(&with(claims(), "nbf", json!(NOW + 3600))),
            sign(&with(claims(), "exp", json!("soon"))),
            sign_with(KEY_PEM, Algorithm::RS256, Some("nope"), &claims()),
            sign_with(ATTACKER_PEM, Algorithm::RS256, Some(KID), &claims()),
            craft(&json!({"alg": "none", "kid": KID}), &claims(), None),
            format!("{good}x"),
            format!(
                "{}.{}",
                b64url(b"{\"alg\":"),
                good.split_once('.').unwrap().1
            ),
        ];
        let v = validator().with_tenant("other-tenant");
        let mut seen = Vec::new();
        for token in cases.iter().chain([&good]) {
            let err = v.validate_at(&format!("Bearer {token}"), NOW).unwrap_err();
            let outputs = [format!("{err}"), format!("{err:?}"), format!("{v:?}")];
            let signature = token.rsplit('.').next().unwrap();
            let payload = token.split('.').nth(1).unwrap();
            for out in outputs {
                assert!(!out.contains(token.as_str()), "{out}");
                assert!(signature.len() < 8 || !out.contains(signature), "{out}");
                assert!(!out.contains(payload), "{out}");
                let msg = format!("{err}");
                assert_eq!(msg, msg.to_lowercase());
            }
            seen.push(err);
        }
        let ok = validator()
            .validate_at(&format!("Bearer {good}"), NOW)
            .unwrap();
        let out = format!("{ok:?}");
        assert!(!out.contains(&good) && !out.contains(good.rsplit('.').next().unwrap()));
        assert_eq!(
            seen,
            [
                AuthError::WrongIssuer,
                AuthError::WrongAudience,
                AuthError::Expired,
                AuthError::NotYetValid,
                AuthError::Malformed,
                AuthError::UnknownKey,
                AuthError::BadSignature,
                AuthError::UnsupportedAlgorithm,
                AuthError::Malformed, // the signature is no longer base64url
                AuthError::Malformed,
                AuthError::WrongTenant,
            ]
        );
    }

    #[test]
    fn error_messages_are_lowercase() {
        for err in [
            AuthError::MissingBearer,
            AuthError::Malformed,
            AuthError::UnknownKey,
            AuthError::UnsupportedAlgorithm,
            AuthError::BadSignature,
            AuthError::Expired,
            AuthError::NotYetValid,
            AuthError::WrongIssuer,
            AuthError::WrongAudience,
            AuthError::WrongTenant,
            AuthError::Keys(KeysError::new("jwks holds no rsa signature key with a kid")),
        ] {
            let msg = err.to_string();
            assert_eq!(msg, msg.to_lowercase());
        }
    }
}
