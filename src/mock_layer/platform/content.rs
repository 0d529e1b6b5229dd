//! Rich content through the Platform API (§C.5): the server reserves content for a
//! conversation, uploads it to the emulator's own upload URL (as the Client API does), and
//! sends it in a message part `{"mime_type", "content": {"id", "size"}}`.

use actix_web::http::StatusCode;
use actix_web::http::header::{HeaderValue, LOCATION};
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::json;

use super::conversations::existing;
use super::{Platform, path_uuid};
use crate::mock_layer::MockLayer;
use crate::mock_layer::error::LayerError;
use crate::mock_layer::ids::{Kind, object_id};
use crate::mock_layer::rest::content::upload_headers;
use crate::mock_layer::rest::json;

/// The owner of content the server uploads (no user ID is empty).
const SERVER: &str = "";

#[derive(Debug, Deserialize)]
pub struct ConversationPath {
    conversation: String,
}

#[derive(Debug, Deserialize)]
pub struct ContentPath {
    conversation: String,
    content: String,
}

/// 201 with the upload URL, and `Location`.
pub async fn post_content(
    platform: Platform,
    emulator: web::Data<MockLayer>,
    req: HttpRequest,
    path: web::Path<ConversationPath>,
) -> Result<HttpResponse, LayerError> {
    let conversation = path_uuid(&path.conversation, "conversation")?;
    let (mime_type, size) = upload_headers(&req, emulator.settings().max_content_bytes)?;
    let mut world = emulator.world(platform.app)?;
    existing(&world, &conversation)?;
    let mut view = world.create_content(SERVER, mime_type, size)?;
    view["size"] = json!(size);
    view["refresh_url"] = serde_json::Value::Null;
    let mut response = json(StatusCode::CREATED, &view);
    if let Some(uuid) = view["id"].as_str().and_then(|id| id.rsplit('/').next())
        && let Ok(location) = HeaderValue::from_str(&format!(
            "/apps/{}/conversations/{conversation}/content/{uuid}",
            platform.app.uuid
        ))
    {
        response.headers_mut().insert(LOCATION, location);
    }
    Ok(response)
}

/// The content's download URL, once its bytes are uploaded.
pub async fn get_content(
    platform: Platform,
    emulator: web::Data<MockLayer>,
    path: web::Path<ContentPath>,
) -> Result<HttpResponse, LayerError> {
    let conversation = path_uuid(&path.conversation, "conversation")?;
    let uuid = path_uuid(&path.content, "content")?;
    let mut world = emulator.world(platform.app)?;
    existing(&world, &conversation)?;
    let not_found = || {
        LayerError::not_found(format!(
            "there is no uploaded content {}",
            object_id(Kind::Content, &uuid)
        ))
    };
    let size = world
        .content
        .get(&uuid)
        .filter(|c| c.owner == SERVER)
        .and_then(|c| c.bytes.as_ref().map(|b| b.len()))
        .ok_or_else(not_found)?;
    let mut view = world.refresh_content(SERVER, &uuid)?;
    view["size"] = json!(size);
    view["refresh_url"] = json!(format!(
        "{}/apps/{}/conversations/{conversation}/content/{uuid}",
        world.base, platform.app.uuid
    ));
    if let Some(map) = view.as_object_mut() {
        map.remove("upload_url");
    }
    Ok(json(StatusCode::OK, &view))
}
