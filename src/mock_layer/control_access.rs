//! Who may use the test controls under `/_mock/`.
//!
//! The controls read message text (`/_mock/notifications`), the request journal, and can
//! empty the world, so a web page must never reach them — neither a page on another site
//! calling `http://127.0.0.1:8090/_mock/…` (the browser sends its `Origin`), nor one that
//! reaches the listener through DNS rebinding (the browser then sends the attacker's host
//! name as `Host`). Layer's own paths keep their CORS, since the SDKs run in pages.
//!
//! A request under `/_mock/` is answered only when
//! - its `Host` names this listener: `localhost`, an IP address (a rebinding page cannot
//!   make a browser send one, as it only controls names), or the host of
//!   `mock_layer.public_url`; when the listener is bound to one specific address, an IP
//!   must be that address or a loopback one;
//! - it carries no `Origin` and no `Sec-Fetch-Site` other than `none`: the emulator serves
//!   no pages of its own, so any page's request is another site's;
//! - with `mock_layer.control_token` set, it carries `Authorization: Bearer <token>`.
//!
//! Its answer never carries CORS headers.

use std::net::{IpAddr, SocketAddr};

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderMap};
use actix_web::middleware::Next;
use actix_web::web;

use super::MockLayer;
use super::auth::bearer_matches;
use super::error::{ErrorKind, LayerError};

/// What the guard compares requests with, fixed when the emulator is built.
#[derive(Debug, Clone)]
pub struct ControlAccess {
    /// The address the listener is bound to.
    listen: SocketAddr,
    /// The host of `mock_layer.public_url`, lower-cased.
    public_host: Option<String>,
    /// `mock_layer.control_token`.
    token: Option<String>,
}

impl ControlAccess {
    pub fn new(listen: SocketAddr, public_url: Option<&str>, control_token: Option<&str>) -> Self {
        let public_host = public_url
            .and_then(|u| url::Url::parse(u).ok())
            .and_then(|u| u.host_str().map(str::to_ascii_lowercase));
        Self {
            listen,
            public_host,
            token: control_token.map(str::to_owned),
        }
    }

    /// Whether anyone who can reach the listener could use the controls: it is bound beyond
    /// loopback and no control token is set. Worth a warning at start.
    pub fn is_exposed(&self) -> bool {
        self.token.is_none() && !self.listen.ip().is_loopback()
    }

    /// Why a request to a test control is refused, if it is.
    pub fn check(&self, headers: &HeaderMap) -> Result<(), LayerError> {
        let denied = |message: &str| Err(LayerError::access_denied(message));
        let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
        if !host.is_some_and(|h| self.names_this_listener(h)) {
            return denied(
                "the test controls answer only requests whose Host is localhost, an IP address \
                 of this listener, or the host of mock_layer.public_url",
            );
        }
        let from_a_page = headers.contains_key(header::ORIGIN)
            || headers
                .get("sec-fetch-site")
                .is_some_and(|site| site.as_bytes() != b"none");
        if from_a_page {
            return denied(
                "the test controls do not answer web pages (the request has an Origin); call \
                 them from a test or a backend",
            );
        }
        if let Some(expected) = &self.token
            && !bearer_matches(headers, expected)
        {
            return Err(LayerError::new(
                ErrorKind::AuthenticationRequired,
                "the test controls need Authorization: Bearer <mock_layer.control_token>",
            ));
        }
        Ok(())
    }

    fn names_this_listener(&self, host: &str) -> bool {
        let name = host_name(host).to_ascii_lowercase();
        if name == "localhost" || self.public_host.as_deref() == Some(name.as_str()) {
            return true;
        }
        let Ok(ip) = name
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
        else {
            return false;
        };
        let bound = self.listen.ip();
        bound.is_unspecified() || ip == bound || ip.is_loopback()
    }
}

/// `host[:port]` or `[v6][:port]` → the host part.
fn host_name(host: &str) -> &str {
    if host.starts_with('[') {
        return host.find(']').map_or(host, |end| &host[..=end]);
    }
    host.rsplit_once(':').map_or(host, |(name, _)| name)
}

fn is_control_path(path: &str) -> bool {
    path == "/_mock" || path.starts_with("/_mock/")
}

/// Middleware, outside CORS: checks requests to the test controls, and removes every
/// `Access-Control-*` header from their answers.
pub async fn guard_test_controls(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    if !is_control_path(req.path()) {
        return Ok(next.call(req).await?.map_into_boxed_body());
    }
    let refusal = match req.app_data::<web::Data<MockLayer>>() {
        Some(emulator) => emulator.control_access().check(req.headers()).err(),
        None => Some(LayerError::internal("the emulator's state is missing")),
    };
    if let Some(error) = refusal {
        tracing::warn!(
            security_event = "mock_control_refused",
            path = req.path(),
            reason = error.message.as_str(),
            "a request to the emulator's test controls was refused"
        );
        return Ok(req.error_response(error).map_into_boxed_body());
    }
    let mut response = next.call(req).await?.map_into_boxed_body();
    let cors: Vec<_> = response
        .headers()
        .keys()
        .filter(|name| name.as_str().starts_with("access-control-"))
        .cloned()
        .collect();
    for name in cors {
        response.headers_mut().remove(name);
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use actix_web::http::header::{HeaderName, HeaderValue};

    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        map
    }

    fn allowed(access: &ControlAccess, pairs: &[(&str, &str)]) -> bool {
        access.check(&headers(pairs)).is_ok()
    }

    #[test]
    fn only_host_names_of_this_listener_are_answered() {
        let loopback = ControlAccess::new("127.0.0.1:8090".parse().unwrap(), None, None);
        for host in [
            "127.0.0.1:8090",
            "localhost:8090",
            "LOCALHOST",
            "[::1]:8090",
            "127.0.0.2",
        ] {
            assert!(allowed(&loopback, &[("host", host)]), "{host}");
        }
        for host in [
            "evil.example:8090",
            "192.168.1.5:8090",
            "localhost.evil.example",
            "",
        ] {
            assert!(!allowed(&loopback, &[("host", host)]), "{host}");
        }
        assert!(!allowed(&loopback, &[]), "no Host at all");

        let wildcard = ControlAccess::new(
            "0.0.0.0:8090".parse().unwrap(),
            Some("http://layer.test:8090"),
            None,
        );
        for host in ["192.168.1.5:8090", "layer.test:8090", "[fe80::1]:1"] {
            assert!(allowed(&wildcard, &[("host", host)]), "{host}");
        }
        assert!(!allowed(&wildcard, &[("host", "rebound.example:8090")]));
    }

    #[test]
    fn pages_are_refused_whatever_their_origin() {
        let access = ControlAccess::new("127.0.0.1:8090".parse().unwrap(), None, None);
        let host = ("host", "127.0.0.1:8090");
        assert!(!allowed(
            &access,
            &[host, ("origin", "https://evil.example")]
        ));
        assert!(!allowed(
            &access,
            &[host, ("origin", "http://127.0.0.1:8090")]
        ));
        assert!(!allowed(&access, &[host, ("origin", "null")]));
        assert!(!allowed(&access, &[host, ("sec-fetch-site", "cross-site")]));
        assert!(allowed(&access, &[host, ("sec-fetch-site", "none")]));
    }

    #[test]
    fn a_control_token_is_required_when_set() {
        let token = "a-long-enough-control-token";
        let access = ControlAccess::new("0.0.0.0:8090".parse().unwrap(), None, Some(token));
        let host = ("host", "10.0.0.1:8090");
        assert!(!access.is_exposed());
        let bearer = format!("Bearer {token}");
        assert!(allowed(&access, &[host, ("authorization", &bearer)]));
        let refused = access
            .check(&headers(&[host, ("authorization", "Bearer wrong")]))
            .unwrap_err();
        assert_eq!(refused.kind, ErrorKind::AuthenticationRequired);
        assert!(!allowed(&access, &[host]));
        assert!(!allowed(&access, &[host, ("authorization", token)]));
        assert!(ControlAccess::new("0.0.0.0:1".parse().unwrap(), None, None).is_exposed());
        assert!(!ControlAccess::new("127.0.0.1:1".parse().unwrap(), None, None).is_exposed());
    }
}
