//! Logging and request tracing shared by both faces.
//!
//! One subscriber per process (JSON in production, human-readable on a terminal, `RUST_LOG`
//! wins). Every request gets a root span carrying the face's name and a request ID, echoed in
//! `X-Request-Id`. The span records the method and the *path only*: query strings can carry
//! session tokens (the Layer WebSocket puts one there), and no token, password or
//! `Authorization` header is ever logged.

use std::io::IsTerminal;
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use tracing::Instrument;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

/// How log lines are written (`log.format`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// JSON when the log's stream is not a terminal, human-readable when it is.
    #[default]
    Auto,
    Json,
    Pretty,
}

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

tokio::task_local! {
    /// The current request's ID, readable while its handler runs (error bodies quote it).
    static CURRENT_REQUEST_ID: String;
}

/// Where log lines go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogStream {
    /// The servers (`serve`, `mock-layer`): stdout, where container platforms collect it.
    Stdout,
    /// Every other command: stderr, so a log line never mixes with what the command prints
    /// (`users export > users.jsonl`).
    Stderr,
}

/// Installs the global subscriber. Call once, from `main`.
pub fn init(format: LogFormat, default_filter: &str, stream: LogStream) {
    let format = match format {
        LogFormat::Auto => {
            let terminal = match stream {
                LogStream::Stdout => std::io::stdout().is_terminal(),
                LogStream::Stderr => std::io::stderr().is_terminal(),
            };
            if terminal {
                LogFormat::Pretty
            } else {
                LogFormat::Json
            }
        }
        chosen => chosen,
    };
    match stream {
        LogStream::Stdout => init_with_writer(format, default_filter, std::io::stdout),
        LogStream::Stderr => init_with_writer(format, default_filter, std::io::stderr),
    }
}

/// Installs the global subscriber writing to `writer`; tests pass a sink.
pub fn init_with_writer<W>(format: LogFormat, default_filter: &str, writer: W)
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let mut filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    // actix-http's connection dispatcher logs at ERROR what clients cause: a request its parser
    // refused (answered in each face's format and logged at INFO by `http_server`), a client
    // gone mid-response, a slow request. Off unless RUST_LOG asks for actix-http explicitly.
    let asks_for_actix_http =
        std::env::var("RUST_LOG").is_ok_and(|filter| filter.contains("actix_http"));
    if !asks_for_actix_http && let Ok(directive) = "actix_http::h1::dispatcher=off".parse() {
        filter = filter.add_directive(directive);
    }
    let json = match format {
        LogFormat::Json => true,
        LogFormat::Pretty => false,
        LogFormat::Auto => !std::io::stdout().is_terminal(),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    // `try_init` so a second call (several test apps in one process) is harmless.
    let _ = if json {
        builder.json().flatten_event(true).try_init()
    } else {
        builder.compact().try_init()
    };
}

/// The ID of the request being handled, if called from inside one.
pub fn current_request_id() -> Option<String> {
    CURRENT_REQUEST_ID.try_with(Clone::clone).ok()
}

/// Middleware: a root span per request, the request ID, and one log line per response.
///
/// The log names the matched route pattern (`/sessions/{token}`), never the raw path: some
/// paths carry credentials (a session token to delete, a content URL's secret). Middleware
/// further in must answer errors as responses (`ServiceRequest::error_response`), so that they
/// are rendered inside this request's scope and carry its ID.
pub async fn trace_requests(
    face: &'static str,
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let request_id = req
        .headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|id| is_safe_request_id(id))
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let span = tracing::info_span!(
        "request",
        face,
        method = %req.method(),
        route = tracing::field::Empty,
        request_id = %request_id,
        status = tracing::field::Empty,
    );
    let started = Instant::now();
    let result = CURRENT_REQUEST_ID
        .scope(request_id.clone(), next.call(req).instrument(span.clone()))
        .await;
    let _entered = span.enter();
    match result {
        Ok(mut response) => {
            let status = response.status();
            span.record("status", status.as_u16());
            let route = response.request().match_pattern();
            span.record("route", route.as_deref().unwrap_or("(unmatched)"));
            if let Ok(value) = HeaderValue::from_str(&request_id) {
                response.headers_mut().insert(REQUEST_ID, value);
            }
            let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
            if status.is_server_error() {
                tracing::error!(elapsed_ms, "request failed");
            } else {
                tracing::info!(elapsed_ms, "request completed");
            }
            Ok(response)
        }
        Err(err) => {
            // Faces render their own errors into responses; this is actix's own failure.
            tracing::error!(error = %err, "request failed");
            Err(err)
        }
    }
}

/// A caller-supplied request ID is echoed only if it cannot forge log lines or headers.
fn is_safe_request_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_that_could_forge_logs_are_replaced() {
        assert!(is_safe_request_id("3f2a-42_x.y"));
        assert!(!is_safe_request_id(""));
        assert!(!is_safe_request_id("a\nb"));
        assert!(!is_safe_request_id(&"a".repeat(65)));
    }
}
