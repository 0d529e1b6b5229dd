//! Cross-origin access for browser apps: which web origins may call the identity provider.
//!
//! A customer's web app runs on its own origin and calls `/sessions`, `/identity_tokens`,
//! `/authenticate` … from the Layer SDK's challenge handler, so the browser asks first
//! (a preflight) and withholds any answer that lacks `Access-Control-Allow-Origin`.
//!
//! - The operator lists exact origins (`[http] cors_allowed_origins`); each is parsed into a
//!   [`WebOrigin`] before anything binds, so a path, a wildcard or a trailing slash stops the
//!   start.
//! - With development credentials any loopback origin (`http://localhost:5173`,
//!   `http://127.0.0.1:<any port>`) is allowed too, so a local web app needs no configuration;
//!   with configured keys nothing is allowed until listed.
//! - The admin API never answers cross-origin: an admin token does not belong in a browser.
//! - Nothing uses cookies, so credentials mode is off and the allowed origin is echoed back
//!   (never `*`).
//!
//! actix-cors does the protocol; a disallowed origin's request is still served (a non-browser
//! client or a same-origin page may send `Origin` too) but its answer carries no CORS header,
//! so a browser withholds it. A refused preflight answers in the IdP's JSON error format.

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;

use actix_cors::{Cors, CorsError};
use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{RequestHead, ServiceRequest, ServiceResponse};
use actix_web::http::{Method, header};
use actix_web::middleware::Next;
use actix_web::{HttpResponse, ResponseError};

use super::IdpError;

/// How long a browser may cache a preflight answer.
const PREFLIGHT_MAX_AGE_SECS: usize = 3600;

/// The path prefix that never answers cross-origin.
const ADMIN_PREFIX: &str = "/admin";

/// One web origin, exactly as a browser sends it in `Origin`: `scheme://host[:port]`, lower
/// case, no default port, no path.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct WebOrigin(String);

impl WebOrigin {
    pub fn parse(raw: &str) -> Result<Self, String> {
        if raw.contains('*') {
            return Err(format!(
                "{raw:?} has a wildcard; list each origin exactly (scheme://host[:port])"
            ));
        }
        let url = url::Url::parse(raw)
            .map_err(|e| format!("{raw:?} is not an origin (scheme://host[:port]): {e}"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!("{raw:?} must be an http:// or https:// origin"));
        }
        if raw.ends_with('/') {
            return Err(format!(
                "{raw:?} ends with a slash; an origin has no path (write {:?})",
                raw.trim_end_matches('/')
            ));
        }
        if url.path() != "/"
            || url.query().is_some()
            || url.fragment().is_some()
            || !url.username().is_empty()
            || url.password().is_some()
        {
            return Err(format!(
                "{raw:?} has more than scheme://host[:port] (a path, query, fragment or user)"
            ));
        }
        // What a browser would send: lower-case host, no default port.
        let canonical = url.origin().ascii_serialization();
        if canonical != raw {
            return Err(format!(
                "{raw:?} is not written as browsers send it; write {canonical:?}"
            ));
        }
        Ok(Self(canonical))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for WebOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Which origins may call the identity provider from a browser.
#[derive(Debug, Clone, Default)]
pub struct CorsPolicy {
    inner: Arc<PolicyInner>,
}

#[derive(Debug, Default)]
struct PolicyInner {
    listed: HashSet<String>,
    any_loopback: bool,
}

impl CorsPolicy {
    /// `listed` origins, plus any loopback origin when `any_loopback` (development
    /// credentials).
    pub fn new(listed: impl IntoIterator<Item = WebOrigin>, any_loopback: bool) -> Self {
        Self {
            inner: Arc::new(PolicyInner {
                listed: listed.into_iter().map(|o| o.0).collect(),
                any_loopback,
            }),
        }
    }

    /// Whether `origin` may read the answer to a request for `path`.
    pub fn allows(&self, origin: &str, path: &str) -> bool {
        if is_admin(path) {
            return false;
        }
        self.inner.listed.contains(origin) || (self.inner.any_loopback && is_loopback(origin))
    }

    /// The actix-cors middleware for this policy.
    pub fn middleware(&self) -> Cors {
        let policy = self.clone();
        Cors::default()
            .allowed_origin_fn(move |origin, head: &RequestHead| {
                origin
                    .to_str()
                    .is_ok_and(|origin| policy.allows(origin, head.uri.path()))
            })
            .allowed_methods([Method::GET, Method::POST, Method::PATCH, Method::DELETE])
            .allowed_headers([header::CONTENT_TYPE, header::AUTHORIZATION, header::ACCEPT])
            .expose_headers([
                header::RETRY_AFTER,
                header::HeaderName::from_static("x-request-id"),
            ])
            .max_age(PREFLIGHT_MAX_AGE_SECS)
            // Serve a disallowed origin's request without CORS headers: the browser withholds
            // the answer, other clients are unaffected.
            .block_on_origin_mismatch(false)
    }
}

/// Whether `path` is the admin API's, compared as the router sees it: percent-escapes
/// decoded (`/%61dmin/users` routes to `/admin/users`).
fn is_admin(path: &str) -> bool {
    let path = percent_encoding::percent_decode_str(path).decode_utf8_lossy();
    path == ADMIN_PREFIX || path.starts_with("/admin/")
}

/// `http(s)://localhost`, `127.0.0.0/8` or `[::1]`, on any port.
fn is_loopback(origin: &str) -> bool {
    let Ok(url) = url::Url::parse(origin) else {
        return false;
    };
    if !matches!(url.scheme(), "http" | "https") || url.path() != "/" {
        return false;
    }
    match url.host() {
        Some(url::Host::Domain(domain)) => domain == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// Middleware around [`CorsPolicy::middleware`]: its refusals (an origin, method or header
/// not allowed in a preflight) become the IdP's JSON `400 invalid_request`, and an answer to
/// an origin that is not allowed carries no `Access-Control-*` header at all (actix-cors
/// would still expose headers to it).
pub async fn tidy_cors_answers(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let mut response = next.call(req).await?;
    let refusal = response
        .response()
        .error()
        .and_then(|e| e.as_error::<CorsError>())
        .map(ToString::to_string);
    if let Some(refusal) = refusal {
        let error = IdpError::InvalidRequest(format!(
            "CORS: {refusal}; allowed origins are set with [http] cors_allowed_origins, the \
             methods are GET, POST, PATCH, DELETE and the headers Content-Type, Authorization, \
             Accept; the admin API is not available cross-origin"
        ));
        let (req, _) = response.into_parts();
        let rendered: HttpResponse = error.error_response();
        return Ok(ServiceResponse::new(req, rendered).map_into_boxed_body());
    }
    let headers = response.headers_mut();
    if !headers.contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN) {
        let cors: Vec<_> = headers
            .keys()
            .filter(|name| name.as_str().starts_with("access-control-"))
            .cloned()
            .collect();
        for name in cors {
            headers.remove(name);
        }
    }
    Ok(response.map_into_boxed_body())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_accepted_only_as_browsers_send_them() {
        for good in [
            "https://app.example.com",
            "http://localhost:5173",
            "http://127.0.0.1:8000",
            "https://[::1]:8443",
        ] {
            assert_eq!(WebOrigin::parse(good).unwrap().as_str(), good);
        }
        for bad in [
            "https://app.example.com/",
            "https://app.example.com/chat",
            "https://*.example.com",
            "*",
            "app.example.com",
            "ftp://app.example.com",
            "https://App.Example.com",
            "https://app.example.com:443",
            "https://user@app.example.com",
            "https://app.example.com?x=1",
            "",
        ] {
            assert!(WebOrigin::parse(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn loopback_is_allowed_only_with_development_credentials_and_never_for_admin() {
        let listed = CorsPolicy::new(
            [WebOrigin::parse("https://app.example.com").unwrap()],
            false,
        );
        assert!(listed.allows("https://app.example.com", "/sessions"));
        assert!(!listed.allows("https://app.example.com", "/admin/users"));
        assert!(!listed.allows("https://app.example.com", "/admin"));
        assert!(!listed.allows("https://app.example.com", "/%61dmin/users"));
        assert!(!listed.allows("http://localhost:5173", "/sessions"));
        assert!(!listed.allows("https://evil.example.com", "/sessions"));

        let development = CorsPolicy::new([], true);
        for origin in [
            "http://localhost:5173",
            "http://127.0.0.1:1",
            "http://[::1]:3000",
            "https://localhost",
        ] {
            assert!(development.allows(origin, "/authenticate"), "{origin}");
            assert!(!development.allows(origin, "/admin/users"), "{origin}");
        }
        for origin in ["http://localhost.example.com", "http://10.0.0.1:80", "null"] {
            assert!(!development.allows(origin, "/authenticate"), "{origin}");
        }
        // `/administrator` is not the admin API.
        assert!(development.allows("http://localhost:1", "/administrator"));
    }
}
