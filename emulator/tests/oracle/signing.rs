//! Notifications signed like Bot Framework: a bot that fetches the keys from the emulator's
//! OpenID configuration verifies them with jsonwebtoken, sees both issuers, and follows a key
//! rotation.

use std::time::Duration;

use graph_emulator::{Behavior, Emulator, NotifyStyle, TestKey};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;

use crate::support::*;

const APP: &str = "2f0a7c1e-0000-4000-8000-00000000b007";

/// The keys a bot fetches: the OpenID configuration, then its `jwks_uri`.
async fn fetch_keys(emulator: &Emulator) -> Result<JwkSet, Box<dyn std::error::Error>> {
    let config = get_json(&emulator.openid_configuration_url()).await?;
    assert_eq!(config["issuer"], TestKey::BOT_FRAMEWORK_ISSUER);
    assert_eq!(
        config["id_token_signing_alg_values_supported"],
        serde_json::json!(["RS256"])
    );
    let jwks_uri = config["jwks_uri"].as_str().expect("a jwks_uri");
    assert!(jwks_uri.starts_with(&format!("http://{}/", emulator.addr())));
    Ok(serde_json::from_value(get_json(jwks_uri).await?)?)
}

/// What a bot's validator checks: the `kid` names a known key, RS256, the audience is the
/// bot's app id, one of the two issuers, not expired; returns the claims.
fn verify(authorization: &str, keys: &JwkSet, app_id: &str) -> Result<Value, String> {
    let token = authorization
        .strip_prefix("Bearer ")
        .ok_or("not a bearer token")?;
    let header = jsonwebtoken::decode_header(token).map_err(|e| e.to_string())?;
    assert_eq!(header.alg, Algorithm::RS256);
    let kid = header.kid.ok_or("no kid")?;
    let jwk = keys.find(&kid).ok_or(format!("unknown kid {kid}"))?;
    let key = DecodingKey::from_jwk(jwk).map_err(|e| e.to_string())?;
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_audience(&[app_id]);
    validation.set_issuer(&TestKey::ISSUERS);
    validation.set_required_spec_claims(&["exp", "nbf", "aud", "iss"]);
    jsonwebtoken::decode::<Value>(token, &key, &validation)
        .map(|data| data.claims)
        .map_err(|e| e.to_string())
}

#[tokio::test]
async fn notifications_are_signed_both_issuers_and_keys_rotate() -> TestResult {
    let emulator = Emulator::start().await?;
    let mut hook = Webhook::start().await;
    emulator.set_callback_url(&hook.url);
    emulator.sign_notifications_for(APP);
    emulator.script_default([Behavior::Running {
        delay: Duration::from_millis(10),
        notify: NotifyStyle::default(),
    }]);
    assert_eq!(emulator.signing_key(), TestKey::FIRST);
    let keys = fetch_keys(&emulator).await?;
    let kids: Vec<_> = keys
        .keys
        .iter()
        .filter_map(|k| k.common.key_id.clone())
        .collect();
    assert_eq!(kids, [TestKey::FIRST.kid()]);

    // Two notifications: one per issuer, each verified with the published key.
    let mut issuers = Vec::new();
    let mut tokens = Vec::new();
    for call in [CALL, OTHER] {
        assert_eq!(update(&emulator, call).await.status, 200);
        let (headers, _) = hook.next().await;
        let authorization = headers["authorization"].to_str()?.to_owned();
        let claims = verify(&authorization, &keys, APP)?;
        assert_eq!(claims["tid"], TestKey::TENANT_ID);
        assert_eq!(claims["aud"], APP);
        issuers.push(claims["iss"].as_str().unwrap().to_owned());
        assert_eq!(
            verify(&authorization, &keys, "another-bot").map(|_| ()),
            Err("InvalidAudience".to_owned())
        );
        tokens.push(authorization);
    }
    issuers.sort_unstable();
    assert_eq!(
        issuers,
        [
            "https://api.botframework.com",
            "https://graph.microsoft.com"
        ]
    );

    // Rotation: the new key is published next to the old one and signs from now on.
    assert_eq!(emulator.rotate_signing_key(), TestKey::SECOND);
    assert_eq!(emulator.signing_key(), TestKey::SECOND);
    assert_eq!(update(&emulator, "third-call").await.status, 200);
    let (headers, _) = hook.next().await;
    let rotated = headers["authorization"].to_str()?.to_owned();
    assert!(!tokens.contains(&rotated));
    // A bot with the old keys sees an unknown kid, and must refresh.
    assert_eq!(
        verify(&rotated, &keys, APP),
        Err(format!("unknown kid {}", TestKey::SECOND.kid()))
    );
    let refreshed = fetch_keys(&emulator).await?;
    let kids: Vec<_> = refreshed
        .keys
        .iter()
        .filter_map(|k| k.common.key_id.clone())
        .collect();
    assert_eq!(kids, [TestKey::FIRST.kid(), TestKey::SECOND.kid()]);
    assert!(verify(&rotated, &refreshed, APP).is_ok());
    // Tokens signed before the rotation still verify during it.
    for token in &tokens {
        assert!(verify(token, &refreshed, APP).is_ok());
    }

    // A second rotation moves back to the first key and drops the oldest.
    assert_eq!(emulator.rotate_signing_key(), TestKey::FIRST);
    let kids: Vec<_> = fetch_keys(&emulator)
        .await?
        .keys
        .iter()
        .filter_map(|k| k.common.key_id.clone())
        .collect();
    assert_eq!(kids, [TestKey::SECOND.kid(), TestKey::FIRST.kid()]);

    wait_for_sent(&emulator, 3).await;
    assert_eq!(emulator.notifications_refused(), 0);
    Ok(())
}

#[tokio::test]
async fn a_bearer_set_on_the_behaviour_wins_over_signing() -> TestResult {
    let emulator = Emulator::start().await?;
    let mut hook = Webhook::start().await;
    emulator.set_callback_url(&hook.url);
    emulator.sign_notifications_for(APP);
    // A token minted for another bot, as an attacker would replay it.
    let forged = TestKey::FIRST.mint("another-bot");
    emulator.script_default([Behavior::Running {
        delay: Duration::from_millis(10),
        notify: NotifyStyle::default().with_bearer(forged.clone()),
    }]);
    update(&emulator, CALL).await;
    let (headers, _) = hook.next().await;
    assert_eq!(headers["authorization"].to_str()?, forged);
    let keys = fetch_keys(&emulator).await?;
    assert!(verify(&forged, &keys, APP).is_err());
    Ok(())
}

#[tokio::test]
async fn the_published_jwks_is_the_test_keys() -> TestResult {
    let emulator = Emulator::start().await?;
    let config = get_json(&emulator.openid_configuration_url()).await?;
    let jwks = get_json(config["jwks_uri"].as_str().unwrap()).await?;
    let expected: Value = serde_json::from_str(&TestKey::jwks(&[TestKey::FIRST]))?;
    assert_eq!(jwks, expected);
    let key = &jwks["keys"][0];
    assert_eq!(key["kty"], "RSA");
    assert_eq!(key["use"], "sig");
    assert_eq!(key["e"], "AQAB");
    // The key server's requests are not Graph requests: nothing recorded.
    assert!(emulator.requests().is_empty());
    Ok(())
}
