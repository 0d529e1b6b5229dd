//! How the Platform API shows the world's objects (§B of the Platform API notes): the
//! "system perspective" of conversations and messages, the user perspective of the
//! `/users/{u}/…` reads, identities and block lists. Version 1.x names users by user ID and
//! senders as `{"user_id", "name"}`; 2.0 and 3.0 use identity IDs and Basic Identities.
//! URLs point under `/apps/<app uuid>/…` on the emulator's own base URL.

use serde_json::{Map, Value, json};

use super::Version;
use crate::clock::iso_ms;
use crate::mock_layer::ids::{Kind, encode_user_id, identity_id, object_id};
use crate::mock_layer::input::NewMessage;
use crate::mock_layer::world::{Announcement, Conversation, Message, Sender, World};

/// The Platform API's view of one world, for one request's version.
pub struct PlatformView<'a> {
    pub world: &'a World,
    pub version: Version,
}

impl PlatformView<'_> {
    fn app_url(&self) -> String {
        format!("{}/apps/{}", self.world.base, self.world.app.uuid)
    }

    /// A user as this version names one: a user ID, or a Basic Identity.
    pub fn user(&self, user: &str) -> Value {
        if self.version.uses_identities() {
            self.world.identity_basic(user)
        } else {
            Value::String(user.to_owned())
        }
    }

    /// The key of `recipient_status` for a user.
    fn user_key(&self, user: &str) -> String {
        if self.version.uses_identities() {
            identity_id(user)
        } else {
            user.to_owned()
        }
    }

    pub fn conversation_url(&self, conversation: &Conversation, viewer: Option<&str>) -> String {
        match viewer {
            None => format!("{}/conversations/{}", self.app_url(), conversation.uuid),
            Some(user) => format!(
                "{}/users/{}/conversations/{}",
                self.app_url(),
                encode_user_id(user),
                conversation.uuid
            ),
        }
    }

    /// A conversation as the system sees it, or (with `viewer`) as that user does.
    pub fn conversation(&self, conversation: &Conversation, viewer: Option<&str>) -> Value {
        let url = self.conversation_url(conversation, viewer);
        let mut view = json!({
            "id": conversation.id(),
            "url": url,
            "messages_url": format!("{url}/messages"),
            "created_at": iso_ms(conversation.created_ms),
            "participants": conversation
                .participants
                .iter()
                .map(|p| self.user(p))
                .collect::<Vec<_>>(),
            "distinct": conversation.distinct,
            "metadata": conversation.metadata,
        });
        if self.version == Version::V3_0 {
            view["significance"] = conversation
                .significance
                .clone()
                .map_or(Value::Null, Value::Object);
        }
        if let (Some(user), Value::Object(map)) = (viewer, &mut view) {
            let tally = self.world.tally(conversation, user);
            let last = tally
                .last
                .and_then(|uuid| self.world.messages.get(&uuid))
                .map(|m| self.message(m, Some(user)));
            map.insert("last_message".into(), last.unwrap_or(Value::Null));
            map.insert("unread_message_count".into(), tally.unread.into());
        }
        view
    }

    /// A message's sender: `{"user_id", "name"}` (1.x) or a Basic Identity (2.0+).
    fn sender(&self, message: &Message) -> Value {
        match (&message.sender_name, self.version.uses_identities()) {
            (Some(_), true) => self.world.sender_view(message),
            (Some(name), false) => json!({"user_id": null, "name": name}),
            (None, true) => self.world.identity_basic(&message.sender),
            (None, false) => json!({"user_id": message.sender, "name": null}),
        }
    }

    /// A message as the system sees it, or (with `viewer`) as that user does.
    pub fn message(&self, message: &Message, viewer: Option<&str>) -> Value {
        let id = message.id();
        let conversation_id = object_id(Kind::Conversations, &message.conversation);
        let conversation_url = format!("{}/conversations/{}", self.app_url(), message.conversation);
        let parts: Vec<Value> = message
            .parts
            .iter()
            .enumerate()
            .map(|(index, part)| {
                let part_id = match (&part.id, self.version) {
                    (Some(id), Version::V3_0) => id.clone(),
                    _ => format!("{id}/parts/{index}"),
                };
                let content = part
                    .content
                    .and_then(|c| self.world.content.get(&c))
                    .map(|c| {
                        let content_id = object_id(Kind::Content, &c.uuid);
                        json!({
                            "id": content_id,
                            "size": part.size,
                            "download_url": self.world.download_url(c),
                            "refresh_url": null,
                            "expiration": null,
                        })
                    });
                let mut view = json!({
                    "id": part_id,
                    "mime_type": part.mime_type,
                    "body": part.body,
                    "encoding": part.encoding,
                    "content": content,
                });
                if self.version == Version::V3_0 {
                    view["updated_at"] = iso_ms(part.updated_ms.unwrap_or(message.sent_ms)).into();
                }
                view
            })
            .collect();
        let recipient_status: Map<String, Value> = message
            .recipient_status
            .iter()
            .map(|(user, status)| (self.user_key(user), status.as_str().into()))
            .collect();
        let mut view = json!({
            "id": id,
            "url": format!("{conversation_url}/messages/{}", message.uuid),
            "receipts_url": null,
            "position": viewer.map(|_| message.position),
            "conversation": {"id": conversation_id, "url": conversation_url},
            "parts": parts,
            "sent_at": iso_ms(message.sent_ms),
            "received_at": viewer.map(|_| iso_ms(message.sent_ms)),
            "sender": self.sender(message),
            "is_unread": viewer.map(|user| message.is_unread_for(user)),
            "recipient_status": recipient_status,
            "notification": message.notification,
        });
        if self.version == Version::V3_0 {
            // 3.0: the last change of the parts (the sending, until the server edits them).
            view["updated_at"] = iso_ms(message.updated_ms.unwrap_or(message.sent_ms)).into();
        }
        view
    }

    /// A delayed message as it will be (202 of a `schedule`d send): not sent yet, so no
    /// `sent_at`, `position` or statuses.
    pub fn pending_message(
        &self,
        conversation: &uuid::Uuid,
        sender: &Sender,
        input: &NewMessage,
        uuid: Option<uuid::Uuid>,
    ) -> Value {
        let conversation_url = format!("{}/conversations/{conversation}", self.app_url());
        let sender = match (sender, self.version.uses_identities()) {
            (Sender::User(user), true) => self.world.identity_basic(user),
            (Sender::User(user), false) => json!({"user_id": user, "name": null}),
            (Sender::Name(name), true) => json!({"id": null, "url": null, "user_id": null,
                                                  "display_name": name, "avatar_url": null}),
            (Sender::Name(name), false) => json!({"user_id": null, "name": name}),
        };
        json!({
            "id": uuid.map(|u| object_id(Kind::Messages, &u)),
            "conversation": {"id": object_id(Kind::Conversations, conversation), "url": conversation_url},
            "parts": input.parts.iter().map(|p| json!({
                "mime_type": p.mime_type, "body": p.body, "encoding": p.encoding,
            })).collect::<Vec<_>>(),
            "sent_at": null,
            "sender": sender,
            "recipient_status": {},
            "notification": input.notification,
        })
    }

    /// An identity as `GET …/identity` shows it: every field as stored (unset ones null).
    pub fn identity(&self, user: &str) -> Value {
        let identity = self.world.identities.get(user);
        let profile = identity.map(|i| &i.profile);
        let mut view = json!({
            "user_id": user,
            "display_name": profile.and_then(|p| p.display_name.clone()),
            "avatar_url": profile.and_then(|p| p.avatar_url.clone()),
            "first_name": profile.and_then(|p| p.first_name.clone()),
            "last_name": profile.and_then(|p| p.last_name.clone()),
            "phone_number": identity.and_then(|i| i.phone_number.clone()),
            "email_address": identity.and_then(|i| i.email_address.clone()),
            "public_key": profile.and_then(|p| p.public_key.clone()),
            "metadata": identity.map(|i| i.metadata.clone()).unwrap_or_default(),
        });
        if self.version.uses_identities()
            && let Value::Object(map) = &mut view
        {
            map.insert("id".into(), identity_id(user).into());
            map.insert(
                "url".into(),
                format!("{}/users/{}/identity", self.app_url(), encode_user_id(user)).into(),
            );
            map.insert("identity_type".into(), "user".into());
            map.insert("type".into(), "User".into());
        }
        view
    }

    /// An announcement as the 202 of `POST /announcements` shows it.
    pub fn announcement(&self, announcement: &Announcement) -> Value {
        let sender = if self.version.uses_identities() {
            json!({"id": null, "url": null, "user_id": null,
                   "display_name": announcement.sender_name, "avatar_url": null})
        } else {
            json!({"name": announcement.sender_name, "user_id": null})
        };
        json!({
            "id": announcement.id(),
            "url": format!("{}/announcements/{}", self.app_url(), announcement.uuid),
            "sent_at": iso_ms(announcement.sent_ms),
            "recipients": announcement
                .recipients
                .iter()
                .map(|r| if self.version.uses_identities() { Value::String(identity_id(r)) } else { Value::String(r.clone()) })
                .collect::<Vec<_>>(),
            "sender": sender,
            "parts": announcement
                .parts
                .iter()
                .enumerate()
                .map(|(index, part)| json!({
                    "id": format!("{}/parts/{index}", announcement.id()),
                    "mime_type": part.mime_type,
                    "body": part.body,
                    "encoding": part.encoding,
                }))
                .collect::<Vec<_>>(),
            "notification": announcement.notification,
        })
    }

    /// One entry of a block list.
    pub fn block_entry(&self, user: &str) -> Value {
        if self.version.uses_identities() {
            self.world.identity_basic(user)
        } else {
            json!({"user_id": user})
        }
    }
}
