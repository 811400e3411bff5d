//! The key source that fetches Bot Framework's signing keys itself: [`JwksKeys`].

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use tokio::time::Instant;

use super::{
    AuthError, BotFrameworkValidator, KeySource, KeysError, StaticKeys, VerifyingKey, token_kid,
};
use crate::audit::{AuditEvent, AuditKind, AuditSink};
use crate::auth::Authenticated;
use crate::transport::{HttpRequest, Transport};

/// When [`JwksKeys`] fetches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct JwksConfig {
    /// How old the keys may get before the schedule refreshes them. Default: 1 hour.
    pub refresh_every: Duration,
    /// The window of the rate limit on unknown `kid`s: at most
    /// [`JwksKeys::FRUITLESS_FETCHES_PER_INTERVAL`] fetches that do not bring the `kid` asked
    /// for start within any such window. Also the pause before the schedule retries a failed
    /// fetch. Default: 60 seconds.
    pub min_refresh_interval: Duration,
    /// The largest OpenID configuration or JWKS document read. Default: 256 KiB.
    pub max_document_bytes: usize,
    /// How long one fetch may take, its retries included, before it counts as failed.
    /// Default: 30 seconds: under load a bot may wait seconds for its own transport.
    pub fetch_timeout: Duration,
}

impl Default for JwksConfig {
    fn default() -> Self {
        Self {
            refresh_every: Duration::from_secs(60 * 60),
            min_refresh_interval: Duration::from_secs(60),
            max_document_bytes: 256 * 1024,
            fetch_timeout: Duration::from_secs(30),
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

    /// Sets [`fetch_timeout`](Self::fetch_timeout).
    #[must_use]
    pub const fn with_fetch_timeout(mut self, timeout: Duration) -> Self {
        self.fetch_timeout = timeout;
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
/// hold ([`BotFrameworkValidator::validate_refreshing`]). A refresh that fails (network, a bad
/// document, a JWKS without one usable key) keeps the last good keys. A refresh that changes
/// the keys is a *rotation*: logged with `tracing` and, with [`JwksKeys::with_audit`], recorded
/// in the audit trail ([`AuditKind::KeysRotated`]).
///
/// # Key rotation
///
/// A token signed with a key its issuer published before the token reached the webhook is
/// accepted, whatever the timing of other refreshes:
///
/// - a caller with an unknown `kid` trusts only a fetch that *started* after it asked (a fetch
///   already under way may have read the JWKS before the key was published: the caller waits
///   for it, then fetches again if it did not bring the key);
/// - callers that ask while a fetch is under way wait for it, and one fetch serves all of them;
/// - the fetch made when the keys are first fetched counts against no limit, nor do the
///   schedule's.
///
/// # The bound on forged `kid`s
///
/// Fetches caused by unknown `kid`s are rate-limited by what they bring: at most
/// [`FRUITLESS_FETCHES_PER_INTERVAL`](Self::FRUITLESS_FETCHES_PER_INTERVAL) (2) fetches that do
/// not bring the `kid` they were made for (or fail, or are cancelled) start within any
/// [`JwksConfig::min_refresh_interval`]. A flood of tokens with forged `kid`s, however large
/// and however concurrent, therefore costs at most 2 fetches per interval, plus one per key the
/// issuer really publishes (a fetch that brings the `kid` it was made for is not counted: only
/// the issuer can make that happen). While that budget is spent, a token naming a key
/// published since the last fetch is refused ([`AuthError::UnknownKey`]); with no forged
/// `kid`s in the interval, that never happens.
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
    fetches: Mutex<Fetches>,
    /// One fetch at a time; callers that waited for it look at the keys and fetches again.
    /// Shared with the task a fetch for an unknown `kid` runs in.
    fetching: Arc<tokio::sync::Mutex<()>>,
    /// Where rotations are recorded; shared by every clone, so it can be set after cloning.
    audit: Mutex<Option<Arc<dyn AuditSink>>>,
}

/// The fetches made so far: which of them a waiting caller may trust, and what is left of the
/// budget of fetches for unknown `kid`s.
#[derive(Debug, Clone)]
struct Fetches {
    /// How many fetches have started, the first one included; a fetch is known by its number.
    started: u64,
    /// The number of the last fetch that finished, with keys or without.
    finished: u64,
    /// When the fetch whose keys are held started: the schedule counts the keys' age from it.
    held_since: Instant,
    /// When the last fetch started, whatever came of it: the schedule retries from it.
    attempted: Instant,
    /// When the latest fetches for an unknown `kid` that did not bring it started (at most
    /// [`JwksKeys::FRUITLESS_FETCHES_PER_INTERVAL`] of them, oldest first).
    fruitless: VecDeque<Instant>,
    /// Why the last fetch that finished failed; `None` if it brought keys.
    failure: Option<AuthError>,
}

impl Fetches {
    /// Whether a fetch for an unknown `kid` may start at `now`.
    fn may_fetch_for_unknown_kid(&self, now: Instant, interval: Duration) -> bool {
        let recent = self
            .fruitless
            .iter()
            .filter(|started| now.saturating_duration_since(**started) < interval)
            .count();
        recent < JwksKeys::<()>::FRUITLESS_FETCHES_PER_INTERVAL
    }
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
        let started = Instant::now();
        let keys = download(&transport, openid_url, config.max_document_bytes)
            .await
            .map_err(|failure| failure.error)?;
        tracing::info!(kids = ?keys.kids().collect::<Vec<_>>(), "webhook signing keys fetched");
        Ok(Self {
            inner: Arc::new(Inner {
                transport,
                openid_url: openid_url.to_owned(),
                config,
                keys: RwLock::new(Arc::new(keys)),
                // The first fetch counts against no budget: a key published right after it
                // must be fetchable at once.
                fetches: Mutex::new(Fetches {
                    started: 1,
                    finished: 1,
                    held_since: started,
                    attempted: started,
                    fruitless: VecDeque::new(),
                    failure: None,
                }),
                fetching: Arc::new(tokio::sync::Mutex::new(())),
                audit: Mutex::new(None),
            }),
        })
    }
}

impl<T> JwksKeys<T> {
    /// How many fetches for unknown `kid`s that do not bring the `kid` they were made for may
    /// start within one [`JwksConfig::min_refresh_interval`]: the bound on what forged `kid`s
    /// cost (see [the type's docs](JwksKeys#the-bound-on-forged-kids)).
    pub const FRUITLESS_FETCHES_PER_INTERVAL: usize = 2;

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

    fn fetches(&self) -> std::sync::MutexGuard<'_, Fetches> {
        self.inner
            .fetches
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
        self.refresh_locked(None).await
    }

    /// Refreshes if the keys are older than [`JwksConfig::refresh_every`]; `None` if they are
    /// not.
    ///
    /// # Cancellation
    /// As [`refresh`](Self::refresh).
    pub async fn refresh_if_due(&self) -> Option<Result<KeyRotation, AuthError>> {
        let _one = self.inner.fetching.lock().await;
        if self.fetches().held_since.elapsed() < self.inner.config.refresh_every {
            return None;
        }
        Some(self.refresh_locked(None).await)
    }

    /// Refreshes on the schedule, forever: spawn it (`tokio::spawn`) next to the webhook.
    /// Failures are logged and retried at [`JwksConfig::min_refresh_interval`]; the last good
    /// keys stay in use meanwhile.
    ///
    /// # Cancellation
    /// Dropping (or aborting) the future stops the schedule; the cache keeps its keys.
    pub async fn refresh_periodically(&self) {
        loop {
            let (due, retry) = {
                let fetches = self.fetches();
                (
                    fetches.held_since + self.inner.config.refresh_every,
                    fetches.attempted + self.inner.config.min_refresh_interval,
                )
            };
            tokio::time::sleep_until(due.max(retry)).await;
            // Errors are logged in `refresh_locked`.
            let _ = self.refresh_if_due().await;
        }
    }

    /// Fetches, under `fetching`. `for_kid`: the unknown `kid` this fetch is made for, which
    /// it counts against the budget unless it brings that `kid`.
    async fn refresh_locked(&self, for_kid: Option<&str>) -> Result<KeyRotation, AuthError> {
        let started = Instant::now();
        let number = {
            let mut fetches = self.fetches();
            fetches.started += 1;
            fetches.attempted = started;
            if for_kid.is_some() {
                // Counted before it starts, so that a fetch cut short (the runtime shutting
                // down) counts too; taken back below if it brings the `kid`.
                fetches.fruitless.push_back(started);
                if fetches.fruitless.len() > Self::FRUITLESS_FETCHES_PER_INTERVAL {
                    fetches.fruitless.pop_front();
                }
            }
            fetches.started
        };
        let fetched = tokio::time::timeout(self.inner.config.fetch_timeout, self.download())
            .await
            .unwrap_or_else(|_| {
                Err(KeysError::new(format!(
                    "no keys within the {:?} fetch timeout",
                    self.inner.config.fetch_timeout
                ))
                .into())
            });
        let result = fetched.map(|keys| {
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
        {
            let mut fetches = self.fetches();
            fetches.finished = number;
            fetches.failure = result.as_ref().err().cloned();
            if result.is_ok() {
                fetches.held_since = started;
            }
            if for_kid.is_some_and(|kid| self.current().key(kid).is_some()) {
                // It brought what a token named: a key the issuer published, not a forgery.
                fetches.fruitless.pop_back();
            }
        }
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

impl<T: Transport + 'static> JwksKeys<T> {
    /// Makes sure the cache holds `kid` if its issuer published it before this call: `Ok(true)`
    /// if it does now, `Ok(false)` if it was not published (or the
    /// [budget](JwksKeys#the-bound-on-forged-kids) is spent). A token naming a `kid` the cache
    /// does not hold calls this (through [`BotFrameworkValidator::validate_refreshing`]).
    ///
    /// It trusts only a fetch that started after it was called: it waits for a fetch under way
    /// (whose keys may serve), then fetches again if the `kid` is still unknown and no fetch
    /// that started after it was called has come back. That fetch is subject to the
    /// [bound on forged `kid`s](JwksKeys#the-bound-on-forged-kids): when the budget is spent,
    /// nothing is fetched and the answer is `Ok(false)`.
    ///
    /// The fetch runs in a task of its own on the current Tokio runtime (inline when there is
    /// none), so that the callers waiting for it are served whatever becomes of the one that
    /// started it: a webhook request whose sender gave up must not take the keys with it.
    ///
    /// # Errors
    /// [`AuthError::Keys`] if the fetch this call relied on failed, its retries included: the
    /// keys could not be had, which is the bot's side's fault, not the token's (answer `500`, so
    /// the sender may try again).
    ///
    /// # Cancellation
    /// Dropping the future abandons the wait, never the fetch: a fetch once started completes
    /// (within [`JwksConfig::fetch_timeout`]), its keys serve every later caller, and it counts
    /// against the budget as any other.
    pub async fn refresh_for_unknown_kid(&self, kid: &str) -> Result<bool, AuthError> {
        let asked = self.fetches().started;
        let one = self.inner.fetching.clone().lock_owned().await;
        if self.current().key(kid).is_some() {
            // A fetch another caller made while this one waited brought it.
            return Ok(true);
        }
        {
            let fetches = self.fetches();
            if fetches.finished > asked {
                // A fetch that started after this call came back without the key, or failed:
                // the issuer had not published it when this call was made, or it could not be
                // told.
                return match &fetches.failure {
                    Some(failure) => Err(failure.clone()),
                    None => Ok(false),
                };
            }
            if !fetches
                .may_fetch_for_unknown_kid(Instant::now(), self.inner.config.min_refresh_interval)
            {
                tracing::debug!(
                    "unknown kid not fetched: the budget of fetches for unknown kids is spent"
                );
                return Ok(false);
            }
        }
        let fetch = {
            let (this, kid) = (self.clone(), kid.to_owned());
            async move {
                let fetched = this.refresh_locked(Some(&kid)).await;
                drop(one);
                fetched.map(|_| this.current().key(&kid).is_some())
            }
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => runtime.spawn(fetch).await.unwrap_or_else(|_| {
                Err(KeysError::new("the key fetch panicked (in the transport)").into())
            }),
            Err(_) => fetch.await,
        }
    }
}

impl<T: Send + Sync> KeySource for JwksKeys<T> {
    fn key(&self, kid: &str) -> Option<VerifyingKey> {
        self.current().key(kid)
    }
}

impl<T: Transport + 'static> BotFrameworkValidator<JwksKeys<T>> {
    /// [`validate`](Self::validate); when the token names a `kid` the cache does not hold,
    /// makes sure the keys are fetched after the token arrived
    /// ([`JwksKeys::refresh_for_unknown_kid`], rate-limited against forged `kid`s) and
    /// validates again. A token signed with a key its issuer published before it arrived is
    /// accepted (see [`JwksKeys`]'s key rotation).
    ///
    /// # Errors
    /// As [`validate`](Self::validate); [`AuthError::Keys`] when the keys had to be fetched and
    /// could not be (answer `500`: the sender may try again).
    ///
    /// # Cancellation
    /// Dropping the future authenticates nothing; a fetch it started goes on and serves later
    /// callers (see [`JwksKeys::refresh_for_unknown_kid`]).
    pub async fn validate_refreshing(
        &self,
        authorization: &str,
    ) -> Result<Authenticated, AuthError> {
        match self.validate(authorization) {
            Err(AuthError::UnknownKey) => {
                let Some(kid) = token_kid(authorization) else {
                    return Err(AuthError::UnknownKey);
                };
                if self.keys().refresh_for_unknown_kid(&kid).await? {
                    self.validate(authorization)
                } else {
                    Err(AuthError::UnknownKey)
                }
            }
            other => other,
        }
    }
}

/// How many times one fetch tries when the documents cannot be had for a reason that may pass
/// (the transport failed, `429`, `5xx`), and the pause before the first retry (doubling after).
const FETCH_TRIES: u32 = 4;
const FIRST_RETRY_PAUSE: Duration = Duration::from_millis(250);

impl<T: Transport> JwksKeys<T> {
    /// [`download`], retried while its failure may pass: at most [`FETCH_TRIES`] tries, the
    /// whole bounded by the caller's [`JwksConfig::fetch_timeout`].
    async fn download(&self) -> Result<StaticKeys, AuthError> {
        let mut pause = FIRST_RETRY_PAUSE;
        let mut tries = 1;
        loop {
            let inner = &self.inner;
            match download(
                &inner.transport,
                &inner.openid_url,
                inner.config.max_document_bytes,
            )
            .await
            {
                Ok(keys) => return Ok(keys),
                Err(Failure { error, transient }) if transient && tries < FETCH_TRIES => {
                    tracing::info!(%error, tries, "webhook signing keys not fetched; trying again");
                    tokio::time::sleep(pause).await;
                    pause *= 2;
                    tries += 1;
                }
                Err(Failure { error, .. }) => return Err(error),
            }
        }
    }
}

/// Why the documents could not be had, and whether trying again may help.
struct Failure {
    error: AuthError,
    transient: bool,
}

impl From<AuthError> for Failure {
    fn from(error: AuthError) -> Self {
        Self {
            error,
            transient: false,
        }
    }
}

impl From<KeysError> for Failure {
    fn from(error: KeysError) -> Self {
        AuthError::from(error).into()
    }
}

/// GETs the OpenID configuration, then the JWKS its `jwks_uri` names.
async fn download<T: Transport>(
    transport: &T,
    openid_url: &str,
    max: usize,
) -> Result<StaticKeys, Failure> {
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
    Ok(StaticKeys::from_jwks_json(jwks)?)
}

fn scheme(url: &str) -> Option<&str> {
    url.split_once("://").map(|(scheme, _)| scheme)
}

async fn get<T: Transport>(transport: &T, url: &str, max: usize) -> Result<Vec<u8>, Failure> {
    let request: HttpRequest = http::Request::get(url)
        .header(http::header::ACCEPT, "application/json")
        .body(Vec::new())
        .map_err(|e| KeysError::caused_by(format!("{url:?} is not a url"), e))?;
    let response = transport.send(request).await.map_err(|e| Failure {
        error: KeysError::caused_by(format!("fetching {url}"), e).into(),
        transient: true,
    })?;
    let status = response.status();
    if !status.is_success() {
        return Err(Failure {
            error: KeysError::new(format!("fetching {url}: http {}", status.as_u16())).into(),
            transient: status.is_server_error() || status == http::StatusCode::TOO_MANY_REQUESTS,
        });
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
