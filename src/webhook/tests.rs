//! Unit tests of [`webhook`](super).

use super::*;
use crate::auth::AuthMethod;
use jsonwebtoken::{EncodingKey, Header, encode};
use serde_json::{Value, json};

const KEY_PEM: &str = include_str!("../../tests/data/webhook_test_key.pem");
const PUBLIC_PEM: &str = include_str!("../../tests/data/webhook_test_key.pub.pem");
const ATTACKER_PEM: &str = include_str!("../../tests/data/webhook_attacker_key.pem");
const JWKS: &str = include_str!("../../tests/data/webhook_test_jwks.json");
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
