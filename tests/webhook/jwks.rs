//! `JwksKeys`: Bot Framework's signing keys fetched through the injected transport, cached,
//! refreshed on a schedule and on an unknown `kid` (rate-limited against forged `kid`s, never
//! against a key the issuer published before the token arrived), the last good keys kept when
//! a refresh fails, and rotations logged in the audit trail.

use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use recording_status::audit::{AuditKind, MemorySink};
use recording_status::transport::{HttpRequest, HttpResponse};
use recording_status::webhook::{AuthError, BotFrameworkValidator, JwksConfig, JwksKeys};

use crate::support::jwt::{APP_ID, JWKS as TEST_JWKS, KEY_PEM, bearer, unsigned_bearer as bogus};

const OPENID: &str = "https://login.example.test/v1/.well-known/OpenIdConfiguration";
const JWKS: &str = "https://login.example.test/v1/keys";

/// The test key's public half, as a JWK under `kid`.
fn jwk(kid: &str) -> serde_json::Value {
    let set: serde_json::Value = serde_json::from_str(TEST_JWKS).unwrap();
    let mut key = set["keys"][0].clone();
    key["kid"] = kid.into();
    key
}

fn jwks(kids: &[&str]) -> String {
    serde_json::json!({ "keys": kids.iter().map(|k| jwk(k)).collect::<Vec<_>>() }).to_string()
}

/// A token the issuer signed with the test key under `kid`.
fn token(kid: &str) -> String {
    bearer(KEY_PEM, kid, APP_ID)
}

/// A key server: the OpenID configuration, and whatever JWKS answer is set now. Counts fetches.
/// A JWKS fetch reads the document when it arrives; [`hold_next_fetch`](Self::hold_next_fetch)
/// keeps the next one's answer in flight after that, until the test lets it go.
#[derive(Clone)]
struct KeyServer {
    jwks: Arc<Mutex<(u16, String)>>,
    fetches: Arc<AtomicUsize>,
    hold: Arc<Mutex<Option<tokio::sync::oneshot::Receiver<()>>>>,
    /// How many JWKS fetches to come are answered `503` whatever is published.
    unavailable: Arc<AtomicUsize>,
}

impl KeyServer {
    fn new(kids: &[&str]) -> Self {
        Self {
            jwks: Arc::new(Mutex::new((200, jwks(kids)))),
            fetches: Arc::new(AtomicUsize::new(0)),
            hold: Arc::new(Mutex::new(None)),
            unavailable: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// The next `n` JWKS fetches are answered `503`.
    fn unavailable_for(&self, n: usize) {
        self.unavailable.store(n, Ordering::SeqCst);
    }

    /// The next JWKS fetch reads the document published then, and answers only once the
    /// returned sender is used (or dropped).
    fn hold_next_fetch(&self) -> tokio::sync::oneshot::Sender<()> {
        let (release, held) = tokio::sync::oneshot::channel();
        *self.hold.lock().unwrap() = Some(held);
        release
    }

    fn publish(&self, status: u16, body: impl Into<String>) {
        *self.jwks.lock().unwrap() = (status, body.into());
    }

    fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }

    fn transport(
        &self,
    ) -> impl Fn(HttpRequest) -> std::future::Ready<Result<HttpResponse, Infallible>>
    + Send
    + Sync
    + 'static {
        let server = self.clone();
        move |request: HttpRequest| std::future::ready(Ok(server.answer(&request)))
    }

    /// [`transport`](Self::transport), honouring [`hold_next_fetch`](Self::hold_next_fetch).
    fn holding_transport(
        &self,
    ) -> impl Fn(
        HttpRequest,
    ) -> std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<HttpResponse, Infallible>> + Send>,
    > + Send
    + Sync
    + 'static {
        let server = self.clone();
        move |request: HttpRequest| {
            let answer = server.answer(&request);
            let held = if *request.uri() == JWKS {
                server.hold.lock().unwrap().take()
            } else {
                None
            };
            Box::pin(async move {
                if let Some(held) = held {
                    let _ = held.await;
                }
                Ok(answer)
            })
        }
    }

    fn answer(&self, request: &HttpRequest) -> HttpResponse {
        assert_eq!(request.method(), http::Method::GET);
        let (status, body) = match request.uri().to_string().as_str() {
            OPENID => (
                200,
                serde_json::json!({ "issuer": "https://api.botframework.com", "jwks_uri": JWKS })
                    .to_string(),
            ),
            JWKS => {
                self.fetches.fetch_add(1, Ordering::SeqCst);
                let unavailable =
                    self.unavailable
                        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
                if unavailable.is_ok() {
                    (503, String::new())
                } else {
                    self.jwks.lock().unwrap().clone()
                }
            }
            _ => (404, String::new()),
        };
        http::Response::builder()
            .status(status)
            .body(body.into_bytes())
            .unwrap()
    }
}

fn config() -> JwksConfig {
    JwksConfig::default()
        .with_refresh_every(Duration::from_secs(3600))
        .with_min_refresh_interval(Duration::from_secs(60))
}

#[tokio::test(start_paused = true)]
async fn rotation_is_picked_up_on_an_unknown_kid_and_audited() {
    let server = KeyServer::new(&["old"]);
    let audit = Arc::new(MemorySink::default());
    let keys = JwksKeys::fetch_with(server.transport(), OPENID, config())
        .await
        .unwrap()
        .with_audit(audit.clone());
    let validator = BotFrameworkValidator::new(APP_ID, keys.clone());
    assert!(validator.validate_refreshing(&token("old")).await.is_ok());
    assert_eq!(server.fetches(), 1, "a known kid fetches nothing");

    // Microsoft rotates: "new" is published, "old" withdrawn.
    server.publish(200, jwks(&["new"]));
    tokio::time::advance(Duration::from_secs(61)).await;
    assert_eq!(
        validator.validate(&token("new")),
        Err(AuthError::UnknownKey)
    );
    assert!(validator.validate_refreshing(&token("new")).await.is_ok());
    assert_eq!(server.fetches(), 2);
    assert_eq!(
        validator.validate(&token("old")),
        Err(AuthError::UnknownKey),
        "a withdrawn key is refused"
    );
    let rotations: Vec<_> = audit
        .events()
        .into_iter()
        .filter_map(|e| match e.kind {
            AuditKind::KeysRotated { added, removed } => Some((added, removed)),
            _ => None,
        })
        .collect();
    assert_eq!(
        rotations,
        vec![(vec!["new".to_owned()], vec!["old".to_owned()])]
    );
}

#[tokio::test(start_paused = true)]
async fn the_schedule_refreshes_stale_keys() {
    let server = KeyServer::new(&["a"]);
    let keys = JwksKeys::fetch_with(server.transport(), OPENID, config())
        .await
        .unwrap();
    assert!(keys.refresh_if_due().await.is_none(), "fresh keys");
    server.publish(200, jwks(&["a", "b"]));
    let refresher = tokio::spawn({
        let keys = keys.clone();
        async move { keys.refresh_periodically().await }
    });
    tokio::time::sleep(Duration::from_secs(3601)).await;
    assert_eq!(server.fetches(), 2);
    assert_eq!(keys.current().kids().collect::<Vec<_>>(), ["a", "b"]);
    tokio::time::sleep(Duration::from_secs(3600)).await;
    assert_eq!(server.fetches(), 3, "once per period");
    refresher.abort();
}

/// The documented bound: forged `kid`s cost at most `FRUITLESS_FETCHES_PER_INTERVAL` (2)
/// fetches per interval, however many and however concurrent, and the budget comes back once the
/// interval has passed.
#[tokio::test(start_paused = true)]
async fn forged_kids_cost_at_most_two_fetches_per_interval() {
    assert_eq!(JwksKeys::<()>::FRUITLESS_FETCHES_PER_INTERVAL, 2);
    let server = KeyServer::new(&["a"]);
    let keys = JwksKeys::fetch_with(server.transport(), OPENID, config())
        .await
        .unwrap();
    let validator = Arc::new(BotFrameworkValidator::new(APP_ID, keys));
    // A flood of tokens with bogus kids, concurrently.
    let flood: Vec<_> = (0..500)
        .map(|i| {
            let validator = validator.clone();
            tokio::spawn(async move {
                validator
                    .validate_refreshing(&bogus(&format!("bogus-{i}")))
                    .await
            })
        })
        .collect();
    for task in flood {
        assert_eq!(task.await.unwrap(), Err(AuthError::UnknownKey));
    }
    assert!(
        server.fetches() <= 1 + 2,
        "at most two fetches for 500 unknown kids"
    );
    for i in 0..500 {
        let refused = validator
            .validate_refreshing(&bogus(&format!("more-{i}")))
            .await;
        assert_eq!(refused, Err(AuthError::UnknownKey));
    }
    assert_eq!(
        server.fetches(),
        1 + 2,
        "two within the interval, however many kids"
    );
    // The window slides: half an interval later the budget is still spent...
    tokio::time::advance(Duration::from_secs(30)).await;
    let _ = validator.validate_refreshing(&bogus("later")).await;
    assert_eq!(server.fetches(), 3);
    // ...and once the interval has passed since those fetches, it is back.
    tokio::time::advance(Duration::from_secs(31)).await;
    for i in 0..100 {
        let _ = validator
            .validate_refreshing(&bogus(&format!("again-{i}")))
            .await;
    }
    assert_eq!(server.fetches(), 5, "two again after the interval");
    // The real key works throughout.
    assert!(validator.validate(&token("a")).is_ok());
}

/// A fetch that brings the `kid` it was made for is a key the issuer published, not a forgery:
/// it spends none of the budget, so rotations in a row all pass. Once forged `kid`s have spent
/// the budget, a key published meanwhile waits for the window to pass, as documented.
#[tokio::test(start_paused = true)]
async fn a_fetch_that_brings_the_key_asked_for_costs_nothing() {
    let server = KeyServer::new(&["a"]);
    let keys = JwksKeys::fetch_with(server.transport(), OPENID, config())
        .await
        .unwrap();
    let validator = BotFrameworkValidator::new(APP_ID, keys);
    for (round, kid) in ["b", "c", "d"].into_iter().enumerate() {
        server.publish(200, jwks(&["a", kid]));
        assert!(validator.validate_refreshing(&token(kid)).await.is_ok());
        assert_eq!(server.fetches(), 2 + round);
    }
    let _ = validator.validate_refreshing(&bogus("forged-1")).await;
    let _ = validator.validate_refreshing(&bogus("forged-2")).await;
    let _ = validator.validate_refreshing(&bogus("forged-3")).await;
    assert_eq!(
        server.fetches(),
        4 + 2,
        "three rotations, then two forged fetches"
    );
    // The budget is spent: a key published now waits for the window, as documented.
    server.publish(200, jwks(&["a", "e"]));
    assert_eq!(
        validator.validate_refreshing(&token("e")).await,
        Err(AuthError::UnknownKey)
    );
    tokio::time::advance(Duration::from_secs(61)).await;
    assert!(validator.validate_refreshing(&token("e")).await.is_ok());
}

/// The first fetch (building the cache) counts against no limit: with the default
/// configuration, a key published right after it is fetched for the first token that names it
/// (counted against the 60-second interval, every such token would be refused for up to a
/// minute).
#[tokio::test]
async fn a_key_published_right_after_the_first_fetch_is_accepted_with_the_default_config() {
    let server = KeyServer::new(&["old"]);
    let keys = JwksKeys::fetch(server.transport(), OPENID).await.unwrap();
    let validator = BotFrameworkValidator::new(APP_ID, keys);
    server.publish(200, jwks(&["old", "new"]));
    assert_eq!(
        validator
            .validate_refreshing(&token("new"))
            .await
            .map(|_| ()),
        Ok(())
    );
    assert_eq!(server.fetches(), 2);
}

/// The signer publishes a new key and signs with it at the same instant, while a refresh that
/// read the old document is still in flight. The token's caller must not trust that refresh
/// (it finished after the caller asked, but started before the key existed): it waits for it,
/// then fetches again. Whatever started the refresh in flight: the schedule or an explicit
/// `refresh`, a forged `kid`, or another caller.
#[tokio::test(start_paused = true)]
async fn a_key_published_while_a_refresh_is_in_flight_is_accepted() {
    #[derive(Debug, Clone, Copy)]
    enum InFlight {
        Refresh,
        ForgedKid,
    }
    for in_flight in [InFlight::Refresh, InFlight::ForgedKid] {
        let server = KeyServer::new(&["old"]);
        let keys = JwksKeys::fetch_with(server.holding_transport(), OPENID, config())
            .await
            .unwrap();
        let validator = Arc::new(BotFrameworkValidator::new(APP_ID, keys.clone()));

        // A refresh reads the JWKS (only "old") and stays in flight.
        let release = server.hold_next_fetch();
        let first = tokio::spawn({
            let (keys, validator) = (keys.clone(), validator.clone());
            async move {
                match in_flight {
                    InFlight::Refresh => {
                        keys.refresh().await.unwrap();
                    }
                    InFlight::ForgedKid => {
                        let refused = validator.validate_refreshing(&bogus("forged")).await;
                        assert_eq!(refused, Err(AuthError::UnknownKey));
                    }
                }
            }
        });
        while server.fetches() < 2 {
            tokio::task::yield_now().await;
        }

        // Now the signer publishes "new" and signs with it; the token reaches the webhook.
        server.publish(200, jwks(&["old", "new"]));
        let genuine = tokio::spawn({
            let validator = validator.clone();
            async move { validator.validate_refreshing(&token("new")).await }
        });
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        release.send(()).unwrap();
        first.await.unwrap();
        assert!(
            genuine.await.unwrap().is_ok(),
            "{in_flight:?}: the genuine token was refused"
        );
        assert_eq!(
            server.fetches(),
            3,
            "{in_flight:?}: one fetch after the one in flight"
        );
    }
}

/// A caller dropped while its fetch is in flight (the webhook request's sender gave up, under
/// load) abandons only its wait: the fetch completes and its keys serve the callers after it.
/// A fetch cancelled with the request, under load, twice, would spend the budget, and every
/// notification signed with the new key would be refused for the rest of the interval.
#[tokio::test(start_paused = true)]
async fn a_dropped_caller_does_not_take_the_fetch_with_it() {
    let server = KeyServer::new(&["old"]);
    let keys = JwksKeys::fetch_with(server.holding_transport(), OPENID, config())
        .await
        .unwrap();
    let validator = Arc::new(BotFrameworkValidator::new(APP_ID, keys));
    server.publish(200, jwks(&["old", "new"]));
    let release = server.hold_next_fetch();
    let impatient = tokio::spawn({
        let validator = validator.clone();
        async move { validator.validate_refreshing(&token("new")).await }
    });
    while server.fetches() < 2 {
        tokio::task::yield_now().await;
    }
    impatient.abort();
    assert!(impatient.await.unwrap_err().is_cancelled());
    release.send(()).unwrap();
    // The fetch goes on and brings the key; the callers after it need none.
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    assert!(validator.validate(&token("new")).is_ok());
    assert!(validator.validate_refreshing(&token("new")).await.is_ok());
    assert_eq!(server.fetches(), 2);
}

/// Cancelled callers cannot make fetches unbounded: every fetch they start completes and
/// counts against the budget like any other.
#[tokio::test(start_paused = true)]
async fn cancelled_callers_with_forged_kids_still_cost_two_fetches() {
    let server = KeyServer::new(&["a"]);
    let keys = JwksKeys::fetch_with(server.holding_transport(), OPENID, config())
        .await
        .unwrap();
    let validator = Arc::new(BotFrameworkValidator::new(APP_ID, keys));
    for i in 0..10 {
        let release = server.hold_next_fetch();
        let attempt = tokio::spawn({
            let validator = validator.clone();
            async move {
                validator
                    .validate_refreshing(&bogus(&format!("x{i}")))
                    .await
            }
        });
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        attempt.abort();
        let _ = attempt.await;
        drop(release);
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
    }
    assert_eq!(
        server.fetches(),
        1 + 2,
        "ten cancelled callers, two fetches"
    );
}

/// A key server that fails for a moment (the transport, a `503`) is tried again within the
/// same fetch: a genuine token is not refused for it. One that keeps failing is `Keys` (answer
/// `500`, the sender may try again), not `UnknownKey` (`401`, the token's fault).
#[tokio::test(start_paused = true)]
async fn a_key_server_failing_for_a_moment_is_tried_again() {
    let server = KeyServer::new(&["old"]);
    let keys = JwksKeys::fetch_with(server.transport(), OPENID, config())
        .await
        .unwrap();
    let validator = BotFrameworkValidator::new(APP_ID, keys);
    server.publish(200, jwks(&["old", "new"]));
    server.unavailable_for(2);
    assert!(validator.validate_refreshing(&token("new")).await.is_ok());
    assert_eq!(
        server.fetches(),
        1 + 3,
        "two 503s, then the keys, in one fetch"
    );

    server.publish(200, jwks(&["old", "new", "newer"]));
    server.unavailable_for(100);
    let error = validator.validate_refreshing(&token("newer")).await;
    assert!(
        matches!(&error, Err(AuthError::Keys(e)) if e.message().contains("http 503")),
        "{error:?}"
    );
    assert_eq!(server.fetches(), 4 + 4, "four tries, then the fetch fails");
}

/// A key server that never answers cannot hold the keys' lock forever: the fetch fails at
/// `fetch_timeout`, the last good keys stay, and later callers are answered.
#[tokio::test(start_paused = true)]
async fn a_hung_key_server_times_out() {
    let server = KeyServer::new(&["a"]);
    let keys = JwksKeys::fetch_with(
        server.holding_transport(),
        OPENID,
        config().with_fetch_timeout(Duration::from_secs(5)),
    )
    .await
    .unwrap();
    let validator = BotFrameworkValidator::new(APP_ID, keys.clone());
    let _never = server.hold_next_fetch();
    let refused = validator.validate_refreshing(&bogus("hung")).await;
    assert!(
        matches!(&refused, Err(AuthError::Keys(e)) if e.message().contains("timeout")),
        "{refused:?}"
    );
    let error = keys.refresh().await;
    assert!(error.is_ok(), "the next fetch is not held: {error:?}");
    assert!(validator.validate(&token("a")).is_ok());
}

#[tokio::test(start_paused = true)]
async fn a_failed_refresh_keeps_the_last_good_keys() {
    let server = KeyServer::new(&["a"]);
    let keys = JwksKeys::fetch_with(server.transport(), OPENID, config())
        .await
        .unwrap();
    let validator = BotFrameworkValidator::new(APP_ID, keys.clone());
    for (status, body, why) in [
        (500, "", "http 500"),
        (200, "<html>maintenance</html>", "not a json key set"),
        (200, r#"{"keys":[]}"#, "no rsa signature key"),
        (
            200,
            r#"{"keys":[{"kty":"EC","kid":"ec","crv":"P-256","x":"AAAA","y":"AAAA"}]}"#,
            "no rsa signature key",
        ),
        (
            200,
            r#"{"keys":[{"kty":"RSA","kid":"enc","use":"enc","n":"AQAB","e":"AQAB"}]}"#,
            "no rsa signature key",
        ),
    ] {
        server.publish(status, body);
        let error = keys.refresh().await.unwrap_err();
        assert!(
            matches!(&error, AuthError::Keys(e) if e.message().contains(why)),
            "{error:?} should say {why}"
        );
        assert!(validator.validate(&token("a")).is_ok(), "still served");
    }
    // A body over the bound is refused, not read.
    server.publish(200, " ".repeat(300 * 1024));
    assert!(keys.refresh().await.is_err());
    assert!(validator.validate(&token("a")).is_ok());
}

#[tokio::test]
async fn a_first_fetch_without_usable_keys_fails_clearly() {
    let server = KeyServer::new(&[]);
    server.publish(200, r#"{"keys":[{"kty":"oct","kid":"x","k":"c2VjcmV0"}]}"#);
    let error = JwksKeys::fetch(server.transport(), OPENID)
        .await
        .unwrap_err();
    assert!(matches!(error, AuthError::Keys(_)), "{error:?}");

    // A jwks_uri in the clear, named by a configuration fetched over TLS, is refused.
    let plain = |request: HttpRequest| {
        let body = if request.uri().path().ends_with("OpenIdConfiguration") {
            serde_json::json!({ "jwks_uri": "http://login.example.test/v1/keys" }).to_string()
        } else {
            jwks(&["a"])
        };
        std::future::ready(Ok::<_, Infallible>(http::Response::new(body.into_bytes())))
    };
    let error = JwksKeys::fetch(plain, OPENID).await.unwrap_err();
    assert!(
        matches!(&error, AuthError::Keys(e) if e.message().contains("not https")),
        "{error:?}"
    );
}

/// Tokens signed with a new key arrive together: while one of them refreshes, the others wait
/// for that refresh and then validate with its keys, instead of being refused.
#[tokio::test(start_paused = true)]
async fn notifications_signed_with_a_new_key_all_pass_while_one_refreshes() {
    let server = KeyServer::new(&["old"]);
    let inner = server.transport();
    // A key server that takes 10 ms to answer, so that the validations overlap the fetch.
    let slow = move |request: HttpRequest| {
        let answer = inner(request);
        async move {
            tokio::time::sleep(Duration::from_millis(10)).await;
            answer.await
        }
    };
    let keys = JwksKeys::fetch_with(slow, OPENID, config()).await.unwrap();
    let validator = Arc::new(BotFrameworkValidator::new(APP_ID, keys));
    server.publish(200, jwks(&["old", "new"]));
    tokio::time::advance(Duration::from_secs(61)).await;
    let token = token("new");
    let together: Vec<_> = (0..20)
        .map(|_| {
            let (validator, token) = (validator.clone(), token.clone());
            tokio::spawn(async move { validator.validate_refreshing(&token).await })
        })
        .collect();
    for task in together {
        assert!(task.await.unwrap().is_ok());
    }
    assert_eq!(server.fetches(), 2, "one refresh served all twenty");
}

/// A sink given after the keys were cloned (into a validator, a refresher task) still records
/// the rotations every clone picks up.
#[tokio::test(start_paused = true)]
async fn a_sink_set_after_cloning_records_rotations() {
    let server = KeyServer::new(&["old"]);
    let keys = JwksKeys::fetch_with(server.transport(), OPENID, config())
        .await
        .unwrap();
    let clone = keys.clone();
    let audit = Arc::new(MemorySink::default());
    let keys = keys.with_audit(audit.clone());
    server.publish(200, jwks(&["new"]));
    clone.refresh().await.unwrap();
    drop(keys);
    assert!(
        audit
            .events()
            .iter()
            .any(|e| matches!(e.kind, AuditKind::KeysRotated { .. })),
        "the rotation a clone picked up is audited"
    );
}
