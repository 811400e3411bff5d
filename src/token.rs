//! Where access tokens come from: a fixed [`AccessToken`], or a [`TokenSource`] that can
//! refresh (asked once more after a `401`).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::types::AccessToken;

/// The error a [`TokenSource`] returns. Its message must not contain the token.
pub type TokenError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// The future a [`TokenSource`] returns.
pub type TokenFuture<'a> =
    Pin<Box<dyn Future<Output = Result<AccessToken, TokenError>> + Send + 'a>>;

/// Supplies bearer tokens for Graph, typically from a cache in front of the Microsoft identity
/// platform (client-credentials flow). Keep it fast: the compliance-recording answer window is
/// small, so pre-fetch and cache.
///
/// # Example: a cache in front of the identity platform
/// ```
/// use std::sync::RwLock;
/// use recording_status::AccessToken;
/// use recording_status::{TokenError, TokenFuture, TokenSource};
///
/// #[derive(Debug)]
/// struct Cached {
///     current: RwLock<AccessToken>,
/// }
///
/// impl Cached {
///     async fn fetch(&self) -> Result<AccessToken, TokenError> {
///         // POST https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token
///         // (client credentials, scope https://graph.microsoft.com/.default)
///         # Ok(AccessToken::new("eyJ0eXAi…new"))
///     }
/// }
///
/// impl TokenSource for Cached {
///     fn token(&self, refresh: bool) -> TokenFuture<'_> {
///         Box::pin(async move {
///             if refresh {
///                 // Graph refused the cached token with 401: fetch anew, keep it.
///                 let fresh = self.fetch().await?;
///                 *self.current.write().unwrap_or_else(|e| e.into_inner()) = fresh.clone();
///                 return Ok(fresh);
///             }
///             Ok(self.current.read().unwrap_or_else(|e| e.into_inner()).clone())
///         })
///     }
/// }
/// ```
pub trait TokenSource: Send + Sync + fmt::Debug {
    /// A token; with `refresh`, one fetched anew (the previous one was refused with `401`).
    fn token(&self, refresh: bool) -> TokenFuture<'_>;
}

impl TokenSource for AccessToken {
    fn token(&self, _refresh: bool) -> TokenFuture<'_> {
        let token = self.clone();
        Box::pin(async move { Ok(token) })
    }
}

impl<T: TokenSource + ?Sized> TokenSource for Arc<T> {
    fn token(&self, refresh: bool) -> TokenFuture<'_> {
        (**self).token(refresh)
    }
}
