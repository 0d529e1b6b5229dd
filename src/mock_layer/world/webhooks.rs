//! Webhooks the app's backend registered (the Webhooks API, §D of the Platform API notes),
//! and the events waiting to be delivered to them.
//!
//! The world only *records* an event, with a copy of the object as it was at that moment, and
//! only when an active webhook of the app subscribed to its type; rendering, signing and
//! sending happen outside the world's lock (`platform/webhooks/`), woken by [`Notify`]. So a
//! world with no webhooks pays one check per event, and a slow receiver never holds the lock.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

use serde_json::{Map, Value};
use tokio::sync::Notify;
use uuid::Uuid;

use super::{Conversation, Message, Part, World};

/// Most webhooks one app may register.
pub const MAX_WEBHOOKS: usize = 25;

/// Most recorded events waiting to be rendered, per app; past it an event is dropped and
/// counted (the sender's queue behind it is bounded too).
pub const MAX_PENDING_EVENTS: usize = 10_000;

/// The Webhooks API version a webhook was registered with: its event names and payloads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookVersion {
    /// `message.sent`, user IDs, `actor` inside `event`.
    V1,
    /// `Message.created`, Basic Identities, `actor` at the top, part events.
    V3,
}

impl WebhookVersion {
    pub fn parse(version: &str) -> Option<Self> {
        match version {
            "1.0" => Some(Self::V1),
            "3.0" => Some(Self::V3),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::V1 => "1.0",
            Self::V3 => "3.0",
        }
    }
}

/// What happened, whatever the version calls it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum EventKind {
    MessageSent,
    MessageDelivered,
    MessageRead,
    MessageDeleted,
    ConversationCreated,
    ConversationParticipants,
    ConversationMetadata,
    ConversationDeleted,
    PartCreated,
    PartUpdated,
    PartDeleted,
}

impl EventKind {
    const ALL: [EventKind; 11] = [
        Self::MessageSent,
        Self::MessageDelivered,
        Self::MessageRead,
        Self::MessageDeleted,
        Self::ConversationCreated,
        Self::ConversationParticipants,
        Self::ConversationMetadata,
        Self::ConversationDeleted,
        Self::PartCreated,
        Self::PartUpdated,
        Self::PartDeleted,
    ];

    /// The event's name in `version`; `None` where that version has no such event.
    pub fn name(self, version: WebhookVersion) -> Option<&'static str> {
        use EventKind::*;
        match version {
            WebhookVersion::V1 => match self {
                MessageSent => Some("message.sent"),
                MessageDelivered => Some("message.delivered"),
                MessageRead => Some("message.read"),
                MessageDeleted => Some("message.deleted"),
                ConversationCreated => Some("conversation.created"),
                ConversationParticipants => Some("conversation.updated.participants"),
                ConversationMetadata => Some("conversation.updated.metadata"),
                ConversationDeleted => Some("conversation.deleted"),
                PartCreated | PartUpdated | PartDeleted => None,
            },
            WebhookVersion::V3 => Some(match self {
                MessageSent => "Message.created",
                MessageDelivered | MessageRead => "Message.updated",
                MessageDeleted => "Message.deleted",
                ConversationCreated => "Conversation.created",
                ConversationParticipants | ConversationMetadata => "Conversation.updated",
                ConversationDeleted => "Conversation.deleted",
                PartCreated => "MessagePart.created",
                PartUpdated => "MessagePart.updated",
                PartDeleted => "MessagePart.deleted",
            }),
        }
    }

    /// The kinds an event name of `version` subscribes to (3.0's `Message.updated` is both
    /// receipts); empty for a name the version does not have.
    pub fn parse(name: &str, version: WebhookVersion) -> Vec<EventKind> {
        Self::ALL
            .into_iter()
            .filter(|kind| kind.name(version) == Some(name))
            .collect()
    }

    /// Every name `version` knows, in a stable order (for error messages).
    pub fn names(version: WebhookVersion) -> Vec<&'static str> {
        let mut names: Vec<_> = Self::ALL
            .into_iter()
            .filter_map(|kind| kind.name(version))
            .collect();
        names.dedup();
        names
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookStatus {
    Unverified,
    Active,
    Inactive,
}

impl WebhookStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unverified => "unverified",
            Self::Active => "active",
            Self::Inactive => "inactive",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Webhook {
    pub uuid: Uuid,
    pub version: WebhookVersion,
    pub target_url: String,
    /// The event names as registered.
    pub events: Vec<String>,
    pub kinds: BTreeSet<EventKind>,
    /// The HMAC key of `layer-webhook-signature`; never shown.
    pub secret: String,
    pub config: Map<String, Value>,
    pub status: WebhookStatus,
    pub status_reason: Option<String>,
    pub created_ms: i64,
    /// Bumped whenever verification starts, so a late answer to an earlier one is ignored.
    pub verification: u64,
}

/// Who caused an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    User(String),
    /// The Platform API's `sender.name`.
    Name(String),
}

/// The object an event is about, as it was when it happened.
#[derive(Debug, Clone)]
pub enum Subject {
    Message(Box<Message>),
    Conversation(Box<Conversation>),
    Part { message: Box<Message>, part: Part },
}

#[derive(Debug, Clone)]
pub struct Event {
    /// `event.id`: the receiver's key for de-duplication.
    pub id: Uuid,
    pub kind: EventKind,
    pub at_ms: i64,
    pub actor: Option<Actor>,
    pub subject: Subject,
    /// The webhooks subscribed when it happened.
    pub webhooks: Vec<Uuid>,
}

#[derive(Default)]
pub struct Webhooks {
    pub hooks: BTreeMap<Uuid, Webhook>,
    pub pending: VecDeque<Event>,
    /// Events dropped because `pending` was full.
    pub dropped: u64,
    /// Wakes the sender when an event is recorded.
    notify: Option<Arc<Notify>>,
}

impl Webhooks {
    pub fn new(notify: Option<Arc<Notify>>) -> Self {
        Self {
            notify,
            ..Self::default()
        }
    }

    pub fn notify(&self) -> Option<Arc<Notify>> {
        self.notify.clone()
    }

    fn subscribed(&self, kind: EventKind) -> Vec<Uuid> {
        self.hooks
            .values()
            .filter(|h| h.status == WebhookStatus::Active && h.kinds.contains(&kind))
            .map(|h| h.uuid)
            .collect()
    }
}

impl World {
    /// Records an event for the app's active webhooks that subscribed to it; `subject` is
    /// only built when one did.
    pub(super) fn record_event(
        &mut self,
        kind: EventKind,
        actor: Option<Actor>,
        subject: impl FnOnce(&World) -> Option<Subject>,
    ) {
        let webhooks = self.webhooks.subscribed(kind);
        if webhooks.is_empty() {
            return;
        }
        let Some(subject) = subject(self) else {
            return;
        };
        if self.webhooks.pending.len() >= MAX_PENDING_EVENTS {
            self.webhooks.dropped += 1;
            return;
        }
        let at_ms = self.now_ms();
        self.webhooks.pending.push_back(Event {
            id: Uuid::new_v4(),
            kind,
            at_ms,
            actor,
            subject,
            webhooks,
        });
        if let Some(notify) = &self.webhooks.notify {
            notify.notify_one();
        }
    }

    /// A message as it is now, for an event about it.
    pub(super) fn message_subject(&self, uuid: &Uuid) -> Option<Subject> {
        self.messages
            .get(uuid)
            .map(|m| Subject::Message(Box::new(m.clone())))
    }

    /// A conversation as it is now, for an event about it.
    pub(super) fn conversation_subject(&self, uuid: &Uuid) -> Option<Subject> {
        self.conversations
            .get(uuid)
            .map(|c| Subject::Conversation(Box::new(c.clone())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_per_version() {
        for version in [WebhookVersion::V1, WebhookVersion::V3] {
            for name in EventKind::names(version) {
                let kinds = EventKind::parse(name, version);
                assert!(!kinds.is_empty(), "{name}");
                assert!(kinds.iter().all(|k| k.name(version) == Some(name)));
            }
        }
        assert_eq!(
            EventKind::parse("Message.updated", WebhookVersion::V3),
            vec![EventKind::MessageDelivered, EventKind::MessageRead]
        );
        assert!(EventKind::parse("message.sent", WebhookVersion::V3).is_empty());
        assert!(EventKind::parse("MessagePart.created", WebhookVersion::V1).is_empty());
        assert_eq!(EventKind::names(WebhookVersion::V1).len(), 8);
    }
}
