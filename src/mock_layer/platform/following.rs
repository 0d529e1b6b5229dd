//! Following through the Platform API (2.0 and 3.0, §C.7): whom a user follows — explicitly,
//! and implicitly everyone they share a conversation with — and the identities they follow.
//! The same follows the Client API's `PUT /following/users/{id}` makes.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use serde::Deserialize;
use serde_json::Value;

use super::conversations::known_user;
use super::views::PlatformView;
use super::{Platform, input, no_content, path_user};
use crate::mock_layer::MockLayer;
use crate::mock_layer::error::{ErrorKind, LayerError};
use crate::mock_layer::ids::identity_id;
use crate::mock_layer::rest::{ListQuery, json, json_body, page};

/// Layer lists up to 500 followed identities at a time.
const MAX_FOLLOWING_PAGE: usize = 500;

#[derive(Debug, Deserialize)]
pub struct UserPath {
    user: String,
}

#[derive(Debug, Deserialize)]
pub struct FollowPath {
    user: String,
    followed: String,
}

fn from_2_0(platform: Platform) -> Result<(), LayerError> {
    if platform.version.uses_identities() {
        Ok(())
    } else {
        Err(LayerError::new(
            ErrorKind::InvalidEndpoint,
            "following has endpoints from version 2.0 on (Accept: application/vnd.layer+json; \
             version=2.0)",
        ))
    }
}

/// 204; the followed user exists from then on.
pub async fn put_following(
    platform: Platform,
    emulator: web::Data<MockLayer>,
    path: web::Path<FollowPath>,
) -> Result<HttpResponse, LayerError> {
    from_2_0(platform)?;
    let (follower, followed) = (path_user(&path.user)?, path_user(&path.followed)?);
    let mut world = emulator.world(platform.app)?;
    world.provision(&follower)?;
    world.follow(&follower, &followed)?;
    Ok(no_content())
}

pub async fn delete_following(
    platform: Platform,
    emulator: web::Data<MockLayer>,
    path: web::Path<FollowPath>,
) -> Result<HttpResponse, LayerError> {
    from_2_0(platform)?;
    let (follower, followed) = (path_user(&path.user)?, path_user(&path.followed)?);
    emulator.world(platform.app)?.unfollow(&follower, &followed);
    Ok(no_content())
}

/// 204 if `user` follows `followed`, 404 if not.
pub async fn get_following_one(
    platform: Platform,
    emulator: web::Data<MockLayer>,
    path: web::Path<FollowPath>,
) -> Result<HttpResponse, LayerError> {
    from_2_0(platform)?;
    let world = emulator.world(platform.app)?;
    let follower = known_user(&world, &path.user)?;
    let followed = path_user(&path.followed)?;
    if world.followed_by(&follower).contains(&followed) {
        Ok(no_content())
    } else {
        Err(LayerError::not_found(format!(
            "{follower:?} does not follow {followed:?}"
        )))
    }
}

/// `["layer:///identities/a", …]` to follow; 202.
pub async fn post_following(
    platform: Platform,
    emulator: web::Data<MockLayer>,
    path: web::Path<UserPath>,
    payload: web::Payload,
) -> Result<HttpResponse, LayerError> {
    from_2_0(platform)?;
    let follower = path_user(&path.user)?;
    let body = json_body(payload, emulator.settings().max_body_bytes).await?;
    let list = match &body {
        Value::Array(list) if list.len() <= MAX_FOLLOWING_PAGE => list
            .iter()
            .map(|v| input::user(v, "following"))
            .collect::<Result<Vec<_>, _>>()?,
        _ => {
            return Err(LayerError::invalid_request(format!(
                "the body must be an array of at most {MAX_FOLLOWING_PAGE} identity IDs"
            )));
        }
    };
    let mut world = emulator.world(platform.app)?;
    world.room_for_identities(list.iter().map(String::as_str).chain([follower.as_str()]))?;
    world.provision(&follower)?;
    for followed in &list {
        world.follow(&follower, followed)?;
    }
    Ok(HttpResponse::Accepted().finish())
}

/// The identity IDs `user` follows, sorted, paged.
pub async fn get_following(
    platform: Platform,
    emulator: web::Data<MockLayer>,
    path: web::Path<UserPath>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, LayerError> {
    from_2_0(platform)?;
    let size = query.page_size(MAX_FOLLOWING_PAGE)?;
    let world = emulator.world(platform.app)?;
    let user = known_user(&world, &path.user)?;
    let ids: Vec<String> = world
        .followed_by(&user)
        .iter()
        .map(|u| identity_id(u))
        .collect();
    let items = page(ids, query.from_id.as_deref(), |id, from| id == from, size);
    Ok(json(StatusCode::OK, &items))
}

/// The full identities `user` follows.
pub async fn get_identities(
    platform: Platform,
    emulator: web::Data<MockLayer>,
    path: web::Path<UserPath>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, LayerError> {
    from_2_0(platform)?;
    let size = query.page_size(MAX_FOLLOWING_PAGE)?;
    let world = emulator.world(platform.app)?;
    let user = known_user(&world, &path.user)?;
    let view = PlatformView {
        world: &world,
        version: platform.version,
    };
    let followed: Vec<String> = world.followed_by(&user).into_iter().collect();
    let items: Vec<Value> = page(
        followed,
        query.from_id.as_deref(),
        |u, from| identity_id(u) == from || u == from,
        size,
    )
    .iter()
    .map(|u| view.identity(u))
    .collect();
    Ok(json(StatusCode::OK, &items))
}
