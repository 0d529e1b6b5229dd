//! The likely cause of a failed (or suspicious) rule, in plain words: the classic mistakes of
//! Layer integrations, most of them made by Layer's own sample identity providers
//! (milliseconds in `iat`/`exp`, local time in `iat`, HS256, a forgotten `cty`, the key's file
//! name as `kid`, an e-mail address as `prn`, a `+` in the nonce sent unescaped).

use serde_json::Value;

use super::json::DecodeError;

/// Unix seconds pass 10^11 in the year 5138; a time this large is milliseconds.
const MILLIS_THRESHOLD: i64 = 100_000_000_000;

/// Time zones lie within 14 hours of UTC.
const MAX_ZONE_HOURS: i64 = 14;

pub const MISSING_CTY: &str = "the header needs cty \"layer-eit;v=1\": JWT libraries leave it \
     out unless told to (set it in the header you pass to the library)";

pub const BAD_SIGNATURE: &str = "the token was signed with a private key that does not match \
     the public key registered for this kid: another app's or environment's private key, a \
     rotated key, or a token altered after signing";

pub fn part_count(token: &str, parts: usize) -> Option<String> {
    if token.trim() != token {
        Some(
            "the token has surrounding whitespace or a line break; send it exactly as signed"
                .into(),
        )
    } else if token.starts_with("Bearer ") || token.starts_with('"') || token.starts_with('{') {
        Some("this is not the bare token: send only header.claims.signature".into())
    } else if parts == 5 {
        Some("five parts is an encrypted JWE; Layer wants a signed JWS (RS256)".into())
    } else {
        None
    }
}

pub fn decode(e: &DecodeError) -> Option<String> {
    match e {
        DecodeError::Base64(_) => Some(
            "use base64url without padding (- and _ instead of + and /, no =), as JWT \
             libraries do"
                .into(),
        ),
        DecodeError::Json(m) if m.contains("duplicate member") => Some(
            "a member appears twice; JSON built by string concatenation often does this".into(),
        ),
        DecodeError::Json(_) => None,
    }
}

pub fn alg(alg: &str) -> Option<String> {
    if alg.eq_ignore_ascii_case("none") {
        Some(
            "alg none means the token is not signed at all; Layer only accepts tokens signed \
             with RS256 and your RSA private key"
                .into(),
        )
    } else if alg.to_ascii_uppercase().starts_with("HS") {
        Some(format!(
            "{alg} is an HMAC with a shared secret; Layer verifies RS256 with the public key \
             you registered, so sign with the RSA private key and alg RS256"
        ))
    } else {
        Some(format!(
            "{alg} is not what Layer accepts: sign with RS256 (RSA PKCS#1 v1.5, SHA-256)"
        ))
    }
}

pub fn looks_like_key_id(kid: &str) -> bool {
    kid.starts_with("layer:///keys/")
}

pub fn unknown_kid(kid: &str, named: Option<&str>) -> Option<String> {
    match named {
        Some(id) => Some(format!(
            "the kid is the key's name, not its ID: put the key ID {id} in kid"
        )),
        None if !looks_like_key_id(kid) => Some(
            "the kid is the key's name, not its ID: Layer's key IDs look like \
             layer:///keys/<UUID> (the dashboard shows it next to the key)"
                .into(),
        ),
        None => Some(
            "this key ID is not registered here: a key of another Layer account or \
             environment, a deleted key, or the wrong JWKS/public key given to the inspector"
                .into(),
        ),
    }
}

pub fn other_app(registered: &[(String, String)], presented: &(String, String)) -> Option<String> {
    let (app, env) = registered.first()?;
    Some(format!(
        "the kid belongs to the {env} app ({app}); the token is for the {} app: sign with \
         that app's key, or send the app_id the key belongs to",
        presented.1
    ))
}

pub fn iss(iss: &str) -> Option<String> {
    if iss.starts_with("layer:///providers/") {
        Some(
            "iss is another provider's ID: each app (staging, production) has its own \
             provider ID"
                .into(),
        )
    } else {
        Some(
            "iss must be the Layer provider ID (layer:///providers/<UUID>), not a URL or a \
             name"
                .into(),
        )
    }
}

pub fn prn(prn: &str) -> Option<String> {
    if prn.contains('@') && prn.contains('.') {
        Some(
            "prn is an e-mail address: use a stable ID; an e-mail address changes, and Layer \
             keys the user's conversations by prn"
                .into(),
        )
    } else if prn.trim() != prn {
        Some("prn has leading or trailing whitespace; Layer treats it as part of the ID".into())
    } else {
        None
    }
}

pub fn non_integer_time(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(_) => Some("send a JSON number, not a string".into()),
        Value::Number(n) if n.is_f64() => {
            Some("send whole seconds: floor the time, no fraction".into())
        }
        _ => None,
    }
}

fn is_millis(t: i64) -> bool {
    t >= MILLIS_THRESHOLD
}

/// Whole hours of offset, when `delta` seconds is within the skew of a whole number of hours
/// (1 to 14).
fn whole_hours(delta: i64, slack: i64) -> Option<i64> {
    let hours = (delta as f64 / 3600.0).round() as i64;
    ((1..=MAX_ZONE_HOURS).contains(&hours.abs()) && (delta - hours * 3600).abs() <= slack)
        .then_some(hours)
}

pub fn exp_in_millis(exp: i64, _now: i64) -> Option<String> {
    is_millis(exp).then(|| {
        "exp is in milliseconds: Layer reads it as seconds, so this token effectively never \
         expires; divide by 1000"
            .into()
    })
}

pub fn iat_ahead(iat: i64, exp: Option<i64>, now: i64) -> Option<String> {
    if is_millis(iat) {
        let both = exp.is_some_and(is_millis);
        return Some(if both {
            "iat and exp are in milliseconds (exp is in milliseconds too): JWT times are Unix \
             seconds; divide by 1000"
                .into()
        } else {
            "iat is in milliseconds: JWT times are Unix seconds; divide by 1000".into()
        });
    }
    let hours = whole_hours(iat - now, super::CLOCK_SKEW_SECS * 2)?;
    Some(format!(
        "iat is in local time: it is {hours} hour(s) ahead of UTC; compute Unix time from UTC \
         (time.time(), DateTime.UtcNow), never from a local date"
    ))
}

pub fn expired(exp: i64, iat: Option<i64>, now: i64) -> Option<String> {
    if let Some(iat) = iat
        && let Some(hours) = whole_hours(now - iat, super::CLOCK_SKEW_SECS * 2 + (exp - iat).abs())
        && exp - iat < 3600
    {
        return Some(format!(
            "iat is in local time: the token was made {hours} hour(s) behind UTC, so its short \
             lifetime was over before it was sent; compute Unix time from UTC"
        ));
    }
    if exp > 0 && exp < 100_000_000 {
        return Some("exp looks like a lifetime, not a time: set exp = iat + lifetime".into());
    }
    None
}

pub fn nonce(nce: &str) -> Option<String> {
    if nce.contains(' ') {
        Some(
            "nce has a space: a + in the nonce was sent unescaped in a form body and decoded \
             as a space; URL-encode the nonce (+ as %2B) or send JSON"
                .into(),
        )
    } else if nce.trim() != nce {
        Some(
            "nce has a line break or surrounding whitespace; send it exactly as Layer gave it"
                .into(),
        )
    } else {
        None
    }
}
