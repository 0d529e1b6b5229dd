//! The request journal behind `GET /_mock/requests`: what the emulator received, newest last.
//!
//! Tests assert on it the way one asserts on a mock mail server's inbox. It records the
//! method, the path, the query, the status, and who was calling — never a header value,
//! never a body. Credentials that travel in URLs are replaced by `[redacted]`: the session
//! token in `DELETE /sessions/{token}` and in the WebSocket upgrade's query, and the secrets
//! that make up the rich-content upload and download URLs. So no session token, identity
//! token or content secret is ever stored in clear.

use std::collections::VecDeque;
use std::sync::Mutex;

use actix_web::HttpMessage;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::web;
use serde::Serialize;

use super::auth::Caller;
use super::{MockLayer, lock};
use crate::clock::{iso_ms, wall_clock_ms};

/// Query parameters whose values are credentials.
const SECRET_PARAMS: &[&str] = &["session_token", "token", "identity_token", "nonce"];

/// Route segments whose values are credentials (see `rest::configure`).
const SECRET_SEGMENTS: &[&str] = &["{token}", "{secret}"];

const REDACTED: &str = "[redacted]";

#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    pub at: String,
    /// `http`, or `websocket` for a request packet on a socket.
    pub transport: &'static str,
    /// The HTTP method, or the WebSocket request's `method` (`Message.create`, …; one the
    /// emulator does not know is `(unknown)`).
    pub method: String,
    pub path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
}

/// A bounded log; the oldest entries fall off.
pub struct Journal {
    entries: Mutex<VecDeque<Entry>>,
    capacity: usize,
}

impl Journal {
    pub fn new(capacity: usize) -> Self {
        Self {
            entries: Mutex::new(VecDeque::new()),
            capacity,
        }
    }

    pub fn record(&self, entry: Entry) {
        let mut entries = lock(&self.entries);
        entries.push_back(entry);
        while entries.len() > self.capacity {
            entries.pop_front();
        }
    }

    pub fn entries(&self) -> Vec<Entry> {
        lock(&self.entries).iter().cloned().collect()
    }

    pub fn clear(&self) {
        lock(&self.entries).clear();
    }

    /// Records a request packet received on a socket. The method is one the emulator knows:
    /// the journal keeps nothing whose size the client chose.
    pub fn record_packet(&self, caller: &Caller, method: &'static str) {
        self.record(Entry {
            at: iso_ms(wall_clock_ms()),
            transport: "websocket",
            method: method.to_owned(),
            path: String::new(),
            query: None,
            status: None,
            app_id: Some(caller.app.to_string()),
            user_id: Some(caller.user_id.clone()),
        });
    }
}

/// The path with the segments that carry credentials redacted, found by the route it matched
/// (`/sessions/{token}` → `/sessions/[redacted]`). Unmatched paths are kept: no route reads
/// a credential from them.
pub fn redact_path(path: &str, route: Option<&str>) -> String {
    let Some(route) = route.filter(|r| SECRET_SEGMENTS.iter().any(|s| r.contains(s))) else {
        return path.to_owned();
    };
    // These routes have no tail patterns: a match has one path segment per route segment.
    path.split('/')
        .zip(route.split('/'))
        .map(|(segment, pattern)| {
            if SECRET_SEGMENTS.contains(&pattern) {
                REDACTED
            } else {
                segment
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// The query string with credentials redacted; `None` when there is none.
pub fn redact_query(query: &str) -> Option<String> {
    if query.is_empty() {
        return None;
    }
    let redacted = url::form_urlencoded::parse(query.as_bytes()).map(|(k, v)| {
        let value = if SECRET_PARAMS.contains(&k.as_ref()) {
            REDACTED.into()
        } else {
            v
        };
        (k, value)
    });
    Some(
        url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(redacted)
            .finish(),
    )
}

/// Middleware: one journal entry per HTTP request, test controls excluded.
pub async fn record_requests(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let method = req.method().to_string();
    let query = redact_query(req.query_string());
    let journal = req.app_data::<web::Data<MockLayer>>().cloned();
    let response = next.call(req).await?;
    let request = response.request();
    let path = redact_path(request.path(), request.match_pattern().as_deref());
    if let Some(emulator) = journal
        && !path.starts_with("/_mock/")
    {
        let caller = request.extensions().get::<Caller>().cloned();
        emulator.journal.record(Entry {
            at: iso_ms(wall_clock_ms()),
            transport: "http",
            method,
            path,
            query,
            status: Some(response.status().as_u16()),
            app_id: caller.as_ref().map(|c| c.app.to_string()),
            user_id: caller.map(|c| c.user_id),
        });
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_in_queries_are_redacted() {
        let q = redact_query("session_token=s3cr3t&client-id=abc").unwrap();
        assert!(!q.contains("s3cr3t"), "{q}");
        assert!(q.contains("client-id=abc"), "{q}");
        assert_eq!(redact_query(""), None);
    }

    #[test]
    fn credentials_in_paths_are_redacted_by_route() {
        let cases = [
            (
                "/sessions/s3cr3t",
                Some("/sessions/{token}"),
                "/sessions/[redacted]",
            ),
            (
                "/content-upload/s3cr3t",
                Some("/content-upload/{secret}"),
                "/content-upload/[redacted]",
            ),
            (
                "/content-download/s3cr3t",
                Some("/content-download/{secret}"),
                "/content-download/[redacted]",
            ),
            (
                "/conversations/c1",
                Some("/conversations/{uuid}"),
                "/conversations/c1",
            ),
            ("/nowhere/x", None, "/nowhere/x"),
        ];
        for (path, route, recorded) in cases {
            assert_eq!(redact_path(path, route), recorded, "{path}");
        }
    }
}
