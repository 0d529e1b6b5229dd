//! Channels (Client API, beta: §B.1 row 23, `Channel.create` in §C.3): named rooms of many
//! members, one name per app. What sets them apart from conversations, as the XDK's
//! channel model expects it: a channel message has no `recipient_status`, no receipts, no
//! unread state and no push notification; members join and leave over REST
//! (`PUT`/`DELETE {channel.url}/members/{user id}`), one at a time.
//!
//! Channel messages live here, in the channel's own store, not among the conversations'
//! messages: they share only the caps (`max_messages`, `max_message_bytes`; a channel
//! counts against `max_conversations`) and the part rules (`accept_part`). The webhooks of
//! the Platform API hear nothing of channels (Layer's channel events are not emulated).

use super::super::ids::encode_user_id;
use super::super::input::NewChannel;
use super::*;

/// The only role the emulator gives (the XDK reads none yet).
pub const MEMBER_ROLE: &str = "user";

/// A member's place in a channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Member {
    pub joined_ms: i64,
    /// When they joined among everything the world did: the member list's order.
    pub seq: u64,
}

#[derive(Debug, Clone)]
pub struct Channel {
    pub uuid: Uuid,
    /// Unique in the app.
    pub name: String,
    pub metadata: Map<String, Value>,
    pub created_ms: i64,
    pub created_seq: u64,
    pub members: HashMap<String, Member>,
    /// Message UUIDs by ascending position.
    pub messages: Vec<Uuid>,
    pub next_position: u64,
}

impl Channel {
    pub fn id(&self) -> String {
        object_id(Kind::Channels, &self.uuid)
    }

    pub fn is_member(&self, user: &str) -> bool {
        self.members.contains_key(user)
    }

    /// Members in the order they joined.
    pub fn members_in_order(&self) -> Vec<(&String, &Member)> {
        let mut members: Vec<(&String, &Member)> = self.members.iter().collect();
        members.sort_by_key(|(_, m)| m.seq);
        members
    }
}

#[derive(Debug, Clone)]
pub struct ChannelMessage {
    pub uuid: Uuid,
    pub channel: Uuid,
    pub position: u64,
    pub parts: Vec<Part>,
    pub sent_ms: i64,
    pub seq: u64,
    /// The sending user's ID.
    pub sender: String,
    /// What it counts for against `max_message_bytes`, measured once when it is sent.
    pub stored_bytes: usize,
}

impl ChannelMessage {
    pub fn id(&self) -> String {
        object_id(Kind::Messages, &self.uuid)
    }

    /// Roughly what it takes in memory (rich content is counted separately).
    pub(super) fn measure(&self) -> usize {
        super::messages::measure_sent(&self.sender, &self.parts)
    }
}

/// Every channel of an app, by UUID and by name, and their messages.
#[derive(Debug, Default)]
pub struct Channels {
    pub by_uuid: HashMap<Uuid, Channel>,
    pub by_name: HashMap<String, Uuid>,
    pub messages: HashMap<Uuid, ChannelMessage>,
}

impl World {
    /// What counts against `max_messages`: messages, announcements and channel messages.
    pub(super) fn held_messages(&self) -> usize {
        self.messages.len() + self.announcements.len() + self.channels.messages.len()
    }

    /// `Channel.create`: the caller is always a member; members who do not exist yet are
    /// provisioned. A name in use is a `conflict` carrying the existing channel (the XDK
    /// adopts it), an ID in use an `id_in_use` carrying it (a retried create).
    pub fn create_channel(&mut self, caller: &str, input: NewChannel) -> Result<Value, LayerError> {
        if let Some(uuid) = input.uuid
            && let Some(existing) = self.channels.by_uuid.get(&uuid)
        {
            return Err(LayerError::new(
                ErrorKind::IdInUse,
                format!("the channel ID {} is already in use", existing.id()),
            )
            .with_data(self.channel_view(existing, caller)));
        }
        if let Some(existing) = self
            .channels
            .by_name
            .get(&input.name)
            .and_then(|uuid| self.channels.by_uuid.get(uuid))
        {
            return Err(LayerError::new(
                ErrorKind::Conflict,
                format!("a channel named {:?} exists already", input.name),
            )
            .with_data(self.channel_view(existing, caller)));
        }
        let mut seen = HashSet::with_capacity(input.members.len() + 1);
        let members: Vec<String> = std::iter::once(caller.to_owned())
            .chain(input.members)
            .filter(|user| seen.insert(user.clone()))
            .collect();
        if members.len() > self.limits.max_channel_members {
            return Err(LayerError::invalid_property(
                "members",
                format!(
                    "a channel has at most {} members (mock_layer.max_channel_members); this \
                     one would have {}",
                    self.limits.max_channel_members,
                    members.len()
                ),
            ));
        }
        let held = self.conversations.len() + self.channels.by_uuid.len();
        if held >= self.limits.max_conversations {
            return Err(LayerError::rate_limit_exceeded(format!(
                "this app has {held} conversations and channels, the most the emulator keeps \
                 (mock_layer.max_conversations)"
            )));
        }
        self.room_for_identities(members.iter().map(String::as_str))?;
        for user in &members {
            self.provision_within_room(user);
        }
        let now = self.now_ms();
        let uuid = input.uuid.unwrap_or_else(Uuid::new_v4);
        let created_seq = self.next_seq();
        let mut joined = HashMap::with_capacity(members.len());
        for user in &members {
            let seq = self.next_seq();
            joined.insert(
                user.clone(),
                Member {
                    joined_ms: now,
                    seq,
                },
            );
        }
        let channel = Channel {
            uuid,
            name: input.name,
            metadata: input.metadata.unwrap_or_default(),
            created_ms: now,
            created_seq,
            members: joined,
            messages: Vec::new(),
            next_position: 1,
        };
        let view = self.channel_view(&channel, caller);
        self.channels.by_name.insert(channel.name.clone(), uuid);
        self.channels.by_uuid.insert(uuid, channel);
        for user in &members {
            self.push_channel_create(&uuid, user);
        }
        Ok(view)
    }

    /// A `create` of the channel, as `user` sees it, to `user`'s sockets.
    fn push_channel_create(&mut self, uuid: &Uuid, user: &str) {
        let Some(channel) = self.channels.by_uuid.get(uuid) else {
            return;
        };
        let body = json!({
            "operation": "create",
            "object": self.object_ref("Channel", &channel.id()),
            "data": self.channel_view(channel, user),
        });
        self.emit(user, PacketKind::Change, body);
    }

    /// Any channel of the app: channels are public, so anyone may look one up (its
    /// `membership` is null for a non-member).
    pub fn channel(&self, uuid: &Uuid) -> Result<&Channel, LayerError> {
        self.channels.by_uuid.get(uuid).ok_or_else(|| {
            LayerError::not_found(format!(
                "there is no channel {}",
                object_id(Kind::Channels, uuid)
            ))
        })
    }

    /// A channel the caller is a member of: 404 if there is none, 403 if they are not in it.
    pub fn channel_for_member(&self, caller: &str, uuid: &Uuid) -> Result<&Channel, LayerError> {
        let channel = self.channel(uuid)?;
        if channel.is_member(caller) {
            Ok(channel)
        } else {
            Err(LayerError::access_denied(format!(
                "you are not a member of {}; join it first (PUT {}/members/<your user id>)",
                channel.id(),
                self.url_of(&channel.id())
            )))
        }
    }

    /// The caller's channels, newest first.
    pub fn channels_newest_first(&self, viewer: &str) -> Vec<&Channel> {
        let mut listed: Vec<&Channel> = self
            .channels
            .by_uuid
            .values()
            .filter(|c| c.is_member(viewer))
            .collect();
        listed.sort_by_key(|c| std::cmp::Reverse(c.created_seq));
        listed
    }

    /// A channel's messages, newest first.
    pub fn channel_messages_newest_first<'a>(
        &'a self,
        channel: &'a Channel,
    ) -> impl Iterator<Item = &'a ChannelMessage> + 'a {
        channel
            .messages
            .iter()
            .rev()
            .filter_map(|uuid| self.channels.messages.get(uuid))
    }

    /// `Message.create` into a channel: every member's sockets get its `create`. No
    /// recipient status, no unread count, and a `notification` is not sent (nor logged in
    /// `GET /_mock/notifications`): Layer pushes nothing for channel messages.
    pub fn send_channel_message(
        &mut self,
        caller: &str,
        channel_uuid: &Uuid,
        input: NewMessage,
    ) -> Result<Value, LayerError> {
        let channel = self.channel_for_member(caller, channel_uuid)?;
        let next_position = channel.next_position;
        let uuid = input.uuid.unwrap_or_else(Uuid::new_v4);
        if let Some(existing) = self.channels.messages.get(&uuid) {
            let mut error = LayerError::new(
                ErrorKind::IdInUse,
                format!("the message ID {} is already in use", existing.id()),
            );
            if self
                .channels
                .by_uuid
                .get(&existing.channel)
                .is_some_and(|c| c.is_member(caller))
            {
                error = error.with_data(self.channel_message_view(existing));
            }
            return Err(error);
        }
        if self.messages.contains_key(&uuid) {
            return Err(LayerError::new(
                ErrorKind::IdInUse,
                format!(
                    "the message ID {} is already in use",
                    object_id(Kind::Messages, &uuid)
                ),
            ));
        }
        if self.held_messages() >= self.limits.max_messages {
            return Err(LayerError::rate_limit_exceeded(format!(
                "this app holds {} messages, announcements and channel messages, the most \
                 the emulator keeps (mock_layer.max_messages); delete some",
                self.held_messages()
            )));
        }
        let message_id = object_id(Kind::Messages, &uuid);
        let mut parts = Vec::with_capacity(input.parts.len());
        for (index, part) in input.parts.into_iter().enumerate() {
            parts.push(self.accept_part(caller, &message_id, index, part)?);
        }
        let mut message = ChannelMessage {
            uuid,
            channel: *channel_uuid,
            position: next_position,
            parts,
            sent_ms: self.now_ms(),
            seq: 0,
            sender: caller.to_owned(),
            stored_bytes: 0,
        };
        let size = message.measure();
        message.stored_bytes = size;
        if self.message_bytes.saturating_add(size) > self.limits.max_message_bytes {
            return Err(LayerError::rate_limit_exceeded(format!(
                "this app holds {} bytes of messages; {size} more would pass \
                 mock_layer.max_message_bytes ({}); delete some",
                self.message_bytes, self.limits.max_message_bytes
            )));
        }
        // Every check is behind us; from here on nothing fails.
        message.seq = self.next_seq();
        let Some(channel) = self.channels.by_uuid.get_mut(channel_uuid) else {
            return Err(LayerError::internal("channel vanished under the lock"));
        };
        channel.messages.push(uuid);
        channel.next_position += 1;
        let members: Vec<String> = channel.members.keys().cloned().collect();
        for content in message.parts.iter().filter_map(|p| p.content) {
            self.content.attach(&content, uuid);
        }
        self.message_bytes = self.message_bytes.saturating_add(size);
        let view = self.channel_message_view(&message);
        self.channels.messages.insert(uuid, message);
        self.messages_created.inc();
        let body = json!({
            "operation": "create",
            "object": self.object_ref("Message", &message_id),
            "data": view,
        });
        for user in &members {
            self.emit(user, PacketKind::Change, body.clone());
        }
        Ok(view)
    }

    /// A channel message of a channel the caller is a member of.
    pub fn channel_message_for(
        &self,
        caller: &str,
        channel_uuid: &Uuid,
        uuid: &Uuid,
    ) -> Result<&ChannelMessage, LayerError> {
        self.channel_for_member(caller, channel_uuid)?;
        self.channels
            .messages
            .get(uuid)
            .filter(|m| m.channel == *channel_uuid)
            .ok_or_else(|| {
                LayerError::not_found(format!(
                    "there is no message {} in {}",
                    object_id(Kind::Messages, uuid),
                    object_id(Kind::Channels, channel_uuid)
                ))
            })
    }

    /// `DELETE {channelMessage.url}`: its sender deletes it for everyone; every member
    /// hears it. Other members get 403 (a channel has no per-device deletion).
    pub fn delete_channel_message(
        &mut self,
        caller: &str,
        channel_uuid: &Uuid,
        uuid: &Uuid,
    ) -> Result<(), LayerError> {
        let message = self.channel_message_for(caller, channel_uuid, uuid)?;
        if message.sender != caller {
            return Err(LayerError::access_denied(format!(
                "only its sender may delete {}",
                message.id()
            )));
        }
        let id = message.id();
        let Some(message) = self.channels.messages.remove(uuid) else {
            return Ok(());
        };
        self.message_bytes = self.message_bytes.saturating_sub(message.stored_bytes);
        for content in message.parts.iter().filter_map(|p| p.content) {
            self.content.remove(&content);
        }
        let mut members = Vec::new();
        if let Some(channel) = self.channels.by_uuid.get_mut(channel_uuid) {
            channel.messages.retain(|m| m != uuid);
            members = channel.members.keys().cloned().collect();
        }
        let body = json!({
            "operation": "delete",
            "object": self.object_ref("Message", &id),
            "data": {"mode": "all_participants"},
        });
        for user in &members {
            self.emit(user, PacketKind::Change, body.clone());
        }
        Ok(())
    }

    /// `PUT {channel.url}/members/{user}`: anyone may join a channel; a member may add
    /// anyone. The newcomer's sockets get the channel's `create`, then every member's get
    /// the new Membership's `create`. Adding a member again changes nothing.
    pub fn add_channel_member(
        &mut self,
        caller: &str,
        channel_uuid: &Uuid,
        user: &str,
    ) -> Result<(), LayerError> {
        let channel = self.channel(channel_uuid)?;
        if user != caller && !channel.is_member(caller) {
            return Err(LayerError::access_denied(format!(
                "only a member of {} may add others to it",
                channel.id()
            )));
        }
        if channel.is_member(user) {
            return Ok(());
        }
        if channel.members.len() >= self.limits.max_channel_members {
            return Err(LayerError::invalid_property(
                "members",
                format!(
                    "{} has {} members, the most a channel may have \
                     (mock_layer.max_channel_members)",
                    channel.id(),
                    channel.members.len()
                ),
            ));
        }
        self.room_for_identities([user])?;
        self.provision_within_room(user);
        let member = Member {
            joined_ms: self.now_ms(),
            seq: self.next_seq(),
        };
        let Some(channel) = self.channels.by_uuid.get_mut(channel_uuid) else {
            return Err(LayerError::internal("channel vanished under the lock"));
        };
        channel.members.insert(user.to_owned(), member);
        let members: Vec<String> = channel.members.keys().cloned().collect();
        self.push_channel_create(channel_uuid, user);
        let Some(channel) = self.channels.by_uuid.get(channel_uuid) else {
            return Ok(());
        };
        let membership = self.membership_view(channel, user, &member);
        let body = json!({
            "operation": "create",
            "object": self.object_ref("Membership", &membership_id(channel, user)),
            "data": membership,
        });
        for member in &members {
            self.emit(member, PacketKind::Change, body.clone());
        }
        Ok(())
    }

    /// `DELETE {channel.url}/members/{user}`: a member leaves, or removes another. The one
    /// leaving gets the channel's `delete`, which takes it and its messages off their
    /// devices. The others get no packet: the XDK's Membership has no `members:delete`
    /// event, so a Membership `delete` only makes it log "ignored members:delete" (Layer's
    /// own clients never met one); their member queries see the change when they reload.
    /// A channel left empty stays (its name stays taken).
    pub fn remove_channel_member(
        &mut self,
        caller: &str,
        channel_uuid: &Uuid,
        user: &str,
    ) -> Result<(), LayerError> {
        let channel = self.channel_for_member(caller, channel_uuid)?;
        if !channel.is_member(user) {
            return Err(LayerError::not_found(format!(
                "{} is not a member of {}",
                identity_id(user),
                channel.id()
            )));
        }
        let channel_id = channel.id();
        if let Some(channel) = self.channels.by_uuid.get_mut(channel_uuid) {
            channel.members.remove(user);
        }
        let body = json!({
            "operation": "delete",
            "object": self.object_ref("Channel", &channel_id),
            "data": {"mode": "my_devices", "from_position": null},
        });
        self.emit(user, PacketKind::Change, body);
        Ok(())
    }

    /// The Client API's view of a channel. `membership` is the viewer's Membership, or null
    /// for a non-member (the XDK's `isCurrentParticipant`).
    pub fn channel_view(&self, channel: &Channel, viewer: &str) -> Value {
        let id = channel.id();
        let url = self.url_of(&id);
        let membership = channel
            .members
            .get(viewer)
            .map(|m| self.membership_view(channel, viewer, m));
        json!({
            "id": id,
            "url": url,
            "messages_url": format!("{url}/messages"),
            "members_url": format!("{url}/members"),
            "name": channel.name,
            "created_at": iso_ms(channel.created_ms),
            "metadata": channel.metadata,
            "membership": membership,
        })
    }

    /// A Membership (`layer:///channels/<uuid>/members/<user id>`), as the XDK's
    /// `membership.js` reads it: `channel.id`, `identity`, `role`, `joined_at`.
    pub fn membership_view(&self, channel: &Channel, user: &str, member: &Member) -> Value {
        let id = membership_id(channel, user);
        let channel_id = channel.id();
        json!({
            "id": id,
            "url": self.url_of(&id),
            "channel": {"id": channel_id, "url": self.url_of(&channel_id)},
            "identity": self.identity_basic(user),
            "role": MEMBER_ROLE,
            "joined_at": iso_ms(member.joined_ms),
        })
    }

    /// A channel message: `channel` where a conversation's message has `conversation`, and
    /// neither `recipient_status` nor `is_unread` (the XDK then counts it as read and never
    /// raises a notification for it). The same for every member.
    pub fn channel_message_view(&self, message: &ChannelMessage) -> Value {
        let id = message.id();
        let channel_id = object_id(Kind::Channels, &message.channel);
        let channel_url = self.url_of(&channel_id);
        let parts: Vec<Value> = message
            .parts
            .iter()
            .enumerate()
            .map(|(index, part)| self.part_view(&id, index, part))
            .collect();
        json!({
            "id": id,
            "url": format!("{channel_url}/messages/{}", message.uuid.hyphenated()),
            "position": message.position,
            "channel": {"id": channel_id, "url": channel_url},
            "parts": parts,
            "sent_at": iso_ms(message.sent_ms),
            "received_at": iso_ms(message.sent_ms),
            "sender": self.identity_basic(&message.sender),
        })
    }
}

/// `layer:///channels/<uuid>/members/<user id, percent-encoded>`: the id the XDK's
/// `channel.getMember(identityId)` builds.
pub fn membership_id(channel: &Channel, user: &str) -> String {
    format!("{}/members/{}", channel.id(), encode_user_id(user))
}
