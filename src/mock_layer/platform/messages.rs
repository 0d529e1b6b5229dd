//! Messages through the Platform API (§C.2): sent as a participant (`sender.user_id`) or
//! under a name (`sender.name`) by the same world operation an SDK's send runs, so every
//! participant's sockets get the same `create` and `update` packets; listed newest first,
//! read, and deleted for everyone.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

use super::conversations::{existing, known_user, users_conversation};
use super::views::PlatformView;
use super::{Platform, dedupe_tag, input as platform_input, no_content, path_uuid};
use crate::mock_layer::MockLayer;
use crate::mock_layer::error::LayerError;
use crate::mock_layer::ids::{Kind, object_id, parse_object_id, parse_uuid};
use crate::mock_layer::input;
use crate::mock_layer::rest::{ListQuery, json, json_body, json_list, page};
use crate::mock_layer::world::{Message, World};

#[derive(Debug, Deserialize)]
pub struct ConversationPath {
    conversation: String,
}

#[derive(Debug, Deserialize)]
pub struct MessagePath {
    conversation: String,
    message: String,
}

#[derive(Debug, Deserialize)]
pub struct BareMessagePath {
    message: String,
}

#[derive(Debug, Deserialize)]
pub struct UserConversationPath {
    user: String,
    conversation: String,
}

#[derive(Debug, Deserialize)]
pub struct UserMessagePath {
    user: String,
    message: String,
}

fn no_message(uuid: &uuid::Uuid) -> LayerError {
    LayerError::not_found(format!(
        "A Message with the specified identifier could not be found ({}).",
        object_id(Kind::Messages, uuid)
    ))
}

/// 201 with the message. With `If-None-Match`, the tag is its UUID and a repeat answers 201
/// with the message it sent.
pub async fn post_messages(
    platform: Platform,
    emulator: web::Data<MockLayer>,
    req: HttpRequest,
    path: web::Path<ConversationPath>,
    payload: web::Payload,
) -> Result<HttpResponse, LayerError> {
    let conversation = path_uuid(&path.conversation, "conversation")?;
    let tag = dedupe_tag(&req)?;
    let body = json_body(payload, emulator.settings().max_body_bytes).await?;
    let sender = platform_input::sender(&body)?;
    let schedule = platform_input::schedule(&body)?;
    let mut new = input::new_message(&body)?;
    new.notification = platform_input::notification(&body)?;
    new.uuid = tag;
    new.from_server = true;
    let mut world = emulator.world(platform.app)?;
    existing(&world, &conversation)?;
    if let Some((delay_ms, typing_ms)) = schedule {
        let view = PlatformView {
            world: &world,
            version: platform.version,
        }
        .pending_message(&conversation, &sender, &new, tag);
        let uuid = world.schedule_message(sender, &conversation, new, delay_ms, typing_ms)?;
        let mut view = view;
        view["id"] = object_id(Kind::Messages, &uuid).into();
        return Ok(json(StatusCode::ACCEPTED, &view));
    }
    let repeat = tag
        .and_then(|uuid| world.messages.get(&uuid))
        .filter(|m| m.conversation == conversation)
        .map(|m| m.uuid);
    let uuid = match repeat {
        Some(uuid) => uuid,
        None => world
            .send_message(&sender, &conversation, new)
            .map_err(|(error, _)| error)?,
    };
    let message = world
        .messages
        .get(&uuid)
        .ok_or_else(|| LayerError::internal("message vanished under the lock"))?;
    let view = PlatformView {
        world: &world,
        version: platform.version,
    };
    Ok(json(StatusCode::CREATED, &view.message(message, None)))
}

fn newest_first<'a>(
    world: &'a World,
    conversation: &'a crate::mock_layer::world::Conversation,
    viewer: Option<&'a str>,
) -> Vec<&'a Message> {
    let mut list: Vec<&Message> = match viewer {
        Some(user) => world.visible_messages(conversation, user).collect(),
        None => conversation
            .messages
            .iter()
            .filter_map(|uuid| world.messages.get(uuid))
            .collect(),
    };
    list.reverse();
    list
}

fn is_from(message: &&Message, id: &str) -> bool {
    parse_object_id(Kind::Messages, id).or_else(|| parse_uuid(id)) == Some(message.uuid)
}

pub async fn get_messages(
    platform: Platform,
    emulator: web::Data<MockLayer>,
    path: web::Path<ConversationPath>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, LayerError> {
    let uuid = path_uuid(&path.conversation, "conversation")?;
    let size = query.page_size(100)?;
    let world = emulator.world(platform.app)?;
    let conversation = existing(&world, &uuid)?;
    let list = newest_first(&world, conversation, None);
    let total = list.len();
    let view = PlatformView {
        world: &world,
        version: platform.version,
    };
    let items = page(list, query.from_id.as_deref(), is_from, size)
        .into_iter()
        .map(|m| view.message(m, None))
        .collect();
    Ok(json_list(items, total))
}

/// `GET /conversations/{c}/messages/{m}`.
pub async fn get_message(
    platform: Platform,
    emulator: web::Data<MockLayer>,
    path: web::Path<MessagePath>,
) -> Result<HttpResponse, LayerError> {
    let conversation = path_uuid(&path.conversation, "conversation")?;
    show_message(platform, &emulator, &path.message, Some(conversation))
}

/// `GET /messages/{m}`, where the create response's `url` pointed on the live service.
pub async fn get_bare_message(
    platform: Platform,
    emulator: web::Data<MockLayer>,
    path: web::Path<BareMessagePath>,
) -> Result<HttpResponse, LayerError> {
    show_message(platform, &emulator, &path.message, None)
}

fn show_message(
    platform: Platform,
    emulator: &MockLayer,
    raw: &str,
    conversation: Option<uuid::Uuid>,
) -> Result<HttpResponse, LayerError> {
    let uuid = path_uuid(raw, "message")?;
    let world = emulator.world(platform.app)?;
    if let Some(conversation) = &conversation {
        existing(&world, conversation)?;
    }
    let message = world
        .messages
        .get(&uuid)
        .filter(|m| conversation.is_none_or(|c| c == m.conversation))
        .ok_or_else(|| no_message(&uuid))?;
    let view = PlatformView {
        world: &world,
        version: platform.version,
    };
    Ok(json(StatusCode::OK, &view.message(message, None)))
}

/// Deletes it for every participant; 204.
pub async fn delete_message(
    platform: Platform,
    emulator: web::Data<MockLayer>,
    path: web::Path<MessagePath>,
) -> Result<HttpResponse, LayerError> {
    let uuid = path_uuid(&path.message, "message")?;
    let conversation_uuid = path_uuid(&path.conversation, "conversation")?;
    let mut world = emulator.world(platform.app)?;
    existing(&world, &conversation_uuid)?;
    let message = world
        .messages
        .get(&uuid)
        .filter(|m| m.conversation == conversation_uuid)
        .ok_or_else(|| no_message(&uuid))?
        .clone();
    world.destroy_message(&message);
    Ok(no_content())
}

pub async fn get_user_messages(
    platform: Platform,
    emulator: web::Data<MockLayer>,
    path: web::Path<UserConversationPath>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, LayerError> {
    let uuid = path_uuid(&path.conversation, "conversation")?;
    let size = query.page_size(100)?;
    let world = emulator.world(platform.app)?;
    let user = known_user(&world, &path.user)?;
    let conversation = users_conversation(&world, &user, &uuid)?;
    let list = newest_first(&world, conversation, Some(&user));
    let total = list.len();
    let view = PlatformView {
        world: &world,
        version: platform.version,
    };
    let items = page(list, query.from_id.as_deref(), is_from, size)
        .into_iter()
        .map(|m| view.message(m, Some(&user)))
        .collect();
    Ok(json_list(items, total))
}

pub async fn get_user_message(
    platform: Platform,
    emulator: web::Data<MockLayer>,
    path: web::Path<UserMessagePath>,
) -> Result<HttpResponse, LayerError> {
    let uuid = path_uuid(&path.message, "message")?;
    let world = emulator.world(platform.app)?;
    let user = known_user(&world, &path.user)?;
    let message = world.messages.get(&uuid).ok_or_else(|| no_message(&uuid))?;
    let conversation =
        users_conversation(&world, &user, &message.conversation).map_err(|_| no_message(&uuid))?;
    if !world.is_visible(conversation, message, &user) {
        return Err(no_message(&uuid));
    }
    let view = PlatformView {
        world: &world,
        version: platform.version,
    };
    Ok(json(StatusCode::OK, &view.message(message, Some(&user))))
}
