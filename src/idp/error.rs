//! The identity provider's HTTP error type and its wire format.
//!
//! Every failure answers `{"error": "<code>", "error_description": "<what to fix>",
//! "request_id": "<id>"}` (plus `field` for a value that broke a rule). `error` is a stable,
//! machine-readable code — the key Layer's sample clients read — and the description is for
//! the developer. A 5xx says nothing internal; its cause chain goes to the log, in the
//! request's span.

use std::fmt;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

use crate::domain::Invalid;
use crate::store::StoreError;
use crate::telemetry::current_request_id;

/// What `/authenticate` and `/sessions` say for an unknown e-mail, a wrong password and a
/// disabled account alike, so the answer does not reveal which it was.
pub const LOGIN_FAILED: &str = "Authentication failed: verify your credentials and try again.";

#[derive(thiserror::Error)]
pub enum IdpError {
    /// 400: the body could not be parsed at all (bad JSON, bad encoding, invalid UTF-8).
    #[error("{0}")]
    Malformed(String),
    /// 400: parsed, but a field is missing, unknown or of the wrong type.
    #[error("{0}")]
    InvalidRequest(String),
    /// 422: a value breaks a rule (too short a password, too long a name, …).
    #[error("{0}")]
    InvalidValue(#[from] Invalid),
    /// 415: neither JSON nor a form.
    #[error("unsupported content type")]
    UnsupportedMediaType { accepts: &'static str },
    /// 413
    #[error("request body too large")]
    PayloadTooLarge { limit: usize },
    /// 401 with the same body for every reason a login fails.
    #[error("login failed")]
    LoginFailed,
    /// 401: a missing, unknown or expired bearer token.
    #[error("{0}")]
    Unauthenticated(&'static str),
    /// 403: authenticated, but the current password given for a change is wrong.
    #[error("{0}")]
    Forbidden(&'static str),
    /// 404
    #[error("{0}")]
    NotFound(String),
    /// 405
    #[error("method not allowed")]
    MethodNotAllowed,
    /// 409 with a specific code (`email_taken`, `id_taken`, `nonce_already_signed`).
    #[error("{description}")]
    Conflict {
        code: &'static str,
        description: String,
    },
    /// 400 `invalid_token`: an e-mailed token that is unknown, used or expired.
    #[error("{description}")]
    Unprocessable {
        code: &'static str,
        description: String,
    },
    /// 403 with a specific code (`email_not_verified`, `signup_closed`).
    #[error("{description}")]
    Refused {
        code: &'static str,
        description: String,
    },
    /// 429: a throttling rule holds password attempts for this account or address; nothing was
    /// checked. The same for a known and an unknown e-mail.
    #[error("too many attempts")]
    TooManyAttempts { retry_after_secs: u64 },
    /// 429: this address has signed up too often lately.
    #[error("too many sign-ups")]
    TooManySignups { retry_after_secs: u64 },
    /// 503: too many password hashes queued; the client should retry shortly.
    #[error("busy")]
    Busy,
    /// 500: logged in full, answered with nothing internal.
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl fmt::Debug for IdpError {
    // The whole source chain, so the log shows why a 500 happened.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")?;
        let mut source = std::error::Error::source(self);
        while let Some(cause) = source {
            write!(f, "\n  caused by: {cause}")?;
            source = cause.source();
        }
        Ok(())
    }
}

impl From<StoreError> for IdpError {
    fn from(e: StoreError) -> Self {
        IdpError::Internal(anyhow::Error::new(e))
    }
}

impl IdpError {
    pub fn internal(e: impl Into<anyhow::Error>) -> Self {
        IdpError::Internal(e.into())
    }

    pub fn code(&self) -> &'static str {
        match self {
            IdpError::Malformed(_) => "malformed_request",
            IdpError::InvalidRequest(_) => "invalid_request",
            IdpError::InvalidValue(_) => "invalid_value",
            IdpError::UnsupportedMediaType { .. } => "unsupported_media_type",
            IdpError::PayloadTooLarge { .. } => "payload_too_large",
            IdpError::LoginFailed => "invalid_credentials",
            IdpError::Unauthenticated(_) => "invalid_token",
            IdpError::Forbidden(_) => "forbidden",
            IdpError::NotFound(_) => "not_found",
            IdpError::MethodNotAllowed => "method_not_allowed",
            IdpError::Conflict { code, .. }
            | IdpError::Unprocessable { code, .. }
            | IdpError::Refused { code, .. } => code,
            IdpError::TooManyAttempts { .. } => "too_many_attempts",
            IdpError::TooManySignups { .. } => "too_many_signups",
            IdpError::Busy => "temporarily_unavailable",
            IdpError::Internal(_) => "server_error",
        }
    }

    fn description(&self) -> String {
        match self {
            IdpError::Malformed(d) | IdpError::InvalidRequest(d) | IdpError::NotFound(d) => {
                d.clone()
            }
            IdpError::InvalidValue(invalid) => invalid.to_string(),
            IdpError::UnsupportedMediaType { accepts } => {
                format!("send the body with Content-Type {accepts}")
            }
            IdpError::PayloadTooLarge { limit } => {
                format!("the request body is larger than the limit of {limit} bytes")
            }
            IdpError::LoginFailed => LOGIN_FAILED.to_owned(),
            IdpError::Unauthenticated(d) | IdpError::Forbidden(d) => (*d).to_owned(),
            IdpError::MethodNotAllowed => "this path does not support that method".to_owned(),
            IdpError::Conflict { description, .. }
            | IdpError::Unprocessable { description, .. }
            | IdpError::Refused { description, .. } => description.clone(),
            IdpError::TooManyAttempts { retry_after_secs } => format!(
                "too many failed password attempts; nothing was checked. Retry in \
                 {retry_after_secs} seconds"
            ),
            IdpError::TooManySignups { retry_after_secs } => {
                format!("too many sign-ups from this address; retry in {retry_after_secs} seconds")
            }
            IdpError::Busy => {
                "too many logins are being processed; retry in a few seconds".to_owned()
            }
            IdpError::Internal(_) => {
                "the server could not complete the request; it has been logged".to_owned()
            }
        }
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    error_description: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    request_id: Option<String>,
}

impl ResponseError for IdpError {
    fn status_code(&self) -> StatusCode {
        match self {
            IdpError::Malformed(_) | IdpError::InvalidRequest(_) => StatusCode::BAD_REQUEST,
            IdpError::InvalidValue(_) => StatusCode::UNPROCESSABLE_ENTITY,
            IdpError::UnsupportedMediaType { .. } => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            IdpError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            IdpError::LoginFailed | IdpError::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            IdpError::Forbidden(_) | IdpError::Refused { .. } => StatusCode::FORBIDDEN,
            IdpError::Unprocessable { .. } => StatusCode::BAD_REQUEST,
            IdpError::NotFound(_) => StatusCode::NOT_FOUND,
            IdpError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            IdpError::Conflict { .. } => StatusCode::CONFLICT,
            IdpError::TooManyAttempts { .. } | IdpError::TooManySignups { .. } => {
                StatusCode::TOO_MANY_REQUESTS
            }
            IdpError::Busy => StatusCode::SERVICE_UNAVAILABLE,
            IdpError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let IdpError::Internal(_) = self {
            tracing::error!(error = ?self, "request failed");
        }
        let body = ErrorBody {
            error: self.code(),
            error_description: self.description(),
            field: match self {
                IdpError::InvalidValue(invalid) => Some(invalid.field),
                _ => None,
            },
            request_id: current_request_id(),
        };
        let mut response = HttpResponse::build(self.status_code());
        match self {
            IdpError::Unauthenticated(_) => {
                response.insert_header((
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer error=\"invalid_token\""),
                ));
            }
            IdpError::Busy => {
                response.insert_header((header::RETRY_AFTER, HeaderValue::from_static("2")));
            }
            IdpError::TooManyAttempts { retry_after_secs }
            | IdpError::TooManySignups { retry_after_secs } => {
                response.insert_header((header::RETRY_AFTER, HeaderValue::from(*retry_after_secs)));
            }
            _ => {}
        }
        response.json(body)
    }
}

/// The body for a request that actix's HTTP parser refused before routing (see
/// [`crate::http_server`]): not valid HTTP/1.1, a head too large, or one too slow to arrive.
pub fn refusal_body(status: StatusCode, request_id: &str) -> Vec<u8> {
    let error = match status {
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => "request_header_fields_too_large",
        StatusCode::REQUEST_TIMEOUT => "request_timeout",
        _ => "malformed_request",
    };
    let body = ErrorBody {
        error,
        error_description: crate::http_server::refusal_description(status).to_owned(),
        field: None,
        request_id: Some(request_id.to_owned()),
    };
    serde_json::to_vec(&body).unwrap_or_default()
}
