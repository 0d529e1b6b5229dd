//! Face 2: the Layer emulator — a local Layer server faithful enough that the unmodified
//! Layer JavaScript SDKs (`layer-websdk` 3.4, the core of `@layerhq/web-xdk` 4.0) run their
//! whole flow against it: the authentication challenge, REST, the WebSocket, rich content.
//!
//! It owns its router, state ([`MockLayer`]), error type ([`LayerError`]) and listener. It
//! never imports the identity provider, the store or the domain types: when both faces run in
//! one process, `startup.rs` hands over the provider ID and public keys as plain
//! [`TrustedKey`]s. Everything is in memory and per app ([`world`]).
//!
//! - `rest/` — the Client API's HTTP endpoints, thin: extract, call the world, render.
//! - `websocket.rs` — the socket: handshake, counters, requests, fan-out, closing.
//! - `control.rs` — `/_mock/…`, the test controls (never on Layer's own paths);
//!   `control_access.rs` — who may call them (no pages, no foreign `Host`, the token).
//! - `world/` / `views.rs` / `input.rs` — the state (split by subject: identities,
//!   conversations, messages, content, sockets), its wire shapes, request parsing.
//! - `settings.rs` — `[mock_layer]`: defaults, flag overrides, checks (`config.rs` embeds it).
//! - `change_log.rs` — what `Event.replay` re-sends, per user and bounded.
//! - `content_store.rs` — rich content, its secret URLs and its caps.
//! - `presence.rs` — who follows whom, and presence pushed to followers.
//! - `auth.rs` / `identity_token.rs` / `trust.rs` — nonces, sessions, token validation, keys.
//! - `journal.rs` — the request log; `http.rs` — CORS and the XDK's path quirk.
//! - `metrics.rs` — the emulator's Prometheus series.

mod auth;
mod change_log;
mod content_store;
mod control;
mod control_access;
pub mod error;
#[doc(hidden)]
pub mod fuzzing;
mod http;
pub mod identity_token;
pub mod ids;
mod input;
mod journal;
pub mod metrics;
mod platform;
mod presence;
mod rest;
pub mod settings;
pub mod trust;
mod views;
mod websocket;
pub mod world;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use actix_web::dev::Server;
use actix_web::{App, middleware, web};
use anyhow::Context;

pub use error::LayerError;
pub use ids::AppId;
pub use trust::TrustedKey;

use auth::Sessions;
use change_log::ReplayLimits;
use content_store::ContentLimits;
use journal::Journal;
use settings::MockLayerSettings;
use trust::{Bindings, Trust};
use world::{Limits, World};

/// What the identity provider running in the same process lends the emulator.
#[derive(Debug, Clone)]
pub struct LocalProvider {
    /// The provider of apps that have none of their own.
    pub provider_id: String,
    pub keys: Vec<TrustedKey>,
    /// The apps the identity provider signs for by name, each with its provider and keys.
    pub apps: Vec<LocalApp>,
}

/// One app of the identity provider in this process: its keys sign for it alone.
#[derive(Debug, Clone)]
pub struct LocalApp {
    pub app_id: AppId,
    pub provider_id: String,
    pub key_ids: Vec<String>,
}

/// The emulator's state, shared by all workers.
pub struct MockLayer {
    /// One world per app served; the set of apps is fixed at start.
    apps: BTreeMap<AppId, Mutex<World>>,
    pub(crate) sessions: Sessions,
    pub(crate) trust: Trust,
    pub(crate) journal: Journal,
    /// `http://host:port`, the base of every `url` handed out.
    base: Arc<str>,
    settings: MockLayerSettings,
    next_socket_id: AtomicU64,
    /// Each app's Platform API token (`Authorization: Bearer …`).
    platform_tokens: BTreeMap<AppId, String>,
    /// Who may call the test controls.
    control_access: control_access::ControlAccess,
    /// Sends webhook deliveries and keeps their log.
    webhook_sender: platform::webhooks::sender::Sender,
    pub(crate) metrics: metrics::EmulatorMetrics,
    /// Set once the process is stopping: every socket closes with 1001 (going away).
    going_away: tokio::sync::watch::Sender<bool>,
}

impl MockLayer {
    /// Builds the emulator: the apps to serve, who to trust, where its URLs point.
    /// Fetches the JWKS first if one is configured.
    pub async fn build(
        settings: &MockLayerSettings,
        local: Option<LocalProvider>,
        public_addr: SocketAddr,
    ) -> anyhow::Result<Self> {
        let mut apps: Vec<AppId> = Vec::new();
        for app in &settings.app_ids {
            if !apps.contains(app) {
                apps.push(*app);
            }
        }
        if apps.is_empty() {
            apps.push(AppId::new_staging());
        }
        let trust = build_trust(settings, local, &apps)?;
        if trust.jwks_url().is_some() {
            let n = trust.refresh().await?;
            tracing::info!(keys = n, jwks_url = trust.jwks_url(), "fetched the JWKS");
        }
        let base: Arc<str> = match &settings.public_url {
            Some(url) => url.trim_end_matches('/').into(),
            // `SocketAddr`'s `Display` brackets IPv6 hosts, as a URL needs.
            None => format!("http://{}", crate::net::reachable(public_addr)).into(),
        };
        let limits = Limits {
            max_participants: settings.max_participants,
            max_channel_members: settings.max_channel_members,
            max_identities: settings.max_identities,
            max_conversations: settings.max_conversations,
            max_messages: settings.max_messages,
            max_message_bytes: settings.max_message_bytes,
            content: ContentLimits {
                max_item_bytes: settings.max_content_bytes as u64,
                max_bytes_per_user: settings.max_content_bytes_per_user as u64,
                max_bytes_per_app: settings.max_content_bytes_per_app as u64,
                unattached_ttl_ms: i64::try_from(
                    settings.content_upload_ttl_secs.saturating_mul(1000),
                )
                .unwrap_or(i64::MAX),
            },
            max_sockets_per_session: settings.max_sockets_per_session,
            max_sockets_per_user: settings.max_sockets_per_user,
            replay: ReplayLimits {
                entries_per_user: settings.replay_entries_per_user,
                bytes_per_user: settings.replay_bytes_per_user,
                bytes_per_app: settings.replay_bytes_per_app,
            },
        };
        let platform_tokens = apps
            .iter()
            .map(|app| {
                let token = match &settings.platform_token {
                    Some(token) => token.0.clone(),
                    None => ids::random_token(24),
                };
                (*app, token)
            })
            .collect();
        let control_access = control_access::ControlAccess::new(
            public_addr,
            settings.public_url.as_deref(),
            settings.control_token.as_ref().map(|t| t.0.as_str()),
        );
        let webhook_sender = platform::webhooks::sender::Sender::new(
            std::time::Duration::from_millis(settings.webhook_timeout_ms),
            settings.webhook_queue_size,
        )?;
        let notify = webhook_sender.notify();
        let metrics = metrics::EmulatorMetrics::default();
        let emulator = Self {
            webhook_sender,
            control_access,
            platform_tokens,
            apps: apps
                .into_iter()
                .map(|app| {
                    let mut world = World::new(app, base.clone(), limits);
                    world.webhooks = world::webhooks::Webhooks::new(Some(notify.clone()));
                    world.messages_created = metrics
                        .messages_created
                        .get_or_create(&metrics::AppLabels {
                            app: app.to_string(),
                        })
                        .clone();
                    (app, Mutex::new(world))
                })
                .collect(),
            metrics,
            going_away: tokio::sync::watch::Sender::new(false),
            sessions: Sessions::new(settings.nonce_ttl_secs, settings.session_ttl_secs),
            trust,
            journal: Journal::new(settings.request_log_size),
            base,
            settings: settings.clone(),
            next_socket_id: AtomicU64::new(1),
        };
        if let Some(file) = &settings.import {
            control::import_file(&emulator, file).await?;
        }
        Ok(emulator)
    }

    /// The apps served, in a stable order.
    pub fn app_ids(&self) -> Vec<AppId> {
        self.apps.keys().copied().collect()
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// The provider of apps that have none of their own, if known.
    pub fn provider_id(&self) -> Option<String> {
        self.trust.provider_id()
    }

    /// The apps with a provider of their own.
    pub fn app_providers(&self) -> Vec<(AppId, String)> {
        self.trust.app_providers()
    }

    /// The world of a served app. The guard must not be held across an `.await`.
    pub(crate) fn world(&self, app: AppId) -> Result<MutexGuard<'_, World>, LayerError> {
        let world = self.apps.get(&app).ok_or_else(|| {
            LayerError::new(
                error::ErrorKind::InvalidAppId,
                format!("the app {app} is not served by this emulator"),
            )
        })?;
        Ok(lock(world))
    }

    pub(crate) fn worlds(&self) -> impl Iterator<Item = (AppId, MutexGuard<'_, World>)> {
        self.apps.iter().map(|(app, world)| (*app, lock(world)))
    }

    pub(crate) fn next_socket_id(&self) -> u64 {
        self.next_socket_id.fetch_add(1, Ordering::Relaxed)
    }

    pub(crate) fn settings(&self) -> &MockLayerSettings {
        &self.settings
    }

    /// The app's Platform API token.
    pub fn platform_token(&self, app: AppId) -> Option<&str> {
        self.platform_tokens.get(&app).map(String::as_str)
    }

    pub(crate) fn webhook_sender(&self) -> &platform::webhooks::sender::Sender {
        &self.webhook_sender
    }

    pub(crate) fn control_access(&self) -> &control_access::ControlAccess {
        &self.control_access
    }

    /// Names the emulator's series in the application's metrics registry.
    pub fn register_metrics(&self, metrics: &crate::metrics::Metrics) {
        self.metrics.register(metrics);
    }

    /// The process is stopping: every WebSocket, open or opening, closes with 1001 (going
    /// away), so clients reconnect elsewhere rather than see a dropped connection.
    pub fn going_away(&self) {
        self.going_away.send_replace(true);
    }

    /// Resolves once [`Self::going_away`] was called (at once if it was already).
    pub(crate) fn watch_going_away(&self) -> tokio::sync::watch::Receiver<bool> {
        self.going_away.subscribe()
    }

    /// The served app whose bare UUID is `uuid` (Platform API paths name apps so).
    pub(crate) fn app_by_uuid(&self, uuid: &uuid::Uuid) -> Option<AppId> {
        self.apps.keys().find(|app| app.uuid == *uuid).copied()
    }
}

/// Locks one of the emulator's mutexes, serving on past a poisoned one. Operations check
/// what they are asked before they change anything and avoid panicking arithmetic, so a
/// lock is poisoned only by a bug; refusing every later request because of one would be
/// worse for a test tool than carrying on.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn build_trust(
    settings: &MockLayerSettings,
    local: Option<LocalProvider>,
    apps: &[AppId],
) -> anyhow::Result<Trust> {
    let mut keys = Vec::new();
    let mut bindings = Bindings::default();
    let provider_id = match (local, &settings.provider_id) {
        (Some(local), configured) => {
            if let Some(configured) = configured
                && *configured != local.provider_id
            {
                anyhow::bail!(
                    "mock_layer.provider_id is {configured}, but the identity provider in this \
                     process is {}; leave mock_layer.provider_id unset",
                    local.provider_id
                );
            }
            keys.extend(local.keys);
            for app in local.apps {
                for kid in app.key_ids {
                    bindings.app_keys.entry(kid).or_default().insert(app.app_id);
                }
                bindings.app_providers.insert(app.app_id, app.provider_id);
            }
            Some(local.provider_id)
        }
        (None, Some(configured)) => Some(configured.clone()),
        // A layer-idp's JWKS names each key's provider.
        (None, None) if settings.jwks_url.is_some() => None,
        (None, None) => anyhow::bail!(
            "the Layer emulator needs to know whose identity tokens to trust: give \
             --provider-id with --key KEY_ID=PUBLIC_KEY.pem, or --jwks-url \
             http://IDP/.well-known/jwks.json (or [mock_layer] in the config)"
        ),
    };
    for key in &settings.keys {
        keys.push(TrustedKey::from_pem_file(&key.id, &key.public_key_file)?);
    }
    if keys.is_empty() && settings.jwks_url.is_none() {
        anyhow::bail!(
            "the Layer emulator trusts no key: give --key KEY_ID=PUBLIC_KEY.pem or --jwks-url"
        );
    }
    let mut flagged: HashMap<String, BTreeSet<AppId>> = HashMap::new();
    for (&app, kids) in &settings.app_keys {
        if !apps.contains(&app) {
            anyhow::bail!("mock_layer.app_keys names {app}, which is not served");
        }
        for kid in kids {
            flagged.entry(kid.clone()).or_default().insert(app);
        }
    }
    // A key named by the flags keeps only the apps they give.
    bindings.app_keys.extend(flagged);
    for (&app, provider) in &settings.app_providers {
        bindings.app_providers.insert(app, provider.clone());
    }
    Trust::new(provider_id, keys, settings.jwks_url.clone(), bindings)
}

/// A running emulator.
pub struct Running {
    pub addr: SocketAddr,
    pub server: Server,
    pub state: web::Data<MockLayer>,
}

/// How the emulator's listener is served: its HTTP series, and how it stops.
#[derive(Clone)]
pub struct Serving {
    pub workers: usize,
    pub http_metrics: crate::metrics::HttpMetrics,
    pub stopping: crate::http_server::Stopping,
}

impl Serving {
    /// `workers` threads, HTTP series in a registry of its own (not exposed), the default
    /// drain timeout.
    pub fn unobserved(workers: usize) -> Self {
        Self {
            workers,
            http_metrics: crate::metrics::Metrics::new().http("mock_layer"),
            stopping: crate::http_server::Stopping::after(
                crate::http_server::DEFAULT_DRAIN_TIMEOUT_SECS,
            ),
        }
    }
}

/// Builds the emulator and starts serving it on an already-bound listener with `workers`
/// threads (see [`run`]).
pub async fn start(
    settings: &MockLayerSettings,
    local: Option<LocalProvider>,
    listener: TcpListener,
    workers: usize,
) -> anyhow::Result<Running> {
    start_with(settings, local, listener, Serving::unobserved(workers)).await
}

/// [`start`], served as `serving` says.
pub async fn start_with(
    settings: &MockLayerSettings,
    local: Option<LocalProvider>,
    listener: TcpListener,
    serving: Serving,
) -> anyhow::Result<Running> {
    let addr = listener.local_addr()?;
    let state = MockLayer::build(settings, local, addr).await?;
    run(state, listener, serving)
}

/// Starts serving an emulator built for this listener's address; logs
/// `Layer emulator listening` with the real address and the apps.
pub fn run(state: MockLayer, listener: TcpListener, serving: Serving) -> anyhow::Result<Running> {
    let addr = listener.local_addr()?;
    let state = web::Data::new(state);
    let server = serve(state.clone(), listener, serving)
        .with_context(|| format!("could not serve the Layer emulator on {addr}"))?;
    deliver_delayed_messages(&state);
    platform::webhooks::sender::start(&state.clone().into_inner());
    let apps = state
        .app_ids()
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",");
    tracing::info!(
        listen = %addr,
        apps = %apps,
        url = state.base_url(),
        provider_id = state.provider_id().as_deref().unwrap_or("(from the JWKS)"),
        "Layer emulator listening"
    );
    // A token the operator configured is theirs already and stays out of the log; a made-up
    // one is printed, as the app IDs are, so a backend under test can be pointed at it.
    if state.settings().platform_token.is_none() {
        for app in state.app_ids() {
            tracing::info!(
                app = %app,
                platform_token = state.platform_token(app).unwrap_or_default(),
                "Layer emulator Platform API token (Authorization: Bearer …)"
            );
        }
    }
    for (app, provider) in state.app_providers() {
        tracing::info!(app_id = %app, provider_id = provider, "an app with its own provider");
    }
    if state.control_access().is_exposed() {
        tracing::warn!(
            listen = %addr,
            "the Layer emulator listens beyond loopback and its test controls (/_mock/: reset, \
             the request journal, the pushes with their text) need no token; set \
             LAYER_IDP_MOCK_LAYER__CONTROL_TOKEN (or --mock-layer-control-token)"
        );
    }
    Ok(Running {
        addr,
        server,
        state,
    })
}

/// How often delayed messages are looked at in real time (the test controls' clock
/// delivers at once, without this).
const DELIVERY_TICK: std::time::Duration = std::time::Duration::from_millis(250);

/// Sends delayed messages when their time comes, for as long as the emulator exists.
fn deliver_delayed_messages(state: &web::Data<MockLayer>) {
    let weak = Arc::downgrade(&state.clone().into_inner());
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(DELIVERY_TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let Some(emulator) = weak.upgrade() else {
                return;
            };
            for (_, mut world) in emulator.worlds() {
                world.deliver_due();
            }
        }
    });
}

/// Serves the emulator on an already-bound listener. It never stops on a signal of its own:
/// whoever runs it stops it (see `http_server::Stopping`).
pub fn serve(
    state: web::Data<MockLayer>,
    listener: TcpListener,
    serving: Serving,
) -> std::io::Result<Server> {
    let Serving {
        workers,
        http_metrics,
        stopping,
    } = serving;
    crate::http_server::serve(
        "mock_layer",
        listener,
        workers,
        stopping,
        error::refusal_body,
        move || {
            App::new()
                // The last `wrap` sees the request first: the XDK's `/http://host:port` prefix
                // is stripped before anything looks at the path; then tracing, the guard of the
                // test controls (outside CORS, so a page's preflight to them is refused and no
                // answer of theirs carries CORS headers), CORS (whose preflight answers never
                // reach the journal, and whose refusals are turned into Layer errors), the
                // journal, and the refusal of undecodable paths, which the journal records like
                // any other answer.
                .wrap(middleware::from_fn(http::reject_undecodable_paths))
                .wrap(middleware::from_fn(journal::record_requests))
                .wrap(http::cors())
                .wrap(middleware::from_fn(http::cors_errors_as_layer_errors))
                .wrap(middleware::from_fn(control_access::guard_test_controls))
                .wrap(middleware::from_fn(|req, next| {
                    crate::telemetry::trace_requests("mock_layer", req, next)
                }))
                .wrap(middleware::from_fn({
                    let http_metrics = http_metrics.clone();
                    move |req, next| {
                        crate::metrics::record_requests(http_metrics.clone(), req, next)
                    }
                }))
                .wrap(middleware::from_fn(http::strip_absolute_url_prefix))
                .app_data(state.clone())
                .app_data(rest::path_config())
                .app_data(rest::query_config())
                .configure(platform::configure)
                .configure(rest::configure)
        },
    )
}
