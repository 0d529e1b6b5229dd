//! Channels over REST (§B.1 row 23): the caller's channels, one channel, its messages and
//! its members, joining and leaving (`PUT`/`DELETE {channel.url}/members/{user id}`), and
//! deleting a channel message. Creating a channel and sending into one go over the
//! WebSocket (`Channel.create`, `Message.create`). The rules live in `world/channels.rs`.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};

use super::{ListQuery, json, json_list, page, path_uuid};
use crate::mock_layer::MockLayer;
use crate::mock_layer::auth::Caller;
use crate::mock_layer::error::{ErrorKind, LayerError};
use crate::mock_layer::ids::{Kind, parse_object_id, user_id_from_identity};
use crate::mock_layer::world::{Channel, ChannelMessage, Member, membership_id};

/// Layer lets a member query ask for up to 500 at a time (the XDK's `MembersQuery`).
const MAX_MEMBER_PAGE: usize = 500;

/// A `{user_id}` path segment (actix has decoded it): a user ID, or an identity ID.
fn member_user(raw: &str) -> Result<String, LayerError> {
    user_id_from_identity(raw)
        .ok_or_else(|| LayerError::not_found(format!("there is no identity {raw:?}")))
}

pub async fn get_channels(
    caller: Caller,
    emulator: web::Data<MockLayer>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, LayerError> {
    let size = query.page_size(100)?;
    let world = emulator.world(caller.app)?;
    let mine = world.channels_newest_first(&caller.user_id);
    let total = mine.len();
    let is_from = |c: &&Channel, id: &str| parse_object_id(Kind::Channels, id) == Some(c.uuid);
    let items = page(mine, query.from_id.as_deref(), is_from, size)
        .into_iter()
        .map(|c| world.channel_view(c, &caller.user_id))
        .collect();
    Ok(json_list(items, total))
}

/// Any channel of the app: a non-member sees it with `membership: null`.
pub async fn get_channel(
    caller: Caller,
    emulator: web::Data<MockLayer>,
    path: web::Path<String>,
) -> Result<HttpResponse, LayerError> {
    let uuid = path_uuid(&path, "channel")?;
    let world = emulator.world(caller.app)?;
    let channel = world.channel(&uuid)?;
    Ok(json(
        StatusCode::OK,
        &world.channel_view(channel, &caller.user_id),
    ))
}

/// Newest first, for members only.
pub async fn get_channel_messages(
    caller: Caller,
    emulator: web::Data<MockLayer>,
    path: web::Path<String>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, LayerError> {
    let uuid = path_uuid(&path, "channel")?;
    let size = query.page_size(100)?;
    let world = emulator.world(caller.app)?;
    let channel = world.channel_for_member(&caller.user_id, &uuid)?;
    let newest_first: Vec<&ChannelMessage> = world.channel_messages_newest_first(channel).collect();
    let total = newest_first.len();
    let is_from =
        |m: &&ChannelMessage, id: &str| parse_object_id(Kind::Messages, id) == Some(m.uuid);
    let items = page(newest_first, query.from_id.as_deref(), is_from, size)
        .into_iter()
        .map(|m| world.channel_message_view(m))
        .collect();
    Ok(json_list(items, total))
}

pub async fn get_channel_message(
    caller: Caller,
    emulator: web::Data<MockLayer>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, LayerError> {
    let (channel, message) = path.into_inner();
    let channel = path_uuid(&channel, "channel")?;
    let message = path_uuid(&message, "message")?;
    let world = emulator.world(caller.app)?;
    let message = world.channel_message_for(&caller.user_id, &channel, &message)?;
    Ok(json(StatusCode::OK, &world.channel_message_view(message)))
}

pub async fn delete_channel_message(
    caller: Caller,
    emulator: web::Data<MockLayer>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, LayerError> {
    let (channel, message) = path.into_inner();
    let channel = path_uuid(&channel, "channel")?;
    let message = path_uuid(&message, "message")?;
    emulator
        .world(caller.app)?
        .delete_channel_message(&caller.user_id, &channel, &message)?;
    Ok(HttpResponse::NoContent().finish())
}

/// Channel messages have no receipts (the XDK's `ChannelMessage.sendReceipt` sends none).
pub async fn post_channel_message_receipts(req: HttpRequest) -> Result<HttpResponse, LayerError> {
    Err(LayerError::new(
        ErrorKind::MethodNotAllowed,
        format!(
            "{} does not support POST: channel messages have no receipts",
            req.path()
        ),
    ))
}

/// The members in the order they joined, for members only.
pub async fn get_channel_members(
    caller: Caller,
    emulator: web::Data<MockLayer>,
    path: web::Path<String>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, LayerError> {
    let uuid = path_uuid(&path, "channel")?;
    let size = query.page_size(MAX_MEMBER_PAGE)?;
    let world = emulator.world(caller.app)?;
    let channel = world.channel_for_member(&caller.user_id, &uuid)?;
    let members = channel.members_in_order();
    let total = members.len();
    // `from_id` is the last Membership's ID, an identity ID or a bare user ID.
    let is_from = |(user, _): &(&String, &Member), id: &str| {
        membership_id(channel, user) == id
            || user_id_from_identity(id).as_deref() == Some(user.as_str())
    };
    let items = page(members, query.from_id.as_deref(), is_from, size)
        .into_iter()
        .map(|(user, member)| world.membership_view(channel, user, member))
        .collect();
    Ok(json_list(items, total))
}

/// One Membership, for members (the XDK's `channel.getMember(id)`); 404 for a user who is
/// not a member.
pub async fn get_channel_member(
    caller: Caller,
    emulator: web::Data<MockLayer>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, LayerError> {
    let (channel, user) = path.into_inner();
    let uuid = path_uuid(&channel, "channel")?;
    let user = member_user(&user)?;
    let world = emulator.world(caller.app)?;
    let channel = world.channel_for_member(&caller.user_id, &uuid)?;
    let member = channel.members.get(&user).ok_or_else(|| {
        LayerError::not_found(format!("{user:?} is not a member of {}", channel.id()))
    })?;
    Ok(json(
        StatusCode::OK,
        &world.membership_view(channel, &user, member),
    ))
}

/// Join (the caller's own user ID) or add a member; 204 either way.
pub async fn put_channel_member(
    caller: Caller,
    emulator: web::Data<MockLayer>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, LayerError> {
    let (channel, user) = path.into_inner();
    let uuid = path_uuid(&channel, "channel")?;
    let user = member_user(&user)?;
    emulator
        .world(caller.app)?
        .add_channel_member(&caller.user_id, &uuid, &user)?;
    Ok(HttpResponse::NoContent().finish())
}

/// Leave (the caller's own user ID) or remove a member; 204.
pub async fn delete_channel_member(
    caller: Caller,
    emulator: web::Data<MockLayer>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, LayerError> {
    let (channel, user) = path.into_inner();
    let uuid = path_uuid(&channel, "channel")?;
    let user = member_user(&user)?;
    emulator
        .world(caller.app)?
        .remove_channel_member(&caller.user_id, &uuid, &user)?;
    Ok(HttpResponse::NoContent().finish())
}
