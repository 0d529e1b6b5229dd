//! Layer app IDs, as both faces read them: `layer:///apps/staging/<uuid>` and
//! `layer:///apps/production/<uuid>`, and the bare UUID that Layer's SDKs also accept.
//!
//! Every Layer customer had a staging and a production app whose UUIDs often differ in a few
//! characters, and using the wrong one was a common source of missing content and failed
//! authentication. So besides parsing, this module measures how far apart two app IDs are,
//! for messages that name the likely mix-up.

use std::fmt;
use std::str::FromStr;

use uuid::Uuid;

/// Staging and production apps are separate worlds; the environment is part of the ID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Environment {
    Staging,
    Production,
}

impl Environment {
    pub fn as_str(self) -> &'static str {
        match self {
            Environment::Staging => "staging",
            Environment::Production => "production",
        }
    }
}

impl fmt::Display for Environment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

const PREFIX: &str = "layer:///apps/";

/// A Layer app ID in its full form: the environment and the UUID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AppId {
    pub environment: Environment,
    pub uuid: Uuid,
}

impl AppId {
    /// Parses `layer:///apps/staging/<uuid>` or `layer:///apps/production/<uuid>` (the UUID
    /// hyphenated, in any case).
    pub fn parse(s: &str) -> Result<Self, String> {
        let rest = s.strip_prefix(PREFIX).ok_or_else(|| {
            format!(
                "{s:?} is not a Layer app ID (layer:///apps/staging/<uuid> or \
                 layer:///apps/production/<uuid>)"
            )
        })?;
        let (environment, uuid) = match rest.split_once('/') {
            Some(("staging", uuid)) => (Environment::Staging, uuid),
            Some(("production", uuid)) => (Environment::Production, uuid),
            _ => {
                return Err(format!(
                    "{s:?} names neither the staging nor the production environment"
                ));
            }
        };
        let uuid = parse_uuid(uuid).ok_or_else(|| format!("{s:?} does not end in a UUID"))?;
        Ok(Self { environment, uuid })
    }

    /// A new staging app (the emulator's default).
    pub fn new_staging() -> Self {
        Self {
            environment: Environment::Staging,
            uuid: Uuid::new_v4(),
        }
    }
}

/// As its string form, so configuration files and flags hold app IDs, parsed once.
impl serde::Serialize for AppId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for AppId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        AppId::parse(&s).map_err(serde::de::Error::custom)
    }
}

impl FromStr for AppId {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for AppId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{PREFIX}{}/{}",
            self.environment.as_str(),
            self.uuid.hyphenated()
        )
    }
}

/// An app ID as a client sent it: the full form, or the bare UUID the SDKs also accept (then
/// the environment is not known).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAppId {
    pub environment: Option<Environment>,
    pub uuid: Uuid,
}

impl ClientAppId {
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if s.starts_with(PREFIX) {
            let app = AppId::parse(s)?;
            return Ok(Self {
                environment: Some(app.environment),
                uuid: app.uuid,
            });
        }
        parse_uuid(s)
            .map(|uuid| Self {
                environment: None,
                uuid,
            })
            .ok_or_else(|| {
                "must be a Layer app ID: layer:///apps/staging/<uuid>, \
                 layer:///apps/production/<uuid>, or the bare <uuid>"
                    .to_owned()
            })
    }

    /// True if this names `app`: the same UUID, and the same environment when one was given.
    pub fn names(&self, app: &AppId) -> bool {
        self.uuid == app.uuid && self.environment.is_none_or(|env| env == app.environment)
    }
}

impl fmt::Display for ClientAppId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.environment {
            Some(environment) => AppId {
                environment,
                uuid: self.uuid,
            }
            .fmt(f),
            None => write!(f, "{}", self.uuid.hyphenated()),
        }
    }
}

/// A UUID in Layer's hyphenated form (any case).
pub fn parse_uuid(s: &str) -> Option<Uuid> {
    if s.len() != 36 {
        return None;
    }
    Uuid::try_parse(s).ok()
}

/// How many of the 32 hex digits of two UUIDs differ. Two random UUIDs differ in about 30;
/// a staging and a production app of one customer, or a mistyped copy, in a handful.
pub fn differing_digits(a: &Uuid, b: &Uuid) -> usize {
    a.as_bytes()
        .iter()
        .zip(b.as_bytes())
        .map(|(x, y)| usize::from(x >> 4 != y >> 4) + usize::from(x & 0xf != y & 0xf))
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    const UUID: &str = "0f0cf8b4-5f5e-4d8e-a1c4-79c5bbd5f3a1";

    #[test]
    fn the_full_form_keeps_the_environment_and_the_bare_form_does_not() {
        let full = ClientAppId::parse(&format!("layer:///apps/production/{UUID}")).unwrap();
        assert_eq!(full.environment, Some(Environment::Production));
        let bare = ClientAppId::parse(&UUID.to_uppercase()).unwrap();
        assert_eq!(bare.environment, None);
        assert_eq!(bare.uuid, full.uuid);
        let app = AppId::parse(&format!("layer:///apps/staging/{UUID}")).unwrap();
        assert!(bare.names(&app));
        assert!(!full.names(&app));
    }

    #[test]
    fn anything_else_is_not_an_app_id() {
        for bad in [
            "",
            "layer:///apps/dev/0f0cf8b4-5f5e-4d8e-a1c4-79c5bbd5f3a1",
            "layer:///apps/staging/not-a-uuid",
            "0f0cf8b45f5e4d8ea1c479c5bbd5f3a1",
            "layer:///providers/0f0cf8b4-5f5e-4d8e-a1c4-79c5bbd5f3a1",
        ] {
            assert!(ClientAppId::parse(bad).is_err(), "{bad:?} was accepted");
        }
        assert!(AppId::parse(UUID).is_err(), "configured IDs are full IDs");
    }

    #[test]
    fn differing_digits_counts_hex_digits_not_bytes() {
        let a = Uuid::parse_str(UUID).unwrap();
        let b = Uuid::parse_str("0f0cf8b4-5f5e-4d8e-a1c4-79c5bbd5f3a2").unwrap();
        let c = Uuid::parse_str("1f0cf8b4-5f5e-4d8e-a1c4-79c5bbd5f3b2").unwrap();
        assert_eq!(differing_digits(&a, &a), 0);
        assert_eq!(differing_digits(&a, &b), 1);
        assert_eq!(differing_digits(&a, &c), 3);
    }
}
