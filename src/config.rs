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

pub use crate::telemetry::LogFormat;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogSettings {
    pub format: LogFormat,
}

pub use crate::mock_layer::settings::{
    MockLayerKeySettings, MockLayerOverrides, MockLayerSettings,
};

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
        self.mock_layer.validate().map_err(ConfigError::Invalid)?;
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
