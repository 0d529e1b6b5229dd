//! Identities: who exists in an app, auto-provisioned as Layer does, and their profiles.

use super::*;

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
    /// Fields only the Platform API sets (identity tokens carry none of them).
    pub email_address: Option<String>,
    pub phone_number: Option<String>,
    pub metadata: Map<String, Value>,
    /// Made by the Platform API (`POST`/`PUT …/identity`) or by a session, not only
    /// provisioned because something named the user: a second `POST` is then a conflict.
    pub declared: bool,
}

impl World {
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
    pub(super) fn provision_within_room(&mut self, user: &str) -> &mut Identity {
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
                email_address: None,
                phone_number: None,
                metadata: Map::new(),
                declared: false,
            })
    }

    /// Whether the identities of `users` that do not exist yet fit under `max_identities` —
    /// asked before any is made, so a refused request provisions none.
    pub(crate) fn room_for_identities<'a>(
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
        identity.declared = true;
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
}
