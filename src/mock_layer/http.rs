//! HTTP details that serve browsers and the XDK rather than the protocol itself.
//!
//! - CORS: the SDKs run in browsers on another origin, with credentials and custom headers,
//!   so every answer names the caller's `Origin` (never `*`, which credentials forbid) and
//!   exposes `Layer-Count` (a query's total size) to scripts. The headers allowed are the
//!   ones the SDKs send (§B.0 item 7); a preflight asking for another is refused with
//!   Layer's JSON error, like every other refusal, not actix-cors's plain text.
//! - The XDK 4.0 treats only `https://` URLs as absolute and prefixes `http://` ones with
//!   the API base: `GET /http://127.0.0.1:PORT/identities/alice`. A request it queues for an
//!   object (a channel's `PUT {channel.url}/members/{user}`) gets the object's URL in front
//!   of its own absolute URL: `/channels/<uuid>http://127.0.0.1:PORT/channels/<uuid>/…`.
//!   Everything up to the last absolute URL is stripped here, before routing, so every
//!   route works in each form (with `https://` the XDK does neither).
//! - actix decodes a path's percent-escapes lossily (`%FF` becomes U+FFFD), which would make
//!   `GET /identities/%FF` provision a user the client never named. A path that is not valid
//!   percent-encoded UTF-8 is refused here, before routing, with Layer's `400 invalid_request`.

use actix_cors::{Cors, CorsError};
use actix_web::ResponseError;
use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Uri;
use actix_web::http::{Method, header};
use actix_web::middleware::Next;
use percent_encoding::percent_decode_str;

use super::error::LayerError;

/// The methods of the Client API.
const ALLOWED_METHODS: [Method; 7] = [
    Method::GET,
    Method::POST,
    Method::PUT,
    Method::PATCH,
    Method::DELETE,
    Method::HEAD,
    Method::OPTIONS,
];

/// The headers the SDKs send cross-origin.
const ALLOWED_HEADERS: [&str; 10] = [
    "accept",
    "authorization",
    "content-type",
    "client-id",
    "layer-xdk-version",
    "upload-content-type",
    "upload-content-length",
    "upload-origin",
    "if-none-match",
    "x-request-id",
];

pub fn cors() -> Cors {
    Cors::default()
        // With credentials, actix-cors echoes the request's Origin rather than `*`.
        .allow_any_origin()
        .supports_credentials()
        .allowed_methods(ALLOWED_METHODS)
        .allowed_headers(ALLOWED_HEADERS)
        .expose_headers([
            header::HeaderName::from_static("layer-count"),
            header::LINK,
            header::LOCATION,
        ])
        .max_age(3600)
}

/// Middleware around [`cors`]: its refusals (a header or method not allowed, a malformed
/// `Origin`) become Layer's `400 invalid_request`, so every answer the emulator gives has
/// Layer's shape.
pub async fn cors_errors_as_layer_errors(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let response = next.call(req).await?;
    let Some(refusal) = response
        .response()
        .error()
        .and_then(|e| e.as_error::<CorsError>())
        .map(ToString::to_string)
    else {
        return Ok(response.map_into_boxed_body());
    };
    let methods: Vec<&str> = ALLOWED_METHODS.iter().map(Method::as_str).collect();
    let error = LayerError::invalid_request(format!(
        "CORS: {refusal}; this emulator allows the methods {} and the headers {}",
        methods.join(", "),
        ALLOWED_HEADERS.join(", ")
    ));
    let (req, _) = response.into_parts();
    Ok(ServiceResponse::new(req, error.error_response()).map_into_boxed_body())
}

/// Middleware: refuses a path whose percent-escapes are malformed or do not decode to UTF-8.
pub async fn reject_undecodable_paths(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    if decodes_strictly(req.uri().path()) {
        return Ok(next.call(req).await?.map_into_boxed_body());
    }
    let error = LayerError::invalid_request(
        "the path is not valid percent-encoded UTF-8 (every % needs two hex digits, and the \
         bytes they make must be UTF-8)",
    );
    Ok(req.error_response(error).map_into_boxed_body())
}

fn decodes_strictly(path: &str) -> bool {
    let bytes = path.as_bytes();
    let well_formed = bytes.iter().enumerate().all(|(i, b)| {
        *b != b'%'
            || bytes
                .get(i + 1..i + 3)
                .is_some_and(|hex| hex.iter().all(u8::is_ascii_hexdigit))
    });
    well_formed && percent_decode_str(path).decode_utf8().is_ok()
}

/// Middleware: `…http://host:port/rest` → `/rest` (also `https://`).
pub async fn strip_absolute_url_prefix(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    if let Some(uri) = stripped_uri(req.uri()) {
        req.match_info_mut().get_mut().update(&uri);
        req.head_mut().uri = uri;
    }
    next.call(req).await
}

fn stripped_uri(uri: &Uri) -> Option<Uri> {
    let path = uri.path();
    // The last absolute URL in the path is the real one. Paths the SDKs build never hold
    // `http://` otherwise: they percent-encode the `:` and `/` of every ID they put there.
    let start = ["http://", "https://"]
        .iter()
        .filter_map(|scheme| path.rfind(scheme).map(|i| i + scheme.len()))
        .max()?;
    let rest = &path[start..];
    // Skip the authority; what follows is the real path.
    let real_path = rest.find('/').map_or("/", |i| &rest[i..]);
    let path_and_query = match uri.query() {
        Some(q) => format!("{real_path}?{q}"),
        None => real_path.to_owned(),
    };
    path_and_query.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_must_be_percent_encoded_utf8() {
        for ok in [
            "/identities/alice",
            "/identities/a%40b%2Fc",
            "/identities/%C3%A9",
            "/",
        ] {
            assert!(decodes_strictly(ok), "{ok}");
        }
        for bad in [
            "/identities/%FF",
            "/identities/%C3",
            "/identities/%G1",
            "/x%",
            "/x%4",
        ] {
            assert!(!decodes_strictly(bad), "{bad}");
        }
    }

    #[test]
    fn the_xdk_prefix_is_stripped_and_the_query_kept() {
        let uri: Uri = "/http://127.0.0.1:4242/identities/alice?x=1"
            .parse()
            .unwrap();
        assert_eq!(stripped_uri(&uri).unwrap(), "/identities/alice?x=1");
        let uri: Uri = "/https://h/content/abc".parse().unwrap();
        assert_eq!(stripped_uri(&uri).unwrap().path(), "/content/abc");
        let uri: Uri = "/channels/6f0e4cf2http://127.0.0.1:4242/channels/6f0e4cf2/members/bob"
            .parse()
            .unwrap();
        assert_eq!(
            stripped_uri(&uri).unwrap(),
            "/channels/6f0e4cf2/members/bob",
            "a queued request's doubled URL"
        );
        let uri: Uri = "/identities/alice".parse().unwrap();
        assert!(stripped_uri(&uri).is_none());
    }
}
