//! `[identity_sync]`: where identity sync sends (Layer's Platform API) and how patiently.
//!
//! Plain data, owned by the identity provider; `config.rs` only embeds it. Whether sync runs
//! against an emulator in the same process is decided in `startup.rs`, the one module that
//! knows both faces; here it is only a flag ("an emulator runs beside me").

use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use crate::app_id::ClientAppId;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IdentitySyncSettings {
    /// `true` or `false`; unset means on when `platform_url` is set, or when the Layer
    /// emulator runs in this process (it then syncs to the emulator).
    pub enabled: Option<bool>,
    /// The Platform API's base URL, `https://api.layer.com` on Layer; paths
    /// `/apps/{uuid}/users/…` are appended.
    pub platform_url: Option<String>,
    /// The Layer app whose identities are kept in step (full ID or bare UUID).
    pub app_id: Option<String>,
    /// The app's Platform API token (`Authorization: Bearer …`). A secret: shown redacted.
    #[serde(serialize_with = "crate::config::serialize_redacted")]
    pub token: Option<SecretString>,
    /// How long one call to Layer may take before it counts as failed.
    pub request_timeout_secs: u64,
    /// The longest wait between two attempts of a failing change (the wait doubles from 1 s).
    pub max_backoff_secs: u64,
    /// How often the worker looks for due changes when it found none.
    pub poll_interval_ms: u64,
    /// Changes claimed per round (each replica).
    pub batch_size: u32,
}

impl Default for IdentitySyncSettings {
    fn default() -> Self {
        Self {
            enabled: None,
            platform_url: None,
            app_id: None,
            token: None,
            request_timeout_secs: 10,
            max_backoff_secs: 300,
            poll_interval_ms: 1000,
            batch_size: 32,
        }
    }
}

/// Where sync sends: plain data, built from the settings or, by `startup.rs`, from the
/// emulator in the same process.
#[derive(Debug, Clone)]
pub struct SyncTarget {
    /// Without a trailing slash.
    pub base_url: String,
    pub app: ClientAppId,
    pub token: SecretString,
}

impl IdentitySyncSettings {
    /// Whether sync runs (and so whether user changes are written to the outbox), given
    /// whether the emulator runs in this process.
    pub fn is_on(&self, emulator_in_process: bool) -> bool {
        self.enabled
            .unwrap_or(self.platform_url.is_some() || emulator_in_process)
    }

    /// The configured target, when `platform_url` is set (validated by [`Self::validate`]).
    pub fn configured_target(&self) -> Option<SyncTarget> {
        let url = self.platform_url.as_ref()?;
        Some(SyncTarget {
            base_url: url.trim_end_matches('/').to_owned(),
            app: ClientAppId::parse(self.app_id.as_deref()?).ok()?,
            token: self.token.clone()?,
        })
    }

    /// `signed_apps`: the app IDs of `[[apps]]` (empty in the single-app configuration).
    pub fn validate(
        &self,
        emulator_in_process: bool,
        signed_apps: &[crate::app_id::AppId],
    ) -> Result<(), String> {
        let any = self.platform_url.is_some() || self.app_id.is_some() || self.token.is_some();
        let all = self.platform_url.is_some() && self.app_id.is_some() && self.token.is_some();
        if any && !all {
            return Err(
                "identity_sync needs platform_url, app_id and token together: set \
                        LAYER_IDP_IDENTITY_SYNC__PLATFORM_URL, LAYER_IDP_IDENTITY_SYNC__APP_ID \
                        and LAYER_IDP_IDENTITY_SYNC__TOKEN"
                    .to_owned(),
            );
        }
        if self.enabled == Some(true) && !all && !emulator_in_process {
            return Err(
                "identity_sync.enabled is true but there is nowhere to send: set \
                        identity_sync.platform_url, app_id and token, or run the Layer \
                        emulator in this process (mock_layer.listen)"
                    .to_owned(),
            );
        }
        if let Some(raw) = &self.platform_url {
            let url = url::Url::parse(raw).map_err(|e| {
                format!("identity_sync.platform_url {raw:?} is not a URL ({e}); e.g. https://api.layer.com")
            })?;
            if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
                return Err(format!(
                    "identity_sync.platform_url {raw:?} must be an http:// or https:// URL"
                ));
            }
            if !url.username().is_empty() || url.password().is_some() {
                return Err(
                    "identity_sync.platform_url must not carry credentials; put the Platform \
                     API token in identity_sync.token"
                        .to_owned(),
                );
            }
            if url.query().is_some() || url.fragment().is_some() {
                return Err(format!(
                    "identity_sync.platform_url {raw:?} must have no query or fragment"
                ));
            }
        }
        if let Some(raw) = &self.app_id {
            let app = ClientAppId::parse(raw)
                .map_err(|e| format!("identity_sync.app_id {raw:?}: {e}"))?;
            if !signed_apps.is_empty() && !signed_apps.iter().any(|a| app.names(a)) {
                return Err(format!(
                    "identity_sync.app_id {app} is not one of the [[apps]] this service signs \
                     for; name one of them"
                ));
            }
        }
        if let Some(token) = &self.token {
            use secrecy::ExposeSecret;
            let token = token.expose_secret();
            if token.is_empty() || !token.bytes().all(|b| b.is_ascii_graphic()) {
                return Err("identity_sync.token must be printable ASCII without spaces".to_owned());
            }
        }
        if self.request_timeout_secs == 0 || self.request_timeout_secs > 300 {
            return Err("identity_sync.request_timeout_secs must be between 1 and 300".to_owned());
        }
        if self.max_backoff_secs == 0 || self.max_backoff_secs > 24 * 3600 {
            return Err("identity_sync.max_backoff_secs must be between 1 and 86400".to_owned());
        }
        if self.poll_interval_ms < 10 || self.poll_interval_ms > 60_000 {
            return Err("identity_sync.poll_interval_ms must be between 10 and 60000".to_owned());
        }
        if self.batch_size == 0 || self.batch_size > 1000 {
            return Err("identity_sync.batch_size must be between 1 and 1000".to_owned());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const APP: &str = "layer:///apps/production/4f6e0c84-0a0d-11e5-9d4b-0242ac110002";

    fn configured() -> IdentitySyncSettings {
        IdentitySyncSettings {
            platform_url: Some("https://api.layer.com/".to_owned()),
            app_id: Some(APP.to_owned()),
            token: Some("platform-secret-token".to_owned().into()),
            ..IdentitySyncSettings::default()
        }
    }

    #[test]
    fn it_is_on_with_a_platform_url_or_an_emulator_beside_it_unless_turned_off() {
        let unset = IdentitySyncSettings::default();
        assert!(!unset.is_on(false));
        assert!(unset.is_on(true));
        assert!(configured().is_on(false));
        let off = IdentitySyncSettings {
            enabled: Some(false),
            ..configured()
        };
        assert!(!off.is_on(true));
    }

    #[test]
    fn the_url_app_and_token_go_together_and_the_url_loses_its_trailing_slash() {
        assert_eq!(configured().validate(false, &[]), Ok(()));
        let target = configured().configured_target().unwrap();
        assert_eq!(target.base_url, "https://api.layer.com");
        let without_token = IdentitySyncSettings {
            token: None,
            ..configured()
        };
        let err = without_token.validate(false, &[]).unwrap_err();
        assert!(err.contains("LAYER_IDP_IDENTITY_SYNC__TOKEN"), "{err}");
    }

    #[test]
    fn bad_values_are_refused_naming_the_setting() {
        let cases = [
            IdentitySyncSettings {
                platform_url: Some("ftp://layer.example".to_owned()),
                ..configured()
            },
            IdentitySyncSettings {
                platform_url: Some("https://user:pw@layer.example".to_owned()),
                ..configured()
            },
            IdentitySyncSettings {
                app_id: Some("not an app".to_owned()),
                ..configured()
            },
            IdentitySyncSettings {
                token: Some("two words".to_owned().into()),
                ..configured()
            },
            IdentitySyncSettings {
                max_backoff_secs: 0,
                ..configured()
            },
            IdentitySyncSettings {
                enabled: Some(true),
                ..IdentitySyncSettings::default()
            },
        ];
        for settings in cases {
            let err = settings.validate(false, &[]).unwrap_err();
            assert!(err.contains("identity_sync"), "{err}");
        }
    }

    #[test]
    fn with_several_apps_the_synced_app_must_be_one_of_them() {
        let other = crate::app_id::AppId::parse(
            "layer:///apps/staging/4f6e0c84-0a0d-11e5-9d4b-0242ac110002",
        )
        .unwrap();
        let err = configured().validate(false, &[other]).unwrap_err();
        assert!(err.contains("[[apps]]"), "{err}");
        let same = crate::app_id::AppId::parse(APP).unwrap();
        assert_eq!(configured().validate(false, &[other, same]), Ok(()));
    }

    #[test]
    fn the_token_never_shows_in_debug_output() {
        let settings = configured();
        assert!(!format!("{settings:?}").contains("platform-secret-token"));
        let target = settings.configured_target().unwrap();
        assert!(!format!("{target:?}").contains("platform-secret-token"));
    }
}
