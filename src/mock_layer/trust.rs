//! Whose identity tokens the emulator believes: one Layer provider, its public keys by
//! `kid`, and which app each key may sign for.
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
use jsonwebtoken::jwk::{AlgorithmParameters, JwkSet};

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

/// The trusted provider and its keys.
pub struct Trust {
    provider_id: String,
    /// Parsed keys by `kid`. Replaced whole when the JWKS is refetched.
    keys: RwLock<Arc<HashMap<String, DecodingKey>>>,
    /// Keys given directly (files, the in-process IdP), kept across JWKS refetches.
    static_keys: Vec<TrustedKey>,
    /// `kid` → the apps it may sign for; a `kid` absent here may sign for every app.
    app_keys: HashMap<String, BTreeSet<AppId>>,
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
            .field("jwks_url", &self.jwks_url)
            .finish_non_exhaustive()
    }
}

impl Trust {
    pub fn new(
        provider_id: String,
        static_keys: Vec<TrustedKey>,
        jwks_url: Option<String>,
        app_keys: HashMap<String, BTreeSet<AppId>>,
    ) -> anyhow::Result<Self> {
        // Directly, never through a proxy the environment names: the JWKS is a layer-idp's,
        // most often on the same host, which a proxy would not reach (or should not see).
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(FETCH_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        let keys = parse_keys(&static_keys);
        Ok(Self {
            provider_id,
            keys: RwLock::new(Arc::new(keys)),
            static_keys,
            app_keys,
            jwks_url,
            last_fetch: Mutex::new(None),
            http,
        })
    }

    pub fn provider_id(&self) -> &str {
        &self.provider_id
    }

    pub fn jwks_url(&self) -> Option<&str> {
        self.jwks_url.as_deref()
    }

    /// The IDs of the keys currently trusted, sorted.
    pub fn key_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.current().keys().cloned().collect();
        ids.sort();
        ids
    }

    fn current(&self) -> Arc<HashMap<String, DecodingKey>> {
        // A poisoned lock only means a panic elsewhere while swapping an `Arc`; the map
        // inside is still whole.
        self.keys
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Fetches the JWKS now (at start-up). Errors say what to check.
    pub async fn refresh(&self) -> anyhow::Result<usize> {
        let Some(url) = &self.jwks_url else {
            return Ok(0);
        };
        let jwks: JwkSet = self
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
        let mut fetched = 0;
        for jwk in &jwks.keys {
            let (Some(kid), AlgorithmParameters::RSA(rsa)) = (&jwk.common.key_id, &jwk.algorithm)
            else {
                continue;
            };
            match DecodingKey::from_rsa_components(&rsa.n, &rsa.e) {
                Ok(key) => {
                    keys.insert(kid.clone(), key);
                    fetched += 1;
                }
                Err(e) => tracing::warn!(kid, error = %e, "skipping an unusable JWKS key"),
            }
        }
        *self
            .keys
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(keys);
        Ok(fetched)
    }

    /// The key for `kid`, if it may sign for `app`. An unknown `kid` triggers one JWKS
    /// refetch (rate-limited).
    pub async fn key_for(&self, kid: &str, app: AppId) -> Result<DecodingKey, KeyRefusal> {
        let key = match self.current().get(kid) {
            Some(key) => key.clone(),
            None => {
                self.refetch_for_unknown_kid().await;
                self.current()
                    .get(kid)
                    .cloned()
                    .ok_or(KeyRefusal::Unknown)?
            }
        };
        match self.app_keys.get(kid) {
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
