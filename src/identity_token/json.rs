//! Decoding a token part: unpadded base64url, then a JSON object whose members are distinct.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde_json::{Map, Value};

/// Why a part did not decode; each has its own Layer reason code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    Base64(String),
    Json(String),
}

impl DecodeError {
    pub fn message(&self) -> &str {
        match self {
            DecodeError::Base64(m) | DecodeError::Json(m) => m,
        }
    }
}

/// base64url (no padding) → a JSON object whose members are all distinct.
pub fn decode_object(part: &str, what: &str) -> Result<Map<String, Value>, DecodeError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| DecodeError::Base64(format!("the {what} is not unpadded base64url")))?;
    let mut de = serde_json::Deserializer::from_slice(&bytes);
    let object = StrictObject::deserialize(&mut de)
        .and_then(|o| de.end().map(|()| o))
        .map_err(|e| DecodeError::Json(format!("the {what} is not a JSON object: {e}")))?;
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
        assert!(
            err.message().contains("duplicate member \"alg\""),
            "{err:?}"
        );
        let ok = URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256"}"#);
        assert_eq!(decode_object(&ok, "header").unwrap()["alg"], "RS256");
        assert!(matches!(
            decode_object("a+b", "header"),
            Err(DecodeError::Base64(_))
        ));
    }
}
