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
//!
//! By subject: `identities.rs`, `access.rs` (who sees what), `conversations.rs`,
//! `messages.rs` (the one `send_message` both APIs use), `parts.rs` (server edits of parts),
//! `announcements.rs`, `channels.rs` (channels, their members and messages), `scheduled.rs`
//! (delayed messages and the clock offset), `content.rs`, `sockets.rs` (fan-out and the
//! change log), `tallies.rs` (each viewer's message counts, kept as they change rather than
//! counted from the history), `server.rs` (what only the Platform API does: identities'
//! fields, blocks, pushes, badges), `webhooks.rs` (registered webhooks and the events recorded
//! for them), `patch.rs` (Layer-Patch paths) and `snapshot/` (the world as a document, for
//! `GET /_mock/export` and `POST /_mock/import`).

mod access;
mod announcements;
mod channels;
mod content;
mod conversations;
mod identities;
mod messages;
mod parts;
mod patch;
mod responses;
mod scheduled;
mod server;
mod snapshot;
mod sockets;
mod tallies;
pub mod webhooks;

pub use announcements::Announcement;
pub use channels::{Channel, ChannelMessage, Channels, MEMBER_ROLE, Member, membership_id};
pub use conversations::Conversation;
pub use identities::{Identity, PresenceStatus};
pub use messages::{Message, Part, Sender, Status};
pub use patch::escape_patch_key;
pub use scheduled::Scheduled;
pub use server::{
    Badging, BadgingMode, IDENTITY_FIELDS, IdentityFields, IdentityOp, MAX_BLOCKS_PER_USER,
    check_block_room, check_identity_metadata, unknown_user,
};
pub use snapshot::Snapshot;
pub use sockets::{SocketEnd, SocketHandle};
pub use tallies::Tally;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::Arc;

use serde_json::{Map, Value, json};
use tokio::sync::{mpsc, watch};
use uuid::Uuid;

use super::change_log::{ChangeLog, ClientApi, Incomplete, Outbound, PacketKind, ReplayLimits};
use super::content_store::{Content, ContentLimits, ContentStore};
use super::error::{ErrorKind, LayerError};
use super::identity_token::Profile;
use super::ids::{AppId, Kind, identity_id, object_id};
use super::input::{NewConversation, NewMessage, NewPart, PatchOp, ReceiptKind, check_metadata};
use crate::clock::{iso_ms, wall_clock_ms};
use patch::{delete_path, metadata_property, set_path};
use webhooks::{Actor, EventKind, Subject};

/// How many pushes the emulator keeps for `GET /_mock/notifications`, per app. They outlive
/// their messages; each keeps only a bounded `title`, `text` and `sound` (see `input.rs`).
const NOTIFICATION_LOG_SIZE: usize = 1_000;

/// How long a download URL is advertised as valid.
pub const DOWNLOAD_URL_LIFETIME_MS: i64 = 3_600_000;

/// A push notification the emulator would have sent.
#[derive(Debug, Clone)]
pub struct Notification {
    pub at_ms: i64,
    pub message: String,
    pub conversation: String,
    pub sender: String,
    pub recipients: Vec<String>,
    /// `title`, `text` and `sound`, as `input::new_message` kept them (and from the Platform
    /// API the rest of §C.3: per-recipient overrides, `data`, APNs fields).
    pub notification: Value,
    /// Each recipient's badge number as the push carried it (in `recipients`' order; `None`
    /// with badging off).
    pub badges: Vec<Option<u64>>,
}

/// Limits that come from configuration.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_participants: usize,
    pub max_channel_members: usize,
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
    /// Per conversation and viewer, the counts views show (`tallies.rs`).
    tallies: tallies::Tallies,
    pub content: ContentStore,
    /// Explicitly followed users, per follower (`PUT /following/users/{id}`)…
    pub following: HashMap<String, BTreeSet<String>>,
    /// …and the same follows per followed user (see `presence.rs`).
    pub followers: HashMap<String, BTreeSet<String>>,
    pub sockets: HashMap<String, Vec<SocketHandle>>,
    log: ChangeLog,
    pub notifications: VecDeque<Notification>,
    /// Announcements by UUID; each recipient sees their own copy's status.
    pub announcements: HashMap<Uuid, Announcement>,
    /// Channels, their members and their messages (`channels.rs`).
    pub channels: Channels,
    /// Per user, whom they block, in the order blocked (Platform API block lists).
    pub blocks: HashMap<String, Vec<String>>,
    /// Conversations deleted for everyone, so the Platform API answers 410, not 404
    /// (bounded: past `max_conversations` of them, newer deletions are 404s).
    pub deleted_conversations: HashSet<Uuid>,
    /// Users the Platform API suspended: no new session until unsuspended.
    pub suspended: BTreeSet<String>,
    /// The lifetime of new sessions the app set (Platform API `session_ttl_in_seconds`).
    pub session_ttl_secs: Option<u64>,
    /// Per user, the badge count the app set (`PUT /users/{u}/badge`).
    pub external_unread: HashMap<String, u64>,
    /// What the badge on a push counts (Layer's dashboard setting; `PUT /_mock/badging`).
    pub badging: Badging,
    /// Delayed messages waiting for their time (`scheduled.rs`).
    pub scheduled: Vec<Scheduled>,
    /// Webhooks and the events waiting for them (`webhooks.rs`).
    pub webhooks: webhooks::Webhooks,
    /// How far the test controls moved this world's clock ahead of the wall clock.
    pub clock_offset_ms: i64,
    /// The latest timestamp handed out: time never goes backwards within a world, so
    /// `Event.replay` from a packet's timestamp never misses a later change.
    last_ms: i64,
    last_seq: u64,
    /// Messages created in this world since start (a reset keeps it: a counter never goes
    /// back).
    pub messages_created: prometheus_client::metrics::counter::Counter,
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
            tallies: HashMap::new(),
            content: ContentStore::new(limits.content),
            following: HashMap::new(),
            followers: HashMap::new(),
            sockets: HashMap::new(),
            log: ChangeLog::new(limits.replay),
            notifications: VecDeque::new(),
            blocks: HashMap::new(),
            announcements: HashMap::new(),
            channels: Channels::default(),
            deleted_conversations: HashSet::new(),
            suspended: BTreeSet::new(),
            scheduled: Vec::new(),
            webhooks: webhooks::Webhooks::default(),
            external_unread: HashMap::new(),
            badging: Badging::default(),
            session_ttl_secs: None,
            clock_offset_ms: 0,
            last_ms: 0,
            last_seq: 0,
            messages_created: Default::default(),
        }
    }

    /// Empties the world and closes every socket.
    pub fn reset(&mut self) {
        for handles in self.sockets.values() {
            for handle in handles {
                handle.kill();
            }
        }
        let offset = self.clock_offset_ms;
        let notify = self.webhooks.notify();
        let messages_created = self.messages_created.clone();
        *self = World::new(self.app, self.base.clone(), self.limits);
        // Time does not go back, even across a reset; the webhook sender stays attached.
        self.clock_offset_ms = offset;
        self.webhooks = webhooks::Webhooks::new(notify);
        self.messages_created = messages_created;
    }

    /// Now, in milliseconds, never earlier than a time already handed out.
    pub fn now_ms(&mut self) -> i64 {
        self.last_ms = self
            .last_ms
            .max(wall_clock_ms().saturating_add(self.clock_offset_ms));
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
        self.last_ms
            .max(wall_clock_ms().saturating_add(self.clock_offset_ms))
    }
}

/// A body as the JSON text that goes on the wire (serialising a `Value` cannot fail).
pub(super) fn json_text(body: &Value) -> Arc<str> {
    serde_json::to_string(body).unwrap_or_default().into()
}

/// The three deletion modes of Layer's Client API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeleteMode {
    AllParticipants,
    MyDevices { leave: bool },
}

/// A world with small caps and a fixed app, for unit tests.
#[cfg(test)]
pub(crate) fn test_world() -> World {
    use super::change_log::ReplayLimits;
    use super::content_store::ContentLimits;

    let limits = Limits {
        max_participants: 25,
        max_channel_members: 25,
        max_identities: 100,
        max_conversations: 100,
        max_messages: 10_000,
        max_message_bytes: 1 << 24,
        content: ContentLimits {
            max_item_bytes: 1 << 20,
            max_bytes_per_user: 1 << 20,
            max_bytes_per_app: 1 << 22,
            unattached_ttl_ms: 60_000,
        },
        max_sockets_per_session: 4,
        max_sockets_per_user: 4,
        replay: ReplayLimits {
            entries_per_user: 1_000,
            bytes_per_user: 1 << 20,
            bytes_per_app: 1 << 22,
        },
    };
    let app =
        super::ids::AppId::parse("layer:///apps/staging/5f2a8c1e-7d3b-4e6a-9c0f-1b2d3e4f5a6b")
            .expect("an app ID");
    World::new(app, "http://127.0.0.1:1".into(), limits)
}
