//! `/users/{user}/identity` (§C.7): create (201, empty), get, Layer-Patch, replace, delete.
//! Every change reaches the user's and their followers' sockets as an Identity change.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use serde::Deserialize;

use super::conversations::known_user;
use super::views::PlatformView;
use super::{Platform, input, no_content, path_user};
use crate::mock_layer::MockLayer;
use crate::mock_layer::error::LayerError;
use crate::mock_layer::rest::{json, json_body};

#[derive(Debug, Deserialize)]
pub struct UserPath {
    user: String,
}

pub async fn post_identity(
    platform: Platform,
    emulator: web::Data<MockLayer>,
    path: web::Path<UserPath>,
    payload: web::Payload,
) -> Result<HttpResponse, LayerError> {
    let user = path_user(&path.user)?;
    let body = json_body(payload, emulator.settings().max_body_bytes).await?;
    let fields = input::identity_fields(&body)?;
    emulator
        .world(platform.app)?
        .create_identity(&user, fields)?;
    Ok(HttpResponse::Created().finish())
}

pub async fn get_identity(
    platform: Platform,
    emulator: web::Data<MockLayer>,
    path: web::Path<UserPath>,
) -> Result<HttpResponse, LayerError> {
    let world = emulator.world(platform.app)?;
    let user = known_user(&world, &path.user)?;
    let view = PlatformView {
        world: &world,
        version: platform.version,
    };
    Ok(json(StatusCode::OK, &view.identity(&user)))
}

pub async fn patch_identity(
    platform: Platform,
    emulator: web::Data<MockLayer>,
    path: web::Path<UserPath>,
    payload: web::Payload,
) -> Result<HttpResponse, LayerError> {
    let user = path_user(&path.user)?;
    let body = json_body(payload, emulator.settings().max_body_bytes).await?;
    let ops = input::identity_patch(&body)?;
    emulator.world(platform.app)?.patch_identity(&user, ops)?;
    Ok(no_content())
}

pub async fn put_identity(
    platform: Platform,
    emulator: web::Data<MockLayer>,
    path: web::Path<UserPath>,
    payload: web::Payload,
) -> Result<HttpResponse, LayerError> {
    let user = path_user(&path.user)?;
    let body = json_body(payload, emulator.settings().max_body_bytes).await?;
    let fields = input::identity_fields(&body)?;
    emulator
        .world(platform.app)?
        .replace_identity(&user, fields)?;
    Ok(no_content())
}

pub async fn delete_identity(
    platform: Platform,
    emulator: web::Data<MockLayer>,
    path: web::Path<UserPath>,
) -> Result<HttpResponse, LayerError> {
    let user = path_user(&path.user)?;
    emulator.world(platform.app)?.delete_identity(&user)?;
    Ok(no_content())
}
