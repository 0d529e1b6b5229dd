//! The Layer emulator's settings (`[mock_layer]` in the configuration, `LAYER_IDP_MOCK_LAYER__*`,
//! the `--mock-layer-*` flags): their defaults, how flags override them, and their checks.
//! `config.rs` layers the sources and embeds them; the emulator reads them from here.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::AppId;

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
    /// An app's own provider: app ID → provider ID (Layer registered a provider per app).
    /// An app not listed here trusts `provider_id`. A layer-idp's JWKS names each key's app
    /// and provider, so with `jwks_url` this is learned and may be left empty.
    pub app_providers: BTreeMap<AppId, String>,
    /// Lifetime of an emulator session token.
    pub session_ttl_secs: u64,
    /// Lifetime of a nonce (Layer: ten minutes).
    pub nonce_ttl_secs: u64,
    /// Most participants in one conversation (Layer: 25).
    pub max_participants: usize,
    /// Most members of one channel. Channels are Layer's large rooms (no documented
    /// limit); this bounds what one channel's fan-out and member list may cost.
    pub max_channel_members: usize,
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
    /// The Platform API token (`Authorization: Bearer …`) of every app served; default: a
    /// new random token per app, printed at start and shown by `GET /_mock/apps`.
    pub platform_token: Option<PlatformToken>,
    /// When set, every request under `/_mock/` must carry `Authorization: Bearer <token>`.
    /// Without it the test controls answer anyone who can reach the listener by an IP
    /// address or `localhost` (never cross-origin pages); a warning says so when the emulator
    /// listens on an address other than loopback.
    pub control_token: Option<PlatformToken>,
    /// How long a webhook receiver may take to answer a delivery or a verification, in ms
    /// (Layer: 1 s); slower is a failure, retried.
    pub webhook_timeout_ms: u64,
    /// Webhook deliveries waiting to be sent, for the whole emulator; past it a delivery
    /// is dropped (and logged as `dropped` in `GET /_mock/webhooks`).
    pub webhook_queue_size: usize,
    /// A world document (`GET /_mock/export`) loaded at start into the app it names
    /// (`--mock-layer-import`); the emulator refuses to start if it is refused.
    pub import: Option<PathBuf>,
}

/// A Platform API or test-control token; `Debug` does not show it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PlatformToken(pub String);

impl std::fmt::Debug for PlatformToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PlatformToken([redacted])")
    }
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
            app_providers: BTreeMap::new(),
            session_ttl_secs: 24 * 3600,
            nonce_ttl_secs: 600,
            max_participants: 25,
            max_channel_members: 1_000,
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
            platform_token: None,
            control_token: None,
            webhook_timeout_ms: 1000,
            webhook_queue_size: 1000,
            import: None,
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
    pub fn apply(&mut self, flags: &MockLayerOverrides) {
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
        if let Some(token) = &flags.platform_token {
            self.platform_token = Some(PlatformToken(token.clone()));
        }
        if let Some(token) = &flags.control_token {
            self.control_token = Some(PlatformToken(token.clone()));
        }
        if !flags.app_keys.is_empty() {
            self.app_keys.clear();
            for (app, key) in &flags.app_keys {
                self.app_keys.entry(*app).or_default().push(key.clone());
            }
        }
        if !flags.app_providers.is_empty() {
            self.app_providers = flags.app_providers.iter().cloned().collect();
        }
        if let Some(file) = &flags.import {
            self.import = Some(file.clone());
        }
    }

    /// Checks what the emulator cannot start with; the message names the setting to fix.
    pub fn validate(&self) -> Result<(), String> {
        let invalid = |msg: String| Err(msg);
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
        for (app, provider) in &self.app_providers {
            if !self.app_ids.contains(app) {
                return invalid(format!(
                    "mock_layer.app_providers names {app}, which is not among the apps served; \
                     add it with --mock-layer-app-id (or --app-id)"
                ));
            }
            if !provider.starts_with("layer:///providers/") {
                return invalid(format!(
                    "mock_layer.app_providers.{app:?} is {provider:?}, not a Layer provider ID \
                     (layer:///providers/<uuid>; --app-provider APP_ID=PROVIDER_ID)"
                ));
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
        if let Some(PlatformToken(token)) = &self.platform_token
            && !is_token(token)
        {
            return invalid(
                "mock_layer.platform_token must be printable ASCII without spaces \
                 (--mock-layer-platform-token, LAYER_IDP_MOCK_LAYER__PLATFORM_TOKEN)"
                    .to_owned(),
            );
        }
        if let Some(PlatformToken(token)) = &self.control_token
            && (!is_token(token) || token.len() < 16)
        {
            return invalid(
                "mock_layer.control_token must be at least 16 characters of printable ASCII \
                 without spaces (--mock-layer-control-token, LAYER_IDP_MOCK_LAYER__CONTROL_TOKEN)"
                    .to_owned(),
            );
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
            ("max_channel_members", self.max_channel_members),
            ("webhook_timeout_ms", self.webhook_timeout_ms as usize),
            ("webhook_queue_size", self.webhook_queue_size),
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

/// Whether `token` can travel in an `Authorization: Bearer` header as it is.
fn is_token(token: &str) -> bool {
    !token.is_empty() && token.bytes().all(|b| b.is_ascii_graphic())
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
    pub platform_token: Option<String>,
    pub control_token: Option<String>,
    /// `(app ID, provider ID)` pairs from `--app-provider APP_ID=PROVIDER_ID`.
    pub app_providers: Vec<(AppId, String)>,
    /// `--mock-layer-import FILE`.
    pub import: Option<PathBuf>,
}
