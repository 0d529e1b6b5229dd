//! layer-idp: an identity provider for Layer's authentication challenge, and a local Layer
//! emulator to test it against.
//!
//! When the Layer SDK needs to authenticate a user it gets a nonce from Layer; the app's
//! identity provider checks the user's credentials and signs an *identity token* for that
//! nonce (an RS256 JWS with `cty: layer-eit;v=1`), which Layer exchanges for a session. This
//! crate is that identity provider — user database, login flow, identity tokens, key
//! management — done with secure defaults.
//!
//! # Layout
//!
//! - [`startup`] — binds the listeners, opens the store, starts each face. The only module that
//!   knows both faces.
//! - [`idp`] — face 1, the identity provider: routes, error type, passwords, keys, tokens,
//!   identity sync to Layer's Platform API.
//! - [`mock_layer`] — face 2, the Layer emulator: a local, in-memory Layer server (REST and
//!   WebSocket) that the real Layer JavaScript SDKs run against; off unless asked for.
//! - [`store`] — persistence behind the [`store::Store`] trait; SQLite or PostgreSQL, one code
//!   path.
//! - [`identity_token`] — Layer's identity-token rules, shared by the emulator and the token
//!   inspector, with Layer's `eit_*` reason codes and the likely causes of classic mistakes.
//! - [`app_id`] — Layer app IDs (staging and production), shared by both faces.
//! - [`domain`] — parsed values (user IDs, e-mails, passwords, nonces, profile fields).
//! - [`config`] — the settings tree: defaults, TOML file, environment, flags.
//! - [`cli`] / [`commands`] — the command line and what each command does.
//! - [`telemetry`] — logging, request IDs, tracing into the blocking pool.
//! - [`metrics`] — Prometheus metrics: one registry per application, the HTTP series, the
//!   `/metrics` listener.
//! - [`clock`] — Unix time and RFC 3339 (seconds for the provider, milliseconds for the emulator).
//! - [`net`] — the address a listener is reached on.
//! - [`http_server`] — serving a face over HTTP/1.1, with its own error for requests the HTTP
//!   parser refuses.

#![forbid(unsafe_code)]

pub mod app_id;
pub mod cli;
pub mod clock;
pub mod commands;
pub mod config;
pub mod domain;
#[doc(hidden)]
pub mod fuzzing;
pub mod http_server;
pub mod identity_token;
pub mod idp;
pub mod metrics;
pub mod mock_layer;
pub mod net;
pub mod startup;
pub mod store;
pub mod telemetry;
