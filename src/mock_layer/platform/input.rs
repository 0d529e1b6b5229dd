//! Reading Platform API request bodies into checked inputs. What the Client API shares
//! (conversations, message parts, conversation patches) is read by `input.rs`; this module
//! reads what only a server sends: a message's `sender`, identities and their patches,
//! block requests and user patches. Every rule broken is a 422 naming the property.

use serde_json::{Map, Value};

use crate::mock_layer::error::LayerError;
use crate::mock_layer::ids::user_id_from_identity;
use crate::mock_layer::world::{
    IDENTITY_FIELDS, IdentityFields, IdentityOp, Sender, check_identity_metadata,
};

/// Layer's length limits on identity fields (§B of the Platform API notes).
fn max_len(field: &str) -> usize {
    match field {
        "avatar_url" => 1024,
        "phone_number" => 32,
        "email_address" => 255,
        "public_key" => 16 * 1024,
        _ => 128,
    }
}

/// The longest name a message may be sent under.
const MAX_SENDER_NAME: usize = 128;

fn object<'a>(body: &'a Value, what: &str) -> Result<&'a Map<String, Value>, LayerError> {
    body.as_object()
        .ok_or_else(|| LayerError::invalid_request(format!("{what} must be a JSON object")))
}

/// A user named in a body: a user ID (1.x) or an identity ID (2.0+); either is accepted.
pub fn user(value: &Value, property: &str) -> Result<String, LayerError> {
    value
        .as_str()
        .and_then(user_id_from_identity)
        .ok_or_else(|| {
            LayerError::invalid_property(
                property,
                format!("{property} must be a user ID or layer:///identities/<user id>"),
            )
        })
}

/// `sender: {"user_id"}` or `{"name"}` (exactly one), or 2.0's `sender_id`.
pub fn sender(body: &Value) -> Result<Sender, LayerError> {
    let body = object(body, "the message")?;
    if let Some(id) = body.get("sender_id").filter(|v| !v.is_null()) {
        return user(id, "sender_id").map(Sender::User);
    }
    let sender = match body.get("sender") {
        None | Some(Value::Null) => return Err(LayerError::missing_property("sender")),
        Some(Value::Object(sender)) => sender,
        Some(_) => {
            return Err(LayerError::invalid_property(
                "sender",
                "sender must be {\"user_id\": …} or {\"name\": …}",
            ));
        }
    };
    let user_id = sender.get("user_id").filter(|v| !v.is_null());
    let name = sender.get("name").filter(|v| !v.is_null());
    match (user_id, name) {
        (Some(_), Some(_)) => Err(LayerError::invalid_property(
            "sender",
            "sender takes user_id or name, not both",
        )),
        (Some(id), None) => user(id, "sender.user_id").map(Sender::User),
        (None, Some(Value::String(name)))
            if !name.trim().is_empty() && name.len() <= MAX_SENDER_NAME =>
        {
            Ok(Sender::Name(name.clone()))
        }
        (None, Some(_)) => Err(LayerError::invalid_property(
            "sender.name",
            format!("sender.name must be a non-empty string of at most {MAX_SENDER_NAME} bytes"),
        )),
        (None, None) => Err(LayerError::missing_property("sender")),
    }
}

/// `schedule: {"delay_in_seconds": 1–300, "typing_indicator_in_seconds"?: 1–delay}` as
/// milliseconds (delay, typing).
pub fn schedule(body: &Value) -> Result<Option<(i64, Option<i64>)>, LayerError> {
    let schedule = match body.get("schedule") {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Object(s)) => s,
        Some(_) => {
            return Err(LayerError::invalid_property(
                "schedule",
                "schedule must be {\"delay_in_seconds\": …}",
            ));
        }
    };
    let seconds = |name: &str, max: f64| -> Result<Option<i64>, LayerError> {
        match schedule.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => match v.as_f64() {
                Some(s) if (1.0..=max).contains(&s) => Ok(Some((s * 1000.0).round() as i64)),
                _ => Err(LayerError::invalid_property(
                    &format!("schedule.{name}"),
                    format!("schedule.{name} must be a number from 1 to {max}"),
                )),
            },
        }
    };
    let delay = seconds("delay_in_seconds", 300.0)?
        .ok_or_else(|| LayerError::missing_property("schedule.delay_in_seconds"))?;
    let typing = seconds("typing_indicator_in_seconds", delay as f64 / 1000.0)?;
    Ok(Some((delay, typing)))
}

/// One identity field's value: a string within its limit; `null` or `""` is empty.
fn field_value(name: &str, value: &Value) -> Result<Option<String>, LayerError> {
    match value {
        Value::Null => Ok(None),
        Value::String(s) if s.is_empty() => Ok(None),
        Value::String(s) if s.len() <= max_len(name) => Ok(Some(s.clone())),
        Value::String(s) => Err(LayerError::invalid_property(
            name,
            format!(
                "{name} is at most {} bytes; this is {}",
                max_len(name),
                s.len()
            ),
        )),
        _ => Err(LayerError::invalid_property(
            name,
            format!("{name} must be a string"),
        )),
    }
}

fn metadata(value: &Value) -> Result<Map<String, Value>, LayerError> {
    match value {
        Value::Null => Ok(Map::new()),
        Value::Object(map) => {
            check_identity_metadata(map)?;
            Ok(map.clone())
        }
        _ => Err(LayerError::invalid_property(
            "metadata",
            "metadata must be an object of strings",
        )),
    }
}

/// A whole identity (`POST`/`PUT …/identity`): `display_name` required, the rest optional.
pub fn identity_fields(body: &Value) -> Result<IdentityFields, LayerError> {
    let body = object(body, "the identity")?;
    if let Some(unknown) = body
        .keys()
        .find(|k| !IDENTITY_FIELDS.contains(&k.as_str()) && *k != "metadata" && *k != "user_id")
    {
        return Err(LayerError::invalid_property(
            unknown,
            format!("{unknown:?} is not a field of an identity"),
        ));
    }
    let get = |name: &str| field_value(name, body.get(name).unwrap_or(&Value::Null));
    let fields = IdentityFields {
        display_name: get("display_name")?,
        avatar_url: get("avatar_url")?,
        first_name: get("first_name")?,
        last_name: get("last_name")?,
        phone_number: get("phone_number")?,
        email_address: get("email_address")?,
        public_key: get("public_key")?,
        metadata: metadata(body.get("metadata").unwrap_or(&Value::Null))?,
    };
    if fields.display_name.is_none() {
        return Err(LayerError::missing_property("display_name"));
    }
    Ok(fields)
}

/// An identity's Layer-Patch: `set` of a field, of `metadata`, or of `metadata.<key>`;
/// `delete` of `metadata.<key>`.
pub fn identity_patch(body: &Value) -> Result<Vec<IdentityOp>, LayerError> {
    let ops = body.as_array().ok_or_else(|| {
        LayerError::invalid_request("a Layer-Patch body is a JSON array of operations")
    })?;
    let mut parsed = Vec::with_capacity(ops.len());
    for (index, op) in ops.iter().enumerate() {
        let op = op.as_object().ok_or_else(|| {
            LayerError::invalid_request(format!("operation {index} must be an object"))
        })?;
        let operation = op
            .get("operation")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let property = op
            .get("property")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let value = op.get("value").unwrap_or(&Value::Null);
        let invalid = |msg: String| {
            LayerError::invalid_property("property", format!("operation {index}: {msg}"))
        };
        let parsed_op = if let Some(name) = IDENTITY_FIELDS.iter().find(|f| **f == property) {
            match operation {
                "set" => IdentityOp::Field(name, field_value(name, value)?),
                "delete" => IdentityOp::Field(name, None),
                other => return Err(invalid(format!("{other:?} is not set or delete"))),
            }
        } else if property == "metadata" {
            match operation {
                "set" => IdentityOp::Metadata(metadata(value)?),
                "delete" => IdentityOp::Metadata(Map::new()),
                other => return Err(invalid(format!("{other:?} is not set or delete"))),
            }
        } else if let Some(key) = property.strip_prefix("metadata.") {
            let key = key.replace("\\.", ".").replace("\\\\", "\\");
            if key.is_empty() || key.len() > 128 {
                return Err(invalid("metadata keys are 1 to 128 bytes".to_owned()));
            }
            match (operation, value) {
                ("set", Value::String(s)) if s.len() <= 1024 => {
                    IdentityOp::MetadataKey(key, Some(s.clone()))
                }
                ("set", _) => {
                    return Err(LayerError::invalid_property(
                        "metadata",
                        format!(
                            "operation {index}: identity metadata values are strings of at most 1024 bytes"
                        ),
                    ));
                }
                ("delete", _) => IdentityOp::MetadataKey(key, None),
                (other, _) => return Err(invalid(format!("{other:?} is not set or delete"))),
            }
        } else {
            return Err(invalid(format!(
                "{property:?} is not a property of an identity"
            )));
        };
        parsed.push(parsed_op);
    }
    Ok(parsed)
}

/// `POST /users/{owner}/blocks` `{"user_id": …}`.
pub fn block_target(body: &Value) -> Result<String, LayerError> {
    let body = object(body, "the block")?;
    match body.get("user_id").or_else(|| body.get("id")) {
        None | Some(Value::Null) => Err(LayerError::missing_property("user_id")),
        Some(value) => user(value, "user_id"),
    }
}

/// One operation of `PATCH /users/{u}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserOp {
    Block(String),
    Unblock(String),
    SetBlocks(Vec<String>),
    Suspend(bool),
}

/// `PATCH /users/{u}`: `add`/`remove`/`set` of `blocks`, `set` of `suspended`.
pub fn user_patch(body: &Value) -> Result<Vec<UserOp>, LayerError> {
    let ops = body.as_array().ok_or_else(|| {
        LayerError::invalid_request("a Layer-Patch body is a JSON array of operations")
    })?;
    let mut parsed = Vec::with_capacity(ops.len());
    for (index, op) in ops.iter().enumerate() {
        let op = op.as_object().ok_or_else(|| {
            LayerError::invalid_request(format!("operation {index} must be an object"))
        })?;
        let operation = op
            .get("operation")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let property = op
            .get("property")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let value = op
            .get("id")
            .or_else(|| op.get("value"))
            .unwrap_or(&Value::Null);
        let invalid = |property: &str, msg: String| {
            LayerError::invalid_property(property, format!("operation {index}: {msg}"))
        };
        parsed.push(match (property, operation) {
            ("blocks", "add") => UserOp::Block(user(value, "blocks")?),
            ("blocks", "remove") => UserOp::Unblock(user(value, "blocks")?),
            ("blocks", "set") => {
                let list = op
                    .get("value")
                    .and_then(Value::as_array)
                    .ok_or_else(|| invalid("blocks", "set takes an array".to_owned()))?;
                if list.len() > 10_000 {
                    return Err(invalid("blocks", "at most 10000 users".to_owned()));
                }
                UserOp::SetBlocks(
                    list.iter()
                        .map(|v| user(v, "blocks"))
                        .collect::<Result<_, _>>()?,
                )
            }
            ("suspended", "set") => match op.get("value") {
                Some(Value::Bool(b)) => UserOp::Suspend(*b),
                _ => {
                    return Err(invalid(
                        "suspended",
                        "suspended is true or false".to_owned(),
                    ));
                }
            },
            (property, operation) => {
                return Err(invalid(
                    "property",
                    format!("{operation:?} of {property:?} is not something a user patch does"),
                ));
            }
        });
    }
    Ok(parsed)
}

/// The most a conversation's `significance` may take, as JSON.
const MAX_SIGNIFICANCE_BYTES: usize = 4096;

/// 3.0's `significance` on a conversation create: an object (Layer documented it as one and
/// no more), kept and shown as given.
pub fn significance(body: &Value) -> Result<Option<Map<String, Value>>, LayerError> {
    match body.get("significance") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(map))
            if Value::Object(map.clone()).to_string().len() <= MAX_SIGNIFICANCE_BYTES =>
        {
            Ok(Some(map.clone()))
        }
        Some(Value::Object(_)) => Err(LayerError::invalid_property(
            "significance",
            format!("significance takes at most {MAX_SIGNIFICANCE_BYTES} bytes of JSON"),
        )),
        Some(_) => Err(LayerError::invalid_property(
            "significance",
            "significance must be an object",
        )),
    }
}

/// Members of a push that are one string each (§C.3), besides `title`, `text` and `sound`.
const NOTIFICATION_STRINGS: [&str; 4] = ["category", "title-loc-key", "loc-key", "action-loc-key"];

/// Members of a push that are lists of strings (format arguments).
const NOTIFICATION_LISTS: [&str; 2] = ["title-loc-args", "loc-args"];

/// The most a push's `data`, or its `apns` object, may take as JSON (APNs took 4 KiB for a
/// whole payload)…
const MAX_NOTIFICATION_OBJECT_BYTES: usize = 2048;

/// …and how many per-recipient overrides one may carry.
const MAX_NOTIFICATION_RECIPIENTS: usize = 1000;

/// A push as the Platform API takes it (§C.3) on messages, announcements and
/// `POST /notifications`: `title`, `text`, `sound`, `category`, the localisation keys and
/// arguments, `apns` (`launch-image`), `data`, and `recipients` — per-recipient `title`,
/// `text` and `sound` for a `user_id` (1.x) or `recipient` (2.0, an identity ID; either is
/// accepted), kept with the user ID as `user_id`. Other members are not kept.
pub fn notification(body: &Value) -> Result<Option<Value>, LayerError> {
    let given = match body.get("notification") {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Object(given)) => given,
        Some(_) => {
            return Err(LayerError::invalid_property(
                "notification",
                "notification must be an object (title, text, sound, data, recipients, …)",
            ));
        }
    };
    let invalid = |message: String| LayerError::invalid_property("notification", message);
    let mut kept = crate::mock_layer::input::notification(given)?;
    for field in NOTIFICATION_STRINGS {
        match given.get(field) {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) if s.len() <= MAX_NOTIFICATION_OBJECT_BYTES => {
                kept.insert(field.to_owned(), Value::String(s.clone()));
            }
            Some(_) => {
                return Err(invalid(format!(
                    "notification.{field} must be a string of at most \
                     {MAX_NOTIFICATION_OBJECT_BYTES} bytes"
                )));
            }
        }
    }
    for field in NOTIFICATION_LISTS {
        match given.get(field) {
            None | Some(Value::Null) => {}
            Some(Value::Array(list))
                if list.len() <= 16
                    && list.iter().all(|v| {
                        v.as_str()
                            .is_some_and(|s| s.len() <= MAX_NOTIFICATION_OBJECT_BYTES)
                    }) =>
            {
                kept.insert(field.to_owned(), Value::Array(list.clone()));
            }
            Some(_) => {
                return Err(invalid(format!(
                    "notification.{field} must be a list of at most 16 strings"
                )));
            }
        }
    }
    for field in ["apns", "data"] {
        match given.get(field) {
            None | Some(Value::Null) => {}
            Some(value @ Value::Object(map))
                if value.to_string().len() <= MAX_NOTIFICATION_OBJECT_BYTES
                    && (field == "data" || map.values().all(Value::is_string)) =>
            {
                kept.insert(field.to_owned(), value.clone());
            }
            Some(_) => {
                return Err(invalid(format!(
                    "notification.{field} must be an object of at most \
                     {MAX_NOTIFICATION_OBJECT_BYTES} bytes of JSON{}",
                    if field == "apns" {
                        " with string values"
                    } else {
                        ""
                    }
                )));
            }
        }
    }
    match given.get("recipients") {
        None | Some(Value::Null) => {}
        Some(Value::Array(list)) if list.len() <= MAX_NOTIFICATION_RECIPIENTS => {
            let mut overrides = Vec::with_capacity(list.len());
            for (index, entry) in list.iter().enumerate() {
                let Some(entry) = entry.as_object() else {
                    return Err(invalid(format!(
                        "notification.recipients[{index}] must be an object"
                    )));
                };
                let who = entry
                    .get("user_id")
                    .or_else(|| entry.get("recipient"))
                    .filter(|v| !v.is_null())
                    .ok_or_else(|| {
                        invalid(format!(
                            "notification.recipients[{index}] names nobody: give user_id \
                             (1.x) or recipient (2.0)"
                        ))
                    })?;
                let user = user(who, "notification")?;
                let mut one = crate::mock_layer::input::notification(entry)?;
                one.insert("user_id".into(), Value::String(user));
                overrides.push(Value::Object(one));
            }
            kept.insert("recipients".into(), Value::Array(overrides));
        }
        Some(_) => {
            return Err(invalid(format!(
                "notification.recipients must be a list of at most \
                 {MAX_NOTIFICATION_RECIPIENTS} overrides"
            )));
        }
    }
    Ok(Some(Value::Object(kept)))
}
