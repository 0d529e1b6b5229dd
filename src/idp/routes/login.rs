//! The login flow: `POST /authenticate` (credentials + nonce → identity token, the shape
//! Layer's sample apps use), `POST /sessions` (credentials → app session token),
//! `POST /identity_tokens` (session token + nonce → identity token), and
//! `DELETE /sessions/current`.

use actix_web::http::StatusCode;
use actix_web::web::Data;
use actix_web::{HttpRequest, HttpResponse, delete, post};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::ToSchema;

use super::{IdentityTokenBody, UserView, json};
use crate::app_id::ClientAppId;
use crate::clock::rfc3339;
use crate::domain::{Invalid, Nonce};
use crate::idp::IdpState;
use crate::idp::accounts;
use crate::idp::client::ClientAddr;
use crate::idp::error::IdpError;
use crate::idp::extract::{Body, SessionUser};
use crate::idp::keys::KeyRing;
use crate::idp::openapi::ErrorBody;
use crate::idp::sessions;
use crate::store::NewSession;

// Bodies that carry passwords or tokens derive no `Debug`, so they cannot be logged by accident.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    /// An e-mail address: `name@domain`, no spaces, at most 254 bytes once trimmed.
    email: String,
    password: String,
    /// The Layer app, also accepted next to the credentials (`user[app_id]`).
    app_id: Option<String>,
}

/// Credentials flat (`{email, password}`, Instastart) or nested (`{user: {email, password}}`,
/// Rails/Android samples), as JSON or form.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// An e-mail address: `name@domain`, no spaces, at most 254 bytes once trimmed.
    email: Option<String>,
    password: Option<String>,
    user: Option<Credentials>,
    /// The nonce from Layer's challenge, exactly as issued: printable ASCII without spaces.
    #[schema(pattern = "^[!-~]+$", max_length = 512)]
    nonce: Option<String>,
    /// The Layer app the token is for (`layer:///apps/…/<uuid>` or the bare UUID); required
    /// when several apps are configured.
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

    /// `app_id`, flat or nested under `user`.
    fn app_id(&self) -> Result<Option<&str>, IdpError> {
        let nested = self.user.as_ref().and_then(|u| u.app_id.as_deref());
        match (self.app_id.as_deref(), nested) {
            (Some(_), Some(_)) => Err(IdpError::InvalidRequest(
                "send app_id either flat or nested under user, not both".to_owned(),
            )),
            (flat, nested) => Ok(flat.or(nested)),
        }
    }
}

/// The key ring of the app a request names, its ID parsed once, here (see
/// [`crate::idp::apps::Apps::choose`]). The single app of `provider_id` and `[signing]`
/// signs for any app, as it always has, so there an unparsable ID is only logged.
fn choose_app<'a>(
    req: &HttpRequest,
    state: &'a IdpState,
    raw: Option<&str>,
) -> Result<&'a Arc<KeyRing>, IdpError> {
    let apps = state.issuer.apps();
    let requested = match raw.map(ClientAppId::parse).transpose() {
        Ok(requested) => requested,
        Err(_) if apps.signs_for_any_app() => None,
        Err(reason) => {
            return Err(IdpError::InvalidValue(Invalid {
                field: "app_id",
                reason,
            }));
        }
    };
    let keys = apps.choose(requested.as_ref())?;
    log_app_id(req, raw);
    Ok(keys)
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

/// Answers a Layer authentication challenge
///
/// Checks the credentials and signs an identity token for the nonce from Layer's challenge.
/// Send the credentials flat (`email`, `password`) or nested (`user[email]`, `user[password]`),
/// not both.
#[utoipa::path(
    tag = "login",
    request_body = LoginRequest,
    responses(
        (status = 200, description = "The identity token, under both keys.", body = IdentityTokenBody),
        (status = 400, description = "`invalid_request`: credentials or the nonce missing, or given both flat and nested.", body = ErrorBody),
        (status = 401, description = "`invalid_credentials`: the same for a wrong password, an unknown e-mail and a disabled account.", body = ErrorBody),
        (status = 403, description = "`email_not_verified` (with `[accounts] require_verified_email`).", body = ErrorBody),
        (status = 409, description = "`nonce_already_signed`: ask Layer for a new nonce.", body = ErrorBody),
        (status = 422, description = "`invalid_value`: the nonce or the `app_id` is not well-formed, or names no configured app.", body = ErrorBody),
        (status = 429, description = "`too_many_attempts`: password checks for this account or address are held; nothing was checked.", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
        (status = 503, description = "`temporarily_unavailable`: too many password hashes queued.", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    )
)]
#[post("/authenticate")]
pub async fn post_authenticate(
    req: HttpRequest,
    state: Data<IdpState>,
    Body(request): Body<LoginRequest>,
) -> Result<HttpResponse, IdpError> {
    let (email, password) = request.credentials()?;
    // The nonce is checked before the password so a malformed request costs no hashing.
    let nonce = request.nonce()?;
    // The app is chosen before the password is checked, so a wrong app ID costs no hashing.
    let keys = choose_app(&req, &state, request.app_id()?)?;
    let login = accounts::login(&state, email, password, ClientAddr::of(&req)).await?;
    // The login's address rides in the nonce ledger's batch: no write of its own.
    let token = state
        .issuer
        .issue_after_login(&login.user, &nonce, keys, state.clock.now(), &login.success)
        .await?;
    Ok(json(StatusCode::OK, IdentityTokenBody::new(token)))
}

/// A new app session.
#[derive(Serialize, ToSchema)]
pub struct SessionBody {
    session_token: String,
    token_type: &'static str,
    expires_at: String,
    expires_in: i64,
    user: UserView,
}

/// Logs in: credentials for a session token
///
/// Exchanges credentials for an app session token, so an app need not keep the password to
/// answer later challenges (`POST /identity_tokens`).
#[utoipa::path(
    tag = "login",
    request_body = LoginRequest,
    responses(
        (status = 201, description = "The session.", body = SessionBody),
        (status = 400, description = "`invalid_request`: credentials missing, given both flat and nested, or a `nonce` given.", body = ErrorBody),
        (status = 422, description = "`invalid_value`: the e-mail is not well-formed (an empty one, say).", body = ErrorBody),
        (status = 401, description = "`invalid_credentials`: the same for a wrong password, an unknown e-mail and a disabled account.", body = ErrorBody),
        (status = 403, description = "`email_not_verified` (with `[accounts] require_verified_email`).", body = ErrorBody),
        (status = 429, description = "`too_many_attempts`: password checks for this account or address are held; nothing was checked.", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
        (status = 503, description = "`temporarily_unavailable`: too many password hashes queued.", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    )
)]
#[post("/sessions")]
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
    log_app_id(&req, request.app_id()?);
    let accounts::LoggedIn { user, success } =
        accounts::login(&state, email, password, ClientAddr::of(&req)).await?;
    let (token, token_hash) = sessions::new_token().map_err(IdpError::Internal)?;
    let now = state.clock.now();
    let expires_at = now + state.session_ttl_secs;
    state
        .store
        .create_session(NewSession {
            token_hash: &token_hash,
            user_id: &user.id,
            now,
            expires_at,
            login: Some(success.record()),
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

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IdentityTokenRequest {
    /// The nonce from Layer's challenge, exactly as issued: printable ASCII without spaces.
    #[schema(pattern = "^[!-~]+$", max_length = 512)]
    nonce: String,
    /// As for `POST /authenticate`.
    app_id: Option<String>,
}

/// Signs an identity token for the session's user
#[utoipa::path(
    tag = "login",
    security(("session" = [])),
    request_body = IdentityTokenRequest,
    responses(
        (status = 200, description = "The identity token, under both keys.", body = IdentityTokenBody),
        (status = 409, description = "`nonce_already_signed`: ask Layer for a new nonce.", body = ErrorBody),
        (status = 422, description = "`invalid_value`: the nonce or the `app_id` is not well-formed, or names no configured app.", body = ErrorBody),
    )
)]
#[post(
    "/identity_tokens",
    wrap = "actix_web::middleware::from_fn(crate::idp::extract::require_session)"
)]
pub async fn post_identity_tokens(
    req: HttpRequest,
    state: Data<IdpState>,
    caller: SessionUser,
    Body(request): Body<IdentityTokenRequest>,
) -> Result<HttpResponse, IdpError> {
    let nonce = Nonce::parse(&request.nonce)?;
    let keys = choose_app(&req, &state, request.app_id.as_deref())?;
    let token = state
        .issuer
        .issue(&caller.user, &nonce, keys, state.clock.now())
        .await?;
    Ok(json(StatusCode::OK, IdentityTokenBody::new(token)))
}

/// Logs out: revokes the session whose token authenticates the request
#[utoipa::path(
    tag = "login",
    security(("session" = [])),
    responses((status = 204, description = "The session is revoked."))
)]
#[delete(
    "/sessions/current",
    wrap = "actix_web::middleware::from_fn(crate::idp::extract::require_session)"
)]
pub async fn delete_session(
    state: Data<IdpState>,
    caller: SessionUser,
) -> Result<HttpResponse, IdpError> {
    state.store.delete_session(&caller.token_hash).await?;
    tracing::info!(user_id = %caller.user.id, "session revoked");
    Ok(HttpResponse::NoContent().finish())
}
