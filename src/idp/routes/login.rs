//! The login flow: `POST /authenticate` (credentials + nonce → identity token, the shape
//! Layer's sample apps use), `POST /sessions` (credentials → app session token),
//! `POST /identity_tokens` (session token + nonce → identity token), and
//! `DELETE /sessions/current`.

use actix_web::http::StatusCode;
use actix_web::web::Data;
use actix_web::{HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};

use super::{IdentityTokenBody, UserView, json};
use crate::clock::rfc3339;
use crate::clock::unix_now;
use crate::domain::Nonce;
use crate::idp::IdpState;
use crate::idp::accounts;
use crate::idp::client::ClientAddr;
use crate::idp::error::IdpError;
use crate::idp::extract::{Body, SessionUser};
use crate::idp::sessions;
use crate::store::NewSession;

// Bodies that carry passwords or tokens derive no `Debug`, so they cannot be logged by accident.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    email: String,
    password: String,
}

/// Credentials flat (`{email, password}`, Instastart) or nested (`{user: {email, password}}`,
/// Rails/Android samples), as JSON or form.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    email: Option<String>,
    password: Option<String>,
    user: Option<Credentials>,
    nonce: Option<String>,
    /// Sent by some clients; recorded in the log, not required.
    app_id: Option<String>,
}

impl LoginRequest {
    fn credentials(&self) -> Result<(&str, &str), IdpError> {
        match (&self.email, &self.password, &self.user) {
            (Some(email), Some(password), None) => Ok((email, password)),
            (None, None, Some(user)) => Ok((&user.email, &user.password)),
            (None, None, None) => Err(IdpError::InvalidRequest(
                "send email and password, either flat or as user[email] and user[password]"
                    .to_owned(),
            )),
            (_, _, Some(_)) => Err(IdpError::InvalidRequest(
                "send credentials either flat or nested under user, not both".to_owned(),
            )),
            (None, _, None) => Err(IdpError::InvalidRequest("missing field `email`".to_owned())),
            (_, None, None) => Err(IdpError::InvalidRequest(
                "missing field `password`".to_owned(),
            )),
        }
    }

    fn nonce(&self) -> Result<Nonce, IdpError> {
        let raw = self.nonce.as_deref().ok_or_else(|| {
            IdpError::InvalidRequest(
                "missing field `nonce`: pass the nonce from Layer's authentication challenge"
                    .to_owned(),
            )
        })?;
        Ok(Nonce::parse(raw)?)
    }
}

fn log_app_id(req: &HttpRequest, body: Option<&str>) {
    let header = req
        .headers()
        .get("x-layer-app-id")
        .or_else(|| req.headers().get("x_layer_app_id"))
        .and_then(|v| v.to_str().ok());
    if let Some(app_id) = body.or(header) {
        let app_id: String = app_id
            .chars()
            .take(128)
            .filter(|c| !c.is_control())
            .collect();
        tracing::info!(%app_id, "client named its Layer app");
    }
}

/// Checks the credentials and signs an identity token for the nonce.
pub async fn post_authenticate(
    req: HttpRequest,
    state: Data<IdpState>,
    Body(request): Body<LoginRequest>,
) -> Result<HttpResponse, IdpError> {
    let (email, password) = request.credentials()?;
    // The nonce is checked before the password so a malformed request costs no hashing.
    let nonce = request.nonce()?;
    log_app_id(&req, request.app_id.as_deref());
    let user = accounts::login(&state, email, password, ClientAddr::of(&req)).await?;
    let token = state.issuer.issue(&user, &nonce, unix_now()).await?;
    Ok(json(StatusCode::OK, IdentityTokenBody::new(token)))
}

#[derive(Serialize)]
struct SessionBody {
    session_token: String,
    token_type: &'static str,
    expires_at: String,
    expires_in: i64,
    user: UserView,
}

/// Exchanges credentials for an app session token, so an app need not keep the password to
/// answer later challenges.
pub async fn post_sessions(
    req: HttpRequest,
    state: Data<IdpState>,
    Body(request): Body<LoginRequest>,
) -> Result<HttpResponse, IdpError> {
    let (email, password) = request.credentials()?;
    if request.nonce.is_some() {
        return Err(IdpError::InvalidRequest(
            "POST /sessions takes no nonce; use POST /identity_tokens with the session token"
                .to_owned(),
        ));
    }
    log_app_id(&req, request.app_id.as_deref());
    let user = accounts::login(&state, email, password, ClientAddr::of(&req)).await?;
    let (token, token_hash) = sessions::new_token().map_err(IdpError::Internal)?;
    let now = unix_now();
    let expires_at = now + state.session_ttl_secs;
    state
        .store
        .create_session(NewSession {
            token_hash: &token_hash,
            user_id: &user.id,
            now,
            expires_at,
        })
        .await?;
    Ok(json(
        StatusCode::CREATED,
        SessionBody {
            session_token: token,
            token_type: "Bearer",
            expires_at: rfc3339(expires_at),
            expires_in: state.session_ttl_secs,
            user: UserView::from(user),
        },
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentityTokenRequest {
    nonce: String,
}

/// Signs an identity token for the session's user.
pub async fn post_identity_tokens(
    state: Data<IdpState>,
    caller: SessionUser,
    Body(request): Body<IdentityTokenRequest>,
) -> Result<HttpResponse, IdpError> {
    let nonce = Nonce::parse(&request.nonce)?;
    let token = state.issuer.issue(&caller.user, &nonce, unix_now()).await?;
    Ok(json(StatusCode::OK, IdentityTokenBody::new(token)))
}

/// Revokes the session whose token authenticates the request.
pub async fn delete_session(
    state: Data<IdpState>,
    caller: SessionUser,
) -> Result<HttpResponse, IdpError> {
    state.store.delete_session(&caller.token_hash).await?;
    tracing::info!(user_id = %caller.user.id, "session revoked");
    Ok(HttpResponse::NoContent().finish())
}
