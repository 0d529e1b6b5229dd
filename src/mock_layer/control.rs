//! The test controls under `/_mock/` — on the emulator's own listener, never on a path
//! Layer uses. They let a test empty the world, read what the emulator received and which
//! pushes it would have sent, and end a user's sessions or drop their sockets.
//!
//! Each takes an optional `?app_id=` to act on one app; without it, on every app served.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, Resource, web};
use serde::Deserialize;
use serde_json::json;

use super::MockLayer;
use super::error::{ErrorKind, LayerError};
use super::ids::{AppId, identity_id};
use super::rest::json;
use super::world::{Badging, BadgingMode, Notification, Snapshot, SocketEnd};
use crate::clock::iso_ms;

pub fn configure(cfg: &mut web::ServiceConfig, resource: fn(&str) -> Resource) {
    cfg.service(resource("/_mock/reset").route(web::post().to(post_reset)))
        .service(resource("/_mock/requests").route(web::get().to(get_requests)))
        .service(resource("/_mock/notifications").route(web::get().to(get_notifications)))
        .service(resource("/_mock/apps").route(web::get().to(get_apps)))
        .service(resource("/_mock/export").route(web::get().to(get_export)))
        .service(resource("/_mock/import").route(web::post().to(post_import)))
        .service(resource("/_mock/webhooks").route(web::get().to(get_webhooks)))
        .service(
            resource("/_mock/badging")
                .route(web::get().to(get_badging))
                .route(web::put().to(put_badging)),
        )
        .service(
            resource("/_mock/clock")
                .route(web::get().to(get_clock))
                .route(web::post().to(post_clock)),
        )
        .service(
            resource("/_mock/users/{user_id}/expire-sessions")
                .route(web::post().to(post_expire_sessions)),
        )
        .service(
            resource("/_mock/users/{user_id}/disconnect").route(web::post().to(post_disconnect)),
        );
}

#[derive(Debug, Deserialize)]
pub struct AppFilter {
    app_id: Option<String>,
}

impl AppFilter {
    fn app(&self, emulator: &MockLayer) -> Result<Option<AppId>, LayerError> {
        let Some(raw) = &self.app_id else {
            return Ok(None);
        };
        let app = AppId::parse(raw).map_err(|e| LayerError::new(ErrorKind::InvalidAppId, e))?;
        if !emulator.app_ids().contains(&app) {
            return Err(LayerError::new(
                ErrorKind::InvalidAppId,
                format!("the app {app} is not served here"),
            ));
        }
        Ok(Some(app))
    }
}

/// Empties the worlds (objects, sessions, sockets, logs); the apps and keys stay.
pub async fn post_reset(
    emulator: web::Data<MockLayer>,
    filter: web::Query<AppFilter>,
) -> Result<HttpResponse, LayerError> {
    let only = filter.app(&emulator)?;
    emulator.sessions.clear(only);
    for (app, mut world) in emulator.worlds() {
        if only.is_none_or(|o| o == app) {
            world.reset();
        }
    }
    if only.is_none() {
        emulator.journal.clear();
    }
    emulator.webhook_sender().clear_log(only);
    Ok(HttpResponse::NoContent().finish())
}

/// The journal; with `?app_id=`, only the requests made in that app (a request no session
/// or app token placed in an app, such as `POST /nonces` or a content upload, has none).
pub async fn get_requests(
    emulator: web::Data<MockLayer>,
    filter: web::Query<AppFilter>,
) -> Result<HttpResponse, LayerError> {
    let mut entries = emulator.journal.entries();
    if let Some(app) = filter.app(&emulator)? {
        let app = app.to_string();
        entries.retain(|entry| entry.app_id.as_deref() == Some(app.as_str()));
    }
    Ok(json(StatusCode::OK, &entries))
}

pub async fn get_notifications(
    emulator: web::Data<MockLayer>,
    filter: web::Query<AppFilter>,
) -> Result<HttpResponse, LayerError> {
    let only = filter.app(&emulator)?;
    let mut all = Vec::new();
    for (app, world) in emulator.worlds() {
        if only.is_some_and(|o| o != app) {
            continue;
        }
        for n in &world.notifications {
            all.push((
                n.at_ms,
                json!({
                    "app_id": app.to_string(),
                    "at": iso_ms(n.at_ms),
                    "message": n.message,
                    "conversation": n.conversation,
                    "sender": identity_id(&n.sender),
                    "recipients": n.recipients.iter().map(|r| identity_id(r)).collect::<Vec<_>>(),
                    "title": n.notification.get("title"),
                    "text": n.notification.get("text"),
                    "sound": n.notification.get("sound"),
                    "notification": n.notification,
                    "pushes": pushes(n),
                }),
            ));
        }
    }
    all.sort_by_key(|(at, _)| *at);
    let items: Vec<_> = all.into_iter().map(|(_, v)| v).collect();
    Ok(json(StatusCode::OK, &items))
}

/// Every webhook delivery remembered (the last 1000), oldest first: its status, attempts,
/// last response code or error; and how many events were dropped for a full queue.
pub async fn get_webhooks(
    emulator: web::Data<MockLayer>,
    filter: web::Query<AppFilter>,
) -> Result<HttpResponse, LayerError> {
    let only = filter.app(&emulator)?;
    let events_dropped: u64 = emulator
        .worlds()
        .filter(|(app, _)| only.is_none_or(|o| o == *app))
        .map(|(_, world)| world.webhooks.dropped)
        .sum();
    Ok(json(
        StatusCode::OK,
        &json!({
            "deliveries": emulator.webhook_sender().deliveries(only),
            "events_dropped": events_dropped,
        }),
    ))
}

#[derive(Debug, Deserialize)]
pub struct ClockAdvance {
    advance_ms: Option<i64>,
    advance_secs: Option<i64>,
}

/// Each world's time (the wall clock plus what the controls added), by app.
pub async fn get_clock(emulator: web::Data<MockLayer>) -> HttpResponse {
    let now: serde_json::Map<String, serde_json::Value> = emulator
        .worlds()
        .map(|(app, world)| (app.to_string(), iso_ms(world.peek_ms()).into()))
        .collect();
    json(StatusCode::OK, &json!({ "now": now }))
}

/// Moves the clock of one app (`?app_id=`) or all forward by `advance_ms` or
/// `advance_secs`, and sends the delayed messages that became due — before answering, so a
/// test sees them at once.
pub async fn post_clock(
    emulator: web::Data<MockLayer>,
    filter: web::Query<AppFilter>,
    payload: web::Payload,
) -> Result<HttpResponse, LayerError> {
    let only = filter.app(&emulator)?;
    let raw = super::rest::json_body(payload, 4096).await?;
    let body: ClockAdvance = serde_json::from_value(raw).map_err(|e| {
        LayerError::invalid_request(format!("the body must be {{\"advance_ms\": N}}: {e}"))
    })?;
    let ms = match (body.advance_ms, body.advance_secs) {
        (Some(ms), None) if ms >= 0 => ms,
        (None, Some(secs)) if secs >= 0 => secs.saturating_mul(1000),
        _ => {
            return Err(LayerError::invalid_property(
                "advance_ms",
                "give one of advance_ms or advance_secs, not negative",
            ));
        }
    };
    for (app, mut world) in emulator
        .worlds()
        .filter(|(app, _)| only.is_none_or(|o| o == *app))
    {
        world.advance_clock(ms);
        // Sessions live on the same clock: those it outran end, and their sockets close.
        for (token, session) in emulator.sessions.advance_clock(app, ms) {
            world.end_sockets(&session.user_id, Some(&token), SocketEnd::Expired);
        }
    }
    Ok(get_clock(emulator).await)
}

pub async fn get_apps(emulator: web::Data<MockLayer>) -> HttpResponse {
    json(
        StatusCode::OK,
        &json!({
            "apps": emulator.app_ids().iter().map(ToString::to_string).collect::<Vec<_>>(),
            // The first app's token (every app's when one is configured), and each app's.
            "platform_token": emulator.app_ids().first().and_then(|app| emulator.platform_token(*app)),
            "platform_tokens": emulator
                .app_ids()
                .iter()
                .map(|app| (app.to_string(), serde_json::Value::from(emulator.platform_token(*app).unwrap_or_default())))
                .collect::<serde_json::Map<String, serde_json::Value>>(),
            // The lifetime of new sessions, by app: the default or what the app set.
            "session_ttl_secs": emulator
                .worlds()
                .map(|(app, world)| {
                    let ttl = world.session_ttl_secs.unwrap_or(emulator.settings().session_ttl_secs);
                    (app.to_string(), serde_json::Value::from(ttl))
                })
                .collect::<serde_json::Map<String, serde_json::Value>>(),
            "provider_id": emulator.provider_id(),
            "app_providers": emulator
                .app_providers()
                .into_iter()
                .map(|(app, provider)| (app.to_string(), provider))
                .collect::<std::collections::BTreeMap<_, _>>(),
            "url": emulator.base_url(),
        }),
    )
}

/// The user's sessions end now and their sockets close; their next request gets 401 with a
/// nonce, as when a session expires.
pub async fn post_expire_sessions(
    emulator: web::Data<MockLayer>,
    user: web::Path<String>,
    filter: web::Query<AppFilter>,
) -> Result<HttpResponse, LayerError> {
    let only = filter.app(&emulator)?;
    let ended = emulator.sessions.end_user_sessions(&user, only);
    let closed = close_user_sockets(&emulator, &user, only);
    Ok(json(
        StatusCode::OK,
        &json!({"sessions_ended": ended.len(), "sockets_closed": closed}),
    ))
}

/// Drops the user's sockets; their sessions stay valid, so the SDK reconnects and replays.
pub async fn post_disconnect(
    emulator: web::Data<MockLayer>,
    user: web::Path<String>,
    filter: web::Query<AppFilter>,
) -> Result<HttpResponse, LayerError> {
    let only = filter.app(&emulator)?;
    let closed = close_user_sockets(&emulator, &user, only);
    Ok(json(StatusCode::OK, &json!({"sockets_closed": closed})))
}

/// Closes every socket of `user` in one app, or in all; how many.
fn close_user_sockets(emulator: &MockLayer, user: &str, only: Option<AppId>) -> usize {
    emulator
        .worlds()
        .filter(|(app, _)| only.is_none_or(|o| o == *app))
        .map(|(_, mut world)| world.close_sockets(user, None))
        .sum()
}

/// What each recipient's device would show: a per-recipient override's `title`, `text` and
/// `sound` where given, else the push's own; no `text` and no `sound` is a silent push.
/// With the badge number the push carried.
fn pushes(n: &Notification) -> Vec<serde_json::Value> {
    let overrides = n
        .notification
        .get("recipients")
        .and_then(serde_json::Value::as_array);
    n.recipients
        .iter()
        .enumerate()
        .map(|(i, user)| {
            let own = overrides.and_then(|list| {
                list.iter()
                    .find(|o| o.get("user_id").and_then(serde_json::Value::as_str) == Some(user))
            });
            let field = |name: &str| {
                own.and_then(|o| o.get(name))
                    .or_else(|| n.notification.get(name))
                    .cloned()
                    .unwrap_or(serde_json::Value::Null)
            };
            let (title, text, sound) = (field("title"), field("text"), field("sound"));
            json!({
                "recipient": identity_id(user),
                "title": title,
                "silent": text.is_null() && sound.is_null(),
                "text": text,
                "sound": sound,
                "badge": n.badges.get(i).copied().flatten(),
            })
        })
        .collect()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BadgingSetting {
    mode: String,
    #[serde(default)]
    include_announcements: bool,
}

/// Each app's badging (what a push's badge counts), by app.
pub async fn get_badging(emulator: web::Data<MockLayer>) -> HttpResponse {
    let by_app: serde_json::Map<String, serde_json::Value> = emulator
        .worlds()
        .map(|(app, world)| {
            let badging = world.badging;
            (
                app.to_string(),
                json!({"mode": badging.mode.name(), "include_announcements": badging.announcements}),
            )
        })
        .collect();
    json(StatusCode::OK, &json!({ "badging": by_app }))
}

/// Sets the badging of one app (`?app_id=`) or all, as Layer's dashboard did:
/// `{"mode": "unread_messages" | "unread_conversations" | "external_only" | "off",
/// "include_announcements": bool}`.
pub async fn put_badging(
    emulator: web::Data<MockLayer>,
    filter: web::Query<AppFilter>,
    payload: web::Payload,
) -> Result<HttpResponse, LayerError> {
    let only = filter.app(&emulator)?;
    let raw = super::rest::json_body(payload, 4096).await?;
    let setting: BadgingSetting = serde_json::from_value(raw).map_err(|e| {
        LayerError::invalid_request(format!(
            "the body must be {{\"mode\": …, \"include_announcements\": bool}}: {e}"
        ))
    })?;
    let mode = BadgingMode::parse(&setting.mode).ok_or_else(|| {
        LayerError::invalid_property(
            "mode",
            format!("mode must be one of {}", BadgingMode::NAMES.join(", ")),
        )
    })?;
    for (_, mut world) in emulator
        .worlds()
        .filter(|(app, _)| only.is_none_or(|o| o == *app))
    {
        world.badging = Badging {
            mode,
            announcements: setting.include_announcements,
        };
    }
    Ok(get_badging(emulator).await)
}

/// The world of one app as a document (`world/snapshot/`). `?app_id=` chooses the app;
/// it may be left out only when one app is served.
pub async fn get_export(
    emulator: web::Data<MockLayer>,
    filter: web::Query<AppFilter>,
) -> Result<HttpResponse, LayerError> {
    let app = match filter.app(&emulator)? {
        Some(app) => app,
        None => match emulator.app_ids().as_slice() {
            [only] => *only,
            apps => {
                return Err(LayerError::invalid_request(format!(
                    "{} apps are served here; name the one to export with ?app_id=",
                    apps.len()
                )));
            }
        },
    };
    let snapshot = emulator.world(app)?.export();
    Ok(json(StatusCode::OK, &snapshot))
}

/// Replaces an app's world with a document `GET /_mock/export` gave: the app is the
/// document's `app_id` (and `?app_id=`, if given, must name the same one). The app's
/// sessions end and its sockets close. A document refused changes nothing.
pub async fn post_import(
    emulator: web::Data<MockLayer>,
    filter: web::Query<AppFilter>,
    payload: web::Payload,
) -> Result<HttpResponse, LayerError> {
    let named = filter.app(&emulator)?;
    let limit = emulator.import_body_limit();
    let bytes = payload
        .to_bytes_limited(limit)
        .await
        .map_err(|_| {
            LayerError::invalid_request(format!(
                "the document is larger than the limit of {limit} bytes (from \
                 mock_layer.max_message_bytes and max_content_bytes_per_app)"
            ))
        })?
        .map_err(|e| LayerError::invalid_request(format!("the body could not be read: {e}")))?;
    let doc = parse_snapshot(&bytes)?;
    emulator.import_world(doc, named)?;
    Ok(HttpResponse::NoContent().finish())
}

/// A world document from JSON text, refused with Layer's error format.
pub fn parse_snapshot(bytes: &[u8]) -> Result<Snapshot, LayerError> {
    serde_json::from_slice(bytes).map_err(|e| {
        LayerError::invalid_request(format!(
            "the body is not a world document (see GET /_mock/export): {e}"
        ))
    })
}

impl MockLayer {
    /// The most an import's body may take: the messages and the rich content in base64
    /// the caps allow, and room for the rest.
    fn import_body_limit(&self) -> usize {
        let settings = self.settings();
        settings
            .max_message_bytes
            .saturating_add(settings.max_content_bytes_per_app.saturating_mul(4) / 3)
            .saturating_add(16 * 1024 * 1024)
    }

    /// Replaces the world of the document's app (which must be `named`, if given): its
    /// sockets close and its sessions end. Refused whole, changing nothing, if the
    /// document is inconsistent or over the caps.
    pub(crate) fn import_world(
        &self,
        doc: Snapshot,
        named: Option<AppId>,
    ) -> Result<(), LayerError> {
        let app = AppId::parse(&doc.app_id).map_err(|e| {
            LayerError::new(
                ErrorKind::InvalidAppId,
                format!("the document's app_id: {e}"),
            )
        })?;
        if let Some(named) = named
            && named != app
        {
            return Err(LayerError::new(
                ErrorKind::InvalidAppId,
                format!("the document holds the app {app}, not {named}"),
            ));
        }
        if !self.app_ids().contains(&app) {
            return Err(LayerError::new(
                ErrorKind::InvalidAppId,
                format!("the document's app {app} is not served here"),
            ));
        }
        self.world(app)?.import(doc)?;
        self.sessions.clear(Some(app));
        Ok(())
    }
}

/// Loads a world document at start (`mock_layer.import`, `--mock-layer-import`).
pub async fn import_file(emulator: &MockLayer, file: &std::path::Path) -> anyhow::Result<()> {
    let bytes = tokio::fs::read(file)
        .await
        .map_err(|e| anyhow::anyhow!("mock_layer.import: cannot read {}: {e}", file.display()))?;
    let app = parse_snapshot(&bytes)
        .and_then(|doc| {
            let app = doc.app_id.clone();
            emulator.import_world(doc, None).map(|()| app)
        })
        .map_err(|e| {
            anyhow::anyhow!(
                "mock_layer.import: {} is refused: {}",
                file.display(),
                e.message
            )
        })?;
    tracing::info!(file = %file.display(), app = %app, "loaded the world from a document");
    Ok(())
}
