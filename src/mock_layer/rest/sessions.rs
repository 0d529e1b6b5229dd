//! The authentication handshake (`HEAD /ping`, `POST /nonces`, `POST /sessions`,
//! `DELETE /sessions/{token}`), the socket's pre-reconnect check (`GET /`), and push tokens.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use serde_json::{Value, json};

use super::{json, json_body};
use crate::mock_layer::MockLayer;
use crate::mock_layer::auth::Caller;
use crate::mock_layer::error::{ErrorKind, LayerError};
use crate::mock_layer::identity_token;
use crate::mock_layer::ids::{AppId, parse_uuid};

/// `HEAD /ping`: any answer means "online" to the SDK.
pub async fn get_ping() -> HttpResponse {
    HttpResponse::Ok().finish()
}

/// `GET /?action=validateConnectionForWebsocket`: 200 while the session lives, else the
/// 401 that starts a new challenge.
pub async fn get_root(_caller: Caller) -> HttpResponse {
    json(StatusCode::OK, &json!({}))
}

pub async fn post_nonces(emulator: web::Data<MockLayer>) -> HttpResponse {
    json(
        StatusCode::CREATED,
        &json!({ "nonce": emulator.sessions.issue_nonce() }),
    )
}

/// `POST /sessions {"identity_token", "app_id"}`: validates the token (§A.5), consumes its
/// nonce, creates or updates the identity from its claims, and issues a session token.
pub async fn post_sessions(
    emulator: web::Data<MockLayer>,
    payload: web::Payload,
) -> Result<HttpResponse, LayerError> {
    let body = json_body(payload, emulator.settings().max_body_bytes).await?;
    let Value::Object(body) = body else {
        return Err(LayerError::invalid_request(
            "the body must be {\"identity_token\": …, \"app_id\": …}",
        ));
    };
    let token = match body.get("identity_token") {
        Some(Value::String(t)) => t.as_str(),
        Some(_) => {
            return Err(LayerError::invalid_property(
                "identity_token",
                "identity_token must be a string",
            ));
        }
        None => return Err(LayerError::missing_property("identity_token")),
    };
    let app = match body.get("app_id") {
        Some(Value::String(a)) => served_app(&emulator, a)?,
        Some(_) => {
            return Err(LayerError::invalid_property(
                "app_id",
                "app_id must be a string",
            ));
        }
        None => return Err(LayerError::missing_property("app_id")),
    };
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let verified = identity_token::verify(token, app, &emulator.trust, now)
        .await
        .map_err(|rule| {
            tracing::info!(%app, rule = %rule, "identity token refused");
            LayerError::invalid_property(
                "identity_token",
                format!("Invalid identity token: {rule}"),
            )
        })?;
    if !emulator.sessions.consume_nonce(&verified.nonce) {
        return Err(LayerError::invalid_property(
            "identity_token",
            "Invalid identity token: its nce is not an outstanding nonce (never issued, \
             already used, or older than the nonce lifetime); get a new one from POST /nonces",
        ));
    }
    let ttl;
    {
        let mut world = emulator.world(app)?;
        if world.suspended.contains(&verified.user_id) {
            return Err(LayerError::access_denied(format!(
                "the user {:?} is suspended by the app (Platform API PATCH /users/{{user}})",
                verified.user_id
            )));
        }
        world.apply_profile(&verified.user_id, verified.profile)?;
        ttl = world.session_ttl_secs;
    }
    let (session_token, _, evicted) =
        emulator
            .sessions
            .create_session_for(app, verified.user_id, ttl);
    for (token, session) in evicted {
        emulator
            .world(session.app)?
            .close_sockets(&session.user_id, Some(&token));
    }
    Ok(json(
        StatusCode::CREATED,
        &json!({ "session_token": session_token }),
    ))
}

/// The served app an `app_id` names: the full ID or the bare UUID. An app that exists in
/// the other environment is named in the error — the staging/production mix-up.
fn served_app(emulator: &MockLayer, raw: &str) -> Result<AppId, LayerError> {
    let served = emulator.app_ids();
    let invalid = |message: String| LayerError::new(ErrorKind::InvalidAppId, message);
    let requested = match parse_uuid(raw) {
        Some(uuid) => {
            let mut matching = served.iter().filter(|a| a.uuid == uuid);
            return match (matching.next(), matching.next()) {
                (Some(app), None) => Ok(*app),
                (Some(_), Some(_)) => Err(invalid(format!(
                    "the app UUID {raw} is served in staging and in production; send the full app ID"
                ))),
                _ => Err(invalid(format!(
                    "no app with the UUID {raw} is served here"
                ))),
            };
        }
        None => AppId::parse(raw).map_err(invalid)?,
    };
    if served.contains(&requested) {
        return Ok(requested);
    }
    match served.iter().find(|a| a.uuid == requested.uuid) {
        Some(other) => Err(invalid(format!(
            "the app {requested} ({}) is not served here, but {other} ({}) is: a \
             staging/production mix-up?",
            requested.environment.as_str(),
            other.environment.as_str()
        ))),
        None => Err(invalid(format!(
            "the app {requested} is not served here (served: {})",
            served
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

/// `DELETE /sessions/{token}` (logout): the session and its sockets end. Logging out twice
/// is not an error.
pub async fn delete_session(
    emulator: web::Data<MockLayer>,
    token: web::Path<String>,
) -> Result<HttpResponse, LayerError> {
    if let Some(session) = emulator.sessions.delete(&token) {
        emulator
            .world(session.app)?
            .close_sockets(&session.user_id, Some(&token));
    }
    Ok(HttpResponse::NoContent().finish())
}

/// Push tokens matter only to native apps; they are accepted and forgotten.
pub async fn post_push_tokens(_caller: Caller) -> HttpResponse {
    HttpResponse::NoContent().finish()
}

pub async fn delete_push_token(_caller: Caller) -> HttpResponse {
    HttpResponse::NoContent().finish()
}
