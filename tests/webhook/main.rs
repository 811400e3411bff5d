//! Authenticating the notification webhook (features `jwt` and `driver`): Bot Framework's
//! signing keys fetched, cached and rotated, and forged notifications refused before they
//! reach the hub.
#![cfg(all(feature = "jwt", feature = "driver"))]

#[path = "../support/mod.rs"]
mod support;

mod forged;
mod jwks;
