//! How the world's objects look on the wire, per viewer (§B.2 of the protocol notes).
//!
//! Every object carries an absolute `url` built from the emulator's base URL — the SDK builds
//! its follow-up requests from them. Messages and conversations differ per viewer
//! (`is_unread`, `unread_message_count`, what they can see), so every view takes the viewer.
//! The shapes match what the real SDK was observed to accept; keys it reads are never
//! omitted (a missing `conversation` silently drops a message, a missing `metadata` makes a
//! basic identity of a full one).

use std::borrow::Cow;
use std::sync::Arc;

use serde::Serialize;
use serde_json::{Value, json};

use super::ids::{Kind, encode_user_id, identity_id, object_id};
use super::world::{Conversation, DOWNLOAD_URL_LIFETIME_MS, Message, Part, World};
use crate::clock::iso_ms;

// A message, its parts and its sender are built once, as borrowed structs, and serialised
// two ways: straight to JSON text for the fan-out's packets (a message goes to every
// participant's sockets and change log, and building a `Value` tree first, with a map node
// and a key `String` per member, cost more than anything else in sending it), and to a
// `Value` for REST answers and the views that embed them. The fields are declared in the
// order a `Value` object sorts its keys (serde_json without `preserve_order`), so both give
// the same bytes; `views::tests` checks it. Absent members are skipped where Layer leaves
// them out, and `null`s stay.

/// The `change` packet that creates a message for `viewer`.
#[derive(Serialize)]
struct MessageCreate<'a> {
    data: &'a MessageData<'a>,
    object: ObjectRef<'a>,
    operation: &'static str,
}

/// `{"type", "id", "url"}`, as [`World::object_ref`].
#[derive(Serialize)]
struct ObjectRef<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
    url: &'a str,
}

/// The `change` packet that tells a participant a conversation has a new last message,
/// and their unread count.
#[derive(Serialize)]
struct ConversationUpdate<'a> {
    data: (SetLastMessage<'a>, SetUnreadCount),
    object: ObjectRef<'a>,
    operation: &'static str,
}

#[derive(Serialize)]
struct SetLastMessage<'a> {
    id: &'a str,
    operation: &'static str,
    property: &'static str,
}

#[derive(Serialize)]
struct SetUnreadCount {
    operation: &'static str,
    property: &'static str,
    value: usize,
}

/// A message as `viewer` sees it: [`World::message_view`].
#[derive(Serialize)]
struct MessageData<'a> {
    conversation: ConversationRef,
    id: String,
    is_unread: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    notification: Option<&'a Value>,
    parts: Vec<PartData<'a>>,
    position: u64,
    receipts_url: String,
    /// The emulator delivers as it stores, so a message is received when it is sent.
    received_at: String,
    /// Sorted by identity ID, as a `Value` object would be.
    #[serde(serialize_with = "sorted_map")]
    recipient_status: Vec<(String, &'static str)>,
    sender: SenderData<'a>,
    sent_at: String,
    url: String,
}

#[derive(Serialize)]
struct ConversationRef {
    id: String,
    url: String,
}

/// One part of a message: [`World::part_view`].
#[derive(Serialize)]
struct PartData<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    body: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    content: Option<ContentData>,
    #[serde(skip_serializing_if = "Option::is_none")]
    encoding: Option<&'a str>,
    id: Cow<'a, str>,
    mime_type: &'a str,
    size: u64,
}

#[derive(Serialize)]
struct ContentData {
    download_url: String,
    expiration: String,
    id: String,
    refresh_url: String,
    size: u64,
}

/// A basic identity ([`World::identity_basic`]), or a message's name sender, which has
/// `name` ([`World::sender_view`]).
#[derive(Serialize)]
struct SenderData<'a> {
    avatar_url: Option<&'a str>,
    display_name: Option<&'a str>,
    id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    url: Option<String>,
    user_id: Option<&'a str>,
}

/// A packet's JSON text, written into a buffer of `capacity` to start with.
fn json_packet(packet: &impl Serialize, capacity: usize) -> Arc<str> {
    let mut text = Vec::with_capacity(capacity);
    // Serialising these types cannot fail: every map key is a string.
    let _ = serde_json::to_writer(&mut text, packet);
    String::from_utf8(text).unwrap_or_default().into()
}

/// A view as a `Value`, for answers that embed it or add to it.
fn value_of(view: &impl Serialize) -> Value {
    // As above: every map key is a string, so this cannot fail.
    serde_json::to_value(view).unwrap_or_default()
}

fn sorted_map<S: serde::Serializer>(
    entries: &[(String, &'static str)],
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.collect_map(entries.iter().map(|(k, v)| (k, v)))
}

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
        value_of(&self.identity_data(user))
    }

    fn identity_data<'a>(&'a self, user: &'a str) -> SenderData<'a> {
        let profile = self.identities.get(user).map(|i| &i.profile);
        SenderData {
            avatar_url: profile.and_then(|p| p.avatar_url.as_deref()),
            display_name: profile.and_then(|p| p.display_name.as_deref()),
            id: Some(identity_id(user)),
            name: None,
            url: Some(format!("{}/identities/{}", self.base, encode_user_id(user))),
            user_id: Some(user),
        }
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
        value_of(&self.sender_data(message))
    }

    fn sender_data<'a>(&'a self, message: &'a Message) -> SenderData<'a> {
        match &message.sender_name {
            Some(name) => SenderData {
                avatar_url: None,
                display_name: Some(name),
                id: None,
                name: Some(name),
                url: None,
                user_id: None,
            },
            None => self.identity_data(&message.sender),
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
        value_of(&self.part_data(message_id, index, part))
    }

    fn part_data<'a>(&self, message_id: &str, index: usize, part: &'a Part) -> PartData<'a> {
        PartData {
            body: part.body.as_deref(),
            content: part
                .content
                .and_then(|c| self.content.get(&c))
                .map(|content| {
                    let content_id = object_id(Kind::Content, &content.uuid);
                    ContentData {
                        download_url: self.download_url(content),
                        expiration: iso_ms(self.peek_ms().saturating_add(DOWNLOAD_URL_LIFETIME_MS)),
                        refresh_url: self.url_of(&content_id),
                        id: content_id,
                        size: part.size,
                    }
                }),
            encoding: part.encoding.as_deref(),
            id: match &part.id {
                Some(id) => Cow::Borrowed(id),
                None => Cow::Owned(format!("{message_id}/parts/{index}")),
            },
            mime_type: &part.mime_type,
            size: part.size,
        }
    }

    pub fn message_view(&self, message: &Message, viewer: &str) -> Value {
        value_of(&self.message_data(message, viewer))
    }

    fn message_data<'a>(&'a self, message: &'a Message, viewer: &str) -> MessageData<'a> {
        let id = message.id();
        let url = self.url_of(&id);
        let conversation_id = object_id(Kind::Conversations, &message.conversation);
        let sent_at = iso_ms(message.sent_ms);
        let mut recipient_status: Vec<(String, &'static str)> = message
            .recipient_status
            .iter()
            .map(|(user, status)| (identity_id(user), status.as_str()))
            .collect();
        recipient_status.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        MessageData {
            conversation: ConversationRef {
                url: self.url_of(&conversation_id),
                id: conversation_id,
            },
            is_unread: message.is_unread_for(viewer),
            notification: message.notification.as_ref(),
            parts: message
                .parts
                .iter()
                .enumerate()
                .map(|(index, part)| self.part_data(&id, index, part))
                .collect(),
            position: message.position,
            receipts_url: format!("{url}/receipts"),
            received_at: sent_at.clone(),
            recipient_status,
            sender: self.sender_data(message),
            sent_at,
            id,
            url,
        }
    }

    /// The `change` packet after a new message, as the JSON text of `{"operation": "update",
    /// "object": object_ref("Conversation", …), "data": [set last_message, set
    /// unread_message_count]}`; `conversation_url` is the conversation's `url_of`.
    pub fn conversation_update_text(
        conversation_id: &str,
        conversation_url: &str,
        message_id: &str,
        unread: usize,
    ) -> Arc<str> {
        let packet = ConversationUpdate {
            data: (
                SetLastMessage {
                    id: message_id,
                    operation: "set",
                    property: "last_message",
                },
                SetUnreadCount {
                    operation: "set",
                    property: "unread_message_count",
                    value: unread,
                },
            ),
            object: ObjectRef {
                id: conversation_id,
                kind: "Conversation",
                url: conversation_url,
            },
            operation: "update",
        };
        json_packet(&packet, 256)
    }

    /// The `change` packet creating `message` for `viewer`, as the JSON text of
    /// `{"operation": "create", "object": object_ref("Message", id), "data": message_view}`.
    pub fn message_create_text(&self, message: &Message, viewer: &str) -> Arc<str> {
        let data = self.message_data(message, viewer);
        let packet = MessageCreate {
            object: ObjectRef {
                id: &data.id,
                kind: "Message",
                url: &data.url,
            },
            data: &data,
            operation: "create",
        };
        // Sized for a typical message, so the text rarely grows as it is written.
        json_packet(&packet, 1024)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use proptest::prelude::*;
    use uuid::Uuid;

    use super::*;
    use crate::mock_layer::world::Status;

    /// Users with a full profile, an empty one, one that needs escaping in IDs and URLs,
    /// and one the world has never heard of.
    const USERS: [&str; 4] = ["ann", "bob", "c@t %x/ü", "ghost"];

    fn world() -> World {
        let mut world = crate::mock_layer::world::test_world();
        // Content views show an expiry an hour from "now": the world's clock is pinned (moved
        // far ahead once, then the offset taken away) so both renderings see the same time.
        world.clock_offset_ms = 1 << 40;
        world.now_ms();
        world.clock_offset_ms = -(1 << 40);
        for user in &USERS[..3] {
            world.provision(user).expect("room for an identity");
        }
        let ann = &mut world.identities.get_mut("ann").expect("ann").profile;
        ann.display_name = Some("Ann \"the\" Émissary\n".into());
        ann.avatar_url = Some("https://example.com/a.png?x=1&y=<2>".into());
        world
    }

    /// One part as a test describes it: which of its optional members it has.
    #[derive(Debug, Clone)]
    struct PartSpec {
        own_id: bool,
        body: Option<String>,
        encoding: bool,
        content: bool,
        size: u64,
    }

    #[derive(Debug, Clone)]
    struct MessageSpec {
        /// A user of [`USERS`], or a name sender.
        sender: Result<usize, String>,
        parts: Vec<PartSpec>,
        /// Per user of [`USERS`]: no status, or one.
        statuses: Vec<Option<Status>>,
        notification: Option<Value>,
        position: u64,
        viewer: usize,
    }

    fn part() -> impl Strategy<Value = PartSpec> {
        (
            any::<bool>(),
            prop::option::of(".{0,12}"),
            any::<bool>(),
            any::<bool>(),
            any::<u64>(),
        )
            .prop_map(|(own_id, body, encoding, content, size)| PartSpec {
                own_id,
                body,
                encoding,
                content,
                size,
            })
    }

    fn status() -> impl Strategy<Value = Option<Status>> {
        prop_oneof![
            Just(None),
            Just(Some(Status::Sent)),
            Just(Some(Status::Delivered)),
            Just(Some(Status::Read)),
        ]
    }

    fn notification() -> impl Strategy<Value = Option<Value>> {
        prop::option::of(
            (".{0,8}", ".{0,8}", prop::option::of(".{0,4}")).prop_map(|(title, text, sound)| {
                json!({"title": title, "text": text, "sound": sound, "data": {"z": 1, "a": [true, null]}})
            }),
        )
    }

    fn message_spec() -> impl Strategy<Value = MessageSpec> {
        (
            prop_oneof![
                (0..USERS.len()).prop_map(Ok::<usize, String>),
                ".{0,10}".prop_map(Err::<usize, String>)
            ],
            prop::collection::vec(part(), 0..4),
            prop::collection::vec(status(), USERS.len()),
            notification(),
            any::<u64>(),
            0..USERS.len(),
        )
            .prop_map(
                |(sender, parts, statuses, notification, position, viewer)| MessageSpec {
                    sender,
                    parts,
                    statuses,
                    notification,
                    position,
                    viewer,
                },
            )
    }

    /// The message a spec describes, with its content parts' content created in `world`.
    fn message(world: &mut World, spec: &MessageSpec) -> Message {
        let uuid = Uuid::new_v4();
        let message_id = object_id(Kind::Messages, &uuid);
        let parts = spec
            .parts
            .iter()
            .enumerate()
            .map(|(index, p)| Part {
                id: p.own_id.then(|| format!("{message_id}/parts/own-{index}")),
                mime_type: "text/plain; charset=\"utf-8\"".into(),
                body: p.body.clone(),
                encoding: p.encoding.then(|| "base64".to_owned()),
                content: p.content.then(|| {
                    let now = world.peek_ms();
                    world
                        .content
                        .create("ann", "image/png".into(), Some(16), now)
                        .expect("room for content")
                        .uuid
                }),
                size: p.size,
                updated_ms: None,
            })
            .collect();
        let (sender, sender_name) = match &spec.sender {
            Ok(user) => (USERS[*user].to_owned(), None),
            Err(name) => (String::new(), Some(name.clone())),
        };
        let recipient_status: BTreeMap<String, Status> = USERS
            .iter()
            .zip(&spec.statuses)
            .filter_map(|(user, status)| status.map(|s| ((*user).to_owned(), s)))
            .collect();
        Message {
            uuid,
            conversation: Uuid::new_v4(),
            position: spec.position,
            parts,
            sent_ms: 1_700_000_000_123,
            seq: 1,
            sender,
            sender_name,
            recipient_status,
            notification: spec.notification.clone(),
            hidden_for: BTreeSet::new(),
            stored_bytes: 0,
            updated_ms: None,
        }
    }

    /// The same packet built as a `Value` tree around the REST view.
    fn create_by_value(world: &World, message: &Message, viewer: &str) -> String {
        let packet = json!({
            "operation": "create",
            "object": world.object_ref("Message", &message.id()),
            "data": world.message_view(message, viewer),
        });
        serde_json::to_string(&packet).expect("a Value serialises")
    }

    proptest! {
        #[test]
        fn a_message_create_renders_to_the_same_text_as_the_rest_view(spec in message_spec()) {
            let mut world = world();
            let message = message(&mut world, &spec);
            let viewer = USERS[spec.viewer];
            prop_assert_eq!(
                &*world.message_create_text(&message, viewer),
                create_by_value(&world, &message, viewer)
            );
        }
    }

    /// A text part with the given body and no ID of its own, then a content part with an ID,
    /// an encoding and 16 bytes of content.
    fn text_and_content(body: &str) -> Vec<PartSpec> {
        vec![
            PartSpec {
                own_id: false,
                body: Some(body.to_owned()),
                encoding: false,
                content: false,
                size: body.len() as u64,
            },
            PartSpec {
                own_id: true,
                body: None,
                encoding: true,
                content: true,
                size: 16,
            },
        ]
    }

    /// The message view, written out member by member as Layer shows it (§B.2): the fan-out
    /// and REST share one builder, so this is what pins the shape itself.
    #[test]
    fn a_message_view_has_every_member_layer_shows() {
        let mut world = world();
        let spec = MessageSpec {
            sender: Ok(0),
            parts: text_and_content("hi"),
            statuses: vec![Some(Status::Read), Some(Status::Delivered), None, None],
            notification: Some(json!({"title": "T", "text": "x"})),
            position: 7,
            viewer: 1,
        };
        let message = message(&mut world, &spec);
        let id = message.id();
        let uuid = message.uuid;
        let conversation = message.conversation;
        let content = message.parts[1]
            .content
            .and_then(|c| world.content.get(&c))
            .expect("the content part's content");
        let (content_uuid, secret) = (content.uuid, content.download_secret.clone());
        let expiration = iso_ms(world.peek_ms() + DOWNLOAD_URL_LIFETIME_MS);
        let base = "http://127.0.0.1:1";
        let expected = json!({
            "id": id,
            "url": format!("{base}/messages/{uuid}"),
            "receipts_url": format!("{base}/messages/{uuid}/receipts"),
            "position": 7,
            "conversation": {
                "id": format!("layer:///conversations/{conversation}"),
                "url": format!("{base}/conversations/{conversation}"),
            },
            "parts": [
                {
                    "id": format!("layer:///messages/{uuid}/parts/0"),
                    "mime_type": "text/plain; charset=\"utf-8\"",
                    "body": "hi",
                    "size": 2,
                },
                {
                    "id": format!("layer:///messages/{uuid}/parts/own-1"),
                    "mime_type": "text/plain; charset=\"utf-8\"",
                    "encoding": "base64",
                    "content": {
                        "id": format!("layer:///content/{content_uuid}"),
                        "size": 16,
                        "download_url": format!("{base}/content-download/{secret}"),
                        "expiration": expiration,
                        "refresh_url": format!("{base}/content/{content_uuid}"),
                    },
                    "size": 16,
                },
            ],
            "sent_at": "2023-11-14T22:13:20.123Z",
            "received_at": "2023-11-14T22:13:20.123Z",
            "sender": {
                "id": "layer:///identities/ann",
                "url": format!("{base}/identities/ann"),
                "user_id": "ann",
                "display_name": "Ann \"the\" Émissary\n",
                "avatar_url": "https://example.com/a.png?x=1&y=<2>",
            },
            "is_unread": true,
            "recipient_status": {
                "layer:///identities/ann": "read",
                "layer:///identities/bob": "delivered",
            },
            "notification": {"title": "T", "text": "x"},
        });
        assert_eq!(world.message_view(&message, "bob"), expected);
        let sent: Value =
            serde_json::from_str(&world.message_create_text(&message, "bob")).expect("JSON");
        assert_eq!(sent["data"], expected, "the fan-out shows the same message");
        assert_eq!(
            sent["object"],
            json!({"type": "Message", "id": id, "url": format!("{base}/messages/{uuid}")})
        );
        assert_eq!(sent["operation"], "create");
    }

    #[test]
    fn a_conversation_update_renders_to_the_same_text_as_its_value() {
        let world = world();
        let conversation_id = object_id(Kind::Conversations, &Uuid::new_v4());
        let message_id = object_id(Kind::Messages, &Uuid::new_v4());
        for unread in [0, 1, 12_345, usize::MAX] {
            let by_value = json!({
                "operation": "update",
                "object": world.object_ref("Conversation", &conversation_id),
                "data": [
                    {"operation": "set", "property": "last_message", "id": message_id},
                    {"operation": "set", "property": "unread_message_count", "value": unread},
                ],
            });
            assert_eq!(
                &*World::conversation_update_text(
                    &conversation_id,
                    &world.url_of(&conversation_id),
                    &message_id,
                    unread
                ),
                serde_json::to_string(&by_value).expect("a Value serialises")
            );
        }
    }

    #[test]
    fn a_message_create_covers_every_member_the_view_has() {
        let mut world = world();
        let spec = MessageSpec {
            sender: Ok(0),
            parts: text_and_content("héllo \"you\"\u{1}"),
            statuses: vec![
                Some(Status::Read),
                Some(Status::Sent),
                Some(Status::Delivered),
                None,
            ],
            notification: Some(json!({"title": "T", "text": "x", "sound": null})),
            position: 7,
            viewer: 1,
        };
        let message = message(&mut world, &spec);
        for viewer in USERS {
            let text = world.message_create_text(&message, viewer);
            assert_eq!(&*text, create_by_value(&world, &message, viewer));
        }
        let unread: Value =
            serde_json::from_str(&world.message_create_text(&message, "bob")).expect("JSON");
        assert_eq!(unread["data"]["is_unread"], true, "bob has not read it");
        assert_eq!(unread["data"]["parts"][1]["content"]["size"], 16);
        assert_eq!(unread["data"]["sender"]["user_id"], "ann");
        let read: Value =
            serde_json::from_str(&world.message_create_text(&message, "ann")).expect("JSON");
        assert_eq!(read["data"]["is_unread"], false, "ann sent it");
        let named = MessageSpec {
            sender: Err("Système".into()),
            ..spec
        };
        let message = self::message(&mut world, &named);
        let text = world.message_create_text(&message, "bob");
        assert_eq!(&*text, create_by_value(&world, &message, "bob"));
        assert!(text.contains(r#""sender":{"avatar_url":null,"display_name":"Système","id":null,"name":"Système","url":null,"user_id":null}"#));
    }
}
