//! The Platform API (Layer's Server API): what an app's backend calls, under
//! `/apps/{app_uuid}/…` with `Authorization: Bearer <token>` and a versioned
//! `Accept: application/vnd.layer+json; version=1.0|1.1|2.0|3.0`.
//!
//! A third door into the same world as the Client API's REST and WebSocket: handlers parse
//! (here and in `input.rs`), call the world's operations — the very ones an SDK's request
//! runs, so a message the server sends reaches the same sockets the same way — and render
//! in the Platform API's shapes (`views.rs`): user IDs under 1.x, identities under 2.0/3.0.
//!
//! - `conversations.rs` — create, get, Layer-Patch, delete; the user-perspective reads.
//! - `messages.rs` — send (as a user or under a name), list, get, delete.
//! - `parts.rs` — a sent message's parts under 3.0: add, update, replace, delete.
//! - `proxy.rs` — 3.0's Client API proxy: the Client API's requests, run as a user.
//! - `following.rs` — 2.0/3.0 following: follow, unfollow, list, the followed identities.
//! - `content.rs` — rich content the server uploads for its messages.
//! - `identities.rs` — `…/users/{u}/identity`: create, get, patch, replace, delete.
//! - `announcements.rs` — announcements to a list of users from a named sender.
//! - `users.rs` — block lists, `PATCH /users/{u}` (blocks, suspension), sessions.
//! - `webhooks/` — the Webhooks API (register, verify, activate …) and the sender of
//!   deliveries, which shares the Platform API's host and token.

mod announcements;
mod content;
mod conversations;
mod following;
mod identities;
pub(crate) mod input;
mod messages;
mod parts;
mod proxy;
mod users;
mod views;
pub(crate) mod webhooks;

use std::future::{Ready, ready};

use actix_web::dev::{AppService, HttpServiceFactory, Payload};
use actix_web::http::Method;
use actix_web::http::header::{ACCEPT, ALLOW, HeaderValue};
use actix_web::{
    FromRequest, Handler, HttpRequest, HttpResponse, Resource, Responder, ResponseError, web,
};
use serde_json::json;
use uuid::Uuid;

use super::error::{ErrorKind, LayerError};
use super::ids::{AppId, parse_uuid};
use super::{MockLayer, rest};

/// The Platform API's routes, relative to `/apps/{app_uuid}`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/apps/{app_uuid}")
            .wrap(actix_web::middleware::from_fn(method_override))
            .service(resource("").patch(users::patch_app))
            .service(resource("/announcements").post(announcements::post_announcements))
            .service(resource("/conversations").post(conversations::post_conversations))
            .service(
                resource("/conversations/{conversation}")
                    .get(conversations::get_conversation)
                    .patch(conversations::patch_conversation)
                    .delete(conversations::delete_conversation),
            )
            .service(resource("/conversations/{conversation}/content").post(content::post_content))
            .service(
                resource("/conversations/{conversation}/content/{content}")
                    .get(content::get_content),
            )
            .service(
                resource("/conversations/{conversation}/messages")
                    .get(messages::get_messages)
                    .post(messages::post_messages),
            )
            .service(
                resource("/conversations/{conversation}/messages/{message}")
                    .get(messages::get_message)
                    .delete(messages::delete_message),
            )
            .service(
                resource("/conversations/{conversation}/messages/{message}/parts")
                    .get(parts::get_parts)
                    .post(parts::post_part)
                    .put(parts::put_parts),
            )
            .service(
                resource("/conversations/{conversation}/messages/{message}/parts/{part}")
                    .get(parts::get_part)
                    .put(parts::put_part)
                    .delete(parts::delete_part),
            )
            .service(resource("/messages/{message}").get(messages::get_bare_message))
            .service(
                resource("/users/{user}/conversations")
                    .get(conversations::get_user_conversations)
                    .post(proxy::post_user_conversations),
            )
            .service(
                resource("/users/{user}/conversations/{conversation}")
                    .get(conversations::get_user_conversation)
                    .patch(proxy::patch_user_conversation)
                    .delete(proxy::delete_user_conversation),
            )
            .service(
                resource("/users/{user}/conversations/{conversation}/messages")
                    .get(messages::get_user_messages)
                    .post(proxy::post_user_messages),
            )
            .service(
                resource("/users/{user}/conversations/{conversation}/mark_all_read")
                    .post(proxy::post_mark_all_read),
            )
            .service(
                resource("/users/{user}/messages/{message}/receipts")
                    .post(proxy::post_user_receipts),
            )
            .service(
                resource("/users/{user}/messages/{message}")
                    .get(messages::get_user_message)
                    .delete(proxy::delete_user_message),
            )
            .service(
                resource("/users/{user}/identity")
                    .post(identities::post_identity)
                    .get(identities::get_identity)
                    .patch(identities::patch_identity)
                    .put(identities::put_identity)
                    .delete(identities::delete_identity),
            )
            .service(
                resource("/users/{user}/blocks")
                    .get(users::get_blocks)
                    .post(users::post_blocks),
            )
            .service(resource("/users/{user}/blocks/{blocked}").delete(users::delete_block))
            .service(
                resource("/users/{user}/following")
                    .get(following::get_following)
                    .post(following::post_following),
            )
            .service(
                resource("/users/{user}/following/{followed}")
                    .get(following::get_following_one)
                    .put(following::put_following)
                    .delete(following::delete_following),
            )
            .service(resource("/users/{user}/identities").get(following::get_identities))
            .service(resource("/users/{user}/identities/{item}").get(proxy::get_user_identity))
            .service(
                resource("/users/{user}/following/users/{item}")
                    .put(proxy::put_user_following)
                    .delete(proxy::delete_user_following),
            )
            .service(resource("/users/{user}/announcements").get(proxy::get_user_announcements))
            .service(
                resource("/users/{user}/announcements/{item}")
                    .get(proxy::get_user_announcement)
                    .delete(proxy::delete_user_announcement),
            )
            .service(
                resource("/users/{user}/announcements/{item}/receipts")
                    .post(proxy::post_user_announcement_receipts),
            )
            .service(resource("/users/{user}/content").post(proxy::post_user_content))
            .service(resource("/users/{user}/content/{item}").get(proxy::get_user_content))
            .service(resource("/users/{user}/push_tokens").post(proxy::post_user_push_tokens))
            .service(
                resource("/users/{user}/push_tokens/{item}").delete(proxy::delete_user_push_token),
            )
            .service(
                resource("/users/{user}/badge")
                    .get(users::get_badge)
                    .put(users::put_badge),
            )
            .service(resource("/notifications").post(announcements::post_notifications))
            .service(
                resource("/webhooks")
                    .get(webhooks::get_webhooks)
                    .post(webhooks::post_webhooks),
            )
            .service(
                resource("/webhooks/{webhook}")
                    .get(webhooks::get_webhook)
                    .delete(webhooks::delete_webhook),
            )
            .service(resource("/webhooks/{webhook}/activate").post(webhooks::post_activate))
            .service(resource("/webhooks/{webhook}/deactivate").post(webhooks::post_deactivate))
            .service(resource("/users/{user}/sessions").delete(users::delete_sessions))
            .service(
                resource("/users/{user}")
                    .get(users::get_user)
                    .patch(users::patch_user),
            )
            .default_service(web::to(invalid_endpoint)),
    );
}

/// `X-HTTP-Method-Override: PATCH` on a `POST` is a `PATCH` (for clients that cannot send
/// one); no other override is honoured.
async fn method_override(
    mut req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody>,
) -> Result<actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>, actix_web::Error> {
    let wants_patch = req
        .headers()
        .get("x-http-method-override")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("PATCH"));
    if wants_patch && req.method() == actix_web::http::Method::POST {
        req.head_mut().method = actix_web::http::Method::PATCH;
    }
    next.call(req).await
}

fn resource(path: &str) -> Routes {
    Routes {
        resource: web::resource(path),
        methods: Vec::new(),
    }
}

/// One Platform API path and its handlers, remembering the methods it takes so that any other
/// method gets a 405 whose `Allow` header lists them.
struct Routes {
    resource: Resource,
    methods: Vec<Method>,
}

impl Routes {
    fn on<F, Args>(mut self, method: Method, handler: F) -> Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.resource = self.resource.route(web::method(method.clone()).to(handler));
        self.methods.push(method);
        self
    }

    fn get<F, Args>(self, handler: F) -> Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.on(Method::GET, handler)
    }

    fn post<F, Args>(self, handler: F) -> Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.on(Method::POST, handler)
    }

    fn put<F, Args>(self, handler: F) -> Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.on(Method::PUT, handler)
    }

    fn patch<F, Args>(self, handler: F) -> Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.on(Method::PATCH, handler)
    }

    fn delete<F, Args>(self, handler: F) -> Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.on(Method::DELETE, handler)
    }
}

impl HttpServiceFactory for Routes {
    fn register(self, config: &mut AppService) {
        let allow = self
            .methods
            .iter()
            .map(Method::as_str)
            .collect::<Vec<_>>()
            .join(", ");
        self.resource
            .default_service(web::to(move |req: HttpRequest| {
                method_not_allowed(req, allow.clone())
            }))
            .register(config);
    }
}

/// Unknown paths still check the app and token first: a wrong token learns nothing.
async fn invalid_endpoint(_: Platform, req: HttpRequest) -> Result<HttpResponse, LayerError> {
    Err(LayerError::new(
        ErrorKind::InvalidEndpoint,
        format!(
            "the Platform API has no endpoint {} {}",
            req.method(),
            req.path()
        ),
    ))
}

/// A method the path does not take: 405 with `Allow` — once the token is checked (so a
/// stranger learns nothing about which paths exist), whatever API's `Accept` it sent: the
/// Platform and Webhooks APIs share these paths' scope.
async fn method_not_allowed(req: HttpRequest, allow: String) -> Result<HttpResponse, LayerError> {
    authorized_app(&req)?;
    let error = LayerError::new(
        ErrorKind::MethodNotAllowed,
        format!("{} does not support {}", req.path(), req.method()),
    );
    let mut response = error.error_response();
    if let Ok(value) = HeaderValue::from_str(&allow) {
        response.headers_mut().insert(ALLOW, value);
    }
    Ok(response)
}

/// The Platform API version a request asked for in `Accept`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Version {
    V1_0,
    V1_1,
    V2_0,
    V3_0,
}

impl Version {
    /// 2.0 and 3.0 name users by identity and show Basic Identities; 1.x by user ID.
    pub fn uses_identities(self) -> bool {
        self >= Version::V2_0
    }

    /// `application/vnd.layer+json; version=X.Y`; anything else is 406 `invalid_header`.
    fn from_accept(header: Option<&HeaderValue>) -> Result<Self, LayerError> {
        let invalid = || {
            LayerError::new(
                ErrorKind::InvalidHeader,
                "Invalid Accept header; must be of form application/vnd.layer+json; version=x.y \
                 (the emulator serves 1.0, 1.1, 2.0 and 3.0)",
            )
            .with_data(json!({"header": "Accept"}))
        };
        let value = header.and_then(|h| h.to_str().ok()).ok_or_else(invalid)?;
        let mut params = value.split(';').map(str::trim);
        let media_type = params.next().unwrap_or_default();
        if !media_type.eq_ignore_ascii_case("application/vnd.layer+json") {
            return Err(invalid());
        }
        let version = params
            .filter_map(|p| p.split_once('='))
            .find(|(name, _)| name.trim().eq_ignore_ascii_case("version"))
            .map(|(_, v)| v.trim().trim_matches('"'))
            .ok_or_else(invalid)?;
        match version {
            "1.0" => Ok(Version::V1_0),
            "1.1" => Ok(Version::V1_1),
            "2.0" => Ok(Version::V2_0),
            "3.0" => Ok(Version::V3_0),
            _ => Err(invalid()),
        }
    }
}

/// A Platform API request that passed the checks: a served app, its token, a version.
#[derive(Debug, Clone, Copy)]
pub struct Platform {
    pub app: AppId,
    pub version: Version,
}

impl FromRequest for Platform {
    type Error = LayerError;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(platform_of(req))
    }
}

/// The served app a `/apps/{app_uuid}/…` request names, once its Bearer token is checked —
/// for the Platform API and the Webhooks API, which share the token.
fn authorized_app(req: &HttpRequest) -> Result<AppId, LayerError> {
    let Some(emulator) = req.app_data::<web::Data<MockLayer>>() else {
        return Err(LayerError::internal(
            "the emulator's state is not registered",
        ));
    };
    let raw = req.match_info().get("app_uuid").unwrap_or_default();
    let app = parse_uuid(raw)
        .and_then(|uuid| emulator.app_by_uuid(&uuid))
        .ok_or_else(|| {
            LayerError::not_found(format!(
                "there is no app {raw:?} in this emulator (GET /_mock/apps lists them)"
            ))
        })?;
    let expected = emulator.platform_token(app).unwrap_or_default();
    if expected.is_empty() || !super::auth::bearer_matches(req.headers(), expected) {
        return Err(LayerError::new(
            ErrorKind::AuthenticationRequired,
            "the Platform API needs Authorization: Bearer <the app's Platform API token> \
             (GET /_mock/apps shows it)",
        ));
    }
    Ok(app)
}

fn platform_of(req: &HttpRequest) -> Result<Platform, LayerError> {
    let app = authorized_app(req)?;
    let version = Version::from_accept(req.headers().get(ACCEPT))?;
    Ok(Platform { app, version })
}

/// An edit or delete: 204 with an empty body (the Node client reads `body === ''`).
fn no_content() -> HttpResponse {
    HttpResponse::NoContent().finish()
}

/// A user ID from a path segment (decoded), or an identity ID in its place.
fn path_user(raw: &str) -> Result<String, LayerError> {
    super::ids::user_id_from_identity(raw)
        .ok_or_else(|| LayerError::not_found(format!("there is no user {raw:?}")))
}

/// A `{uuid}` segment, or a whole `layer:///…/<uuid>` ID in its place.
fn path_uuid(raw: &str, what: &str) -> Result<Uuid, LayerError> {
    let last = raw.rsplit('/').next().unwrap_or(raw);
    rest::path_uuid(last, what)
}

/// The `If-None-Match` tag of a create: a UUID that becomes the new object's UUID.
fn dedupe_tag(req: &HttpRequest) -> Result<Option<Uuid>, LayerError> {
    match req.headers().get(actix_web::http::header::IF_NONE_MATCH) {
        None => Ok(None),
        Some(value) => value
            .to_str()
            .ok()
            .map(|v| v.trim().trim_matches('"'))
            .and_then(parse_uuid)
            .map(Some)
            .ok_or_else(|| {
                LayerError::invalid_property(
                    "If-None-Match",
                    "If-None-Match must be a UUID (RFC 4122)",
                )
            }),
    }
}
