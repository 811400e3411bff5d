//! `JwksKeys`: Bot Framework's signing keys fetched through the injected transport, cached,
//! refreshed on a schedule and on an unknown `kid` (rate-limited), the last good keys kept when
//! a refresh fails, and rotations logged in the audit trail.
#![cfg(all(feature = "jwt", feature = "driver"))]

use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use recording_status::audit::{AuditKind, MemorySink};
use recording_status::transport::{HttpRequest, HttpResponse};
use recording_status::webhook::{AuthError, BotFrameworkValidator, JwksConfig, JwksKeys};

const OPENID: &str = "https://login.example.test/v1/.well-known/OpenIdConfiguration";
const JWKS: &str = "https://login.example.test/v1/keys";
const APP_ID: &str = "8d5bd6c2-0000-4000-8000-000000000001";
const KEY_PEM: &str = include_str!("data/webhook_test_key.pem");

/// The test key's public half, as a JWK under `kid`.
fn jwk(kid: &str) -> serde_json::Value {
    let set: serde_json::Value =
        serde_json::from_str(include_str!("data/webhook_test_jwks.json")).unwrap();
    let mut key = set["keys"][0].clone();
    key["kid"] = kid.into();
    key
}

fn jwks(kids: &[&str]) -> String {
    serde_json::json!({ "keys": kids.iter().map(|k| jwk(k)).collect::<Vec<_>>() }).to_string()
}

fn token(kid: &str) -> String {
    let now = chrono::Utc::now().timestamp();
    let claims = serde_json::json!({
        "iss": "https://api.botframework.com", "aud": APP_ID,
        "exp": now + 600, "nbf": now - 10,
    });
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(kid.into());
    let key = EncodingKey::from_rsa_pem(KEY_PEM.as_bytes()).unwrap();
    format!("Bearer {}", encode(&header, &claims, &key).unwrap())
}

/// A token with a bogus `kid`, as an attacker floods the webhook with: well-formed, but signed
/// by nobody (it is refused at the `kid`, before any signature check).
fn bogus(kid: &str) -> String {
    let header = serde_json::json!({ "alg": "RS256", "typ": "JWT", "kid": kid }).to_string();
    let claims = serde_json::json!({ "iss": "https://api.botframework.com", "aud": APP_ID, "exp": 4_000_000_000_i64 }).to_string();
    format!(
        "Bearer {}.{}.c2lnbmF0dXJl",
        base64url(header.as_bytes()),
        base64url(claims.as_bytes())
    )
}

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

/// A key server: the OpenID configuration, and whatever JWKS answer is set now. Counts fetches.
#[derive(Clone)]
struct KeyServer {
    jwks: Arc<Mutex<(u16, String)>>,
    fetches: Arc<AtomicUsize>,
}

impl KeyServer {
    fn new(kids: &[&str]) -> Self {
        Self {
            jwks: Arc::new(Mutex::new((200, jwks(kids)))),
            fetches: Arc::new(AtomicUsize::new(0)),
        }
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
        move |request: HttpRequest| {
            assert_eq!(request.method(), http::Method::GET);
            let (status, body) = match request.uri().to_string().as_str() {
                OPENID => (
                    200,
                    serde_json::json!({ "issuer": "https://api.botframework.com", "jwks_uri": JWKS })
                        .to_string(),
                ),
                JWKS => {
                    server.fetches.fetch_add(1, Ordering::SeqCst);
                    server.jwks.lock().unwrap().clone()
                }
                _ => (404, String::new()),
            };
            let response = http::Response::builder()
                .status(status)
                .body(body.into_bytes())
                .unwrap();
            std::future::ready(Ok(response))
        }
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

#[tokio::test(start_paused = true)]
async fn an_unknown_kid_refreshes_at_most_once_per_interval() {
    let server = KeyServer::new(&["a"]);
    let keys = JwksKeys::fetch_with(server.transport(), OPENID, config())
        .await
        .unwrap();
    let validator = Arc::new(BotFrameworkValidator::new(APP_ID, keys));
    tokio::time::advance(Duration::from_secs(61)).await;
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
    assert_eq!(server.fetches(), 2, "one fetch for 500 unknown kids");
    for i in 0..500 {
        let refused = validator
            .validate_refreshing(&bogus(&format!("more-{i}")))
            .await;
        assert_eq!(refused, Err(AuthError::UnknownKey));
    }
    assert_eq!(server.fetches(), 2, "none more within the interval");
    tokio::time::advance(Duration::from_secs(61)).await;
    let _ = validator.validate_refreshing(&bogus("bogus")).await;
    assert_eq!(server.fetches(), 3, "one again after the interval");
    // The real key still works throughout.
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
