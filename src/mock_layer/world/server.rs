//! What only an app's server does to the world (the Platform API): managing identities and
//! their metadata, block lists, suspension, and remembering deleted conversations. Each
//! change is pushed to SDK clients the way Layer did (§E of the Platform API notes):
//! identity changes to the user and everyone who follows them.

use super::*;

/// The fields of an identity the Platform API sets in one go (`POST`/`PUT …/identity`).
/// `None` leaves a field empty.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IdentityFields {
    pub display_name: Option<String>,
    pub avatar_url: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub phone_number: Option<String>,
    pub email_address: Option<String>,
    pub public_key: Option<String>,
    pub metadata: Map<String, Value>,
}

/// One `set` of an identity's Layer-Patch (`PATCH …/identity`).
#[derive(Debug, Clone, PartialEq)]
pub enum IdentityOp {
    /// A top-level field by its wire name; `None` (or `""`) clears it.
    Field(&'static str, Option<String>),
    /// `metadata.<key>`; `None` removes the key.
    MetadataKey(String, Option<String>),
    /// `metadata` as a whole.
    Metadata(Map<String, Value>),
}

/// The identity fields a Platform API client may name, as the Client API names them.
pub const IDENTITY_FIELDS: [&str; 7] = [
    "display_name",
    "avatar_url",
    "first_name",
    "last_name",
    "phone_number",
    "email_address",
    "public_key",
];

impl Identity {
    fn field_mut(&mut self, name: &str) -> Option<&mut Option<String>> {
        Some(match name {
            "display_name" => &mut self.profile.display_name,
            "avatar_url" => &mut self.profile.avatar_url,
            "first_name" => &mut self.profile.first_name,
            "last_name" => &mut self.profile.last_name,
            "public_key" => &mut self.profile.public_key,
            "phone_number" => &mut self.phone_number,
            "email_address" => &mut self.email_address,
            _ => return None,
        })
    }

    fn fields(&self) -> IdentityFields {
        IdentityFields {
            display_name: self.profile.display_name.clone(),
            avatar_url: self.profile.avatar_url.clone(),
            first_name: self.profile.first_name.clone(),
            last_name: self.profile.last_name.clone(),
            phone_number: self.phone_number.clone(),
            email_address: self.email_address.clone(),
            public_key: self.profile.public_key.clone(),
            metadata: self.metadata.clone(),
        }
    }
}

impl IdentityFields {
    fn get(&self, name: &str) -> Option<&Option<String>> {
        Some(match name {
            "display_name" => &self.display_name,
            "avatar_url" => &self.avatar_url,
            "first_name" => &self.first_name,
            "last_name" => &self.last_name,
            "public_key" => &self.public_key,
            "phone_number" => &self.phone_number,
            "email_address" => &self.email_address,
            _ => return None,
        })
    }
}

impl World {
    /// `POST /users/{u}/identity`: 409 if the identity was made already (by the Platform
    /// API or a session); one only provisioned because something named the user is filled.
    pub fn create_identity(
        &mut self,
        user: &str,
        fields: IdentityFields,
    ) -> Result<(), LayerError> {
        if self.identities.get(user).is_some_and(|i| i.declared) {
            return Err(LayerError::new(
                ErrorKind::Conflict,
                format!("the identity of {user:?} exists already; PUT or PATCH it"),
            ));
        }
        self.write_identity(user, fields)?;
        let body = json!({
            "operation": "create",
            "object": self.object_ref("Identity", &identity_id(user)),
            "data": self.identity_full(user),
        });
        self.tell_identity_audience(user, body);
        Ok(())
    }

    /// `PUT /users/{u}/identity`: every field replaced (absent ones emptied); followers get
    /// one `set` per changed field.
    pub fn replace_identity(
        &mut self,
        user: &str,
        fields: IdentityFields,
    ) -> Result<(), LayerError> {
        let before = self.provision(user)?.fields();
        self.write_identity(user, fields.clone())?;
        let mut ops = Vec::new();
        for name in IDENTITY_FIELDS {
            let (old, new) = (before.get(name), fields.get(name));
            if old != new {
                let value = new.cloned().flatten().unwrap_or_default();
                ops.push(json!({"operation": "set", "property": name, "value": value}));
            }
        }
        if before.metadata != fields.metadata {
            ops.push(json!({"operation": "set", "property": "metadata", "value": fields.metadata}));
        }
        self.tell_identity_update(user, ops);
        Ok(())
    }

    fn write_identity(&mut self, user: &str, fields: IdentityFields) -> Result<(), LayerError> {
        let identity = self.provision(user)?;
        identity.declared = true;
        identity.profile.display_name = fields.display_name;
        identity.profile.avatar_url = fields.avatar_url;
        identity.profile.first_name = fields.first_name;
        identity.profile.last_name = fields.last_name;
        identity.profile.public_key = fields.public_key;
        identity.phone_number = fields.phone_number;
        identity.email_address = fields.email_address;
        identity.metadata = fields.metadata;
        Ok(())
    }

    /// `PATCH /users/{u}/identity`: the operations in order, all or nothing (the metadata
    /// rules are checked on the result); followers get the same operations.
    pub fn patch_identity(&mut self, user: &str, ops: Vec<IdentityOp>) -> Result<(), LayerError> {
        let Some(identity) = self.identities.get(user) else {
            return Err(unknown_user(user));
        };
        let mut after = identity.clone();
        let mut wire = Vec::with_capacity(ops.len());
        for op in ops {
            match op {
                IdentityOp::Field(name, value) => {
                    let value = value.filter(|v| !v.is_empty());
                    if let Some(slot) = after.field_mut(name) {
                        *slot = value.clone();
                    }
                    wire.push(json!({"operation": "set", "property": name, "value": value.unwrap_or_default()}));
                }
                IdentityOp::MetadataKey(key, Some(value)) => {
                    after
                        .metadata
                        .insert(key.clone(), Value::String(value.clone()));
                    let property = format!("metadata.{}", escape_patch_key(&key));
                    wire.push(json!({"operation": "set", "property": property, "value": value}));
                }
                IdentityOp::MetadataKey(key, None) => {
                    after.metadata.remove(&key);
                    let property = format!("metadata.{}", escape_patch_key(&key));
                    wire.push(json!({"operation": "delete", "property": property}));
                }
                IdentityOp::Metadata(map) => {
                    wire.push(json!({"operation": "set", "property": "metadata", "value": map}));
                    after.metadata = map;
                }
            }
        }
        check_identity_metadata(&after.metadata)?;
        after.declared = true;
        self.identities.insert(user.to_owned(), after);
        self.tell_identity_update(user, wire);
        Ok(())
    }

    /// `DELETE /users/{u}/identity`: the identity is emptied (the user may still take part
    /// in conversations) and followers get a `delete`.
    pub fn delete_identity(&mut self, user: &str) -> Result<(), LayerError> {
        let Some(identity) = self.identities.get_mut(user) else {
            return Err(unknown_user(user));
        };
        identity.profile = Profile::default();
        identity.email_address = None;
        identity.phone_number = None;
        identity.metadata = Map::new();
        identity.declared = false;
        let body = json!({
            "operation": "delete",
            "object": self.object_ref("Identity", &identity_id(user)),
            "data": null,
        });
        self.tell_identity_audience(user, body);
        Ok(())
    }

    fn tell_identity_update(&mut self, user: &str, ops: Vec<Value>) {
        if ops.is_empty() {
            return;
        }
        let body = json!({
            "operation": "update",
            "object": self.object_ref("Identity", &identity_id(user)),
            "data": ops,
        });
        self.tell_identity_audience(user, body);
    }

    /// An identity change goes to the user's own sockets and to every follower's.
    fn tell_identity_audience(&mut self, user: &str, body: Value) {
        let mut audience = self.followers_of(user);
        audience.insert(user.to_owned());
        for follower in audience {
            self.emit(&follower, PacketKind::Change, body.clone());
        }
    }

    // ----- block lists -----

    /// Whether `owner` blocks `target`.
    pub fn blocks(&self, owner: &str, target: &str) -> bool {
        self.blocks
            .get(owner)
            .is_some_and(|list| list.iter().any(|b| b == target))
    }

    /// `owner` blocks `target` (again is no change); both exist from then on.
    pub fn block(&mut self, owner: &str, target: &str) -> Result<(), LayerError> {
        if !self.blocks(owner, target) {
            let count = self.blocks.get(owner).map_or(0, Vec::len);
            check_block_room(count + 1)?;
        }
        self.add_block(owner, target)
    }

    /// [`Self::block`] for a caller that checked the list it ends with against
    /// [`MAX_BLOCKS_PER_USER`] (a bulk patch may pass it on the way).
    pub fn add_block(&mut self, owner: &str, target: &str) -> Result<(), LayerError> {
        self.room_for_identities([owner, target])?;
        self.provision_within_room(owner);
        self.provision_within_room(target);
        let list = self.blocks.entry(owner.to_owned()).or_default();
        if !list.iter().any(|b| b == target) {
            list.push(target.to_owned());
        }
        Ok(())
    }

    pub fn unblock(&mut self, owner: &str, target: &str) {
        if let Some(list) = self.blocks.get_mut(owner) {
            list.retain(|b| b != target);
            if list.is_empty() {
                self.blocks.remove(owner);
            }
        }
    }

    pub fn block_list(&self, owner: &str) -> Vec<String> {
        self.blocks.get(owner).cloned().unwrap_or_default()
    }

    // ----- pushes and badges -----

    /// `POST /notifications`: a push to each recipient, and nothing else (§E.13).
    pub fn push_notification(
        &mut self,
        recipients: Vec<String>,
        notification: Value,
    ) -> Result<(), LayerError> {
        self.room_for_identities(recipients.iter().map(String::as_str))?;
        for user in &recipients {
            self.provision_within_room(user);
        }
        self.log_server_push(recipients, notification);
        Ok(())
    }

    /// Logs a push the server sent on its own: about no message, from no one.
    fn log_server_push(&mut self, recipients: Vec<String>, notification: Value) {
        let at_ms = self.now_ms();
        self.log_push(Notification {
            at_ms,
            message: String::new(),
            conversation: String::new(),
            sender: String::new(),
            recipients,
            notification,
            badges: Vec::new(),
        });
    }

    /// `PUT /users/{u}/badge`: the new count goes out at once in a silent push (§C.9).
    pub fn push_badge(&mut self, user: &str) {
        self.log_server_push(vec![user.to_owned()], json!({}));
    }

    /// Records a push as it would go out, each recipient's badge number with it, keeping the
    /// last [`NOTIFICATION_LOG_SIZE`].
    pub(super) fn log_push(&mut self, mut push: Notification) {
        push.badges = push
            .recipients
            .iter()
            .map(|u| self.badge_number(u))
            .collect();
        self.notifications.push_back(push);
        while self.notifications.len() > NOTIFICATION_LOG_SIZE {
            self.notifications.pop_front();
        }
    }

    /// The badge a push shows a user, by the app's badging mode: the app's own count
    /// (`PUT …/badge`) plus the user's unread messages or unread conversations (and, if the
    /// app counts them, unread announcements), the app's count alone, or none.
    pub fn badge_number(&self, user: &str) -> Option<u64> {
        let external = self.external_unread.get(user).copied().unwrap_or(0);
        let unread = |count: &dyn Fn(usize) -> usize| -> u64 {
            self.conversations
                .values()
                .filter(|c| c.is_participant(user))
                .map(|c| count(self.unread_count(c, user)))
                .sum::<usize>() as u64
        };
        let counted = match self.badging.mode {
            BadgingMode::Off => return None,
            BadgingMode::ExternalOnly => return Some(external),
            BadgingMode::UnreadMessages => unread(&|n| n),
            BadgingMode::UnreadConversations => unread(&|n| usize::from(n > 0)),
        };
        let announcements = if self.badging.announcements {
            self.announcements
                .values()
                .filter(|a| a.status.get(user).is_some_and(|s| *s != Status::Read))
                .count() as u64
        } else {
            0
        };
        Some(
            external
                .saturating_add(counted)
                .saturating_add(announcements),
        )
    }

    /// The badge of `GET /users/{u}/badge`: what the app set, and the user's unread counts.
    pub fn badge(&self, user: &str) -> Value {
        let mut conversations = 0;
        let mut messages = 0;
        for conversation in self
            .conversations
            .values()
            .filter(|c| c.is_participant(user))
        {
            let unread = self.unread_count(conversation, user);
            if unread > 0 {
                conversations += 1;
                messages += unread;
            }
        }
        json!({
            "external_unread_count": self.external_unread.get(user).copied().unwrap_or(0),
            "unread_conversation_count": conversations,
            "unread_message_count": messages,
        })
    }

    // ----- deleted conversations -----

    pub(super) fn note_deleted_conversation(&mut self, uuid: Uuid) {
        if self.deleted_conversations.len() < self.limits.max_conversations {
            self.deleted_conversations.insert(uuid);
        }
    }
}

/// What the badge of a push counts besides the app's own number (§C.9, Layer's badging
/// setting).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum BadgingMode {
    /// Unread messages (Layer's default).
    #[default]
    UnreadMessages,
    /// Conversations with unread messages.
    UnreadConversations,
    /// Only what the app set with `PUT /users/{u}/badge`.
    ExternalOnly,
    /// No badge.
    Off,
}

impl BadgingMode {
    pub const NAMES: [&'static str; 4] = [
        "unread_messages",
        "unread_conversations",
        "external_only",
        "off",
    ];

    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "unread_messages" => Self::UnreadMessages,
            "unread_conversations" => Self::UnreadConversations,
            "external_only" => Self::ExternalOnly,
            "off" => Self::Off,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::UnreadMessages => "unread_messages",
            Self::UnreadConversations => "unread_conversations",
            Self::ExternalOnly => "external_only",
            Self::Off => "off",
        }
    }
}

/// An app's badging: the mode, and whether unread announcements count too.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Badging {
    pub mode: BadgingMode,
    pub announcements: bool,
}

/// 404 for a user the app never mentioned.
pub fn unknown_user(user: &str) -> LayerError {
    LayerError::not_found(format!(
        "there is no user {user:?} in this app (users exist once they authenticate or the \
         Platform API names them)"
    ))
}

/// Layer's rule for identity metadata: at most 16 keys, string values, no nesting.
pub fn check_identity_metadata(metadata: &Map<String, Value>) -> Result<(), LayerError> {
    if metadata.len() > 16 {
        return Err(LayerError::invalid_property(
            "metadata",
            format!(
                "identity metadata has at most 16 keys; this has {}",
                metadata.len()
            ),
        ));
    }
    if let Some((key, _)) = metadata.iter().find(|(_, v)| !v.is_string()) {
        return Err(LayerError::invalid_property(
            "metadata",
            format!("identity metadata values are strings; {key:?} is not"),
        ));
    }
    Ok(())
}

/// Users one user may block. Layer documented no limit; this one keeps a loop of
/// `POST /users/{u}/blocks` from growing memory without bound, and the block check every
/// message makes short.
pub const MAX_BLOCKS_PER_USER: usize = 1_000;

/// 429 if a block list of `count` users would pass [`MAX_BLOCKS_PER_USER`].
pub fn check_block_room(count: usize) -> Result<(), LayerError> {
    if count > MAX_BLOCKS_PER_USER {
        return Err(LayerError::rate_limit_exceeded(format!(
            "a user blocks at most {MAX_BLOCKS_PER_USER} users here; this would make {count}"
        )));
    }
    Ok(())
}
