//! Response summaries: the part Layer's server kept on a message that people answer.
//!
//! An XDK message type that takes answers (choice, buttons, feedback, carousel) sends each
//! answer as a message of its own whose root part is `application/vnd.layer.response-v2+json`:
//! `{response_to, response_to_node_id, changes: [{operation, type, name, value, id}]}`. The
//! server folds the changes into one part on the answered message,
//! `application/vnd.layer.responsesummary-v2+json;role=response_summary;parent-node-id=<node>`,
//! whose body holds every responder's state per state name, as the XDK's state tracker reads
//! it (`core/crdt/state-tracker.js`):
//!
//! ```json
//! {"layer:///identities/bob": {"selection": {"adds": [{"value": "b", "ids": ["x1"]}], "removes": []}}}
//! ```
//!
//! The summary is created by the first answer and updated by later ones, and every
//! participant's Client API 3.0 socket is told: a new part as an `add` on the message's
//! `parts`, a changed one as a `set` of the part's `body`. (Client API 2.0 — the WebSDK —
//! cannot patch parts; it sees the summary when it loads the message.) Lists, single loads
//! and replay carry it like any part. A message sent with
//! `application/vnd.layer.initialresponsestate-v1+json;role=initial_response_state` parts
//! starts with the summary those describe.
//!
//! The merge follows the XDK's own rules per state type: `FWW` keeps the first value, `LWW`
//! the last, `LWWN` the last or none, `Set` a set with removals by operation ID; an operation
//! ID seen as removed is never added back, and replaying a change changes nothing.

use super::*;
use crate::mock_layer::ids::parse_object_id;

pub(super) const RESPONSE_MIME: &str = "application/vnd.layer.response-v2+json";
const SUMMARY_MIME: &str = "application/vnd.layer.responsesummary-v2+json";
const INITIAL_STATE_MIME: &str = "application/vnd.layer.initialresponsestate-v1+json";

/// Longest state name and operation ID accepted (the XDK makes 6-character IDs).
const MAX_NAME_LEN: usize = 256;

/// The CRDT kinds of the XDK's `Layer.Constants.CRDT_TYPES`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CrdtKind {
    FirstWriterWins,
    LastWriterWins,
    LastWriterWinsNullable,
    Set,
}

impl CrdtKind {
    fn parse(s: &str) -> Option<Self> {
        match s {
            "FWW" => Some(Self::FirstWriterWins),
            "LWW" => Some(Self::LastWriterWins),
            "LWWN" => Some(Self::LastWriterWinsNullable),
            "Set" => Some(Self::Set),
            _ => None,
        }
    }
}

/// One state change of one responder.
#[derive(Debug, Clone)]
pub(super) struct StateChange {
    add: bool,
    kind: CrdtKind,
    name: String,
    value: Value,
    id: String,
}

/// A response message's target and changes, checked before the message is stored.
#[derive(Debug)]
pub(super) struct Response {
    target: Uuid,
    node_id: String,
    changes: Vec<StateChange>,
}

/// `type;a=b;c=d` → the value of attribute `name`.
fn mime_attribute<'a>(mime_type: &'a str, name: &str) -> Option<&'a str> {
    mime_type.split(';').skip(1).find_map(|attr| {
        let (key, value) = attr.split_once('=')?;
        (key.trim() == name).then(|| value.trim())
    })
}

fn base_type(mime_type: &str) -> &str {
    mime_type.split(';').next().unwrap_or("").trim()
}

fn bad(index: usize, what: impl std::fmt::Display) -> LayerError {
    LayerError::invalid_property("parts", format!("parts[{index}]: {what}"))
}

/// Reads one change; `index` names the part in errors.
fn parse_change(index: usize, change: &Value) -> Result<StateChange, LayerError> {
    let field = |name: &str| change.get(name).and_then(Value::as_str);
    let add = match field("operation") {
        Some("add") => true,
        Some("remove") => false,
        other => {
            return Err(bad(
                index,
                format!("a change's operation is {other:?}; it must be \"add\" or \"remove\""),
            ));
        }
    };
    let kind = field("type").and_then(CrdtKind::parse).ok_or_else(|| {
        bad(
            index,
            "a change's type must be one of FWW, LWW, LWWN, Set (Layer.Constants.CRDT_TYPES)",
        )
    })?;
    let name = field("name")
        .filter(|n| !n.is_empty() && n.len() <= MAX_NAME_LEN)
        .ok_or_else(|| bad(index, "a change needs a name (the state it changes)"))?;
    let id = field("id")
        .filter(|n| !n.is_empty() && n.len() <= MAX_NAME_LEN)
        .ok_or_else(|| bad(index, "a change needs an id (its operation ID)"))?;
    Ok(StateChange {
        add,
        kind,
        name: name.to_owned(),
        value: change.get("value").cloned().unwrap_or(Value::Null),
        id: id.to_owned(),
    })
}

/// Applies one change to a summary body (identity → name → `{adds, removes}`), the way the
/// XDK's `CRDTStateTracker` does. Returns whether anything changed.
fn apply_change(summary: &mut Map<String, Value>, identity: &str, change: &StateChange) -> bool {
    let states = summary
        .entry(identity.to_owned())
        .or_insert_with(|| Value::Object(Map::new()));
    let Value::Object(states) = states else {
        return false;
    };
    let state = states
        .entry(change.name.clone())
        .or_insert_with(|| json!({"adds": [], "removes": []}));
    let (Some(adds), Some(removes)) = (
        state.get("adds").and_then(Value::as_array).cloned(),
        state.get("removes").and_then(Value::as_array).cloned(),
    ) else {
        return false;
    };
    let mut adds = adds;
    let mut removes = removes;
    let id = Value::String(change.id.clone());
    let has_id = |add: &Value, id: &Value| {
        add.get("ids")
            .and_then(Value::as_array)
            .is_some_and(|ids| ids.contains(id))
    };
    let changed = if change.add {
        if removes.contains(&id) || adds.iter().any(|a| has_id(a, &id)) {
            false
        } else {
            match change.kind {
                CrdtKind::FirstWriterWins if !adds.is_empty() => {
                    removes.push(id);
                }
                CrdtKind::LastWriterWins | CrdtKind::LastWriterWinsNullable => {
                    for old in adds.drain(..) {
                        if let Some(ids) = old.get("ids").and_then(Value::as_array) {
                            removes.extend(ids.iter().cloned());
                        }
                    }
                    adds.push(json!({"value": change.value, "ids": [id]}));
                }
                CrdtKind::Set => {
                    match adds
                        .iter_mut()
                        .find(|a| a.get("value") == Some(&change.value))
                    {
                        Some(Value::Object(same)) => {
                            if let Some(Value::Array(ids)) = same.get_mut("ids") {
                                ids.push(id);
                            }
                        }
                        _ => adds.push(json!({"value": change.value, "ids": [id]})),
                    }
                }
                CrdtKind::FirstWriterWins => {
                    adds.push(json!({"value": change.value, "ids": [id]}));
                }
            }
            true
        }
    } else {
        match change.kind {
            // The XDK never removes these: a first or last writer is replaced, not removed.
            CrdtKind::FirstWriterWins | CrdtKind::LastWriterWins => false,
            CrdtKind::LastWriterWinsNullable | CrdtKind::Set => {
                for add in &mut adds {
                    if let Some(Value::Array(ids)) = add.get_mut("ids") {
                        ids.retain(|i| *i != id);
                    }
                }
                adds.retain(|a| {
                    a.get("ids")
                        .and_then(Value::as_array)
                        .is_some_and(|ids| !ids.is_empty())
                });
                if removes.contains(&id) {
                    false
                } else {
                    removes.push(id);
                    true
                }
            }
        }
    };
    *state = json!({"adds": adds, "removes": removes});
    changed
}

fn summary_mime_type(node_id: &str) -> String {
    format!("{SUMMARY_MIME};role=response_summary;parent-node-id={node_id}")
}

fn is_summary_for(part: &Part, node_id: &str) -> bool {
    base_type(&part.mime_type) == SUMMARY_MIME
        && mime_attribute(&part.mime_type, "parent-node-id") == Some(node_id)
}

impl World {
    /// If `parts` is a response (its first part is a response-v2 part), reads it and checks
    /// that it answers a message the caller can see in the same conversation.
    pub(super) fn parse_response(
        &self,
        caller: &str,
        conversation: &Uuid,
        parts: &[Part],
    ) -> Result<Option<Response>, LayerError> {
        let Some((index, part)) = parts
            .iter()
            .enumerate()
            .find(|(_, p)| base_type(&p.mime_type) == RESPONSE_MIME)
        else {
            return Ok(None);
        };
        let body: Value = part
            .body
            .as_deref()
            .and_then(|b| serde_json::from_str(b).ok())
            .ok_or_else(|| bad(index, format!("a {RESPONSE_MIME} part's body must be JSON")))?;
        let target = body
            .get("response_to")
            .and_then(Value::as_str)
            .and_then(|id| parse_object_id(Kind::Messages, id))
            .ok_or_else(|| {
                bad(
                    index,
                    "response_to must be the ID of the message answered (layer:///messages/…)",
                )
            })?;
        let node_id = body
            .get("response_to_node_id")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty() && n.len() <= MAX_NAME_LEN && !n.contains(';'))
            .ok_or_else(|| {
                bad(
                    index,
                    "response_to_node_id must name the answered part's node",
                )
            })?
            .to_owned();
        let answered = self.message_for(caller, &target)?;
        if answered.conversation != *conversation {
            return Err(bad(
                index,
                format!("{} is in another conversation", answered.id()),
            ));
        }
        let changes = body
            .get("changes")
            .and_then(Value::as_array)
            .ok_or_else(|| bad(index, "a response needs a changes array"))?
            .iter()
            .map(|c| parse_change(index, c))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Some(Response {
            target,
            node_id,
            changes,
        }))
    }

    /// The summary parts a new message starts with, from its initial-response-state parts
    /// (each an array of `{operation: "add", type, name, value, id, identity_id}`).
    pub(super) fn initial_summaries(
        &self,
        message_id: &str,
        parts: &[Part],
    ) -> Result<Vec<Part>, LayerError> {
        let mut summaries: Vec<(String, Map<String, Value>)> = Vec::new();
        for (index, part) in parts.iter().enumerate() {
            if base_type(&part.mime_type) != INITIAL_STATE_MIME {
                continue;
            }
            let node_id = mime_attribute(&part.mime_type, "parent-node-id")
                .filter(|n| !n.is_empty())
                .ok_or_else(|| bad(index, "an initial response state needs a parent-node-id"))?;
            let entries: Vec<Value> = part
                .body
                .as_deref()
                .and_then(|b| serde_json::from_str(b).ok())
                .ok_or_else(|| {
                    bad(
                        index,
                        "an initial response state's body must be a JSON array",
                    )
                })?;
            let summary = match summaries.iter_mut().find(|(n, _)| n == node_id) {
                Some((_, summary)) => summary,
                None => {
                    summaries.push((node_id.to_owned(), Map::new()));
                    &mut summaries.last_mut().expect("just pushed").1
                }
            };
            for entry in &entries {
                let change = parse_change(index, entry)?;
                let identity = entry
                    .get("identity_id")
                    .and_then(Value::as_str)
                    .filter(|i| i.starts_with("layer:///identities/"))
                    .ok_or_else(|| bad(index, "an initial response state needs identity_id"))?;
                apply_change(summary, identity, &change);
            }
        }
        Ok(summaries
            .into_iter()
            .map(|(node_id, summary)| {
                let body = Value::Object(summary).to_string();
                Part {
                    id: Some(format!("{message_id}/parts/{}", Uuid::new_v4())),
                    mime_type: summary_mime_type(&node_id),
                    size: body.len() as u64,
                    body: Some(body),
                    encoding: None,
                    content: None,
                    updated_ms: None,
                }
            })
            .collect())
    }

    /// Folds a stored response's changes into the answered message's summary and tells every
    /// participant's Client API 3.0 sockets. The answered message may be gone by now (deleted
    /// between the check and here it cannot be, under one lock; this only guards).
    pub(super) fn apply_response(&mut self, responder: &str, response: Response) {
        let identity = identity_id(responder);
        let Some(message) = self.messages.get_mut(&response.target) else {
            return;
        };
        let message_id = message.id();
        let existing = message
            .parts
            .iter()
            .position(|p| is_summary_for(p, &response.node_id));
        let mut summary: Map<String, Value> = existing
            .and_then(|i| message.parts[i].body.as_deref())
            .and_then(|b| serde_json::from_str(b).ok())
            .unwrap_or_default();
        let mut changed = false;
        for change in &response.changes {
            changed |= apply_change(&mut summary, &identity, change);
        }
        if !changed && existing.is_some() {
            return;
        }
        let body = Value::Object(summary).to_string();
        let (index, created) = match existing {
            Some(index) => {
                let part = &mut message.parts[index];
                let grown = body
                    .len()
                    .saturating_sub(part.body.as_ref().map_or(0, String::len));
                message.stored_bytes = message.stored_bytes.saturating_add(grown);
                self.message_bytes = self.message_bytes.saturating_add(grown);
                part.size = body.len() as u64;
                part.body = Some(body.clone());
                (index, false)
            }
            None => {
                message.stored_bytes = message.stored_bytes.saturating_add(body.len());
                self.message_bytes = self.message_bytes.saturating_add(body.len());
                message.parts.push(Part {
                    id: Some(format!("{message_id}/parts/{}", Uuid::new_v4())),
                    mime_type: summary_mime_type(&response.node_id),
                    size: body.len() as u64,
                    body: Some(body.clone()),
                    encoding: None,
                    content: None,
                    updated_ms: None,
                });
                (message.parts.len() - 1, true)
            }
        };
        let message = message.clone();
        let Some(conversation) = self.conversations.get(&message.conversation).cloned() else {
            return;
        };
        let part_view = self.part_view(&message_id, index, &message.parts[index]);
        let part_id = part_view["id"].as_str().unwrap_or_default().to_owned();
        let change = if created {
            // Layer-Patch adds an object to a set by its `id`, creating it from `value`.
            json!({
                "operation": "update",
                "object": self.object_ref("Message", &message_id),
                "data": [{"operation": "add", "property": "parts", "id": part_id, "value": part_view}],
            })
        } else {
            json!({
                "operation": "update",
                "object": self.object_ref("MessagePart", &part_id),
                "data": [{"operation": "set", "property": "body", "value": body}],
            })
        };
        for user in conversation.audience() {
            self.emit_for(user, PacketKind::Change, change.clone(), ClientApi::V3);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(add: bool, kind: &str, value: Value, id: &str) -> StateChange {
        StateChange {
            add,
            kind: CrdtKind::parse(kind).unwrap(),
            name: "selection".to_owned(),
            value,
            id: id.to_owned(),
        }
    }

    fn state(summary: &Map<String, Value>) -> &Value {
        &summary["layer:///identities/bob"]["selection"]
    }

    const BOB: &str = "layer:///identities/bob";

    #[test]
    fn last_writer_wins_replaces_and_remembers_the_replaced_operation() {
        let mut s = Map::new();
        assert!(apply_change(
            &mut s,
            BOB,
            &change(true, "LWW", json!("a"), "op1")
        ));
        assert!(apply_change(
            &mut s,
            BOB,
            &change(true, "LWW", json!("b"), "op2")
        ));
        assert_eq!(
            state(&s),
            &json!({"adds": [{"value": "b", "ids": ["op2"]}], "removes": ["op1"]})
        );
        // Replayed, or removed: nothing changes (LWW values are replaced, never removed).
        assert!(!apply_change(
            &mut s,
            BOB,
            &change(true, "LWW", json!("a"), "op1")
        ));
        assert!(!apply_change(
            &mut s,
            BOB,
            &change(false, "LWW", json!("b"), "op2")
        ));
    }

    #[test]
    fn first_writer_wins_keeps_the_first() {
        let mut s = Map::new();
        apply_change(&mut s, BOB, &change(true, "FWW", json!("a"), "op1"));
        apply_change(&mut s, BOB, &change(true, "FWW", json!("b"), "op2"));
        assert_eq!(
            state(&s),
            &json!({"adds": [{"value": "a", "ids": ["op1"]}], "removes": ["op2"]})
        );
    }

    #[test]
    fn sets_add_and_remove_by_operation_id_and_a_removed_id_stays_removed() {
        let mut s = Map::new();
        apply_change(&mut s, BOB, &change(true, "Set", json!("a"), "op1"));
        apply_change(&mut s, BOB, &change(true, "Set", json!("b"), "op2"));
        apply_change(&mut s, BOB, &change(false, "Set", json!("a"), "op1"));
        assert_eq!(
            state(&s),
            &json!({"adds": [{"value": "b", "ids": ["op2"]}], "removes": ["op1"]})
        );
        assert!(!apply_change(
            &mut s,
            BOB,
            &change(true, "Set", json!("a"), "op1")
        ));
        // Nullable last writer: a removal empties it.
        let mut n = Map::new();
        apply_change(&mut n, BOB, &change(true, "LWWN", json!("a"), "op1"));
        apply_change(&mut n, BOB, &change(false, "LWWN", json!("a"), "op1"));
        assert_eq!(state(&n), &json!({"adds": [], "removes": ["op1"]}));
    }

    #[test]
    fn mime_attributes_are_read_by_name() {
        let mime = "application/vnd.layer.initialresponsestate-v1+json;role=initial_response_state;parent-node-id=abc";
        assert_eq!(mime_attribute(mime, "parent-node-id"), Some("abc"));
        assert_eq!(mime_attribute(mime, "role"), Some("initial_response_state"));
        assert_eq!(mime_attribute(mime, "node-id"), None);
        assert_eq!(base_type(mime), INITIAL_STATE_MIME);
    }
}
