//! The open WebSockets, fan-out to them, typing relays, and the change log that
//! `Event.replay` re-sends.

use super::*;

/// One open WebSocket, as the world sees it.
#[derive(Debug)]
pub struct SocketHandle {
    pub id: u64,
    /// The session it was opened with, so ending a session closes its sockets.
    pub session: String,
    pub tx: mpsc::Sender<Outbound>,
    /// What it understands: packets for a newer Client API are not sent to it.
    pub api: ClientApi,
    /// Set to make the socket close itself (a state, not an event: a socket busy when it is
    /// set still sees it), and why.
    pub kill: watch::Sender<Option<SocketEnd>>,
}

/// Why the world closes a socket: the close frame says so.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SocketEnd {
    /// Logout, ended sessions, a test control, a queue it let fill up.
    Closed,
    /// Its session expired when the app's clock moved past it.
    Expired,
}

impl SocketHandle {
    pub fn kill(&self) {
        self.end(SocketEnd::Closed);
    }

    pub fn end(&self, why: SocketEnd) {
        self.kill.send_if_modified(|state| {
            let first = state.is_none();
            if first {
                *state = Some(why);
            }
            first
        });
    }
}

impl World {
    // ----- typing (presence lives in presence.rs) -----

    /// Relays a typing indicator to the other participants' sockets (not logged: a
    /// replayed "typing" would be a lie).
    pub fn relay_typing(
        &mut self,
        caller: &str,
        uuid: &Uuid,
        action: &str,
    ) -> Result<(), LayerError> {
        let conversation = self.conversation_for(caller, uuid)?;
        let audience: Vec<String> = conversation
            .audience()
            .filter(|u| *u != caller)
            .cloned()
            .collect();
        let id = conversation.id();
        let signal = Outbound {
            min_api: ClientApi::V2,
            kind: PacketKind::Signal,
            at_ms: self.now_ms(),
            body: json_text(&json!({
                "type": "typing_indicator",
                "object": self.object_ref("Conversation", &id),
                "data": {"sender": self.identity_basic(caller), "action": action},
            })),
        };
        for user in &audience {
            // Neither of two users, one blocking the other, sees the other typing (§E.11).
            if !self.blocks(user, caller) && !self.blocks(caller, user) {
                self.send(user, &signal);
            }
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
        self.end_sockets(user, session, SocketEnd::Closed)
    }

    /// [`Self::close_sockets`], saying why.
    pub fn end_sockets(&mut self, user: &str, session: Option<&str>, why: SocketEnd) -> usize {
        let before = self.shown_presence(user).0;
        let mut closed = 0;
        if let Some(handles) = self.sockets.get_mut(user) {
            handles.retain(|h| {
                let close = session.is_none_or(|s| s == h.session);
                if close {
                    h.end(why);
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
    pub(super) fn emit(&mut self, user: &str, kind: PacketKind, body: Value) {
        self.emit_for(user, kind, body, ClientApi::V2);
    }

    /// [`Self::emit`] for clients of `min_api` and newer only.
    pub(super) fn emit_for(
        &mut self,
        user: &str,
        kind: PacketKind,
        body: Value,
        min_api: ClientApi,
    ) {
        let packet = Outbound {
            kind,
            at_ms: self.now_ms(),
            body: json_text(&body),
            min_api,
        };
        self.send(user, &packet);
        self.log.record(user, packet);
    }

    /// [`Self::emit`] of a body already serialised, which several users' sockets and logs
    /// can share.
    pub(super) fn emit_text(&mut self, user: &str, kind: PacketKind, body: Arc<str>) {
        let packet = Outbound {
            kind,
            at_ms: self.now_ms(),
            body,
            min_api: ClientApi::V2,
        };
        self.send(user, &packet);
        self.log.record(user, packet);
    }

    /// Hands a packet to each of the user's sockets without waiting. A socket whose queue is
    /// full is closed: it is too far behind, and its client will replay what it missed.
    pub(crate) fn send(&mut self, user: &str, packet: &Outbound) {
        let Some(handles) = self.sockets.get_mut(user) else {
            return;
        };
        handles.retain(|h| {
            if h.api < packet.min_api {
                return true;
            }
            match h.tx.try_send(packet.clone()) {
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
            }
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
