//! How the world's objects look on the wire, per viewer (§B.2 of the protocol notes).
//!
//! Every object carries an absolute `url` built from the emulator's base URL — the SDK builds
//! its follow-up requests from them. Messages and conversations differ per viewer
//! (`is_unread`, `unread_message_count`, what they can see), so every view takes the viewer.
//! The shapes match what the real SDK was observed to accept; keys it reads are never
//! omitted (a missing `conversation` silently drops a message, a missing `metadata` makes a
//! basic identity of a full one).

use serde_json::{Value, json};

use super::ids::{Kind, encode_user_id, identity_id, object_id};
use super::world::{Conversation, DOWNLOAD_URL_LIFETIME_MS, Message, Part, World};
use crate::clock::iso_ms;

impl World {
    /// `{"type", "id", "url"}`: the `object` of change packets.
    pub fn object_ref(&self, kind: &str, id: &str) -> Value {
        json!({"type": kind, "id": id, "url": self.url_of(id)})
    }

    /// The REST URL of a `layer:///…` ID.
    pub fn url_of(&self, id: &str) -> String {
        format!(
            "{}/{}",
            self.base,
            id.strip_prefix("layer:///").unwrap_or(id)
        )
    }

    /// A basic identity (participants, senders, typing indicators).
    pub fn identity_basic(&self, user: &str) -> Value {
        let profile = self.identities.get(user).map(|i| &i.profile);
        json!({
            "id": identity_id(user),
            "url": format!("{}/identities/{}", self.base, encode_user_id(user)),
            "user_id": user,
            "display_name": profile.and_then(|p| p.display_name.clone()),
            "avatar_url": profile.and_then(|p| p.avatar_url.clone()),
        })
    }

    /// A full identity (`GET /identities/{id}`): `metadata` is what marks it full.
    pub fn identity_full(&self, user: &str) -> Value {
        let mut view = self.identity_basic(user);
        let identity = self.identities.get(user);
        let profile = identity.map(|i| &i.profile);
        if let Value::Object(map) = &mut view {
            map.insert("type".into(), "user".into());
            map.insert(
                "first_name".into(),
                json!(profile.and_then(|p| p.first_name.clone())),
            );
            map.insert(
                "last_name".into(),
                json!(profile.and_then(|p| p.last_name.clone())),
            );
            map.insert(
                "email_address".into(),
                json!(identity.and_then(|i| i.email_address.clone())),
            );
            map.insert(
                "phone_number".into(),
                json!(identity.and_then(|i| i.phone_number.clone())),
            );
            map.insert(
                "public_key".into(),
                json!(profile.and_then(|p| p.public_key.clone())),
            );
            map.insert(
                "metadata".into(),
                json!(identity.map(|i| i.metadata.clone()).unwrap_or_default()),
            );
        }
        view
    }

    /// A message's sender as a basic identity; a name sender (Platform API `sender.name`)
    /// has no ID, only its name as `display_name` — how Layer showed system senders to
    /// Client API 2.0 clients — and `name` as in Client API 1.0.
    pub fn sender_view(&self, message: &Message) -> Value {
        match &message.sender_name {
            Some(name) => json!({
                "id": null, "url": null, "user_id": null,
                "display_name": name, "avatar_url": null, "name": name,
            }),
            None => self.identity_basic(&message.sender),
        }
    }

    pub fn conversation_view(&self, conversation: &Conversation, viewer: &str) -> Value {
        let id = conversation.id();
        let url = self.url_of(&id);
        let tally = self.tally(conversation, viewer);
        let last = tally.last.and_then(|uuid| self.messages.get(&uuid));
        json!({
            "id": id,
            "url": url,
            "messages_url": format!("{url}/messages"),
            "created_at": iso_ms(conversation.created_ms),
            "participants": conversation
                .participants
                .iter()
                .map(|p| self.identity_basic(p))
                .collect::<Vec<_>>(),
            "distinct": conversation.distinct,
            "metadata": conversation.metadata,
            "unread_message_count": tally.unread,
            "total_message_count": tally.visible,
            "last_message": last.map(|m| self.message_view(m, viewer)),
        })
    }

    /// One part of a message as the API shows it; `index` names a part without its own ID.
    pub fn part_view(&self, message_id: &str, index: usize, part: &Part) -> Value {
        let mut view = serde_json::Map::new();
        let part_id = part
            .id
            .clone()
            .unwrap_or_else(|| format!("{message_id}/parts/{index}"));
        view.insert("id".into(), part_id.into());
        view.insert("mime_type".into(), part.mime_type.clone().into());
        if let Some(body) = &part.body {
            view.insert("body".into(), body.clone().into());
        }
        if let Some(encoding) = &part.encoding {
            view.insert("encoding".into(), encoding.clone().into());
        }
        if let Some(content) = part.content.and_then(|c| self.content.get(&c)) {
            let content_id = object_id(Kind::Content, &content.uuid);
            view.insert(
                "content".into(),
                json!({
                    "id": content_id,
                    "size": part.size,
                    "download_url": self.download_url(content),
                    "expiration": iso_ms(self.peek_ms().saturating_add(DOWNLOAD_URL_LIFETIME_MS)),
                    "refresh_url": self.url_of(&content_id),
                }),
            );
        }
        view.insert("size".into(), part.size.into());
        Value::Object(view)
    }

    pub fn message_view(&self, message: &Message, viewer: &str) -> Value {
        let id = message.id();
        let url = self.url_of(&id);
        let conversation_id = object_id(Kind::Conversations, &message.conversation);
        let parts: Vec<Value> = message
            .parts
            .iter()
            .enumerate()
            .map(|(index, part)| self.part_view(&id, index, part))
            .collect();
        let recipient_status: serde_json::Map<String, Value> = message
            .recipient_status
            .iter()
            .map(|(user, status)| (identity_id(user), status.as_str().into()))
            .collect();
        let is_unread = message.is_unread_for(viewer);
        let mut view = json!({
            "id": id,
            "url": url,
            "receipts_url": format!("{url}/receipts"),
            "position": message.position,
            "conversation": {"id": conversation_id, "url": self.url_of(&conversation_id)},
            "parts": parts,
            "sent_at": iso_ms(message.sent_ms),
            "received_at": iso_ms(message.sent_ms),
            "sender": self.sender_view(message),
            "is_unread": is_unread,
            "recipient_status": recipient_status,
        });
        if let (Some(notification), Value::Object(map)) = (&message.notification, &mut view) {
            map.insert("notification".into(), notification.clone());
        }
        view
    }
}
