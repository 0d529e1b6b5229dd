//! The Webhooks API (§D of the Platform API notes): an app's backend registers URLs that
//! Layer calls when things happen. Under `/apps/{app_uuid}/webhooks` with the Platform API's
//! token and its own media type, `Accept: application/vnd.layer.webhooks+json; version=1.0`
//! (or `3.0`).
//!
//! A new or re-activated webhook is verified by `GET <target_url>?verification_challenge=…`,
//! which must echo the challenge: then it is `active`, else `inactive` with the reason. A
//! registration answers at once (`unverified`) and verifies in the background; an activation
//! waits for the verification, so its answer shows the outcome, as Layer's did.
//!
//! - `payloads.rs` — each delivery's body and signature;
//! - `sender.rs` — the deliveries themselves, their retries and their log.

mod payloads;
pub mod sender;

use std::collections::BTreeSet;
use std::future::{Ready, ready};

use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::http::header::{ACCEPT, HeaderValue, LOCATION};
use actix_web::{FromRequest, HttpRequest, HttpResponse, web};
use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::authorized_app;
use crate::clock::iso_ms;
use crate::mock_layer::MockLayer;
use crate::mock_layer::error::{ErrorKind, LayerError};
use crate::mock_layer::ids::AppId;
use crate::mock_layer::rest::{json, json_body};
use crate::mock_layer::world::World;
use crate::mock_layer::world::webhooks::{
    EventKind, MAX_WEBHOOKS, Webhook, WebhookStatus, WebhookVersion,
};

/// Longest `secret`, `target_url`, and `config` (as JSON) a webhook may have.
const MAX_SECRET_CHARS: usize = 256;
const MAX_URL_CHARS: usize = 2048;
const MAX_CONFIG_BYTES: usize = 4096;

/// A Webhooks API request that passed the checks: a served app, its token, a version.
#[derive(Debug, Clone, Copy)]
pub struct WebhooksApi {
    pub app: AppId,
    pub version: WebhookVersion,
}

impl FromRequest for WebhooksApi {
    type Error = LayerError;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(authorized_app(req).and_then(|app| {
            let version = version_from_accept(req.headers().get(ACCEPT))?;
            Ok(WebhooksApi { app, version })
        }))
    }
}

/// `application/vnd.layer.webhooks+json; version=1.0|3.0`; anything else is 406.
fn version_from_accept(header: Option<&HeaderValue>) -> Result<WebhookVersion, LayerError> {
    let invalid = || {
        LayerError::new(
            ErrorKind::InvalidHeader,
            "Invalid Accept header; must be of form application/vnd.layer.webhooks+json; \
             version=x.y (the emulator serves webhooks 1.0 and 3.0)",
        )
        .with_data(json!({"header": "Accept"}))
    };
    let value = header.and_then(|h| h.to_str().ok()).ok_or_else(invalid)?;
    let mut params = value.split(';').map(str::trim);
    if !params
        .next()
        .unwrap_or_default()
        .eq_ignore_ascii_case("application/vnd.layer.webhooks+json")
    {
        return Err(invalid());
    }
    params
        .filter_map(|p| p.split_once('='))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("version"))
        .and_then(|(_, v)| WebhookVersion::parse(v.trim().trim_matches('"')))
        .ok_or_else(invalid)
}

/// A webhook as the API shows it; never its secret.
fn view(world: &World, hook: &Webhook) -> Value {
    let path = format!("apps/{}/webhooks/{}", world.app.uuid, hook.uuid);
    let mut view = json!({
        "id": format!("layer:///{path}"),
        "url": format!("{}/{path}", world.base),
        "version": hook.version.as_str(),
        "target_url": hook.target_url,
        "events": hook.events,
        "status": hook.status.as_str(),
        "created_at": iso_ms(hook.created_ms),
        "config": hook.config,
    });
    if hook.status == WebhookStatus::Inactive
        && let (Some(reason), Value::Object(map)) = (&hook.status_reason, &mut view)
    {
        map.insert("status_reason".into(), reason.clone().into());
    }
    view
}

fn no_webhook(raw: &str) -> LayerError {
    LayerError::not_found(format!("there is no webhook {raw:?}"))
}

/// The webhook a `{webhook}` path segment (its UUID, or its whole ID) names.
fn webhook_mut<'w>(world: &'w mut World, raw: &str) -> Result<&'w mut Webhook, LayerError> {
    let last = raw.rsplit('/').next().unwrap_or(raw);
    crate::mock_layer::ids::parse_uuid(last)
        .and_then(|uuid| world.webhooks.hooks.get_mut(&uuid))
        .ok_or_else(|| no_webhook(raw))
}

/// What `POST /webhooks` asks for, checked.
struct Registration {
    version: WebhookVersion,
    target_url: String,
    events: Vec<String>,
    kinds: BTreeSet<EventKind>,
    secret: String,
    config: Map<String, Value>,
}

fn registration(api: WebhooksApi, body: Value) -> Result<Registration, LayerError> {
    let Value::Object(body) = body else {
        return Err(LayerError::invalid_request(
            "the body must be a JSON object: {version, target_url, events, secret, config?}",
        ));
    };
    let string = |name: &str| -> Result<String, LayerError> {
        match body.get(name) {
            None | Some(Value::Null) => Err(LayerError::missing_property(name)),
            Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
            Some(_) => Err(LayerError::invalid_property(
                name,
                format!("{name} must be a non-empty string"),
            )),
        }
    };
    let version = string("version")?;
    if version != api.version.as_str() {
        return Err(LayerError::invalid_property(
            "version",
            format!(
                "version {version:?} must match the Accept header's version ({})",
                api.version.as_str()
            ),
        ));
    }
    let target_url = string("target_url")?;
    let parsed = url::Url::parse(&target_url).ok();
    let plain_http = parsed
        .as_ref()
        .is_some_and(|u| u.scheme() == "http" && u.host_str().is_some());
    if !plain_http || target_url.len() > MAX_URL_CHARS {
        return Err(LayerError::invalid_property(
            "target_url",
            format!(
                "target_url must be an http:// URL of at most {MAX_URL_CHARS} characters: the \
                 emulator delivers to local receivers over plain HTTP"
            ),
        ));
    }
    let secret = string("secret")?;
    if secret.chars().count() > MAX_SECRET_CHARS {
        return Err(LayerError::invalid_property(
            "secret",
            format!("secret may have at most {MAX_SECRET_CHARS} characters"),
        ));
    }
    let known = EventKind::names(api.version);
    let events = match body.get("events") {
        None | Some(Value::Null) => return Err(LayerError::missing_property("events")),
        Some(Value::Array(events)) if !events.is_empty() && events.len() <= known.len() * 2 => {
            events
        }
        Some(_) => {
            return Err(LayerError::invalid_property(
                "events",
                format!("events must be a non-empty array of {}", known.join(", ")),
            ));
        }
    };
    let mut names = Vec::with_capacity(events.len());
    let mut kinds = BTreeSet::new();
    for event in events {
        let name = event.as_str().unwrap_or_default();
        let parsed = EventKind::parse(name, api.version);
        if parsed.is_empty() {
            return Err(LayerError::invalid_property(
                "events",
                format!(
                    "{event} is not a webhooks {} event; they are {}",
                    api.version.as_str(),
                    known.join(", ")
                ),
            ));
        }
        if !names.iter().any(|n| n == name) {
            names.push(name.to_owned());
        }
        kinds.extend(parsed);
    }
    let config = match body.get("config") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(config))
            if config.values().all(Value::is_string)
                && Value::Object(config.clone()).to_string().len() <= MAX_CONFIG_BYTES =>
        {
            config.clone()
        }
        Some(_) => {
            return Err(LayerError::invalid_property(
                "config",
                format!(
                    "config must be an object of string values, at most {MAX_CONFIG_BYTES} \
                     bytes as JSON"
                ),
            ));
        }
    };
    Ok(Registration {
        version: api.version,
        target_url,
        events: names,
        kinds,
        secret,
        config,
    })
}

/// `POST /webhooks`: 201, `unverified`; verification runs in the background.
pub async fn post_webhooks(
    api: WebhooksApi,
    emulator: web::Data<MockLayer>,
    payload: web::Payload,
) -> Result<HttpResponse, LayerError> {
    let body = json_body(payload, emulator.settings().max_body_bytes).await?;
    let registration = registration(api, body)?;
    let (view, uuid, round) = {
        let mut world = emulator.world(api.app)?;
        if world.webhooks.hooks.len() >= MAX_WEBHOOKS {
            return Err(LayerError::rate_limit_exceeded(format!(
                "this app has {MAX_WEBHOOKS} webhooks, the most the emulator keeps; delete one"
            )));
        }
        let uuid = Uuid::new_v4();
        let hook = Webhook {
            uuid,
            version: registration.version,
            target_url: registration.target_url,
            events: registration.events,
            kinds: registration.kinds,
            secret: registration.secret,
            config: registration.config,
            status: WebhookStatus::Unverified,
            status_reason: None,
            created_ms: world.now_ms(),
            verification: 1,
        };
        let view = view(&world, &hook);
        world.webhooks.hooks.insert(uuid, hook);
        (view, uuid, 1)
    };
    let background = emulator.clone();
    tokio::spawn(async move { verify(&background, api.app, uuid, round).await });
    let mut response = json(StatusCode::CREATED, &view);
    if let Some(Ok(location)) = view["url"].as_str().map(HeaderValue::from_str) {
        response.headers_mut().insert(LOCATION, location);
    }
    Ok(response)
}

/// Runs verification round `round` of a webhook and records its outcome, unless a later
/// round started meanwhile or the webhook is gone.
async fn verify(emulator: &MockLayer, app: AppId, uuid: Uuid, round: u64) {
    let target_url = match emulator.world(app) {
        Ok(world) => match world.webhooks.hooks.get(&uuid) {
            Some(hook) => hook.target_url.clone(),
            None => return,
        },
        Err(_) => return,
    };
    let outcome = emulator.webhook_sender().verify(&target_url).await;
    let Ok(mut world) = emulator.world(app) else {
        return;
    };
    let Some(hook) = world.webhooks.hooks.get_mut(&uuid) else {
        return;
    };
    if hook.verification != round || hook.status != WebhookStatus::Unverified {
        return;
    }
    match outcome {
        Ok(()) => {
            hook.status = WebhookStatus::Active;
            hook.status_reason = None;
        }
        Err(reason) => {
            hook.status = WebhookStatus::Inactive;
            hook.status_reason = Some(reason);
        }
    }
}

pub async fn get_webhooks(
    api: WebhooksApi,
    emulator: web::Data<MockLayer>,
) -> Result<HttpResponse, LayerError> {
    let world = emulator.world(api.app)?;
    let mut hooks: Vec<&Webhook> = world.webhooks.hooks.values().collect();
    hooks.sort_by_key(|h| (h.created_ms, h.uuid));
    let views: Vec<Value> = hooks.into_iter().map(|h| view(&world, h)).collect();
    Ok(json(StatusCode::OK, &views))
}

pub async fn get_webhook(
    api: WebhooksApi,
    emulator: web::Data<MockLayer>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, LayerError> {
    let mut world = emulator.world(api.app)?;
    let hook = webhook_mut(&mut world, &path.1)?.clone();
    Ok(json(StatusCode::OK, &view(&world, &hook)))
}

/// `POST /webhooks/{uuid}/activate`: `unverified` again, then verified before answering.
pub async fn post_activate(
    api: WebhooksApi,
    emulator: web::Data<MockLayer>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, LayerError> {
    let (uuid, round) = {
        let mut world = emulator.world(api.app)?;
        let hook = webhook_mut(&mut world, &path.1)?;
        hook.status = WebhookStatus::Unverified;
        hook.status_reason = None;
        hook.verification += 1;
        (hook.uuid, hook.verification)
    };
    verify(&emulator, api.app, uuid, round).await;
    get_webhook(api, emulator, path).await
}

/// `POST /webhooks/{uuid}/deactivate`: `inactive`, "Deactivated by User".
pub async fn post_deactivate(
    api: WebhooksApi,
    emulator: web::Data<MockLayer>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, LayerError> {
    let mut world = emulator.world(api.app)?;
    let hook = webhook_mut(&mut world, &path.1)?;
    hook.status = WebhookStatus::Inactive;
    hook.status_reason = Some("Deactivated by User".to_owned());
    // A verification under way must not turn it back on.
    hook.verification += 1;
    let hook = hook.clone();
    Ok(json(StatusCode::OK, &view(&world, &hook)))
}

pub async fn delete_webhook(
    api: WebhooksApi,
    emulator: web::Data<MockLayer>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, LayerError> {
    let mut world = emulator.world(api.app)?;
    let uuid = webhook_mut(&mut world, &path.1)?.uuid;
    world.webhooks.hooks.remove(&uuid);
    Ok(HttpResponse::NoContent().finish())
}
