//! Announcements (§C.6, §E.10 of the Platform API notes): messages from a named sender to
//! a list of users, outside any conversation. Each recipient has their own status and may
//! delete their copy; the server cannot edit one once sent.

use super::*;

#[derive(Debug, Clone)]
pub struct Announcement {
    pub uuid: Uuid,
    pub sent_ms: i64,
    /// Where its sending falls among everything the world did (lists sort by it).
    pub seq: u64,
    pub sender_name: String,
    /// In the order given, each once.
    pub recipients: Vec<String>,
    pub parts: Vec<Part>,
    pub notification: Option<Value>,
    /// Each recipient's status; a recipient who deleted their copy is gone from it.
    pub status: BTreeMap<String, Status>,
}

impl Announcement {
    pub fn id(&self) -> String {
        object_id(Kind::Announcements, &self.uuid)
    }
}

impl World {
    /// Sends an announcement: every recipient exists from then on and each of their
    /// sockets gets a `create` of their copy. `uuid` is a de-duplication tag's, if any.
    pub fn send_announcement(
        &mut self,
        uuid: Option<Uuid>,
        sender_name: String,
        recipients: Vec<String>,
        input: NewMessage,
    ) -> Result<Uuid, LayerError> {
        let mut seen = HashSet::new();
        let recipients: Vec<String> = recipients
            .into_iter()
            .filter(|r| seen.insert(r.clone()))
            .collect();
        let uuid = uuid.unwrap_or_else(Uuid::new_v4);
        if self.announcements.contains_key(&uuid) {
            return Ok(uuid);
        }
        if self.held_messages() >= self.limits.max_messages {
            return Err(LayerError::rate_limit_exceeded(format!(
                "this app holds {} messages, announcements and channel messages, the most \
                 the emulator keeps (mock_layer.max_messages)",
                self.held_messages()
            )));
        }
        let id = object_id(Kind::Announcements, &uuid);
        let mut parts = Vec::with_capacity(input.parts.len());
        for (index, part) in input.parts.into_iter().enumerate() {
            parts.push(self.accept_part("", &id, index, part)?);
        }
        self.room_for_identities(recipients.iter().map(String::as_str))?;
        for user in &recipients {
            self.provision_within_room(user);
        }
        let announcement = Announcement {
            uuid,
            sent_ms: self.now_ms(),
            seq: self.next_seq(),
            sender_name,
            status: recipients
                .iter()
                .map(|r| (r.clone(), Status::Sent))
                .collect(),
            recipients,
            parts,
            notification: input.notification.clone(),
        };
        self.announcements.insert(uuid, announcement.clone());
        for user in &announcement.recipients {
            let body = json!({
                "operation": "create",
                "object": self.object_ref("Announcement", &announcement.id()),
                "data": self.announcement_view(&announcement, user),
            });
            self.emit(user, PacketKind::Change, body);
        }
        if let Some(notification) = input.notification {
            self.log_push(Notification {
                at_ms: announcement.sent_ms,
                message: announcement.id(),
                conversation: String::new(),
                sender: announcement.sender_name.clone(),
                recipients: announcement.recipients.clone(),
                notification,
                badges: Vec::new(),
            });
        }
        Ok(uuid)
    }

    /// The announcement as `viewer` sees it, if it is theirs and not deleted.
    pub fn announcement_for(&self, viewer: &str, uuid: &Uuid) -> Result<&Announcement, LayerError> {
        self.announcements
            .get(uuid)
            .filter(|a| a.status.contains_key(viewer))
            .ok_or_else(|| {
                LayerError::not_found(format!(
                    "there is no announcement {}",
                    object_id(Kind::Announcements, uuid)
                ))
            })
    }

    /// A recipient's receipt: their status only goes up, and only their sockets hear it.
    pub fn announcement_receipt(
        &mut self,
        viewer: &str,
        uuid: &Uuid,
        kind: ReceiptKind,
    ) -> Result<(), LayerError> {
        let announcement = self.announcement_for(viewer, uuid)?.clone();
        let wanted = match kind {
            ReceiptKind::Delivery => Status::Delivered,
            ReceiptKind::Read => Status::Read,
        };
        if announcement
            .status
            .get(viewer)
            .is_some_and(|s| *s >= wanted)
        {
            return Ok(());
        }
        if let Some(a) = self.announcements.get_mut(uuid) {
            a.status.insert(viewer.to_owned(), wanted);
        }
        let body = json!({
            "operation": "update",
            "object": self.object_ref("Announcement", &announcement.id()),
            "data": [{
                "operation": "set",
                "property": format!("recipient_status.{}", escape_patch_key(&identity_id(viewer))),
                "value": wanted.as_str(),
            }],
        });
        self.emit(viewer, PacketKind::Change, body);
        Ok(())
    }

    /// A recipient deletes their copy; the announcement goes when nobody holds one.
    pub fn delete_announcement(&mut self, viewer: &str, uuid: &Uuid) -> Result<(), LayerError> {
        let id = self.announcement_for(viewer, uuid)?.id();
        if let Some(a) = self.announcements.get_mut(uuid) {
            a.status.remove(viewer);
            if a.status.is_empty() {
                self.announcements.remove(uuid);
            }
        }
        let body = json!({
            "operation": "delete",
            "object": self.object_ref("Announcement", &id),
            "data": {},
        });
        self.emit(viewer, PacketKind::Change, body);
        Ok(())
    }

    /// The Client API's view of a recipient's copy: a message without a conversation.
    pub fn announcement_view(&self, announcement: &Announcement, viewer: &str) -> Value {
        let id = announcement.id();
        let url = self.url_of(&id);
        let status = announcement
            .status
            .get(viewer)
            .copied()
            .unwrap_or(Status::Read);
        let parts: Vec<Value> = announcement
            .parts
            .iter()
            .enumerate()
            .map(|(index, part)| {
                json!({
                    "id": format!("{id}/parts/{index}"),
                    "mime_type": part.mime_type,
                    "body": part.body,
                    "encoding": part.encoding,
                    "size": part.size,
                })
            })
            .collect();
        json!({
            "id": id,
            "url": url,
            "receipts_url": format!("{url}/receipts"),
            "position": announcement.seq,
            "parts": parts,
            "sent_at": iso_ms(announcement.sent_ms),
            "received_at": iso_ms(announcement.sent_ms),
            "sender": {
                "id": null, "url": null, "user_id": null,
                "display_name": announcement.sender_name, "avatar_url": null,
                "name": announcement.sender_name,
            },
            "is_unread": status != Status::Read,
            "recipient_status": {identity_id(viewer): status.as_str()},
            "notification": announcement.notification,
        })
    }
}
