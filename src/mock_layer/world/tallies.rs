//! Per conversation and viewer: how many messages they can see, how many of those are
//! unread, and the last of them — what `unread_message_count`, `total_message_count` and
//! `last_message` show, and what every message create pushes to each participant.
//!
//! Counting them from the history costs a walk of the whole conversation, and Layer's
//! conversations have no length limit, so a message create that counted would cost more with
//! every message before it. Instead the counts are kept: a message create and a receipt —
//! the hot paths — move them by one, O(1) whatever the history. The rarer changes that can
//! move them by more than one (mark all read, deletions, a purge, participants joining)
//! drop the counts they touch, and the next reader counts once from the history and keeps
//! the result. A conversation's counts appear on first use and go with it; an import or a
//! reset starts from none. A property test below checks the kept counts against a count
//! from the history after random sequences of every operation that moves them.

use super::*;

/// What one viewer sees of one conversation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    /// Messages the viewer can see (`total_message_count`).
    pub visible: usize,
    /// Of those, the ones the viewer has yet to read (`unread_message_count`).
    pub unread: usize,
    /// The last of them (`last_message`).
    pub last: Option<Uuid>,
}

/// Kept tallies, per conversation, per viewer.
pub(super) type Tallies = HashMap<Uuid, HashMap<String, Tally>>;

impl World {
    /// The viewer's tally of a conversation: kept, or counted from the history.
    pub fn tally(&self, conversation: &Conversation, viewer: &str) -> Tally {
        self.tallies
            .get(&conversation.uuid)
            .and_then(|by_viewer| by_viewer.get(viewer))
            .copied()
            .unwrap_or_else(|| self.count_tally(conversation, viewer))
    }

    /// The last message the viewer can see: kept, or found from the end of the history.
    pub fn last_visible<'a>(
        &'a self,
        conversation: &'a Conversation,
        viewer: &'a str,
    ) -> Option<&'a Message> {
        match self
            .tallies
            .get(&conversation.uuid)
            .and_then(|by_viewer| by_viewer.get(viewer))
        {
            Some(tally) => tally.last.and_then(|uuid| self.messages.get(&uuid)),
            None => self.visible_messages(conversation, viewer).next_back(),
        }
    }

    /// The viewer's tally, counted from the whole history: what the kept one must equal.
    pub(super) fn count_tally(&self, conversation: &Conversation, viewer: &str) -> Tally {
        let mut tally = Tally::default();
        for message in self.visible_messages(conversation, viewer) {
            tally.visible += 1;
            tally.unread += usize::from(message.is_unread_for(viewer));
            tally.last = Some(message.uuid);
        }
        tally
    }

    /// The viewer's kept tally of a conversation, counted first if it was not kept.
    pub(super) fn kept_tally(&mut self, conversation: &Uuid, viewer: &str) -> Tally {
        if let Some(tally) = self
            .tallies
            .get(conversation)
            .and_then(|by_viewer| by_viewer.get(viewer))
        {
            return *tally;
        }
        let Some(c) = self.conversations.get(conversation) else {
            return Tally::default();
        };
        let tally = self.count_tally(c, viewer);
        self.tallies
            .entry(*conversation)
            .or_default()
            .insert(viewer.to_owned(), tally);
        tally
    }

    /// A message was just added at the end of its conversation: every kept tally that sees it
    /// counts it. (Those not kept will count it from the history.)
    pub(super) fn tally_new_message(&mut self, uuid: &Uuid) {
        let Some(message) = self.messages.get(uuid) else {
            return;
        };
        let Some(by_viewer) = self.tallies.get_mut(&message.conversation) else {
            return;
        };
        for (viewer, tally) in by_viewer.iter_mut() {
            // A new message is past any purge, so only `hidden_for` can keep it from a viewer.
            if !message.hidden_for.contains(viewer) {
                tally.visible += 1;
                tally.unread += usize::from(message.is_unread_for(viewer));
                tally.last = Some(message.uuid);
            }
        }
    }

    /// The reader's status of a message they can see rose to `read` from `was`.
    pub(super) fn tally_read(&mut self, message: &Message, reader: &str, was: Status) {
        let was_unread = message.sender != reader && was != Status::Read;
        if let Some(tally) = self
            .tallies
            .get_mut(&message.conversation)
            .and_then(|by_viewer| by_viewer.get_mut(reader))
            && was_unread
        {
            tally.unread = tally.unread.saturating_sub(1);
        }
    }

    /// Drops the viewer's kept tally of a conversation: it changed by more than one message.
    pub(super) fn forget_tally(&mut self, conversation: &Uuid, viewer: &str) {
        if let Some(by_viewer) = self.tallies.get_mut(conversation) {
            by_viewer.remove(viewer);
        }
    }

    /// Drops every kept tally of a conversation.
    pub(super) fn forget_tallies(&mut self, conversation: &Uuid) {
        self.tallies.remove(conversation);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const USERS: [&str; 4] = ["ann", "bob", "cat", "dan"];

    fn world() -> World {
        super::super::test_world()
    }

    /// One step of a random history; indexes pick users, conversations and messages.
    #[derive(Debug, Clone)]
    enum Op {
        Create(usize, Vec<usize>),
        Send(usize, usize),
        Receipt(usize, usize, bool),
        MarkAllRead(usize, usize, Option<u64>),
        DeleteMessageForMe(usize, usize),
        DeleteMessageForAll(usize, usize),
        PurgeConversation(usize, usize),
        Add(usize, usize),
        Remove(usize, usize),
        Block(usize, usize),
        Read(usize, usize),
    }

    fn op() -> impl Strategy<Value = Op> {
        let user = 0..USERS.len();
        prop_oneof![
            1 => (user.clone(), prop::collection::vec(0..USERS.len(), 0..4))
                .prop_map(|(u, others)| Op::Create(u, others)),
            6 => (user.clone(), 0..8usize).prop_map(|(u, c)| Op::Send(u, c)),
            3 => (user.clone(), 0..64usize, any::<bool>()).prop_map(|(u, m, r)| Op::Receipt(u, m, r)),
            1 => (user.clone(), 0..8usize, prop::option::of(0..12u64))
                .prop_map(|(u, c, p)| Op::MarkAllRead(u, c, p)),
            1 => (user.clone(), 0..64usize).prop_map(|(u, m)| Op::DeleteMessageForMe(u, m)),
            1 => (user.clone(), 0..64usize).prop_map(|(u, m)| Op::DeleteMessageForAll(u, m)),
            1 => (user.clone(), 0..8usize).prop_map(|(u, c)| Op::PurgeConversation(u, c)),
            1 => (user.clone(), 0..8usize).prop_map(|(u, c)| Op::Add(u, c)),
            1 => (user.clone(), 0..8usize).prop_map(|(u, c)| Op::Remove(u, c)),
            1 => (user.clone(), user.clone()).prop_map(|(a, b)| Op::Block(a, b)),
            2 => (user.clone(), 0..8usize).prop_map(|(u, c)| Op::Read(u, c)),
        ]
    }

    fn text(body: &str) -> NewMessage {
        NewMessage {
            uuid: None,
            parts: vec![NewPart {
                id: None,
                mime_type: "text/plain".into(),
                body: Some(body.into()),
                encoding: None,
                content: None,
                size: body.len() as u64,
            }],
            notification: None,
            from_server: false,
        }
    }

    /// Applies one step; refusals (a user not in the conversation, a message they cannot
    /// see…) are part of the history too, and must leave the tallies right.
    fn apply(world: &mut World, conversations: &mut Vec<Uuid>, messages: &[Uuid], op: Op) {
        let pick = |list: &[Uuid], i: usize| (!list.is_empty()).then(|| list[i % list.len()]);
        match op {
            Op::Create(u, others) => {
                let input = NewConversation {
                    uuid: None,
                    participants: others.iter().map(|o| USERS[*o].to_owned()).collect(),
                    distinct: false,
                    metadata: None,
                    significance: None,
                };
                if world.create_conversation(USERS[u], input).is_ok() {
                    conversations.clear();
                    conversations.extend(world.conversations.keys().copied());
                    conversations.sort();
                }
            }
            Op::Send(u, c) => {
                if let Some(c) = pick(conversations, c) {
                    let _ = world.create_message(USERS[u], &c, text("hi"));
                }
            }
            Op::Receipt(u, m, read) => {
                if let Some(m) = pick(messages, m) {
                    let kind = if read {
                        ReceiptKind::Read
                    } else {
                        ReceiptKind::Delivery
                    };
                    let _ = world.post_receipt(USERS[u], &m, kind);
                }
            }
            Op::MarkAllRead(u, c, position) => {
                if let Some(c) = pick(conversations, c) {
                    let _ = world.mark_all_read(USERS[u], &c, position);
                }
            }
            Op::DeleteMessageForMe(u, m) => {
                if let Some(m) = pick(messages, m) {
                    let mode = DeleteMode::MyDevices { leave: false };
                    let _ = world.delete_message(USERS[u], &m, mode);
                }
            }
            Op::DeleteMessageForAll(u, m) => {
                if let Some(m) = pick(messages, m) {
                    let _ = world.delete_message(USERS[u], &m, DeleteMode::AllParticipants);
                }
            }
            Op::PurgeConversation(u, c) => {
                if let Some(c) = pick(conversations, c) {
                    let mode = DeleteMode::MyDevices { leave: false };
                    let _ = world.delete_conversation(USERS[u], &c, mode);
                }
            }
            Op::Add(u, c) => {
                if let Some(c) = pick(conversations, c)
                    && let Some(before) = world.conversations.get(&c).cloned()
                {
                    let op = PatchOp::AddParticipant(USERS[u].to_owned());
                    let _ = world.apply_conversation_patch(before, &c, vec![op]);
                }
            }
            Op::Remove(u, c) => {
                if let Some(c) = pick(conversations, c) {
                    let op = PatchOp::RemoveParticipant(USERS[u].to_owned());
                    let _ = world.patch_conversation(USERS[u], &c, vec![op]);
                }
            }
            Op::Block(a, b) => {
                if a != b {
                    let _ = world.block(USERS[a], USERS[b]);
                }
            }
            Op::Read(u, c) => {
                // What the views read (and so what the next change starts from).
                if let Some(c) = pick(conversations, c) {
                    let _ = world.kept_tally(&c, USERS[u]);
                }
            }
        }
    }

    fn check(world: &World) -> Result<(), TestCaseError> {
        for conversation in world.conversations.values() {
            for viewer in USERS {
                let counted = world.count_tally(conversation, viewer);
                prop_assert_eq!(world.tally(conversation, viewer), counted, "{}", viewer);
                prop_assert_eq!(world.unread_count(conversation, viewer), counted.unread);
                prop_assert_eq!(
                    world.last_visible(conversation, viewer).map(|m| m.uuid),
                    counted.last
                );
            }
        }
        // Nothing is kept for a conversation that is gone.
        for uuid in world.tallies.keys() {
            prop_assert!(world.conversations.contains_key(uuid));
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

        #[test]
        fn kept_tallies_equal_a_count_from_the_history(ops in prop::collection::vec(op(), 1..80)) {
            let mut world = world();
            let mut conversations = Vec::new();
            for op in ops {
                let mut messages: Vec<Uuid> = world.messages.keys().copied().collect();
                messages.sort();
                apply(&mut world, &mut conversations, &messages, op);
                conversations.retain(|c| world.conversations.contains_key(c));
                check(&world)?;
            }
        }
    }
}
