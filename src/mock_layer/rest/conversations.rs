//! Conversations over REST: list, get, create, Layer-Patch, the three delete modes, and
//! mark-all-read. The rules live in the world; this is parsing and rendering.

use actix_web::http::StatusCode;
use actix_web::http::header::LOCATION;
use actix_web::{HttpResponse, web};
use serde::Deserialize;
use serde_json::Value;

use super::{ListQuery, json, json_body, json_list, page, path_uuid};
use crate::mock_layer::MockLayer;
use crate::mock_layer::auth::Caller;
use crate::mock_layer::error::LayerError;
use crate::mock_layer::ids::{Kind, parse_object_id};
use crate::mock_layer::input;
use crate::mock_layer::world::{Conversation, DeleteMode};

pub async fn get_conversations(
    caller: Caller,
    emulator: web::Data<MockLayer>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, LayerError> {
    let size = query.page_size(100)?;
    let by_last_message = query.by_last_message()?;
    let world = emulator.world(caller.app)?;
    let mine = world.conversations_newest_first(&caller.user_id, by_last_message, |c| {
        c.is_participant(&caller.user_id)
            && !c.hidden.contains(&caller.user_id)
            && !c.unseen_by.contains(&caller.user_id)
    });
    let total = mine.len();
    let is_from = |(_, c): &(u64, &Conversation), id: &str| {
        parse_object_id(Kind::Conversations, id) == Some(c.uuid)
    };
    let items = page(mine, query.from_id.as_deref(), is_from, size)
        .into_iter()
        .map(|(_, c)| world.conversation_view(c, &caller.user_id))
        .collect();
    Ok(json_list(items, total))
}

pub async fn get_conversation(
    caller: Caller,
    emulator: web::Data<MockLayer>,
    path: web::Path<String>,
) -> Result<HttpResponse, LayerError> {
    let uuid = path_uuid(&path, "conversation")?;
    let world = emulator.world(caller.app)?;
    let conversation = world.conversation_for(&caller.user_id, &uuid)?;
    Ok(json(
        StatusCode::OK,
        &world.conversation_view(conversation, &caller.user_id),
    ))
}

/// 201 for a new conversation, 200 for an existing distinct one, 409 for a conflict.
pub async fn post_conversations(
    caller: Caller,
    emulator: web::Data<MockLayer>,
    payload: web::Payload,
) -> Result<HttpResponse, LayerError> {
    let body = json_body(payload, emulator.settings().max_body_bytes).await?;
    let new = input::new_conversation(&body, emulator.settings().max_participants)?;
    let (view, created) = emulator
        .world(caller.app)?
        .create_conversation(&caller.user_id, new)?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let mut response = json(status, &view);
    if let Some(Ok(url)) = view["url"]
        .as_str()
        .map(actix_web::http::header::HeaderValue::from_str)
    {
        response.headers_mut().insert(LOCATION, url);
    }
    Ok(response)
}

pub async fn patch_conversation(
    caller: Caller,
    emulator: web::Data<MockLayer>,
    path: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, LayerError> {
    let uuid = path_uuid(&path, "conversation")?;
    let body = json_body(payload, emulator.settings().max_body_bytes).await?;
    let ops = input::conversation_patch(&body, emulator.settings().max_participants)?;
    emulator
        .world(caller.app)?
        .patch_conversation(&caller.user_id, &uuid, ops)?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Debug, Deserialize)]
pub struct DeleteQuery {
    mode: Option<String>,
    leave: Option<String>,
}

/// `mode=all_participants`, `mode=my_devices&leave=false` or `mode=my_devices&leave=true`.
pub fn delete_mode(query: &DeleteQuery) -> Result<DeleteMode, LayerError> {
    let leave = match query.leave.as_deref() {
        None | Some("false") => false,
        Some("true") => true,
        Some(other) => {
            return Err(LayerError::invalid_property(
                "leave",
                format!("leave {other:?} must be true or false"),
            ));
        }
    };
    match query.mode.as_deref() {
        Some("all_participants") => Ok(DeleteMode::AllParticipants),
        Some("my_devices") => Ok(DeleteMode::MyDevices { leave }),
        Some(other) => Err(LayerError::invalid_property(
            "mode",
            format!("mode {other:?} must be all_participants or my_devices"),
        )),
        None => Err(LayerError::missing_property("mode")),
    }
}

pub async fn delete_conversation(
    caller: Caller,
    emulator: web::Data<MockLayer>,
    path: web::Path<String>,
    query: web::Query<DeleteQuery>,
) -> Result<HttpResponse, LayerError> {
    let uuid = path_uuid(&path, "conversation")?;
    let mode = delete_mode(&query)?;
    emulator
        .world(caller.app)?
        .delete_conversation(&caller.user_id, &uuid, mode)?;
    Ok(HttpResponse::NoContent().finish())
}

pub async fn post_mark_all_read(
    caller: Caller,
    emulator: web::Data<MockLayer>,
    path: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, LayerError> {
    let uuid = path_uuid(&path, "conversation")?;
    let body = json_body(payload, emulator.settings().max_body_bytes).await?;
    let position = match &body {
        Value::Null => None,
        Value::Object(_) => input::mark_all_read_position(&body)?,
        _ => {
            return Err(LayerError::invalid_request(
                "the body must be {\"position\": …}",
            ));
        }
    };
    emulator
        .world(caller.app)?
        .mark_all_read(&caller.user_id, &uuid, position)?;
    Ok(HttpResponse::NoContent().finish())
}
