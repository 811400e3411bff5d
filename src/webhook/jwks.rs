//! The key source that fetches Bot Framework's signing keys itself: [`JwksKeys`].

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use tokio::time::Instant;

use super::{AuthError, BotFrameworkValidator, KeySource, KeysError, StaticKeys, VerifyingKey};
use crate::audit::{AuditEvent, AuditKind, AuditSink};
use crate::auth::Authenticated;
use crate::transport::{HttpRequest, Transport};

/// When [`JwksKeys`] fetches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct JwksConfig {
    /// How old the keys may get before the schedule refreshes them. Default: 1 hour.
    pub refresh_every: Duration,
    /// The least time between two fetches caused by unknown `kid`s. Default: 60 seconds.
    pub min_refresh_interval: Duration,
    /// The largest OpenID configuration or JWKS document read. Default: 256 KiB.
    pub max_document_bytes: usize,
}

impl Default for JwksConfig {
    fn default() -> Self {
        Self {
            refresh_every: Duration::from_secs(60 * 60),
            min_refresh_interval: Duration::from_secs(60),
            max_document_bytes: 256 * 1024,
        }
    }
}

impl JwksConfig {
    /// Sets [`refresh_every`](Self::refresh_every).
    #[must_use]
    pub const fn with_refresh_every(mut self, every: Duration) -> Self {
        self.refresh_every = every;
        self
    }

    /// Sets [`min_refresh_interval`](Self::min_refresh_interval).
    #[must_use]
    pub const fn with_min_refresh_interval(mut self, interval: Duration) -> Self {
        self.min_refresh_interval = interval;
        self
    }

    /// Sets [`max_document_bytes`](Self::max_document_bytes).
    #[must_use]
    pub const fn with_max_document_bytes(mut self, bytes: usize) -> Self {
        self.max_document_bytes = bytes;
        self
    }
}

/// What a refresh changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct KeyRotation {
    /// Key ids new in this refresh.
    pub added: Vec<String>,
    /// Key ids no longer published.
    pub removed: Vec<String>,
}

impl KeyRotation {
    /// Whether the keys changed.
    pub fn rotated(&self) -> bool {
        !self.added.is_empty() || !self.removed.is_empty()
    }
}

/// A [`KeySource`] that fetches Bot Framework's signing keys itself: the OpenID configuration,
/// then the JWKS its `jwks_uri` names, through the crate's injected [`Transport`] (the core
/// gains no HTTP client).
///
/// The keys are cached. They are refreshed on a schedule ([`JwksKeys::refresh_if_due`], or the
/// loop [`JwksKeys::refresh_periodically`]) and when a token names a `kid` the cache does not
/// hold ([`BotFrameworkValidator::validate_refreshing`]); refreshes of the second kind are
/// rate-limited, so a flood of tokens with bogus `kid`s makes at most one fetch per
/// [`JwksConfig::min_refresh_interval`]. A refresh that fails (network, a bad document, a JWKS
/// without one usable key) keeps the last good keys. A refresh that changes the keys is a
/// *rotation*: logged with `tracing` and, with [`JwksKeys::with_audit`], recorded in the audit
/// trail ([`AuditKind::KeysRotated`]).
///
/// Cloning is cheap: clones share the cache.
///
/// # Example
///
/// ```no_run
/// # #[cfg(feature = "reqwest-0_13")]
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use recording_status::transports::reqwest_0_13::ReqwestTransport;
/// use recording_status::webhook::{BotFrameworkValidator, JwksKeys, OPENID_CONFIGURATION_URL};
///
/// let keys = JwksKeys::fetch(ReqwestTransport::new()?, OPENID_CONFIGURATION_URL).await?;
/// tokio::spawn({
///     let keys = keys.clone();
///     async move { keys.refresh_periodically().await }
/// });
/// let validator = BotFrameworkValidator::new("my-bot-app-id", keys);
/// // In the webhook handler: refreshes once (rate-limited) on an unknown `kid`.
/// let proof = validator.validate_refreshing("Bearer eyJ…").await;
/// # let _ = proof;
/// # Ok(())
/// # }
/// ```
pub struct JwksKeys<T> {
    inner: Arc<Inner<T>>,
}

struct Inner<T> {
    transport: T,
    openid_url: String,
    config: JwksConfig,
    keys: RwLock<Arc<StaticKeys>>,
    times: Mutex<Times>,
    /// One fetch at a time; callers that waited for it look at the times again.
    fetching: tokio::sync::Mutex<()>,
    /// Where rotations are recorded; shared by every clone, so it can be set after cloning.
    audit: Mutex<Option<Arc<dyn AuditSink>>>,
}

#[derive(Debug, Clone, Copy)]
struct Times {
    /// The last fetch that gave usable keys.
    success: Instant,
    /// The last fetch attempted, whatever its outcome.
    attempt: Instant,
}

impl<T> Clone for JwksKeys<T> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

impl<T> fmt::Debug for JwksKeys<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwksKeys")
            .field("openid_url", &self.inner.openid_url)
            .field("config", &self.inner.config)
            .field("keys", &*self.current())
            .finish_non_exhaustive()
    }
}

impl<T: Transport> JwksKeys<T> {
    /// Fetches the OpenID configuration at `openid_url` (Bot Framework's is
    /// [`OPENID_CONFIGURATION_URL`](super::OPENID_CONFIGURATION_URL)) and the JWKS it names,
    /// with the default [`JwksConfig`].
    ///
    /// # Errors
    /// [`AuthError::Keys`] when either document cannot be fetched or read, or the JWKS holds no
    /// usable RS256 key: without keys no notification can be authenticated.
    ///
    /// # Cancellation
    /// Dropping the future drops the fetch; nothing is kept.
    pub async fn fetch(transport: T, openid_url: &str) -> Result<Self, AuthError> {
        Self::fetch_with(transport, openid_url, JwksConfig::default()).await
    }

    /// [`fetch`](Self::fetch) with `config`.
    ///
    /// # Errors
    /// As [`fetch`](Self::fetch).
    ///
    /// # Cancellation
    /// As [`fetch`](Self::fetch).
    pub async fn fetch_with(
        transport: T,
        openid_url: &str,
        config: JwksConfig,
    ) -> Result<Self, AuthError> {
        let keys = download(&transport, openid_url, config.max_document_bytes).await?;
        let now = Instant::now();
        tracing::info!(kids = ?keys.kids().collect::<Vec<_>>(), "webhook signing keys fetched");
        Ok(Self {
            inner: Arc::new(Inner {
                transport,
                openid_url: openid_url.to_owned(),
                config,
                keys: RwLock::new(Arc::new(keys)),
                times: Mutex::new(Times {
                    success: now,
                    attempt: now,
                }),
                fetching: tokio::sync::Mutex::new(()),
                audit: Mutex::new(None),
            }),
        })
    }
}

impl<T> JwksKeys<T> {
    /// Records every rotation in `audit` ([`AuditKind::KeysRotated`]), for this value and all
    /// its clones (replacing any sink set before).
    #[must_use]
    pub fn with_audit(self, audit: Arc<dyn AuditSink>) -> Self {
        *self
            .inner
            .audit
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(audit);
        self
    }

    /// The keys held now.
    pub fn current(&self) -> Arc<StaticKeys> {
        self.inner
            .keys
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn times(&self) -> Times {
        *self
            .inner
            .times
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl<T: Transport> JwksKeys<T> {
    /// Fetches now, whatever the schedule. On success the cache holds the new keys and the
    /// change is returned (and logged and audited if it is a rotation); on failure the last
    /// good keys stay.
    ///
    /// # Errors
    /// [`AuthError::Keys`], saying what failed; the cache is unchanged.
    ///
    /// # Cancellation
    /// Dropping the future abandons the fetch and changes nothing; a later refresh fetches
    /// again.
    pub async fn refresh(&self) -> Result<KeyRotation, AuthError> {
        let _one = self.inner.fetching.lock().await;
        self.refresh_locked().await
    }

    /// Refreshes if the keys are older than [`JwksConfig::refresh_every`]; `None` if they are
    /// not.
    ///
    /// # Cancellation
    /// As [`refresh`](Self::refresh).
    pub async fn refresh_if_due(&self) -> Option<Result<KeyRotation, AuthError>> {
        let _one = self.inner.fetching.lock().await;
        if self.times().success.elapsed() < self.inner.config.refresh_every {
            return None;
        }
        Some(self.refresh_locked().await)
    }

    /// Refreshes after a token named a `kid` the cache does not hold, unless a fetch was
    /// attempted less than [`JwksConfig::min_refresh_interval`] ago (then nothing is fetched:
    /// a flood of bogus `kid`s costs at most one fetch per interval). Returns whether there are
    /// new keys to try: this call fetched them, or another caller did while this one waited
    /// for it (tokens signed with a new key arrive together, and all of them must pass).
    ///
    /// # Cancellation
    /// As [`refresh`](Self::refresh).
    pub async fn refresh_for_unknown_kid(&self) -> bool {
        let asked = Instant::now();
        let _one = self.inner.fetching.lock().await;
        let times = self.times();
        if times.success >= asked {
            // Another caller refreshed while this one waited (tokens signed with a new key
            // arrive together): its keys are the ones to try.
            return true;
        }
        if times.attempt.elapsed() < self.inner.config.min_refresh_interval {
            return false;
        }
        self.refresh_locked().await.is_ok()
    }

    /// Refreshes on the schedule, forever: spawn it (`tokio::spawn`) next to the webhook.
    /// Failures are logged and retried at [`JwksConfig::min_refresh_interval`]; the last good
    /// keys stay in use meanwhile.
    ///
    /// # Cancellation
    /// Dropping (or aborting) the future stops the schedule; the cache keeps its keys.
    pub async fn refresh_periodically(&self) {
        loop {
            let due = self.times().success + self.inner.config.refresh_every;
            let retry = self.times().attempt + self.inner.config.min_refresh_interval;
            tokio::time::sleep_until(due.max(retry)).await;
            // Errors are logged in `refresh_locked`.
            let _ = self.refresh_if_due().await;
        }
    }

    async fn refresh_locked(&self) -> Result<KeyRotation, AuthError> {
        let fetched = download(
            &self.inner.transport,
            &self.inner.openid_url,
            self.inner.config.max_document_bytes,
        )
        .await;
        let now = Instant::now();
        let mut times = self.times();
        times.attempt = now;
        let result = fetched.map(|keys| {
            times.success = now;
            let old = self.current();
            let rotation = KeyRotation {
                added: keys
                    .kids()
                    .filter(|k| old.key(k).is_none())
                    .map(str::to_owned)
                    .collect(),
                removed: old
                    .kids()
                    .filter(|k| keys.key(k).is_none())
                    .map(str::to_owned)
                    .collect(),
            };
            *self
                .inner
                .keys
                .write()
                .unwrap_or_else(PoisonError::into_inner) = Arc::new(keys);
            rotation
        });
        *self
            .inner
            .times
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = times;
        match &result {
            Ok(rotation) if rotation.rotated() => {
                tracing::info!(added = ?rotation.added, removed = ?rotation.removed,
                    "webhook signing keys rotated");
                let audit = self
                    .inner
                    .audit
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .clone();
                if let Some(audit) = audit {
                    let event = AuditEvent::now(
                        "",
                        AuditKind::KeysRotated {
                            added: rotation.added.clone(),
                            removed: rotation.removed.clone(),
                        },
                    );
                    if let Err(e) = audit.record(&event) {
                        tracing::error!(error = %e, "could not audit a key rotation");
                    }
                }
            }
            Ok(_) => tracing::debug!("webhook signing keys refreshed, unchanged"),
            Err(e) => {
                tracing::warn!(error = %e, "webhook signing keys not refreshed; the last good keys stay")
            }
        }
        result
    }
}

impl<T: Send + Sync> KeySource for JwksKeys<T> {
    fn key(&self, kid: &str) -> Option<VerifyingKey> {
        self.current().key(kid)
    }
}

impl<T: Transport> BotFrameworkValidator<JwksKeys<T>> {
    /// [`validate`](Self::validate); when the token names a `kid` the cache does not hold,
    /// refreshes the keys once ([`JwksKeys::refresh_for_unknown_kid`], rate-limited) and
    /// validates again.
    ///
    /// # Errors
    /// As [`validate`](Self::validate).
    ///
    /// # Cancellation
    /// Dropping the future abandons any refresh it started (the cache keeps its keys) and
    /// authenticates nothing.
    pub async fn validate_refreshing(
        &self,
        authorization: &str,
    ) -> Result<Authenticated, AuthError> {
        match self.validate(authorization) {
            Err(AuthError::UnknownKey) if self.keys().refresh_for_unknown_kid().await => {
                self.validate(authorization)
            }
            other => other,
        }
    }
}

/// GETs the OpenID configuration, then the JWKS its `jwks_uri` names.
async fn download<T: Transport>(
    transport: &T,
    openid_url: &str,
    max: usize,
) -> Result<StaticKeys, AuthError> {
    #[derive(serde::Deserialize)]
    struct OpenIdConfiguration {
        jwks_uri: String,
    }
    let config = get(transport, openid_url, max).await?;
    let config: OpenIdConfiguration = serde_json::from_slice(&config)
        .map_err(|e| KeysError::caused_by("the openid configuration has no jwks_uri", e))?;
    let (openid, jwks) = (scheme(openid_url), scheme(&config.jwks_uri));
    // The keys come over TLS, unless the configuration itself was fetched in the clear (a
    // loopback test server).
    if jwks != Some("https") && !(jwks == Some("http") && openid == Some("http")) {
        return Err(
            KeysError::new(format!("the jwks_uri {:?} is not https", config.jwks_uri)).into(),
        );
    }
    let jwks = get(transport, &config.jwks_uri, max).await?;
    let jwks =
        std::str::from_utf8(&jwks).map_err(|e| KeysError::caused_by("the jwks is not utf-8", e))?;
    StaticKeys::from_jwks_json(jwks)
}

fn scheme(url: &str) -> Option<&str> {
    url.split_once("://").map(|(scheme, _)| scheme)
}

async fn get<T: Transport>(transport: &T, url: &str, max: usize) -> Result<Vec<u8>, AuthError> {
    let request: HttpRequest = http::Request::get(url)
        .header(http::header::ACCEPT, "application/json")
        .body(Vec::new())
        .map_err(|e| KeysError::caused_by(format!("{url:?} is not a url"), e))?;
    let response = transport
        .send(request)
        .await
        .map_err(|e| KeysError::caused_by(format!("fetching {url}"), e))?;
    if !response.status().is_success() {
        return Err(KeysError::new(format!(
            "fetching {url}: http {}",
            response.status().as_u16()
        ))
        .into());
    }
    let body = response.into_body();
    if body.len() > max {
        return Err(KeysError::new(format!(
            "fetching {url}: {} bytes, over the {max}-byte bound",
            body.len()
        ))
        .into());
    }
    Ok(body)
}
