//! Settings: code defaults → optional TOML file → `DATABASE_URL` → `LAYER_IDP_*` environment
//! (`__` separates nesting levels) → command-line flags.
//!
//! Everything is validated before any socket is bound: an unknown key (a typo in the file or
//! in an environment variable name) or an impossible value stops the start with a message
//! naming the setting to fix. Secrets — the database URL and private keys given inline — are
//! `SecretString`s or redacting newtypes, so `Debug` of the settings can be logged.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

/// Identity tokens are bound to a nonce that Layer forgets after ten minutes; a token that
/// outlives it buys nothing and widens the window in which a leaked token is useful.
pub const MAX_TOKEN_LIFETIME_SECS: u64 = 300;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// Address the identity provider listens on.
    pub listen: SocketAddr,
    /// `sqlite://…` (embedded default) or `postgres://…`. Defaults to a SQLite file under
    /// `data_dir`.
    pub database_url: Option<DatabaseUrl>,
    /// Where the default SQLite database lives.
    pub data_dir: PathBuf,
    /// Where development keys are generated and `keys generate` writes by default.
    pub keys_dir: PathBuf,
    /// The Layer provider ID (`layer:///providers/<uuid>`), the `iss` of every identity token.
    pub provider_id: Option<String>,
    pub signing: SigningSettings,
    pub passwords: PasswordSettings,
    pub sessions: SessionSettings,
    pub http: HttpSettings,
    pub log: LogSettings,
    /// The Layer emulator (`[mock_layer]`); off unless `mock_layer.listen` is set.
    pub mock_layer: MockLayerSettings,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            database_url: None,
            data_dir: PathBuf::from("data"),
            keys_dir: PathBuf::from("keys"),
            provider_id: None,
            signing: SigningSettings::default(),
            passwords: PasswordSettings::default(),
            sessions: SessionSettings::default(),
            http: HttpSettings::default(),
            log: LogSettings::default(),
            mock_layer: MockLayerSettings::default(),
        }
    }
}

/// Signing keys. A single production key can be given flat (`key_id` plus `private_key_file`
/// or `private_key`, handy in environment variables); several keys for rotation go in
/// `[[signing.keys]]`, with `active_key_id` naming the one that signs. Every key is published
/// in the JWKS.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SigningSettings {
    pub key_id: Option<String>,
    pub private_key_file: Option<PathBuf>,
    #[serde(serialize_with = "serialize_redacted")]
    pub private_key: Option<SecretString>,
    pub active_key_id: Option<String>,
    pub keys: Vec<KeySettings>,
    /// Lifetime of an identity token, at most [`MAX_TOKEN_LIFETIME_SECS`].
    pub token_lifetime_secs: u64,
}

impl Default for SigningSettings {
    fn default() -> Self {
        Self {
            key_id: None,
            private_key_file: None,
            private_key: None,
            active_key_id: None,
            keys: Vec::new(),
            token_lifetime_secs: 120,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeySettings {
    /// The Layer key ID (`layer:///keys/<uuid>`), the `kid` of tokens signed with this key.
    pub id: String,
    pub private_key_file: Option<PathBuf>,
    #[serde(default, serialize_with = "serialize_redacted")]
    pub private_key: Option<SecretString>,
    /// For a retired key whose private half is gone: published, never used to sign.
    pub public_key_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PasswordSettings {
    pub min_length: usize,
    pub max_length: usize,
    /// argon2id memory in KiB (OWASP baseline: 19456).
    pub argon2_memory_kib: u32,
    pub argon2_iterations: u32,
    pub argon2_parallelism: u32,
    /// How many hashes may run at once; each holds `argon2_memory_kib` of memory.
    pub max_concurrent_hashes: usize,
    /// How long a login may wait for a hashing slot before it is turned away with 503.
    pub hash_queue_timeout_ms: u64,
    /// How many hashes one client address (an IPv6 /64) may have waiting in each lane
    /// (logins, sign-ups); more are turned away with 503 at once.
    pub hash_queue_per_address: usize,
    /// How many hashes may wait in all; more are turned away with 503 at once.
    pub hash_queue_capacity: usize,
}

impl Default for PasswordSettings {
    fn default() -> Self {
        Self {
            min_length: 8,
            max_length: 1024,
            argon2_memory_kib: 19_456,
            argon2_iterations: 2,
            argon2_parallelism: 1,
            max_concurrent_hashes: std::thread::available_parallelism()
                .map(usize::from)
                .unwrap_or(2),
            hash_queue_timeout_ms: 5_000,
            hash_queue_per_address: 8,
            hash_queue_capacity: 1024,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SessionSettings {
    /// Lifetime of an app session token (`POST /sessions`).
    pub ttl_secs: u64,
}

impl Default for SessionSettings {
    fn default() -> Self {
        Self {
            ttl_secs: 30 * 24 * 3600,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpSettings {
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// HTTP worker threads; defaults to the number of CPUs.
    pub workers: Option<usize>,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            max_body_bytes: 64 * 1024,
            workers: None,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// JSON when stdout is not a terminal, human-readable when it is.
    #[default]
    Auto,
    Json,
    Pretty,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogSettings {
    pub format: LogFormat,
}

use crate::mock_layer::AppId;

/// The Layer emulator: a local Layer server for end-to-end tests. `layer-idp serve` starts
/// it next to the identity provider when `listen` is set (`--mock-layer-listen`);
/// `layer-idp mock-layer` runs it alone.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MockLayerSettings {
    /// Where the emulator listens; loopback unless told otherwise.
    pub listen: Option<SocketAddr>,
    /// The base of the absolute `url` fields it hands out (default: `http://<listen>`, with
    /// an unspecified address shown as 127.0.0.1).
    pub public_url: Option<String>,
    /// The apps served (`layer:///apps/staging/<uuid>` or `…/production/<uuid>`); default:
    /// one new staging app, printed at start.
    #[serde(deserialize_with = "deserialize_app_ids")]
    pub app_ids: Vec<AppId>,
    /// The Layer provider whose identity tokens are trusted. With `serve` it is the
    /// identity provider's own and may be left unset.
    pub provider_id: Option<String>,
    /// A running layer-idp's `/.well-known/jwks.json` (plain `http://`), fetched at start
    /// and once more when a token names an unknown `kid`.
    pub jwks_url: Option<String>,
    /// Public keys trusted for the provider, by Layer key ID.
    pub keys: Vec<MockLayerKeySettings>,
    /// Which apps a key may sign for: app ID → key IDs. A key not listed here is valid for
    /// every app served; a listed key only for its apps (a token from another app's key is
    /// the staging/production mix-up, refused with a message naming both).
    #[serde(deserialize_with = "deserialize_app_keys")]
    pub app_keys: BTreeMap<AppId, Vec<String>>,
    /// Lifetime of an emulator session token.
    pub session_ttl_secs: u64,
    /// Lifetime of a nonce (Layer: ten minutes).
    pub nonce_ttl_secs: u64,
    /// Most participants in one conversation (Layer: 25).
    pub max_participants: usize,
    /// What one app may hold — the emulator is a test instrument, but one test must not be
    /// able to exhaust the process for everyone. Identities, auto-provisioned ones included…
    pub max_identities: usize,
    /// …conversations…
    pub max_conversations: usize,
    /// …messages…
    pub max_messages: usize,
    /// …and the bytes of those messages (parts, notifications, statuses).
    pub max_message_bytes: usize,
    /// Largest REST request body, in bytes.
    pub max_body_bytes: usize,
    /// Largest rich-content upload, in bytes.
    pub max_content_bytes: usize,
    /// Rich content one user may hold (uploaded or reserved by `POST /content`)…
    pub max_content_bytes_per_user: usize,
    /// …and a whole app.
    pub max_content_bytes_per_app: usize,
    /// How long content may wait for a message to use it before it is freed.
    pub content_upload_ttl_secs: u64,
    /// Largest WebSocket message, in bytes.
    pub max_frame_bytes: usize,
    /// Open WebSockets per session (one per tab or device sharing it)…
    pub max_sockets_per_session: usize,
    /// …and per user; a socket past either is closed at once with code 1008 and the reason.
    pub max_sockets_per_user: usize,
    /// How long a socket may wait for its client to read before it is closed, in ms.
    pub socket_send_timeout_ms: u64,
    /// How many requests `GET /_mock/requests` keeps (oldest dropped first).
    pub request_log_size: usize,
    /// What `Event.replay` can reach back over, per user: changes kept…
    pub replay_entries_per_user: usize,
    /// …and their bytes (as JSON). A replay from further back fails, as it cannot be
    /// complete; the SDK then reloads with queries.
    pub replay_bytes_per_user: usize,
    /// Bytes of replayable changes kept for a whole app; past it, the largest logs give up
    /// their oldest changes first.
    pub replay_bytes_per_app: usize,
}

impl Default for MockLayerSettings {
    fn default() -> Self {
        Self {
            listen: None,
            public_url: None,
            app_ids: Vec::new(),
            provider_id: None,
            jwks_url: None,
            keys: Vec::new(),
            app_keys: BTreeMap::new(),
            session_ttl_secs: 24 * 3600,
            nonce_ttl_secs: 600,
            max_participants: 25,
            max_identities: 10_000,
            max_conversations: 10_000,
            max_messages: 100_000,
            max_message_bytes: 128 * 1024 * 1024,
            max_body_bytes: 256 * 1024,
            max_content_bytes: 16 * 1024 * 1024,
            max_content_bytes_per_user: 64 * 1024 * 1024,
            max_content_bytes_per_app: 256 * 1024 * 1024,
            content_upload_ttl_secs: 3600,
            max_frame_bytes: 256 * 1024,
            max_sockets_per_session: 8,
            max_sockets_per_user: 32,
            socket_send_timeout_ms: 10_000,
            request_log_size: 1000,
            replay_entries_per_user: 10_000,
            replay_bytes_per_user: 4 * 1024 * 1024,
            replay_bytes_per_app: 64 * 1024 * 1024,
        }
    }
}

/// A public key the emulator trusts for identity tokens.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MockLayerKeySettings {
    /// The Layer key ID (`layer:///keys/<uuid>`), matched against the token's `kid`.
    pub id: String,
    /// SubjectPublicKeyInfo PEM (`-----BEGIN PUBLIC KEY-----`), as `keys generate` writes.
    pub public_key_file: PathBuf,
}

impl MockLayerSettings {
    /// Flags win over the file and the environment; list flags replace the lists.
    fn apply(&mut self, flags: &MockLayerOverrides) {
        if let Some(listen) = flags.listen {
            self.listen = Some(listen);
        }
        if !flags.app_ids.is_empty() {
            self.app_ids = flags.app_ids.clone();
        }
        if let Some(id) = &flags.provider_id {
            self.provider_id = Some(id.clone());
        }
        if let Some(url) = &flags.jwks_url {
            self.jwks_url = Some(url.clone());
        }
        if !flags.keys.is_empty() {
            self.keys = flags.keys.clone();
        }
        if !flags.app_keys.is_empty() {
            self.app_keys.clear();
            for (app, key) in &flags.app_keys {
                self.app_keys.entry(*app).or_default().push(key.clone());
            }
        }
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |msg: String| Err(ConfigError::Invalid(msg));
        // App IDs were parsed on the way in, so `contains` compares apps, not spellings.
        for (app, keys) in &self.app_keys {
            if !self.app_ids.contains(app) {
                return invalid(format!(
                    "mock_layer.app_keys names {app}, which is not among the apps served; \
                     add it with --mock-layer-app-id (or --app-id)"
                ));
            }
            if keys.iter().any(|k| k.trim().is_empty()) {
                return invalid(format!("mock_layer.app_keys.{app:?} has an empty key ID"));
            }
        }
        if let Some(url) = &self.public_url {
            match url::Url::parse(url) {
                Ok(u) if matches!(u.scheme(), "http" | "https") && u.path() == "/" => {}
                _ => {
                    return invalid(format!(
                        "mock_layer.public_url {url:?} must be an http:// or https:// origin \
                         without a path (LAYER_IDP_MOCK_LAYER__PUBLIC_URL)"
                    ));
                }
            }
        }
        if let Some(url) = &self.jwks_url
            && !url.starts_with("http://")
        {
            return invalid(format!(
                "mock_layer.jwks_url {url:?} must be an http:// URL of a layer-idp's \
                 /.well-known/jwks.json (--jwks-url)"
            ));
        }
        for key in &self.keys {
            if key.id.trim().is_empty() {
                return invalid("mock_layer.keys has a key with an empty id".to_owned());
            }
        }
        let positive = [
            ("session_ttl_secs", self.session_ttl_secs as usize),
            ("nonce_ttl_secs", self.nonce_ttl_secs as usize),
            ("max_participants", self.max_participants),
            ("max_identities", self.max_identities),
            ("max_conversations", self.max_conversations),
            ("max_messages", self.max_messages),
            ("max_message_bytes", self.max_message_bytes),
            ("max_content_bytes", self.max_content_bytes),
            (
                "max_content_bytes_per_user",
                self.max_content_bytes_per_user,
            ),
            ("max_content_bytes_per_app", self.max_content_bytes_per_app),
            (
                "content_upload_ttl_secs",
                self.content_upload_ttl_secs as usize,
            ),
            ("request_log_size", self.request_log_size),
            ("max_sockets_per_session", self.max_sockets_per_session),
            ("max_sockets_per_user", self.max_sockets_per_user),
            (
                "socket_send_timeout_ms",
                self.socket_send_timeout_ms as usize,
            ),
            ("replay_entries_per_user", self.replay_entries_per_user),
            ("replay_bytes_per_user", self.replay_bytes_per_user),
            ("replay_bytes_per_app", self.replay_bytes_per_app),
        ];
        for (name, value) in positive {
            if value == 0 {
                return invalid(format!(
                    "mock_layer.{name} must be at least 1 (LAYER_IDP_MOCK_LAYER__{})",
                    name.to_uppercase()
                ));
            }
        }
        if self.max_body_bytes < 4096 || self.max_frame_bytes < 4096 {
            return invalid(
                "mock_layer.max_body_bytes and mock_layer.max_frame_bytes must be at least \
                 4096 (a Layer message part alone may be 2 KiB)"
                    .to_owned(),
            );
        }
        Ok(())
    }
}

/// What to say about a malformed app ID in the configuration.
const APP_ID_HINT: &str = "use layer:///apps/staging/<uuid> or layer:///apps/production/<uuid> \
                           (--mock-layer-app-id, or --app-id with mock-layer)";

/// `mock_layer.app_ids`, parsed once; a malformed one names the flags that set it.
fn deserialize_app_ids<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<AppId>, D::Error> {
    Vec::<String>::deserialize(deserializer)?
        .iter()
        .map(|id| {
            AppId::parse(id).map_err(|e| {
                serde::de::Error::custom(format!("mock_layer.app_ids: {e}; {APP_ID_HINT}"))
            })
        })
        .collect()
}

/// `mock_layer.app_keys`, keyed by parsed app IDs (two spellings of one app merge).
fn deserialize_app_keys<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<BTreeMap<AppId, Vec<String>>, D::Error> {
    let mut parsed: BTreeMap<AppId, Vec<String>> = BTreeMap::new();
    for (app, keys) in BTreeMap::<String, Vec<String>>::deserialize(deserializer)? {
        let app = AppId::parse(&app).map_err(|e| {
            serde::de::Error::custom(format!(
                "mock_layer.app_keys: {e} (--app-key APP_ID=KEY_ID)"
            ))
        })?;
        parsed.entry(app).or_default().extend(keys);
    }
    Ok(parsed)
}

/// A database URL whose `Debug` and `Display` hide the password.
#[derive(Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    pub fn new(url: impl Into<String>) -> Self {
        Self(url.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_postgres(&self) -> bool {
        self.0.starts_with("postgres://") || self.0.starts_with("postgresql://")
    }

    pub fn is_sqlite(&self) -> bool {
        self.0.starts_with("sqlite:")
    }

    fn redacted(&self) -> String {
        match url::Url::parse(&self.0) {
            Ok(mut url) if url.password().is_some() => {
                let _ = url.set_password(Some("***"));
                url.to_string()
            }
            _ => self.0.clone(),
        }
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatabaseUrl({})", self.redacted())
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

fn serialize_redacted<S: serde::Serializer>(
    value: &Option<SecretString>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match value {
        // Serialising is only used to layer defaults under the file and environment, where a
        // secret set in code would be the default (never the case); redact regardless.
        Some(_) => serializer.serialize_some("[redacted]"),
        None => serializer.serialize_none(),
    }
}

/// Overrides given on the command line; `None` leaves the layered value alone.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub config_file: Option<PathBuf>,
    pub listen: Option<SocketAddr>,
    pub database_url: Option<String>,
    pub mock_layer: MockLayerOverrides,
}

/// The Layer emulator's flags; an empty list leaves the layered value alone.
#[derive(Debug, Default, Clone)]
pub struct MockLayerOverrides {
    pub listen: Option<SocketAddr>,
    pub app_ids: Vec<AppId>,
    pub provider_id: Option<String>,
    pub jwks_url: Option<String>,
    pub keys: Vec<MockLayerKeySettings>,
    /// `(app ID, key ID)` pairs from `--app-key APP_ID=KEY_ID`.
    pub app_keys: Vec<(AppId, String)>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "configuration file {0} does not exist (set --config or LAYER_IDP_CONFIG to a TOML file)"
    )]
    MissingFile(PathBuf),
    #[error("invalid configuration: {0}")]
    Figment(Box<figment::Error>),
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

impl Settings {
    /// Layers the sources and validates the result.
    pub fn load(overrides: &Overrides) -> Result<Self, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Settings::default()));
        if let Some(file) = &overrides.config_file {
            if !file.exists() {
                return Err(ConfigError::MissingFile(file.clone()));
            }
            figment = figment.merge(Toml::file_exact(file));
        }
        figment = figment
            .merge(Env::raw().only(&["database_url"]))
            // `LAYER_IDP_CONFIG` names the file itself; it is not a setting.
            .merge(Env::prefixed("LAYER_IDP_").ignore(&["config"]).split("__"));
        if let Some(listen) = overrides.listen {
            figment = figment.merge(Serialized::default("listen", listen));
        }
        if let Some(url) = &overrides.database_url {
            figment = figment.merge(Serialized::default("database_url", url));
        }
        let mut settings: Settings = figment
            .extract()
            .map_err(|e| ConfigError::Figment(Box::new(e)))?;
        settings.mock_layer.apply(&overrides.mock_layer);
        settings.validate()?;
        Ok(settings)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |msg: String| Err(ConfigError::Invalid(msg));
        if let Some(url) = &self.database_url
            && !url.is_postgres()
            && !url.is_sqlite()
        {
            return invalid(format!(
                "database_url {url} is neither sqlite://… nor postgres://… \
                 (set DATABASE_URL or LAYER_IDP_DATABASE_URL)"
            ));
        }
        let lifetime = self.signing.token_lifetime_secs;
        if lifetime == 0 || lifetime > MAX_TOKEN_LIFETIME_SECS {
            return invalid(format!(
                "signing.token_lifetime_secs is {lifetime}; it must be between 1 and \
                 {MAX_TOKEN_LIFETIME_SECS} (Layer nonces live 10 minutes; \
                 set LAYER_IDP_SIGNING__TOKEN_LIFETIME_SECS)"
            ));
        }
        let p = &self.passwords;
        if p.min_length == 0 || p.min_length > p.max_length {
            return invalid(format!(
                "passwords.min_length ({}) must be at least 1 and at most passwords.max_length ({})",
                p.min_length, p.max_length
            ));
        }
        if p.max_length < 64 {
            return invalid(
                "passwords.max_length must be at least 64 (NIST SP 800-63B)".to_owned(),
            );
        }
        if let Err(e) = argon2::Params::new(
            p.argon2_memory_kib,
            p.argon2_iterations,
            p.argon2_parallelism,
            None,
        ) {
            return invalid(format!(
                "passwords.argon2_* parameters are not valid argon2id parameters: {e}"
            ));
        }
        if p.max_concurrent_hashes == 0 {
            return invalid("passwords.max_concurrent_hashes must be at least 1".to_owned());
        }
        if p.hash_queue_per_address == 0 || p.hash_queue_capacity < p.hash_queue_per_address {
            return invalid(format!(
                "passwords.hash_queue_per_address ({}) must be at least 1 and at most \
                 passwords.hash_queue_capacity ({})",
                p.hash_queue_per_address, p.hash_queue_capacity
            ));
        }
        if self.sessions.ttl_secs == 0 {
            return invalid("sessions.ttl_secs must be at least 1".to_owned());
        }
        if self.http.max_body_bytes < 1024 {
            return invalid("http.max_body_bytes must be at least 1024".to_owned());
        }
        if self.http.workers == Some(0) {
            return invalid("http.workers must be at least 1".to_owned());
        }
        self.signing.validate()?;
        self.mock_layer.validate()?;
        let has_keys = self.signing.has_keys();
        match (&self.provider_id, has_keys) {
            (Some(_), false) => invalid(
                "provider_id is set but no signing key is: set LAYER_IDP_SIGNING__KEY_ID and \
                 LAYER_IDP_SIGNING__PRIVATE_KEY_FILE (or [[signing.keys]] in the config file)"
                    .to_owned(),
            ),
            (None, true) => invalid(
                "signing keys are configured but provider_id is not: set LAYER_IDP_PROVIDER_ID \
                 to the Layer provider ID (layer:///providers/<uuid>)"
                    .to_owned(),
            ),
            _ => Ok(()),
        }
    }

    /// The database URL to use: the configured one, or the embedded SQLite file.
    pub fn effective_database_url(&self) -> DatabaseUrl {
        self.database_url.clone().unwrap_or_else(|| {
            DatabaseUrl::new(format!(
                "sqlite://{}",
                self.data_dir.join("layer-idp.db").display()
            ))
        })
    }
}

impl SigningSettings {
    /// True when the operator configured any key (production mode).
    pub fn has_keys(&self) -> bool {
        self.key_id.is_some()
            || self.private_key_file.is_some()
            || self.private_key.is_some()
            || !self.keys.is_empty()
    }

    /// All configured keys, the flat single-key form first.
    pub fn all_keys(&self) -> Vec<KeySettings> {
        let mut keys = Vec::with_capacity(self.keys.len() + 1);
        if let Some(id) = &self.key_id {
            keys.push(KeySettings {
                id: id.clone(),
                private_key_file: self.private_key_file.clone(),
                private_key: self.private_key.clone(),
                public_key_file: None,
            });
        }
        keys.extend(self.keys.iter().cloned());
        keys
    }

    /// The key that signs: `active_key_id`, else the only key with a private half.
    pub fn active_key_id(&self) -> Option<String> {
        if let Some(id) = &self.active_key_id {
            return Some(id.clone());
        }
        if let Some(id) = &self.key_id {
            return Some(id.clone());
        }
        let mut signing = self.all_keys().into_iter().filter(KeySettings::can_sign);
        match (signing.next(), signing.next()) {
            (Some(only), None) => Some(only.id),
            _ => None,
        }
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |msg: String| Err(ConfigError::Invalid(msg));
        if !self.has_keys() {
            return Ok(());
        }
        if self.key_id.is_none() && (self.private_key_file.is_some() || self.private_key.is_some())
        {
            return invalid(
                "signing.private_key[_file] is set without signing.key_id: set \
                 LAYER_IDP_SIGNING__KEY_ID to the Layer key ID (layer:///keys/<uuid>)"
                    .to_owned(),
            );
        }
        let keys = self.all_keys();
        for (i, key) in keys.iter().enumerate() {
            if key.id.trim().is_empty() {
                return invalid(format!("signing key #{} has an empty id", i + 1));
            }
            if keys[..i].iter().any(|k| k.id == key.id) {
                return invalid(format!("signing key {} is configured twice", key.id));
            }
            let sources = [
                key.private_key_file.is_some(),
                key.private_key.is_some(),
                key.public_key_file.is_some(),
            ]
            .iter()
            .filter(|set| **set)
            .count();
            if sources != 1 {
                return invalid(format!(
                    "signing key {} needs exactly one of private_key_file, private_key \
                     (LAYER_IDP_SIGNING__PRIVATE_KEY) or public_key_file",
                    key.id
                ));
            }
        }
        let Some(active) = self.active_key_id() else {
            return invalid(
                "several signing keys are configured: set signing.active_key_id \
                 (LAYER_IDP_SIGNING__ACTIVE_KEY_ID) to the one that signs"
                    .to_owned(),
            );
        };
        match keys.iter().find(|k| k.id == active) {
            None => invalid(format!(
                "signing.active_key_id {active} is not among the configured keys"
            )),
            Some(k) if !k.can_sign() => invalid(format!(
                "signing.active_key_id {active} has only a public key; it cannot sign"
            )),
            Some(_) => Ok(()),
        }
    }
}

impl KeySettings {
    pub fn can_sign(&self) -> bool {
        self.private_key_file.is_some() || self.private_key.is_some()
    }

    pub fn private_key_pem(&self) -> Option<&str> {
        self.private_key.as_ref().map(|s| s.expose_secret())
    }
}

/// `path` relative to the directory a config file sits in would surprise operators who start
/// the service from elsewhere; relative paths are relative to the working directory, like
/// every other command-line tool. This helper only makes error messages unambiguous.
pub fn display_path(path: &Path) -> String {
    std::path::absolute(path)
        .unwrap_or_else(|_| path.to_path_buf())
        .display()
        .to_string()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::result_large_err)] // figment::Jail's closures return figment::Error.

    use super::*;
    use figment::Jail;

    /// Loads settings inside a `Jail`: a temporary working directory and environment that
    /// are restored afterwards, one test at a time.
    fn load(file: Option<&str>, env: &[(&str, &str)]) -> Result<Settings, String> {
        let mut result = Err(String::new());
        Jail::expect_with(|jail| {
            let mut overrides = Overrides::default();
            if let Some(contents) = file {
                jail.create_file("layer-idp.toml", contents)?;
                overrides.config_file = Some(PathBuf::from("layer-idp.toml"));
            }
            for (key, value) in env {
                jail.set_env(key, value);
            }
            result = Settings::load(&overrides).map_err(|e| e.to_string());
            Ok(())
        });
        result
    }

    #[test]
    fn defaults_need_no_configuration() {
        let settings = load(None, &[]).unwrap();
        assert_eq!(settings.listen.to_string(), "127.0.0.1:8080");
        assert!(settings.effective_database_url().is_sqlite());
        assert!(!settings.signing.has_keys());
        assert_eq!(settings.passwords.argon2_memory_kib, 19_456);
    }

    #[test]
    fn environment_overrides_the_file_and_nests_with_double_underscores() {
        let settings = load(
            Some("[passwords]\nmin_length = 12\n[sessions]\nttl_secs = 60\n"),
            &[("LAYER_IDP_PASSWORDS__MIN_LENGTH", "15")],
        )
        .unwrap();
        assert_eq!(settings.passwords.min_length, 15);
        assert_eq!(settings.sessions.ttl_secs, 60);
    }

    #[test]
    fn command_line_flags_win_over_everything() {
        let mut result = None;
        Jail::expect_with(|jail| {
            jail.set_env("LAYER_IDP_LISTEN", "127.0.0.1:9000");
            jail.set_env("DATABASE_URL", "postgres://env/db");
            let overrides = Overrides {
                listen: Some("127.0.0.1:9100".parse().unwrap()),
                database_url: Some("sqlite://flag.db".to_owned()),
                ..Overrides::default()
            };
            result = Some(Settings::load(&overrides).unwrap());
            Ok(())
        });
        let settings = result.unwrap();
        assert_eq!(settings.listen.to_string(), "127.0.0.1:9100");
        assert_eq!(
            settings.effective_database_url().expose(),
            "sqlite://flag.db"
        );
    }

    #[test]
    fn the_conventional_database_url_variable_is_honoured() {
        let settings = load(None, &[("DATABASE_URL", "postgres://u:pw@db/idp")]).unwrap();
        assert!(settings.effective_database_url().is_postgres());
    }

    #[test]
    fn a_misspelt_setting_stops_the_start_and_names_it() {
        let err = load(None, &[("LAYER_IDP_PASWORDS__MIN_LENGTH", "9")]).unwrap_err();
        assert!(err.contains("paswords"), "{err}");
    }

    #[test]
    fn a_provider_id_without_a_key_says_what_to_set() {
        let err = load(None, &[("LAYER_IDP_PROVIDER_ID", "layer:///providers/x")]).unwrap_err();
        assert!(err.contains("LAYER_IDP_SIGNING__KEY_ID"), "{err}");
    }

    #[test]
    fn a_token_lifetime_beyond_the_nonce_lifetime_is_refused() {
        let err = load(None, &[("LAYER_IDP_SIGNING__TOKEN_LIFETIME_SECS", "3600")]).unwrap_err();
        assert!(err.contains("token_lifetime_secs"), "{err}");
    }

    #[test]
    fn the_hashing_queue_caps_come_from_the_environment_and_must_be_consistent() {
        let settings = load(
            None,
            &[
                ("LAYER_IDP_PASSWORDS__HASH_QUEUE_PER_ADDRESS", "3"),
                ("LAYER_IDP_PASSWORDS__HASH_QUEUE_CAPACITY", "30"),
            ],
        )
        .unwrap();
        assert_eq!(settings.passwords.hash_queue_per_address, 3);
        assert_eq!(settings.passwords.hash_queue_capacity, 30);
        let err = load(
            None,
            &[("LAYER_IDP_PASSWORDS__HASH_QUEUE_PER_ADDRESS", "0")],
        )
        .unwrap_err();
        assert!(err.contains("hash_queue_per_address"), "{err}");
        let err = load(None, &[("LAYER_IDP_PASSWORDS__HASH_QUEUE_CAPACITY", "2")]).unwrap_err();
        assert!(err.contains("hash_queue_capacity"), "{err}");
    }

    #[test]
    fn several_signing_keys_need_an_active_one() {
        let file = r#"
provider_id = "layer:///providers/p"
[[signing.keys]]
id = "layer:///keys/a"
private_key_file = "a.pem"
[[signing.keys]]
id = "layer:///keys/b"
private_key_file = "b.pem"
"#;
        let err = load(Some(file), &[]).unwrap_err();
        assert!(err.contains("active_key_id"), "{err}");
        let ok = load(
            Some(file),
            &[("LAYER_IDP_SIGNING__ACTIVE_KEY_ID", "layer:///keys/b")],
        );
        assert_eq!(
            ok.unwrap().signing.active_key_id().as_deref(),
            Some("layer:///keys/b")
        );
    }

    #[test]
    fn the_emulator_is_off_by_default_and_configurable_from_the_environment() {
        let settings = load(None, &[]).unwrap();
        assert!(settings.mock_layer.listen.is_none());
        let settings = load(
            Some("[mock_layer]\nmax_participants = 3\n"),
            &[("LAYER_IDP_MOCK_LAYER__LISTEN", "127.0.0.1:0")],
        )
        .unwrap();
        assert_eq!(settings.mock_layer.listen.unwrap().port(), 0);
        assert_eq!(settings.mock_layer.max_participants, 3);
    }

    #[test]
    fn a_malformed_emulator_app_id_names_the_flag_to_fix() {
        let err = load(
            Some("[mock_layer]\napp_ids = [\"layer:///apps/dev/1\"]\n"),
            &[],
        )
        .unwrap_err();
        assert!(err.to_string().contains("--mock-layer-app-id"), "{err}");
    }

    #[test]
    fn emulator_app_keys_must_name_a_served_app() {
        let file = r#"
[mock_layer]
app_ids = ["layer:///apps/staging/11111111-1111-4111-8111-111111111111"]
[mock_layer.app_keys]
"layer:///apps/production/11111111-1111-4111-8111-111111111111" = ["layer:///keys/k"]
"#;
        let err = load(Some(file), &[]).unwrap_err();
        assert!(
            err.to_string().contains("not among the apps served"),
            "{err}"
        );
    }

    #[test]
    fn emulator_app_ids_are_compared_as_apps_not_as_spellings() {
        let file = r#"
[mock_layer]
app_ids = ["layer:///apps/staging/aaaaaaaa-1111-4111-8111-111111111111"]
[mock_layer.app_keys]
"layer:///apps/staging/AAAAAAAA-1111-4111-8111-111111111111" = ["layer:///keys/k"]
"#;
        let settings = load(Some(file), &[]).unwrap();
        let served = settings.mock_layer.app_ids[0];
        assert_eq!(settings.mock_layer.app_keys[&served], ["layer:///keys/k"]);
    }

    #[test]
    fn debug_output_redacts_secrets() {
        let settings = load(
            None,
            &[
                ("DATABASE_URL", "postgres://user:hunter2@db/idp"),
                ("LAYER_IDP_PROVIDER_ID", "layer:///providers/p"),
                ("LAYER_IDP_SIGNING__KEY_ID", "layer:///keys/k"),
                (
                    "LAYER_IDP_SIGNING__PRIVATE_KEY",
                    "-----BEGIN PRIVATE KEY-----secret",
                ),
            ],
        )
        .unwrap();
        let debug = format!("{settings:?}");
        assert!(!debug.contains("hunter2"), "{debug}");
        assert!(!debug.contains("BEGIN PRIVATE KEY"), "{debug}");
        assert!(debug.contains("***"), "{debug}");
    }
}
