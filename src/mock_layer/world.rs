//! The emulated Layer world of one app: identities, conversations, messages, rich content,
//! the open WebSockets, and the log of changes that `Event.replay` re-sends
//! (`change_log.rs`).
//!
//! Each app has its own [`World`] behind its own `std::sync::Mutex` (see [`super::MockLayer`]):
//! staging and production never see each other's objects. The lock is never held across an
//! `.await` — every operation here is synchronous and short — so a std mutex is both enough
//! and cheaper than an async one. Fan-out happens *inside* the lock with `try_send` on each
//! socket's bounded channel, which never waits: a socket whose channel is full is too slow to
//! keep up and is closed (its client reconnects and replays), so it cannot hold anyone else
//! back. Doing the fan-out under the lock keeps every socket's view of the order of changes
//! the same as the log's, and the world's clock ([`World::now_ms`], which never goes back)
//! stamps each change as it is logged, so every queue is in timestamp order.
//!
//! Operations return the caller's view and push what the other participants must see, the
//! way Layer does (§C.3, §C.4, §D of the protocol notes). Serialisation lives in `views.rs`;
//! reading request bodies into the `New*` inputs lives in `input.rs`. This module knows
//! nothing about HTTP or WebSocket frames.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::Arc;

use serde_json::{Map, Value, json};
use tokio::sync::{mpsc, watch};
use uuid::Uuid;

use super::change_log::{ChangeLog, Incomplete, Outbound, PacketKind, ReplayLimits};
use super::content_store::{Content, ContentLimits, ContentStore};
use super::error::{ErrorKind, LayerError};
use super::identity_token::Profile;
use super::ids::{AppId, Kind, identity_id, object_id};
use super::input::{NewConversation, NewMessage, NewPart, PatchOp, ReceiptKind, check_metadata};

/// How many pushes the emulator keeps for `GET /_mock/notifications`, per app. They outlive
/// their messages; each keeps only a bounded `title`, `text` and `sound` (see `input.rs`).
const NOTIFICATION_LOG_SIZE: usize = 1_000;

/// How long a download URL is advertised as valid.
pub const DOWNLOAD_URL_LIFETIME_MS: i64 = 3_600_000;

/// Milliseconds since the Unix epoch.
pub fn wall_clock_ms() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

/// `2026-11-21T20:45:35.820Z`, the form Layer's timestamps take.
pub fn iso_ms(ms: i64) -> String {
    let format = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&format).ok())
        .unwrap_or_default()
}

/// Parses an RFC 3339 timestamp (the SDK's `from_timestamp`, `since`) to milliseconds.
pub fn parse_iso_ms(s: &str) -> Option<i64> {
    let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()?;
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).ok()
}

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

/// What `Presence.update` may set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PresenceStatus {
    Auto,
    Available,
    Away,
    Busy,
    Offline,
    Invisible,
}

impl PresenceStatus {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "auto" => Self::Auto,
            "available" => Self::Available,
            "away" => Self::Away,
            "busy" => Self::Busy,
            "offline" => Self::Offline,
            "invisible" => Self::Invisible,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone)]
pub struct Identity {
    pub user_id: String,
    pub profile: Profile,
    pub presence: PresenceStatus,
    /// When the user last had a socket open or sent something, for `presence.last_seen_at`.
    pub last_seen_ms: Option<i64>,
    /// When the presence they show last changed (`Presence.sync {since}`).
    pub presence_changed_ms: i64,
    /// Identity lists are ordered by creation, newest first (see [`World::next_seq`]).
    pub created_seq: u64,
}

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
}

impl Conversation {
    pub fn id(&self) -> String {
        object_id(Kind::Conversations, &self.uuid)
    }

    pub fn is_participant(&self, user: &str) -> bool {
        self.participants.iter().any(|p| p == user)
    }

    fn participant_set(&self) -> BTreeSet<&str> {
        self.participants.iter().map(String::as_str).collect()
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
    pub sender: String,
    /// Every participant at sending time, by user ID.
    pub recipient_status: BTreeMap<String, Status>,
    pub notification: Option<Value>,
    /// Users who deleted it for their devices.
    pub hidden_for: BTreeSet<String>,
    /// What it counts for against `max_message_bytes`, measured once when it is sent, so
    /// deleting it gives back exactly that.
    pub stored_bytes: usize,
}

impl Message {
    pub fn id(&self) -> String {
        object_id(Kind::Messages, &self.uuid)
    }

    /// Roughly what it takes in memory: its parts, notification and statuses (rich content
    /// is counted separately). Statuses added later, for participants who join, are not
    /// counted; there are at most `max_participants` per join.
    fn measure(&self) -> usize {
        const OVERHEAD: usize = 64;
        let parts: usize = self
            .parts
            .iter()
            .map(|p| {
                OVERHEAD
                    + p.mime_type.len()
                    + p.body.as_ref().map_or(0, String::len)
                    + p.id.as_ref().map_or(0, String::len)
            })
            .sum();
        let statuses: usize = self
            .recipient_status
            .keys()
            .map(|u| OVERHEAD + u.len())
            .sum();
        let notification = self
            .notification
            .as_ref()
            .map_or(0, |n| n.to_string().len());
        OVERHEAD + self.sender.len() + parts + statuses + notification
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

/// One open WebSocket, as the world sees it.
#[derive(Debug)]
pub struct SocketHandle {
    pub id: u64,
    /// The session it was opened with, so ending a session closes its sockets.
    pub session: String,
    pub tx: mpsc::Sender<Outbound>,
    /// Set to make the socket close itself (a state, not an event: a socket busy when it is
    /// set still sees it).
    pub kill: watch::Sender<bool>,
}

impl SocketHandle {
    pub fn kill(&self) {
        self.kill.send_replace(true);
    }
}

/// A push notification the emulator would have sent.
#[derive(Debug, Clone)]
pub struct Notification {
    pub at_ms: i64,
    pub message: String,
    pub conversation: String,
    pub sender: String,
    pub recipients: Vec<String>,
    /// `title`, `text` and `sound`, as `input::new_message` kept them.
    pub notification: Value,
}

/// Limits that come from configuration.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_participants: usize,
    pub max_identities: usize,
    pub max_conversations: usize,
    pub max_messages: usize,
    pub max_message_bytes: usize,
    pub content: ContentLimits,
    pub max_sockets_per_session: usize,
    pub max_sockets_per_user: usize,
    pub replay: ReplayLimits,
}

pub struct World {
    pub app: AppId,
    /// The base of every absolute `url` (`http://127.0.0.1:PORT`).
    pub base: Arc<str>,
    pub limits: Limits,
    pub identities: HashMap<String, Identity>,
    pub conversations: HashMap<Uuid, Conversation>,
    pub messages: HashMap<Uuid, Message>,
    /// What the messages take, by [`Message::stored_bytes`].
    message_bytes: usize,
    pub content: ContentStore,
    /// Explicitly followed users, per follower (`PUT /following/users/{id}`)…
    pub following: HashMap<String, BTreeSet<String>>,
    /// …and the same follows per followed user (see `presence.rs`).
    pub followers: HashMap<String, BTreeSet<String>>,
    pub sockets: HashMap<String, Vec<SocketHandle>>,
    log: ChangeLog,
    pub notifications: VecDeque<Notification>,
    /// The latest timestamp handed out: time never goes backwards within a world, so
    /// `Event.replay` from a packet's timestamp never misses a later change.
    last_ms: i64,
    last_seq: u64,
}

impl World {
    pub fn new(app: AppId, base: Arc<str>, limits: Limits) -> Self {
        Self {
            app,
            base,
            limits,
            identities: HashMap::new(),
            conversations: HashMap::new(),
            messages: HashMap::new(),
            message_bytes: 0,
            content: ContentStore::new(limits.content),
            following: HashMap::new(),
            followers: HashMap::new(),
            sockets: HashMap::new(),
            log: ChangeLog::new(limits.replay),
            notifications: VecDeque::new(),
            last_ms: 0,
            last_seq: 0,
        }
    }

    /// Empties the world and closes every socket.
    pub fn reset(&mut self) {
        for handles in self.sockets.values() {
            for handle in handles {
                handle.kill();
            }
        }
        *self = World::new(self.app, self.base.clone(), self.limits);
    }

    /// Now, in milliseconds, never earlier than a time already handed out.
    pub fn now_ms(&mut self) -> i64 {
        self.last_ms = self.last_ms.max(wall_clock_ms());
        self.last_ms
    }

    /// The next number of the world's event sequence: the order in which things happened,
    /// even within one millisecond, which is all the clock can tell apart. Lists sorted by
    /// time sort by it, so two conversations made in the same millisecond never swap places.
    pub fn next_seq(&mut self) -> u64 {
        self.last_seq += 1;
        self.last_seq
    }

    /// Now, for display, without advancing the world's clock.
    pub fn peek_ms(&self) -> i64 {
        self.last_ms.max(wall_clock_ms())
    }

    // ----- identities -----

    /// The identity for a user, created empty if unknown: Layer provisions identities for
    /// any user ID an app mentions, and the SDK destroys participants it cannot load.
    /// Past `max_identities`, 429: a loop of `GET /identities/{x}` could otherwise grow the
    /// app without bound.
    pub fn provision(&mut self, user: &str) -> Result<&mut Identity, LayerError> {
        self.room_for_identities([user])?;
        Ok(self.provision_within_room(user))
    }

    /// [`World::provision`] once [`World::room_for_identities`] said yes for `user`: it cannot
    /// fail, so an operation that checked first never stops halfway through its changes.
    fn provision_within_room(&mut self, user: &str) -> &mut Identity {
        let now = self.now_ms();
        let seq = self.next_seq();
        self.identities
            .entry(user.to_owned())
            .or_insert_with(|| Identity {
                user_id: user.to_owned(),
                profile: Profile::default(),
                presence: PresenceStatus::Auto,
                last_seen_ms: None,
                presence_changed_ms: now,
                created_seq: seq,
            })
    }

    /// Whether the identities of `users` that do not exist yet fit under `max_identities` —
    /// asked before any is made, so a refused request provisions none.
    fn room_for_identities<'a>(
        &self,
        users: impl IntoIterator<Item = &'a str>,
    ) -> Result<(), LayerError> {
        let new: BTreeSet<&str> = users
            .into_iter()
            .filter(|u| !self.identities.contains_key(*u))
            .collect();
        if !new.is_empty() && self.identities.len() + new.len() > self.limits.max_identities {
            return Err(LayerError::rate_limit_exceeded(format!(
                "this app has {} identities, the most the emulator keeps \
                 (mock_layer.max_identities)",
                self.identities.len()
            )));
        }
        Ok(())
    }

    /// Applies an identity token's profile claims (a session creates or updates the user).
    pub fn apply_profile(&mut self, user: &str, profile: Profile) -> Result<(), LayerError> {
        let identity = self.provision(user)?;
        let p = &mut identity.profile;
        let merge = |slot: &mut Option<String>, value: Option<String>| {
            if value.is_some() {
                *slot = value;
            }
        };
        merge(&mut p.display_name, profile.display_name);
        merge(&mut p.first_name, profile.first_name);
        merge(&mut p.last_name, profile.last_name);
        merge(&mut p.avatar_url, profile.avatar_url);
        merge(&mut p.public_key, profile.public_key);
        Ok(())
    }

    // ----- access rules -----

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
        if conversation.is_participant(caller) {
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

    pub fn unread_count(&self, conversation: &Conversation, viewer: &str) -> usize {
        self.visible_messages(conversation, viewer)
            .filter(|m| m.is_unread_for(viewer))
            .count()
    }

    // ----- conversations -----

    /// `Conversation.create` / `POST /conversations`. Returns the caller's view and whether
    /// it is new (an existing distinct conversation is returned as it is).
    pub fn create_conversation(
        &mut self,
        caller: &str,
        input: NewConversation,
    ) -> Result<(Value, bool), LayerError> {
        // `input::participants` bounded the list; duplicates go through a set all the same.
        let mut seen = HashSet::with_capacity(input.participants.len() + 1);
        let participants: Vec<String> = input
            .participants
            .into_iter()
            .chain([caller.to_owned()])
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
            if existing.is_participant(caller) {
                error = error.with_data(self.conversation_view(existing, caller));
            }
            return Err(error);
        }
        if input.distinct {
            let wanted: BTreeSet<&str> = participants.iter().map(String::as_str).collect();
            let found = self
                .conversations
                .values()
                .find(|c| c.distinct && c.participant_set() == wanted);
            if let Some(existing) = found {
                let view = self.conversation_view(existing, caller);
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
        if self.conversations.len() >= self.limits.max_conversations {
            return Err(LayerError::rate_limit_exceeded(format!(
                "this app has {} conversations, the most the emulator keeps \
                 (mock_layer.max_conversations); delete some",
                self.conversations.len()
            )));
        }
        self.room_for_identities(participants.iter().map(String::as_str))?;
        for user in &participants {
            self.provision_within_room(user);
        }
        let now = self.now_ms();
        let uuid = input.uuid.unwrap_or_else(Uuid::new_v4);
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
        };
        let view = self.conversation_view(&conversation, caller);
        self.conversations.insert(uuid, conversation);
        self.push_conversation_create(&uuid, None);
        Ok((view, true))
    }

    /// Pushes a `create` of the conversation to every participant (or only to `only`), each
    /// with their own view.
    fn push_conversation_create(&mut self, uuid: &Uuid, only: Option<&str>) {
        let Some(conversation) = self.conversations.get(uuid).cloned() else {
            return;
        };
        for user in &conversation.participants {
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
        for user in &removed {
            after.former.insert(user.clone());
            after.hidden.remove(user);
        }
        // Changing who takes part makes a distinct conversation an ordinary one (Layer docs).
        let was_distinct = after.distinct;
        if !added.is_empty() || !removed.is_empty() {
            after.distinct = false;
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
        for user in before
            .participants
            .iter()
            .filter(|u| after.is_participant(u))
        {
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
            DeleteMode::AllParticipants => {
                self.forget_conversation(uuid);
                let body = json!({"operation": "delete", "object": object, "data": {"mode": "all_participants"}});
                for user in &conversation.participants {
                    self.emit(user, PacketKind::Change, body.clone());
                }
            }
            DeleteMode::MyDevices { leave: false } => {
                let last = conversation.next_position.saturating_sub(1);
                if let Some(c) = self.conversations.get_mut(uuid) {
                    c.hidden.insert(caller.to_owned());
                    c.purged_up_to.insert(caller.to_owned(), last);
                }
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

    // ----- messages -----

    /// `Message.create` / `POST /conversations/{uuid}/messages`. Returns the sender's view.
    pub fn create_message(
        &mut self,
        caller: &str,
        conversation_uuid: &Uuid,
        input: NewMessage,
    ) -> Result<Value, LayerError> {
        let conversation = self.conversation_for(caller, conversation_uuid)?.clone();
        let uuid = input.uuid.unwrap_or_else(Uuid::new_v4);
        if let Some(existing) = self.messages.get(&uuid) {
            let mut error = LayerError::new(
                ErrorKind::IdInUse,
                format!("the message ID {} is already in use", existing.id()),
            );
            if let Ok(message) = self.message_for(caller, &uuid) {
                error = error.with_data(self.message_view(message, caller));
            }
            return Err(error);
        }
        if self.messages.len() >= self.limits.max_messages {
            return Err(LayerError::rate_limit_exceeded(format!(
                "this app has {} messages, the most the emulator keeps \
                 (mock_layer.max_messages); delete some",
                self.messages.len()
            )));
        }
        let message_id = object_id(Kind::Messages, &uuid);
        let mut parts = Vec::with_capacity(input.parts.len());
        for (index, part) in input.parts.into_iter().enumerate() {
            parts.push(self.accept_part(caller, &message_id, index, part)?);
        }
        let now = self.now_ms();
        let recipient_status = conversation
            .participants
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
            position: conversation.next_position,
            parts,
            sent_ms: now,
            // Numbered once it is certain to be kept.
            seq: 0,
            sender: caller.to_owned(),
            recipient_status,
            notification: input.notification.clone(),
            hidden_for: BTreeSet::new(),
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
        let Some(c) = self.conversations.get_mut(conversation_uuid) else {
            return Err(LayerError::internal("conversation vanished under the lock"));
        };
        c.messages.push(uuid);
        c.next_position += 1;
        let reappearing: Vec<String> = std::mem::take(&mut c.hidden).into_iter().collect();
        let conversation = c.clone();
        for content in message.parts.iter().filter_map(|p| p.content) {
            self.content.attach(&content, uuid);
        }
        self.message_bytes = self.message_bytes.saturating_add(size);
        self.messages.insert(uuid, message.clone());
        // A conversation deleted "for my devices" comes back with its next message.
        for user in &reappearing {
            self.push_conversation_create(conversation_uuid, Some(user));
        }
        let message_ref = self.object_ref("Message", &message.id());
        let conversation_ref = self.object_ref("Conversation", &conversation.id());
        for user in &conversation.participants {
            let body = json!({
                "operation": "create",
                "object": message_ref,
                "data": self.message_view(&message, user),
            });
            self.emit(user, PacketKind::Change, body);
        }
        // After the create, so the SDK can resolve `last_message` by id.
        for user in &conversation.participants {
            let body = json!({
                "operation": "update",
                "object": conversation_ref,
                "data": [
                    {"operation": "set", "property": "last_message", "id": message.id()},
                    {"operation": "set", "property": "unread_message_count", "value": self.unread_count(&conversation, user)},
                ],
            });
            self.emit(user, PacketKind::Change, body);
        }
        if let Some(notification) = input.notification {
            self.notifications.push_back(Notification {
                at_ms: now,
                message: message.id(),
                conversation: conversation.id(),
                sender: caller.to_owned(),
                recipients: conversation
                    .participants
                    .iter()
                    .filter(|p| *p != caller)
                    .cloned()
                    .collect(),
                notification,
            });
            while self.notifications.len() > NOTIFICATION_LOG_SIZE {
                self.notifications.pop_front();
            }
        }
        Ok(self.message_view(&message, caller))
    }

    fn accept_part(
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
        })
    }

    /// Removes a conversation nobody can see any more, with its messages and their content.
    fn forget_conversation(&mut self, uuid: &Uuid) {
        if let Some(conversation) = self.conversations.remove(uuid) {
            for message in &conversation.messages {
                self.forget_message(message);
            }
        }
    }

    /// Removes a message gone for everyone, and the rich content it used.
    fn forget_message(&mut self, uuid: &Uuid) {
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
        let Some(conversation) = self.conversations.get(&message.conversation).cloned() else {
            return Err(LayerError::not_found(format!(
                "there is no message {}",
                message.id()
            )));
        };
        let object = self.object_ref("Message", &message.id());
        match mode {
            DeleteMode::AllParticipants => {
                self.forget_message(uuid);
                if let Some(c) = self.conversations.get_mut(&message.conversation) {
                    c.messages.retain(|m| m != uuid);
                }
                let body = json!({"operation": "delete", "object": object, "data": {"mode": "all_participants"}});
                for user in &conversation.participants {
                    self.emit(user, PacketKind::Change, body.clone());
                }
            }
            DeleteMode::MyDevices { .. } => {
                if let Some(m) = self.messages.get_mut(uuid) {
                    m.hidden_for.insert(caller.to_owned());
                }
                let body = json!({"operation": "delete", "object": object, "data": {"mode": "my_devices"}});
                self.emit(caller, PacketKind::Change, body);
            }
        }
        Ok(())
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
        self.push_status_change(&message, caller, wanted);
        if wanted == Status::Read {
            self.push_unread_count(&message.conversation, caller);
        }
        Ok(())
    }

    fn push_status_change(&mut self, message: &Message, reader: &str, status: Status) {
        let Some(conversation) = self.conversations.get(&message.conversation).cloned() else {
            return;
        };
        let body = json!({
            "operation": "update",
            "object": self.object_ref("Message", &message.id()),
            "data": [{
                "operation": "set",
                "property": format!("recipient_status.{}", escape_patch_key(&identity_id(reader))),
                "value": status.as_str(),
            }],
        });
        for user in &conversation.participants {
            self.emit(user, PacketKind::Change, body.clone());
        }
    }

    fn push_unread_count(&mut self, conversation_uuid: &Uuid, user: &str) {
        let Some(conversation) = self.conversations.get(conversation_uuid).cloned() else {
            return;
        };
        let body = json!({
            "operation": "update",
            "object": self.object_ref("Conversation", &conversation.id()),
            "data": [{"operation": "set", "property": "unread_message_count", "value": self.unread_count(&conversation, user)}],
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
        let conversation = self.conversation_for(caller, uuid)?.clone();
        let up_to = position.unwrap_or(conversation.next_position.saturating_sub(1));
        for message_uuid in &conversation.messages {
            if let Some(m) = self.messages.get_mut(message_uuid)
                && m.position <= up_to
                && let Some(status) = m.recipient_status.get_mut(caller)
            {
                *status = Status::Read;
            }
        }
        let body = json!({
            "method": "Conversation.mark_all_read",
            "object": self.object_ref("Conversation", &conversation.id()),
            "data": {"position": up_to, "identity": self.identity_basic(caller)},
        });
        for user in &conversation.participants {
            self.emit(user, PacketKind::Operation, body.clone());
        }
        self.push_unread_count(uuid, caller);
        Ok(())
    }

    // ----- rich content (the store and its caps are in content_store.rs) -----

    /// `POST /content`: the upload URL for content of `declared_size` bytes.
    pub fn create_content(
        &mut self,
        caller: &str,
        mime_type: String,
        declared_size: Option<u64>,
    ) -> Result<Value, LayerError> {
        let now = self.now_ms();
        let content = self.content.create(caller, mime_type, declared_size, now)?;
        Ok(json!({
            "id": object_id(Kind::Content, &content.uuid),
            "upload_url": format!("{}/content-upload/{}", self.base, content.upload_secret),
            "download_url": null,
            "expiration": null,
        }))
    }

    /// `GET /content/{uuid}` (the `refresh_url`): for its owner and for participants of the
    /// conversation whose message carries it.
    pub fn refresh_content(&mut self, caller: &str, uuid: &Uuid) -> Result<Value, LayerError> {
        let not_found = || {
            LayerError::not_found(format!(
                "there is no content {}",
                object_id(Kind::Content, uuid)
            ))
        };
        let content = self.content.get(uuid).ok_or_else(not_found)?;
        let allowed = content.owner == caller
            || content
                .attached_to
                .is_some_and(|m| self.message_for(caller, &m).is_ok());
        if !allowed {
            return Err(not_found());
        }
        let download_url = content.bytes.as_ref().map(|_| self.download_url(content));
        let expiration = self.now_ms().saturating_add(DOWNLOAD_URL_LIFETIME_MS);
        Ok(json!({
            "id": object_id(Kind::Content, uuid),
            "download_url": download_url,
            "expiration": iso_ms(expiration),
            "upload_url": null,
        }))
    }

    pub fn download_url(&self, content: &Content) -> String {
        format!("{}/content-download/{}", self.base, content.download_secret)
    }

    // ----- typing (presence lives in presence.rs) -----

    /// Relays a typing indicator to the other participants' sockets (not logged: a
    /// replayed "typing" would be a lie).
    pub fn relay_typing(
        &mut self,
        caller: &str,
        uuid: &Uuid,
        action: &str,
    ) -> Result<(), LayerError> {
        let conversation = self.conversation_for(caller, uuid)?.clone();
        let signal = Outbound {
            kind: PacketKind::Signal,
            at_ms: self.now_ms(),
            body: json_text(&json!({
                "type": "typing_indicator",
                "object": self.object_ref("Conversation", &conversation.id()),
                "data": {"sender": self.identity_basic(caller), "action": action},
            })),
        };
        for user in conversation.participants.iter().filter(|u| *u != caller) {
            self.send(user, &signal);
        }
        Ok(())
    }

    // ----- sockets and the change log -----

    /// Registers a socket; returns the world time it opened at, the `timestamp` of the
    /// packets it sends before any change reaches it — or, past the caps on sockets per
    /// session and per user, why it may not open.
    pub fn add_socket(&mut self, user: &str, handle: SocketHandle) -> Result<i64, String> {
        let open = self.sockets.get(user).map_or(&[][..], Vec::as_slice);
        let of_session = open.iter().filter(|h| h.session == handle.session).count();
        if of_session >= self.limits.max_sockets_per_session {
            return Err(format!(
                "this session has {of_session} sockets open already, the most allowed \
                 (mock_layer.max_sockets_per_session)"
            ));
        }
        if open.len() >= self.limits.max_sockets_per_user {
            return Err(format!(
                "this user has {} sockets open already, the most allowed \
                 (mock_layer.max_sockets_per_user)",
                open.len()
            ));
        }
        let before = self.shown_presence(user).0;
        let now = self.now_ms();
        if let Ok(identity) = self.provision(user) {
            identity.last_seen_ms = Some(now);
        }
        self.sockets
            .entry(user.to_owned())
            .or_default()
            .push(handle);
        self.presence_may_have_changed(user, before);
        Ok(now)
    }

    /// Forgets a socket whose task has ended.
    pub fn remove_socket(&mut self, user: &str, id: u64) {
        let before = self.shown_presence(user).0;
        let now = self.now_ms();
        if let Some(handles) = self.sockets.get_mut(user) {
            handles.retain(|h| h.id != id);
            if handles.is_empty() {
                self.sockets.remove(user);
            }
        }
        if let Some(identity) = self.identities.get_mut(user) {
            identity.last_seen_ms = Some(now);
        }
        self.presence_may_have_changed(user, before);
    }

    /// Closes the user's sockets (all of them, or those of one session).
    pub fn close_sockets(&mut self, user: &str, session: Option<&str>) -> usize {
        let before = self.shown_presence(user).0;
        let mut closed = 0;
        if let Some(handles) = self.sockets.get_mut(user) {
            handles.retain(|h| {
                let close = session.is_none_or(|s| s == h.session);
                if close {
                    h.kill();
                    closed += 1;
                }
                !close
            });
            if handles.is_empty() {
                self.sockets.remove(user);
            }
        }
        self.presence_may_have_changed(user, before);
        closed
    }

    /// Logs a change for replay and pushes it to the user's sockets, stamped with the
    /// world's time: the packet's `timestamp` is the time it is logged at, so "replay from
    /// the last timestamp I saw" includes everything that came after it, by construction.
    fn emit(&mut self, user: &str, kind: PacketKind, body: Value) {
        let packet = Outbound {
            kind,
            at_ms: self.now_ms(),
            body: json_text(&body),
        };
        self.send(user, &packet);
        self.log.record(user, packet);
    }

    /// Hands a packet to each of the user's sockets without waiting. A socket whose queue is
    /// full is closed: it is too far behind, and its client will replay what it missed.
    pub(super) fn send(&mut self, user: &str, packet: &Outbound) {
        let Some(handles) = self.sockets.get_mut(user) else {
            return;
        };
        handles.retain(|h| match h.tx.try_send(packet.clone()) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                // Killed, not forgotten: its task forgets it on the way out (`remove_socket`),
                // like any socket that closes, so this fan-out never cascades into others.
                tracing::warn!(
                    socket = h.id,
                    "closing a WebSocket that fell too far behind"
                );
                h.kill();
                true
            }
            // Its task has ended. It forgets its socket on the way out, so this only tidies
            // up after one that could not (a panic).
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        });
        if handles.is_empty() {
            self.sockets.remove(user);
        }
    }

    /// The changes and operations logged for `user` at or after `from_ms`, oldest first, or
    /// why that history is no longer complete.
    pub fn replay(&self, user: &str, from_ms: i64) -> Result<Vec<Outbound>, Incomplete> {
        self.log.since(user, from_ms)
    }
}

/// A body as the JSON text that goes on the wire (serialising a `Value` cannot fail).
pub(super) fn json_text(body: &Value) -> Arc<str> {
    serde_json::to_string(body).unwrap_or_default().into()
}

/// A conversation's participants as a patch rewrites them, each operation O(1): one patch
/// can carry thousands of operations. Users stay in the order they (last) joined.
struct ParticipantEdit {
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

/// The three deletion modes of Layer's Client API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeleteMode {
    AllParticipants,
    MyDevices { leave: bool },
}

/// Layer-Patch splits property paths on `.`; a literal dot in a key is escaped as `\.`.
pub fn escape_patch_key(key: &str) -> String {
    key.replace('\\', "\\\\").replace('.', "\\.")
}

/// `metadata`, or `metadata.a.b` with dots inside keys escaped.
fn metadata_property(path: &[String]) -> String {
    let mut property = String::from("metadata");
    for key in path {
        property.push('.');
        property.push_str(&escape_patch_key(key));
    }
    property
}

fn set_path(map: &mut Map<String, Value>, path: &[String], value: Value) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut current = map;
    for key in parents {
        let entry = current
            .entry(key.clone())
            .or_insert_with(|| Value::Object(Map::new()));
        if !entry.is_object() {
            *entry = Value::Object(Map::new());
        }
        let Value::Object(next) = entry else { return };
        current = next;
    }
    current.insert(last.clone(), value);
}

fn delete_path(map: &mut Map<String, Value>, path: &[String]) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut current = map;
    for key in parents {
        match current.get_mut(key) {
            Some(Value::Object(next)) => current = next,
            _ => return,
        }
    }
    current.remove(last);
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
