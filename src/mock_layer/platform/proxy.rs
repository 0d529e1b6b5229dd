//! The Client API proxy of version 3.0 (§C.10), for the calls a backend makes on a user's
//! behalf: send a message, send a receipt, mark a conversation read, delete a message for
//! the user's devices. Each runs the world operation the user's own SDK request would, and
//! answers in Client API shapes. (The proxy's reads are the user-perspective GETs.)

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use serde::Deserialize;
use serde_json::Value;

use super::conversations::known_user;
use super::{Platform, Version, no_content, path_uuid};
use crate::mock_layer::MockLayer;
use crate::mock_layer::error::{ErrorKind, LayerError};
use crate::mock_layer::input;
use crate::mock_layer::rest::{json, json_body};
use crate::mock_layer::world::DeleteMode;

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

pub(super) fn only_3_0(platform: Platform, what: &str) -> Result<(), LayerError> {
    if platform.version == Version::V3_0 {
        Ok(())
    } else {
        Err(LayerError::new(
            ErrorKind::InvalidEndpoint,
            format!(
                "{what} exists from version 3.0 on (Accept: application/vnd.layer+json; \
                 version=3.0)"
            ),
        ))
    }
}

/// `POST /users/{u}/conversations/{c}/messages`: the user sends, exactly as their SDK would.
pub async fn post_user_messages(
    platform: Platform,
    emulator: web::Data<MockLayer>,
    path: web::Path<UserConversationPath>,
    payload: web::Payload,
) -> Result<HttpResponse, LayerError> {
    only_3_0(platform, "the Client API proxy")?;
    let uuid = path_uuid(&path.conversation, "conversation")?;
    let body = json_body(payload, emulator.settings().max_body_bytes).await?;
    let new = input::new_message(&body)?;
    let mut world = emulator.world(platform.app)?;
    let user = known_user(&world, &path.user)?;
    let view = world.create_message(&user, &uuid, new)?;
    Ok(json(StatusCode::CREATED, &view))
}

/// `POST /users/{u}/conversations/{c}/mark_all_read {"position": N | null}`.
pub async fn post_mark_all_read(
    platform: Platform,
    emulator: web::Data<MockLayer>,
    path: web::Path<UserConversationPath>,
    payload: web::Payload,
) -> Result<HttpResponse, LayerError> {
    only_3_0(platform, "mark_all_read")?;
    let uuid = path_uuid(&path.conversation, "conversation")?;
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
    let mut world = emulator.world(platform.app)?;
    let user = known_user(&world, &path.user)?;
    world.mark_all_read(&user, &uuid, position)?;
    Ok(no_content())
}

/// `POST /users/{u}/messages/{m}/receipts {"type": "read" | "delivery"}`.
pub async fn post_user_receipts(
    platform: Platform,
    emulator: web::Data<MockLayer>,
    path: web::Path<UserMessagePath>,
    payload: web::Payload,
) -> Result<HttpResponse, LayerError> {
    only_3_0(platform, "the Client API proxy")?;
    let uuid = path_uuid(&path.message, "message")?;
    let body = json_body(payload, emulator.settings().max_body_bytes).await?;
    let kind = input::receipt(&body)?;
    let mut world = emulator.world(platform.app)?;
    let user = known_user(&world, &path.user)?;
    world.post_receipt(&user, &uuid, kind)?;
    Ok(no_content())
}

/// `DELETE /users/{u}/messages/{m}?mode=my_devices`: gone from the user's devices only.
pub async fn delete_user_message(
    platform: Platform,
    emulator: web::Data<MockLayer>,
    path: web::Path<UserMessagePath>,
    query: web::Query<ModeQuery>,
) -> Result<HttpResponse, LayerError> {
    only_3_0(platform, "the Client API proxy")?;
    let uuid = path_uuid(&path.message, "message")?;
    if query.mode.as_deref() != Some("my_devices") {
        return Err(LayerError::invalid_property(
            "mode",
            "through the proxy a message is deleted with mode=my_devices",
        ));
    }
    let mut world = emulator.world(platform.app)?;
    let user = known_user(&world, &path.user)?;
    world.delete_message(&user, &uuid, DeleteMode::MyDevices { leave: false })?;
    Ok(no_content())
}

#[derive(Debug, Deserialize)]
pub struct ModeQuery {
    mode: Option<String>,
}
