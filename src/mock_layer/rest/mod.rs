//! The Client API's REST endpoints (rows 1–23 of §B.1, plus the REST forms of creating
//! conversations and messages, and push tokens). Handlers are thin: extract the caller and
//! the input, run one world operation under the app's lock, render.
//!
//! Every answer is JSON as `application/json` (the SDK parses nothing else, not even
//! `application/vnd.layer+json`); every failure is a [`LayerError`]. Unknown paths answer
//! `invalid_endpoint`, unsupported methods `method_not_allowed`, and an upgrade request on
//! any path goes to the WebSocket.

pub(super) mod announcements;
pub(super) mod channels;
pub(super) mod content;
pub(super) mod conversations;
pub(super) mod identities;
pub(super) mod messages;
pub(super) mod sessions;

use actix_web::guard::{self, GuardContext};
use actix_web::http::StatusCode;
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, Resource, web};
use serde::Deserialize;
use serde_json::Value;
use uuid::Uuid;

use super::control;
use super::error::{ErrorKind, LayerError};
use super::ids::parse_uuid;
use super::websocket;

pub fn configure(cfg: &mut web::ServiceConfig) {
    // First: a WebSocket upgrade is accepted on any path (the SDK appends `/?session_token=`
    // to whatever `websocketUrl` is).
    cfg.service(
        web::resource("/{any:.*}")
            .guard(guard::fn_guard(is_websocket_upgrade))
            .to(websocket::get_websocket),
    )
    .service(
        resource("/")
            .route(web::get().to(sessions::get_root))
            .route(web::head().to(sessions::get_root)),
    )
    .service(
        resource("/ping")
            .route(web::head().to(sessions::get_ping))
            .route(web::get().to(sessions::get_ping)),
    )
    .service(resource("/nonces").route(web::post().to(sessions::post_nonces)))
    .service(resource("/sessions").route(web::post().to(sessions::post_sessions)))
    .service(resource("/sessions/{token}").route(web::delete().to(sessions::delete_session)))
    .service(resource("/identities").route(web::get().to(identities::get_identities)))
    .service(resource("/identities/{user_id}").route(web::get().to(identities::get_identity)))
    .service(
        resource("/following/users/{user_id}")
            .route(web::put().to(identities::put_following))
            .route(web::delete().to(identities::delete_following)),
    )
    .service(
        resource("/conversations")
            .route(web::get().to(conversations::get_conversations))
            .route(web::post().to(conversations::post_conversations)),
    )
    .service(
        resource("/conversations/{uuid}")
            .route(web::get().to(conversations::get_conversation))
            .route(web::patch().to(conversations::patch_conversation))
            .route(web::delete().to(conversations::delete_conversation)),
    )
    .service(
        resource("/conversations/{uuid}/messages")
            .route(web::get().to(messages::get_messages))
            .route(web::post().to(messages::post_messages)),
    )
    .service(
        resource("/conversations/{uuid}/mark_all_read")
            .route(web::post().to(conversations::post_mark_all_read)),
    )
    .service(
        resource("/messages/{uuid}")
            .route(web::get().to(messages::get_message))
            .route(web::delete().to(messages::delete_message)),
    )
    .service(resource("/messages/{uuid}/receipts").route(web::post().to(messages::post_receipts)))
    .service(resource("/announcements").route(web::get().to(announcements::get_announcements)))
    .service(
        resource("/announcements/{uuid}")
            .route(web::get().to(announcements::get_announcement))
            .route(web::delete().to(announcements::delete_announcement)),
    )
    .service(
        resource("/announcements/{uuid}/receipts")
            .route(web::post().to(announcements::post_announcement_receipts)),
    )
    .service(resource("/channels").route(web::get().to(channels::get_channels)))
    .service(resource("/channels/{uuid}").route(web::get().to(channels::get_channel)))
    .service(
        resource("/channels/{uuid}/messages").route(web::get().to(channels::get_channel_messages)),
    )
    .service(
        resource("/channels/{uuid}/messages/{message}")
            .route(web::get().to(channels::get_channel_message))
            .route(web::delete().to(channels::delete_channel_message)),
    )
    .service(
        resource("/channels/{uuid}/messages/{message}/receipts")
            .route(web::post().to(channels::post_channel_message_receipts)),
    )
    .service(
        resource("/channels/{uuid}/members").route(web::get().to(channels::get_channel_members)),
    )
    .service(
        resource("/channels/{uuid}/members/{user_id}")
            .route(web::get().to(channels::get_channel_member))
            .route(web::put().to(channels::put_channel_member))
            .route(web::delete().to(channels::delete_channel_member)),
    )
    .service(resource("/content").route(web::post().to(content::post_content)))
    .service(resource("/content/{uuid}").route(web::get().to(content::get_content)))
    .service(resource("/content-upload/{secret}").route(web::put().to(content::put_upload)))
    .service(resource("/content-download/{secret}").route(web::get().to(content::get_download)))
    .service(resource("/push_tokens").route(web::post().to(sessions::post_push_tokens)))
    .service(
        resource("/push_tokens/{device_id}").route(web::delete().to(sessions::delete_push_token)),
    )
    .configure(|cfg| control::configure(cfg, resource))
    .default_service(web::to(invalid_endpoint));
}

fn is_websocket_upgrade(ctx: &GuardContext<'_>) -> bool {
    ctx.head()
        .headers()
        .get(actix_web::http::header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

fn resource(path: &str) -> Resource {
    web::resource(path).default_service(web::to(method_not_allowed))
}

async fn invalid_endpoint(req: HttpRequest) -> Result<HttpResponse, LayerError> {
    Err(LayerError::new(
        ErrorKind::InvalidEndpoint,
        format!("there is no endpoint {} {}", req.method(), req.path()),
    ))
}

async fn method_not_allowed(req: HttpRequest) -> Result<HttpResponse, LayerError> {
    Err(LayerError::new(
        ErrorKind::MethodNotAllowed,
        format!("{} does not support {}", req.path(), req.method()),
    ))
}

pub fn path_config() -> web::PathConfig {
    web::PathConfig::default()
        .error_handler(|e, _| LayerError::invalid_request(format!("invalid path: {e}")).into())
}

pub fn query_config() -> web::QueryConfig {
    web::QueryConfig::default().error_handler(|e, _| {
        LayerError::invalid_request(format!("invalid query string: {e}")).into()
    })
}

/// A JSON response, as `application/json`.
pub fn json(status: StatusCode, body: &impl serde::Serialize) -> HttpResponse {
    HttpResponse::build(status).json(body)
}

/// A list with its total in `Layer-Count` (the SDK's queries read `totalSize` from it).
pub fn json_list(items: Vec<Value>, total: usize) -> HttpResponse {
    let mut response = json(StatusCode::OK, &items);
    response.headers_mut().insert(
        HeaderName::from_static("layer-count"),
        HeaderValue::from(total),
    );
    response
}

/// Reads a body of at most `limit` bytes as JSON; an empty body is `null`.
pub async fn json_body(payload: web::Payload, limit: usize) -> Result<Value, LayerError> {
    let bytes = payload
        .to_bytes_limited(limit)
        .await
        .map_err(|_| {
            LayerError::invalid_request(format!(
                "the request body is larger than the limit of {limit} bytes"
            ))
        })?
        .map_err(|e| {
            LayerError::invalid_request(format!("the request body could not be read: {e}"))
        })?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Null);
    }
    serde_json::from_slice(&bytes).map_err(|e| {
        LayerError::invalid_request(format!("the request body is not valid JSON: {e}"))
    })
}

/// A `{uuid}` path segment; anything else names nothing that exists.
pub fn path_uuid(raw: &str, what: &str) -> Result<Uuid, LayerError> {
    parse_uuid(raw).ok_or_else(|| LayerError::not_found(format!("there is no {what} {raw:?}")))
}

/// `page_size`, `from_id`, `sort_by`, as strings so a wrong type gets Layer's error.
#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    pub page_size: Option<String>,
    pub from_id: Option<String>,
    pub sort_by: Option<String>,
}

impl ListQuery {
    /// `sort_by`: `created_at` (the default) or `last_message`.
    pub fn by_last_message(&self) -> Result<bool, LayerError> {
        match self.sort_by.as_deref() {
            None | Some("created_at") => Ok(false),
            Some("last_message") => Ok(true),
            Some(other) => Err(LayerError::invalid_property(
                "sort_by",
                format!("sort_by {other:?} must be created_at or last_message"),
            )),
        }
    }

    /// The page size: default `max.min(100)`, at most `max`.
    pub fn page_size(&self, max: usize) -> Result<usize, LayerError> {
        match &self.page_size {
            None => Ok(max.min(100)),
            Some(raw) => match raw.parse::<usize>() {
                Ok(n) if n >= 1 => Ok(n.min(max)),
                _ => Err(LayerError::invalid_property(
                    "page_size",
                    format!("page_size {raw:?} must be a positive integer (at most {max})"),
                )),
            },
        }
    }
}

/// One page of sorted `items`: at most `size` of those after the one `is_from` picks (all
/// from the start without `from_id`; none when `from_id` names nothing in the list).
pub fn page<T>(
    items: Vec<T>,
    from_id: Option<&str>,
    is_from: impl Fn(&T, &str) -> bool,
    size: usize,
) -> Vec<T> {
    let start = match from_id {
        None => 0,
        Some(id) => match items.iter().position(|item| is_from(item, id)) {
            Some(i) => i + 1,
            None => return Vec::new(),
        },
    };
    items.into_iter().skip(start).take(size).collect()
}
