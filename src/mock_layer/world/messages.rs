//! Messages: sending, parts, receipts, unread counts, deletion, and the push log.

use super::*;

/// A recipient's state for one message; it only ever moves up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Status {
    Sent,
    Delivered,
    Read,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Sent => "sent",
            Status::Delivered => "delivered",
            Status::Read => "read",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Part {
    /// The client's part ID (the XDK sends its own), else `<message id>/parts/<index>`.
    pub id: Option<String>,
    pub mime_type: String,
    pub body: Option<String>,
    pub encoding: Option<String>,
    pub content: Option<Uuid>,
    pub size: u64,
    /// When the server last added or changed it (3.0 parts API); `None`: as sent.
    pub updated_ms: Option<i64>,
}

/// What every stored object is counted for beyond its text, in the rough measure of memory
/// that `max_message_bytes` caps.
const MEASURE_OVERHEAD: usize = 64;

/// Roughly what a message of any kind takes for its sender and parts (rich content is
/// counted separately).
pub(super) fn measure_sent(sender: &str, parts: &[Part]) -> usize {
    let parts: usize = parts
        .iter()
        .map(|p| {
            MEASURE_OVERHEAD
                + p.mime_type.len()
                + p.body.as_ref().map_or(0, String::len)
                + p.id.as_ref().map_or(0, String::len)
        })
        .sum();
    MEASURE_OVERHEAD + sender.len() + parts
}

#[derive(Debug, Clone)]
pub struct Message {
    pub uuid: Uuid,
    pub conversation: Uuid,
    pub position: u64,
    pub parts: Vec<Part>,
    pub sent_ms: i64,
    /// Where its sending falls among everything the world did (see [`World::next_seq`]).
    pub seq: u64,
    /// The sending user's ID; empty for a message sent under a name (`sender_name`).
    pub sender: String,
    /// The name a server sent it under (Platform API `sender.name`): no user sent it.
    pub sender_name: Option<String>,
    /// Every participant at sending time, by user ID.
    pub recipient_status: BTreeMap<String, Status>,
    pub notification: Option<Value>,
    /// Users who deleted it for their devices.
    pub hidden_for: BTreeSet<String>,
    /// What it counts for against `max_message_bytes`, measured once when it is sent, so
    /// deleting it gives back exactly that.
    pub stored_bytes: usize,
    /// When the server last changed its parts (3.0 parts API); `None`: never.
    pub updated_ms: Option<i64>,
}

impl Message {
    pub fn id(&self) -> String {
        object_id(Kind::Messages, &self.uuid)
    }

    /// Roughly what it takes in memory: its parts, notification and statuses (rich content
    /// is counted separately). Statuses added later, for participants who join, are not
    /// counted; there are at most `max_participants` per join.
    pub(super) fn measure(&self) -> usize {
        let statuses: usize = self
            .recipient_status
            .keys()
            .map(|u| MEASURE_OVERHEAD + u.len())
            .sum();
        let notification = self
            .notification
            .as_ref()
            .map_or(0, |n| n.to_string().len());
        measure_sent(&self.sender, &self.parts) + statuses + notification
    }

    /// Whether `viewer` has yet to read it — the one rule behind both `is_unread` and
    /// `unread_message_count`. A viewer without a status counts as having read it, as the
    /// SDK reads a missing `is_unread`; participants always have one (see
    /// [`World::patch_conversation`]).
    pub fn is_unread_for(&self, viewer: &str) -> bool {
        self.sender != viewer
            && self
                .recipient_status
                .get(viewer)
                .is_some_and(|status| *status != Status::Read)
    }
}

/// Who a message is from: a user (an SDK's session, or the Platform API's
/// `sender.user_id`), or a name the server chose (`sender.name`, a system sender).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sender {
    User(String),
    Name(String),
}

impl Sender {
    /// The sending user, if a user sent it.
    pub fn user(&self) -> Option<&str> {
        match self {
            Sender::User(user) => Some(user),
            Sender::Name(_) => None,
        }
    }
}

impl World {
    /// `Message.create` / `POST /conversations/{uuid}/messages`. Returns the sender's view.
    pub fn create_message(
        &mut self,
        caller: &str,
        conversation_uuid: &Uuid,
        input: NewMessage,
    ) -> Result<Value, LayerError> {
        self.conversation_for(caller, conversation_uuid)?;
        match self.send_message(&Sender::User(caller.to_owned()), conversation_uuid, input) {
            Ok(uuid) => match self.messages.get(&uuid) {
                Some(message) => Ok(self.message_view(message, caller)),
                None => Err(LayerError::internal("message vanished under the lock")),
            },
            Err((error, Some(uuid))) => {
                let mut error = error;
                if let Ok(message) = self.message_for(caller, &uuid) {
                    error = error.with_data(self.message_view(message, caller));
                }
                Err(error)
            }
            Err((error, None)) => Err(error),
        }
    }

    /// Sends a message into a conversation, from a user or under a name — the one path both
    /// the Client API and the Platform API take, so both reach the same sockets the same way.
    /// The caller has checked the sender may see the conversation; a user who is not a
    /// participant is refused here. On an ID in use, the error comes with that ID.
    /// Participants who block the sending user, or whom the sending user blocks, never see
    /// the message (§E.11: neither sees the other's messages, so in a one-to-one
    /// conversation nothing passes either way).
    pub fn send_message(
        &mut self,
        sender: &Sender,
        conversation_uuid: &Uuid,
        input: NewMessage,
    ) -> Result<Uuid, (LayerError, Option<Uuid>)> {
        // Borrowed, not copied: a conversation's history can be long, and nothing here needs
        // it — only who takes part, and where the next message goes.
        let conversation = self.conversations.get(conversation_uuid).ok_or_else(|| {
            (
                LayerError::not_found(format!(
                    "there is no conversation {}",
                    object_id(Kind::Conversations, conversation_uuid)
                )),
                None,
            )
        })?;
        if let Some(user) = sender.user()
            && !conversation.is_participant(user)
        {
            return Err((
                LayerError::invalid_property(
                    "sender.user_id",
                    format!("{user:?} is not a participant of {}", conversation.id()),
                ),
                None,
            ));
        }
        let hidden_for: BTreeSet<String> = conversation
            .participants
            .iter()
            .filter(|p| match sender.user() {
                Some(user) => {
                    *p != user
                        && (self.blocks(p, user)
                            || self.blocks(user, p)
                            || conversation.unseen_by.contains(*p))
                }
                None => conversation.unseen_by.contains(*p),
            })
            .cloned()
            .collect();
        let participants = conversation.participants.clone();
        let position = conversation.next_position;
        let conversation_id = conversation.id();
        let uuid = input.uuid.unwrap_or_else(Uuid::new_v4);
        if let Some(existing) = self.messages.get(&uuid) {
            let error = LayerError::new(
                ErrorKind::IdInUse,
                format!("the message ID {} is already in use", existing.id()),
            );
            return Err((error, Some(uuid)));
        }
        if self.channels.messages.contains_key(&uuid) {
            let error = LayerError::new(
                ErrorKind::IdInUse,
                format!(
                    "the message ID {} is already in use by a channel message",
                    object_id(Kind::Messages, &uuid)
                ),
            );
            return Err((error, None));
        }
        let caller = sender.user().unwrap_or_default();
        // Content belongs to whoever uploaded it: the user, or the server (owner "").
        let content_owner = if input.from_server { "" } else { caller };
        self.check_message_room().map_err(|e| (e, None))?;
        let message_id = object_id(Kind::Messages, &uuid);
        let mut parts = Vec::with_capacity(input.parts.len());
        for (index, part) in input.parts.into_iter().enumerate() {
            parts.push(
                self.accept_part(content_owner, &message_id, index, part)
                    .map_err(|e| (e, None))?,
            );
        }
        // An answer to another message (XDK response-v2) and initial response states are
        // read now, so a bad one refuses the message before anything changes.
        let response = self
            .parse_response(caller, conversation_uuid, &parts)
            .map_err(|e| (e, None))?;
        let summaries = self
            .initial_summaries(&message_id, &parts)
            .map_err(|e| (e, None))?;
        parts.extend(summaries);
        let now = self.now_ms();
        let recipient_status = participants
            .iter()
            .map(|p| {
                (
                    p.clone(),
                    if p == caller {
                        Status::Read
                    } else {
                        Status::Sent
                    },
                )
            })
            .collect();
        let mut message = Message {
            uuid,
            conversation: *conversation_uuid,
            position,
            parts,
            sent_ms: now,
            // Numbered once it is certain to be kept.
            seq: 0,
            sender: caller.to_owned(),
            sender_name: match sender {
                Sender::Name(name) => Some(name.clone()),
                Sender::User(_) => None,
            },
            recipient_status,
            notification: input.notification.clone(),
            hidden_for,
            stored_bytes: 0,
            updated_ms: None,
        };
        let size = message.measure();
        message.stored_bytes = size;
        if self.message_bytes.saturating_add(size) > self.limits.max_message_bytes {
            return Err((
                LayerError::rate_limit_exceeded(format!(
                    "this app holds {} bytes of messages; {size} more would pass \
                     mock_layer.max_message_bytes ({}); delete some",
                    self.message_bytes, self.limits.max_message_bytes
                )),
                None,
            ));
        }
        // Every check is behind us; from here on nothing fails.
        message.seq = self.next_seq();
        let Some(c) = self.conversations.get_mut(conversation_uuid) else {
            return Err((
                LayerError::internal("conversation vanished under the lock"),
                None,
            ));
        };
        c.messages.push(uuid);
        c.next_position += 1;
        // A conversation deleted "for my devices" comes back with its next message — for
        // those who see that message.
        let reappearing: Vec<String> = c
            .hidden
            .iter()
            .filter(|u| !message.hidden_for.contains(*u))
            .cloned()
            .collect();
        for user in &reappearing {
            c.hidden.remove(user);
        }
        for content in message.parts.iter().filter_map(|p| p.content) {
            self.content.attach(&content, uuid);
        }
        self.message_bytes = self.message_bytes.saturating_add(size);
        let receivers: Vec<String> = participants
            .into_iter()
            .filter(|p| !message.hidden_for.contains(p))
            .collect();
        self.messages.insert(uuid, message);
        self.tally_new_message(&uuid);
        self.messages_created.inc();
        for user in &reappearing {
            self.push_conversation_create(conversation_uuid, Some(user));
        }
        let conversation_url = self.url_of(&conversation_id);
        // The receivers' views of the message differ only in `is_unread`: each variant is
        // rendered and serialised once, and their sockets and logs share the text.
        let creates: Vec<Arc<str>> = match self.messages.get(&uuid) {
            Some(message) => {
                let mut variants: [Option<Arc<str>>; 2] = [None, None];
                receivers
                    .iter()
                    .map(|user| {
                        variants[usize::from(message.is_unread_for(user))]
                            .get_or_insert_with(|| self.message_create_text(message, user))
                            .clone()
                    })
                    .collect()
            }
            None => Vec::new(),
        };
        for (user, text) in receivers.iter().zip(creates) {
            self.emit_text(user, PacketKind::Change, text);
        }
        // After the create, so the SDK can resolve `last_message` by id. Receivers with the
        // same unread count get the same text.
        let mut updates: Vec<(usize, Arc<str>)> = Vec::new();
        for user in &receivers {
            let unread = self.kept_tally(conversation_uuid, user).unread;
            let text = match updates.iter().find(|(count, _)| *count == unread) {
                Some((_, text)) => text.clone(),
                None => {
                    let text = World::conversation_update_text(
                        &conversation_id,
                        &conversation_url,
                        &message_id,
                        unread,
                    );
                    updates.push((unread, text.clone()));
                    text
                }
            };
            self.emit_text(user, PacketKind::Change, text);
        }
        if let Some(response) = response {
            self.apply_response(caller, response);
        }
        if let Some(notification) = input.notification {
            self.log_push(Notification {
                at_ms: now,
                message: message_id,
                conversation: conversation_id,
                sender: caller.to_owned(),
                recipients: receivers.iter().filter(|p| *p != caller).cloned().collect(),
                notification,
                badges: Vec::new(),
            });
        }
        let actor = match sender {
            Sender::User(user) => Actor::User(user.clone()),
            Sender::Name(name) => Actor::Name(name.clone()),
        };
        self.record_event(EventKind::MessageSent, Some(actor), |w| {
            w.message_subject(&uuid)
        });
        Ok(uuid)
    }

    /// 429 when the app holds as many messages as the emulator keeps.
    fn check_message_room(&self) -> Result<(), LayerError> {
        if self.held_messages() >= self.limits.max_messages {
            return Err(LayerError::rate_limit_exceeded(format!(
                "this app holds {} messages, announcements and channel messages, the most \
                 the emulator keeps (mock_layer.max_messages); delete some",
                self.held_messages()
            )));
        }
        Ok(())
    }

    pub(super) fn accept_part(
        &self,
        caller: &str,
        message_id: &str,
        index: usize,
        part: NewPart,
    ) -> Result<Part, LayerError> {
        if let Some(id) = &part.id
            && !id.starts_with(&format!("{message_id}/parts/"))
        {
            return Err(LayerError::invalid_property(
                "parts",
                format!("parts[{index}].id {id:?} must start with {message_id}/parts/"),
            ));
        }
        let (content, size) = match part.content {
            None => (None, part.size),
            Some(content_uuid) => {
                let content = self
                    .content
                    .get(&content_uuid)
                    .filter(|c| c.owner == caller)
                    .ok_or_else(|| {
                        LayerError::invalid_property(
                            "parts",
                            format!(
                                "parts[{index}].content.id {} is not content you created \
                                 with POST /content",
                                object_id(Kind::Content, &content_uuid)
                            ),
                        )
                    })?;
                let Some(bytes) = &content.bytes else {
                    return Err(LayerError::invalid_property(
                        "parts",
                        format!(
                            "parts[{index}].content {} has not been uploaded yet (PUT its upload_url first)",
                            object_id(Kind::Content, &content_uuid)
                        ),
                    ));
                };
                if content.attached_to.is_some() {
                    return Err(LayerError::invalid_property(
                        "parts",
                        format!(
                            "parts[{index}].content {} already belongs to another message",
                            object_id(Kind::Content, &content_uuid)
                        ),
                    ));
                }
                (Some(content_uuid), bytes.len() as u64)
            }
        };
        Ok(Part {
            id: part.id,
            mime_type: part.mime_type,
            body: part.body,
            encoding: part.encoding,
            content,
            size,
            updated_ms: None,
        })
    }

    /// Removes a conversation nobody can see any more, with its messages and their content.
    pub(super) fn forget_conversation(&mut self, uuid: &Uuid) {
        self.forget_tallies(uuid);
        if let Some(conversation) = self.conversations.remove(uuid) {
            for message in &conversation.messages {
                self.forget_message(message);
            }
        }
    }

    /// Removes a message gone for everyone, and the rich content it used.
    pub(super) fn forget_message(&mut self, uuid: &Uuid) {
        if let Some(message) = self.messages.remove(uuid) {
            self.message_bytes = self.message_bytes.saturating_sub(message.stored_bytes);
            for content in message.parts.iter().filter_map(|p| p.content) {
                self.content.remove(&content);
            }
        }
    }

    /// `DELETE /messages/{uuid}?mode=…`.
    pub fn delete_message(
        &mut self,
        caller: &str,
        uuid: &Uuid,
        mode: DeleteMode,
    ) -> Result<(), LayerError> {
        let message = self.message_for(caller, uuid)?.clone();
        let object = self.object_ref("Message", &message.id());
        match mode {
            DeleteMode::AllParticipants => self.destroy_message(&message),
            DeleteMode::MyDevices { .. } => {
                if let Some(m) = self.messages.get_mut(uuid) {
                    m.hidden_for.insert(caller.to_owned());
                }
                self.forget_tally(&message.conversation, caller);
                let body = json!({"operation": "delete", "object": object, "data": {"mode": "my_devices"}});
                self.emit(caller, PacketKind::Change, body);
            }
        }
        Ok(())
    }

    /// Deletes a message for every participant, and tells them.
    pub fn destroy_message(&mut self, message: &Message) {
        self.record_event(EventKind::MessageDeleted, None, |w| {
            w.message_subject(&message.uuid)
        });
        self.forget_message(&message.uuid);
        self.forget_tallies(&message.conversation);
        let Some(c) = self.conversations.get_mut(&message.conversation) else {
            return;
        };
        if let Some(index) = c.messages.iter().rposition(|m| *m == message.uuid) {
            c.messages.remove(index);
        }
        let audience: Vec<String> = c.audience().cloned().collect();
        let conversation_id = c.id();
        let conversation_ref = self.object_ref("Conversation", &conversation_id);
        let object = self.object_ref("Message", &message.id());
        let body = json_text(
            &json!({"operation": "delete", "object": object, "data": {"mode": "all_participants"}}),
        );
        for user in &audience {
            self.emit_text(user, PacketKind::Change, body.clone());
        }
        // Each viewer's last message and unread count may have changed with it.
        for user in &audience {
            let tally = self.kept_tally(&message.conversation, user);
            let last = match tally.last {
                Some(last) => {
                    json!({"operation": "set", "property": "last_message", "id": object_id(Kind::Messages, &last)})
                }
                None => json!({"operation": "set", "property": "last_message", "value": null}),
            };
            let body = json!({
                "operation": "update",
                "object": conversation_ref,
                "data": [
                    last,
                    {"operation": "set", "property": "unread_message_count", "value": tally.unread},
                ],
            });
            self.emit(user, PacketKind::Change, body);
        }
    }

    /// `POST /messages/{uuid}/receipts`: statuses only go up; a change is pushed to every
    /// participant, and a read also updates the reader's unread count.
    pub fn post_receipt(
        &mut self,
        caller: &str,
        uuid: &Uuid,
        kind: ReceiptKind,
    ) -> Result<(), LayerError> {
        let message = self.message_for(caller, uuid)?.clone();
        let wanted = match kind {
            ReceiptKind::Delivery => Status::Delivered,
            ReceiptKind::Read => Status::Read,
        };
        let Some(current) = message.recipient_status.get(caller).copied() else {
            // Only a participant can get here, and participants have a status for every
            // message they can see; without one it counts as read, so there is nothing to raise.
            return Ok(());
        };
        if wanted <= current {
            return Ok(());
        }
        if let Some(m) = self.messages.get_mut(uuid) {
            m.recipient_status.insert(caller.to_owned(), wanted);
        }
        if wanted == Status::Read {
            self.tally_read(&message, caller, current);
        }
        self.push_status_change(&message, caller, wanted);
        if wanted == Status::Read {
            self.push_unread_count(&message.conversation, caller);
        }
        Ok(())
    }

    pub(super) fn push_status_change(&mut self, message: &Message, reader: &str, status: Status) {
        let kind = match status {
            Status::Read => Some(EventKind::MessageRead),
            Status::Delivered => Some(EventKind::MessageDelivered),
            _ => None,
        };
        if let Some(kind) = kind {
            self.record_event(kind, Some(Actor::User(reader.to_owned())), |w| {
                w.message_subject(&message.uuid)
            });
        }
        let Some(conversation) = self.conversations.get(&message.conversation) else {
            return;
        };
        let audience: Vec<String> = conversation.audience().cloned().collect();
        let body = json_text(&json!({
            "operation": "update",
            "object": self.object_ref("Message", &message.id()),
            "data": [{
                "operation": "set",
                "property": format!("recipient_status.{}", escape_patch_key(&identity_id(reader))),
                "value": status.as_str(),
            }],
        }));
        for user in &audience {
            self.emit_text(user, PacketKind::Change, body.clone());
        }
    }

    pub(super) fn push_unread_count(&mut self, conversation_uuid: &Uuid, user: &str) {
        if !self.conversations.contains_key(conversation_uuid) {
            return;
        }
        let unread = self.kept_tally(conversation_uuid, user).unread;
        let body = json!({
            "operation": "update",
            "object": self.object_ref("Conversation", &object_id(Kind::Conversations, conversation_uuid)),
            "data": [{"operation": "set", "property": "unread_message_count", "value": unread}],
        });
        self.emit(user, PacketKind::Change, body);
    }

    /// `POST /conversations/{uuid}/mark_all_read`: every message up to `position` (all if
    /// `None`) becomes read for the caller.
    pub fn mark_all_read(
        &mut self,
        caller: &str,
        uuid: &Uuid,
        position: Option<u64>,
    ) -> Result<(), LayerError> {
        let conversation = self.conversation_for(caller, uuid)?;
        let up_to = position.unwrap_or(conversation.next_position.saturating_sub(1));
        let audience: Vec<String> = conversation.audience().cloned().collect();
        let id = conversation.id();
        // The messages up to `up_to` are a prefix of the history, by ascending position.
        let end = conversation
            .messages
            .partition_point(|m| self.messages.get(m).is_none_or(|m| m.position <= up_to));
        if let Some(c) = self.conversations.get(uuid) {
            for message_uuid in &c.messages[..end] {
                if let Some(m) = self.messages.get_mut(message_uuid)
                    && let Some(status) = m.recipient_status.get_mut(caller)
                {
                    *status = Status::Read;
                }
            }
        }
        self.forget_tally(uuid, caller);
        let body = json_text(&json!({
            "method": "Conversation.mark_all_read",
            "object": self.object_ref("Conversation", &id),
            "data": {"position": up_to, "identity": self.identity_basic(caller)},
        }));
        for user in &audience {
            self.emit_text(user, PacketKind::Operation, body.clone());
        }
        self.push_unread_count(uuid, caller);
        Ok(())
    }
}
