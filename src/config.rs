//! Settings: code defaults → optional TOML file → `DATABASE_URL` → `LAYER_IDP_*` environment
//! (`__` separates nesting levels) → command-line flags.
//!
//! Everything is validated before any socket is bound: an unknown key (a typo in the file or
//! in an environment variable name) or an impossible value stops the start with a message
//! naming the setting to fix. Secrets — the database URL and private keys given inline — are
//! `SecretString`s or redacting newtypes, so `Debug` of the settings can be logged.

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

/// The longest an app session may last: one year. A session token is a bearer credential that
/// outlives password changes on other devices only until it expires; a bound keeps a
/// misconfigured lifetime (an extra zero, `u64::MAX`) from turning it into a permanent one, and
/// keeps `now + ttl` far from any integer overflow in the store.
pub const MAX_SESSION_TTL_SECS: u64 = 365 * 24 * 3600;

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
    /// Several Layer apps (`[[apps]]`), each with its own provider ID and keys. Empty: the
    /// one app of `provider_id` and `[signing]`.
    pub apps: Vec<AppSettings>,
    pub passwords: PasswordSettings,
    pub sessions: SessionSettings,
    /// The audit trail (`[audit]`).
    pub audit: AuditSettings,
    pub http: HttpSettings,
    /// Throttled guessing and sign-ups (`[throttle]`, README "Login defense").
    pub throttle: crate::idp::throttle::ThrottleSettings,
    pub log: LogSettings,
    /// Outgoing mail (`[mail]`, README "Account lifecycle").
    pub mail: MailSettings,
    /// Sign-up, verification and reset rules (`[accounts]`, README "Account lifecycle").
    pub accounts: AccountSettings,
    /// The Layer emulator (`[mock_layer]`); off unless `mock_layer.listen` is set.
    pub mock_layer: MockLayerSettings,
    /// Prometheus metrics (`[metrics]`); off unless `metrics.listen` is set.
    pub metrics: crate::metrics::MetricsSettings,
    /// Keeping users' Layer Identities in step (`[identity_sync]`, README "Identity sync").
    pub identity_sync: crate::idp::sync::IdentitySyncSettings,
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
            apps: Vec::new(),
            passwords: PasswordSettings::default(),
            sessions: SessionSettings::default(),
            audit: AuditSettings::default(),
            http: HttpSettings::default(),
            throttle: crate::idp::throttle::ThrottleSettings::default(),
            log: LogSettings::default(),
            mail: MailSettings::default(),
            accounts: AccountSettings::default(),
            mock_layer: MockLayerSettings::default(),
            metrics: crate::metrics::MetricsSettings::default(),
            identity_sync: Default::default(),
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

/// One Layer app (`[[apps]]`): Layer registered a provider and its keys per app, so an
/// identity provider serving a staging and a production app signs each token with the key of
/// the app that asked.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppSettings {
    /// `layer:///apps/staging/<uuid>` or `layer:///apps/production/<uuid>`.
    pub app_id: String,
    /// The provider ID Layer gave for this app: the `iss` of its tokens.
    pub provider_id: String,
    /// The key that signs; may be left out when only one key has a private half.
    #[serde(default)]
    pub active_key_id: Option<String>,
    /// This app's keys, all published in the JWKS.
    #[serde(default)]
    pub keys: Vec<KeySettings>,
    /// Lifetime of this app's tokens [default: `signing.token_lifetime_secs`].
    #[serde(default)]
    pub token_lifetime_secs: Option<u64>,
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

/// Outgoing mail. Without `smtp_url`, messages are written to `outbox_dir` (default
/// `<data_dir>/outbox`), one `.eml` file each.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MailSettings {
    /// `smtp://host:port` (no TLS: a local relay), `smtp://host:587?tls=required` (STARTTLS,
    /// required) or `?tls=opportunistic`, `smtps://host:465` (TLS from the start); credentials
    /// as `user:password@` (percent-encoded). A secret: shown redacted.
    #[serde(serialize_with = "serialize_redacted")]
    pub smtp_url: Option<SecretString>,
    /// The `From:` of every message.
    pub from: String,
    /// Where messages go when no SMTP server is configured.
    pub outbox_dir: Option<PathBuf>,
    /// A directory whose templates replace the built-in ones, file by file.
    pub templates_dir: Option<PathBuf>,
    /// The product name messages speak of.
    pub product_name: String,
    /// The public base URL of this service (links in messages, the built-in reset form).
    pub base_url: String,
    /// Where a reset link points; `{token}` is replaced. Default: the built-in form,
    /// `<base_url>/password_resets/form#token={token}`.
    pub reset_url: Option<String>,
    /// Where a verification link points; `{token}` is replaced. Default:
    /// `<base_url>/users/verify/form#token={token}`.
    pub verify_url: Option<String>,
    /// Seconds an SMTP delivery may take before it is given up (and logged).
    pub send_timeout_secs: u64,
}

impl Default for MailSettings {
    fn default() -> Self {
        Self {
            smtp_url: None,
            from: "layer-idp <no-reply@localhost>".to_owned(),
            outbox_dir: None,
            templates_dir: None,
            product_name: "layer-idp".to_owned(),
            base_url: "http://localhost:8080".to_owned(),
            reset_url: None,
            verify_url: None,
            send_timeout_secs: 30,
        }
    }
}

/// Who may sign up, and what an address must prove.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SignupMode {
    /// Anyone; a taken address answers 409.
    Open,
    /// Anyone, but a taken address answers like a new one (202, no user) and its owner is told.
    Private,
    /// Only admins create users.
    Closed,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AccountSettings {
    pub signup: SignupMode,
    /// An unverified account's correct password gets `403 email_not_verified`.
    pub require_verified_email: bool,
    /// Lifetime of a verification link.
    pub verification_ttl_secs: u64,
    /// Lifetime of a password-reset link.
    pub reset_ttl_secs: u64,
}

impl Default for AccountSettings {
    fn default() -> Self {
        Self {
            signup: SignupMode::Open,
            require_verified_email: false,
            verification_ttl_secs: 24 * 3600,
            reset_ttl_secs: 30 * 60,
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
pub struct AuditSettings {
    /// Audit events older than this are purged.
    pub retention_days: u32,
}

impl Default for AuditSettings {
    fn default() -> Self {
        Self {
            retention_days: 365,
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
    /// Proxies (CIDRs or addresses) whose forwarding header names the client; a request from
    /// any other peer is the peer's own (`idp/client.rs`).
    #[serde(
        deserialize_with = "crate::idp::client::deserialize_networks",
        serialize_with = "crate::idp::client::serialize_networks"
    )]
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// The header those proxies write: `x-forwarded-for` or `forwarded` (RFC 7239).
    pub forwarded_header: crate::idp::client::ForwardedHeader,
    /// Web origins (`scheme://host[:port]`) whose pages may call the identity provider from a
    /// browser. In the environment, a comma-separated list.
    #[serde(deserialize_with = "list_or_comma_separated")]
    pub cors_allowed_origins: Vec<String>,
    /// On SIGTERM or Ctrl-C, how long in-flight requests get to finish before the process
    /// exits anyway (README "Stopping").
    pub shutdown_timeout_secs: u64,
}

impl HttpSettings {
    /// The allowed origins, parsed; an invalid entry names the setting.
    pub fn cors_origins(&self) -> Result<Vec<WebOrigin>, ConfigError> {
        self.cors_allowed_origins
            .iter()
            .map(|raw| {
                WebOrigin::parse(raw).map_err(|e| {
                    ConfigError::Invalid(format!(
                        "http.cors_allowed_origins: {e} \
                         (set LAYER_IDP_HTTP__CORS_ALLOWED_ORIGINS or [http] cors_allowed_origins)"
                    ))
                })
            })
            .collect()
    }
}

/// A list, or one string of comma-separated entries (how a list arrives from the
/// environment).
fn list_or_comma_separated<'de, D>(deserializer: D) -> Result<Vec<String>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum ListOrString {
        List(Vec<String>),
        String(String),
    }
    Ok(match ListOrString::deserialize(deserializer)? {
        ListOrString::List(list) => list,
        ListOrString::String(s) => s
            .split(',')
            .map(str::trim)
            .filter(|entry| !entry.is_empty())
            .map(str::to_owned)
            .collect(),
    })
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            max_body_bytes: 64 * 1024,
            workers: None,
            trusted_proxies: Vec::new(),
            forwarded_header: crate::idp::client::ForwardedHeader::default(),
            cors_allowed_origins: Vec::new(),
            shutdown_timeout_secs: crate::http_server::DEFAULT_DRAIN_TIMEOUT_SECS,
        }
    }
}

pub use crate::telemetry::LogFormat;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogSettings {
    pub format: LogFormat,
}

use crate::idp::cors::WebOrigin;
pub use crate::mock_layer::settings::{
    MockLayerKeySettings, MockLayerOverrides, MockLayerSettings,
};

/// A database URL whose `Debug` and `Display` hide the password.
///
/// PostgreSQL URLs carry a password in the user information (`user:pw@host`) or as a query
/// parameter (`?password=pw`, any spelling that percent-decodes to it); both are shown as
/// `***`. A URL that does not parse at all is shown as its scheme only: where its password
/// would be cannot be known, so nothing of it is shown.
#[derive(Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DatabaseUrl(String);

/// Query parameters whose value is a secret. sqlx reads `password`; `sslpassword` (libpq's
/// passphrase of an encrypted client key) is refused by [`DatabaseUrl::check_parameters`] but
/// must not be shown by the message that refuses it either.
const SECRET_PARAMETERS: [&str; 2] = ["password", "sslpassword"];

/// The connection parameters the PostgreSQL driver (sqlx) reads from the query string. It
/// logs any other parameter *with its value* ("ignoring unrecognized connect parameter"),
/// which would put a misspelt `pasword=` or libpq's `sslpassword=` in the log.
const POSTGRES_PARAMETERS: [&str; 19] = [
    "sslmode",
    "ssl-mode",
    "sslrootcert",
    "ssl-root-cert",
    "ssl-ca",
    "sslcert",
    "ssl-cert",
    "sslkey",
    "ssl-key",
    "statement-cache-capacity",
    "host",
    "hostaddr",
    "port",
    "dbname",
    "user",
    "password",
    "application_name",
    "options",
    "options[…]",
];

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

    /// Refuses a PostgreSQL query parameter the driver would not use (and would log with its
    /// value). The message names the parameter, never its value.
    fn check_parameters(&self) -> Result<(), String> {
        if !self.is_postgres() {
            return Ok(());
        }
        let Ok(url) = url::Url::parse(&self.0) else {
            return Ok(()); // the driver reports the syntax error, without the URL
        };
        for (key, _) in url.query_pairs() {
            let known = POSTGRES_PARAMETERS.contains(&&*key)
                || (key.starts_with("options[") && key.ends_with(']'));
            if !known {
                return Err(format!(
                    "database_url has the query parameter {key:?}, which the PostgreSQL driver \
                     does not support (it reads {}); remove it from DATABASE_URL",
                    POSTGRES_PARAMETERS.join(", ")
                ));
            }
        }
        Ok(())
    }

    fn redacted(&self) -> String {
        let Ok(mut url) = url::Url::parse(&self.0) else {
            if self.is_sqlite() {
                return self.0.clone(); // a file path; SQLite has no password
            }
            let scheme = self.0.split_once(':').map_or("", |(scheme, _)| scheme);
            let scheme = if scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '+')
            {
                scheme
            } else {
                ""
            };
            return format!("{scheme}:<unparsable URL, hidden>");
        };
        let mut changed = false;
        if url.password().is_some() {
            let _ = url.set_password(Some("***"));
            changed = true;
        }
        let is_secret = |key: &str| {
            SECRET_PARAMETERS
                .iter()
                .any(|secret| key.eq_ignore_ascii_case(secret))
        };
        if url.query_pairs().any(|(key, _)| is_secret(&key)) {
            let pairs: Vec<(String, String)> = url
                .query_pairs()
                .map(|(key, value)| {
                    let value = if is_secret(&key) { "***".into() } else { value };
                    (key.into_owned(), value.into_owned())
                })
                .collect();
            url.query_pairs_mut().clear().extend_pairs(pairs);
            changed = true;
        }
        if changed {
            url.to_string()
        } else {
            self.0.clone()
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

pub(crate) fn serialize_redacted<S: serde::Serializer>(
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
    pub database_url: Option<DatabaseUrl>,
    pub mock_layer: MockLayerOverrides,
    /// `serve --metrics-listen`.
    pub metrics_listen: Option<SocketAddr>,
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
        if let Some(listen) = overrides.metrics_listen {
            figment = figment.merge(Serialized::default("metrics.listen", listen));
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
        if let Some(url) = &self.database_url {
            url.check_parameters().or_else(invalid)?;
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
        let ttl = self.sessions.ttl_secs;
        if ttl == 0 || ttl > MAX_SESSION_TTL_SECS {
            return invalid(format!(
                "sessions.ttl_secs is {ttl}; it must be between 1 and {MAX_SESSION_TTL_SECS} \
                 (one year; set LAYER_IDP_SESSIONS__TTL_SECS)"
            ));
        }
        if self.http.max_body_bytes < 1024 {
            return invalid("http.max_body_bytes must be at least 1024".to_owned());
        }
        if self.http.workers == Some(0) {
            return invalid("http.workers must be at least 1".to_owned());
        }
        self.http.cors_origins()?;
        self.signing.validate()?;
        self.throttle.validate().map_err(ConfigError::Invalid)?;
        self.mock_layer.validate().map_err(ConfigError::Invalid)?;
        self.validate_apps()?;
        let signed_apps: Vec<_> = (self.apps.iter())
            .filter_map(|app| crate::app_id::AppId::parse(&app.app_id).ok())
            .collect();
        (self.identity_sync)
            .validate(self.mock_layer.listen.is_some(), &signed_apps)
            .map_err(ConfigError::Invalid)?;
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

    /// `[[apps]]`: each a Layer app ID with a provider and keys of its own, never shared.
    fn validate_apps(&self) -> Result<(), ConfigError> {
        let invalid = |msg: String| Err(ConfigError::Invalid(msg));
        if self.apps.is_empty() {
            return Ok(());
        }
        if self.provider_id.is_some() || self.signing.has_keys() {
            return invalid(
                "[[apps]] is set together with provider_id or [signing] keys: with [[apps]], \
                 give each app its own provider_id and keys and leave the single-app \
                 provider_id (LAYER_IDP_PROVIDER_ID) and signing keys unset"
                    .to_owned(),
            );
        }
        let mut seen_apps = Vec::with_capacity(self.apps.len());
        let mut seen_keys: Vec<(&str, crate::app_id::AppId)> = Vec::new();
        for (i, app) in self.apps.iter().enumerate() {
            let name = format!("apps[{i}]");
            let app_id = crate::app_id::AppId::parse(&app.app_id).map_err(|e| {
                ConfigError::Invalid(format!(
                    "{name}.app_id: {e}; copy the app ID from Layer's dashboard"
                ))
            })?;
            if seen_apps.contains(&app_id) {
                return invalid(format!(
                    "{name}.app_id: the app {app_id} is configured twice"
                ));
            }
            seen_apps.push(app_id);
            if !app.provider_id.starts_with("layer:///providers/") {
                return invalid(format!(
                    "{name}.provider_id {:?} (app {app_id}) is not a Layer provider ID \
                     (layer:///providers/<uuid>)",
                    app.provider_id
                ));
            }
            if let Some(lifetime) = app.token_lifetime_secs
                && (lifetime == 0 || lifetime > MAX_TOKEN_LIFETIME_SECS)
            {
                return invalid(format!(
                    "{name}.token_lifetime_secs (app {app_id}) is {lifetime}; it must be \
                     between 1 and {MAX_TOKEN_LIFETIME_SECS}"
                ));
            }
            if app.keys.is_empty() {
                return invalid(format!(
                    "{name} (app {app_id}) has no keys: add [[apps.keys]] with the key ID \
                     Layer gave and its private_key_file"
                ));
            }
            validate_keys(&format!("{name}.keys"), &app.keys)?;
            for key in &app.keys {
                if let Some((_, other)) = seen_keys.iter().find(|(id, _)| *id == key.id) {
                    return invalid(format!(
                        "{name}.keys: the key {} is also a key of the app {other}; Layer \
                         registers a key for one app, so each app needs keys of its own",
                        key.id
                    ));
                }
            }
            seen_keys.extend(app.keys.iter().map(|k| (k.id.as_str(), app_id)));
            let Some(active) = app.active_key_id() else {
                return invalid(format!(
                    "{name} (app {app_id}) has several keys that can sign: set \
                     {name}.active_key_id to the one that signs"
                ));
            };
            check_active(&format!("{name}.active_key_id"), &active, &app.keys)?;
        }
        Ok(())
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
        validate_keys("signing", &keys)?;
        let Some(active) = self.active_key_id() else {
            return invalid(
                "several signing keys are configured: set signing.active_key_id \
                 (LAYER_IDP_SIGNING__ACTIVE_KEY_ID) to the one that signs"
                    .to_owned(),
            );
        };
        check_active("signing.active_key_id", &active, &keys)
    }
}

impl AppSettings {
    /// The key that signs: `active_key_id`, else the only key with a private half.
    pub fn active_key_id(&self) -> Option<String> {
        if let Some(id) = &self.active_key_id {
            return Some(id.clone());
        }
        let mut signing = self.keys.iter().filter(|k| k.can_sign());
        match (signing.next(), signing.next()) {
            (Some(only), None) => Some(only.id.clone()),
            _ => None,
        }
    }
}

/// Every key has an ID, is listed once, and has exactly one source.
fn validate_keys(what: &str, keys: &[KeySettings]) -> Result<(), ConfigError> {
    let invalid = |msg: String| Err(ConfigError::Invalid(msg));
    for (i, key) in keys.iter().enumerate() {
        if key.id.trim().is_empty() {
            return invalid(format!("{what} key #{} has an empty id", i + 1));
        }
        if keys[..i].iter().any(|k| k.id == key.id) {
            return invalid(format!("{what} key {} is configured twice", key.id));
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
            let env = if what == "signing" {
                " (LAYER_IDP_SIGNING__PRIVATE_KEY)"
            } else {
                ""
            };
            return invalid(format!(
                "{what} key {} needs exactly one of private_key_file, private_key{env} or \
                 public_key_file",
                key.id
            ));
        }
    }
    Ok(())
}

/// The active key is configured and has a private half.
fn check_active(setting: &str, active: &str, keys: &[KeySettings]) -> Result<(), ConfigError> {
    match keys.iter().find(|k| k.id == active) {
        None => Err(ConfigError::Invalid(format!(
            "{setting} {active} is not among the configured keys"
        ))),
        Some(k) if !k.can_sign() => Err(ConfigError::Invalid(format!(
            "{setting} {active} has only a public key; it cannot sign"
        ))),
        Some(_) => Ok(()),
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
    fn cors_origins_come_as_a_list_or_comma_separated_and_bad_ones_name_the_setting() {
        let settings = load(
            Some("[http]\ncors_allowed_origins = [\"https://app.example.com\"]\n"),
            &[],
        )
        .unwrap();
        assert_eq!(
            settings.http.cors_allowed_origins,
            ["https://app.example.com"]
        );
        let settings = load(
            None,
            &[(
                "LAYER_IDP_HTTP__CORS_ALLOWED_ORIGINS",
                "https://a.example.com, http://localhost:5173",
            )],
        )
        .unwrap();
        assert_eq!(
            settings.http.cors_allowed_origins,
            ["https://a.example.com", "http://localhost:5173"]
        );
        for bad in [
            "https://app.example.com/",
            "https://app.example.com/chat",
            "https://*.example.com",
        ] {
            let error = load(None, &[("LAYER_IDP_HTTP__CORS_ALLOWED_ORIGINS", bad)]).unwrap_err();
            assert!(
                error.contains("http.cors_allowed_origins")
                    && error.contains("LAYER_IDP_HTTP__CORS_ALLOWED_ORIGINS"),
                "{bad}: {error}"
            );
        }
    }

    #[test]
    fn command_line_flags_win_over_everything() {
        let mut result = None;
        Jail::expect_with(|jail| {
            jail.set_env("LAYER_IDP_LISTEN", "127.0.0.1:9000");
            jail.set_env("DATABASE_URL", "postgres://env/db");
            let overrides = Overrides {
                listen: Some("127.0.0.1:9100".parse().unwrap()),
                database_url: Some(DatabaseUrl::new("sqlite://flag.db")),
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
    fn the_metrics_listener_is_off_unless_set_by_file_environment_or_flag() {
        assert_eq!(load(None, &[]).unwrap().metrics.listen, None);
        let settings = load(None, &[("LAYER_IDP_METRICS__LISTEN", "127.0.0.1:9464")]).unwrap();
        assert_eq!(
            settings.metrics.listen.unwrap().to_string(),
            "127.0.0.1:9464"
        );
        let mut result = None;
        Jail::expect_with(|jail| {
            jail.set_env("LAYER_IDP_METRICS__LISTEN", "127.0.0.1:9464");
            let overrides = Overrides {
                metrics_listen: Some("127.0.0.1:9465".parse().unwrap()),
                ..Overrides::default()
            };
            result = Some(Settings::load(&overrides).unwrap());
            Ok(())
        });
        assert_eq!(
            result.unwrap().metrics.listen.unwrap().to_string(),
            "127.0.0.1:9465"
        );
    }

    #[test]
    fn the_platform_token_comes_from_the_environment_or_a_flag_and_is_not_shown() {
        let settings = load(
            None,
            &[("LAYER_IDP_MOCK_LAYER__PLATFORM_TOKEN", "from-env")],
        )
        .unwrap();
        let token = settings.mock_layer.platform_token.clone().unwrap();
        assert_eq!(token.0, "from-env");
        assert!(!format!("{settings:?}").contains("from-env"));
        let mut result = None;
        Jail::expect_with(|jail| {
            jail.set_env("LAYER_IDP_MOCK_LAYER__PLATFORM_TOKEN", "from-env");
            let overrides = Overrides {
                mock_layer: MockLayerOverrides {
                    platform_token: Some("from-flag".to_owned()),
                    ..MockLayerOverrides::default()
                },
                ..Overrides::default()
            };
            result = Some(Settings::load(&overrides).unwrap());
            Ok(())
        });
        assert_eq!(
            result.unwrap().mock_layer.platform_token.unwrap().0,
            "from-flag"
        );
        let err = load(
            None,
            &[("LAYER_IDP_MOCK_LAYER__PLATFORM_TOKEN", "has space")],
        )
        .unwrap_err();
        assert!(err.contains("mock_layer.platform_token"), "{err}");
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
    fn a_session_lifetime_beyond_a_year_is_refused_and_named() {
        let year = MAX_SESSION_TTL_SECS.to_string();
        let settings = load(None, &[("LAYER_IDP_SESSIONS__TTL_SECS", &year)]).unwrap();
        assert_eq!(settings.sessions.ttl_secs, MAX_SESSION_TTL_SECS);
        let over = (MAX_SESSION_TTL_SECS + 1).to_string();
        let err = load(None, &[("LAYER_IDP_SESSIONS__TTL_SECS", &over)]).unwrap_err();
        assert!(err.contains("sessions.ttl_secs"), "{err}");
        assert!(err.contains("LAYER_IDP_SESSIONS__TTL_SECS"), "{err}");
        let err = load(Some("[sessions]\nttl_secs = 9223372036854775807\n"), &[]).unwrap_err();
        assert!(err.contains("sessions.ttl_secs"), "{err}");
        let err = load(None, &[("LAYER_IDP_SESSIONS__TTL_SECS", "0")]).unwrap_err();
        assert!(err.contains("sessions.ttl_secs"), "{err}");
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

    const TWO_APPS: &str = r#"
[[apps]]
app_id = "layer:///apps/staging/0f0cf8b4-5f5e-4d8e-a1c4-79c5bbd5f3a1"
provider_id = "layer:///providers/s"
[[apps.keys]]
id = "layer:///keys/s"
private_key_file = "s.pem"
[[apps]]
app_id = "layer:///apps/production/9d2f1a77-65a1-4c0c-8e0b-3f5f2a1b6c90"
provider_id = "layer:///providers/p"
token_lifetime_secs = 60
[[apps.keys]]
id = "layer:///keys/p"
private_key_file = "p.pem"
"#;

    #[test]
    fn apps_are_read_from_the_file_each_with_its_keys() {
        let settings = load(Some(TWO_APPS), &[]).unwrap();
        assert_eq!(settings.apps.len(), 2);
        assert_eq!(settings.apps[1].token_lifetime_secs, Some(60));
        assert_eq!(
            settings.apps[0].active_key_id().as_deref(),
            Some("layer:///keys/s")
        );
    }

    #[test]
    fn invalid_app_combinations_stop_the_start_naming_the_setting() {
        let cases = [
            (
                TWO_APPS.replace("layer:///keys/p", "layer:///keys/s"),
                "apps[1].keys: the key layer:///keys/s is also a key of the app \
                 layer:///apps/staging/",
            ),
            (
                TWO_APPS.replace("layer:///apps/production/", "layer:///apps/prod/"),
                "apps[1].app_id",
            ),
            (
                TWO_APPS.replace(
                    "layer:///apps/production/9d2f1a77-65a1-4c0c-8e0b-3f5f2a1b6c90",
                    "layer:///apps/staging/0F0CF8B4-5f5e-4d8e-a1c4-79c5bbd5f3a1",
                ),
                "configured twice",
            ),
            (
                TWO_APPS.replace(
                    "private_key_file = \"p.pem\"",
                    "public_key_file = \"p.pem\"",
                ),
                "apps[1] (app layer:///apps/production/9d2f1a77-65a1-4c0c-8e0b-3f5f2a1b6c90) has several keys",
            ),
            (
                TWO_APPS.replace("token_lifetime_secs = 60", "token_lifetime_secs = 900"),
                "apps[1].token_lifetime_secs",
            ),
            (
                format!(
                    "{TWO_APPS}\n[[apps]]\napp_id = \"layer:///apps/staging/11111111-2222-4333-8444-555555555555\"\nprovider_id = \"layer:///providers/x\"\nactive_key_id = \"layer:///keys/none\"\n[[apps.keys]]\nid = \"layer:///keys/x\"\nprivate_key_file = \"x.pem\"\n"
                ),
                "apps[2].active_key_id layer:///keys/none is not among",
            ),
            (
                format!("provider_id = \"layer:///providers/old\"\n{TWO_APPS}"),
                "[[apps]] is set together with provider_id",
            ),
        ];
        for (file, expected) in cases {
            let err = load(Some(&file), &[]).unwrap_err();
            assert!(err.contains(expected), "expected {expected:?} in {err}");
        }
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
    fn the_emulator_s_world_document_comes_from_the_environment_too() {
        let settings = load(None, &[("LAYER_IDP_MOCK_LAYER__IMPORT", "world.json")]).unwrap();
        assert_eq!(
            settings.mock_layer.import,
            Some(std::path::PathBuf::from("world.json"))
        );
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

    /// Display and Debug of `url`, which must not contain `secret`.
    fn assert_hidden(url: &str, secret: &str) -> String {
        let url = DatabaseUrl::new(url);
        let (shown, debug) = (url.to_string(), format!("{url:?}"));
        assert!(!shown.contains(secret), "{shown}");
        assert!(!debug.contains(secret), "{debug}");
        shown
    }

    #[test]
    fn a_password_in_the_user_information_is_hidden() {
        let shown = assert_hidden("postgres://idp:hunter2@db.internal:5433/idp", "hunter2");
        assert_eq!(shown, "postgres://idp:***@db.internal:5433/idp");
        // Percent-encoded, and with characters that must be encoded (an unencoded `@`).
        assert_hidden("postgresql://idp:p%40ss%2Fw0rd@db/idp", "p%40ss");
        assert_hidden("postgres://idp:p@ss@db/idp", "p@ss");
        assert_hidden("postgres://idp:p@ss@db/idp", "ss@");
    }

    #[test]
    fn a_password_in_the_query_string_is_hidden_in_any_spelling() {
        let shown = assert_hidden(
            "postgres://idp@db/idp?sslmode=verify-full&password=hunter2",
            "hunter2",
        );
        assert_eq!(
            shown,
            "postgres://idp@db/idp?sslmode=verify-full&password=***"
        );
        assert_hidden("postgres://db/idp?pass%77ord=hunter2", "hunter2");
        assert_hidden("postgres://db/idp?PASSWORD=hunter2", "hunter2");
        assert_hidden("postgres://db/idp?password=hun%74er2", "hun%74er2");
        assert_hidden("postgres://db/idp?sslpassword=hunter2&user=x", "hunter2");
        assert_hidden("postgres://u:one@db/idp?password=two", "one");
        assert_hidden("postgres://u:one@db/idp?password=two", "two");
    }

    #[test]
    fn a_url_that_does_not_parse_is_hidden_whole() {
        // The authority ends at the first `/`: the port would be `pa`, which is no port.
        let shown = assert_hidden("postgres://idp:pa/ss@db/idp", "pa/ss");
        assert!(shown.starts_with("postgres:"), "{shown}");
        assert!(!shown.contains("db"), "{shown}");
    }

    #[test]
    fn urls_without_a_password_are_shown_unchanged() {
        for url in [
            "sqlite://data/layer-idp.db",
            "sqlite:///var/lib/layer idp/x.db",
            "postgres://idp@db.internal/idp?sslmode=verify-full",
        ] {
            assert_eq!(DatabaseUrl::new(url).to_string(), url);
        }
    }

    #[test]
    fn a_postgres_parameter_the_driver_ignores_is_refused_without_its_value() {
        for url in [
            "postgres://db/idp?sslpassword=hunter2",
            "postgres://db/idp?pasword=hunter2",
        ] {
            let err = load(None, &[("DATABASE_URL", url)]).unwrap_err();
            assert!(
                err.contains("database_url has the query parameter"),
                "{err}"
            );
            assert!(!err.contains("hunter2"), "{err}");
        }
        let ok = "postgres://db/idp?sslmode=require&password=x&options[search_path]=idp";
        assert!(load(None, &[("DATABASE_URL", ok)]).is_ok());
    }

    #[test]
    fn a_refused_database_url_is_named_without_its_password() {
        let err = load(None, &[("DATABASE_URL", "mysql://u:hunter2@db/idp")]).unwrap_err();
        assert!(err.contains("neither sqlite"), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
    }

    #[test]
    fn trusted_proxies_are_parsed_from_the_environment_and_a_typo_names_the_setting() {
        let settings = load(
            None,
            &[(
                "LAYER_IDP_HTTP__TRUSTED_PROXIES",
                "[\"10.0.0.0/8\", \"192.0.2.7\", \"2001:db8::/32\"]",
            )],
        )
        .unwrap();
        let nets: Vec<String> = settings
            .http
            .trusted_proxies
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(nets, ["10.0.0.0/8", "192.0.2.7/32", "2001:db8::/32"]);
        let err = load(
            None,
            &[("LAYER_IDP_HTTP__TRUSTED_PROXIES", "[\"10.0.0.0/40\"]")],
        )
        .unwrap_err();
        assert!(err.contains("http.trusted_proxies"), "{err}");
        let err = load(Some("[http]\nforwarded_header = \"x-real-ip\"\n"), &[]).unwrap_err();
        assert!(err.contains("forwarded_header"), "{err}");
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

    #[test]
    fn mail_and_account_settings_load_from_file_and_env_with_the_smtp_url_hidden() {
        let settings = load(
            Some("[mail]\nproduct_name = \"Acme Chat\"\n[accounts]\nsignup = \"private\"\nreset_ttl_secs = 600\n"),
            &[
                ("LAYER_IDP_MAIL__SMTP_URL", "smtps://bot:hunter2@smtp.example.com:465"),
                ("LAYER_IDP_ACCOUNTS__REQUIRE_VERIFIED_EMAIL", "true"),
            ],
        )
        .unwrap();
        assert_eq!(settings.mail.product_name, "Acme Chat");
        assert_eq!(settings.accounts.signup, SignupMode::Private);
        assert_eq!(settings.accounts.reset_ttl_secs, 600);
        assert_eq!(settings.accounts.verification_ttl_secs, 24 * 3600);
        assert!(settings.accounts.require_verified_email);
        let url = settings.mail.smtp_url.as_ref().unwrap().expose_secret();
        assert!(url.starts_with("smtps://"));
        let debug = format!("{settings:?}");
        assert!(!debug.contains("hunter2"), "{debug}");
        let err = load(Some("[accounts]\nsignup = \"invite\"\n"), &[]).unwrap_err();
        assert!(err.contains("signup"), "{err}");
    }
}
