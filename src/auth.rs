//! Proof that a notification webhook request was authenticated.
//!
//! The [`Hub`](crate::driver::Hub) accepts notification bodies only together with an
//! [`Authenticated`] value, so that a forged `completed` cannot unlock retention. There are two
//! ways to get one: validating the Bot Framework bearer JWT (`webhook` module, `jwt` feature),
//! or [`Authenticated::danger_authenticated_elsewhere`], for bots whose web stack already did.

use std::fmt;

/// How a webhook request was authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuthMethod {
    /// The `Authorization: Bearer` JWT was validated (issuer, audience, signature, lifetime,
    /// tenant id).
    BotFrameworkJwt,
    /// The bot says it authenticated the request itself, as described.
    Elsewhere(&'static str),
}

impl fmt::Display for AuthMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BotFrameworkJwt => f.write_str("bot framework jwt"),
            Self::Elsewhere(how) => write!(f, "elsewhere: {how}"),
        }
    }
}

/// Proof that a webhook request was authenticated. Cannot be built from outside this crate
/// except through the audited escape hatch below.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authenticated {
    method: AuthMethod,
    tenant: Option<String>,
}

impl Authenticated {
    #[allow(dead_code)] // Used by the webhook validator (feature `jwt`).
    pub(crate) fn bot_framework(tenant: String) -> Self {
        Self {
            method: AuthMethod::BotFrameworkJwt,
            tenant: Some(tenant),
        }
    }

    /// **Danger**: declares that the webhook request was authenticated by other means (for
    /// example a gateway that validated the Bot Framework JWT). `how` is written to the audit
    /// trail with every notification accepted this way. Never call this for unauthenticated
    /// requests: a forged `completed` notification would unlock retention.
    pub fn danger_authenticated_elsewhere(how: &'static str) -> Self {
        Self {
            method: AuthMethod::Elsewhere(how),
            tenant: None,
        }
    }

    /// How the request was authenticated.
    pub fn method(&self) -> &AuthMethod {
        &self.method
    }

    /// The tenant id the token was issued for: always present for a validated token
    /// ([`AuthMethod::BotFrameworkJwt`]), `None` for a request authenticated elsewhere.
    pub fn tenant(&self) -> Option<&str> {
        self.tenant.as_deref()
    }
}
