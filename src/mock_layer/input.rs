//! Reading request bodies — REST and WebSocket alike — into checked inputs for the world.
//!
//! Parse, don't validate: nothing past this module sees raw JSON from a client. Every rule
//! broken answers Layer's `invalid_property` / `missing_property` naming the property, so a
//! wrong type, a missing field or an oversized part gets a 422 that says what to fix, never
//! a 500. The rules are Layer's documented ones (participants limit, a MIME type with a `/`,
//! inline bodies of at most 2 KiB, `base64` the only encoding).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value};
use uuid::Uuid;

use super::error::LayerError;
use super::ids::{Kind, parse_object_id, user_id_from_identity};

/// Layer's limit for an inline part; larger parts go through rich content. Both SDKs
/// decide with `body.length <= 2048` (websdk `MessagePart`, XDK `message-part.js` `_send`):
/// UTF-16 code units for text, so that is what a textual body is measured in; a `base64`
/// body is measured in decoded bytes (the SDKs check the Blob's size there).
pub const MAX_INLINE_BODY: usize = 2048;

/// The longest `title`, `text` or `sound` of a message's push notification. Pushes outlive
/// their messages in `GET /_mock/notifications`, so what one keeps is bounded; APNs took
/// 4 KiB for a whole payload.
pub const MAX_NOTIFICATION_FIELD_BYTES: usize = 2048;

/// More parts than this in one message is not a message.
const MAX_PARTS: usize = 64;

/// MIME types with attributes (`…;role=root;parent-node-id=…`) stay well below this.
const MAX_MIME_TYPE_BYTES: usize = 512;

/// Bounds on a conversation's metadata. Layer documented none; these leave any real use
/// room while keeping every metadata object shallow (no recursion on it can run deep) and
/// small (one test cannot fill the emulator's memory through it).
pub const MAX_METADATA_DEPTH: usize = 16;
pub const MAX_METADATA_KEY_BYTES: usize = 256;
pub const MAX_METADATA_VALUE_BYTES: usize = 4 * 1024;
pub const MAX_METADATA_BYTES: usize = 16 * 1024;

#[derive(Debug)]
pub struct NewConversation {
    pub uuid: Option<Uuid>,
    /// User IDs (the caller is added by the world).
    pub participants: Vec<String>,
    pub distinct: bool,
    pub metadata: Option<Map<String, Value>>,
    /// Platform API 3.0's `significance` object, kept as given (the Client API has none).
    pub significance: Option<Map<String, Value>>,
}

#[derive(Debug)]
pub struct NewMessage {
    pub uuid: Option<Uuid>,
    pub parts: Vec<NewPart>,
    pub notification: Option<Value>,
    /// Sent through the Platform API: its content parts use content the server uploaded.
    pub from_server: bool,
}

#[derive(Debug)]
pub struct NewPart {
    pub id: Option<String>,
    pub mime_type: String,
    pub body: Option<String>,
    pub encoding: Option<String>,
    pub content: Option<Uuid>,
    /// The decoded size of an inline body.
    pub size: u64,
}

#[derive(Debug)]
pub enum PatchOp {
    AddParticipant(String),
    RemoveParticipant(String),
    SetParticipants(Vec<String>),
    SetMetadata(Vec<String>, Value),
    DeleteMetadata(Vec<String>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReceiptKind {
    Delivery,
    Read,
}

fn object<'a>(value: &'a Value, what: &str) -> Result<&'a Map<String, Value>, LayerError> {
    value
        .as_object()
        .ok_or_else(|| LayerError::invalid_request(format!("{what} must be a JSON object")))
}

/// A participant given as an identity ID, a bare user ID, or an identity object.
fn participant(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => user_id_from_identity(s),
        Value::Object(o) => match (o.get("user_id"), o.get("id")) {
            (Some(Value::String(user)), _) => user_id_from_identity(user),
            (_, Some(Value::String(id))) => user_id_from_identity(id),
            _ => None,
        },
        _ => None,
    }
}

/// A list of at most `max` participants. A longer one is refused before any of it is read:
/// one body can name tens of thousands, and nothing a conversation can hold needs more
/// than `max` (duplicates included).
fn participants(value: &Value, max: usize) -> Result<Vec<String>, LayerError> {
    let invalid = |msg: String| LayerError::invalid_property("participants", msg);
    let list = value
        .as_array()
        .ok_or_else(|| invalid("participants must be an array of identity IDs".to_owned()))?;
    if list.len() > max {
        return Err(invalid(format!(
            "a conversation has at most {max} participants (mock_layer.max_participants); \
             this list names {}",
            list.len()
        )));
    }
    list.iter()
        .enumerate()
        .map(|(i, v)| {
            participant(v).ok_or_else(|| {
                invalid(format!(
                    "participants[{i}] is not an identity ID (layer:///identities/<user id>) \
                     or a user ID"
                ))
            })
        })
        .collect()
}

/// Metadata is an object of strings and nested objects (Layer's rule), within the
/// emulator's bounds: at most [`MAX_METADATA_DEPTH`] levels (`levels_above` of them already
/// used by a patch's path), keys of at most [`MAX_METADATA_KEY_BYTES`], strings of at most
/// [`MAX_METADATA_VALUE_BYTES`]. The reason names the first rule broken.
fn check_metadata_value(value: &Value, levels_above: usize) -> Result<(), String> {
    match value {
        Value::String(s) if s.len() > MAX_METADATA_VALUE_BYTES => Err(format!(
            "metadata values are at most {MAX_METADATA_VALUE_BYTES} bytes; one is {}",
            s.len()
        )),
        Value::String(_) => Ok(()),
        Value::Object(o) => {
            if !o.is_empty() && levels_above >= MAX_METADATA_DEPTH {
                return Err(format!(
                    "metadata nests at most {MAX_METADATA_DEPTH} levels deep"
                ));
            }
            for (key, value) in o {
                check_metadata_key(key)?;
                check_metadata_value(value, levels_above + 1)?;
            }
            Ok(())
        }
        _ => Err("metadata values are strings or objects".to_owned()),
    }
}

fn check_metadata_key(key: &str) -> Result<(), String> {
    if key.is_empty() {
        Err("metadata keys are not empty".to_owned())
    } else if key.len() > MAX_METADATA_KEY_BYTES {
        Err(format!(
            "metadata keys are at most {MAX_METADATA_KEY_BYTES} bytes; one is {}",
            key.len()
        ))
    } else {
        Ok(())
    }
}

/// Whole metadata, as a conversation holds it: bounded as above and, serialised, at most
/// [`MAX_METADATA_BYTES`].
pub fn check_metadata(metadata: &Map<String, Value>) -> Result<(), LayerError> {
    let invalid = |msg: String| LayerError::invalid_property("metadata", msg);
    for (key, value) in metadata {
        check_metadata_key(key).map_err(invalid)?;
        check_metadata_value(value, 1).map_err(invalid)?;
    }
    let size = serde_json::to_vec(metadata).map_or(usize::MAX, |v| v.len());
    if size > MAX_METADATA_BYTES {
        return Err(invalid(format!(
            "a conversation's metadata is at most {MAX_METADATA_BYTES} bytes as JSON; this \
             would be {size}"
        )));
    }
    Ok(())
}

/// A create's optional `metadata`: absent or `null` is none; otherwise an object within the
/// metadata rules ([`check_metadata`]).
fn optional_metadata(body: &Map<String, Value>) -> Result<Option<Map<String, Value>>, LayerError> {
    match body.get("metadata") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(m)) => {
            check_metadata(m)?;
            Ok(Some(m.clone()))
        }
        Some(_) => Err(LayerError::invalid_property(
            "metadata",
            "metadata must be an object whose values are strings or objects",
        )),
    }
}

/// `Conversation.create` / `POST /conversations`; `max_participants` bounds the list.
pub fn new_conversation(
    body: &Value,
    max_participants: usize,
) -> Result<NewConversation, LayerError> {
    let body = object(body, "the conversation")?;
    let uuid = match body.get("id") {
        None | Some(Value::Null) => None,
        Some(Value::String(id)) => {
            Some(parse_object_id(Kind::Conversations, id).ok_or_else(|| {
                LayerError::invalid_property(
                    "id",
                    format!("{id:?} is not layer:///conversations/<uuid>"),
                )
            })?)
        }
        Some(_) => return Err(LayerError::invalid_property("id", "id must be a string")),
    };
    let participants = match body.get("participants") {
        Some(value) => participants(value, max_participants)?,
        None => return Err(LayerError::missing_property("participants")),
    };
    let distinct = match body.get("distinct") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            return Err(LayerError::invalid_property(
                "distinct",
                "distinct must be true or false",
            ));
        }
    };
    let metadata = optional_metadata(body)?;
    Ok(NewConversation {
        uuid,
        participants,
        distinct,
        metadata,
        significance: None,
    })
}

pub fn new_message(body: &Value) -> Result<NewMessage, LayerError> {
    let body = object(body, "the message")?;
    let uuid = match body.get("id") {
        None | Some(Value::Null) => None,
        Some(Value::String(id)) => Some(parse_object_id(Kind::Messages, id).ok_or_else(|| {
            LayerError::invalid_property("id", format!("{id:?} is not layer:///messages/<uuid>"))
        })?),
        Some(_) => return Err(LayerError::invalid_property("id", "id must be a string")),
    };
    let parts = match body.get("parts") {
        None => return Err(LayerError::missing_property("parts")),
        Some(Value::Array(parts)) if !parts.is_empty() && parts.len() <= MAX_PARTS => parts
            .iter()
            .enumerate()
            .map(|(i, p)| new_part(i, p))
            .collect::<Result<Vec<_>, _>>()?,
        Some(_) => {
            return Err(LayerError::invalid_property(
                "parts",
                format!("parts must be an array of 1 to {MAX_PARTS} message parts"),
            ));
        }
    };
    let notification = match body.get("notification") {
        None | Some(Value::Null) => None,
        Some(Value::Object(n)) => Some(Value::Object(notification(n)?)),
        Some(_) => {
            return Err(LayerError::invalid_property(
                "notification",
                "notification must be an object with title, text and sound",
            ));
        }
    };
    Ok(NewMessage {
        uuid,
        parts,
        notification,
        from_server: false,
    })
}

/// The `title`, `text` and `sound` of a push, each a string of at most
/// [`MAX_NOTIFICATION_FIELD_BYTES`]; other members are not kept.
pub fn notification(given: &Map<String, Value>) -> Result<Map<String, Value>, LayerError> {
    let mut kept = Map::new();
    for field in ["title", "text", "sound"] {
        match given.get(field) {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) if s.len() <= MAX_NOTIFICATION_FIELD_BYTES => {
                kept.insert(field.to_owned(), Value::String(s.clone()));
            }
            Some(Value::String(s)) => {
                return Err(LayerError::invalid_property(
                    "notification",
                    format!(
                        "notification.{field} is {} bytes; at most \
                         {MAX_NOTIFICATION_FIELD_BYTES}",
                        s.len()
                    ),
                ));
            }
            Some(_) => {
                return Err(LayerError::invalid_property(
                    "notification",
                    format!("notification.{field} must be a string"),
                ));
            }
        }
    }
    Ok(kept)
}

pub fn new_part(index: usize, value: &Value) -> Result<NewPart, LayerError> {
    let invalid = |msg: String| LayerError::invalid_property("parts", msg);
    let part = value
        .as_object()
        .ok_or_else(|| invalid(format!("parts[{index}] must be an object")))?;
    let mime_type = match part.get("mime_type") {
        Some(Value::String(m)) if m.contains('/') && m.len() <= MAX_MIME_TYPE_BYTES => m.clone(),
        Some(Value::String(m)) => {
            return Err(invalid(format!(
                "parts[{index}].mime_type {m:?} is not a MIME type (type/subtype)"
            )));
        }
        _ => {
            return Err(invalid(format!(
                "parts[{index}].mime_type must be a string"
            )));
        }
    };
    let id = match part.get("id") {
        None | Some(Value::Null) => None,
        Some(Value::String(id)) => Some(id.clone()),
        Some(_) => return Err(invalid(format!("parts[{index}].id must be a string"))),
    };
    let encoding = match part.get("encoding") {
        None | Some(Value::Null) => None,
        Some(Value::String(e)) if e == "base64" => Some(e.clone()),
        Some(other) => {
            return Err(invalid(format!(
                "parts[{index}].encoding is {other}; the only encoding is \"base64\""
            )));
        }
    };
    let content = match part.get("content") {
        None | Some(Value::Null) => None,
        Some(Value::Object(c)) => match c.get("id") {
            Some(Value::String(id)) => {
                Some(parse_object_id(Kind::Content, id).ok_or_else(|| {
                    invalid(format!(
                        "parts[{index}].content.id {id:?} is not layer:///content/<uuid>"
                    ))
                })?)
            }
            _ => return Err(invalid(format!("parts[{index}].content needs an id"))),
        },
        Some(_) => return Err(invalid(format!("parts[{index}].content must be an object"))),
    };
    let body = match part.get("body") {
        None | Some(Value::Null) => None,
        Some(Value::String(b)) => Some(b.clone()),
        Some(_) => return Err(invalid(format!("parts[{index}].body must be a string"))),
    };
    let size = match (&body, content) {
        (Some(_), Some(_)) => {
            return Err(invalid(format!(
                "parts[{index}] has both a body and content; send one"
            )));
        }
        (None, None) => return Err(invalid(format!("parts[{index}] needs a body or content"))),
        (None, Some(_)) => 0,
        (Some(b), None) if encoding.is_some() => {
            let size = STANDARD
                .decode(b)
                .map_err(|_| invalid(format!("parts[{index}].body is not valid base64")))?
                .len();
            if size > MAX_INLINE_BODY {
                return Err(invalid(format!(
                    "parts[{index}].body decodes to {size} bytes; inline bodies are at most \
                     {MAX_INLINE_BODY} (send larger parts as rich content: POST /content)"
                )));
            }
            size
        }
        (Some(b), None) => {
            let length = b.encode_utf16().count();
            if length > MAX_INLINE_BODY {
                return Err(invalid(format!(
                    "parts[{index}].body is {length} UTF-16 code units long; inline text is at \
                     most {MAX_INLINE_BODY} (send longer parts as rich content: POST /content)"
                )));
            }
            // The size reported is the body's, in bytes.
            b.len()
        }
    };
    Ok(NewPart {
        id,
        mime_type,
        body,
        encoding,
        content,
        size: size as u64,
    })
}

/// A Layer-Patch array for a conversation (`PATCH {conversation.url}`); a `set` of the
/// participants names at most `max_participants`.
pub fn conversation_patch(
    body: &Value,
    max_participants: usize,
) -> Result<Vec<PatchOp>, LayerError> {
    let ops = body.as_array().ok_or_else(|| {
        LayerError::invalid_request("a Layer-Patch body is a JSON array of operations")
    })?;
    ops.iter()
        .enumerate()
        .map(|(i, op)| patch_op(i, op, max_participants))
        .collect()
}

fn patch_op(index: usize, value: &Value, max_participants: usize) -> Result<PatchOp, LayerError> {
    let invalid = |property: &str, msg: String| LayerError::invalid_property(property, msg);
    let op = value.as_object().ok_or_else(|| {
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
    if property == "participants" {
        // The SDK names the identity in `id`; the docs and the Platform API use `value`.
        let target = || {
            op.get("id")
                .and_then(participant)
                .or_else(|| op.get("value").and_then(participant))
                .ok_or_else(|| {
                    invalid(
                        "participants",
                        format!("operation {index} must name an identity in id or value"),
                    )
                })
        };
        return match operation {
            "add" => Ok(PatchOp::AddParticipant(target()?)),
            "remove" => Ok(PatchOp::RemoveParticipant(target()?)),
            "set" => Ok(PatchOp::SetParticipants(participants(
                op.get("value").unwrap_or(&Value::Null),
                max_participants,
            )?)),
            other => Err(invalid(
                "participants",
                format!("operation {index}: {other:?} is not add, remove or set"),
            )),
        };
    }
    let path = match property.strip_prefix("metadata") {
        Some("") => Vec::new(),
        Some(rest) if rest.starts_with('.') => split_patch_path(&rest[1..]).ok_or_else(|| {
            invalid(
                "metadata",
                format!("operation {index}: metadata paths have at most {MAX_METADATA_DEPTH} keys"),
            )
        })?,
        _ => {
            return Err(invalid(
                "property",
                format!(
                    "operation {index}: {property:?} cannot be changed; only participants and \
                     metadata.<path> can"
                ),
            ));
        }
    };
    let op_error = |msg: String| invalid("metadata", format!("operation {index}: {msg}"));
    for key in &path {
        check_metadata_key(key).map_err(op_error)?;
    }
    match operation {
        "set" => {
            let value = op.get("value").cloned().unwrap_or(Value::Null);
            if path.is_empty() && !value.is_object() {
                return Err(op_error("metadata is an object".to_owned()));
            }
            check_metadata_value(&value, path.len()).map_err(op_error)?;
            if path.is_empty() {
                // Replacing the whole object is a delete of every key plus sets.
                return Ok(PatchOp::SetMetadata(Vec::new(), value));
            }
            Ok(PatchOp::SetMetadata(path, value))
        }
        "delete" if !path.is_empty() => Ok(PatchOp::DeleteMetadata(path)),
        other => Err(invalid(
            "metadata",
            format!("operation {index}: {other:?} is not set or delete on metadata.<path>"),
        )),
    }
}

/// Splits `a.b\.c` into `["a", "b.c"]`; `None` past [`MAX_METADATA_DEPTH`] keys, found
/// without splitting the rest (a path of 100 000 keys would otherwise become as deep an
/// object, and dropping or serialising it would overflow the stack).
fn split_patch_path(path: &str) -> Option<Vec<String>> {
    let mut parts = vec![String::new()];
    let mut chars = path.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(next) = chars.next()
                    && let Some(last) = parts.last_mut()
                {
                    last.push(next);
                }
            }
            '.' if parts.len() == MAX_METADATA_DEPTH => return None,
            '.' => parts.push(String::new()),
            c => {
                if let Some(last) = parts.last_mut() {
                    last.push(c);
                }
            }
        }
    }
    Some(parts)
}

pub fn receipt(body: &Value) -> Result<ReceiptKind, LayerError> {
    match body.get("type") {
        Some(Value::String(t)) if t == "delivery" => Ok(ReceiptKind::Delivery),
        Some(Value::String(t)) if t == "read" => Ok(ReceiptKind::Read),
        Some(_) => Err(LayerError::invalid_property(
            "type",
            "type must be \"delivery\" or \"read\"",
        )),
        None => Err(LayerError::missing_property("type")),
    }
}

/// `{"position": N | null}`; an empty body means every message.
pub fn mark_all_read_position(body: &Value) -> Result<Option<u64>, LayerError> {
    match body.get("position") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n.as_u64().map(Some).ok_or_else(|| {
            LayerError::invalid_property("position", "position must be a non-negative integer")
        }),
        Some(_) => Err(LayerError::invalid_property(
            "position",
            "position must be an integer or null",
        )),
    }
}

/// The longest channel name the emulator keeps (Layer documented none; a name is an app's
/// key for the channel, not prose).
pub const MAX_CHANNEL_NAME_BYTES: usize = 256;

#[derive(Debug)]
pub struct NewChannel {
    pub uuid: Option<Uuid>,
    pub name: String,
    /// User IDs (the caller is added by the world).
    pub members: Vec<String>,
    pub metadata: Option<Map<String, Value>>,
}

/// `Channel.create`: `{"name", "metadata" | null, "id", "members": [identity ids]}`;
/// `max_members` bounds the list before any of it is read.
pub fn new_channel(body: &Value, max_members: usize) -> Result<NewChannel, LayerError> {
    let body = object(body, "the channel")?;
    let uuid = match body.get("id") {
        None | Some(Value::Null) => None,
        Some(Value::String(id)) => Some(parse_object_id(Kind::Channels, id).ok_or_else(|| {
            LayerError::invalid_property("id", format!("{id:?} is not layer:///channels/<uuid>"))
        })?),
        Some(_) => return Err(LayerError::invalid_property("id", "id must be a string")),
    };
    let name = match body.get("name") {
        None | Some(Value::Null) => return Err(LayerError::missing_property("name")),
        Some(Value::String(name)) => name.clone(),
        Some(_) => {
            return Err(LayerError::invalid_property(
                "name",
                "name must be a string",
            ));
        }
    };
    if name.trim().is_empty() || name.len() > MAX_CHANNEL_NAME_BYTES {
        return Err(LayerError::invalid_property(
            "name",
            format!("name must be 1 to {MAX_CHANNEL_NAME_BYTES} bytes, not blank"),
        ));
    }
    // The XDK's rule: a name must not be a UUID (it would read as an ID).
    if Uuid::parse_str(&name).is_ok() {
        return Err(LayerError::invalid_property(
            "name",
            "a channel's name must not be a UUID",
        ));
    }
    let members = match body.get("members") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(list)) if list.len() > max_members => {
            return Err(LayerError::invalid_property(
                "members",
                format!(
                    "a channel has at most {max_members} members \
                     (mock_layer.max_channel_members); this list names {}",
                    list.len()
                ),
            ));
        }
        Some(Value::Array(list)) => list
            .iter()
            .enumerate()
            .map(|(i, v)| {
                participant(v).ok_or_else(|| {
                    LayerError::invalid_property(
                        "members",
                        format!(
                            "members[{i}] is not an identity ID (layer:///identities/<user id>) \
                             or a user ID"
                        ),
                    )
                })
            })
            .collect::<Result<_, _>>()?,
        Some(_) => {
            return Err(LayerError::invalid_property(
                "members",
                "members must be an array of identity IDs",
            ));
        }
    };
    let metadata = optional_metadata(body)?;
    Ok(NewChannel {
        uuid,
        name,
        members,
        metadata,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn participants_may_be_identity_ids_or_user_ids() {
        let c = new_conversation(
            &json!({"participants": ["layer:///identities/a%40b", "bob"]}),
            25,
        )
        .unwrap();
        assert_eq!(c.participants, ["a@b", "bob"]);
        assert!(new_conversation(&json!({"participants": [1]}), 25).is_err());
        assert!(new_conversation(&json!({"participants": "bob"}), 25).is_err());
        let err = new_conversation(&json!({"participants": ["a", "a", "a"]}), 2).unwrap_err();
        assert_eq!(err.data["property"], "participants");
        let set = |users: Value| {
            conversation_patch(
                &json!([{"operation": "set", "property": "participants", "value": users}]),
                2,
            )
        };
        assert!(set(json!(["a", "b"])).is_ok());
        assert!(set(json!(["a", "b", "c"])).is_err());
    }

    #[test]
    fn parts_follow_layer_s_rules() {
        let ok =
            new_message(&json!({"parts": [{"mime_type": "text/plain", "body": "hi"}]})).unwrap();
        assert_eq!(ok.parts[0].size, 2);
        let no_slash = new_message(&json!({"parts": [{"mime_type": "text", "body": "hi"}]}));
        assert_eq!(no_slash.unwrap_err().data["property"], "parts");
        let text = |body: String| {
            new_message(&json!({"parts": [{"mime_type": "text/plain", "body": body}]}))
        };
        assert!(text("x".repeat(MAX_INLINE_BODY + 1)).is_err());
        // Counted as the SDKs count (`body.length`): 2048 é are 4096 bytes but 2048 units,
        // and an emoji outside the BMP is two units.
        assert_eq!(
            text("é".repeat(MAX_INLINE_BODY)).unwrap().parts[0].size,
            4096
        );
        assert!(text("é".repeat(MAX_INLINE_BODY + 1)).is_err());
        assert!(text("😀".repeat(MAX_INLINE_BODY / 2)).is_ok());
        assert!(text(format!("{}x", "😀".repeat(MAX_INLINE_BODY / 2))).is_err());
        let b64 = STANDARD.encode(vec![0u8; MAX_INLINE_BODY]);
        let at_limit = new_message(
            &json!({"parts": [{"mime_type": "a/b", "body": b64, "encoding": "base64"}]}),
        );
        assert_eq!(at_limit.unwrap().parts[0].size, MAX_INLINE_BODY as u64);
        let b64 = STANDARD.encode(vec![0u8; MAX_INLINE_BODY + 1]);
        assert!(
            new_message(
                &json!({"parts": [{"mime_type": "a/b", "body": b64, "encoding": "base64"}]})
            )
            .is_err()
        );
        assert!(new_message(&json!({"parts": []})).is_err());
    }

    #[test]
    fn metadata_paths_and_values_stay_shallow() {
        let at_limit = vec!["k"; MAX_METADATA_DEPTH].join(".");
        assert_eq!(
            split_patch_path(&at_limit).unwrap().len(),
            MAX_METADATA_DEPTH
        );
        assert!(split_patch_path(&format!("{at_limit}.k")).is_none());
        // Deep in the path or deep in the value, it is the same depth.
        let set = |property: String, value: Value| {
            conversation_patch(
                &json!([{"operation": "set", "property": property, "value": value}]),
                25,
            )
        };
        assert!(set(format!("metadata.{at_limit}"), json!("v")).is_ok());
        assert!(set(format!("metadata.{at_limit}"), json!({"x": "v"})).is_err());
        let err = set(format!("metadata.{at_limit}.k"), json!("v")).unwrap_err();
        assert_eq!(err.data["property"], "metadata");
        assert!(
            set(
                "metadata.k".into(),
                json!("v".repeat(MAX_METADATA_VALUE_BYTES + 1))
            )
            .is_err()
        );
        assert!(
            set(
                format!("metadata.{}", "k".repeat(MAX_METADATA_KEY_BYTES + 1)),
                json!("v")
            )
            .is_err()
        );
    }

    #[test]
    fn escaped_dots_stay_inside_a_metadata_key() {
        assert_eq!(split_patch_path(r"a.b\.c").unwrap(), ["a", "b.c"]);
        let ops = conversation_patch(
            &json!([{"operation": "set", "property": "metadata.a.b", "value": "42"}]),
            25,
        )
        .unwrap();
        assert!(matches!(&ops[0], PatchOp::SetMetadata(p, v) if p == &["a", "b"] && v == "42"));
        assert!(
            conversation_patch(
                &json!([{"operation": "set", "property": "distinct", "value": true}]),
                25
            )
            .is_err()
        );
    }
}
