//! Identities: `GET /identities/{user_id}` (auto-provisioned, as the SDK needs every
//! participant it learns about to load), the list of the identities the caller follows, and
//! explicit following (the rules are in `presence.rs`).

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
    world.provision(&user)?;
    Ok(json(StatusCode::OK, &world.identity_full(&user)))
}

/// The identities the caller follows (participants of their conversations, and explicit
/// follows), newest first, as Layer listed them.
pub async fn get_identities(
    caller: Caller,
    emulator: web::Data<MockLayer>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, LayerError> {
    let size = query.page_size(MAX_IDENTITY_PAGE)?;
    let world = emulator.world(caller.app)?;
    let mut followed: Vec<(u64, String)> = world
        .followed_by(&caller.user_id)
        .into_iter()
        .map(|user| {
            let created = world.identities.get(&user).map_or(0, |i| i.created_seq);
            (created, user)
        })
        .collect();
    // Newest first; the user ID breaks ties (if any) so pages never overlap.
    followed.sort_by(|a, b| b.cmp(a));
    let total = followed.len();
    // `from_id` is an identity ID or a bare user ID (Layer's docs allow both).
    let is_from = |(_, user): &(u64, String), id: &str| {
        user_id_from_identity(id).as_deref() == Some(user.as_str())
    };
    let items = page(followed, query.from_id.as_deref(), is_from, size)
        .into_iter()
        .map(|(_, user)| world.identity_full(&user))
        .collect();
    Ok(json_list(items, total))
}

pub async fn put_following(
    caller: Caller,
    emulator: web::Data<MockLayer>,
    path: web::Path<String>,
) -> Result<HttpResponse, LayerError> {
    let user = user_id(&path)?;
    emulator.world(caller.app)?.follow(&caller.user_id, &user)?;
    Ok(HttpResponse::NoContent().finish())
}

pub async fn delete_following(
    caller: Caller,
    emulator: web::Data<MockLayer>,
    path: web::Path<String>,
) -> Result<HttpResponse, LayerError> {
    let user = user_id(&path)?;
    emulator.world(caller.app)?.unfollow(&caller.user_id, &user);
    tracing::debug!(identity = %identity_id(&user), "unfollowed");
    Ok(HttpResponse::NoContent().finish())
}
