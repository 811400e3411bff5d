//! Where Graph lives: [`Endpoint`] (v1.0 by default, beta, the US government clouds, or a custom
//! base URL such as a local emulator).

use std::fmt;
use std::net::IpAddr;

use crate::error::InvalidEndpoint;
use crate::types::CallId;

/// The Graph base URL requests are sent to, such as `https://graph.microsoft.com/v1.0`.
///
/// Only `https` is accepted, except for loopback hosts (`localhost`, `127.0.0.0/8`, `[::1]`)
/// where plain `http` serves tests and emulators. Only the `/communications/calls` path is
/// used; Graph's deprecated `/app/calls` form is never produced.
///
/// # Example
/// ```
/// use recording_status::Endpoint;
///
/// assert_eq!(Endpoint::default().base(), "https://graph.microsoft.com/v1.0");
/// assert_eq!(Endpoint::us_gov_dod().base(), "https://dod-graph.microsoft.us/v1.0");
/// let local = Endpoint::custom("http://127.0.0.1:8080/v1.0/")?;
/// assert_eq!(local.base(), "http://127.0.0.1:8080/v1.0");
/// assert!(Endpoint::custom("http://graph.example.com/v1.0").is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Endpoint {
    base: String,
    origin: String,
    /// `origin`'s scheme and authority, parsed once so that each request's URI reuses them.
    scheme: http::uri::Scheme,
    authority: http::uri::Authority,
}

impl Endpoint {
    /// Graph v1.0 in the global cloud: `https://graph.microsoft.com/v1.0`.
    pub fn v1() -> Self {
        Self::known("graph.microsoft.com", "/v1.0")
    }

    /// Graph beta in the global cloud (beta is not available in national clouds).
    pub fn beta() -> Self {
        Self::known("graph.microsoft.com", "/beta")
    }

    /// Graph v1.0 for US Government L4: `https://graph.microsoft.us/v1.0`.
    pub fn us_gov() -> Self {
        Self::known("graph.microsoft.us", "/v1.0")
    }

    /// Graph v1.0 for US Government L5 (DOD): `https://dod-graph.microsoft.us/v1.0`.
    pub fn us_gov_dod() -> Self {
        Self::known("dod-graph.microsoft.us", "/v1.0")
    }

    fn known(host: &'static str, path: &str) -> Self {
        Self {
            base: format!("https://{host}{path}"),
            origin: format!("https://{host}"),
            scheme: http::uri::Scheme::HTTPS,
            authority: http::uri::Authority::from_static(host),
        }
    }

    /// A custom base URL, such as `https://graph.contoso.test/v1.0` or a loopback emulator.
    ///
    /// # Errors
    /// [`InvalidEndpoint`] if the URL does not parse, has no host, carries user info, a query
    /// or a fragment, or uses plain `http` for a host that is not loopback.
    pub fn custom(base: &str) -> Result<Self, InvalidEndpoint> {
        if base.contains('#') {
            return Err(InvalidEndpoint::QueryOrFragment);
        }
        let uri: http::Uri = base.parse().map_err(|_| InvalidEndpoint::Malformed)?;
        let scheme = uri.scheme_str().ok_or(InvalidEndpoint::Malformed)?;
        let authority = uri.authority().ok_or(InvalidEndpoint::Malformed)?;
        if authority.as_str().contains('@') {
            return Err(InvalidEndpoint::UserInfo);
        }
        if uri.query().is_some() {
            return Err(InvalidEndpoint::QueryOrFragment);
        }
        let host = authority.host();
        if host.is_empty() {
            return Err(InvalidEndpoint::Malformed);
        }
        match scheme {
            "https" => {}
            "http" if is_loopback(host) => {}
            "http" => return Err(InvalidEndpoint::PlainHttp),
            _ => return Err(InvalidEndpoint::Scheme),
        }
        let path = uri.path().trim_end_matches('/');
        let lower = authority.as_str().to_ascii_lowercase();
        let origin = format!("{scheme}://{lower}");
        Ok(Self {
            base: format!("{origin}{path}"),
            origin,
            scheme: if scheme == "https" {
                http::uri::Scheme::HTTPS
            } else {
                http::uri::Scheme::HTTP
            },
            authority: lower.parse().map_err(|_| InvalidEndpoint::Malformed)?,
        })
    }

    /// The base URL, without a trailing slash.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The URL of `POST …/communications/calls/{id}/updateRecordingStatus` for `call`, with the
    /// id as exactly one percent-encoded path segment.
    pub fn update_recording_status_url(&self, call: &CallId) -> String {
        let path = self.update_recording_status_path(call);
        let mut url = String::with_capacity(self.origin.len() + path.len());
        url.push_str(&self.origin);
        url.push_str(&path);
        url
    }

    /// [`update_recording_status_url`](Self::update_recording_status_url) as an [`http::Uri`],
    /// from the scheme and authority parsed when the endpoint was made: only the path is
    /// checked again, and it is built in one allocation of its exact size, which the URI
    /// keeps without copying.
    ///
    /// A validated base path and a percent-encoded segment always make a valid path, so the
    /// error is not expected.
    pub(crate) fn update_recording_status_uri(
        &self,
        call: &CallId,
    ) -> Result<http::Uri, http::Error> {
        let mut parts = http::uri::Parts::default();
        parts.scheme = Some(self.scheme.clone());
        parts.authority = Some(self.authority.clone());
        parts.path_and_query = Some(self.update_recording_status_path(call).try_into()?);
        Ok(http::Uri::from_parts(parts)?)
    }

    /// `{base path}/communications/calls/{segment}/updateRecordingStatus`, exactly sized.
    fn update_recording_status_path(&self, call: &CallId) -> String {
        const CALLS: &str = "/communications/calls/";
        const UPDATE: &str = "/updateRecordingStatus";
        let base_path = &self.base[self.origin.len()..];
        let mut path = String::with_capacity(
            base_path.len() + CALLS.len() + call.path_segment_len() + UPDATE.len(),
        );
        path.push_str(base_path);
        path.push_str(CALLS);
        call.push_path_segment(&mut path);
        path.push_str(UPDATE);
        path
    }

    /// Whether `url` (for example a `Location` header) is under this endpoint's scheme, host,
    /// port and base path, so that sending the bearer token there is safe.
    pub fn owns(&self, url: &str) -> bool {
        let Ok(uri) = url.parse::<http::Uri>() else {
            return false;
        };
        let (Some(scheme), Some(authority)) = (uri.scheme_str(), uri.authority()) else {
            return false;
        };
        if authority.as_str().contains('@') {
            return false;
        }
        let origin = format!("{scheme}://{}", authority.as_str().to_ascii_lowercase());
        let base_path = &self.base[self.origin.len()..];
        origin == self.origin
            && (uri.path() == base_path || uri.path().starts_with(&format!("{base_path}/")))
    }
}

impl Default for Endpoint {
    /// [`Endpoint::v1`].
    fn default() -> Self {
        Self::v1()
    }
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Endpoint").field(&self.base).finish()
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.base)
    }
}

fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_clouds() {
        assert_eq!(Endpoint::v1().base(), "https://graph.microsoft.com/v1.0");
        assert_eq!(Endpoint::beta().base(), "https://graph.microsoft.com/beta");
        assert_eq!(Endpoint::us_gov().base(), "https://graph.microsoft.us/v1.0");
    }

    #[test]
    fn custom_rules() {
        for ok in [
            "https://graph.example.com/v1.0",
            "https://graph.example.com",
            "http://localhost:3000/beta",
            "http://127.0.0.2:1/v1.0",
            "http://[::1]:8080/v1.0",
        ] {
            assert!(Endpoint::custom(ok).is_ok(), "{ok}");
        }
        for (bad, err) in [
            (
                "http://graph.microsoft.com/v1.0",
                InvalidEndpoint::PlainHttp,
            ),
            ("http://10.0.0.1/v1.0", InvalidEndpoint::PlainHttp),
            ("ftp://localhost/v1.0", InvalidEndpoint::Scheme),
            (
                "https://u:p@graph.microsoft.com/v1.0",
                InvalidEndpoint::UserInfo,
            ),
            (
                "https://graph.microsoft.com/v1.0?x=1",
                InvalidEndpoint::QueryOrFragment,
            ),
            (
                "https://graph.microsoft.com/v1.0#f",
                InvalidEndpoint::QueryOrFragment,
            ),
            ("/v1.0", InvalidEndpoint::Malformed),
            ("not a url", InvalidEndpoint::Malformed),
        ] {
            assert_eq!(Endpoint::custom(bad), Err(err), "{bad}");
        }
    }

    #[test]
    fn uri_is_the_url_parsed() {
        let ids = ["57dab8b1-894c-409a-b240-bd8beae78896", "a:b@c", "ü~x"];
        for endpoint in [
            Endpoint::v1(),
            Endpoint::beta(),
            Endpoint::us_gov_dod(),
            Endpoint::custom("http://LocalHost:3000/Beta/").unwrap(),
            Endpoint::custom("http://[::1]:8080").unwrap(),
            Endpoint::custom("https://graph.example.com/a/b").unwrap(),
        ] {
            for id in ids {
                let id = CallId::new(id).unwrap();
                let url = endpoint.update_recording_status_url(&id);
                let uri = endpoint.update_recording_status_uri(&id).unwrap();
                assert_eq!(uri, url.parse::<http::Uri>().unwrap());
                assert_eq!(uri.to_string(), url);
            }
        }
    }

    #[test]
    fn url_has_one_segment() {
        let id = CallId::new("a:b@c").unwrap();
        assert_eq!(
            Endpoint::v1().update_recording_status_url(&id),
            "https://graph.microsoft.com/v1.0/communications/calls/a%3Ab%40c/updateRecordingStatus"
        );
    }

    #[test]
    fn owns_only_same_origin_and_base() {
        let e = Endpoint::v1();
        assert!(e.owns("https://graph.microsoft.com/v1.0/communications/calls/x/operations/y"));
        assert!(e.owns("https://GRAPH.microsoft.com/v1.0/x"));
        assert!(!e.owns("https://graph.microsoft.com/beta/x"));
        assert!(!e.owns("https://graph.microsoft.com/v1.0evil/x"));
        assert!(!e.owns("http://graph.microsoft.com/v1.0/x"));
        assert!(!e.owns("https://graph.microsoft.com.evil.test/v1.0/x"));
        assert!(!e.owns("https://graph.microsoft.com:8443/v1.0/x"));
        assert!(!e.owns("https://user@graph.microsoft.com/v1.0/x"));
        assert!(!e.owns("/v1.0/x"));
        assert!(!e.owns("::::"));
    }
}
