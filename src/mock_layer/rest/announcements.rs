//! Announcements over the Client API: the caller's list (newest first), one, receipts,
//! and deleting their copy. Only the Platform API sends them.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};

use super::{ListQuery, json, json_body, json_list, page, path_uuid};
use crate::mock_layer::MockLayer;
use crate::mock_layer::auth::Caller;
use crate::mock_layer::error::LayerError;
use crate::mock_layer::ids::{Kind, parse_object_id};
use crate::mock_layer::input;
use crate::mock_layer::world::Announcement;

pub async fn get_announcements(
    caller: Caller,
    emulator: web::Data<MockLayer>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, LayerError> {
    let size = query.page_size(100)?;
    let world = emulator.world(caller.app)?;
    let mut mine: Vec<&Announcement> = world
        .announcements
        .values()
        .filter(|a| a.status.contains_key(&caller.user_id))
        .collect();
    mine.sort_by_key(|a| std::cmp::Reverse(a.seq));
    let total = mine.len();
    let is_from =
        |a: &&Announcement, id: &str| parse_object_id(Kind::Announcements, id) == Some(a.uuid);
    let items = page(mine, query.from_id.as_deref(), is_from, size)
        .into_iter()
        .map(|a| world.announcement_view(a, &caller.user_id))
        .collect();
    Ok(json_list(items, total))
}

pub async fn get_announcement(
    caller: Caller,
    emulator: web::Data<MockLayer>,
    path: web::Path<String>,
) -> Result<HttpResponse, LayerError> {
    let uuid = path_uuid(&path, "announcement")?;
    let world = emulator.world(caller.app)?;
    let announcement = world.announcement_for(&caller.user_id, &uuid)?;
    Ok(json(
        StatusCode::OK,
        &world.announcement_view(announcement, &caller.user_id),
    ))
}

pub async fn post_announcement_receipts(
    caller: Caller,
    emulator: web::Data<MockLayer>,
    path: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, LayerError> {
    let uuid = path_uuid(&path, "announcement")?;
    let body = json_body(payload, emulator.settings().max_body_bytes).await?;
    let kind = input::receipt(&body)?;
    emulator
        .world(caller.app)?
        .announcement_receipt(&caller.user_id, &uuid, kind)?;
    Ok(HttpResponse::NoContent().finish())
}

pub async fn delete_announcement(
    caller: Caller,
    emulator: web::Data<MockLayer>,
    path: web::Path<String>,
) -> Result<HttpResponse, LayerError> {
    let uuid = path_uuid(&path, "announcement")?;
    emulator
        .world(caller.app)?
        .delete_announcement(&caller.user_id, &uuid)?;
    Ok(HttpResponse::NoContent().finish())
}
