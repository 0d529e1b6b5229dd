//! Who may see what: a caller's conversations and messages, 404 versus 403, visibility.

use super::*;

impl World {
    /// A conversation the caller takes part in: 404 if it does not exist or the caller was
    /// never in it, 403 if the caller left.
    pub fn conversation_for(&self, caller: &str, uuid: &Uuid) -> Result<&Conversation, LayerError> {
        let not_found = || {
            LayerError::not_found(format!(
                "there is no conversation {}",
                object_id(Kind::Conversations, uuid)
            ))
        };
        let conversation = self.conversations.get(uuid).ok_or_else(not_found)?;
        if conversation.unseen_by.contains(caller) {
            Err(not_found())
        } else if conversation.is_participant(caller) {
            Ok(conversation)
        } else if conversation.former.contains(caller) {
            Err(LayerError::access_denied(format!(
                "you are no longer a participant of {}",
                conversation.id()
            )))
        } else {
            Err(not_found())
        }
    }

    /// A message in a conversation the caller takes part in, not deleted for them.
    pub fn message_for(&self, caller: &str, uuid: &Uuid) -> Result<&Message, LayerError> {
        let not_found = || {
            LayerError::not_found(format!(
                "there is no message {}",
                object_id(Kind::Messages, uuid)
            ))
        };
        let message = self.messages.get(uuid).ok_or_else(not_found)?;
        let conversation = self
            .conversation_for(caller, &message.conversation)
            .map_err(|e| {
                if e.kind == ErrorKind::AccessDenied {
                    e
                } else {
                    not_found()
                }
            })?;
        if self.is_visible(conversation, message, caller) {
            Ok(message)
        } else {
            Err(not_found())
        }
    }

    pub fn is_visible(&self, conversation: &Conversation, message: &Message, viewer: &str) -> bool {
        !message.hidden_for.contains(viewer)
            && conversation
                .purged_up_to
                .get(viewer)
                .is_none_or(|up_to| message.position > *up_to)
    }

    /// The messages of a conversation the viewer can see, by ascending position.
    pub fn visible_messages<'a>(
        &'a self,
        conversation: &'a Conversation,
        viewer: &'a str,
    ) -> impl DoubleEndedIterator<Item = &'a Message> + 'a {
        conversation
            .messages
            .iter()
            .filter_map(|uuid| self.messages.get(uuid))
            .filter(move |m| self.is_visible(conversation, m, viewer))
    }

    /// The messages the viewer has yet to read: kept, not counted (see `tallies.rs`).
    pub fn unread_count(&self, conversation: &Conversation, viewer: &str) -> usize {
        self.tally(conversation, viewer).unread
    }
}
