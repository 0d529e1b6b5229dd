//! Identities: `GET /identities/{user_id}` (auto-provisioned, as the SDK needs every
//! participant it learns about to load), the identity list, and following.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};

use super::{ListQuery, json, json_list, page};
use crate::mock_layer::MockLayer;
use crate::mock_layer::auth::Caller;
use crate::mock_layer::error::LayerError;
use crate::mock_layer::ids::{identity_id, user_id_from_identity, valid_user_id};

/// Layer lets an identity query ask for up to 500 at a time.
const MAX_IDENTITY_PAGE: usize = 500;

fn user_id(raw: &str) -> Result<String, LayerError> {
    if valid_user_id(raw) {
        Ok(raw.to_owned())
    } else {
        Err(LayerError::not_found(format!(
            "there is no identity {raw:?}"
        )))
    }
}

pub async fn get_identity(
    caller: Caller,
    emulator: web::Data<MockLayer>,
    path: web::Path<String>,
) -> Result<HttpResponse, LayerError> {
    let user = user_id(&path)?;
    let mut world = emulator.world(caller.app)?;
    world.ensure_identity(&user);
    Ok(json(StatusCode::OK, &world.identity_full(&user)))
}

/// Every identity of the app, by user ID.
pub async fn get_identities(
    caller: Caller,
    emulator: web::Data<MockLayer>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, LayerError> {
    let size = query.page_size(MAX_IDENTITY_PAGE)?;
    let world = emulator.world(caller.app)?;
    let mut users: Vec<&String> = world.identities.keys().collect();
    users.sort();
    let total = users.len();
    let is_from = |u: &&String, id: &str| user_id_from_identity(id).as_ref() == Some(*u);
    let items = page(users, query.from_id.as_deref(), is_from, size)
        .into_iter()
        .map(|u| world.identity_full(u))
        .collect();
    Ok(json_list(items, total))
}

pub async fn put_following(
    caller: Caller,
    emulator: web::Data<MockLayer>,
    path: web::Path<String>,
) -> Result<HttpResponse, LayerError> {
    let user = user_id(&path)?;
    let mut world = emulator.world(caller.app)?;
    world.ensure_identity(&user);
    world
        .following
        .entry(caller.user_id)
        .or_default()
        .insert(user);
    Ok(HttpResponse::NoContent().finish())
}

pub async fn delete_following(
    caller: Caller,
    emulator: web::Data<MockLayer>,
    path: web::Path<String>,
) -> Result<HttpResponse, LayerError> {
    let user = user_id(&path)?;
    let mut world = emulator.world(caller.app)?;
    if let Some(followed) = world.following.get_mut(&caller.user_id) {
        followed.remove(&user);
    }
    tracing::debug!(identity = %identity_id(&user), "unfollowed");
    Ok(HttpResponse::NoContent().finish())
}
