//! Assembles the running service: binds every listener first (tests ask for port 0 and read
//! the real port back), loads keys, opens the store and applies migrations, builds the
//! emulator's state (its key files, its JWKS fetch), and only then starts each face on its
//! own listener — so a bad setting for either face stops the start before anything answers.
//! This is the only module that knows both faces.
//!
//! It also owns the stop: SIGTERM or Ctrl-C is caught here once for every listener (none of
//! them stops on a signal of its own). The emulator's sockets are told to close with 1001
//! (going away), every listener stops accepting, requests in flight get up to
//! `http.shutdown_timeout_secs` to finish — a token is answered only after its nonce's batch
//! has committed, so an answered token is a recorded nonce — and `serve` returns normally.

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::{Server, ServerHandle};
use anyhow::Context;

use crate::clock::Clock;
use crate::config::{Settings, display_path};
use crate::idp::apps::Apps;
use crate::idp::cors::CorsPolicy;
use crate::idp::keys::{KeyOrigin, KeyRing};
use crate::idp::metrics::IdpMetrics;
use crate::idp::password::PasswordHasher;
use crate::idp::throttle::Throttle;
use crate::idp::tokens::TokenIssuer;
use crate::idp::{self, IdpState};
use crate::metrics::Metrics;
use crate::mock_layer::{self, LocalApp, LocalProvider, MockLayer, TrustedKey};
use crate::store::{self, Store};

/// How often expired sessions and nonce records are deleted.
const PURGE_INTERVAL: Duration = Duration::from_secs(60);

pub struct Application {
    idp_addr: SocketAddr,
    idp_server: Server,
    store: Arc<dyn Store>,
    apps: Arc<Apps>,
    hasher: PasswordHasher,
    clock: Clock,
    throttle: Arc<Throttle>,
    audit_retention_secs: i64,
    /// The Layer emulator, when `mock_layer.listen` is set.
    mock_layer: Option<mock_layer::Running>,
    /// This application's metrics (both faces record into it).
    metrics: Arc<Metrics>,
    /// The `/metrics` listener, when `metrics.listen` is set.
    metrics_server: Option<crate::metrics::Running>,
    /// How long requests in flight get to finish once a stop begins.
    drain_timeout_secs: u64,
    /// Identity sync's worker, when sync is on.
    identity_sync: Option<idp::sync::Worker>,
}

impl Application {
    /// Binds the configured address and builds the application.
    pub async fn build(settings: &Settings) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(settings.listen)
            .with_context(|| format!("could not listen on {} (set --listen)", settings.listen))?;
        Self::build_with_listener(settings, listener).await
    }

    /// Builds the application on an already-bound listener.
    pub async fn build_with_listener(
        settings: &Settings,
        listener: TcpListener,
    ) -> anyhow::Result<Self> {
        Self::build_with_listener_and_clock(settings, listener, Clock::system()).await
    }

    /// Builds the application on an already-bound listener with the given clock: tests pass a
    /// [`Clock::manual`] to move time for the rules that depend on it.
    pub async fn build_with_listener_and_clock(
        settings: &Settings,
        listener: TcpListener,
        clock: Clock,
    ) -> anyhow::Result<Self> {
        let mock_layer_listener = match settings.mock_layer.listen {
            None => None,
            Some(addr) => Some(TcpListener::bind(addr).with_context(|| {
                format!("could not listen on {addr} (set --mock-layer-listen)")
            })?),
        };
        let metrics_listener = match settings.metrics.listen {
            None => None,
            Some(addr) => Some(TcpListener::bind(addr).with_context(|| {
                format!("could not listen on {addr} (set --metrics-listen or metrics.listen)")
            })?),
        };
        let metrics = Arc::new(Metrics::new());
        let idp_metrics = IdpMetrics::new();
        let apps = Arc::new(load_keys(settings).await?);
        let store = open_store(settings).await?;
        let hasher = {
            let passwords = settings.passwords.clone();
            tokio::task::spawn_blocking(move || PasswordHasher::new(&passwords)).await??
        }
        .with_wait_histogram(idp_metrics.hash_wait.clone());
        idp_metrics.register(&metrics, &hasher, &store);
        let issuer = TokenIssuer::new(apps.clone(), store.clone(), &idp_metrics);
        let session_ttl_secs = i64::try_from(settings.sessions.ttl_secs).unwrap_or(i64::MAX);
        let throttle = Arc::new(Throttle::new(
            store.clone(),
            clock.clone(),
            settings.throttle.clone(),
            session_ttl_secs,
            idp_metrics.clone(),
        ));
        let state = IdpState {
            clock: clock.clone(),
            store: store.clone(),
            sessions: crate::idp::session_lookups::SessionLookups::start(
                store.clone(),
                idp_metrics.session_lookup_seconds(),
            ),
            hasher: hasher.clone(),
            throttle: throttle.clone(),
            issuer,
            session_ttl_secs,
            max_body_bytes: settings.http.max_body_bytes,
            mailer: Arc::new(crate::idp::mail::Mailer::from_settings(
                &settings.mail,
                &settings.data_dir,
            )?),
            lifecycle: crate::idp::lifecycle::Lifecycle::new(&settings.accounts, &settings.mail),
            cors: CorsPolicy::new(
                settings.http.cors_origins()?,
                // Development credentials (no key configured for any app): any local web app
                // may call, with no configuration.
                apps.rings()
                    .iter()
                    .all(|ring| matches!(ring.origin(), KeyOrigin::Development { .. })),
            ),
            metrics: idp_metrics,
        };
        let emulator = match mock_layer_listener {
            None => None,
            Some(listener) => {
                let addr = listener.local_addr()?;
                let local = local_provider(apps.primary(), &apps);
                let state = MockLayer::build(&settings.mock_layer, Some(local), addr).await?;
                state.register_metrics(&metrics);
                Some((state, listener))
            }
        };
        let identity_sync = identity_sync_target(settings, emulator.as_ref())?
            .map(|target| {
                idp::sync::Worker::new(
                    store.clone(),
                    clock.clone(),
                    target,
                    &settings.identity_sync,
                )
            })
            .transpose()?;
        if let Some(worker) = &identity_sync {
            let status = worker.status();
            metrics.gauge_fn(
                "identity_sync_backlog",
                "Identity changes waiting to reach Layer, as last counted (every minute)",
                move || status.backlog(),
            );
        }
        // Everything that can fail on a setting has run. (An actix `Server` serves only once
        // it is polled, in `run_until_stopped`; one dropped on an error never served.)
        let idp_addr = listener.local_addr()?;
        let workers = worker_count(settings);
        let proxies = idp::client::TrustedProxies {
            networks: settings.http.trusted_proxies.clone(),
            header: settings.http.forwarded_header,
        };
        let drain_timeout_secs = settings.http.shutdown_timeout_secs;
        let idp_server = idp::serve(
            state,
            proxies,
            listener,
            workers,
            metrics.http("idp"),
            drain_timeout_secs,
        )?;
        report_start(&apps, idp_addr, settings);
        let mock_layer = emulator
            .map(|(state, listener)| {
                let serving = mock_layer::Serving {
                    workers,
                    http_metrics: metrics.http("mock_layer"),
                    stopping: crate::http_server::Stopping::after(drain_timeout_secs),
                };
                mock_layer::run(state, listener, serving)
            })
            .transpose()?;
        let metrics_server = metrics_listener
            .map(|listener| crate::metrics::serve(metrics.clone(), listener))
            .transpose()?;
        Ok(Self {
            idp_addr,
            idp_server,
            store,
            apps,
            hasher,
            clock,
            throttle,
            audit_retention_secs: i64::from(settings.audit.retention_days) * 24 * 3600,
            mock_layer,
            metrics,
            metrics_server,
            drain_timeout_secs,
            identity_sync,
        })
    }

    /// Where `GET /metrics` is served, when `metrics.listen` is set.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_server.as_ref().map(|m| m.addr)
    }

    /// This application's metrics registry: a series added after start (an outbox backlog,
    /// say) is one `metrics().gauge(…)` or `gauge_fn(…)` away.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    pub fn idp_addr(&self) -> SocketAddr {
        self.idp_addr
    }

    /// Where the Layer emulator listens, when it runs.
    pub fn mock_layer_addr(&self) -> Option<SocketAddr> {
        self.mock_layer.as_ref().map(|m| m.addr)
    }

    /// The apps the Layer emulator serves (empty when it does not run).
    pub fn mock_layer_apps(&self) -> Vec<mock_layer::AppId> {
        self.mock_layer
            .as_ref()
            .map(|m| m.state.app_ids())
            .unwrap_or_default()
    }

    /// The first (in a single-app configuration, the only) app's keys.
    pub fn keys(&self) -> &Arc<KeyRing> {
        self.apps.primary()
    }

    /// Identity sync's counters (the backlog), when sync is on.
    pub fn identity_sync_status(&self) -> Option<Arc<idp::sync::SyncStatus>> {
        self.identity_sync.as_ref().map(|worker| worker.status())
    }

    /// Every app's keys.
    pub fn apps(&self) -> &Arc<Apps> {
        &self.apps
    }

    /// The password hasher the identity provider uses (its counters, for tests and metrics).
    pub fn password_hasher(&self) -> &PasswordHasher {
        &self.hasher
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// A handle to stop the servers (tests restart the application with it); stopping the
    /// identity provider stops the emulator and the metrics listener too (see
    /// [`Self::run_until_stopped`]).
    pub fn handle(&self) -> ServerHandle {
        self.idp_server.handle()
    }

    /// Serves until SIGTERM, Ctrl-C or [`ServerHandle::stop`], purging expired records
    /// meanwhile; then stops every listener gracefully (see the module's comment) and returns.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let store = self.store.clone();
        let clock = self.clock.clone();
        let throttle = self.throttle.clone();
        let audit_retention = self.audit_retention_secs;
        let purge = async move {
            let mut tick = tokio::time::interval(PURGE_INTERVAL);
            loop {
                tick.tick().await;
                match store.purge_expired(clock.now()).await {
                    Ok(0) => {}
                    Ok(n) => tracing::debug!(rows = n, "purged expired sessions and nonces"),
                    Err(e) => tracing::warn!(error = ?e, "purging expired records failed"),
                }
                match store
                    .purge_audit_events(clock.now() - audit_retention)
                    .await
                {
                    Ok(0) => {}
                    Ok(n) => tracing::debug!(rows = n, "purged audit events past retention"),
                    Err(e) => tracing::warn!(error = ?e, "purging audit events failed"),
                }
                match throttle.purge().await {
                    Ok(0) => {}
                    Ok(n) => tracing::debug!(rows = n, "purged login-throttling records"),
                    Err(e) => tracing::warn!(error = ?e, "purging login-throttling records failed"),
                }
            }
        };
        // Each server runs as a task of its own until all have stopped: a server makes
        // progress (and so stops) only while it is polled.
        let mut handles = vec![self.idp_server.handle()];
        let mut idp = Some(tokio::spawn(self.idp_server));
        let emulator = self.mock_layer.map(|running| {
            handles.push(running.server.handle());
            (running.state, tokio::spawn(running.server))
        });
        let mut metrics_server = self.metrics_server.map(|running| {
            handles.push(running.server.handle());
            tokio::spawn(running.server)
        });
        let (emulator_state, mut emulator_server) = emulator.unzip();
        let (stop_sync, stopping) = tokio::sync::watch::channel(false);
        let identity_sync = self
            .identity_sync
            .map(|worker| tokio::spawn(worker.run(stopping)));
        // A task that ended is taken out, so it is not awaited twice.
        let first = tokio::select! {
            joined = until_done(&mut idp) => {
                idp = None;
                Some(flatten(joined))
            }
            joined = until_done(&mut emulator_server) => {
                emulator_server = None;
                Some(flatten(joined))
            }
            joined = until_done(&mut metrics_server) => {
                metrics_server = None;
                Some(flatten(joined))
            }
            () = purge => None,
            signal = until_stop_signal() => {
                tracing::info!(
                    signal,
                    drain_timeout_secs = self.drain_timeout_secs,
                    "stopping: no new connections; finishing the requests in flight"
                );
                None
            }
        };
        // Whichever stopped first (or a signal), every listener stops, gracefully: open
        // sockets hear "going away" first.
        if let Some(state) = &emulator_state {
            state.going_away();
        }
        // Each stop command is sent when asked for, so the servers drain side by side; the
        // identity-sync worker finishes the round it is sending, within the drain timeout.
        stop_sync.send_replace(true);
        let stops: Vec<_> = handles.iter().map(|handle| handle.stop(true)).collect();
        for stop in stops {
            stop.await;
        }
        if let Some(worker) = identity_sync {
            let drain = Duration::from_secs(self.drain_timeout_secs);
            if tokio::time::timeout(drain, worker).await.is_err() {
                tracing::warn!("identity sync did not finish its round within the drain timeout");
            }
        }
        let mut results = Vec::from_iter(first);
        for server in [idp, emulator_server, metrics_server].into_iter().flatten() {
            results.push(flatten(server.await));
        }
        tracing::info!("stopped");
        results.into_iter().collect()
    }
}

/// A server task's result as the server's own.
fn flatten(joined: Result<std::io::Result<()>, tokio::task::JoinError>) -> std::io::Result<()> {
    joined.map_err(std::io::Error::other)?
}

/// Waits for a task that may not exist (then forever).
async fn until_done<T>(
    task: &mut Option<tokio::task::JoinHandle<T>>,
) -> Result<T, tokio::task::JoinError> {
    match task {
        Some(task) => task.await,
        None => std::future::pending().await,
    }
}

/// Resolves on SIGTERM (how containers and service managers stop a process) or Ctrl-C, with
/// the signal's name. A signal that cannot be listened for is logged and never arrives.
pub async fn until_stop_signal() -> &'static str {
    let interrupt = async {
        match tokio::signal::ctrl_c().await {
            Ok(()) => "SIGINT",
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for Ctrl-C");
                std::future::pending().await
            }
        }
    };
    #[cfg(unix)]
    let terminate = async {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                term.recv().await;
                "SIGTERM"
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM");
                std::future::pending().await
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<&'static str>();
    tokio::select! {
        name = interrupt => name,
        name = terminate => name,
    }
}

/// The identity provider's provider ID and public keys, as the emulator's own types: the
/// emulator then trusts this provider's identity tokens without configuration.
/// Each app the identity provider signs for by name is the emulator's app with that ID, with
/// that app's provider and keys only.
fn local_provider(primary: &KeyRing, apps: &Apps) -> LocalProvider {
    LocalProvider {
        apps: apps
            .rings()
            .iter()
            .filter_map(|ring| {
                Some(LocalApp {
                    app_id: ring.app_id()?,
                    provider_id: ring.provider_id().to_owned(),
                    key_ids: ring.keys().iter().map(|k| k.id().to_owned()).collect(),
                })
            })
            .collect(),
        provider_id: primary.provider_id().to_owned(),
        keys: apps
            .rings()
            .iter()
            .flat_map(|ring| ring.keys())
            .map(|key| TrustedKey {
                id: key.id().to_owned(),
                n: key.public().n().to_vec(),
                e: key.public().e().to_vec(),
            })
            .collect(),
    }
}

/// HTTP worker threads per server: `http.workers`, else one per CPU.
pub fn worker_count(settings: &Settings) -> usize {
    settings.http.workers.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(usize::from)
            .unwrap_or(2)
    })
}

/// Where identity sync sends, if it is on: the configured Platform API, or else the emulator
/// in this process — its address, first app and Platform API token, handed over as plain data.
fn identity_sync_target(
    settings: &Settings,
    emulator: Option<&(MockLayer, TcpListener)>,
) -> anyhow::Result<Option<idp::sync::SyncTarget>> {
    let sync = &settings.identity_sync;
    if !sync.is_on(emulator.is_some()) {
        return Ok(None);
    }
    if let Some(target) = sync.configured_target() {
        return Ok(Some(target));
    }
    let Some((state, listener)) = emulator else {
        return Ok(None);
    };
    let served = state.app_ids();
    let Some(app) = (settings.mock_layer.app_ids.iter())
        .find(|app| served.contains(app))
        .or(served.first())
        .copied()
    else {
        return Ok(None);
    };
    let token = state
        .platform_token(app)
        .context("the emulator has no Platform API token for its first app")?;
    Ok(Some(idp::sync::SyncTarget {
        base_url: format!("http://{}", crate::net::reachable(listener.local_addr()?)),
        app: crate::app_id::ClientAppId {
            environment: Some(app.environment),
            uuid: app.uuid,
        },
        token: token.to_owned().into(),
    }))
}

/// Opens the configured database and applies its migrations. User changes write
/// identity-outbox rows when identity sync is on, in the server and the command line alike.
pub async fn open_store(settings: &Settings) -> anyhow::Result<Arc<dyn Store>> {
    let url = settings.effective_database_url();
    let outbox = (settings.identity_sync).is_on(settings.mock_layer.listen.is_some());
    let store = store::connect(&url, outbox)
        .await
        .with_context(|| format!("could not open the database {url} (set DATABASE_URL)"))?;
    store
        .migrate()
        .await
        .with_context(|| format!("could not apply migrations to {url}"))?;
    Ok(store)
}

/// Loads (or, in development, generates) every app's signing keys off the async workers.
/// With no keys configured and the emulator serving several apps, development credentials
/// are made per app, so the emulator in this process can tell the apps' keys apart as Layer
/// did.
pub async fn load_keys(settings: &Settings) -> anyhow::Result<Apps> {
    let settings = settings.clone();
    let development_apps = match settings.mock_layer.listen {
        Some(_) => {
            let mut apps = settings.mock_layer.app_ids.clone();
            apps.sort();
            apps.dedup();
            apps
        }
        None => Vec::new(),
    };
    let keys = tokio::task::spawn_blocking(move || Apps::load(&settings, &development_apps))
        .await?
        .context("could not load the signing keys")?;
    Ok(keys)
}

fn report_start(apps: &Apps, addr: SocketAddr, settings: &Settings) {
    let database = settings.effective_database_url();
    let primary = apps.primary();
    tracing::info!(
        listen = %addr,
        database = %database,
        provider_id = primary.provider_id(),
        active_key_id = primary.active().id(),
        published_keys = apps.rings().iter().map(|r| r.keys().len()).sum::<usize>(),
        apps = apps.rings().len(),
        "identity provider listening"
    );
    for keys in apps.rings() {
        if let Some(app_id) = keys.app_id() {
            tracing::info!(
                app_id = %app_id,
                provider_id = keys.provider_id(),
                active_key_id = keys.active().id(),
                published_keys = keys.keys().len(),
                "signing identity tokens for an app"
            );
        }
        if let KeyOrigin::Development { dir } = keys.origin() {
            tracing::warn!(
                keys_dir = %display_path(dir),
                provider_id = keys.provider_id(),
                key_id = keys.active().id(),
                "DEVELOPMENT CREDENTIALS: no signing key is configured, so a development key \
                 pair and made-up Layer provider and key IDs are in use. Real Layer will not \
                 accept these tokens; configure provider_id and signing keys for production \
                 (README)."
            );
        }
    }
}
