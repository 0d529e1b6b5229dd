//! Delayed messages (Platform API `schedule`, §C.2 and §E.7 of the Platform API notes):
//! kept until the world's clock reaches their time, announced by a typing indicator for
//! their last seconds, then sent by the same operation as any other message. The world's
//! clock is the wall clock plus an offset the test controls can advance
//! (`POST /_mock/clock`), so a test moves time instead of waiting for it.

use super::*;

/// Most delayed messages one app may hold at once.
const MAX_SCHEDULED: usize = 10_000;

/// How often a running typing indicator is sent again: listeners drop a typing state after
/// 6 s, and Layer refreshed it at least every 2.5 s (§E.7).
const TYPING_REFRESH_MS: i64 = 2_500;

#[derive(Debug)]
pub struct Scheduled {
    pub uuid: Uuid,
    pub conversation: Uuid,
    pub sender: Sender,
    pub input: NewMessage,
    pub due_ms: i64,
    /// When the typing indicator starts, if one was asked for.
    pub typing_from_ms: Option<i64>,
    /// When the typing indicator was last sent, once it has started.
    pub typing_sent_ms: Option<i64>,
}

impl World {
    /// Keeps a message to send `delay_ms` from now (a typing indicator for the last
    /// `typing_ms`). What can be checked now is: the conversation, the sender, the ID.
    pub fn schedule_message(
        &mut self,
        sender: Sender,
        conversation: &Uuid,
        mut input: NewMessage,
        delay_ms: i64,
        typing_ms: Option<i64>,
    ) -> Result<Uuid, LayerError> {
        let found = self.conversations.get(conversation).ok_or_else(|| {
            LayerError::not_found(format!(
                "The referenced conversation cannot be found ({}).",
                object_id(Kind::Conversations, conversation)
            ))
        })?;
        if let Some(user) = sender.user()
            && !found.is_participant(user)
        {
            return Err(LayerError::invalid_property(
                "sender.user_id",
                format!("{user:?} is not a participant of {}", found.id()),
            ));
        }
        if self.scheduled.len() >= MAX_SCHEDULED {
            return Err(LayerError::rate_limit_exceeded(format!(
                "this app holds {MAX_SCHEDULED} delayed messages, the most the emulator keeps"
            )));
        }
        let uuid = input.uuid.unwrap_or_else(Uuid::new_v4);
        if self.messages.contains_key(&uuid) || self.scheduled.iter().any(|s| s.uuid == uuid) {
            return Err(LayerError::new(
                ErrorKind::IdInUse,
                format!(
                    "the message ID {} is already in use",
                    object_id(Kind::Messages, &uuid)
                ),
            ));
        }
        input.uuid = Some(uuid);
        let now = self.now_ms();
        let due_ms = now.saturating_add(delay_ms);
        self.scheduled.push(Scheduled {
            uuid,
            conversation: *conversation,
            sender,
            input,
            due_ms,
            typing_from_ms: typing_ms.map(|t| due_ms.saturating_sub(t)),
            typing_sent_ms: None,
        });
        self.deliver_due();
        Ok(uuid)
    }

    /// Starts (or refreshes, every 2.5 s of the world's clock) the typing indicators and sends
    /// the messages whose time has come, in order.
    /// A message whose conversation was deleted, or whose sender left, is dropped.
    pub fn deliver_due(&mut self) {
        if self.scheduled.is_empty() {
            return;
        }
        let now = self.now_ms();
        let starting: Vec<(Uuid, Sender)> = self
            .scheduled
            .iter_mut()
            .filter(|s| s.typing_from_ms.is_some_and(|t| t <= now))
            .filter(|s| {
                s.typing_sent_ms
                    .is_none_or(|sent| now.saturating_sub(sent) >= TYPING_REFRESH_MS)
            })
            .map(|s| {
                s.typing_sent_ms = Some(now);
                (s.conversation, s.sender.clone())
            })
            .collect();
        for (conversation, sender) in starting {
            self.signal_typing(&conversation, &sender, "started");
        }
        let mut due: Vec<Scheduled> = Vec::new();
        let mut index = 0;
        while index < self.scheduled.len() {
            if self.scheduled[index].due_ms <= now {
                due.push(self.scheduled.remove(index));
            } else {
                index += 1;
            }
        }
        due.sort_by_key(|s| s.due_ms);
        for s in due {
            if s.typing_sent_ms.is_some() {
                self.signal_typing(&s.conversation, &s.sender, "finished");
            }
            if let Err((error, _)) = self.send_message(&s.sender, &s.conversation, s.input) {
                tracing::debug!(error = %error, "a delayed message could not be sent");
            }
        }
    }

    /// A typing indicator from a (possibly named) sender to the other participants.
    fn signal_typing(&mut self, conversation: &Uuid, sender: &Sender, action: &str) {
        let Some(found) = self.conversations.get(conversation).cloned() else {
            return;
        };
        let sender_view = match sender {
            Sender::User(user) => self.identity_basic(user),
            Sender::Name(name) => json!({
                "id": null, "url": null, "user_id": null,
                "display_name": name, "avatar_url": null, "name": name,
            }),
        };
        let signal = Outbound {
            kind: PacketKind::Signal,
            min_api: ClientApi::V2,
            at_ms: self.now_ms(),
            body: json_text(&json!({
                "type": "typing_indicator",
                "object": self.object_ref("Conversation", &found.id()),
                "data": {"sender": sender_view, "action": action},
            })),
        };
        for user in found
            .audience()
            .filter(|u| sender.user() != Some(u.as_str()))
        {
            if sender
                .user()
                .is_some_and(|s| self.blocks(user, s) || self.blocks(s, user))
            {
                continue;
            }
            self.send(user, &signal);
        }
    }

    /// Moves the world's clock forward (never back) and sends what became due.
    pub fn advance_clock(&mut self, ms: i64) {
        self.clock_offset_ms = self.clock_offset_ms.saturating_add(ms.max(0));
        self.deliver_due();
    }
}
