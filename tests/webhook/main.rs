//! Authenticating the notification webhook (features `jwt` and `driver`): Bot Framework's
//! signing keys fetched, cached and rotated.
#![cfg(all(feature = "jwt", feature = "driver"))]

mod jwks;
