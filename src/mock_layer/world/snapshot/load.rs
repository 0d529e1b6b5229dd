//! Loading a world document: every field parsed, every reference and cap checked, into a
//! world that replaces the live one ([`World::import`]) only when all of it is good. The
//! shapes and the export are in `mod.rs`.

use super::super::super::content_store::RestoredContent;
use super::super::super::ids::parse_object_id;
use super::super::super::presence::MAX_FOLLOWS_PER_USER;
use super::super::webhooks::{EventKind, MAX_WEBHOOKS, Webhook, WebhookStatus, WebhookVersion};
use super::*;

fn parse_status(s: &str) -> Option<Status> {
    Some(match s {
        "sent" => Status::Sent,
        "delivered" => Status::Delivered,
        "read" => Status::Read,
        _ => return None,
    })
}

fn webhook_status(s: &str) -> Option<WebhookStatus> {
    Some(match s {
        "unverified" => WebhookStatus::Unverified,
        "active" => WebhookStatus::Active,
        "inactive" => WebhookStatus::Inactive,
        _ => return None,
    })
}

fn bad(message: impl Into<String>) -> LayerError {
    LayerError::invalid_request(format!("the world document is refused: {}", message.into()))
}

fn uuid_of(kind: Kind, id: &str) -> Result<Uuid, LayerError> {
    parse_object_id(kind, id).ok_or_else(|| bad(format!("{id:?} is not a {kind:?} ID")))
}

impl World {
    /// Builds an empty world's objects from `doc`, checking every reference.
    pub(super) fn fill(&mut self, doc: Snapshot) -> Result<(), LayerError> {
        if doc.format != FORMAT {
            return Err(bad(format!("format must be {FORMAT:?}")));
        }
        if doc.version != VERSION {
            return Err(bad(format!(
                "version {} is not one this emulator reads ({VERSION})",
                doc.version
            )));
        }
        if doc.app_id != self.app.to_string() {
            return Err(bad(format!(
                "it holds the app {}, not {}",
                doc.app_id, self.app
            )));
        }
        let limits = self.limits;
        if doc.identities.len() > limits.max_identities {
            return Err(bad("more identities than mock_layer.max_identities"));
        }
        if doc.conversations.len() > limits.max_conversations {
            return Err(bad("more conversations than mock_layer.max_conversations"));
        }
        if doc.messages.len() + doc.announcements.len() + doc.channel_messages.len()
            > limits.max_messages
        {
            return Err(bad(
                "more messages, announcements and channel messages than mock_layer.max_messages",
            ));
        }
        if doc.conversations.len() + doc.channels.len() > limits.max_conversations {
            return Err(bad(
                "more conversations and channels than mock_layer.max_conversations",
            ));
        }
        if doc.deleted_conversations.len() > limits.max_conversations {
            return Err(bad(
                "more deleted conversations than mock_layer.max_conversations",
            ));
        }
        if doc.webhooks.len() > MAX_WEBHOOKS {
            return Err(bad(format!("more than {MAX_WEBHOOKS} webhooks")));
        }
        let mut max_seq = 0u64;
        let mut max_ms = 0i64;
        self.session_ttl_secs = doc.session_ttl_secs;
        self.badging = Badging {
            mode: BadgingMode::parse(&doc.badging.mode)
                .ok_or_else(|| bad(format!("unknown badging mode {:?}", doc.badging.mode)))?,
            announcements: doc.badging.include_announcements,
        };

        for i in &doc.identities {
            if self.identities.contains_key(&i.user_id) {
                return Err(bad(format!("the user {:?} appears twice", i.user_id)));
            }
            max_seq = max_seq.max(i.created_seq);
            max_ms = max_ms.max(i.presence_changed_ms);
            self.identities.insert(
                i.user_id.clone(),
                Identity {
                    user_id: i.user_id.clone(),
                    profile: Profile {
                        display_name: i.display_name.clone(),
                        first_name: i.first_name.clone(),
                        last_name: i.last_name.clone(),
                        avatar_url: i.avatar_url.clone(),
                        public_key: i.public_key.clone(),
                    },
                    presence: PresenceStatus::parse(&i.presence)
                        .ok_or_else(|| bad(format!("unknown presence {:?}", i.presence)))?,
                    last_seen_ms: i.last_seen_ms,
                    presence_changed_ms: i.presence_changed_ms,
                    created_seq: i.created_seq,
                    email_address: i.email_address.clone(),
                    phone_number: i.phone_number.clone(),
                    metadata: i.metadata.clone(),
                    declared: i.declared,
                },
            );
        }
        let known = |world: &World, user: &str, what: &str| -> Result<(), LayerError> {
            if world.identities.contains_key(user) {
                Ok(())
            } else {
                Err(bad(format!(
                    "{what} names the user {user:?}, who is not among identities"
                )))
            }
        };
        for i in &doc.identities {
            if i.following.len() > MAX_FOLLOWS_PER_USER {
                return Err(bad(format!(
                    "{:?} follows more than {MAX_FOLLOWS_PER_USER} users",
                    i.user_id
                )));
            }
            if i.blocks.len() > MAX_BLOCKS_PER_USER {
                return Err(bad(format!(
                    "{:?} blocks more than {MAX_BLOCKS_PER_USER} users",
                    i.user_id
                )));
            }
            for other in i.following.iter().chain(&i.blocks) {
                known(self, other, &format!("{:?}'s follows or blocks", i.user_id))?;
            }
            if !i.following.is_empty() {
                for other in &i.following {
                    self.following
                        .entry(i.user_id.clone())
                        .or_default()
                        .insert(other.clone());
                    self.followers
                        .entry(other.clone())
                        .or_default()
                        .insert(i.user_id.clone());
                }
            }
            if !i.blocks.is_empty() {
                self.blocks.insert(i.user_id.clone(), i.blocks.clone());
            }
            if i.suspended {
                self.suspended.insert(i.user_id.clone());
            }
            if let Some(badge) = i.badge {
                self.external_unread.insert(i.user_id.clone(), badge);
            }
        }

        for c in &doc.conversations {
            let uuid = uuid_of(Kind::Conversations, &c.id)?;
            if self.conversations.contains_key(&uuid) {
                return Err(bad(format!("{} appears twice", c.id)));
            }
            if c.participants.len() > limits.max_participants {
                return Err(bad(format!(
                    "{} has more participants than mock_layer.max_participants",
                    c.id
                )));
            }
            let mut seen = HashSet::new();
            for user in c
                .participants
                .iter()
                .chain(&c.former)
                .chain(&c.hidden)
                .chain(&c.unseen_by)
                .chain(c.purged_up_to.keys())
            {
                known(self, user, &c.id)?;
            }
            for user in &c.participants {
                if !seen.insert(user) {
                    return Err(bad(format!("{} lists {user:?} twice", c.id)));
                }
            }
            max_seq = max_seq.max(c.created_seq);
            max_ms = max_ms.max(c.created_ms);
            self.conversations.insert(
                uuid,
                Conversation {
                    uuid,
                    created_ms: c.created_ms,
                    created_seq: c.created_seq,
                    participants: c.participants.clone(),
                    distinct: c.distinct,
                    metadata: c.metadata.clone(),
                    messages: Vec::new(),
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
                },
            );
        }
        for id in &doc.deleted_conversations {
            let uuid = uuid_of(Kind::Conversations, id)?;
            if self.conversations.contains_key(&uuid) {
                return Err(bad(format!("{id} is both live and deleted")));
            }
            self.deleted_conversations.insert(uuid);
        }

        // Content first, so parts can be checked against it.
        let mut content_owner: HashMap<Uuid, (String, bool)> = HashMap::new();
        let mut restored = Vec::with_capacity(doc.content.len());
        for c in &doc.content {
            let uuid = uuid_of(Kind::Content, &c.id)?;
            let (attached_to, is_announcement) =
                match parse_object_id(Kind::Messages, &c.attached_to) {
                    Some(m) => (m, false),
                    None => (uuid_of(Kind::Announcements, &c.attached_to)?, true),
                };
            known(self, &c.owner, &c.id).or_else(|e| {
                // An announcement's content has no owning user.
                if c.owner.is_empty() { Ok(()) } else { Err(e) }
            })?;
            let bytes = BASE64
                .decode(&c.bytes)
                .map_err(|e| bad(format!("{}'s bytes are not base64: {e}", c.id)))?;
            content_owner.insert(uuid, (c.attached_to.clone(), is_announcement));
            restored.push(RestoredContent {
                uuid,
                owner: c.owner.clone(),
                mime_type: c.mime_type.clone(),
                declared_size: c.declared_size,
                bytes: bytes.into(),
                upload_secret: c.upload_secret.clone(),
                download_secret: c.download_secret.clone(),
                attached_to,
            });
        }
        let mut content_used: HashSet<Uuid> = HashSet::new();
        let mut parts_of = |parts: &[PartSnap], owner: &str| -> Result<Vec<Part>, LayerError> {
            parts
                .iter()
                .map(|p| {
                    let content = match &p.content {
                        None => None,
                        Some(id) => {
                            let uuid = uuid_of(Kind::Content, id)?;
                            match content_owner.get(&uuid) {
                                Some((o, _)) if o == owner => {}
                                _ => {
                                    return Err(bad(format!(
                                        "{owner} uses {id}, which is not in content for it"
                                    )));
                                }
                            }
                            content_used.insert(uuid);
                            Some(uuid)
                        }
                    };
                    Ok(Part {
                        id: p.id.clone(),
                        mime_type: p.mime_type.clone(),
                        body: p.body.clone(),
                        encoding: p.encoding.clone(),
                        content,
                        size: p.size,
                        updated_ms: p.updated_ms,
                    })
                })
                .collect()
        };

        let mut message_bytes = 0usize;
        let mut messages = Vec::with_capacity(doc.messages.len());
        for m in &doc.messages {
            let uuid = uuid_of(Kind::Messages, &m.id)?;
            let conversation = uuid_of(Kind::Conversations, &m.conversation)?;
            let Some(c) = self.conversations.get(&conversation) else {
                return Err(bad(format!(
                    "{} is in {}, which is not among conversations",
                    m.id, m.conversation
                )));
            };
            if m.position >= c.next_position {
                return Err(bad(format!(
                    "{}'s position is not below its conversation's next_position",
                    m.id
                )));
            }
            if !m.sender.is_empty() {
                known(self, &m.sender, &m.id)?;
            }
            if m.sender.is_empty() == m.sender_name.is_none() {
                return Err(bad(format!(
                    "{} must have either a sender or a sender_name",
                    m.id
                )));
            }
            let mut recipient_status = BTreeMap::new();
            for (user, status) in &m.recipient_status {
                known(self, user, &m.id)?;
                let status = parse_status(status)
                    .ok_or_else(|| bad(format!("{}: unknown status {status:?}", m.id)))?;
                recipient_status.insert(user.clone(), status);
            }
            for user in &m.hidden_for {
                known(self, user, &m.id)?;
            }
            max_seq = max_seq.max(m.seq);
            max_ms = max_ms.max(m.sent_ms).max(m.updated_ms.unwrap_or(0));
            let mut message = Message {
                uuid,
                conversation,
                position: m.position,
                parts: parts_of(&m.parts, &m.id)?,
                sent_ms: m.sent_ms,
                seq: m.seq,
                sender: m.sender.clone(),
                sender_name: m.sender_name.clone(),
                recipient_status,
                notification: m.notification.clone(),
                hidden_for: m.hidden_for.iter().cloned().collect(),
                stored_bytes: 0,
                updated_ms: m.updated_ms,
            };
            message.stored_bytes = message.measure();
            message_bytes = message_bytes.saturating_add(message.stored_bytes);
            messages.push(message);
        }
        if message_bytes > limits.max_message_bytes {
            return Err(bad(
                "the messages take more than mock_layer.max_message_bytes",
            ));
        }
        // Each conversation's messages by ascending position, each position once.
        messages.sort_by_key(|m| (m.conversation, m.position));
        for pair in messages.windows(2) {
            if pair[0].conversation == pair[1].conversation && pair[0].position == pair[1].position
            {
                return Err(bad(format!(
                    "{} and {} share a position",
                    pair[0].id(),
                    pair[1].id()
                )));
            }
        }
        for message in messages {
            if self.messages.contains_key(&message.uuid) {
                return Err(bad(format!("{} appears twice", message.id())));
            }
            if let Some(c) = self.conversations.get_mut(&message.conversation) {
                c.messages.push(message.uuid);
            }
            self.messages.insert(message.uuid, message);
        }
        self.message_bytes = message_bytes;

        for a in &doc.announcements {
            let uuid = uuid_of(Kind::Announcements, &a.id)?;
            if self.announcements.contains_key(&uuid) || self.messages.contains_key(&uuid) {
                return Err(bad(format!("{} appears twice", a.id)));
            }
            let mut status = BTreeMap::new();
            for user in &a.recipients {
                known(self, user, &a.id)?;
            }
            for (user, s) in &a.status {
                if !a.recipients.contains(user) {
                    return Err(bad(format!(
                        "{} has a status for {user:?}, not a recipient",
                        a.id
                    )));
                }
                let s = parse_status(s)
                    .ok_or_else(|| bad(format!("{}: unknown status {s:?}", a.id)))?;
                status.insert(user.clone(), s);
            }
            max_seq = max_seq.max(a.seq);
            max_ms = max_ms.max(a.sent_ms);
            let parts = parts_of(&a.parts, &a.id)?;
            self.announcements.insert(
                uuid,
                Announcement {
                    uuid,
                    sent_ms: a.sent_ms,
                    seq: a.seq,
                    sender_name: a.sender_name.clone(),
                    recipients: a.recipients.clone(),
                    parts,
                    notification: a.notification.clone(),
                    status,
                },
            );
        }

        for c in &doc.channels {
            let uuid = uuid_of(Kind::Channels, &c.id)?;
            if self.channels.by_uuid.contains_key(&uuid) {
                return Err(bad(format!("{} appears twice", c.id)));
            }
            if self.channels.by_name.contains_key(&c.name) {
                return Err(bad(format!("two channels are named {:?}", c.name)));
            }
            if c.members.len() > limits.max_channel_members {
                return Err(bad(format!(
                    "{} has more members than mock_layer.max_channel_members",
                    c.id
                )));
            }
            let mut members = HashMap::with_capacity(c.members.len());
            for m in &c.members {
                known(self, &m.user_id, &c.id)?;
                max_seq = max_seq.max(m.seq);
                max_ms = max_ms.max(m.joined_ms);
                let member = Member {
                    joined_ms: m.joined_ms,
                    seq: m.seq,
                };
                if members.insert(m.user_id.clone(), member).is_some() {
                    return Err(bad(format!("{} lists {:?} twice", c.id, m.user_id)));
                }
            }
            max_seq = max_seq.max(c.created_seq);
            max_ms = max_ms.max(c.created_ms);
            self.channels.by_name.insert(c.name.clone(), uuid);
            self.channels.by_uuid.insert(
                uuid,
                Channel {
                    uuid,
                    name: c.name.clone(),
                    metadata: c.metadata.clone(),
                    created_ms: c.created_ms,
                    created_seq: c.created_seq,
                    members,
                    messages: Vec::new(),
                    next_position: c.next_position,
                },
            );
        }
        let mut channel_messages = Vec::with_capacity(doc.channel_messages.len());
        for m in &doc.channel_messages {
            let uuid = uuid_of(Kind::Messages, &m.id)?;
            let channel = uuid_of(Kind::Channels, &m.channel)?;
            let Some(c) = self.channels.by_uuid.get(&channel) else {
                return Err(bad(format!(
                    "{} is in {}, which is not among channels",
                    m.id, m.channel
                )));
            };
            if m.position >= c.next_position {
                return Err(bad(format!(
                    "{}'s position is not below its channel's next_position",
                    m.id
                )));
            }
            known(self, &m.sender, &m.id)?;
            max_seq = max_seq.max(m.seq);
            max_ms = max_ms.max(m.sent_ms);
            let mut message = ChannelMessage {
                uuid,
                channel,
                position: m.position,
                parts: parts_of(&m.parts, &m.id)?,
                sent_ms: m.sent_ms,
                seq: m.seq,
                sender: m.sender.clone(),
                stored_bytes: 0,
            };
            message.stored_bytes = message.measure();
            self.message_bytes = self.message_bytes.saturating_add(message.stored_bytes);
            channel_messages.push(message);
        }
        if self.message_bytes > limits.max_message_bytes {
            return Err(bad(
                "the messages take more than mock_layer.max_message_bytes",
            ));
        }
        channel_messages.sort_by_key(|m| (m.channel, m.position));
        for pair in channel_messages.windows(2) {
            if pair[0].channel == pair[1].channel && pair[0].position == pair[1].position {
                return Err(bad(format!(
                    "{} and {} share a position",
                    pair[0].id(),
                    pair[1].id()
                )));
            }
        }
        for message in channel_messages {
            if self.channels.messages.contains_key(&message.uuid)
                || self.messages.contains_key(&message.uuid)
                || self.announcements.contains_key(&message.uuid)
            {
                return Err(bad(format!("{} appears twice", message.id())));
            }
            if let Some(c) = self.channels.by_uuid.get_mut(&message.channel) {
                c.messages.push(message.uuid);
            }
            self.channels.messages.insert(message.uuid, message);
        }

        for item in restored {
            if !content_used.contains(&item.uuid) {
                return Err(bad(format!(
                    "{} is used by no part of {}",
                    object_id(Kind::Content, &item.uuid),
                    object_id(
                        if content_owner
                            .get(&item.uuid)
                            .is_some_and(|(_, announcement)| *announcement)
                        {
                            Kind::Announcements
                        } else {
                            Kind::Messages
                        },
                        &item.attached_to
                    )
                )));
            }
            self.content.restore(item, max_ms)?;
        }

        for w in &doc.webhooks {
            let uuid = Uuid::parse_str(&w.id)
                .map_err(|_| bad(format!("{:?} is not a webhook's UUID", w.id)))?;
            let version = WebhookVersion::parse(&w.version)
                .ok_or_else(|| bad(format!("{}: unknown version {:?}", w.id, w.version)))?;
            let mut kinds = BTreeSet::new();
            for name in &w.events {
                let parsed = EventKind::parse(name, version);
                if parsed.is_empty() {
                    return Err(bad(format!("{}: unknown event {name:?}", w.id)));
                }
                kinds.extend(parsed);
            }
            max_ms = max_ms.max(w.created_ms);
            let hook = Webhook {
                uuid,
                version,
                target_url: w.target_url.clone(),
                events: w.events.clone(),
                kinds,
                secret: w.secret.clone(),
                config: w.config.clone(),
                status: webhook_status(&w.status)
                    .ok_or_else(|| bad(format!("{}: unknown status {:?}", w.id, w.status)))?,
                status_reason: w.status_reason.clone(),
                created_ms: w.created_ms,
                verification: 0,
            };
            if self.webhooks.hooks.insert(uuid, hook).is_some() {
                return Err(bad(format!("{} appears twice", w.id)));
            }
        }

        if max_seq > doc.last_seq {
            return Err(bad("an object's sequence number is past last_seq"));
        }
        self.last_seq = doc.last_seq;
        self.last_ms = self.last_ms.max(max_ms);
        Ok(())
    }
}
