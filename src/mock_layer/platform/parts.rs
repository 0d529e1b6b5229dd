//! A sent message's parts under version 3.0 (§C.4): list, get, add (201), update (204),
//! replace all (204), delete (204). Older versions have no such endpoints.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use serde::Deserialize;
use serde_json::Value;
use uuid::Uuid;

use super::conversations::existing;
use super::{Platform, Version, no_content, path_uuid};
use crate::clock::iso_ms;
use crate::mock_layer::MockLayer;
use crate::mock_layer::error::{ErrorKind, LayerError};
use crate::mock_layer::input;
use crate::mock_layer::rest::{json, json_body};
use crate::mock_layer::world::{Message, World};

#[derive(Debug, Deserialize)]
pub struct PartsPath {
    conversation: String,
    message: String,
}

#[derive(Debug, Deserialize)]
pub struct PartPath {
    conversation: String,
    message: String,
    part: String,
}

fn only_3_0(platform: Platform) -> Result<(), LayerError> {
    if platform.version == Version::V3_0 {
        Ok(())
    } else {
        Err(LayerError::new(
            ErrorKind::InvalidEndpoint,
            "message parts have endpoints from version 3.0 on (Accept: \
             application/vnd.layer+json; version=3.0)",
        ))
    }
}

/// The message, in the conversation named.
fn message_in<'a>(
    world: &'a World,
    conversation: &str,
    message: &str,
) -> Result<&'a Message, LayerError> {
    let conversation = path_uuid(conversation, "conversation")?;
    let uuid = path_uuid(message, "message")?;
    existing(world, &conversation)?;
    world
        .messages
        .get(&uuid)
        .filter(|m| m.conversation == conversation)
        .ok_or_else(|| {
            LayerError::not_found(format!(
                "A Message with the specified identifier could not be found ({uuid})."
            ))
        })
}

/// A part as 3.0 shows it.
fn part_view(world: &World, message: &Message, index: usize) -> Value {
    let mut view = world.part_at(message, index);
    let app_url = format!("{}/apps/{}", world.base, world.app.uuid);
    let message_url = format!(
        "{app_url}/conversations/{}/messages/{}",
        message.conversation, message.uuid
    );
    if let Value::Object(map) = &mut view {
        let key = map
            .get("id")
            .and_then(Value::as_str)
            .and_then(|id| id.rsplit('/').next())
            .unwrap_or_default()
            .to_owned();
        map.insert("url".into(), format!("{message_url}/parts/{key}").into());
        map.insert("message_url".into(), message_url.into());
        map.remove("size");
        if let Some(part) = message.parts.get(index) {
            let updated = part.updated_ms.unwrap_or(message.sent_ms);
            map.insert("updated_at".into(), iso_ms(updated).into());
        }
    }
    view
}

/// The part key of a path: the last segment of a part ID, or the ID itself.
fn part_key(raw: &str) -> String {
    raw.rsplit('/').next().unwrap_or(raw).to_owned()
}

pub async fn get_parts(
    platform: Platform,
    emulator: web::Data<MockLayer>,
    path: web::Path<PartsPath>,
) -> Result<HttpResponse, LayerError> {
    only_3_0(platform)?;
    let world = emulator.world(platform.app)?;
    let message = message_in(&world, &path.conversation, &path.message)?;
    let parts: Vec<Value> = (0..message.parts.len())
        .map(|i| part_view(&world, message, i))
        .collect();
    Ok(json(StatusCode::OK, &parts))
}

pub async fn get_part(
    platform: Platform,
    emulator: web::Data<MockLayer>,
    path: web::Path<PartPath>,
) -> Result<HttpResponse, LayerError> {
    only_3_0(platform)?;
    let world = emulator.world(platform.app)?;
    let message = message_in(&world, &path.conversation, &path.message)?;
    let index = world
        .part_index(message, &part_key(&path.part))
        .ok_or_else(|| {
            LayerError::not_found(format!("{} has no part {:?}", message.id(), path.part))
        })?;
    Ok(json(StatusCode::OK, &part_view(&world, message, index)))
}

fn one_part(body: &Value) -> Result<input::NewPart, LayerError> {
    if !body.is_object() {
        return Err(LayerError::invalid_request(
            "the body must be one message part",
        ));
    }
    input::new_part(0, body)
}

pub async fn post_part(
    platform: Platform,
    emulator: web::Data<MockLayer>,
    path: web::Path<PartsPath>,
    payload: web::Payload,
) -> Result<HttpResponse, LayerError> {
    only_3_0(platform)?;
    let body = json_body(payload, emulator.settings().max_body_bytes).await?;
    let part = one_part(&body)?;
    let mut world = emulator.world(platform.app)?;
    let uuid: Uuid = message_in(&world, &path.conversation, &path.message)?.uuid;
    let ids = world.add_parts(&uuid, vec![part])?;
    let message = world
        .messages
        .get(&uuid)
        .ok_or_else(|| LayerError::internal("message vanished under the lock"))?;
    let key = ids.first().map(|id| part_key(id)).unwrap_or_default();
    let index = world.part_index(message, &key).unwrap_or_default();
    Ok(json(
        StatusCode::CREATED,
        &part_view(&world, message, index),
    ))
}

pub async fn put_part(
    platform: Platform,
    emulator: web::Data<MockLayer>,
    path: web::Path<PartPath>,
    payload: web::Payload,
) -> Result<HttpResponse, LayerError> {
    only_3_0(platform)?;
    let body = json_body(payload, emulator.settings().max_body_bytes).await?;
    let part = one_part(&body)?;
    let mut world = emulator.world(platform.app)?;
    let uuid = message_in(&world, &path.conversation, &path.message)?.uuid;
    world.update_part(&uuid, &part_key(&path.part), part)?;
    Ok(no_content())
}

pub async fn put_parts(
    platform: Platform,
    emulator: web::Data<MockLayer>,
    path: web::Path<PartsPath>,
    payload: web::Payload,
) -> Result<HttpResponse, LayerError> {
    only_3_0(platform)?;
    let body = json_body(payload, emulator.settings().max_body_bytes).await?;
    let parts = match &body {
        Value::Array(list) => list
            .iter()
            .enumerate()
            .map(|(i, p)| input::new_part(i, p))
            .collect::<Result<Vec<_>, _>>()?,
        _ => {
            return Err(LayerError::invalid_request(
                "the body must be an array of message parts",
            ));
        }
    };
    let mut world = emulator.world(platform.app)?;
    let uuid = message_in(&world, &path.conversation, &path.message)?.uuid;
    world.replace_parts(&uuid, parts)?;
    Ok(no_content())
}

pub async fn delete_part(
    platform: Platform,
    emulator: web::Data<MockLayer>,
    path: web::Path<PartPath>,
) -> Result<HttpResponse, LayerError> {
    only_3_0(platform)?;
    let mut world = emulator.world(platform.app)?;
    let uuid = message_in(&world, &path.conversation, &path.message)?.uuid;
    world.delete_part(&uuid, &part_key(&path.part))?;
    Ok(no_content())
}
