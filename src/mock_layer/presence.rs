//! Following and presence: who sees whose identity, and how a change of presence reaches
//! them (§C.3 `Presence.*`, §C.4 Identity changes; Layer's "Following Users" docs).
//!
//! A user follows everyone they share a conversation with — Layer followed participants
//! implicitly, and they cannot be unfollowed — and whoever they follow explicitly
//! (`PUT /following/users/{id}`). `GET /identities` lists the identities a user follows.
//!
//! The presence a user *shows* is what they set with `Presence.update`, or `offline` while
//! they have no socket open (`auto` shows as `available`, `invisible` as `offline`).
//! Whenever it changes — their first socket opens, their last one closes, or they set
//! another status — each socket of each of their followers gets an Identity `update` change
//! setting `presence.status` and `presence.last_seen_at`, which the SDK applies to its copy
//! of the identity. These are not kept for `Event.replay` (a replayed "online" would be
//! stale); a client that was away asks `Presence.sync {since}`, answered from the time each
//! followed identity's shown presence last changed.
//!
//! Implicit follows are worked out from the conversations when needed, so they end when the
//! last shared conversation does (Layer kept them); that costs a pass over the app's
//! conversations per presence change or identity list, which the emulator's caps keep small.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use super::change_log::{ClientApi, Outbound, PacketKind};
use super::error::LayerError;
use super::ids::identity_id;
use super::world::{PresenceStatus, World, json_text};
use crate::clock::iso_ms;

/// Explicit follows per user. Layer documented no limit; this one keeps a loop of
/// `PUT /following/users/{id}` from growing memory without bound.
pub const MAX_FOLLOWS_PER_USER: usize = 1_000;

impl World {
    /// `PUT /following/users/{id}`.
    pub fn follow(&mut self, follower: &str, followed: &str) -> Result<(), LayerError> {
        let count = self.following.get(follower).map_or(0, BTreeSet::len);
        let already = self
            .following
            .get(follower)
            .is_some_and(|f| f.contains(followed));
        if !already && count >= MAX_FOLLOWS_PER_USER {
            return Err(LayerError::rate_limit_exceeded(format!(
                "a user follows at most {MAX_FOLLOWS_PER_USER} identities explicitly here"
            )));
        }
        self.provision(followed)?;
        self.following
            .entry(follower.to_owned())
            .or_default()
            .insert(followed.to_owned());
        self.followers
            .entry(followed.to_owned())
            .or_default()
            .insert(follower.to_owned());
        Ok(())
    }

    /// `DELETE /following/users/{id}`: ends an explicit follow (participants stay followed).
    pub fn unfollow(&mut self, follower: &str, followed: &str) {
        if let Some(set) = self.following.get_mut(follower) {
            set.remove(followed);
        }
        if let Some(set) = self.followers.get_mut(followed) {
            set.remove(follower);
        }
    }

    /// The users `user` shares a conversation with, themselves excluded.
    fn fellow_participants(&self, user: &str) -> BTreeSet<String> {
        self.conversations
            .values()
            .filter(|c| c.is_participant(user))
            .flat_map(|c| c.participants.iter())
            .filter(|p| *p != user)
            .cloned()
            .collect()
    }

    /// Whom `user` follows: the participants of their conversations and their explicit
    /// follows.
    pub fn followed_by(&self, user: &str) -> BTreeSet<String> {
        let mut followed = self.fellow_participants(user);
        if let Some(explicit) = self.following.get(user) {
            followed.extend(explicit.iter().filter(|f| *f != user).cloned());
        }
        followed
    }

    /// Who follows `user`: the other side of [`World::followed_by`].
    pub fn followers_of(&self, user: &str) -> BTreeSet<String> {
        let mut followers = self.fellow_participants(user);
        if let Some(explicit) = self.followers.get(user) {
            followers.extend(explicit.iter().filter(|f| *f != user).cloned());
        }
        followers
    }

    /// The presence `user` shows others, and when they were last seen.
    pub fn shown_presence(&self, user: &str) -> (&'static str, Option<i64>) {
        let identity = self.identities.get(user);
        let online = self.sockets.get(user).is_some_and(|s| !s.is_empty());
        let status = match identity.map(|i| i.presence) {
            _ if !online => "offline",
            Some(PresenceStatus::Away) => "away",
            Some(PresenceStatus::Busy) => "busy",
            Some(PresenceStatus::Offline | PresenceStatus::Invisible) => "offline",
            _ => "available",
        };
        (status, identity.and_then(|i| i.last_seen_ms))
    }

    /// `Presence.update`: what the user chose to show.
    pub fn set_presence(&mut self, user: &str, status: PresenceStatus) -> Result<(), LayerError> {
        let before = self.shown_presence(user).0;
        let now = self.now_ms();
        let identity = self.provision(user)?;
        identity.presence = status;
        identity.last_seen_ms = Some(now);
        self.presence_may_have_changed(user, before);
        Ok(())
    }

    /// Call after anything that may change what `user` shows, with what they showed
    /// before: if it changed, the time is noted and their followers are told.
    pub(super) fn presence_may_have_changed(&mut self, user: &str, before: &'static str) {
        if self.shown_presence(user).0 == before {
            return;
        }
        let now = self.now_ms();
        if let Some(identity) = self.identities.get_mut(user) {
            identity.presence_changed_ms = now;
        }
        let change = Outbound {
            min_api: ClientApi::V2,
            kind: PacketKind::Change,
            at_ms: now,
            body: json_text(&self.presence_change(user)),
        };
        for follower in self.followers_of(user) {
            self.send(&follower, &change);
        }
    }

    /// Presence as an Identity `update` change body (pushes and `Presence.sync`).
    pub fn presence_change(&self, user: &str) -> Value {
        let (status, last_seen) = self.shown_presence(user);
        let mut ops =
            vec![json!({"operation": "set", "property": "presence.status", "value": status})];
        if let Some(ms) = last_seen {
            ops.push(json!({"operation": "set", "property": "presence.last_seen_at", "value": iso_ms(ms)}));
        }
        json!({
            "operation": "update",
            "object": self.object_ref("Identity", &identity_id(user)),
            "data": ops,
        })
    }

    /// `Presence.sync {since}`: the presence of every identity `viewer` follows whose shown
    /// presence changed at or after `since_ms`.
    pub fn presence_since(&self, viewer: &str, since_ms: i64) -> Vec<Value> {
        self.followed_by(viewer)
            .iter()
            .filter(|user| {
                self.identities
                    .get(*user)
                    .is_some_and(|i| i.presence_changed_ms >= since_ms)
            })
            .map(|user| self.presence_change(user))
            .collect()
    }
}
