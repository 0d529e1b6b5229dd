//! Conversations through the Platform API (§C.1): create (no implicit participant; distinct
//! matching shared with SDK-made conversations), get (410 once deleted), Layer-Patch,
//! delete for everyone, and the user-perspective reads.

use actix_web::http::StatusCode;
use actix_web::http::header::{HeaderValue, LOCATION};
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use uuid::Uuid;

use super::views::PlatformView;
use super::{
    Platform, Version, dedupe_tag, input as platform_input, no_content, path_user, path_uuid,
};
use crate::mock_layer::MockLayer;
use crate::mock_layer::error::{ErrorKind, LayerError};
use crate::mock_layer::ids::{Kind, object_id, parse_object_id};
use crate::mock_layer::input;
use crate::mock_layer::rest::{ListQuery, json, json_body, json_list, page};
use crate::mock_layer::world::{Conversation, World, unknown_user};

#[derive(Debug, Deserialize)]
pub struct ConversationPath {
    conversation: String,
}

#[derive(Debug, Deserialize)]
pub struct UserConversationPath {
    user: String,
    conversation: String,
}

#[derive(Debug, Deserialize)]
pub struct UserPath {
    user: String,
}

/// A conversation that exists; 410 if it was deleted, 404 if it never was.
pub fn existing<'a>(world: &'a World, uuid: &Uuid) -> Result<&'a Conversation, LayerError> {
    match world.conversations.get(uuid) {
        Some(conversation) => Ok(conversation),
        None if world.deleted_conversations.contains(uuid) => Err(LayerError::new(
            ErrorKind::ObjectDeleted,
            format!(
                "The referenced conversation has been deleted ({}).",
                object_id(Kind::Conversations, uuid)
            ),
        )),
        None => Err(LayerError::not_found(format!(
            "The referenced conversation cannot be found ({}).",
            object_id(Kind::Conversations, uuid)
        ))),
    }
}

/// 201 new; 200 + `Location` for a distinct match; 409 `conflict` when its metadata differs.
/// With `If-None-Match`, the tag is the new conversation's UUID and a repeat answers 201
/// with the conversation it made.
pub async fn post_conversations(
    platform: Platform,
    emulator: web::Data<MockLayer>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, LayerError> {
    let tag = dedupe_tag(&req)?;
    let body = json_body(payload, emulator.settings().max_body_bytes).await?;
    let mut new = input::new_conversation(&body, emulator.settings().max_participants)?;
    new.uuid = tag;
    if platform.version == Version::V3_0 {
        new.significance = platform_input::significance(&body)?;
    }
    let mut world = emulator.world(platform.app)?;
    let version = platform.version;
    if let Some(existing) = tag.and_then(|uuid| world.conversations.get(&uuid)) {
        let view = PlatformView {
            world: &world,
            version,
        }
        .conversation(existing, None);
        return Ok(json(StatusCode::CREATED, &view));
    }
    let (view, created) = world.create_conversation_by(None, new, |world, c| {
        PlatformView { world, version }.conversation(c, None)
    })?;
    if created {
        return Ok(json(StatusCode::CREATED, &view));
    }
    let mut response = json(StatusCode::OK, &view);
    if let Some(uuid) = view["id"]
        .as_str()
        .and_then(|id| parse_object_id(Kind::Conversations, id))
        && let Ok(location) =
            HeaderValue::from_str(&format!("/apps/{}/conversations/{uuid}", platform.app.uuid))
    {
        response.headers_mut().insert(LOCATION, location);
    }
    Ok(response)
}

pub async fn get_conversation(
    platform: Platform,
    emulator: web::Data<MockLayer>,
    path: web::Path<ConversationPath>,
) -> Result<HttpResponse, LayerError> {
    let uuid = path_uuid(&path.conversation, "conversation")?;
    let world = emulator.world(platform.app)?;
    let conversation = existing(&world, &uuid)?;
    let view = PlatformView {
        world: &world,
        version: platform.version,
    };
    Ok(json(StatusCode::OK, &view.conversation(conversation, None)))
}

/// Layer-Patch of participants and metadata, all or nothing; 204.
pub async fn patch_conversation(
    platform: Platform,
    emulator: web::Data<MockLayer>,
    path: web::Path<ConversationPath>,
    payload: web::Payload,
) -> Result<HttpResponse, LayerError> {
    let uuid = path_uuid(&path.conversation, "conversation")?;
    let body = json_body(payload, emulator.settings().max_body_bytes).await?;
    let ops = input::conversation_patch(&body, emulator.settings().max_participants)?;
    let mut world = emulator.world(platform.app)?;
    let before = existing(&world, &uuid)?.clone();
    world.apply_conversation_patch(before, &uuid, ops)?;
    Ok(no_content())
}

/// Deletes it for every participant on every device; deleting it again is 204 too.
pub async fn delete_conversation(
    platform: Platform,
    emulator: web::Data<MockLayer>,
    path: web::Path<ConversationPath>,
) -> Result<HttpResponse, LayerError> {
    let uuid = path_uuid(&path.conversation, "conversation")?;
    let mut world = emulator.world(platform.app)?;
    match existing(&world, &uuid) {
        Ok(conversation) => {
            let conversation = conversation.clone();
            world.destroy_conversation(&conversation);
            Ok(no_content())
        }
        Err(e) if e.kind == ErrorKind::ObjectDeleted => Ok(no_content()),
        Err(e) => Err(e),
    }
}

/// A user the app knows; 404 for one it never named.
pub fn known_user(world: &World, raw: &str) -> Result<String, LayerError> {
    let user = path_user(raw)?;
    if world.identities.contains_key(&user) {
        Ok(user)
    } else {
        Err(unknown_user(&user))
    }
}

/// A conversation the user takes or took part in.
pub(super) fn users_conversation<'a>(
    world: &'a World,
    user: &str,
    uuid: &Uuid,
) -> Result<&'a Conversation, LayerError> {
    world
        .conversations
        .get(uuid)
        .filter(|c| {
            (c.is_participant(user) || c.former.contains(user)) && !c.unseen_by.contains(user)
        })
        .ok_or_else(|| {
            LayerError::not_found(format!(
                "The referenced conversation cannot be found ({}).",
                object_id(Kind::Conversations, uuid)
            ))
        })
}

/// The user's conversations (those they left too), newest first or by last message.
pub async fn get_user_conversations(
    platform: Platform,
    emulator: web::Data<MockLayer>,
    path: web::Path<UserPath>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, LayerError> {
    let size = query.page_size(100)?;
    let by_last_message = query.by_last_message()?;
    let world = emulator.world(platform.app)?;
    let user = known_user(&world, &path.user)?;
    let theirs = world.conversations_newest_first(&user, by_last_message, |c| {
        (c.is_participant(&user) || c.former.contains(&user)) && !c.unseen_by.contains(&user)
    });
    let total = theirs.len();
    let is_from = |(_, c): &(u64, &Conversation), id: &str| {
        parse_object_id(Kind::Conversations, id).or_else(|| crate::mock_layer::ids::parse_uuid(id))
            == Some(c.uuid)
    };
    let view = PlatformView {
        world: &world,
        version: platform.version,
    };
    let items = page(theirs, query.from_id.as_deref(), is_from, size)
        .into_iter()
        .map(|(_, c)| view.conversation(c, Some(&user)))
        .collect();
    Ok(json_list(items, total))
}

pub async fn get_user_conversation(
    platform: Platform,
    emulator: web::Data<MockLayer>,
    path: web::Path<UserConversationPath>,
) -> Result<HttpResponse, LayerError> {
    let uuid = path_uuid(&path.conversation, "conversation")?;
    let world = emulator.world(platform.app)?;
    let user = known_user(&world, &path.user)?;
    let conversation = users_conversation(&world, &user, &uuid)?;
    let view = PlatformView {
        world: &world,
        version: platform.version,
    };
    Ok(json(
        StatusCode::OK,
        &view.conversation(conversation, Some(&user)),
    ))
}
