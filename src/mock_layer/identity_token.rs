//! Validating an identity token the way Layer did before it issued a session.
//!
//! The token is a compact JWS: `base64url(header).base64url(claims).base64url(signature)`.
//! Every rule is checked explicitly, in order, and a failure names the rule, so a developer
//! whose identity provider is wrong learns *what* is wrong (Layer's dashboard had a
//! validation form for this; the emulator's error message is its replacement):
//!
//! 1. at most [`MAX_TOKEN_BYTES`], three non-empty base64url parts;
//! 2. header: a JSON object without duplicate members, `alg` exactly `RS256` (never `none`,
//!    never an HMAC that would take the public key as its secret), `typ` `JWT` or `JWS`,
//!    `cty` `layer-eit;v=1`, no `crit`, a `kid` the emulator trusts *for this app*;
//! 3. the RSA-SHA256 signature over the exact signing input, with that key;
//! 4. claims: a JSON object without duplicate members, `iss` the trusted provider, `prn` a
//!    non-empty string, `iat` and `exp` integers, `exp` in the future, `iat` not in it,
//!    `nce` a string — whose consumption the caller does last.
//!
//! The algorithm is pinned here, never read from the token: `alg` is only compared.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::Algorithm;
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde_json::{Map, Value};

use super::ids::{AppId, valid_user_id};
use super::trust::{KeyRefusal, Trust};

/// Identity tokens are a few hundred bytes; anything this large is not one.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// Layer's `cty` for identity tokens: "Layer External Identity Token, version 1".
pub const LAYER_CONTENT_TYPE: &str = "layer-eit;v=1";

/// How far `iat` may be ahead of the emulator's clock.
const CLOCK_SKEW_SECS: i64 = 60;

/// What a valid token says about its user.
#[derive(Debug, Clone)]
pub struct VerifiedToken {
    pub user_id: String,
    pub nonce: String,
    pub profile: Profile,
}

/// The optional profile claims Layer applied to the identity.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Profile {
    pub display_name: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub avatar_url: Option<String>,
    pub public_key: Option<String>,
}

/// Verifies everything but the nonce's freshness; `now` is Unix seconds.
pub async fn verify(
    token: &str,
    app: AppId,
    trust: &Trust,
    now: i64,
) -> Result<VerifiedToken, String> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(format!(
            "the token is {} bytes; identity tokens are at most {MAX_TOKEN_BYTES}",
            token.len()
        ));
    }
    let parts: Vec<&str> = token.split('.').collect();
    let [header_b64, claims_b64, signature_b64] = parts[..] else {
        return Err(format!(
            "a JWS has three dot-separated parts; this token has {}",
            parts.len()
        ));
    };
    if header_b64.is_empty() || claims_b64.is_empty() || signature_b64.is_empty() {
        return Err("the header, claims and signature must all be non-empty".to_owned());
    }
    let header = decode_object(header_b64, "header")?;
    match header.get("alg") {
        Some(Value::String(alg)) if alg == "RS256" => {}
        Some(Value::String(alg)) => {
            return Err(format!(
                "alg is {alg:?}; Layer identity tokens must be signed with RS256"
            ));
        }
        _ => return Err("the header has no alg; it must be \"RS256\"".to_owned()),
    }
    match header.get("typ") {
        Some(Value::String(typ)) if typ == "JWT" || typ == "JWS" => {}
        Some(other) => return Err(format!("typ is {other}; it must be \"JWT\" (or \"JWS\")")),
        None => return Err("the header has no typ; it must be \"JWT\"".to_owned()),
    }
    match header.get("cty") {
        Some(Value::String(cty)) if cty == LAYER_CONTENT_TYPE => {}
        Some(other) => {
            return Err(format!(
                "cty is {other}; it must be \"{LAYER_CONTENT_TYPE}\""
            ));
        }
        None => {
            return Err(format!(
                "the header has no cty; it must be \"{LAYER_CONTENT_TYPE}\""
            ));
        }
    }
    if header.contains_key("crit") {
        return Err("the header has crit extensions, which Layer does not support".to_owned());
    }
    let Some(Value::String(kid)) = header.get("kid") else {
        return Err("the header has no kid (string): set it to the Layer key ID".to_owned());
    };
    let key = match trust.key_for(kid, app).await {
        Ok(key) => key,
        Err(KeyRefusal::Unknown) => {
            return Err(format!(
                "kid {kid:?} is not a key the emulator trusts (known: {})",
                trust.key_ids().join(", ")
            ));
        }
        Err(KeyRefusal::OtherApps(apps)) => {
            let registered = apps
                .iter()
                .map(|a| format!("{a} ({})", a.environment.as_str()))
                .collect::<Vec<_>>()
                .join(", ");
            return Err(format!(
                "kid {kid:?} is registered for {registered}, but the token was presented \
                 for {app} ({}): a staging/production mix-up? Sign with the key registered \
                 for this app, or send the app_id the key belongs to",
                app.environment.as_str()
            ));
        }
    };
    let signing_input = &token[..header_b64.len() + 1 + claims_b64.len()];
    let verified = jsonwebtoken::crypto::verify(
        signature_b64,
        signing_input.as_bytes(),
        &key,
        Algorithm::RS256,
    )
    .map_err(|e| format!("the signature could not be checked: {e}"))?;
    if !verified {
        return Err(format!(
            "the signature does not verify with the public key registered for kid {kid:?}"
        ));
    }
    let claims = decode_object(claims_b64, "claims")?;
    let Some(provider_id) = trust.provider_for(app) else {
        return Err(format!(
            "the emulator knows no provider for {app}: give --provider-id, --app-provider \
             {app}=PROVIDER_ID, or a --jwks-url whose keys name their app and provider"
        ));
    };
    check_claims(&claims, &provider_id, now)
}

fn check_claims(
    claims: &Map<String, Value>,
    provider_id: &str,
    now: i64,
) -> Result<VerifiedToken, String> {
    match claims.get("iss") {
        Some(Value::String(iss)) if iss == provider_id => {}
        Some(Value::String(iss)) => {
            return Err(format!(
                "iss is {iss:?}, but the app belongs to the provider {provider_id:?}"
            ));
        }
        _ => {
            return Err(format!(
                "the claims have no iss (string); it must be {provider_id:?}"
            ));
        }
    }
    let user_id = match claims.get("prn") {
        Some(Value::String(prn)) if valid_user_id(prn) => prn.clone(),
        Some(Value::String(_)) => {
            return Err("prn must be a non-empty user ID without control characters".to_owned());
        }
        Some(other) => return Err(format!("prn is {other}; it must be a string user ID")),
        None => return Err("the claims have no prn (the user ID)".to_owned()),
    };
    let exp = integer_claim(claims, "exp")?;
    let iat = integer_claim(claims, "iat")?;
    if exp <= now {
        return Err(format!("the token expired at {exp} (now {now})"));
    }
    if iat > now + CLOCK_SKEW_SECS {
        return Err(format!(
            "iat {iat} is in the future (now {now}); iat and exp are Unix seconds, UTC"
        ));
    }
    let nonce = match claims.get("nce") {
        Some(Value::String(nce)) if !nce.is_empty() => nce.clone(),
        _ => {
            return Err("the claims have no nce: put the nonce from POST /nonces in it".to_owned());
        }
    };
    let text = |name: &str| match claims.get(name) {
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        _ => None,
    };
    Ok(VerifiedToken {
        user_id,
        nonce,
        profile: Profile {
            display_name: text("display_name"),
            first_name: text("first_name"),
            last_name: text("last_name"),
            avatar_url: text("avatar_url"),
            public_key: text("public_key"),
        },
    })
}

fn integer_claim(claims: &Map<String, Value>, name: &str) -> Result<i64, String> {
    match claims.get(name) {
        Some(Value::Number(n)) => n
            .as_i64()
            .ok_or_else(|| format!("{name} must be an integer number of Unix seconds")),
        Some(other) => Err(format!(
            "{name} is {other}; it must be integer Unix seconds"
        )),
        None => Err(format!("the claims have no {name}")),
    }
}

/// base64url (no padding) → a JSON object whose members are all distinct.
fn decode_object(part: &str, what: &str) -> Result<Map<String, Value>, String> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| format!("the {what} is not unpadded base64url"))?;
    let mut de = serde_json::Deserializer::from_slice(&bytes);
    let object = StrictObject::deserialize(&mut de)
        .and_then(|o| de.end().map(|()| o))
        .map_err(|e| format!("the {what} is not a JSON object: {e}"))?;
    Ok(object.0)
}

/// A JSON object that refuses duplicate member names. `serde_json` keeps the last of a
/// duplicated member silently, and JWS libraries disagree on which one wins, so a token with
/// two `alg`s (or two `prn`s) is refused outright (RFC 7515 §4, RFC 8725).
struct StrictObject(Map<String, Value>);

impl<'de> Deserialize<'de> for StrictObject {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ObjectVisitor;

        impl<'de> Visitor<'de> for ObjectVisitor {
            type Value = StrictObject;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<StrictObject, A::Error> {
                let mut map = Map::new();
                while let Some(key) = access.next_key::<String>()? {
                    let value: Value = access.next_value()?;
                    if map.insert(key.clone(), value).is_some() {
                        return Err(de::Error::custom(format!("duplicate member {key:?}")));
                    }
                }
                Ok(StrictObject(map))
            }
        }

        deserializer.deserialize_map(ObjectVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicate_members_are_refused() {
        let dup = URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","alg":"none"}"#);
        let err = decode_object(&dup, "header").unwrap_err();
        assert!(err.contains("duplicate member \"alg\""), "{err}");
        let ok = URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256"}"#);
        assert_eq!(decode_object(&ok, "header").unwrap()["alg"], "RS256");
    }

    #[test]
    fn claims_rules_name_what_failed() {
        let now = 1_000_000;
        let claims = |v: Value| v.as_object().unwrap().clone();
        let good = serde_json::json!({
            "iss": "layer:///providers/p", "prn": "bob", "iat": now, "exp": now + 60, "nce": "n"
        });
        assert_eq!(
            check_claims(&claims(good.clone()), "layer:///providers/p", now)
                .unwrap()
                .user_id,
            "bob"
        );
        let mut expired = good.clone();
        expired["exp"] = (now - 1).into();
        assert!(
            check_claims(&claims(expired), "layer:///providers/p", now)
                .unwrap_err()
                .contains("expired")
        );
        let mut empty_prn = good.clone();
        empty_prn["prn"] = "".into();
        assert!(
            check_claims(&claims(empty_prn), "layer:///providers/p", now)
                .unwrap_err()
                .contains("prn")
        );
        let mut millis = good.clone();
        millis["iat"] = (now * 1000).into();
        assert!(
            check_claims(&claims(millis), "layer:///providers/p", now)
                .unwrap_err()
                .contains("future")
        );
        assert!(
            check_claims(&claims(good), "layer:///providers/q", now)
                .unwrap_err()
                .contains("iss")
        );
    }
}
