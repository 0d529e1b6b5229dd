//! Serving a face over HTTP/1.1 — with the face's own error body for the requests actix's HTTP
//! parser refuses before any route sees them.
//!
//! actix-http answers a malformed request line or header, a request head over its size limit
//! (a long URI included), broken chunked framing, or a head that does not arrive in time by
//! writing a bare `400`, `431` or `408` with an empty body itself, from its connection
//! dispatcher, below the `App`; actix-http 3 offers no hook for that response. It then logs
//! the dispatch error at ERROR, though any anonymous client can cause one.
//!
//! So each accepted connection is wrapped in [`Refusals`], which recognises such a response on
//! its way out — the last bytes written on the connection, an error status with an empty body
//! and without the `X-Request-Id` that every response from the `App` carries (the
//! request-tracing middleware sets it) — and writes the face's error body in its place, with a
//! request ID, logged at INFO. The dispatcher's own ERROR lines are switched off in
//! [`crate::telemetry`].
//!
//! A response body can be any bytes a client uploaded (the emulator serves content back as it
//! was uploaded), and those bytes could be made to look like a bare refusal. So a handler that
//! writes bytes it did not make calls [`write_verbatim`] first: from then on the connection's
//! writes are passed through untouched. A refusal later on that connection stays bare, which
//! costs its own client the JSON body and never rewrites anybody's content.
//!
//! The server is assembled from actix-server and actix-http the way `actix_web::HttpServer`
//! does it (same timeouts), because `HttpServer` gives no access to the connection's stream.

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use actix_http::{HttpService, Request, Response, body::MessageBody};
use actix_service::{
    IntoServiceFactory, Service, ServiceFactory, ServiceFactoryExt, fn_service, map_config,
};
use actix_web::HttpRequest;
use actix_web::dev::{AppConfig, Extensions, Server};
use actix_web::http::StatusCode;
use actix_web::rt::net::TcpStream;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Renders a face's error body (JSON) for a refused request: its status and request ID.
pub type RenderRefusal = fn(StatusCode, &str) -> Vec<u8>;

/// What a refusal of `status` tells the client to fix, in every face's body.
pub fn refusal_description(status: StatusCode) -> &'static str {
    match status {
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => {
            "the request line and headers (the URL included) are larger than the server \
             accepts; send a shorter request"
        }
        StatusCode::REQUEST_TIMEOUT => "the request line and headers did not arrive in time",
        _ => {
            "the request is not valid HTTP/1.1 (its request line, a header, or the framing of \
             its body); nothing was done"
        }
    }
}

/// The statuses actix-http's dispatcher answers on its own.
const REFUSALS: [u16; 3] = [400, 408, 431];

/// A refusal head is short; only the last bytes of a write are searched for one.
const MAX_REFUSAL_HEAD: usize = 512;

/// How long in-flight requests get after a stop unless `http.shutdown_timeout_secs` says
/// otherwise (actix's own default).
pub const DEFAULT_DRAIN_TIMEOUT_SECS: u64 = 30;

/// How a server stops: never on a signal of its own (`startup.rs` catches SIGTERM and Ctrl-C
/// once for every listener and stops them together), and after a graceful stop, in-flight
/// requests get at most this long to finish before their connections are dropped.
#[derive(Debug, Clone, Copy)]
pub struct Stopping {
    pub drain_timeout_secs: u64,
}

impl Stopping {
    pub fn after(drain_timeout_secs: u64) -> Self {
        Self { drain_timeout_secs }
    }
}

/// Serves the `App`s `factory` makes on `listener` with `workers` threads, answering requests
/// refused by the HTTP parser with `render`'s body. The same settings as `HttpServer`'s
/// defaults: keep-alive 5 s, 5 s for a request head, 1 s to say goodbye.
pub fn serve<F, I, S, B>(
    face: &'static str,
    listener: TcpListener,
    workers: usize,
    stopping: Stopping,
    render: RenderRefusal,
    factory: F,
) -> io::Result<Server>
where
    F: Fn() -> I + Send + Clone + 'static,
    I: IntoServiceFactory<S, Request>,
    S: ServiceFactory<Request, Config = AppConfig> + 'static,
    S::Error: Into<actix_web::Error> + 'static,
    S::InitError: std::fmt::Debug,
    S::Response: Into<Response<B>> + 'static,
    <S::Service as Service<Request>>::Future: 'static,
    S::Service: 'static,
    B: MessageBody + 'static,
{
    let addr = listener.local_addr()?;
    let builder = Server::build();
    // As `HttpServer` does: once a graceful stop begins, each keep-alive connection closes
    // after the response in flight, instead of taking new requests until the drain timeout.
    let draining = builder.graceful_shutdown_signal();
    let server = builder
        .workers(workers)
        .disable_signals()
        .shutdown_timeout(stopping.drain_timeout_secs)
        .listen(format!("{face}-{addr}"), listener, move || {
            let app = factory()
                .into_factory()
                .map_err(|e| e.into().error_response());
            let draining = draining.clone();
            let http = HttpService::build()
                .graceful_shutdown_signal(move || {
                    let draining = draining.clone();
                    async move { draining.notified().await }
                })
                .client_request_timeout(Duration::from_secs(5))
                .client_disconnect_timeout(Duration::from_secs(1))
                .local_addr(addr)
                .on_connect_ext(|io: &Refusals<TcpStream>, data: &mut Extensions| {
                    data.insert(io.verbatim.clone());
                })
                // The host is only used to build absolute URLs, which neither face does.
                .h1(map_config(app, |_| AppConfig::default()));
            fn_service(move |io: TcpStream| async move {
                // Nagle's algorithm would hold a response written in more than one piece, or
                // the emulator's WebSocket packets (each its own small write), until the
                // client acknowledged the previous one, which it may delay by 40 ms.
                let _ = io.set_nodelay(true);
                let peer = io.peer_addr().ok();
                Ok((Refusals::new(io, face, render, peer), peer))
            })
            .and_then(http)
        })?
        .run();
    Ok(server)
}

/// A connection's stream that replaces actix-http's bare refusals with the face's error.
pub struct Refusals<T> {
    io: T,
    face: &'static str,
    render: RenderRefusal,
    peer: Option<SocketAddr>,
    /// Bytes accepted from the dispatcher but not yet written (a replaced refusal).
    pending: Vec<u8>,
    written: usize,
    /// Set by [`write_verbatim`]: this connection's writes are no longer searched.
    verbatim: Verbatim,
}

/// A connection's switch to writing verbatim, shared with its requests (connection data).
#[derive(Clone, Default)]
struct Verbatim(Arc<AtomicBool>);

/// Before a handler writes bytes it did not make (uploaded content): every write on `req`'s
/// connection, from now on, goes out as it is, even one that looks like a bare refusal.
pub fn write_verbatim(req: &HttpRequest) {
    if let Some(Verbatim(on)) = req.conn_data::<Verbatim>() {
        // A connection and its requests live on one worker thread: no ordering to impose.
        on.store(true, Ordering::Relaxed);
    }
}

impl<T> Refusals<T> {
    pub fn new(io: T, face: &'static str, render: RenderRefusal, peer: Option<SocketAddr>) -> Self {
        Self {
            io,
            face,
            render,
            peer,
            pending: Vec::new(),
            written: 0,
            verbatim: Verbatim::default(),
        }
    }
}

impl<T: AsyncWrite + Unpin> Refusals<T> {
    fn drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.written < self.pending.len() {
            let n = ready!(Pin::new(&mut self.io).poll_write(cx, &self.pending[self.written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.written += n;
        }
        self.pending.clear();
        self.written = 0;
        Poll::Ready(Ok(()))
    }

    /// The face's response in place of a bare refusal of `status` (whose `date` it keeps).
    fn replacement(&self, status: StatusCode, date: Option<&[u8]>) -> Vec<u8> {
        let request_id = uuid::Uuid::new_v4().to_string();
        tracing::info!(
            face = self.face,
            status = status.as_u16(),
            request_id = %request_id,
            peer = self.peer.map(|p| p.to_string()),
            "request refused by the HTTP parser before routing"
        );
        let body = (self.render)(status, &request_id);
        let mut out = format!(
            "HTTP/1.1 {} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
             connection: close\r\nx-request-id: {request_id}\r\n",
            status.as_u16(),
            status.canonical_reason().unwrap_or(""),
            body.len(),
        )
        .into_bytes();
        if let Some(date) = date {
            out.extend_from_slice(b"date: ");
            out.extend_from_slice(date);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&body);
        out
    }
}

/// Where a bare refusal starts in `buf` (it always ends it), its status and its `date`.
fn find_refusal(buf: &[u8]) -> Option<(usize, StatusCode, Option<&[u8]>)> {
    if !buf.ends_with(b"\r\n\r\n") {
        return None;
    }
    let from = buf.len().saturating_sub(MAX_REFUSAL_HEAD);
    let tail = &buf[from..];
    // The last status line: a refusal's head holds no other.
    let start = (0..tail.len())
        .rev()
        .find(|&i| tail[i..].starts_with(b"HTTP/1.1 "))?;
    let mut headers = [httparse::EMPTY_HEADER; 8];
    let mut response = httparse::Response::new(&mut headers);
    let head = &tail[start..];
    match response.parse(head) {
        Ok(httparse::Status::Complete(len)) if len == head.len() => {}
        _ => return None,
    }
    let code = response.code.filter(|c| REFUSALS.contains(c))?;
    let header = |name: &str| {
        response
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value)
    };
    if header("x-request-id").is_some() || header("content-length") != Some(b"0") {
        return None;
    }
    let status = StatusCode::from_u16(code).ok()?;
    Some((from + start, status, header("date")))
}

impl<T: AsyncRead + Unpin> AsyncRead for Refusals<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Refusals<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        ready!(this.drain(cx))?;
        if this.verbatim.0.load(Ordering::Relaxed) {
            return Pin::new(&mut this.io).poll_write(cx, buf);
        }
        if let Some((start, status, date)) = find_refusal(buf) {
            let mut pending = buf[..start].to_vec();
            pending.extend(this.replacement(status, date));
            this.pending = pending;
            // Accepted whole; what the socket does not take now goes on the next poll.
            if let Poll::Ready(Err(e)) = this.drain(cx) {
                return Poll::Ready(Err(e));
            }
            return Poll::Ready(Ok(buf.len()));
        }
        Pin::new(&mut this.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.drain(cx))?;
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.drain(cx))?;
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_bare_refusal_at_the_end_of_a_write_is_recognised() {
        let bare = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\
                     date: Sat, 28 Nov 2026 22:00:00 GMT\r\n\r\n";
        let (start, status, date) = find_refusal(bare).unwrap();
        assert_eq!((start, status.as_u16()), (0, 400));
        assert_eq!(date, Some(&b"Sat, 28 Nov 2026 22:00:00 GMT"[..]));
        // After a pipelined response's body.
        let mut two = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nx-request-id: a\r\n\r\n{}".to_vec();
        two.extend_from_slice(bare);
        assert_eq!(
            find_refusal(&two).map(|r| r.0),
            Some(two.len() - bare.len())
        );
        // The App's own answers carry a request ID, or a body, or another status.
        for own in [
            &b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nx-request-id: a\r\n\r\n"[..],
            b"HTTP/1.1 400 Bad Request\r\ncontent-length: 2\r\n\r\n",
            b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n",
            b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n{}",
        ] {
            assert!(
                find_refusal(own).is_none(),
                "{}",
                String::from_utf8_lossy(own)
            );
        }
    }
}
