//! Signing keys: loading, development generation, the JWKS, and the RS256 signature itself.
//!
//! Keys are parsed once, at start-up, into aws-lc-rs key objects kept for the life of the
//! process. Signing does not go through `jsonwebtoken::encode`: that function re-parses the DER
//! private key on every call, which costs more than the signature itself and holds token
//! issuance to ~0.4× of what the machine can sign (see DEVELOPERS.md). The compact JWS is
//! assembled here instead — `base64url(header) . base64url(claims) . base64url(RS256 sig)`,
//! with the header, built with `jsonwebtoken::Header`, encoded once per key.
//!
//! Private key material never reaches a log: `Debug` shows key IDs and fingerprints only.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{KeyPair, KeySize, PublicKey, PublicKeyComponents};
use aws_lc_rs::signature::{KeyPair as _, RSA_PKCS1_SHA256};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{
    AlgorithmParameters, CommonParameters, Jwk, JwkSet, KeyAlgorithm, PublicKeyUse,
    RSAKeyParameters, RSAKeyType,
};
use jsonwebtoken::{Algorithm, Header};
use serde::{Deserialize, Serialize};

use crate::app_id::AppId;
use crate::config::{AppSettings, KeySettings, Settings, display_path};

/// Layer's `cty` for identity tokens: "Layer External Identity Token, version 1".
pub const LAYER_CONTENT_TYPE: &str = "layer-eit;v=1";

/// Keys shorter than this are refused; Layer's dashboard issued 2048-bit keys.
const MIN_MODULUS_BYTES: usize = 256;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("could not read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("could not write {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
    #[error("{what} is not a PEM file: {reason}")]
    NotPem { what: String, reason: String },
    #[error("{what} is not a usable RSA {kind} key: {reason}")]
    Rejected {
        what: String,
        kind: &'static str,
        reason: String,
    },
    #[error("RSA key generation failed")]
    Generate,
    #[error("{0}")]
    Development(String),
}

/// The public half of a key, as published and as printed for Layer's dashboard.
#[derive(Clone)]
pub struct PublicKeyInfo {
    components: PublicKeyComponents<Vec<u8>>,
    spki_der: Vec<u8>,
}

impl PublicKeyInfo {
    fn from_public_key(key: &PublicKey) -> Result<Self, KeyError> {
        let spki_der = key
            .as_der()
            .map_err(|_| KeyError::Generate)?
            .as_ref()
            .to_vec();
        Ok(Self {
            components: PublicKeyComponents::from(key),
            spki_der,
        })
    }

    /// SubjectPublicKeyInfo PEM (`-----BEGIN PUBLIC KEY-----`), the form Layer's dashboard took.
    pub fn to_pem(&self) -> String {
        encode_pem("PUBLIC KEY", &self.spki_der)
    }

    /// SHA-256 of the SubjectPublicKeyInfo, hex: a stable name for the key in listings.
    pub fn fingerprint(&self) -> String {
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &self.spki_der);
        digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
    }

    pub fn modulus_bits(&self) -> usize {
        self.components.n.len() * 8
    }

    pub fn n(&self) -> &[u8] {
        &self.components.n
    }

    pub fn e(&self) -> &[u8] {
        &self.components.e
    }
}

/// One configured key: always a public half; a private half if it may sign.
pub struct SigningKey {
    id: String,
    public: PublicKeyInfo,
    signer: Option<Signer>,
    source: String,
}

struct Signer {
    pair: KeyPair,
    /// `base64url` of this key's JOSE header, computed once.
    encoded_header: String,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("id", &self.id)
            .field("fingerprint", &self.public.fingerprint())
            .field("can_sign", &self.signer.is_some())
            .field("source", &self.source)
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
#[error("RS256 signing failed")]
pub struct SignError;

impl SigningKey {
    fn from_pair(id: String, pair: KeyPair, source: String) -> Result<Self, KeyError> {
        let public = PublicKeyInfo::from_public_key(pair.public_key())?;
        let mut header = Header::new(Algorithm::RS256);
        header.typ = Some("JWT".to_owned());
        header.cty = Some(LAYER_CONTENT_TYPE.to_owned());
        header.kid = Some(id.clone());
        let header_json = serde_json::to_vec(&header).map_err(|e| KeyError::Rejected {
            what: id.clone(),
            kind: "private",
            reason: e.to_string(),
        })?;
        Ok(Self {
            id,
            public,
            signer: Some(Signer {
                pair,
                encoded_header: URL_SAFE_NO_PAD.encode(header_json),
            }),
            source,
        })
    }

    fn from_public(id: String, key: PublicKey, source: String) -> Result<Self, KeyError> {
        Ok(Self {
            id,
            public: PublicKeyInfo::from_public_key(&key)?,
            signer: None,
            source,
        })
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn public(&self) -> &PublicKeyInfo {
        &self.public
    }

    pub fn can_sign(&self) -> bool {
        self.signer.is_some()
    }

    /// Where the key came from (a file path or "environment"), for listings and logs.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Signs `claims` into a compact JWS with this key's header.
    pub fn sign<C: Serialize>(&self, claims: &C) -> Result<String, SignError> {
        let claims = serde_json::to_vec(claims).map_err(|_| SignError)?;
        self.sign_json(&claims)
    }

    /// Signs claims already serialised as JSON.
    pub fn sign_json(&self, claims: &[u8]) -> Result<String, SignError> {
        let signer = self.signer.as_ref().ok_or(SignError)?;
        let modulus_len = signer.pair.public_modulus_len();
        let mut token = String::with_capacity(
            signer.encoded_header.len() + claims.len() * 4 / 3 + modulus_len * 4 / 3 + 8,
        );
        token.push_str(&signer.encoded_header);
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(claims, &mut token);
        let mut signature = vec![0; modulus_len];
        signer
            .pair
            .sign(
                &RSA_PKCS1_SHA256,
                &aws_lc_rs::rand::SystemRandom::new(),
                token.as_bytes(),
                &mut signature,
            )
            .map_err(|_| SignError)?;
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(&signature, &mut token);
        Ok(token)
    }

    fn to_jwk(&self) -> Jwk {
        Jwk {
            common: CommonParameters {
                public_key_use: Some(PublicKeyUse::Signature),
                key_algorithm: Some(KeyAlgorithm::RS256),
                key_id: Some(self.id.clone()),
                ..CommonParameters::default()
            },
            algorithm: AlgorithmParameters::RSA(RSAKeyParameters {
                key_type: RSAKeyType::RSA,
                n: URL_SAFE_NO_PAD.encode(self.public.n()),
                e: URL_SAFE_NO_PAD.encode(self.public.e()),
            }),
        }
    }
}

/// Where the keys came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyOrigin {
    /// Configured by the operator with Layer-assigned IDs.
    Configured,
    /// Generated for development in this directory.
    Development { dir: PathBuf },
}

/// One Layer app's provider identity and every key it publishes, one of which signs.
#[derive(Debug)]
pub struct KeyRing {
    /// The app these keys sign for; `None` for the single app of `provider_id` and
    /// `[signing]`, which signs for whatever app asks.
    app_id: Option<AppId>,
    provider_id: String,
    keys: Vec<Arc<SigningKey>>,
    active: Arc<SigningKey>,
    origin: KeyOrigin,
    token_lifetime_secs: u64,
}

impl KeyRing {
    /// The single app of `provider_id` and `[signing]`: the configured keys, or the
    /// development credentials (generated on first use) when none are configured.
    pub fn load_single(settings: &Settings) -> Result<Self, KeyError> {
        let lifetime = settings.signing.token_lifetime_secs;
        match &settings.provider_id {
            Some(provider_id) if settings.signing.has_keys() => {
                let active_id = settings.signing.active_key_id().ok_or_else(|| {
                    KeyError::Development("no active signing key is configured".to_owned())
                })?;
                let keys = settings
                    .signing
                    .all_keys()
                    .iter()
                    .map(load_key)
                    .collect::<Result<Vec<_>, _>>()?;
                Self::new(
                    None,
                    provider_id.clone(),
                    keys,
                    &active_id,
                    KeyOrigin::Configured,
                    lifetime,
                )
            }
            _ => load_or_create_development(&settings.keys_dir, None, lifetime),
        }
    }

    /// One `[[apps]]` entry (validated with the settings).
    pub fn load_app(app: &AppSettings, default_lifetime_secs: u64) -> Result<Self, KeyError> {
        let app_id = AppId::parse(&app.app_id).map_err(KeyError::Development)?;
        let active_id = app.active_key_id().ok_or_else(|| {
            KeyError::Development(format!("the app {app_id} has no active signing key"))
        })?;
        let keys = app
            .keys
            .iter()
            .map(load_key)
            .collect::<Result<Vec<_>, _>>()?;
        Self::new(
            Some(app_id),
            app.provider_id.clone(),
            keys,
            &active_id,
            KeyOrigin::Configured,
            app.token_lifetime_secs.unwrap_or(default_lifetime_secs),
        )
    }

    /// Development credentials for one app of the emulator, under `keys_dir/<env>-<uuid>/`.
    pub fn load_development_app(
        keys_dir: &Path,
        app_id: AppId,
        lifetime_secs: u64,
    ) -> Result<Self, KeyError> {
        let dir = keys_dir.join(format!(
            "{}-{}",
            app_id.environment.as_str(),
            app_id.uuid.hyphenated()
        ));
        load_or_create_development(&dir, Some(app_id), lifetime_secs)
    }

    fn new(
        app_id: Option<AppId>,
        provider_id: String,
        keys: Vec<SigningKey>,
        active_id: &str,
        origin: KeyOrigin,
        token_lifetime_secs: u64,
    ) -> Result<Self, KeyError> {
        let keys: Vec<Arc<SigningKey>> = keys.into_iter().map(Arc::new).collect();
        let active = keys
            .iter()
            .find(|k| k.id == active_id && k.can_sign())
            .cloned()
            .ok_or_else(|| {
                KeyError::Development(format!("the active key {active_id} cannot sign"))
            })?;
        Ok(Self {
            app_id,
            provider_id,
            keys,
            active,
            origin,
            token_lifetime_secs,
        })
    }

    /// The app these keys sign for, when configured per app.
    pub fn app_id(&self) -> Option<AppId> {
        self.app_id
    }

    pub fn provider_id(&self) -> &str {
        &self.provider_id
    }

    pub fn active(&self) -> &SigningKey {
        &self.active
    }

    pub fn keys(&self) -> &[Arc<SigningKey>] {
        &self.keys
    }

    pub fn origin(&self) -> &KeyOrigin {
        &self.origin
    }

    pub fn token_lifetime_secs(&self) -> u64 {
        self.token_lifetime_secs
    }

    /// This app's keys as JWKS entries. Each names its app and provider in the extra members
    /// `layer_app_id` and `layer_provider_id` (RFC 7517 §4: members a reader does not know
    /// are ignored), so an emulator fed the JWKS learns which key signs for which app.
    pub fn jwks_entries(&self) -> Vec<PublishedKey> {
        self.keys
            .iter()
            .map(|k| PublishedKey {
                jwk: k.to_jwk(),
                layer_app_id: self.app_id.map(|a| a.to_string()),
                layer_provider_id: self.provider_id.clone(),
            })
            .collect()
    }

    /// This app's keys, for `GET /.well-known/jwks.json` when it is the only app.
    pub fn jwks(&self) -> JwkSet {
        JwkSet {
            keys: self.keys.iter().map(|k| k.to_jwk()).collect(),
        }
    }
}

/// A JWKS entry: the JWK, plus the Layer app and provider it belongs to.
#[derive(Debug, Serialize)]
pub struct PublishedKey {
    #[serde(flatten)]
    pub jwk: Jwk,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub layer_app_id: Option<String>,
    pub layer_provider_id: String,
}

fn load_key(settings: &KeySettings) -> Result<SigningKey, KeyError> {
    if let Some(pem) = settings.private_key_pem() {
        let pair = parse_private_pem(
            pem.as_bytes(),
            &format!("the private key of {}", settings.id),
        )?;
        return SigningKey::from_pair(settings.id.clone(), pair, "environment".to_owned());
    }
    if let Some(path) = &settings.private_key_file {
        let pair = read_private_key(path)?;
        return SigningKey::from_pair(settings.id.clone(), pair, display_path(path));
    }
    if let Some(path) = &settings.public_key_file {
        let key = read_public_key(path)?;
        return SigningKey::from_public(settings.id.clone(), key, display_path(path));
    }
    Err(KeyError::Development(format!(
        "signing key {} has no key material",
        settings.id
    )))
}

/// Reads a PEM private key (PKCS#8 `PRIVATE KEY` or PKCS#1 `RSA PRIVATE KEY`).
pub fn read_private_key(path: &Path) -> Result<KeyPair, KeyError> {
    let bytes = std::fs::read(path).map_err(|source| KeyError::Read {
        path: display_path(path),
        source,
    })?;
    warn_if_readable_by_others(path);
    parse_private_pem(&bytes, &display_path(path))
}

fn parse_private_pem(bytes: &[u8], what: &str) -> Result<KeyPair, KeyError> {
    let pem = pem::parse(bytes).map_err(|e| KeyError::NotPem {
        what: what.to_owned(),
        reason: e.to_string(),
    })?;
    let rejected = |reason: String| KeyError::Rejected {
        what: what.to_owned(),
        kind: "private",
        reason,
    };
    let pair = match pem.tag() {
        "PRIVATE KEY" => KeyPair::from_pkcs8(pem.contents()),
        "RSA PRIVATE KEY" => KeyPair::from_der(pem.contents()),
        other => {
            return Err(rejected(format!(
                "expected a PRIVATE KEY or RSA PRIVATE KEY block, found {other}"
            )));
        }
    }
    .map_err(|e| rejected(e.to_string()))?;
    if pair.public_modulus_len() < MIN_MODULUS_BYTES {
        return Err(rejected(
            "keys shorter than 2048 bits are refused".to_owned(),
        ));
    }
    Ok(pair)
}

/// Reads a PEM public key (SPKI `PUBLIC KEY` or PKCS#1 `RSA PUBLIC KEY`).
pub fn read_public_key(path: &Path) -> Result<PublicKey, KeyError> {
    let bytes = std::fs::read(path).map_err(|source| KeyError::Read {
        path: display_path(path),
        source,
    })?;
    parse_public_pem(&bytes, &display_path(path))
}

pub fn parse_public_pem(bytes: &[u8], what: &str) -> Result<PublicKey, KeyError> {
    let pem = pem::parse(bytes).map_err(|e| KeyError::NotPem {
        what: what.to_owned(),
        reason: e.to_string(),
    })?;
    let rejected = |reason: String| KeyError::Rejected {
        what: what.to_owned(),
        kind: "public",
        reason,
    };
    if !matches!(pem.tag(), "PUBLIC KEY" | "RSA PUBLIC KEY") {
        return Err(rejected(format!(
            "expected a PUBLIC KEY block, found {}",
            pem.tag()
        )));
    }
    PublicKey::from_der(pem.contents()).map_err(|e| rejected(e.to_string()))
}

#[cfg(unix)]
fn warn_if_readable_by_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path)
        && meta.permissions().mode() & 0o077 != 0
    {
        tracing::warn!(
            path = %display_path(path),
            "private key file is readable by other users; chmod 600 it"
        );
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_: &Path) {}

fn encode_pem(tag: &str, der: &[u8]) -> String {
    pem::encode_config(
        &pem::Pem::new(tag, der),
        pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF),
    )
}

/// A freshly generated key pair, as PEM.
pub struct GeneratedKey {
    pub private_pem: String,
    pub public: PublicKeyInfo,
}

impl fmt::Debug for GeneratedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GeneratedKey")
            .field("fingerprint", &self.public.fingerprint())
            .finish_non_exhaustive()
    }
}

/// Generates an RSA-2048 pair.
pub fn generate_key() -> Result<GeneratedKey, KeyError> {
    let pair = KeyPair::generate(KeySize::Rsa2048).map_err(|_| KeyError::Generate)?;
    let pkcs8 = pair.as_der().map_err(|_| KeyError::Generate)?;
    Ok(GeneratedKey {
        private_pem: encode_pem("PRIVATE KEY", pkcs8.as_ref()),
        public: PublicKeyInfo::from_public_key(pair.public_key())?,
    })
}

/// Writes `contents` to a new file readable by the owner only; never overwrites.
pub fn write_private_file(path: &Path, contents: &str) -> Result<(), KeyError> {
    let write_error = |source| KeyError::Write {
        path: display_path(path),
        source,
    };
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(write_error)?;
    file.write_all(contents.as_bytes()).map_err(write_error)?;
    file.sync_all().map_err(write_error)
}

/// Writes a public file (mode from the umask); never overwrites.
pub fn write_public_file(path: &Path, contents: &str) -> Result<(), KeyError> {
    let write_error = |source| KeyError::Write {
        path: display_path(path),
        source,
    };
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(write_error)?;
    file.write_all(contents.as_bytes()).map_err(write_error)
}

/// The development credentials file: Layer-format IDs made up on first start.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct DevelopmentIds {
    provider_id: String,
    key_id: String,
}

const DEV_IDS_FILE: &str = "development.json";
const DEV_PRIVATE_FILE: &str = "development-private.pem";
const DEV_PUBLIC_FILE: &str = "development-public.pem";

/// Paths of the development credentials inside `dir`.
pub fn development_files(dir: &Path) -> [PathBuf; 3] {
    [
        dir.join(DEV_IDS_FILE),
        dir.join(DEV_PRIVATE_FILE),
        dir.join(DEV_PUBLIC_FILE),
    ]
}

fn load_or_create_development(
    dir: &Path,
    app_id: Option<AppId>,
    token_lifetime_secs: u64,
) -> Result<KeyRing, KeyError> {
    let [ids_path, private_path, public_path] = development_files(dir);
    if !ids_path.exists() {
        if private_path.exists() {
            return Err(KeyError::Development(format!(
                "{} exists without {}; delete it to generate new development credentials",
                display_path(&private_path),
                display_path(&ids_path)
            )));
        }
        std::fs::create_dir_all(dir).map_err(|source| KeyError::Write {
            path: display_path(dir),
            source,
        })?;
        let key = generate_key()?;
        let ids = DevelopmentIds {
            provider_id: format!("layer:///providers/{}", uuid::Uuid::new_v4()),
            key_id: format!("layer:///keys/{}", uuid::Uuid::new_v4()),
        };
        write_private_file(&private_path, &key.private_pem)?;
        write_public_file(&public_path, &key.public.to_pem())?;
        let json = serde_json::to_string_pretty(&ids)
            .map_err(|e| KeyError::Development(format!("could not encode development IDs: {e}")))?;
        // Written last: its presence means the set is complete.
        write_public_file(&ids_path, &(json + "\n"))?;
    }
    let bytes = std::fs::read(&ids_path).map_err(|source| KeyError::Read {
        path: display_path(&ids_path),
        source,
    })?;
    let ids: DevelopmentIds = serde_json::from_slice(&bytes).map_err(|e| {
        KeyError::Development(format!("{} is not valid: {e}", display_path(&ids_path)))
    })?;
    let pair = read_private_key(&private_path)?;
    let key = SigningKey::from_pair(ids.key_id.clone(), pair, display_path(&private_path))?;
    KeyRing::new(
        app_id,
        ids.provider_id,
        vec![key],
        &ids.key_id,
        KeyOrigin::Development {
            dir: dir.to_path_buf(),
        },
        token_lifetime_secs,
    )
}

/// A key set of one public key (SubjectPublicKeyInfo PEM) for the token inspector, tried
/// whatever the token's `kid` says.
pub fn inspection_key_set(
    pem: &[u8],
    what: &str,
) -> Result<crate::identity_token::keys::KeySet, KeyError> {
    use crate::identity_token::keys::{KeySet, KnownKey};
    let key = parse_public_pem(pem, what)?;
    let components = PublicKeyComponents::<Vec<u8>>::from(&key);
    Ok(KeySet {
        keys: vec![KnownKey::from_components(
            None,
            &components.n,
            &components.e,
        )],
        source: what.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn development_credentials_are_created_once_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let first = load_or_create_development(dir.path(), None, 120).unwrap();
        let second = load_or_create_development(dir.path(), None, 120).unwrap();
        assert_eq!(first.provider_id(), second.provider_id());
        assert_eq!(first.active().id(), second.active().id());
        assert_eq!(
            first.active().public().fingerprint(),
            second.active().public().fingerprint()
        );
        assert!(first.provider_id().starts_with("layer:///providers/"));
        assert!(first.active().id().starts_with("layer:///keys/"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(DEV_PRIVATE_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn the_header_is_exactly_what_layer_expects() {
        let dir = tempfile::tempdir().unwrap();
        let ring = load_or_create_development(dir.path(), None, 120).unwrap();
        let token = ring
            .active()
            .sign(&serde_json::json!({"prn": "u"}))
            .unwrap();
        let header = token.split('.').next().unwrap();
        let header: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap();
        assert_eq!(
            header,
            serde_json::json!({
                "typ": "JWT", "alg": "RS256", "cty": "layer-eit;v=1", "kid": ring.active().id()
            })
        );
    }

    #[test]
    fn pkcs1_and_pkcs8_private_keys_are_both_accepted() {
        let key = generate_key().unwrap();
        let pair = parse_private_pem(key.private_pem.as_bytes(), "test").unwrap();
        // Re-encode the same key as PKCS#1 through its components is not offered by aws-lc-rs;
        // check the tag dispatch with the PKCS#8 body under the PKCS#1 tag instead, which must
        // be rejected rather than misread.
        let pkcs8 = pem::parse(key.private_pem.as_bytes()).unwrap();
        let mislabelled = encode_pem("RSA PRIVATE KEY", pkcs8.contents());
        assert!(parse_private_pem(mislabelled.as_bytes(), "test").is_err());
        assert_eq!(pair.public_modulus_len(), 256);
    }

    #[test]
    fn non_key_pem_and_garbage_are_refused_with_a_reason() {
        let err = parse_private_pem(b"not pem at all", "k.pem").unwrap_err();
        assert!(err.to_string().contains("k.pem"), "{err}");
        let cert = encode_pem("CERTIFICATE", b"abc");
        let err = parse_private_pem(cert.as_bytes(), "k.pem").unwrap_err();
        assert!(err.to_string().contains("CERTIFICATE"), "{err}");
    }

    #[test]
    fn jwks_publish_every_key_with_its_kid() {
        let dir = tempfile::tempdir().unwrap();
        let ring = load_or_create_development(dir.path(), None, 120).unwrap();
        let jwks = serde_json::to_value(ring.jwks()).unwrap();
        let key = &jwks["keys"][0];
        assert_eq!(key["kid"], ring.active().id());
        assert_eq!(key["kty"], "RSA");
        assert_eq!(key["alg"], "RS256");
        assert_eq!(key["use"], "sig");
        assert_eq!(key["e"], "AQAB");
    }
}
