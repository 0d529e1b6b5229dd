//! The Client API proxy of version 3.0 (§C.10): `/users/{u}/<Client API path>` runs as that
//! user's own Client API request, with no session — the same handler and world operation
//! an SDK's request runs, so the answers are the Client API's shapes and statuses and the
//! sockets hear exactly what they would. Sending, receipts, mark-all-read, deleting a
//! message, creating, editing and deleting conversations, announcements, identities and
//! following, rich content and push tokens. The reads of conversations and messages under
//! `/users/{u}/…` are the older user-perspective GETs (`conversations.rs`, `messages.rs`),
//! in Platform shapes in every version; the user-management paths (`identity`, `blocks`,
//! `badge`, `sessions`) are the Platform API's own.

use actix_web::http::StatusCode;
use actix_web::{HttpMessage, HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::Value;

use super::conversations::known_user;
use super::{Platform, Version, no_content, path_uuid};
use crate::mock_layer::MockLayer;
use crate::mock_layer::auth::Caller;
use crate::mock_layer::error::{ErrorKind, LayerError};
use crate::mock_layer::input;
use crate::mock_layer::rest::conversations::DeleteQuery;
use crate::mock_layer::rest::{self, ListQuery, json, json_body};

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

/// `DELETE /users/{u}/messages/{m}?mode=my_devices|all_participants`: as the user's own
/// `DELETE /messages/{m}`.
pub async fn delete_user_message(
    platform: Platform,
    emulator: web::Data<MockLayer>,
    req: HttpRequest,
    path: web::Path<UserMessagePath>,
    query: web::Query<DeleteQuery>,
) -> Result<HttpResponse, LayerError> {
    let path = path.into_inner();
    let caller = as_user(&req, &emulator, platform, &path.user)?;
    rest::messages::delete_message(caller, emulator, path.message.into(), query).await
}

/// The user a proxied request runs as: 3.0 only, and a user the app knows.
fn as_user(
    req: &HttpRequest,
    emulator: &MockLayer,
    platform: Platform,
    raw: &str,
) -> Result<Caller, LayerError> {
    only_3_0(platform, "the Client API proxy")?;
    let user_id = known_user(&*emulator.world(platform.app)?, raw)?;
    let caller = Caller {
        app: platform.app,
        user_id,
    };
    // For the request journal, which names who called.
    req.extensions_mut().insert(caller.clone());
    Ok(caller)
}

#[derive(Debug, Deserialize)]
pub struct UserPath {
    user: String,
}

/// `/users/{u}/<collection>/{item}`: the item's ID, as the Client API route takes it.
#[derive(Debug, Deserialize)]
pub struct UserItemPath {
    user: String,
    item: String,
}

impl UserItemPath {
    fn split(self) -> (String, web::Path<String>) {
        (self.user, self.item.into())
    }
}

/// `POST /users/{u}/conversations`: the user creates a conversation (and takes part in it).
pub async fn post_user_conversations(
    platform: Platform,
    emulator: web::Data<MockLayer>,
    req: HttpRequest,
    path: web::Path<UserPath>,
    payload: web::Payload,
) -> Result<HttpResponse, LayerError> {
    let caller = as_user(&req, &emulator, platform, &path.user)?;
    rest::conversations::post_conversations(caller, emulator, payload).await
}

/// `PATCH /users/{u}/conversations/{c}`: the user's Layer-Patch of participants or metadata.
pub async fn patch_user_conversation(
    platform: Platform,
    emulator: web::Data<MockLayer>,
    req: HttpRequest,
    path: web::Path<UserConversationPath>,
    payload: web::Payload,
) -> Result<HttpResponse, LayerError> {
    let path = path.into_inner();
    let (user, item) = (path.user, path.conversation.into());
    let caller = as_user(&req, &emulator, platform, &user)?;
    rest::conversations::patch_conversation(caller, emulator, item, payload).await
}

/// `DELETE /users/{u}/conversations/{c}?mode=…[&leave=…]`: any of the three modes.
pub async fn delete_user_conversation(
    platform: Platform,
    emulator: web::Data<MockLayer>,
    req: HttpRequest,
    path: web::Path<UserConversationPath>,
    query: web::Query<DeleteQuery>,
) -> Result<HttpResponse, LayerError> {
    let path = path.into_inner();
    let (user, item) = (path.user, path.conversation.into());
    let caller = as_user(&req, &emulator, platform, &user)?;
    rest::conversations::delete_conversation(caller, emulator, item, query).await
}

/// `GET /users/{u}/announcements`: the user's announcements, newest first.
pub async fn get_user_announcements(
    platform: Platform,
    emulator: web::Data<MockLayer>,
    req: HttpRequest,
    path: web::Path<UserPath>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, LayerError> {
    let caller = as_user(&req, &emulator, platform, &path.user)?;
    rest::announcements::get_announcements(caller, emulator, query).await
}

pub async fn get_user_announcement(
    platform: Platform,
    emulator: web::Data<MockLayer>,
    req: HttpRequest,
    path: web::Path<UserItemPath>,
) -> Result<HttpResponse, LayerError> {
    let (user, item) = path.into_inner().split();
    let caller = as_user(&req, &emulator, platform, &user)?;
    rest::announcements::get_announcement(caller, emulator, item).await
}

pub async fn delete_user_announcement(
    platform: Platform,
    emulator: web::Data<MockLayer>,
    req: HttpRequest,
    path: web::Path<UserItemPath>,
) -> Result<HttpResponse, LayerError> {
    let (user, item) = path.into_inner().split();
    let caller = as_user(&req, &emulator, platform, &user)?;
    rest::announcements::delete_announcement(caller, emulator, item).await
}

pub async fn post_user_announcement_receipts(
    platform: Platform,
    emulator: web::Data<MockLayer>,
    req: HttpRequest,
    path: web::Path<UserItemPath>,
    payload: web::Payload,
) -> Result<HttpResponse, LayerError> {
    let (user, item) = path.into_inner().split();
    let caller = as_user(&req, &emulator, platform, &user)?;
    rest::announcements::post_announcement_receipts(caller, emulator, item, payload).await
}

/// `GET /users/{u}/identities/{id}`: an identity as the user's SDK reads it.
pub async fn get_user_identity(
    platform: Platform,
    emulator: web::Data<MockLayer>,
    req: HttpRequest,
    path: web::Path<UserItemPath>,
) -> Result<HttpResponse, LayerError> {
    let (user, item) = path.into_inner().split();
    let caller = as_user(&req, &emulator, platform, &user)?;
    rest::identities::get_identity(caller, emulator, item).await
}

/// `PUT /users/{u}/following/users/{id}`: the Client API's explicit follow.
pub async fn put_user_following(
    platform: Platform,
    emulator: web::Data<MockLayer>,
    req: HttpRequest,
    path: web::Path<UserItemPath>,
) -> Result<HttpResponse, LayerError> {
    let (user, item) = path.into_inner().split();
    let caller = as_user(&req, &emulator, platform, &user)?;
    rest::identities::put_following(caller, emulator, item).await
}

pub async fn delete_user_following(
    platform: Platform,
    emulator: web::Data<MockLayer>,
    req: HttpRequest,
    path: web::Path<UserItemPath>,
) -> Result<HttpResponse, LayerError> {
    let (user, item) = path.into_inner().split();
    let caller = as_user(&req, &emulator, platform, &user)?;
    rest::identities::delete_following(caller, emulator, item).await
}

/// `POST /users/{u}/content`: rich content the user uploads (their quota), for their sends.
pub async fn post_user_content(
    platform: Platform,
    emulator: web::Data<MockLayer>,
    req: HttpRequest,
    path: web::Path<UserPath>,
) -> Result<HttpResponse, LayerError> {
    let caller = as_user(&req, &emulator, platform, &path.user)?;
    rest::content::post_content(caller, emulator, req).await
}

pub async fn get_user_content(
    platform: Platform,
    emulator: web::Data<MockLayer>,
    req: HttpRequest,
    path: web::Path<UserItemPath>,
) -> Result<HttpResponse, LayerError> {
    let (user, item) = path.into_inner().split();
    let caller = as_user(&req, &emulator, platform, &user)?;
    rest::content::get_content(caller, emulator, item).await
}

/// `POST /users/{u}/push_tokens`, `DELETE /users/{u}/push_tokens/{device}`: accepted and
/// forgotten, as from an SDK.
pub async fn post_user_push_tokens(
    platform: Platform,
    emulator: web::Data<MockLayer>,
    req: HttpRequest,
    path: web::Path<UserPath>,
) -> Result<HttpResponse, LayerError> {
    let caller = as_user(&req, &emulator, platform, &path.user)?;
    Ok(rest::sessions::post_push_tokens(caller).await)
}

pub async fn delete_user_push_token(
    platform: Platform,
    emulator: web::Data<MockLayer>,
    req: HttpRequest,
    path: web::Path<UserItemPath>,
) -> Result<HttpResponse, LayerError> {
    let (user, _) = path.into_inner().split();
    let caller = as_user(&req, &emulator, platform, &user)?;
    Ok(rest::sessions::delete_push_token(caller).await)
}
