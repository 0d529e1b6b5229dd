//! `POST /announcements` (§C.6): 202 with the announcement; each recipient's SDK gets an
//! Announcement `create` and finds it under the Client API's `GET /announcements`.
//! `POST /notifications` (§C.3): a push to each recipient, nothing on the Client API side.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::Value;

use super::views::PlatformView;
use super::{Platform, dedupe_tag, input as platform_input};
use crate::mock_layer::MockLayer;
use crate::mock_layer::error::LayerError;
use crate::mock_layer::input;
use crate::mock_layer::rest::{json, json_body};

/// Most recipients of one announcement.
const MAX_RECIPIENTS: usize = 1000;

fn recipients(body: &Value) -> Result<Vec<String>, LayerError> {
    match body.get("recipients") {
        None | Some(Value::Null) => Err(LayerError::missing_property("recipients")),
        Some(Value::Array(list)) if !list.is_empty() && list.len() <= MAX_RECIPIENTS => list
            .iter()
            .map(|r| platform_input::user(r, "recipients"))
            .collect(),
        Some(_) => Err(LayerError::invalid_property(
            "recipients",
            format!("recipients must be an array of 1 to {MAX_RECIPIENTS} user IDs"),
        )),
    }
}

/// 202 with `{}`; the push is in `GET /_mock/notifications`.
pub async fn post_notifications(
    platform: Platform,
    emulator: web::Data<MockLayer>,
    payload: web::Payload,
) -> Result<HttpResponse, LayerError> {
    let body = json_body(payload, emulator.settings().max_body_bytes).await?;
    if !body.is_object() {
        return Err(LayerError::invalid_request(
            "the body must be a JSON object",
        ));
    }
    let recipients = recipients(&body)?;
    let notification = platform_input::notification(&body)?
        .ok_or_else(|| LayerError::missing_property("notification"))?;
    emulator
        .world(platform.app)?
        .push_notification(recipients, notification)?;
    Ok(json(StatusCode::ACCEPTED, &serde_json::json!({})))
}

pub async fn post_announcements(
    platform: Platform,
    emulator: web::Data<MockLayer>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, LayerError> {
    let tag = dedupe_tag(&req)?;
    let body = json_body(payload, emulator.settings().max_body_bytes).await?;
    if !body.is_object() {
        return Err(LayerError::invalid_request(
            "the body must be a JSON object",
        ));
    }
    let recipients = recipients(&body)?;
    let sender = match platform_input::sender(&body)? {
        crate::mock_layer::world::Sender::Name(name) => name,
        crate::mock_layer::world::Sender::User(_) => {
            return Err(LayerError::invalid_property(
                "sender",
                "an announcement is sent under a name: sender {\"name\": …}",
            ));
        }
    };
    let mut new = input::new_message(&body)?;
    new.notification = platform_input::notification(&body)?;
    let mut world = emulator.world(platform.app)?;
    let uuid = world.send_announcement(tag, sender, recipients, new)?;
    let announcement = world
        .announcements
        .get(&uuid)
        .ok_or_else(|| LayerError::internal("announcement vanished under the lock"))?;
    let view = PlatformView {
        world: &world,
        version: platform.version,
    };
    Ok(json(StatusCode::ACCEPTED, &view.announcement(announcement)))
}
