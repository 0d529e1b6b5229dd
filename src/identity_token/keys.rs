//! The keys the token inspector checks a token against: this layer-idp's (every app's), a
//! JWKS fetched from a URL, or one public key given as a PEM — and which app and provider
//! each key belongs to, so that the inspector can name a staging/production mix-up.

use std::time::Duration;

use jsonwebtoken::DecodingKey;
use jsonwebtoken::jwk::{AlgorithmParameters, Jwk};

use super::KeyVerdict;
use crate::app_id::AppId;

/// How long a JWKS fetch may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// A JWKS larger than this is not a layer-idp's.
const MAX_JWKS_BYTES: usize = 1024 * 1024;

/// One public key and what it belongs to.
#[derive(Clone)]
pub struct KnownKey {
    /// The Layer key ID (`layer:///keys/<UUID>`); `None` for a key given without one, which
    /// is tried whatever the token's `kid` says.
    pub id: Option<String>,
    /// A name the key is also known by (its file name), for "the kid is the key's name".
    pub name: Option<String>,
    pub app: Option<AppId>,
    pub provider: Option<String>,
    key: DecodingKey,
}

impl KnownKey {
    /// From the RSA modulus and exponent, big-endian.
    pub fn from_components(id: Option<String>, n: &[u8], e: &[u8]) -> Self {
        Self {
            id,
            name: None,
            app: None,
            provider: None,
            key: DecodingKey::from_rsa_raw_components(n, e),
        }
    }

    pub fn named(mut self, name: Option<String>) -> Self {
        self.name = name;
        self
    }

    pub fn belonging_to(mut self, app: Option<AppId>, provider: Option<String>) -> Self {
        self.app = app;
        self.provider = provider;
        self
    }
}

/// The keys to check against, and where they came from (for the report).
pub struct KeySet {
    pub keys: Vec<KnownKey>,
    /// Who trusts these keys, in the report's words ("this layer-idp").
    pub source: String,
}

impl KeySet {
    /// The verdict for `kid` when the token is presented for `app` (if known).
    pub fn verdict(&self, kid: &str, app: Option<AppId>) -> KeyVerdict {
        if let Some(key) = self.keys.iter().find(|k| k.id.is_none()) {
            return KeyVerdict::Trusted {
                key: key.key.clone(),
                note: format!(
                    "checked with {} (the kid is not looked up in a key table)",
                    self.source
                ),
            };
        }
        let Some(key) = self.keys.iter().find(|k| k.id.as_deref() == Some(kid)) else {
            return KeyVerdict::Unknown {
                truster: self.source.clone(),
                known: self.keys.iter().filter_map(|k| k.id.clone()).collect(),
                named: self
                    .keys
                    .iter()
                    .find(|k| k.name.as_deref() == Some(kid))
                    .and_then(|k| k.id.clone()),
            };
        };
        match (key.app, app) {
            (Some(owner), Some(app)) if owner != app => KeyVerdict::OtherApps {
                registered: vec![(owner.to_string(), owner.environment.as_str().to_owned())],
                presented: (app.to_string(), app.environment.as_str().to_owned()),
            },
            (owner, _) => KeyVerdict::Trusted {
                key: key.key.clone(),
                note: match owner {
                    Some(owner) => format!(
                        "{kid} is a key of {} for {owner} ({})",
                        self.source,
                        owner.environment.as_str()
                    ),
                    None => format!("{kid} is a key of {}", self.source),
                },
            },
        }
    }

    /// The app whose provider is `provider`, if exactly one key names it.
    pub fn app_of_provider(&self, provider: &str) -> Option<AppId> {
        self.keys
            .iter()
            .find(|k| k.provider.as_deref() == Some(provider) && k.app.is_some())
            .and_then(|k| k.app)
    }

    /// The provider IDs these keys belong to, sorted, without repeats.
    pub fn providers(&self) -> Vec<String> {
        let mut providers: Vec<String> = self
            .keys
            .iter()
            .filter_map(|k| k.provider.clone())
            .collect();
        providers.sort();
        providers.dedup();
        providers
    }

    /// The provider of the key `kid`, if it names one.
    pub fn provider_of_key(&self, kid: &str) -> Option<String> {
        self.keys
            .iter()
            .find(|k| k.id.as_deref() == Some(kid))
            .and_then(|k| k.provider.clone())
    }

    /// The app of the key `kid`, if it names one.
    pub fn app_of_key(&self, kid: &str) -> Option<AppId> {
        self.keys
            .iter()
            .find(|k| k.id.as_deref() == Some(kid))
            .and_then(|k| k.app)
    }

    /// Fetches a JWKS (a layer-idp's names each key's app and provider in `layer_app_id` and
    /// `layer_provider_id`). Entries that are not RSA keys with a `kid` are skipped.
    pub async fn from_jwks_url(url: &str) -> Result<Self, String> {
        let parsed = reqwest::Url::parse(url).map_err(|e| format!("{url:?} is not a URL: {e}"))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(format!("{url:?} is not an http(s) URL"));
        }
        let http = reqwest::Client::builder()
            .timeout(FETCH_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| e.to_string())?;
        let response = http
            .get(parsed)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|e| format!("could not fetch the JWKS from {url}: {e}"))?;
        let body = response
            .bytes()
            .await
            .map_err(|e| format!("could not read the JWKS from {url}: {e}"))?;
        if body.len() > MAX_JWKS_BYTES {
            return Err(format!("{url} answered more than {MAX_JWKS_BYTES} bytes"));
        }
        let value: serde_json::Value =
            serde_json::from_slice(&body).map_err(|e| format!("{url} did not answer JSON: {e}"))?;
        let entries = value["keys"]
            .as_array()
            .ok_or_else(|| format!("{url} did not answer a JWKS ({{\"keys\": […]}})"))?;
        let mut keys = Vec::new();
        for entry in entries {
            let Ok(jwk) = serde_json::from_value::<Jwk>(entry.clone()) else {
                continue;
            };
            let (Some(kid), AlgorithmParameters::RSA(rsa)) = (&jwk.common.key_id, &jwk.algorithm)
            else {
                continue;
            };
            let Ok(key) = DecodingKey::from_rsa_components(&rsa.n, &rsa.e) else {
                continue;
            };
            keys.push(KnownKey {
                id: Some(kid.clone()),
                name: None,
                app: entry["layer_app_id"]
                    .as_str()
                    .and_then(|a| AppId::parse(a).ok()),
                provider: entry["layer_provider_id"].as_str().map(str::to_owned),
                key,
            });
        }
        Ok(Self {
            keys,
            source: format!("the JWKS at {url}"),
        })
    }
}
