//! A user as the app's server manages it (§C.8, §C.9): block lists (the 1.x endpoints and
//! the bulk `PATCH /users/{u}`), suspension, and ending every session of a user. Blocks
//! filter delivery in the world (§E.11); suspension and ended sessions close the user's
//! sockets, and a suspended user gets no new session (§E.12).

use std::collections::HashSet;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use serde::Deserialize;
use serde_json::json;

use super::conversations::known_user;
use super::input::{self, UserOp};
use super::views::PlatformView;
use super::{Platform, no_content, path_user};
use crate::mock_layer::MockLayer;
use crate::mock_layer::error::LayerError;
use crate::mock_layer::ids::AppId;
use crate::mock_layer::rest::{json, json_body};
use crate::mock_layer::world::check_block_room;

#[derive(Debug, Deserialize)]
pub struct UserPath {
    user: String,
}

#[derive(Debug, Deserialize)]
pub struct BlockPath {
    user: String,
    blocked: String,
}

pub async fn get_blocks(
    platform: Platform,
    emulator: web::Data<MockLayer>,
    path: web::Path<UserPath>,
) -> Result<HttpResponse, LayerError> {
    let world = emulator.world(platform.app)?;
    let owner = known_user(&world, &path.user)?;
    let view = PlatformView {
        world: &world,
        version: platform.version,
    };
    let list: Vec<_> = world
        .block_list(&owner)
        .iter()
        .map(|user| view.block_entry(user))
        .collect();
    Ok(json(StatusCode::OK, &list))
}

/// 204, also when already blocked; the owner and the target exist from then on.
pub async fn post_blocks(
    platform: Platform,
    emulator: web::Data<MockLayer>,
    path: web::Path<UserPath>,
    payload: web::Payload,
) -> Result<HttpResponse, LayerError> {
    let owner = path_user(&path.user)?;
    let body = json_body(payload, emulator.settings().max_body_bytes).await?;
    let target = input::block_target(&body)?;
    emulator.world(platform.app)?.block(&owner, &target)?;
    Ok(no_content())
}

/// 204, also when not blocked.
pub async fn delete_block(
    platform: Platform,
    emulator: web::Data<MockLayer>,
    path: web::Path<BlockPath>,
) -> Result<HttpResponse, LayerError> {
    let owner = path_user(&path.user)?;
    let target = path_user(&path.blocked)?;
    emulator.world(platform.app)?.unblock(&owner, &target);
    Ok(no_content())
}

pub async fn get_user(
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
    Ok(json(
        StatusCode::OK,
        &json!({
            "id": user,
            "identity": view.identity(&user),
            "suspended": world.suspended.contains(&user),
        }),
    ))
}

/// Blocks and suspension, all or nothing; 202 as on Layer (which applied it later; the
/// emulator applies it at once).
pub async fn patch_user(
    platform: Platform,
    emulator: web::Data<MockLayer>,
    path: web::Path<UserPath>,
    payload: web::Payload,
) -> Result<HttpResponse, LayerError> {
    let user = path_user(&path.user)?;
    let body = json_body(payload, emulator.settings().max_body_bytes).await?;
    let ops = input::user_patch(&body)?;
    let mut suspend = None;
    {
        let mut world = emulator.world(platform.app)?;
        let mut named: Vec<&str> = vec![&user];
        for op in &ops {
            match op {
                UserOp::Block(u) | UserOp::Unblock(u) => named.push(u),
                UserOp::SetBlocks(list) => named.extend(list.iter().map(String::as_str)),
                UserOp::Suspend(_) => {}
            }
        }
        world.room_for_identities(named)?;
        // All or nothing: the block list the ops end with must fit before any applies.
        let mut blocked: HashSet<String> = world.block_list(&user).into_iter().collect();
        for op in &ops {
            match op {
                UserOp::Block(u) => {
                    blocked.insert(u.clone());
                }
                UserOp::Unblock(u) => {
                    blocked.remove(u);
                }
                UserOp::SetBlocks(list) => blocked = list.iter().cloned().collect(),
                UserOp::Suspend(_) => {}
            }
        }
        check_block_room(blocked.len())?;
        world.provision(&user)?;
        for op in ops {
            match op {
                UserOp::Block(target) => world.add_block(&user, &target)?,
                UserOp::Unblock(target) => world.unblock(&user, &target),
                UserOp::SetBlocks(list) => {
                    for target in world.block_list(&user) {
                        world.unblock(&user, &target);
                    }
                    for target in list {
                        world.add_block(&user, &target)?;
                    }
                }
                UserOp::Suspend(on) => {
                    if on {
                        world.suspended.insert(user.clone());
                    } else {
                        world.suspended.remove(&user);
                    }
                    suspend = Some(on);
                }
            }
        }
    }
    if suspend == Some(true) {
        end_sessions(&emulator, platform.app, &user)?;
    }
    Ok(HttpResponse::Accepted().finish())
}

pub async fn get_badge(
    platform: Platform,
    emulator: web::Data<MockLayer>,
    path: web::Path<UserPath>,
) -> Result<HttpResponse, LayerError> {
    let world = emulator.world(platform.app)?;
    let user = known_user(&world, &path.user)?;
    Ok(json(StatusCode::OK, &world.badge(&user)))
}

/// `{"external_unread_count": n}`; 204.
pub async fn put_badge(
    platform: Platform,
    emulator: web::Data<MockLayer>,
    path: web::Path<UserPath>,
    payload: web::Payload,
) -> Result<HttpResponse, LayerError> {
    let body = json_body(payload, emulator.settings().max_body_bytes).await?;
    let count = match body.get("external_unread_count") {
        None | Some(serde_json::Value::Null) => {
            return Err(LayerError::missing_property("external_unread_count"));
        }
        Some(value) => value.as_u64().filter(|n| *n <= 1_000_000).ok_or_else(|| {
            LayerError::invalid_property(
                "external_unread_count",
                "external_unread_count must be a whole number from 0 to 1000000",
            )
        })?,
    };
    let mut world = emulator.world(platform.app)?;
    let user = known_user(&world, &path.user)?;
    world.external_unread.insert(user.clone(), count);
    world.push_badge(&user);
    Ok(no_content())
}

/// `PATCH /apps/{app}`: `set` of `session_ttl_in_seconds` (30 to 31 536 000), the lifetime
/// of sessions created from then on; 202.
pub async fn patch_app(
    platform: Platform,
    emulator: web::Data<MockLayer>,
    payload: web::Payload,
) -> Result<HttpResponse, LayerError> {
    let body = json_body(payload, emulator.settings().max_body_bytes).await?;
    let ops = body.as_array().ok_or_else(|| {
        LayerError::invalid_request("a Layer-Patch body is a JSON array of operations")
    })?;
    let mut ttl = None;
    for (index, op) in ops.iter().enumerate() {
        let operation = op.get("operation").and_then(serde_json::Value::as_str);
        let property = op.get("property").and_then(serde_json::Value::as_str);
        if (operation, property) != (Some("set"), Some("session_ttl_in_seconds")) {
            return Err(LayerError::invalid_property(
                "property",
                format!("operation {index}: only set of session_ttl_in_seconds changes an app"),
            ));
        }
        ttl = Some(
            op.get("value")
                .and_then(serde_json::Value::as_u64)
                .filter(|v| (30..=31_536_000).contains(v))
                .ok_or_else(|| {
                    LayerError::invalid_property(
                        "session_ttl_in_seconds",
                        "session_ttl_in_seconds is a whole number from 30 to 31536000",
                    )
                })?,
        );
    }
    if let Some(ttl) = ttl {
        emulator.world(platform.app)?.session_ttl_secs = Some(ttl);
    }
    Ok(HttpResponse::Accepted().finish())
}

/// Every session of the user ends and their sockets close; the SDK's next request is
/// challenged.
pub async fn delete_sessions(
    platform: Platform,
    emulator: web::Data<MockLayer>,
    path: web::Path<UserPath>,
) -> Result<HttpResponse, LayerError> {
    let user = {
        let world = emulator.world(platform.app)?;
        known_user(&world, &path.user)?
    };
    end_sessions(&emulator, platform.app, &user)?;
    Ok(no_content())
}

fn end_sessions(emulator: &MockLayer, app: AppId, user: &str) -> Result<(), LayerError> {
    emulator.sessions.end_user_sessions(user, Some(app));
    emulator.world(app)?.close_sockets(user, None);
    Ok(())
}
