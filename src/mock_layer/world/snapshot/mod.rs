//! The world of one app as a JSON document (`GET /_mock/export`, `POST /_mock/import`,
//! `--mock-layer-import`): plain serde structs, apart from the live ones, so the document's
//! shape is written down in one place and can evolve by its `version`.
//!
//! Everything a user or the app's server could see is kept, with every ID, position, status
//! and sequence number: identities (profile, fields, metadata, presence, follows, blocks,
//! suspension, badge count), conversations (participants, former and hidden state),
//! messages, rich content a message uses (its bytes in base64, its URL secrets),
//! announcements, channels (members, messages), webhooks (with their secrets: a document is
//! a test fixture), the session TTL and the badging setting. Not kept: sessions, sockets, nonces, the change log that
//! `Event.replay` re-sends, the request journal, the push log, pending webhook events,
//! delayed messages, content no message uses yet, and the test clock's offset.
//!
//! An import is checked whole before anything changes ([`World::import`]): a document that
//! names something it does not hold, or holds more than the caps allow, changes nothing.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Serialize};

use super::*;

mod load;

/// What the document says it is.
pub const FORMAT: &str = "layer-idp/mock-layer-world";
/// The version of its shape; an import refuses any other.
pub const VERSION: u32 = 1;

#[derive(Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Snapshot {
    pub format: String,
    pub version: u32,
    pub app_id: String,
    /// The world's event sequence so far: new objects sort after the imported ones.
    pub last_seq: u64,
    pub session_ttl_secs: Option<u64>,
    pub badging: BadgingSnap,
    pub identities: Vec<IdentitySnap>,
    pub conversations: Vec<ConversationSnap>,
    /// Conversations deleted for everyone (the Platform API answers 410 for them).
    pub deleted_conversations: Vec<String>,
    pub messages: Vec<MessageSnap>,
    pub content: Vec<ContentSnap>,
    pub announcements: Vec<AnnouncementSnap>,
    pub webhooks: Vec<WebhookSnap>,
    /// Absent in documents made before channels were emulated: none.
    #[serde(default)]
    pub channels: Vec<ChannelSnap>,
    #[serde(default)]
    pub channel_messages: Vec<ChannelMessageSnap>,
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BadgingSnap {
    pub mode: String,
    pub include_announcements: bool,
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct IdentitySnap {
    pub user_id: String,
    pub display_name: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub avatar_url: Option<String>,
    pub public_key: Option<String>,
    pub email_address: Option<String>,
    pub phone_number: Option<String>,
    pub metadata: Map<String, Value>,
    pub presence: String,
    pub last_seen_ms: Option<i64>,
    pub presence_changed_ms: i64,
    pub created_seq: u64,
    pub declared: bool,
    /// Whom they follow explicitly.
    pub following: Vec<String>,
    /// Whom they block, in the order blocked.
    pub blocks: Vec<String>,
    pub suspended: bool,
    /// The badge count the app set.
    pub badge: Option<u64>,
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ConversationSnap {
    pub id: String,
    pub created_ms: i64,
    pub created_seq: u64,
    pub participants: Vec<String>,
    pub distinct: bool,
    pub metadata: Map<String, Value>,
    pub next_position: u64,
    pub former: Vec<String>,
    pub hidden: Vec<String>,
    pub purged_up_to: BTreeMap<String, u64>,
    pub significance: Option<Map<String, Value>>,
    pub unseen_by: Vec<String>,
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PartSnap {
    pub id: Option<String>,
    pub mime_type: String,
    pub body: Option<String>,
    pub encoding: Option<String>,
    /// The rich content's ID (`layer:///content/…`), in `content`.
    pub content: Option<String>,
    pub size: u64,
    pub updated_ms: Option<i64>,
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MessageSnap {
    pub id: String,
    pub conversation: String,
    pub position: u64,
    pub parts: Vec<PartSnap>,
    pub sent_ms: i64,
    pub seq: u64,
    /// The sending user; empty for a message sent under `sender_name`.
    pub sender: String,
    pub sender_name: Option<String>,
    pub recipient_status: BTreeMap<String, String>,
    pub notification: Option<Value>,
    pub hidden_for: Vec<String>,
    pub updated_ms: Option<i64>,
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ContentSnap {
    pub id: String,
    pub owner: String,
    pub mime_type: String,
    pub declared_size: Option<u64>,
    /// The bytes, in standard base64.
    pub bytes: String,
    pub upload_secret: String,
    pub download_secret: String,
    /// The message (or announcement) that uses it.
    pub attached_to: String,
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AnnouncementSnap {
    pub id: String,
    pub sent_ms: i64,
    pub seq: u64,
    pub sender_name: String,
    pub recipients: Vec<String>,
    pub parts: Vec<PartSnap>,
    pub notification: Option<Value>,
    /// Each recipient's status; one who deleted their copy is missing.
    pub status: BTreeMap<String, String>,
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ChannelSnap {
    pub id: String,
    pub name: String,
    pub metadata: Map<String, Value>,
    pub created_ms: i64,
    pub created_seq: u64,
    pub next_position: u64,
    /// In the order they joined.
    pub members: Vec<MemberSnap>,
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MemberSnap {
    pub user_id: String,
    pub joined_ms: i64,
    pub seq: u64,
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ChannelMessageSnap {
    pub id: String,
    pub channel: String,
    pub position: u64,
    pub parts: Vec<PartSnap>,
    pub sent_ms: i64,
    pub seq: u64,
    pub sender: String,
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct WebhookSnap {
    pub id: String,
    pub version: String,
    pub target_url: String,
    pub events: Vec<String>,
    /// The signing secret, in clear: an export is a test fixture, not a backup.
    pub secret: String,
    pub config: Map<String, Value>,
    pub status: String,
    pub status_reason: Option<String>,
    pub created_ms: i64,
}

fn presence_name(p: PresenceStatus) -> &'static str {
    match p {
        PresenceStatus::Auto => "auto",
        PresenceStatus::Available => "available",
        PresenceStatus::Away => "away",
        PresenceStatus::Busy => "busy",
        PresenceStatus::Offline => "offline",
        PresenceStatus::Invisible => "invisible",
    }
}

fn sorted<T: Ord + Clone>(items: impl IntoIterator<Item = T>) -> Vec<T> {
    let mut v: Vec<T> = items.into_iter().collect();
    v.sort();
    v
}

fn part_snap(part: &Part) -> PartSnap {
    PartSnap {
        id: part.id.clone(),
        mime_type: part.mime_type.clone(),
        body: part.body.clone(),
        encoding: part.encoding.clone(),
        content: part.content.map(|c| object_id(Kind::Content, &c)),
        size: part.size,
        updated_ms: part.updated_ms,
    }
}

impl World {
    /// The world as a document, every list in a stable order.
    pub fn export(&self) -> Snapshot {
        let mut identities: Vec<IdentitySnap> = self
            .identities
            .values()
            .map(|i| IdentitySnap {
                user_id: i.user_id.clone(),
                display_name: i.profile.display_name.clone(),
                first_name: i.profile.first_name.clone(),
                last_name: i.profile.last_name.clone(),
                avatar_url: i.profile.avatar_url.clone(),
                public_key: i.profile.public_key.clone(),
                email_address: i.email_address.clone(),
                phone_number: i.phone_number.clone(),
                metadata: i.metadata.clone(),
                presence: presence_name(i.presence).to_owned(),
                last_seen_ms: i.last_seen_ms,
                presence_changed_ms: i.presence_changed_ms,
                created_seq: i.created_seq,
                declared: i.declared,
                following: self
                    .following
                    .get(&i.user_id)
                    .map(|f| f.iter().cloned().collect())
                    .unwrap_or_default(),
                blocks: self.blocks.get(&i.user_id).cloned().unwrap_or_default(),
                suspended: self.suspended.contains(&i.user_id),
                badge: self.external_unread.get(&i.user_id).copied(),
            })
            .collect();
        identities.sort_by(|a, b| a.user_id.cmp(&b.user_id));

        let mut conversations: Vec<ConversationSnap> = self
            .conversations
            .values()
            .map(|c| ConversationSnap {
                id: c.id(),
                created_ms: c.created_ms,
                created_seq: c.created_seq,
                participants: c.participants.clone(),
                distinct: c.distinct,
                metadata: c.metadata.clone(),
                next_position: c.next_position,
                former: c.former.iter().cloned().collect(),
                hidden: c.hidden.iter().cloned().collect(),
                purged_up_to: c
                    .purged_up_to
                    .iter()
                    .map(|(u, p)| (u.clone(), *p))
                    .collect(),
                significance: c.significance.clone(),
                unseen_by: c.unseen_by.iter().cloned().collect(),
            })
            .collect();
        conversations.sort_by(|a, b| a.id.cmp(&b.id));

        let mut messages: Vec<MessageSnap> = self
            .messages
            .values()
            .map(|m| MessageSnap {
                id: m.id(),
                conversation: object_id(Kind::Conversations, &m.conversation),
                position: m.position,
                parts: m.parts.iter().map(part_snap).collect(),
                sent_ms: m.sent_ms,
                seq: m.seq,
                sender: m.sender.clone(),
                sender_name: m.sender_name.clone(),
                recipient_status: m
                    .recipient_status
                    .iter()
                    .map(|(u, s)| (u.clone(), s.as_str().to_owned()))
                    .collect(),
                notification: m.notification.clone(),
                hidden_for: m.hidden_for.iter().cloned().collect(),
                updated_ms: m.updated_ms,
            })
            .collect();
        messages.sort_by(|a, b| a.id.cmp(&b.id));

        // Only content a message or announcement uses, once uploaded.
        let mut content: Vec<ContentSnap> = self
            .content
            .items()
            .filter_map(|c| {
                let owner_id = c.attached_to?;
                let kind = if self.announcements.contains_key(&owner_id) {
                    Kind::Announcements
                } else {
                    Kind::Messages
                };
                Some(ContentSnap {
                    id: object_id(Kind::Content, &c.uuid),
                    owner: c.owner.clone(),
                    mime_type: c.mime_type.clone(),
                    declared_size: c.declared_size,
                    bytes: BASE64.encode(c.bytes.as_ref()?),
                    upload_secret: c.upload_secret.clone(),
                    download_secret: c.download_secret.clone(),
                    attached_to: object_id(kind, &owner_id),
                })
            })
            .collect();
        content.sort_by(|a, b| a.id.cmp(&b.id));

        let mut announcements: Vec<AnnouncementSnap> = self
            .announcements
            .values()
            .map(|a| AnnouncementSnap {
                id: a.id(),
                sent_ms: a.sent_ms,
                seq: a.seq,
                sender_name: a.sender_name.clone(),
                recipients: a.recipients.clone(),
                parts: a.parts.iter().map(part_snap).collect(),
                notification: a.notification.clone(),
                status: a
                    .status
                    .iter()
                    .map(|(u, s)| (u.clone(), s.as_str().to_owned()))
                    .collect(),
            })
            .collect();
        announcements.sort_by(|a, b| a.id.cmp(&b.id));

        let webhooks = self
            .webhooks
            .hooks
            .values()
            .map(|h| WebhookSnap {
                id: h.uuid.hyphenated().to_string(),
                version: h.version.as_str().to_owned(),
                target_url: h.target_url.clone(),
                events: h.events.clone(),
                secret: h.secret.clone(),
                config: h.config.clone(),
                status: h.status.as_str().to_owned(),
                status_reason: h.status_reason.clone(),
                created_ms: h.created_ms,
            })
            .collect();

        let mut channels: Vec<ChannelSnap> = self
            .channels
            .by_uuid
            .values()
            .map(|c| ChannelSnap {
                id: c.id(),
                name: c.name.clone(),
                metadata: c.metadata.clone(),
                created_ms: c.created_ms,
                created_seq: c.created_seq,
                next_position: c.next_position,
                members: c
                    .members_in_order()
                    .into_iter()
                    .map(|(user, m)| MemberSnap {
                        user_id: user.clone(),
                        joined_ms: m.joined_ms,
                        seq: m.seq,
                    })
                    .collect(),
            })
            .collect();
        channels.sort_by(|a, b| a.id.cmp(&b.id));

        let mut channel_messages: Vec<ChannelMessageSnap> = self
            .channels
            .messages
            .values()
            .map(|m| ChannelMessageSnap {
                id: m.id(),
                channel: object_id(Kind::Channels, &m.channel),
                position: m.position,
                parts: m.parts.iter().map(part_snap).collect(),
                sent_ms: m.sent_ms,
                seq: m.seq,
                sender: m.sender.clone(),
            })
            .collect();
        channel_messages.sort_by(|a, b| a.id.cmp(&b.id));

        Snapshot {
            format: FORMAT.to_owned(),
            version: VERSION,
            app_id: self.app.to_string(),
            last_seq: self.last_seq,
            session_ttl_secs: self.session_ttl_secs,
            badging: BadgingSnap {
                mode: self.badging.mode.name().to_owned(),
                include_announcements: self.badging.announcements,
            },
            identities,
            conversations,
            deleted_conversations: sorted(
                self.deleted_conversations
                    .iter()
                    .map(|u| object_id(Kind::Conversations, u)),
            ),
            messages,
            content,
            announcements,
            webhooks,
            channels,
            channel_messages,
        }
    }

    /// Replaces the world with `doc`'s, or changes nothing if the document is malformed,
    /// inconsistent, for another app, or over the caps. Every socket is closed; the caller
    /// ends the app's sessions.
    pub fn import(&mut self, doc: Snapshot) -> Result<(), LayerError> {
        let mut fresh = World::new(self.app, self.base.clone(), self.limits);
        fresh.webhooks = webhooks::Webhooks::new(self.webhooks.notify());
        fresh.fill(doc)?;
        let offset = self.clock_offset_ms;
        let last_ms = self.last_ms;
        let messages_created = self.messages_created.clone();
        for handles in self.sockets.values() {
            for handle in handles {
                handle.kill();
            }
        }
        *self = fresh;
        self.clock_offset_ms = offset;
        self.last_ms = self.last_ms.max(last_ms);
        self.messages_created = messages_created;
        Ok(())
    }
}
