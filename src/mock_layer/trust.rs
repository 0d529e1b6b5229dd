//! Whose identity tokens the emulator believes: the Layer provider of each app, the public
//! keys by `kid`, and which app each key may sign for.
//!
//! Layer registered a provider and its keys per app, so a staging and a production app each
//! have their own. The bindings (key → apps, app → provider) come from the flags
//! (`--app-key`, `--app-provider`), from the identity provider in the same process, or from
//! the JWKS, whose entries name their app and provider in `layer_app_id` and
//! `layer_provider_id`. A key bound to no app may sign for every app; an app bound to no
//! provider has the default one (`--provider-id`).
//!
//! Keys arrive three ways — handed over by `startup.rs` from the identity provider running in
//! the same process, read from PEM files, or fetched from a layer-idp's JWKS URL — and are
//! parsed once into `jsonwebtoken::DecodingKey`s, never per request. An unknown `kid` makes
//! the emulator refetch the JWKS (if it has one) at most once per `REFETCH_INTERVAL`, so a
//! stream of made-up key IDs cannot turn it into a request amplifier.
//!
//! This module must not import the identity provider: what it needs arrives as plain
//! [`TrustedKey`]s.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::DecodingKey;
use jsonwebtoken::jwk::{AlgorithmParameters, Jwk};
use serde::Deserialize;

use super::ids::AppId;
use super::lock;

/// How long an unknown `kid` waits before it may trigger another JWKS fetch.
const REFETCH_INTERVAL: Duration = Duration::from_secs(5);

/// How long a JWKS fetch may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// A public RSA key, as big-endian modulus and exponent.
#[derive(Clone)]
pub struct TrustedKey {
    pub id: String,
    pub n: Vec<u8>,
    pub e: Vec<u8>,
}

impl std::fmt::Debug for TrustedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TrustedKey({}, RSA-{})", self.id, self.n.len() * 8)
    }
}

impl TrustedKey {
    /// Reads a SubjectPublicKeyInfo PEM file (what `layer-idp keys generate` writes).
    pub fn from_pem_file(id: &str, path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            anyhow::anyhow!("could not read the public key {}: {e}", path.display())
        })?;
        let pem = pem::parse(text.as_bytes())
            .map_err(|e| anyhow::anyhow!("{} is not a PEM file: {e}", path.display()))?;
        if pem.tag() != "PUBLIC KEY" {
            anyhow::bail!(
                "{} holds a {}, not a PUBLIC KEY (give the .public.pem file)",
                path.display(),
                pem.tag()
            );
        }
        let key = aws_lc_rs::rsa::PublicKey::from_der(pem.contents()).map_err(|_| {
            anyhow::anyhow!(
                "{} is not an RSA public key of 2048 bits or more",
                path.display()
            )
        })?;
        let components = aws_lc_rs::rsa::PublicKeyComponents::<Vec<u8>>::from(&key);
        Ok(Self {
            id: id.to_owned(),
            n: components.n,
            e: components.e,
        })
    }
}

/// Why a token's key was not accepted for an app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyRefusal {
    /// No such `kid`, even after a JWKS refetch.
    Unknown,
    /// The key is registered only for other apps: the staging/production mix-up.
    OtherApps(Vec<AppId>),
}

/// Which key signs for which app, and which provider each app has.
#[derive(Debug, Clone, Default)]
pub struct Bindings {
    /// `kid` → the apps it may sign for; a `kid` absent here may sign for every app.
    pub app_keys: HashMap<String, BTreeSet<AppId>>,
    /// App → its own provider; an app absent here has the default provider.
    pub app_providers: HashMap<AppId, String>,
}

impl Bindings {
    /// `other`'s bindings win: a key it names keeps only the apps it gives.
    fn overridden_by(mut self, other: &Bindings) -> Self {
        for (kid, apps) in &other.app_keys {
            self.app_keys.insert(kid.clone(), apps.clone());
        }
        for (app, provider) in &other.app_providers {
            self.app_providers.insert(*app, provider.clone());
        }
        self
    }
}

/// What is trusted now; replaced whole when the JWKS is refetched.
#[derive(Default)]
struct Current {
    keys: HashMap<String, DecodingKey>,
    bindings: Bindings,
    /// The provider the JWKS names for keys bound to no app.
    jwks_provider: Option<String>,
}

/// The trusted providers and their keys.
pub struct Trust {
    /// The provider of every app that has none of its own.
    provider_id: Option<String>,
    current: RwLock<Arc<Current>>,
    /// Keys given directly (files, the in-process IdP), kept across JWKS refetches.
    static_keys: Vec<TrustedKey>,
    /// Bindings given directly (flags, the in-process IdP); they win over the JWKS's.
    static_bindings: Bindings,
    jwks_url: Option<String>,
    /// When the JWKS was last fetched; the `Mutex` also serialises fetches.
    last_fetch: Mutex<Option<Instant>>,
    http: reqwest::Client,
}

impl std::fmt::Debug for Trust {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Trust")
            .field("provider_id", &self.provider_id)
            .field("static_keys", &self.static_keys)
            .field("static_bindings", &self.static_bindings)
            .field("jwks_url", &self.jwks_url)
            .finish_non_exhaustive()
    }
}

/// A JWKS entry as layer-idp publishes it: the JWK and the app and provider it belongs to.
#[derive(Deserialize)]
struct PublishedKeys {
    keys: Vec<serde_json::Value>,
}

impl Trust {
    pub fn new(
        provider_id: Option<String>,
        static_keys: Vec<TrustedKey>,
        jwks_url: Option<String>,
        static_bindings: Bindings,
    ) -> anyhow::Result<Self> {
        // Directly, never through a proxy the environment names: the JWKS is a layer-idp's,
        // most often on the same host, which a proxy would not reach (or should not see).
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(FETCH_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        let current = Current {
            keys: parse_keys(&static_keys),
            bindings: static_bindings.clone(),
            jwks_provider: None,
        };
        Ok(Self {
            provider_id,
            current: RwLock::new(Arc::new(current)),
            static_keys,
            static_bindings,
            jwks_url,
            last_fetch: Mutex::new(None),
            http,
        })
    }

    /// The default provider: configured, else the one the JWKS names for unbound keys.
    pub fn provider_id(&self) -> Option<String> {
        self.provider_id
            .clone()
            .or_else(|| self.current().jwks_provider.clone())
    }

    /// The provider whose tokens `app` accepts: its own, else the default one.
    pub fn provider_for(&self, app: AppId) -> Option<String> {
        self.current()
            .bindings
            .app_providers
            .get(&app)
            .cloned()
            .or_else(|| self.provider_id())
    }

    /// Every app with a provider of its own, sorted.
    pub fn app_providers(&self) -> Vec<(AppId, String)> {
        let mut providers: Vec<_> = self
            .current()
            .bindings
            .app_providers
            .iter()
            .map(|(app, provider)| (*app, provider.clone()))
            .collect();
        providers.sort();
        providers
    }

    pub fn jwks_url(&self) -> Option<&str> {
        self.jwks_url.as_deref()
    }

    /// The IDs of the keys currently trusted, sorted.
    pub fn key_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.current().keys.keys().cloned().collect();
        ids.sort();
        ids
    }

    fn current(&self) -> Arc<Current> {
        // A poisoned lock only means a panic elsewhere while swapping an `Arc`; the value
        // inside is still whole.
        self.current
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Fetches the JWKS now (at start-up). Errors say what to check.
    pub async fn refresh(&self) -> anyhow::Result<usize> {
        let Some(url) = &self.jwks_url else {
            return Ok(0);
        };
        let jwks: PublishedKeys = self
            .http
            .get(url)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|e| anyhow::anyhow!("could not fetch the JWKS from {url}: {e}"))?
            .json()
            .await
            .map_err(|e| anyhow::anyhow!("{url} did not answer a JWKS: {e}"))?;
        let mut keys = parse_keys(&self.static_keys);
        let mut learned = Bindings::default();
        let mut jwks_provider = None;
        let mut fetched = 0;
        for entry in &jwks.keys {
            let Ok(jwk) = serde_json::from_value::<Jwk>(entry.clone()) else {
                tracing::warn!("skipping a JWKS entry that is not a JWK");
                continue;
            };
            let (Some(kid), AlgorithmParameters::RSA(rsa)) = (&jwk.common.key_id, &jwk.algorithm)
            else {
                continue;
            };
            let key = match DecodingKey::from_rsa_components(&rsa.n, &rsa.e) {
                Ok(key) => key,
                Err(e) => {
                    tracing::warn!(kid, error = %e, "skipping an unusable JWKS key");
                    continue;
                }
            };
            keys.insert(kid.clone(), key);
            fetched += 1;
            let provider = entry["layer_provider_id"].as_str().map(str::to_owned);
            match entry["layer_app_id"].as_str().map(AppId::parse) {
                Some(Ok(app)) => {
                    learned.app_keys.entry(kid.clone()).or_default().insert(app);
                    if let Some(provider) = provider {
                        learned.app_providers.insert(app, provider);
                    }
                }
                Some(Err(e)) => tracing::warn!(kid, error = %e, "a JWKS entry names no usable app"),
                None => jwks_provider = provider.or(jwks_provider),
            }
        }
        let current = Current {
            keys,
            bindings: learned.overridden_by(&self.static_bindings),
            jwks_provider,
        };
        *self
            .current
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(current);
        Ok(fetched)
    }

    /// The key for `kid`, if it may sign for `app`. An unknown `kid` triggers one JWKS
    /// refetch (rate-limited).
    pub async fn key_for(&self, kid: &str, app: AppId) -> Result<DecodingKey, KeyRefusal> {
        let mut current = self.current();
        if !current.keys.contains_key(kid) {
            self.refetch_for_unknown_kid().await;
            current = self.current();
        }
        let key = current.keys.get(kid).cloned().ok_or(KeyRefusal::Unknown)?;
        match current.bindings.app_keys.get(kid) {
            Some(apps) if !apps.contains(&app) => {
                Err(KeyRefusal::OtherApps(apps.iter().copied().collect()))
            }
            _ => Ok(key),
        }
    }

    async fn refetch_for_unknown_kid(&self) {
        if self.jwks_url.is_none() {
            return;
        }
        {
            let mut last = lock(&self.last_fetch);
            if last.is_some_and(|at| at.elapsed() < REFETCH_INTERVAL) {
                return;
            }
            *last = Some(Instant::now());
            // The lock is released here, before the fetch awaits.
        }
        match self.refresh().await {
            Ok(n) => tracing::info!(keys = n, "refetched the JWKS for an unknown kid"),
            Err(e) => tracing::warn!(error = %e, "refetching the JWKS failed"),
        }
    }
}

fn parse_keys(keys: &[TrustedKey]) -> HashMap<String, DecodingKey> {
    keys.iter()
        .map(|k| {
            (
                k.id.clone(),
                DecodingKey::from_rsa_raw_components(&k.n, &k.e),
            )
        })
        .collect()
}
