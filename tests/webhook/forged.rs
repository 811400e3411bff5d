//! A webhook handler as a bot writes it, validating the bearer JWT and then handing the body to
//! the driver's hub: a forged `completed` (signed with another key, for another bot, or not
//! signed at all) cannot unlock retention, and the genuine one, properly signed, does (G1, G6).

use std::sync::Arc;
use std::time::Duration;

use recording_status::audit::verify;
use recording_status::driver::{DriverConfig, Hub, Started};
use recording_status::testing::Step;
use recording_status::webhook::{BotFrameworkValidator, StaticKeys};

use crate::support::bodies::graph_notification;
use crate::support::driving::scripted_driver;
use crate::support::ids::{OP_UPPER, call_id, this_call_upper};
use crate::support::jwt::{APP_ID, ATTACKER_PEM, JWKS, KEY_PEM, KID, bearer};

fn webhook(
    validator: &BotFrameworkValidator<StaticKeys>,
    hub: &Hub,
    authorization: &str,
    body: &[u8],
) -> Result<usize, String> {
    let proof = validator
        .validate(authorization)
        .map_err(|e| e.to_string())?;
    Ok(hub.deliver(&proof, body).map_err(|e| e.to_string())?.routed)
}

#[tokio::test(start_paused = true)]
async fn forged_completed_cannot_unlock_retention() {
    let keys = StaticKeys::from_jwks_json(JWKS).unwrap();
    let validator = Arc::new(BotFrameworkValidator::new(APP_ID, keys));
    let (driver, _e, audit, _t) = scripted_driver(
        vec![Step::running()],
        DriverConfig::default().with_pending_deadline(Duration::from_secs(10)),
    );
    let hub = driver.hub().clone();
    let v = validator.clone();
    let attacker = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let body = graph_notification(&this_call_upper(), OP_UPPER, "completed");
        let mut refused = Vec::new();
        // Signed with another key, for another bot, or not signed at all.
        for auth in [
            bearer(ATTACKER_PEM, KID, APP_ID),
            bearer(KEY_PEM, KID, "some-other-bot"),
            "Bearer eyJhbGciOiJub25lIn0.eyJhdWQiOiJ4In0.".to_owned(),
            String::new(),
        ] {
            refused.push(webhook(&v, &hub, &auth, &body).unwrap_err());
        }
        refused
    });
    let started = driver
        .begin_recording(driver.call(call_id()).unwrap())
        .await
        .unwrap();
    assert!(
        matches!(started, Started::Failed(_)),
        "a forged completion unlocked recording"
    );
    let refused = attacker.await.unwrap();
    assert_eq!(refused.len(), 4);
    assert!(refused.iter().all(|e| !e.contains("eyJ")), "{refused:?}");
    verify(&audit.events()).unwrap();
    // One value per call in the process: the failed one goes before the call is opened again.
    drop(started);

    // The genuine notification, properly signed, is accepted.
    let (driver, _e, _a, _t) = scripted_driver(vec![Step::running()], DriverConfig::default());
    let hub = driver.hub().clone();
    let genuine = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let auth = bearer(KEY_PEM, KID, APP_ID);
        webhook(
            &validator,
            &hub,
            &auth,
            &graph_notification(&this_call_upper(), OP_UPPER, "Completed"),
        )
    });
    let started = driver
        .begin_recording(driver.call(call_id()).unwrap())
        .await
        .unwrap();
    assert_eq!(genuine.await.unwrap(), Ok(1));
    assert!(matches!(started, Started::Recording(_)));
}
