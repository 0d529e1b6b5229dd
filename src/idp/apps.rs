//! The Layer apps this identity provider signs for, and the choice of one per request.
//!
//! Layer registered a provider and its authentication keys per app, and every customer had a
//! staging and a production app whose UUIDs often differ in a few characters. A token signed
//! for the wrong app is refused by Layer with nothing at the identity provider to say why, so
//! the app a client names is checked here, before any password is hashed, and an unknown one
//! is answered with the configured app it most likely meant.

use std::path::Path;
use std::sync::Arc;

use serde::Serialize;

use super::keys::{KeyError, KeyRing, PublishedKey};
use crate::app_id::{AppId, ClientAppId, differing_digits};
use crate::config::Settings;
use crate::domain::Invalid;

/// At most this many differing hex digits (of 32) make an unknown app ID a near miss of a
/// configured one; two unrelated UUIDs differ in about 30.
const NEAR_MISS_DIGITS: usize = 6;

/// Every app's key ring; the first is the default one.
#[derive(Debug)]
pub struct Apps {
    rings: Vec<Arc<KeyRing>>,
}

/// `GET /.well-known/jwks.json`: every app's public keys.
#[derive(Debug, Serialize)]
pub struct Jwks {
    pub keys: Vec<PublishedKey>,
}

impl Apps {
    /// Every app's public keys, with their app and provider, for the token inspector. A key
    /// read from a file is also known by the file's name (`dev.private.pem` → `dev`), so that
    /// a `kid` holding the name rather than the Layer key ID is recognised.
    pub fn inspection_keys(&self) -> crate::identity_token::keys::KeySet {
        use crate::identity_token::keys::{KeySet, KnownKey};
        let keys = self
            .rings
            .iter()
            .flat_map(|ring| {
                ring.keys().iter().map(move |key| {
                    let name = Path::new(key.source())
                        .file_name()
                        .and_then(|f| f.to_str())
                        .and_then(|f| f.split('.').next())
                        .filter(|stem| !stem.is_empty())
                        .map(str::to_owned);
                    KnownKey::from_components(
                        Some(key.id().to_owned()),
                        key.public().n(),
                        key.public().e(),
                    )
                    .named(name)
                    .belonging_to(ring.app_id(), Some(ring.provider_id().to_owned()))
                })
            })
            .collect();
        KeySet {
            keys,
            source: "this layer-idp".to_owned(),
        }
    }

    /// `[[apps]]` when configured; else the single app of `provider_id` and `[signing]`; else
    /// development credentials: one key and provider per emulator app when the emulator
    /// serves several (`development_apps`), one for everything otherwise.
    pub fn load(settings: &Settings, development_apps: &[AppId]) -> Result<Self, KeyError> {
        let lifetime = settings.signing.token_lifetime_secs;
        let rings = if !settings.apps.is_empty() {
            settings
                .apps
                .iter()
                .map(|app| KeyRing::load_app(app, lifetime))
                .collect::<Result<Vec<_>, _>>()?
        } else if settings.provider_id.is_none()
            && !settings.signing.has_keys()
            && development_apps.len() > 1
        {
            development_rings(&settings.keys_dir, development_apps, lifetime)?
        } else {
            vec![KeyRing::load_single(settings)?]
        };
        Ok(Self::new(rings))
    }

    fn new(rings: Vec<KeyRing>) -> Self {
        Self {
            rings: rings.into_iter().map(Arc::new).collect(),
        }
    }

    pub fn rings(&self) -> &[Arc<KeyRing>] {
        &self.rings
    }

    /// The first app: the only one, in a single-app configuration.
    pub fn primary(&self) -> &Arc<KeyRing> {
        // `load` never builds an empty list: every branch yields at least one ring.
        &self.rings[0]
    }

    /// True for the single app of `provider_id` and `[signing]` (or the one development
    /// app): it signs for whatever app a client names.
    pub fn signs_for_any_app(&self) -> bool {
        matches!(self.rings.as_slice(), [only] if only.app_id().is_none())
    }

    /// The app IDs configured (none for a single app without one).
    pub fn app_ids(&self) -> Vec<AppId> {
        self.rings.iter().filter_map(|r| r.app_id()).collect()
    }

    pub fn jwks(&self) -> Jwks {
        Jwks {
            keys: self.rings.iter().flat_map(|r| r.jwks_entries()).collect(),
        }
    }

    /// The app a request names. With one app the ID is optional; with several it is
    /// required. An ID that is not configured is refused, saying which app it resembles.
    pub fn choose(&self, requested: Option<&ClientAppId>) -> Result<&Arc<KeyRing>, Invalid> {
        let invalid = |reason: String| Invalid {
            field: "app_id",
            reason,
        };
        if let [only] = self.rings.as_slice()
            && (requested.is_none() || only.app_id().is_none())
        {
            return Ok(only);
        }
        let configured = self.app_ids();
        let Some(requested) = requested else {
            return Err(invalid(format!(
                "is required: this identity provider signs for several Layer apps ({}); send \
                 the app ID the client was built with",
                list(&configured)
            )));
        };
        let mut named = self
            .rings
            .iter()
            .filter(|r| r.app_id().is_some_and(|app| requested.names(&app)));
        match (named.next(), named.next()) {
            (Some(ring), None) => Ok(ring),
            (Some(_), Some(_)) => Err(invalid(format!(
                "the bare UUID {requested} names more than one configured app ({}); send \
                 the full app ID (layer:///apps/staging/… or layer:///apps/production/…)",
                list(&configured)
            ))),
            (None, _) => Err(invalid(unknown_app(requested, &configured))),
        }
    }
}

/// One development key and provider per emulator app, each under `keys_dir/<env>-<uuid>/`.
fn development_rings(
    keys_dir: &Path,
    apps: &[AppId],
    lifetime_secs: u64,
) -> Result<Vec<KeyRing>, KeyError> {
    apps.iter()
        .map(|&app| KeyRing::load_development_app(keys_dir, app, lifetime_secs))
        .collect()
}

fn list(apps: &[AppId]) -> String {
    apps.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Why `requested` is not one of `configured`, naming the likely mix-up: the same UUID under
/// the other environment, or a UUID a few characters away from a configured one.
fn unknown_app(requested: &ClientAppId, configured: &[AppId]) -> String {
    let this = match requested.environment {
        Some(env) => format!("this is not the {env} app"),
        None => "this is not a configured app".to_owned(),
    };
    let twin = configured
        .iter()
        .find(|app| app.uuid == requested.uuid && Some(app.environment) != requested.environment);
    let hint = if let Some(twin) = twin {
        format!(
            "{this}: it is the {} app {twin} under the other environment; use that app's ID \
             or configure the {} app in [[apps]]",
            twin.environment,
            requested
                .environment
                .map_or("other", crate::app_id::Environment::as_str)
        )
    } else {
        let nearest = configured
            .iter()
            .map(|app| (differing_digits(&app.uuid, &requested.uuid), app))
            .min_by_key(|(digits, _)| *digits);
        match nearest {
            Some((digits, app)) if digits <= NEAR_MISS_DIGITS => format!(
                "{this}: it differs from the {} app {app} in {digits} character{}; check which \
                 app the client is built for",
                app.environment,
                if digits == 1 { "" } else { "s" }
            ),
            _ => format!("{this} configured here"),
        }
    };
    format!(
        "{requested} is not configured here ({hint}). Configured apps: {}",
        list(configured)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app(s: &str) -> AppId {
        AppId::parse(s).unwrap()
    }

    const STAGING: &str = "layer:///apps/staging/0f0cf8b4-5f5e-4d8e-a1c4-79c5bbd5f3a1";
    const PRODUCTION: &str = "layer:///apps/production/9d2f1a77-65a1-4c0c-8e0b-3f5f2a1b6c90";

    #[test]
    fn a_near_miss_names_the_app_it_resembles_and_the_distance() {
        let requested =
            ClientAppId::parse("layer:///apps/production/0f0cf8b4-5f5e-4d8e-a1c4-79c5bbd5f9b2")
                .unwrap();
        let message = unknown_app(&requested, &[app(STAGING), app(PRODUCTION)]);
        assert!(
            message.contains(&format!(
                "this is not the production app: it differs from the staging app {STAGING} \
                 in 3 characters"
            )),
            "{message}"
        );
    }

    #[test]
    fn the_same_uuid_under_the_other_environment_is_named() {
        let requested = ClientAppId::parse(&STAGING.replace("staging", "production")).unwrap();
        let message = unknown_app(&requested, &[app(STAGING)]);
        assert!(
            message.contains(&format!(
                "this is not the production app: it is the staging app {STAGING} under the \
                 other environment"
            )),
            "{message}"
        );
    }

    #[test]
    fn an_unrelated_id_only_lists_the_configured_apps() {
        let requested = ClientAppId::parse("11111111-2222-4333-8444-555555555555").unwrap();
        let message = unknown_app(&requested, &[app(STAGING), app(PRODUCTION)]);
        assert!(!message.contains("differs"), "{message}");
        assert!(
            message.ends_with(&format!("Configured apps: {STAGING}, {PRODUCTION}")),
            "{message}"
        );
    }
}
