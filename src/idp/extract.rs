//! Request extractors of the identity provider: bodies as JSON *or* forms, bearer tokens, and
//! the authenticated user or admin behind them (resolved by middleware, before the body).
//!
//! Layer-era clients post JSON (Atlas Messenger, Instastart) and forms (the Python and Ruby
//! samples, Rails `user[email]` nesting), so [`Body`] accepts both and turns a form into the
//! same JSON object before deserialising: one set of rules, one set of error messages. Every
//! failure is an [`IdpError`] in the face's format — never actix's plain-text defaults.

use std::fmt;
use std::future::Future;
use std::pin::Pin;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};
use serde::de::{DeserializeOwned, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use super::IdpState;
use super::error::IdpError;
use crate::store::User;

const ACCEPTED_TYPES: &str = "application/json or application/x-www-form-urlencoded";

/// A request body, from JSON or an HTML form, deserialised into `T`.
pub struct Body<T>(pub T);

impl<T: DeserializeOwned + 'static> FromRequest for Body<T> {
    type Error = IdpError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, IdpError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let kind = body_kind(req);
        let limit = req
            .app_data::<web::Data<IdpState>>()
            .map(|state| state.max_body_bytes)
            .unwrap_or(64 * 1024);
        let bytes = web::Bytes::from_request(req, payload);
        Box::pin(async move {
            let kind = kind?;
            let bytes = bytes
                .await
                .map_err(|e| match e.as_error::<PayloadError>() {
                    Some(PayloadError::Overflow) => IdpError::PayloadTooLarge { limit },
                    _ => IdpError::Malformed(format!("the request body could not be read: {e}")),
                })?;
            if bytes.len() > limit {
                return Err(IdpError::PayloadTooLarge { limit });
            }
            let value = match kind {
                BodyKind::Json => parse_json(&bytes)?,
                BodyKind::Form => parse_form(&bytes)?,
            };
            serde_json::from_value(value)
                .map(Body)
                .map_err(|e| IdpError::InvalidRequest(describe_data_error(&e)))
        })
    }
}

enum BodyKind {
    Json,
    Form,
}

fn body_kind(req: &HttpRequest) -> Result<BodyKind, IdpError> {
    let unsupported = IdpError::UnsupportedMediaType {
        accepts: ACCEPTED_TYPES,
    };
    let Some(value) = req.headers().get(header::CONTENT_TYPE) else {
        return Err(unsupported);
    };
    let mime = value
        .to_str()
        .ok()
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase());
    match mime.as_deref() {
        Some("application/json") => Ok(BodyKind::Json),
        Some(m) if m.starts_with("application/") && m.ends_with("+json") => Ok(BodyKind::Json),
        Some("application/x-www-form-urlencoded") => Ok(BodyKind::Form),
        _ => Err(unsupported),
    }
}

/// A JSON body: an object whose keys are unique at every depth. Public for the fuzzers.
pub fn parse_json(bytes: &[u8]) -> Result<Value, IdpError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(IdpError::Malformed(
            "the request body is empty; send a JSON object".to_owned(),
        ));
    }
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = UniqueKeys { path: "" }
        .deserialize(&mut deserializer)
        .and_then(|value| deserializer.end().map(|()| value))
        .map_err(|e| {
            if e.is_data() {
                // The only rule the parse itself enforces beyond syntax.
                IdpError::InvalidRequest(strip_position(&e.to_string()).to_owned())
            } else {
                IdpError::Malformed(format!(
                    "the body is not valid JSON (line {}, column {}): {}",
                    e.line(),
                    e.column(),
                    strip_position(&e.to_string())
                ))
            }
        })?;
    if !value.is_object() {
        return Err(IdpError::InvalidRequest(
            "the body must be a JSON object".to_owned(),
        ));
    }
    Ok(value)
}

/// Parses a JSON value whose objects, at every depth, name each key once.
///
/// serde_json keeps the last of two equal keys, so `{"email": A, "email": B}` would be read as
/// B while a log or a proxy in front reads A; the form parser refuses repeats for the same
/// reason. The `path` names where a repeat was found (`user.email`).
struct UniqueKeys<'p> {
    path: &'p str,
}

impl UniqueKeys<'_> {
    fn child(&self, step: fmt::Arguments<'_>) -> String {
        if self.path.is_empty() {
            step.to_string().trim_start_matches('.').to_owned()
        } else {
            format!("{}{step}", self.path)
        }
    }
}

impl<'de> DeserializeSeed<'de> for UniqueKeys<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for UniqueKeys<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        loop {
            let path = self.child(format_args!("[{}]", items.len()));
            match seq.next_element_seed(UniqueKeys { path: &path })? {
                Some(item) => items.push(item),
                None => return Ok(Value::Array(items)),
            }
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let path = self.child(format_args!(".{key}"));
            if object.contains_key(&key) {
                let shown: String = path.chars().take(100).collect();
                return Err(serde::de::Error::custom(format!(
                    "the JSON body repeats the key {shown:?}; send each key once"
                )));
            }
            let value = map.next_value_seed(UniqueKeys { path: &path })?;
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

/// Decodes `a=1&user[email]=x` into `{"a": "1", "user": {"email": "x"}}`. Percent-decoding is
/// strict: bytes that are not UTF-8 are an error, not replacement characters. Repeated keys
/// are refused rather than silently resolved. Public for the fuzzers.
pub fn parse_form(bytes: &[u8]) -> Result<Value, IdpError> {
    let mut object = Map::new();
    for pair in bytes.split(|b| *b == b'&').filter(|p| !p.is_empty()) {
        let (key, value) = match pair.iter().position(|b| *b == b'=') {
            Some(i) => (&pair[..i], &pair[i + 1..]),
            None => (pair, &b""[..]),
        };
        let key = decode_form_component(key)?;
        let value = decode_form_component(value)?;
        let (outer, inner) = match key.split_once('[') {
            Some((outer, rest)) => match rest.strip_suffix(']') {
                Some(inner) if !inner.contains(['[', ']']) && !inner.is_empty() => {
                    (outer.to_owned(), Some(inner.to_owned()))
                }
                _ => {
                    return Err(IdpError::InvalidRequest(format!(
                        "form field {key:?} is not a supported name (use `name` or `group[name]`)"
                    )));
                }
            },
            None => (key, None),
        };
        let duplicate = || IdpError::InvalidRequest("a form field is repeated".to_owned());
        match inner {
            None => {
                if object.insert(outer, Value::String(value)).is_some() {
                    return Err(duplicate());
                }
            }
            Some(inner) => {
                let slot = object
                    .entry(outer)
                    .or_insert_with(|| Value::Object(Map::new()));
                let Value::Object(group) = slot else {
                    return Err(duplicate());
                };
                if group.insert(inner, Value::String(value)).is_some() {
                    return Err(duplicate());
                }
            }
        }
    }
    Ok(Value::Object(object))
}

fn decode_form_component(raw: &[u8]) -> Result<String, IdpError> {
    let plus_as_space: Vec<u8> = raw
        .iter()
        .map(|b| if *b == b'+' { b' ' } else { *b })
        .collect();
    percent_encoding::percent_decode(&plus_as_space)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| IdpError::Malformed("a form field is not valid UTF-8".to_owned()))
}

fn strip_position(message: &str) -> &str {
    message.split(" at line ").next().unwrap_or(message)
}

/// serde's messages name the field ("missing field `email`", "unknown field `x`, expected one
/// of …", "invalid type: integer `1`, expected a string"); the position is meaningless after
/// the form-to-JSON step, so it is dropped.
fn describe_data_error(e: &serde_json::Error) -> String {
    format!(
        "the request is not of the expected shape: {}",
        strip_position(&e.to_string())
    )
}

/// The bearer token of `Authorization: Bearer <token>`, if well-formed.
pub fn bearer_token(req: &HttpRequest) -> Option<&str> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty() && token.len() <= 512)
        .then_some(token)
}

/// The user behind a valid, unexpired session token, and that token's hash.
///
/// Established by the [`require_session`] middleware *before* any other extractor runs, so an
/// unauthenticated request is answered 401 whatever its body — a bad body must not tell a
/// stranger more than "log in first".
#[derive(Clone)]
pub struct SessionUser {
    pub user: User,
    pub token_hash: Vec<u8>,
}

/// A caller holding a valid admin token; established by [`require_admin`].
#[derive(Clone)]
pub struct Admin {
    pub token_name: String,
}

fn state_of(req: &ServiceRequest) -> Result<web::Data<IdpState>, IdpError> {
    req.app_data::<web::Data<IdpState>>()
        .cloned()
        .ok_or_else(|| IdpError::internal(anyhow::anyhow!("the IdP state is not registered")))
}

/// Middleware: resolves the bearer session token or answers 401.
pub async fn require_session(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let session = session_of(&req).await;
    proceed_as(session, req, next).await
}

/// Middleware: checks the bearer admin token (stored only as a hash) or answers 401.
pub async fn require_admin(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let admin = admin_of(&req).await;
    proceed_as(admin, req, next).await
}

/// Hands the principal to the handler, or answers the error as a response (so it is rendered
/// inside the request's logging scope, with its request ID).
async fn proceed_as<P: 'static, B: MessageBody + 'static>(
    principal: Result<P, IdpError>,
    req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<EitherBody<B>>, actix_web::Error> {
    match principal {
        Ok(principal) => {
            req.extensions_mut().insert(principal);
            Ok(next.call(req).await?.map_into_left_body())
        }
        Err(e) => Ok(req.error_response(e).map_into_right_body()),
    }
}

async fn session_of(req: &ServiceRequest) -> Result<SessionUser, IdpError> {
    let state = state_of(req)?;
    let token = bearer_token(req.request()).ok_or(IdpError::Unauthenticated(
        "send the session token from POST /sessions as Authorization: Bearer <token>",
    ))?;
    let token_hash = super::sessions::hash_token(token);
    let user = state
        .sessions
        .find(token_hash.clone(), state.clock.now())
        .await
        .map_err(IdpError::internal)?
        .ok_or(IdpError::Unauthenticated(
            "the session token is unknown, expired or revoked; log in again with POST /sessions",
        ))?;
    Ok(SessionUser { user, token_hash })
}

async fn admin_of(req: &ServiceRequest) -> Result<Admin, IdpError> {
    let state = state_of(req)?;
    let token = bearer_token(req.request()).ok_or(IdpError::Unauthenticated(
        "send an admin token (layer-idp admin-tokens create) as Authorization: Bearer <token>",
    ))?;
    let hash = super::sessions::hash_token(token);
    let admin = state
        .store
        .use_admin_token(&hash, crate::clock::unix_now())
        .await?
        .ok_or(IdpError::Unauthenticated(
            "the admin token is unknown or revoked",
        ))?;
    Ok(Admin {
        token_name: admin.name,
    })
}

/// Handlers behind the middleware take the principal as an argument.
macro_rules! from_extensions {
    ($principal:ty) => {
        impl FromRequest for $principal {
            type Error = IdpError;
            type Future = std::future::Ready<Result<Self, IdpError>>;

            fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
                std::future::ready(
                    req.extensions()
                        .get::<$principal>()
                        .cloned()
                        .ok_or_else(|| {
                            IdpError::internal(anyhow::anyhow!(concat!(
                                stringify!($principal),
                                " requested on a route without its middleware"
                            )))
                        }),
                )
            }
        }
    };
}

from_extensions!(SessionUser);
from_extensions!(Admin);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_nest_rails_style_groups_and_decode_plus_as_space() {
        let v = parse_form(b"nonce=a%2Bb&user%5Bemail%5D=x%40y.z&user[password]=p+w").unwrap();
        assert_eq!(
            v,
            serde_json::json!({"nonce": "a+b", "user": {"email": "x@y.z", "password": "p w"}})
        );
    }

    #[test]
    fn forms_refuse_invalid_utf8_repeats_and_deep_nesting() {
        assert!(matches!(parse_form(b"a=%FF"), Err(IdpError::Malformed(_))));
        assert!(matches!(
            parse_form(b"a=1&a=2"),
            Err(IdpError::InvalidRequest(_))
        ));
        assert!(matches!(
            parse_form(b"a=1&a[b]=2"),
            Err(IdpError::InvalidRequest(_))
        ));
        assert!(matches!(
            parse_form(b"a[b][c]=1"),
            Err(IdpError::InvalidRequest(_))
        ));
    }

    fn description(result: Result<Value, IdpError>) -> String {
        match result {
            Err(IdpError::InvalidRequest(d)) => d,
            other => panic!(
                "expected invalid_request, got {:?}",
                other.map_err(|e| e.code())
            ),
        }
    }

    #[test]
    fn json_keys_may_appear_once_at_every_depth() {
        let d = description(parse_json(br#"{"email": "a@x.y", "email": "b@x.y"}"#));
        assert!(d.contains(r#""email""#) && d.contains("once"), "{d}");
        let d = description(parse_json(
            br#"{"user": {"email": "a@x.y", "password": "p", "email": "b@x.y"}}"#,
        ));
        assert!(d.contains(r#""user.email""#), "{d}");
        let d = description(parse_json(br#"{"a": [{"b": 1}, {"c": {"d": 1, "d": 2}}]}"#));
        assert!(d.contains(r#""a[1].c.d""#), "{d}");
        // Escapes are decoded first: these two spell the same key.
        let d = description(parse_json(br#"{"email": 1, "\u0065mail": 2}"#));
        assert!(d.contains(r#""email""#), "{d}");
        // The same key in sibling objects is no repeat; values keep their types.
        let v = parse_json(br#"{"a": {"k": 1.5}, "b": {"k": [true, null, -3, "s"]}}"#).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"a": {"k": 1.5}, "b": {"k": [true, null, -3, "s"]}})
        );
        // Nesting too deep for the parser is a syntax error, not a stack overflow.
        let deep = format!("{{\"a\": {}{}}}", "[".repeat(10_000), "]".repeat(10_000));
        assert!(matches!(
            parse_json(deep.as_bytes()),
            Err(IdpError::Malformed(_))
        ));
        // Trailing data after the object is still a syntax error.
        assert!(matches!(
            parse_json(br#"{"a": 1} {"a": 2}"#),
            Err(IdpError::Malformed(_))
        ));
    }

    #[test]
    fn json_must_be_an_object() {
        assert!(matches!(
            parse_json(b"[1]"),
            Err(IdpError::InvalidRequest(_))
        ));
        assert!(matches!(
            parse_json(b"{\"a\":"),
            Err(IdpError::Malformed(_))
        ));
        assert!(matches!(parse_json(b"  "), Err(IdpError::Malformed(_))));
        assert!(matches!(
            parse_json(b"{\"a\":\"\xff\"}"),
            Err(IdpError::Malformed(_))
        ));
    }
}
