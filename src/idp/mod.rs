//! Face 1: the identity provider — accounts, login, Layer identity tokens, keys.
//!
//! It owns its router, state ([`IdpState`]), error type ([`IdpError`]) and listener. It
//! never imports the Layer emulator; `startup.rs` is the only place that knows both.
//!
//! - `routes/` — HTTP handlers, thin: parse, call a domain operation, render.
//! - `password/` — argon2id on a fixed set of hashing threads with bounded memory, behind a
//!   fair queue (logins before sign-ups, client addresses in turn).
//! - `apps.rs` — the Layer apps signed for, and which one a request names.
//! - `keys.rs` — signing keys, development credentials, JWKS, the RS256 signature.
//! - `tokens.rs` — identity-token claims and the once-per-nonce rule.
//! - `nonces.rs` — the signed-nonce ledger, written in batches (group commit).
//! - `sessions.rs` — opaque app session tokens, stored hashed.
//! - `session_lookups.rs` — the session behind a token, read in batches.
//! - `extract.rs` — JSON-or-form bodies, bearer tokens, the authenticated caller.
//! - `client.rs` — the client address every rule keys on (trusted proxies).
//! - `throttle/` — throttled guessing and sign-ups, counted in the database.
//! - `audit.rs` — the audit trail of security-relevant events.
//! - `import.rs` — users brought from another system with their password hashes.
//! - `cors.rs` — which web origins may call it from a browser.
//! - `openapi.rs` — the OpenAPI description, generated from the routes as they are mounted.
//! - `mail/` — outgoing mail (SMTP or an outbox directory) and its templates.
//! - `lifecycle.rs` — e-mail verification and password reset tokens.
//! - `metrics.rs` — the identity provider's Prometheus series.
//! - `sync/` — identity sync: the outbox worker that keeps Layer Identities in step.

pub mod accounts;
pub mod apps;
pub mod audit;
pub mod client;
pub mod cors;
pub mod error;
pub mod extract;
pub mod import;
pub mod keys;
pub mod lifecycle;
pub mod mail;
pub mod metrics;
pub mod nonces;
pub mod openapi;
pub mod password;
mod routes;
pub mod session_lookups;
pub mod sessions;
pub mod sync;
pub mod throttle;
pub mod tokens;

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::dev::Server;
use actix_web::{App, middleware, web};
use utoipa_actix_web::AppExt;

pub use error::IdpError;

use crate::clock::Clock;
use crate::store::Store;
use password::PasswordHasher;
use tokens::TokenIssuer;

/// Everything a handler needs, shared by all workers.
pub struct IdpState {
    /// The time every rule reads (a manual clock in tests).
    pub clock: Clock,
    pub store: Arc<dyn Store>,
    /// Reads the session behind a token (batched; never cached).
    pub sessions: session_lookups::SessionLookups,
    pub hasher: PasswordHasher,
    pub throttle: Arc<throttle::Throttle>,
    pub issuer: TokenIssuer,
    pub session_ttl_secs: i64,
    pub max_body_bytes: usize,
    pub cors: cors::CorsPolicy,
    pub mailer: Arc<mail::Mailer>,
    pub lifecycle: lifecycle::Lifecycle,
    pub metrics: metrics::IdpMetrics,
}

/// Starts serving the identity provider on an already-bound listener.
pub fn serve(
    state: IdpState,
    proxies: client::TrustedProxies,
    listener: TcpListener,
    workers: usize,
    http_metrics: crate::metrics::HttpMetrics,
    shutdown_timeout_secs: u64,
) -> std::io::Result<Server> {
    let max_body_bytes = state.max_body_bytes;
    let cors = state.cors.clone();
    let state = web::Data::new(state);
    let proxies = web::Data::new(proxies);
    // Generated once, from the same calls that mount the routes below.
    let description = web::Data::new(openapi::describe());
    let stop = crate::http_server::Stopping::after(shutdown_timeout_secs);
    crate::http_server::serve(
        "idp",
        listener,
        workers,
        stop,
        error::refusal_body,
        move || {
            App::new()
                // Outermost last: the request's span and ID, then CORS refusals in the IdP's
                // format, then CORS itself.
                .wrap(cors.middleware())
                .wrap(middleware::from_fn(cors::tidy_cors_answers))
                .wrap(middleware::from_fn(|req, next| {
                    crate::telemetry::trace_requests("idp", req, next)
                }))
                .wrap(middleware::from_fn({
                    let http_metrics = http_metrics.clone();
                    move |req, next| {
                        crate::metrics::record_requests(http_metrics.clone(), req, next)
                    }
                }))
                .app_data(state.clone())
                .app_data(proxies.clone())
                .app_data(web::PayloadConfig::new(max_body_bytes))
                .app_data(routes::path_config())
                .app_data(routes::query_config())
                .app_data(description.clone())
                .into_utoipa_app()
                .configure(routes::configure)
                .into_app()
        },
    )
}
