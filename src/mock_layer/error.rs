//! The emulator's error type and Layer's error body.
//!
//! Every failure, over REST or in a WebSocket response's `data`, is Layer's own shape:
//! `{"id", "code", "message", "url", "data"}` with the HTTP status Layer's Client API
//! documents for that `id`. The SDK keys its behaviour off `id` (`authentication_required`
//! starts a new challenge with `data.nonce`; `id_in_use` and `conflict` carry the existing
//! object in `data`), so the ids and codes here are a wire contract, not decoration.
//!
//! This module knows nothing about the world; callers put whatever `data` they need in it.

use std::fmt;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use serde_json::{Value, json};

/// Where the `url` of every error points: Layer's error reference, as the real service did.
const ERRORS_DOC: &str = "https://developer.layer.com/docs/client/rest#full-list";

/// One of the errors of Layer's Client API (`client/rest/errors.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// 401, code 4: no session, or an expired one; `data.nonce` starts a new challenge.
    AuthenticationRequired,
    /// 403, code 2: the `app_id` is not one this emulator serves.
    InvalidAppId,
    /// 403, code 101
    AccessDenied,
    /// 404, code 102
    NotFound,
    /// 410, code 103: the object existed and was deleted (Platform API conversation reads).
    ObjectDeleted,
    /// 422, code 104
    MissingProperty,
    /// 422, code 105
    InvalidProperty,
    /// 404, code 106: no such path.
    InvalidEndpoint,
    /// 406, code 107
    InvalidHeader,
    /// 409, code 108: a distinct conversation exists with other metadata.
    Conflict,
    /// 405, code 109
    MethodNotAllowed,
    /// 409, code 111: the client-chosen ID is taken (a retried create).
    IdInUse,
    /// 400, code 10: the request could not be read (bad JSON, a body too large, …).
    InvalidRequest,
    /// 429, code 7: one of the emulator's caps on what an app may hold is reached.
    RateLimitExceeded,
    /// 500, code 100: never expected; logged with its cause.
    InternalServerError,
}

impl ErrorKind {
    pub fn id(self) -> &'static str {
        match self {
            Self::AuthenticationRequired => "authentication_required",
            Self::InvalidAppId => "invalid_app_id",
            Self::AccessDenied => "access_denied",
            Self::NotFound => "not_found",
            Self::ObjectDeleted => "object_deleted",
            Self::MissingProperty => "missing_property",
            Self::InvalidProperty => "invalid_property",
            Self::InvalidEndpoint => "invalid_endpoint",
            Self::InvalidHeader => "invalid_header",
            Self::Conflict => "conflict",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::IdInUse => "id_in_use",
            Self::InvalidRequest => "invalid_request",
            Self::RateLimitExceeded => "rate_limit_exceeded",
            Self::InternalServerError => "internal_server_error",
        }
    }

    pub fn code(self) -> u16 {
        match self {
            Self::AuthenticationRequired => 4,
            Self::InvalidAppId => 2,
            Self::AccessDenied => 101,
            Self::NotFound => 102,
            Self::ObjectDeleted => 103,
            Self::MissingProperty => 104,
            Self::InvalidProperty => 105,
            Self::InvalidEndpoint => 106,
            Self::InvalidHeader => 107,
            Self::Conflict => 108,
            Self::MethodNotAllowed => 109,
            Self::IdInUse => 111,
            Self::InvalidRequest => 10,
            Self::RateLimitExceeded => 7,
            Self::InternalServerError => 100,
        }
    }

    pub fn status(self) -> StatusCode {
        match self {
            Self::AuthenticationRequired => StatusCode::UNAUTHORIZED,
            Self::InvalidAppId | Self::AccessDenied => StatusCode::FORBIDDEN,
            Self::NotFound | Self::InvalidEndpoint => StatusCode::NOT_FOUND,
            Self::ObjectDeleted => StatusCode::GONE,
            Self::MissingProperty | Self::InvalidProperty => StatusCode::UNPROCESSABLE_ENTITY,
            Self::InvalidHeader => StatusCode::NOT_ACCEPTABLE,
            Self::Conflict | Self::IdInUse => StatusCode::CONFLICT,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::InvalidRequest => StatusCode::BAD_REQUEST,
            Self::RateLimitExceeded => StatusCode::TOO_MANY_REQUESTS,
            Self::InternalServerError => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// A Layer error: its kind, a message saying what to fix, and the kind's `data`.
#[derive(Clone)]
pub struct LayerError {
    pub kind: ErrorKind,
    pub message: String,
    pub data: Value,
}

impl LayerError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            data: Value::Null,
        }
    }

    pub fn with_data(mut self, data: Value) -> Self {
        self.data = data;
        self
    }

    /// 401 carrying a fresh nonce, so the SDK can answer a new challenge.
    pub fn authentication_required(message: impl Into<String>, nonce: String) -> Self {
        Self::new(ErrorKind::AuthenticationRequired, message).with_data(json!({ "nonce": nonce }))
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, message)
    }

    pub fn access_denied(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::AccessDenied, message)
    }

    pub fn invalid_request(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidRequest, message)
    }

    /// 429: a cap on what the app may hold is reached. Not a rate, but Layer's closest error,
    /// and one the SDK does not retry.
    pub fn rate_limit_exceeded(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::RateLimitExceeded, message)
    }

    /// 422 naming the property (`data.property`) that broke a rule.
    pub fn invalid_property(property: &str, message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidProperty, message).with_data(json!({ "property": property }))
    }

    pub fn missing_property(property: &str) -> Self {
        Self::new(
            ErrorKind::MissingProperty,
            format!("the property {property} is required"),
        )
        .with_data(json!({ "property": property }))
    }

    /// 500: the cause is logged here; the body says nothing internal.
    pub fn internal(cause: impl fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error in the Layer emulator");
        Self::new(
            ErrorKind::InternalServerError,
            "the emulator could not complete the request; the cause has been logged",
        )
    }

    /// The JSON body (also a failed WebSocket response's `data`).
    pub fn body(&self) -> Value {
        serde_json::to_value(ErrorBody {
            id: self.kind.id(),
            code: self.kind.code(),
            message: &self.message,
            url: ERRORS_DOC,
            data: &self.data,
        })
        .unwrap_or(Value::Null)
    }
}

/// The body for a request that actix's HTTP parser refused before routing (see
/// [`crate::http_server`]): Layer's `invalid_request`, with the status the parser chose (400,
/// 408 or 431) and the refusal's request ID in `data`.
pub fn refusal_body(status: StatusCode, request_id: &str) -> Vec<u8> {
    let message = crate::http_server::refusal_description(status);
    let error = LayerError::invalid_request(message).with_data(json!({ "request_id": request_id }));
    serde_json::to_vec(&error.body()).unwrap_or_default()
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    id: &'static str,
    code: u16,
    message: &'a str,
    url: &'static str,
    data: &'a Value,
}

impl fmt::Debug for LayerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind.id(), self.message)
    }
}

impl fmt::Display for LayerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for LayerError {}

impl ResponseError for LayerError {
    fn status_code(&self) -> StatusCode {
        self.kind.status()
    }

    fn error_response(&self) -> HttpResponse {
        // `HttpResponse::json` sets `application/json`: the SDK parses nothing else.
        HttpResponse::build(self.status_code()).json(self.body())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_body_has_layer_s_five_members() {
        let body = LayerError::invalid_property("identity_token", "bad").body();
        assert_eq!(body["id"], "invalid_property");
        assert_eq!(body["code"], 105);
        assert_eq!(body["message"], "bad");
        assert!(body["url"].as_str().unwrap().starts_with("https://"));
        assert_eq!(body["data"]["property"], "identity_token");
    }

    #[test]
    fn statuses_follow_layer_s_table() {
        assert_eq!(ErrorKind::AuthenticationRequired.status().as_u16(), 401);
        assert_eq!(ErrorKind::IdInUse.status().as_u16(), 409);
        assert_eq!(ErrorKind::InvalidHeader.status().as_u16(), 406);
        assert_eq!(ErrorKind::MethodNotAllowed.code(), 109);
    }
}
