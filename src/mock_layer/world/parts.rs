//! A sent message's parts, edited by the server (Platform API 3.0, §C.4 and §E.9 of the
//! Platform API notes): add, update, replace all, delete. Every participant who sees the
//! message gets the change as the XDK's parser consumes it — an `add`/`remove` of `parts`
//! on the Message, a `set` of `body`/`mime_type` on the MessagePart.

use super::*;

impl World {
    /// Gives every part of the message its ID for good (`…/parts/<index>` for those sent
    /// without one), so that removing a part never renames the others.
    fn freeze_part_ids(&mut self, uuid: &Uuid) {
        if let Some(message) = self.messages.get_mut(uuid) {
            let id = message.id();
            for (index, part) in message.parts.iter_mut().enumerate() {
                part.id.get_or_insert_with(|| format!("{id}/parts/{index}"));
            }
        }
    }

    /// The part whose ID ends in `/parts/<key>`.
    pub fn part_index(&self, message: &Message, key: &str) -> Option<usize> {
        let suffix = format!("/parts/{key}");
        let id = message.id();
        message.parts.iter().enumerate().position(|(index, part)| {
            part.id
                .clone()
                .unwrap_or_else(|| format!("{id}/parts/{index}"))
                .ends_with(&suffix)
        })
    }

    /// One part of a message as the Client API shows it.
    pub fn part_at(&self, message: &Message, index: usize) -> Value {
        match message.parts.get(index) {
            Some(part) => self.part_view(&message.id(), index, part),
            None => Value::Null,
        }
    }

    fn check_part_count(message: &Message, count: usize) -> Result<(), LayerError> {
        if count == 0 || count > 64 {
            return Err(LayerError::invalid_property(
                "parts",
                format!(
                    "a message has 1 to 64 parts; {} would have {count}",
                    message.id()
                ),
            ));
        }
        Ok(())
    }

    /// Re-measures a message whose parts changed, within `max_message_bytes`.
    fn remeasure(&mut self, uuid: &Uuid, before: &Message) -> Result<(), LayerError> {
        let Some(message) = self.messages.get(uuid) else {
            return Ok(());
        };
        let size = message.measure();
        let others = self.message_bytes.saturating_sub(before.stored_bytes);
        if others.saturating_add(size) > self.limits.max_message_bytes {
            self.messages.insert(*uuid, before.clone());
            return Err(LayerError::rate_limit_exceeded(
                "the app's messages would pass mock_layer.max_message_bytes",
            ));
        }
        self.message_bytes = others.saturating_add(size);
        if let Some(message) = self.messages.get_mut(uuid) {
            message.stored_bytes = size;
        }
        Ok(())
    }

    /// Marks the message's parts changed now, `changed` (by index) with them; the rich
    /// content its parts now use belongs to it (it is freed with the message).
    fn stamp_parts(&mut self, uuid: &Uuid, changed: impl IntoIterator<Item = usize>) {
        let now = self.now_ms();
        let Some(message) = self.messages.get_mut(uuid) else {
            return;
        };
        message.updated_ms = Some(now);
        for index in changed {
            if let Some(part) = message.parts.get_mut(index) {
                part.updated_ms = Some(now);
            }
        }
        let contents: Vec<Uuid> = message.parts.iter().filter_map(|p| p.content).collect();
        for content in contents {
            self.content.attach(&content, *uuid);
        }
    }

    /// Pushes a change to every participant who sees the message.
    fn tell_viewers(&mut self, message: &Message, body: Value) {
        let Some(conversation) = self.conversations.get(&message.conversation) else {
            return;
        };
        let viewers: Vec<String> = conversation
            .participants
            .iter()
            .filter(|p| !message.hidden_for.contains(*p))
            .cloned()
            .collect();
        // Client API 3.0 only: a 2.0 client (the WebSDK) has no use for part changes.
        for user in viewers {
            self.emit_for(&user, PacketKind::Change, body.clone(), ClientApi::V3);
        }
    }

    /// Adds parts to a message; returns their IDs. A part without an ID gets a new one.
    pub fn add_parts(
        &mut self,
        uuid: &Uuid,
        parts: Vec<NewPart>,
    ) -> Result<Vec<String>, LayerError> {
        let before = self
            .messages
            .get(uuid)
            .cloned()
            .ok_or_else(|| no_message(uuid))?;
        Self::check_part_count(&before, before.parts.len() + parts.len())?;
        let id = before.id();
        let mut accepted = Vec::with_capacity(parts.len());
        for (index, mut part) in parts.into_iter().enumerate() {
            let part_id = part
                .id
                .take()
                .unwrap_or_else(|| format!("{id}/parts/{}", Uuid::new_v4()));
            if before
                .parts
                .iter()
                .any(|p| p.id.as_deref() == Some(&part_id))
                || accepted
                    .iter()
                    .any(|p: &Part| p.id.as_deref() == Some(&part_id))
            {
                return Err(LayerError::new(
                    ErrorKind::IdInUse,
                    format!("the part ID {part_id} is already in use"),
                ));
            }
            part.id = Some(part_id);
            accepted.push(self.accept_part("", &id, index, part)?);
        }
        self.freeze_part_ids(uuid);
        let ids: Vec<String> = accepted.iter().filter_map(|p| p.id.clone()).collect();
        if let Some(message) = self.messages.get_mut(uuid) {
            message.parts.extend(accepted);
        }
        self.remeasure(uuid, &before)?;
        let start = before.parts.len();
        self.stamp_parts(uuid, start..start + ids.len());
        let Some(message) = self.messages.get(uuid).cloned() else {
            return Ok(ids);
        };
        let ops: Vec<Value> = ids
            .iter()
            .enumerate()
            .map(|(i, part_id)| {
                json!({"operation": "add", "property": "parts", "id": part_id,
                       "value": self.part_at(&message, start + i)})
            })
            .collect();
        let body =
            json!({"operation": "update", "object": self.object_ref("Message", &id), "data": ops});
        self.tell_viewers(&message, body);
        for part in &message.parts[start..] {
            self.record_part_event(EventKind::PartCreated, &message, part);
        }
        Ok(ids)
    }

    /// A webhook event about one part of a message as it is now.
    fn record_part_event(&mut self, kind: EventKind, message: &Message, part: &Part) {
        self.record_event(kind, None, |_| {
            Some(Subject::Part {
                message: Box::new(message.clone()),
                part: part.clone(),
            })
        });
    }

    /// Replaces one part's MIME type and body; viewers get a MessagePart update.
    pub fn update_part(&mut self, uuid: &Uuid, key: &str, new: NewPart) -> Result<(), LayerError> {
        let before = self
            .messages
            .get(uuid)
            .cloned()
            .ok_or_else(|| no_message(uuid))?;
        let index = self
            .part_index(&before, key)
            .ok_or_else(|| no_part(&before, key))?;
        let id = before.id();
        let mut part = self.accept_part("", &id, index, NewPart { id: None, ..new })?;
        self.freeze_part_ids(uuid);
        let part_id = self
            .messages
            .get(uuid)
            .and_then(|m| m.parts[index].id.clone())
            .unwrap_or_default();
        part.id = Some(part_id.clone());
        if let Some(message) = self.messages.get_mut(uuid) {
            message.parts[index] = part.clone();
        }
        self.remeasure(uuid, &before)?;
        self.stamp_parts(uuid, [index]);
        if let Some(old) = before.parts[index].content
            && part.content != Some(old)
        {
            self.content.remove(&old);
        }
        let mut ops = vec![json!({"operation": "set", "property": "body", "value": part.body})];
        if before.parts[index].mime_type != part.mime_type {
            ops.push(json!({"operation": "set", "property": "mime_type", "value": part.mime_type}));
        }
        let body = json!({"operation": "update", "object": self.object_ref("MessagePart", &part_id), "data": ops});
        self.tell_viewers(&before, body);
        if let Some(message) = self.messages.get(uuid).cloned() {
            self.record_part_event(EventKind::PartUpdated, &message, &part);
        }
        Ok(())
    }

    /// Removes one part (a message keeps at least one).
    pub fn delete_part(&mut self, uuid: &Uuid, key: &str) -> Result<(), LayerError> {
        let before = self
            .messages
            .get(uuid)
            .cloned()
            .ok_or_else(|| no_message(uuid))?;
        let index = self
            .part_index(&before, key)
            .ok_or_else(|| no_part(&before, key))?;
        Self::check_part_count(&before, before.parts.len() - 1)?;
        self.freeze_part_ids(uuid);
        let removed = self.messages.get_mut(uuid).map(|m| m.parts.remove(index));
        self.remeasure(uuid, &before)?;
        self.stamp_parts(uuid, []);
        if let Some(content) = removed.as_ref().and_then(|p| p.content) {
            self.content.remove(&content);
        }
        let part_id = removed
            .as_ref()
            .and_then(|p| p.id.clone())
            .unwrap_or_default();
        let ops = json!([{"operation": "remove", "property": "parts", "id": part_id}]);
        let body = json!({"operation": "update", "object": self.object_ref("Message", &before.id()), "data": ops});
        self.tell_viewers(&before, body);
        if let (Some(part), Some(message)) = (removed, self.messages.get(uuid).cloned()) {
            self.record_part_event(EventKind::PartDeleted, &message, &part);
        }
        Ok(())
    }

    /// Replaces every part: the old ones are removed and the new ones added.
    pub fn replace_parts(&mut self, uuid: &Uuid, parts: Vec<NewPart>) -> Result<(), LayerError> {
        let before = self
            .messages
            .get(uuid)
            .cloned()
            .ok_or_else(|| no_message(uuid))?;
        Self::check_part_count(&before, parts.len())?;
        let id = before.id();
        let mut accepted = Vec::with_capacity(parts.len());
        for (index, mut part) in parts.into_iter().enumerate() {
            part.id = Some(
                part.id
                    .take()
                    .unwrap_or_else(|| format!("{id}/parts/{}", Uuid::new_v4())),
            );
            accepted.push(self.accept_part("", &id, index, part)?);
        }
        self.freeze_part_ids(uuid);
        let old: Vec<Part> = self
            .messages
            .get_mut(uuid)
            .map(|m| std::mem::replace(&mut m.parts, accepted))
            .unwrap_or_default();
        self.remeasure(uuid, &before)?;
        let count = self.messages.get(uuid).map_or(0, |m| m.parts.len());
        self.stamp_parts(uuid, 0..count);
        let kept: Vec<Uuid> = self
            .messages
            .get(uuid)
            .map(|m| m.parts.iter().filter_map(|p| p.content).collect())
            .unwrap_or_default();
        for content in old.iter().filter_map(|p| p.content) {
            if !kept.contains(&content) {
                self.content.remove(&content);
            }
        }
        let Some(message) = self.messages.get(uuid).cloned() else {
            return Ok(());
        };
        let mut ops: Vec<Value> = old
            .iter()
            .filter_map(|p| p.id.clone())
            .map(|part_id| json!({"operation": "remove", "property": "parts", "id": part_id}))
            .collect();
        for (index, part) in message.parts.iter().enumerate() {
            ops.push(
                json!({"operation": "add", "property": "parts", "id": part.id,
                            "value": self.part_at(&message, index)}),
            );
        }
        let body =
            json!({"operation": "update", "object": self.object_ref("Message", &id), "data": ops});
        self.tell_viewers(&message, body);
        for part in &old {
            self.record_part_event(EventKind::PartDeleted, &message, part);
        }
        for part in &message.parts {
            self.record_part_event(EventKind::PartCreated, &message, part);
        }
        Ok(())
    }
}

fn no_message(uuid: &Uuid) -> LayerError {
    LayerError::not_found(format!(
        "A Message with the specified identifier could not be found ({}).",
        object_id(Kind::Messages, uuid)
    ))
}

fn no_part(message: &Message, key: &str) -> LayerError {
    LayerError::not_found(format!("{} has no part {key:?}", message.id()))
}
