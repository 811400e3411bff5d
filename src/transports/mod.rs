//! Ready-made transports: [`Transport`](crate::Transport) and
//! [`BlockingTransport`](crate::BlockingTransport) on popular HTTP clients.
//!
//! | feature        | module             | type                                   | flavour  |
//! |----------------|--------------------|----------------------------------------|----------|
//! | `reqwest-0_13` | [`reqwest_0_13`]   | `ReqwestTransport` (reqwest 0.13)      | async    |
//! | `ureq-3`       | [`ureq_3`]         | `UreqTransport` (ureq 3)               | blocking |
//!
#![cfg_attr(
    not(all(feature = "reqwest-0_13", feature = "ureq-3")),
    doc = "In this build some of these features are off: their modules link back to this page."
)]
//!
#![cfg_attr(feature = "reqwest-0_13", doc = "[`reqwest_0_13`]: self::reqwest_0_13")]
#![cfg_attr(not(feature = "reqwest-0_13"), doc = "[`reqwest_0_13`]: self")]
#![cfg_attr(feature = "ureq-3", doc = "[`ureq_3`]: self::ureq_3")]
#![cfg_attr(not(feature = "ureq-3"), doc = "[`ureq_3`]: self")]
//!
//! # Versioned names
//!
//! Features and modules carry the client's major version. When a client ships a new major
//! version, it gets a feature and module of its own next to the old one, so upgrading the
//! client is never a breaking change of this crate, and both can be enabled at once during a
//! migration.
//!
//! Neither feature enables TLS: real Graph is `https` only, so enable this crate's `tls`
//! feature (rustls for whichever transports are enabled) or a TLS feature of the client.
//!
//! # Redirects are always off
//!
//! Every request carries a bearer token, and a bearer token must never follow a redirect: a
//! `3xx` comes back as a response (which the crate reads as a Graph error), and a `Location`
//! header, on a redirect or on a `200`/`202`, is never followed. The transports here configure
//! their clients that way, and nothing in this crate ever sends a request to a URL taken from
//! a response. If you bring your own client (`ReqwestTransport::from_client`, `UreqTransport::from_agent`),
//! disabling redirects is your job.
//!
//! # Limits and errors
//!
//! Each transport has a connect timeout (default 5 s), an overall timeout for the whole
//! exchange including the body (default 30 s), and a cap on the response body (default
//! 1 MiB; Graph's answers are a few hundred bytes). Their errors tell apart failures before the
//! request left (connect, DNS, TLS handshake, a request that could not be built), for which
//! [`was_not_delivered`](crate::transport::was_not_delivered) returns `true` so retry policies
//! may resend, from everything after it (timeouts, resets, truncated or oversized bodies), whose
//! outcome is unknown. Errors never contain the `Authorization` header.

#[cfg(feature = "reqwest-0_13")]
pub mod reqwest_0_13;
#[cfg(feature = "ureq-3")]
pub mod ureq_3;

/// Defaults shared by the transports.
#[cfg(any(feature = "reqwest-0_13", feature = "ureq-3"))]
mod defaults {
    use std::time::Duration;

    pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
    pub(crate) const TIMEOUT: Duration = Duration::from_secs(30);
    pub(crate) const MAX_BODY_BYTES: usize = 1024 * 1024;
}
