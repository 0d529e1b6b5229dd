//! Messages over REST: the list (newest first), get, create, delete, and receipts.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};

use super::conversations::{DeleteQuery, delete_mode};
use super::{ListQuery, json, json_body, json_list, page, path_uuid};
use crate::mock_layer::MockLayer;
use crate::mock_layer::auth::Caller;
use crate::mock_layer::error::LayerError;
use crate::mock_layer::ids::{Kind, parse_object_id};
use crate::mock_layer::input;
use crate::mock_layer::world::{DeleteMode, Message};

pub async fn get_messages(
    caller: Caller,
    emulator: web::Data<MockLayer>,
    path: web::Path<String>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, LayerError> {
    let uuid = path_uuid(&path, "conversation")?;
    let size = query.page_size(100)?;
    let world = emulator.world(caller.app)?;
    let conversation = world.conversation_for(&caller.user_id, &uuid)?;
    let newest_first: Vec<&Message> = world
        .visible_messages(conversation, &caller.user_id)
        .rev()
        .collect();
    let total = newest_first.len();
    let is_from = |m: &&Message, id: &str| parse_object_id(Kind::Messages, id) == Some(m.uuid);
    let items = page(newest_first, query.from_id.as_deref(), is_from, size)
        .into_iter()
        .map(|m| world.message_view(m, &caller.user_id))
        .collect();
    Ok(json_list(items, total))
}

pub async fn get_message(
    caller: Caller,
    emulator: web::Data<MockLayer>,
    path: web::Path<String>,
) -> Result<HttpResponse, LayerError> {
    let uuid = path_uuid(&path, "message")?;
    let world = emulator.world(caller.app)?;
    let message = world.message_for(&caller.user_id, &uuid)?;
    Ok(json(
        StatusCode::OK,
        &world.message_view(message, &caller.user_id),
    ))
}

/// `POST /conversations/{uuid}/messages`: the same rules as `Message.create`; the sender is
/// always the session's user.
pub async fn post_messages(
    caller: Caller,
    emulator: web::Data<MockLayer>,
    path: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, LayerError> {
    let uuid = path_uuid(&path, "conversation")?;
    let body = json_body(payload, emulator.settings().max_body_bytes).await?;
    let new = input::new_message(&body)?;
    let view = emulator
        .world(caller.app)?
        .create_message(&caller.user_id, &uuid, new)?;
    Ok(json(StatusCode::CREATED, &view))
}

pub async fn delete_message(
    caller: Caller,
    emulator: web::Data<MockLayer>,
    path: web::Path<String>,
    query: web::Query<DeleteQuery>,
) -> Result<HttpResponse, LayerError> {
    let uuid = path_uuid(&path, "message")?;
    let mode = match delete_mode(&query)? {
        DeleteMode::MyDevices { .. } => DeleteMode::MyDevices { leave: false },
        mode => mode,
    };
    emulator
        .world(caller.app)?
        .delete_message(&caller.user_id, &uuid, mode)?;
    Ok(HttpResponse::NoContent().finish())
}

pub async fn post_receipts(
    caller: Caller,
    emulator: web::Data<MockLayer>,
    path: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, LayerError> {
    let uuid = path_uuid(&path, "message")?;
    let body = json_body(payload, emulator.settings().max_body_bytes).await?;
    let kind = input::receipt(&body)?;
    emulator
        .world(caller.app)?
        .post_receipt(&caller.user_id, &uuid, kind)?;
    Ok(HttpResponse::NoContent().finish())
}
