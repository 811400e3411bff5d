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
//! web framework works the same way: the hub takes the request's headers and body).
//!
//! | outcome | answer | why |
//! |---|---|---|
//! | the hub took the body ([`Hub::deliver_message`](crate::driver::Hub::deliver_message) returned `Ok`, a resend included) | `202 Accepted` | the updates are routed; entries it could not use are audited, not errors |
//! | the token does not validate ([`AuthError`] other than `Keys`) | `401 Unauthorized` | the body is not read (Microsoft's calling SDK answers `403 Forbidden` here; either refuses the request) |
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
//!     // Graph resends a message it thinks was lost: each is applied once.
//!     match webhook.hub.deliver_message(&proof, &headers, &body) {
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
mod tests;
