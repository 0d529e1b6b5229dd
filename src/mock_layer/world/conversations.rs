//! Conversations: create (distinct or not), Layer-Patch edits of participants and metadata, delete.

use super::*;

#[derive(Debug, Clone)]
pub struct Conversation {
    pub uuid: Uuid,
    pub created_ms: i64,
    /// Where its creation falls among everything the world did (see [`World::next_seq`]).
    pub created_seq: u64,
    /// User IDs, in the order they joined.
    pub participants: Vec<String>,
    pub distinct: bool,
    pub metadata: Map<String, Value>,
    /// Message UUIDs by ascending position.
    pub messages: Vec<Uuid>,
    pub next_position: u64,
    /// Users who left or were removed: they get 403, not 404.
    pub former: BTreeSet<String>,
    /// Users who deleted it for their devices without leaving: not listed until a new
    /// message arrives.
    pub hidden: BTreeSet<String>,
    /// Per user, the position up to which messages were deleted for their devices.
    pub purged_up_to: HashMap<String, u64>,
    /// Platform API 3.0's `significance`, as the server gave it at creation.
    pub significance: Option<Map<String, Value>>,
    /// Participants who never see it: it was created by a user they block (§E.11). Others
    /// see them among the participants; they get no packet about it and 404 for it, until
    /// they leave or find it again by creating the same distinct conversation.
    pub unseen_by: BTreeSet<String>,
}

impl Conversation {
    pub fn id(&self) -> String {
        object_id(Kind::Conversations, &self.uuid)
    }

    pub fn is_participant(&self, user: &str) -> bool {
        self.participants.iter().any(|p| p == user)
    }

    /// The participants who see it: whom its changes are pushed to.
    pub fn audience(&self) -> impl Iterator<Item = &String> + '_ {
        self.participants
            .iter()
            .filter(|p| !self.unseen_by.contains(*p))
    }

    fn participant_set(&self) -> BTreeSet<&str> {
        self.participants.iter().map(String::as_str).collect()
    }
}

impl World {
    /// The conversations `include` selects, newest first: by creation, or by the last
    /// message `viewer` can see. Keys are the world's event sequence numbers, unique, so pages
    /// cut by key never overlap. Both the Client API and the Platform API list through this.
    pub fn conversations_newest_first<'a>(
        &'a self,
        viewer: &'a str,
        by_last_message: bool,
        include: impl Fn(&Conversation) -> bool,
    ) -> Vec<(u64, &'a Conversation)> {
        let mut listed: Vec<(u64, &Conversation)> = self
            .conversations
            .values()
            .filter(|c| include(c))
            .map(|c| {
                let key = if by_last_message {
                    self.last_visible(c, viewer)
                        .map_or(c.created_seq, |m| m.seq)
                } else {
                    c.created_seq
                };
                (key, c)
            })
            .collect();
        listed.sort_by(|(a, _), (b, _)| b.cmp(a));
        listed
    }

    /// `Conversation.create` / `POST /conversations`. Returns the caller's view and whether
    /// it is new (an existing distinct conversation is returned as it is).
    pub fn create_conversation(
        &mut self,
        caller: &str,
        input: NewConversation,
    ) -> Result<(Value, bool), LayerError> {
        self.create_conversation_by(Some(caller), input, |world, c| {
            world.conversation_view(c, caller)
        })
    }

    /// Creates a conversation for a user (who takes part in it) or for the server (who adds
    /// nobody), the one path both APIs take. `view` renders the answer (and the existing
    /// conversation of a distinct match or conflict) the way the caller's API shows it.
    pub fn create_conversation_by(
        &mut self,
        creator: Option<&str>,
        input: NewConversation,
        view: impl Fn(&World, &Conversation) -> Value,
    ) -> Result<(Value, bool), LayerError> {
        // `input::participants` bounded the list; duplicates go through a set all the same.
        let mut seen = HashSet::with_capacity(input.participants.len() + 1);
        let participants: Vec<String> = input
            .participants
            .into_iter()
            .chain(creator.map(str::to_owned))
            .filter(|user| seen.insert(user.clone()))
            .collect();
        if participants.len() > self.limits.max_participants {
            return Err(LayerError::invalid_property(
                "participants",
                format!(
                    "a conversation has at most {} participants; this one would have {}",
                    self.limits.max_participants,
                    participants.len()
                ),
            ));
        }
        if let Some(uuid) = input.uuid
            && let Some(existing) = self.conversations.get(&uuid)
        {
            let mut error = LayerError::new(
                ErrorKind::IdInUse,
                format!("the conversation ID {} is already in use", existing.id()),
            );
            if creator.is_none_or(|caller| existing.is_participant(caller)) {
                error = error.with_data(view(self, existing));
            }
            return Err(error);
        }
        if input.distinct {
            let wanted: BTreeSet<&str> = participants.iter().map(String::as_str).collect();
            let found = self
                .conversations
                .values()
                .find(|c| c.distinct && c.participant_set() == wanted)
                .map(|c| c.uuid);
            // A user who never saw it (its creator is someone they block) finds it now.
            if let (Some(uuid), Some(creator)) = (found, creator)
                && let Some(existing) = self.conversations.get_mut(&uuid)
                && existing.unseen_by.remove(creator)
            {
                self.push_conversation_create(&uuid, Some(creator));
            }
            if let Some(existing) = found.and_then(|uuid| self.conversations.get(&uuid)) {
                let view = view(self, existing);
                return match &input.metadata {
                    Some(metadata) if *metadata != existing.metadata => Err(LayerError::new(
                        ErrorKind::Conflict,
                        "a distinct conversation with these participants exists with \
                         different metadata",
                    )
                    .with_data(view)),
                    _ => Ok((view, false)),
                };
            }
        }
        let held = self.conversations.len() + self.channels.by_uuid.len();
        if held >= self.limits.max_conversations {
            return Err(LayerError::rate_limit_exceeded(format!(
                "this app has {held} conversations and channels, the most the emulator keeps \
                 (mock_layer.max_conversations); delete some"
            )));
        }
        self.room_for_identities(participants.iter().map(String::as_str))?;
        for user in &participants {
            self.provision_within_room(user);
        }
        let now = self.now_ms();
        let uuid = input.uuid.unwrap_or_else(Uuid::new_v4);
        // Whoever blocks the creator never sees what they create (§E.11).
        let unseen_by = creator
            .map(|creator| {
                participants
                    .iter()
                    .filter(|p| *p != creator && self.blocks(p, creator))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        let conversation = Conversation {
            uuid,
            created_ms: now,
            created_seq: self.next_seq(),
            participants,
            distinct: input.distinct,
            metadata: input.metadata.unwrap_or_default(),
            messages: Vec::new(),
            next_position: 1,
            former: BTreeSet::new(),
            hidden: BTreeSet::new(),
            purged_up_to: HashMap::new(),
            significance: input.significance,
            unseen_by,
        };
        let view = view(self, &conversation);
        self.conversations.insert(uuid, conversation);
        self.push_conversation_create(&uuid, None);
        let actor = creator.map(|c| Actor::User(c.to_owned()));
        self.record_event(EventKind::ConversationCreated, actor, |w| {
            w.conversation_subject(&uuid)
        });
        Ok((view, true))
    }

    /// Pushes a `create` of the conversation to every participant (or only to `only`), each
    /// with their own view.
    pub(super) fn push_conversation_create(&mut self, uuid: &Uuid, only: Option<&str>) {
        let Some(conversation) = self.conversations.get(uuid).cloned() else {
            return;
        };
        for user in conversation.audience() {
            if only.is_some_and(|o| o != user) {
                continue;
            }
            let body = json!({
                "operation": "create",
                "object": self.object_ref("Conversation", &conversation.id()),
                "data": self.conversation_view(&conversation, user),
            });
            self.emit(user, PacketKind::Change, body);
        }
    }

    /// `PATCH /conversations/{uuid}`: participants and metadata, applied all or nothing.
    pub fn patch_conversation(
        &mut self,
        caller: &str,
        uuid: &Uuid,
        ops: Vec<PatchOp>,
    ) -> Result<(), LayerError> {
        let before = self.conversation_for(caller, uuid)?.clone();
        self.apply_conversation_patch(before, uuid, ops)
    }

    /// Applies a Layer-Patch to a conversation whoever asked (a participant, or the server),
    /// all or nothing, and pushes the changes to old, remaining and new participants.
    pub fn apply_conversation_patch(
        &mut self,
        before: Conversation,
        uuid: &Uuid,
        ops: Vec<PatchOp>,
    ) -> Result<(), LayerError> {
        let mut after = before.clone();
        let mut participants = ParticipantEdit::new(&before.participants);
        for op in &ops {
            match op {
                PatchOp::AddParticipant(user) => participants.add(user),
                PatchOp::RemoveParticipant(user) => participants.remove(user),
                PatchOp::SetParticipants(users) => {
                    participants.clear();
                    for user in users {
                        participants.add(user);
                    }
                }
                PatchOp::SetMetadata(path, value) if path.is_empty() => {
                    after.metadata = value.as_object().cloned().unwrap_or_default();
                }
                PatchOp::SetMetadata(path, value) => {
                    set_path(&mut after.metadata, path, value.clone())
                }
                PatchOp::DeleteMetadata(path) => delete_path(&mut after.metadata, path),
            }
        }
        after.participants = participants.into_list();
        check_metadata(&after.metadata)?;
        if after.participants.len() > self.limits.max_participants {
            return Err(LayerError::invalid_property(
                "participants",
                format!(
                    "a conversation has at most {} participants; this change would make it {}",
                    self.limits.max_participants,
                    after.participants.len()
                ),
            ));
        }
        let added: Vec<String> = after
            .participants
            .iter()
            .filter(|p| !before.is_participant(p))
            .cloned()
            .collect();
        let removed: Vec<String> = before
            .participants
            .iter()
            .filter(|p| !after.is_participant(p))
            .cloned()
            .collect();
        self.room_for_identities(added.iter().map(String::as_str))?;
        for user in &added {
            self.provision_within_room(user);
            after.former.remove(user);
        }
        // Layer's `recipient_status` names every participant. Someone who joins (or comes
        // back) finds what was said while they were not there already read: it is history,
        // not news, and the senders' read status does not fall back from ALL because of it.
        for uuid in &after.messages {
            if let Some(message) = self.messages.get_mut(uuid) {
                for user in &added {
                    message
                        .recipient_status
                        .entry(user.clone())
                        .or_insert(Status::Read);
                }
            }
        }
        if !added.is_empty() {
            self.forget_tallies(uuid);
        }
        for user in &removed {
            after.former.insert(user.clone());
            after.hidden.remove(user);
            after.unseen_by.remove(user);
        }
        // Changing who takes part makes a distinct conversation an ordinary one (Layer docs).
        let was_distinct = after.distinct;
        if !added.is_empty() || !removed.is_empty() {
            after.distinct = false;
        }
        let participants_changed = !added.is_empty() || !removed.is_empty();
        let metadata_changed = after.metadata != before.metadata;
        let snapshot = || Some(Subject::Conversation(Box::new(after.clone())));
        if participants_changed {
            self.record_event(EventKind::ConversationParticipants, None, |_| snapshot());
        }
        if metadata_changed {
            self.record_event(EventKind::ConversationMetadata, None, |_| snapshot());
        }
        if after.participants.is_empty() {
            // Everyone left: nobody can see it again, so it goes with its messages and their
            // content, and the room they took is free (the leavers still hear they left).
            self.forget_conversation(uuid);
        } else {
            self.conversations.insert(*uuid, after.clone());
        }

        let mut wire_ops = Vec::new();
        for user in &added {
            wire_ops.push(json!({
                "operation": "add", "property": "participants",
                "id": identity_id(user), "value": self.identity_basic(user),
            }));
        }
        for user in &removed {
            wire_ops.push(json!({
                "operation": "remove", "property": "participants", "id": identity_id(user),
            }));
        }
        if was_distinct && !after.distinct {
            wire_ops.push(json!({"operation": "set", "property": "distinct", "value": false}));
        }
        for op in &ops {
            match op {
                PatchOp::SetMetadata(path, value) => wire_ops.push(json!({
                    "operation": "set", "property": metadata_property(path), "value": value,
                })),
                PatchOp::DeleteMetadata(path) => wire_ops.push(json!({
                    "operation": "delete", "property": metadata_property(path),
                })),
                _ => {}
            }
        }
        if wire_ops.is_empty() {
            return Ok(());
        }
        let object = self.object_ref("Conversation", &after.id());
        let update = json!({"operation": "update", "object": object, "data": wire_ops});
        for user in before.audience().filter(|u| after.is_participant(u)) {
            self.emit(user, PacketKind::Change, update.clone());
        }
        for user in &removed {
            let body = json!({
                "operation": "delete",
                "object": self.object_ref("Conversation", &after.id()),
                "data": {"mode": "my_devices", "from_position": null},
            });
            self.emit(user, PacketKind::Change, body);
        }
        for user in &added {
            self.push_conversation_create(uuid, Some(user));
        }
        Ok(())
    }

    /// `DELETE /conversations/{uuid}?mode=…[&leave=…]`.
    pub fn delete_conversation(
        &mut self,
        caller: &str,
        uuid: &Uuid,
        mode: DeleteMode,
    ) -> Result<(), LayerError> {
        let conversation = self.conversation_for(caller, uuid)?.clone();
        let object = self.object_ref("Conversation", &conversation.id());
        match mode {
            DeleteMode::AllParticipants => self.destroy_conversation(&conversation),
            DeleteMode::MyDevices { leave: false } => {
                let last = conversation.next_position.saturating_sub(1);
                if let Some(c) = self.conversations.get_mut(uuid) {
                    c.hidden.insert(caller.to_owned());
                    c.purged_up_to.insert(caller.to_owned(), last);
                }
                self.forget_tally(uuid, caller);
                let body = json!({"operation": "delete", "object": object, "data": {"mode": "my_devices", "from_position": last}});
                self.emit(caller, PacketKind::Change, body);
            }
            DeleteMode::MyDevices { leave: true } => {
                self.patch_conversation(
                    caller,
                    uuid,
                    vec![PatchOp::RemoveParticipant(caller.to_owned())],
                )?;
            }
        }
        Ok(())
    }
}

impl World {
    /// Deletes a conversation for every participant on every device, and tells them.
    pub fn destroy_conversation(&mut self, conversation: &Conversation) {
        self.record_event(EventKind::ConversationDeleted, None, |w| {
            w.conversation_subject(&conversation.uuid)
        });
        self.forget_conversation(&conversation.uuid);
        self.note_deleted_conversation(conversation.uuid);
        let object = self.object_ref("Conversation", &conversation.id());
        let body =
            json!({"operation": "delete", "object": object, "data": {"mode": "all_participants"}});
        for user in conversation.audience() {
            self.emit(user, PacketKind::Change, body.clone());
        }
    }
}

/// A conversation's participants as a patch rewrites them, each operation O(1): one patch
/// can carry thousands of operations. Users stay in the order they (last) joined.
pub(super) struct ParticipantEdit {
    /// Every join, in order; a user who left and joined again appears twice.
    joined: Vec<String>,
    /// The participants, each with the index of their latest join.
    current: HashMap<String, usize>,
}

impl ParticipantEdit {
    fn new(participants: &[String]) -> Self {
        let mut edit = Self {
            joined: Vec::with_capacity(participants.len()),
            current: HashMap::with_capacity(participants.len()),
        };
        for user in participants {
            edit.add(user);
        }
        edit
    }

    fn add(&mut self, user: &str) {
        if !self.current.contains_key(user) {
            self.current.insert(user.to_owned(), self.joined.len());
            self.joined.push(user.to_owned());
        }
    }

    fn remove(&mut self, user: &str) {
        self.current.remove(user);
    }

    fn clear(&mut self) {
        self.joined.clear();
        self.current.clear();
    }

    fn into_list(self) -> Vec<String> {
        let current = self.current;
        self.joined
            .into_iter()
            .enumerate()
            .filter(|(index, user)| current.get(user) == Some(index))
            .map(|(_, user)| user)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_participant_edit_keeps_each_user_once_in_the_order_they_last_joined() {
        let users = |list: &[&str]| list.iter().map(|u| (*u).to_owned()).collect::<Vec<_>>();
        let mut edit = ParticipantEdit::new(&users(&["a", "b", "c"]));
        edit.remove("b");
        edit.add("d");
        edit.add("b");
        edit.add("a");
        edit.remove("nobody");
        assert_eq!(edit.into_list(), users(&["a", "c", "d", "b"]));
        let mut edit = ParticipantEdit::new(&users(&["a", "b"]));
        edit.clear();
        edit.add("c");
        edit.add("a");
        edit.add("c");
        assert_eq!(edit.into_list(), users(&["c", "a"]));
    }
}
